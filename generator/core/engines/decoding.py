"""From latents to the candidates' RGB images: the pipelines' own ending, run by the engine a few images at a time.

`Engine.generate` draws the latents with output_type="latent" and decodes them here, `decode_group` at a time, so
that on a GPU its caller verifies the first candidates on the CPU while the GPU decodes the rest; the pixels are the
ones diffusers' "pil" output would have (scaled, rounded half to even and cast on the device; only bytes travel).
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image


def to_images(batch) -> list[Image.Image]:
    """RGB images from a pipeline's "pt" output (N x 3 x H x W in [0, 1], on its device), the same pixels as its
    "pil" output: diffusers scales float32 copies by 255, rounds half to even and casts, on the CPU after copying
    the batch there as floats; here the same steps run on the device and only the bytes travel (for 8 at 768², 14
    MB instead of 57, and no float arrays on the CPU)."""
    return _delivered(_fetch(_device_bytes(batch)), None)


def decode(pipe, latents, group: int = 0, on_decoded: Callable[[list[Image.Image]], None] | None = None,
           ) -> list[Image.Image]:
    """The pipeline's own ending (its VAE's decode, then its image processor's "pt" output, denormalised; qart's
    pipelines have no safety checker) as RGB images, `group` latents at a time.

    On CUDA each group's bytes are copied to pinned memory behind its decode without waiting, and the group goes to
    `on_decoded` once the next group's decode is queued: the callback runs while the GPU decodes.

    Args:
        pipe: the pipeline that drew `latents` (called with output_type="latent").
        latents (`torch.Tensor`): N x 4 x h x w, on the pipeline's device.
        group (`int`, *optional*, defaults to 0): latents per decode call; 0 decodes all at once.
        on_decoded (`Callable[[list[PIL.Image.Image]], None]`, *optional*): called with each group's images, in
            order, once they are on the CPU.

    Returns:
        One RGB image per latent, in order.
    """
    vae = pipe.vae
    images: list[Image.Image] = []
    waiting = None  # the last group's copy to the CPU, maybe still under way: delivered after the next is queued
    group = group if group > 0 else len(latents)
    for start in range(0, len(latents), group):
        pixels = vae.decode(latents[start:start + group] / vae.config.scaling_factor, return_dict=False)[0]
        fetching = _fetch(_device_bytes(pipe.image_processor.postprocess(pixels, output_type="pt")))
        if waiting is not None:
            images += _delivered(waiting, on_decoded)
        waiting = fetching
    if waiting is not None:
        images += _delivered(waiting, on_decoded)
    return images


def _device_bytes(batch):
    import torch

    return (batch.float() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _fetch(pixels) -> tuple:
    """Start copying `pixels` to the CPU: (the host tensor, a CUDA event recorded after the copy, or None off CUDA).
    `Tensor.cpu()` would wait for everything queued on the stream, the next group's decode included."""
    import torch

    if pixels.device.type != "cuda":
        return pixels.cpu(), None
    host = torch.empty(pixels.shape, dtype=pixels.dtype, pin_memory=True)
    host.copy_(pixels, non_blocking=True)
    copied = torch.cuda.Event()
    copied.record()
    return host, copied


def _delivered(fetched: tuple, on_decoded) -> list[Image.Image]:
    host, copied = fetched
    if copied is not None:
        copied.synchronize()  # this copy only, not the decode queued after it
    images = [Image.fromarray(image) for image in host.numpy()]
    if on_decoded is not None:
        on_decoded(images)
    return images
