"""Classifier-free guidance without doing its shared work twice.

With guidance the pipeline runs the UNet and the ControlNet on `torch.cat([latents] * 2)` at one timestep, the
unconditional prompt's half and the conditional one's. Until a layer reads the prompts (the first cross-attention)
both halves compute exactly the same thing: the input convolution, the first ResNet block and the first transformer
block's self-attention, at the largest resolution, where a self-attention over 96x96 tokens is the costliest layer
there is. Here those layers run on one half and their output is repeated, so the rest of the network sees the same
tensors as before (up to the rounding of a kernel picked for another batch size).

    share_halves(unet)                 # once, what `diffusion.engine_from_pipeline` does for every engine
    with halves_shared(pipe, True):    # around a call that runs with classifier-free guidance
        pipe(...)

The layers only run on one half inside `halves_shared(..., True)`: a call without guidance (the few-step preset, a
guidance scale of 1) has nothing to share. Hooks leave the modules' names and weights as they were (saving, loading
and LoRA fusion see the same model), and torch.compile traces them into the graph; it guards on `SHARED`, so a call
with the other setting compiles its own graph rather than replaying this one.
"""

from __future__ import annotations

from contextlib import contextmanager

SHARED = "qart_shared_halves"  # the attribute a hooked layer reads: run on one half (True) or as usual (False)


def shared_layers(model) -> list:
    """The layers of `model` (a diffusers UNet or ControlNet) that see the same input in both guidance halves and
    cost enough to be worth halving: the first down block's first ResNet block and, where that block has
    attention, its first transformer block's self-attention."""
    blocks = getattr(model, "down_blocks", None)
    if not blocks:
        return []
    first = blocks[0]
    layers = [first.resnets[0]]
    attentions = getattr(first, "attentions", None)
    if attentions:
        transformer = attentions[0].transformer_blocks[0]
        if not transformer.only_cross_attention and not transformer.attn1.is_cross_attention:
            layers.append(transformer.attn1)
    return layers


def _halve(module, args: tuple, kwargs: dict):
    if not getattr(module, SHARED, False):
        return None
    batch = args[0].shape[0]
    if batch % 2:
        raise ValueError(f"Shared guidance halves need an even batch, got {batch}.")

    def half(value):
        is_batched = getattr(value, "ndim", 0) > 0 and value.shape[0] == batch
        return value[: batch // 2] if is_batched else value

    return tuple(half(a) for a in args), {k: half(v) for k, v in kwargs.items()}


def _repeat(module, _args: tuple, _kwargs: dict, output):
    if not getattr(module, SHARED, False):
        return None
    import torch

    return torch.cat([output, output])


def share_halves(model) -> int:
    """Hook `shared_layers(model)` so that inside `halves_shared(..., True)` they run on one half of the batch.
    Returns how many layers it hooked (none again on a model already hooked)."""
    hooked = 0
    for layer in shared_layers(model):
        if hasattr(layer, SHARED):
            continue
        setattr(layer, SHARED, False)
        layer.register_forward_pre_hook(_halve, with_kwargs=True)
        layer.register_forward_hook(_repeat, with_kwargs=True)
        hooked += 1
    return hooked


@contextmanager
def halves_shared(pipe, guided: bool):
    """While the block runs, the hooked layers of `pipe`'s UNet and ControlNet run on one half of the batch when
    `guided` (the call uses classifier-free guidance, so the halves are equal), on the whole batch otherwise.

    A UNet with a guidance embedding (`time_cond_proj_dim`, LCM-distilled) never runs guidance in diffusers, whatever
    the scale: its batch is not doubled, so nothing is shared; nor with a ControlNet that pools its conditions
    (diffusers then runs it on the conditional half alone)."""
    guided = guided and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None
    # A ControlNet pooling its conditions runs in guess mode in diffusers: on the conditional half only.
    guided = guided and not getattr(getattr(pipe.controlnet, "config", None), "global_pool_conditions", False)
    layers = [m for model in (pipe.unet, pipe.controlnet) for m in model.modules() if hasattr(m, SHARED)]
    before = [getattr(layer, SHARED) for layer in layers]
    for layer in layers:
        setattr(layer, SHARED, guided)
    try:
        yield
    finally:
        for layer, value in zip(layers, before, strict=True):
            setattr(layer, SHARED, value)
