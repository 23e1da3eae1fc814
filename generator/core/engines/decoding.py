"""From latents to the candidates' RGB images: the pipelines' own ending, run by the engine a few images at a time.

`Engine.generate` draws the latents with output_type="latent" and decodes them here, `decode_group` at a time, so
that on a GPU its caller verifies the first candidates on the CPU while the GPU decodes the rest (one queued ahead
at a time); the pixels are the ones diffusers' "pil" output would have (scaled, rounded half to even and cast on the
device; only bytes travel).
"""

from __future__ import annotations

import collections
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

    On CUDA the next group's decode, and its copy to pinned memory, is queued before a group is handed over, so the
    GPU decodes while `on_decoded` runs; each group goes to `on_decoded` once its own copy is done. With the decoder
    in CUDA graphs (`cuda.compile_decoder`) a decode costs the launching thread ~2 ms of its GPU's ~20, so one decode
    ahead keeps the GPU decoding back to back inside a job and hands the first image over soonest. Queuing every
    decode first ended a job as early with the decoder not in graphs, but handed the first image over ~65 ms later;
    with graphs it was not run, as one ahead already keeps the GPU busy (bench/GPU.md, fourteenth step). Off CUDA a
    decode is the CPU's own work, and each group is handed over as soon as it is decoded.

    Args:
        pipe: the pipeline that drew `latents` (called with output_type="latent").
        latents (`torch.Tensor`): N x 4 x h x w, on the pipeline's device.
        group (`int`, *optional*, defaults to 0): latents per decode call; 0 decodes all at once.
        on_decoded (`Callable[[list[PIL.Image.Image]], None]`, *optional*): called with each group's images, in
            order, once they are on the CPU.

    Returns:
        One RGB image per latent, in order.
    """
    group = group if group > 0 else len(latents)
    ahead = decodes_ahead(latents)
    images: list[Image.Image] = []
    waiting: collections.deque[tuple] = collections.deque()  # groups queued, not yet handed over
    for start in range(0, len(latents), group):
        waiting.append(_fetch(_decoded_bytes(pipe, latents[start:start + group])))
        if len(waiting) > ahead:
            images += _delivered(waiting.popleft(), on_decoded)
    while waiting:
        images += _delivered(waiting.popleft(), on_decoded)
    return images


def decodes_ahead(latents) -> int:
    """How many groups' decodes `decode` keeps queued beyond the one it hands over: 1 where a device runs them
    asynchronously (CUDA), 0 elsewhere."""
    return 1 if latents.device.type == "cuda" else 0


def _decoded_bytes(pipe, latents):
    vae = pipe.vae
    pixels = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    return _device_bytes(pipe.image_processor.postprocess(pixels, output_type="pt"))


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
