"""The ControlNet beside the UNet's down path: two CUDA streams in one denoising step.

In each step the pipeline runs the ControlNet, then the UNet. The UNet needs the ControlNet's residuals only after
its down path (they are added to the skip connections and the mid block's input), so the UNet's down path and the
whole ControlNet do not depend on each other. Here the ControlNet runs on a second stream and the UNet's down path
on the pipeline's own at the same time; the UNet waits for the ControlNet only where it adds the residuals. The GPU
fills one network's idle multiprocessors (small kernels at low resolution, the tails of large ones, launch gaps)
with the other's work. The arithmetic is the same kernels on the same inputs: the images do not change.

    overlap = Overlap()                                           # what `cuda.compile_for_cuda` does
    pipe.unet = SplitUNet(pipe.unet, overlap, dynamic=False)      # the UNet compiled in two parts, around the wait
    pipe.controlnet.overlap = overlap                             # a QRControlNet: its network on the side stream

Only compiled engines overlap (the eager modules of an unwarmed shape run on one stream), and not with CUDA graphs.
"""

from __future__ import annotations

import functools

# Keyword arguments diffusers' UNet takes that the split forward does not handle; a call with any of them set runs
# the whole UNet (after the wait) instead.
UNSPLIT_ARGUMENTS = ("class_labels", "attention_mask", "cross_attention_kwargs", "added_cond_kwargs",
                     "down_intrablock_additional_residuals", "encoder_attention_mask")


class Overlap:
    """The side stream the ControlNet runs on, and the event the UNet waits for before it adds the residuals."""

    def __init__(self, stream=None):
        self._stream = stream  # made at the first use, on the device of the first call
        self.pending = None  # the event the ControlNet's last call recorded, until the UNet waits for it

    def stream(self, device):
        import torch

        if self._stream is None:
            self._stream = torch.cuda.Stream(device=device)
        return self._stream

    def begin(self, device):
        """Before the ControlNet's call: the side stream waits for the work already queued (its inputs)."""
        import torch

        side = self.stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        return side

    def end(self, side) -> None:
        """After the ControlNet's call: record where the side stream is, for the UNet to wait for."""
        self.pending = side.record_event()

    def wait(self) -> None:
        """Before the UNet adds the residuals: the pipeline's stream waits for the ControlNet's last call."""
        import torch

        if self.pending is not None:
            torch.cuda.current_stream().wait_event(self.pending)
            self.pending = None


def splittable(unet) -> bool:
    """Whether `unet` is a plain diffusers UNet2DConditionModel (SD1.5's, and LoRA-fused copies) that `down_path` and
    `up_path` compute exactly: no class or added embeddings, no encoder projection, no centred input."""
    config = unet.config
    return (type(unet).__name__ == "UNet2DConditionModel" and unet.class_embedding is None
            and config.addition_embed_type is None and unet.encoder_hid_proj is None
            and not config.center_input_sample)


def down_path(unet, sample, timestep, encoder_hidden_states, timestep_cond=None):
    """The UNet's time embedding, input convolution and down blocks: (sample, embedding, skip connections)."""
    emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), timestep_cond)
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    sample = unet.conv_in(sample)
    skips = (sample,)
    for block in unet.down_blocks:
        if getattr(block, "has_cross_attention", False):
            sample, res = block(hidden_states=sample, temb=emb, encoder_hidden_states=encoder_hidden_states)
        else:
            sample, res = block(hidden_states=sample, temb=emb)
        skips += res
    return sample, emb, skips


def up_path(unet, sample, emb, skips, encoder_hidden_states, down_residuals, mid_residual):
    """The rest of the UNet: the ControlNet's residuals added, the mid block, the up blocks and the output."""
    skips = tuple(skip + residual for skip, residual in zip(skips, down_residuals, strict=True))
    if getattr(unet.mid_block, "has_cross_attention", False):
        sample = unet.mid_block(sample, emb, encoder_hidden_states=encoder_hidden_states)
    else:
        sample = unet.mid_block(sample, emb)
    sample = sample + mid_residual
    # Upsample to the skip connections' sizes where the latents do not halve evenly (diffusers' forward does it too)
    uneven = any(dim % 2**unet.num_upsamplers for dim in skips[0].shape[-2:])
    for i, block in enumerate(unet.up_blocks):
        res, skips = skips[-len(block.resnets):], skips[: -len(block.resnets)]
        size = skips[-1].shape[2:] if uneven and i < len(unet.up_blocks) - 1 else None
        if getattr(block, "has_cross_attention", False):
            sample = block(hidden_states=sample, temb=emb, res_hidden_states_tuple=res,
                           encoder_hidden_states=encoder_hidden_states, upsample_size=size)
        else:
            sample = block(hidden_states=sample, temb=emb, res_hidden_states_tuple=res, upsample_size=size)
    if unet.conv_norm_out is not None:
        sample = unet.conv_act(unet.conv_norm_out(sample))
    return unet.conv_out(sample)


def _split_unet_class():
    import torch

    class SplitUNet(torch.nn.Module):
        """A UNet called as diffusers' is, run as `down_path`, the overlap's wait, then `up_path`, each compiled
        with `torch.compile(**compile_kwargs)` (none: eager, for tests).

        Like torch.compile's wrapper it keeps the UNet as `_orig_mod` (an unwarmed shape draws with it eagerly,
        `diffusion.eager_modules`) and answers for it (`config`, `dtype`, ...). A call the split does not handle
        (`UNSPLIT_ARGUMENTS`, no ControlNet residuals, a UNet `splittable` refuses) runs the whole UNet, compiled the
        same way, after the wait.
        """

        def __init__(self, unet, overlap: Overlap, **compile_kwargs):
            super().__init__()
            self._orig_mod = unet

            def compiled(fn):
                return torch.compile(fn, **compile_kwargs) if compile_kwargs else fn

            # Outside the module tree (`__dict__`): the UNet is `_orig_mod` once, for `.to()`, `.modules()`, saving
            self.__dict__.update(_down=compiled(functools.partial(down_path, unet)),
                                 _up=compiled(functools.partial(up_path, unet)), _whole=compiled(unet),
                                 _overlap=overlap, _splits=splittable(unet))

        def __getattr__(self, name: str):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["_orig_mod"], name)

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None,
                    down_block_additional_residuals=None, mid_block_additional_residual=None, return_dict=True,
                    **kwargs):
            if (not self._splits or down_block_additional_residuals is None or mid_block_additional_residual is None
                    or any(kwargs.get(name) is not None for name in UNSPLIT_ARGUMENTS)):
                self._overlap.wait()
                return self._whole(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond,
                                   down_block_additional_residuals=down_block_additional_residuals,
                                   mid_block_additional_residual=mid_block_additional_residual,
                                   return_dict=return_dict, **kwargs)
            sample, emb, skips = self._down(sample, timestep, encoder_hidden_states, timestep_cond)
            self._overlap.wait()
            sample = self._up(sample, emb, skips, encoder_hidden_states, tuple(down_block_additional_residuals),
                              mid_block_additional_residual)
            if not return_dict:
                return (sample,)
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=sample)

    return SplitUNet


@functools.cache
def split_unet_class():
    """`SplitUNet` (made on first use: torch is imported only by the engines that need it)."""
    return _split_unet_class()


def split_unet(unet, overlap: Overlap, **compile_kwargs):
    """`unet` as a `SplitUNet` sharing `overlap` with the ControlNet, its parts compiled with `compile_kwargs`."""
    return split_unet_class()(unet, overlap, **compile_kwargs)
