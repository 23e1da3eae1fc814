"""Nearest-neighbour 2x upsampling followed by a 3x3 convolution, computed at the input's resolution.

The UNet's three up blocks and the VAE decoder's three up blocks end in diffusers' `Upsample2D`: copy every pixel
into a 2x2 square, then convolve with a 3x3 kernel. Each output pixel then sees only a 2x2 window of input pixels,
whatever its position in its square (its "phase"); the 3x3 taps that fall on the same input pixel can be summed
once. So the same result is a 2x2 convolution of the input with four kernels (one per phase), interleaved: 16
multiply-adds per input pixel and channel pair instead of 36, and no upsampled copy in memory. Which taps fold
together, for rows (columns alike), reading input rows i-1, i for phase 0 and i, i+1 for phase 1:

    phase 0 (output row 2i):   row i-1 <- tap 0;       row i   <- taps 1 + 2
    phase 1 (output row 2i+1): row i   <- taps 0 + 1;  row i+1 <- tap 2

The folded kernels are summed in float64 from the layer's own weights and rounded once to its dtype, so results
differ from the original only by that rounding (the difference fp16 already makes between kernels).
"""

from __future__ import annotations

from functools import cache

# FOLD[phase][window row][tap]: which of the 3x3 kernel's rows (or columns) a 2x2 window row sums, per phase
FOLD = (((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))


def folded_weight(weight):
    """The four phases' 2x2 kernels of a 3x3 convolution after nearest 2x upsampling.

    Args:
        weight (`torch.Tensor`): the convolution's kernel, out x in x 3 x 3.

    Returns:
        A `torch.Tensor` of 4 * out x in x 2 x 2, the phases stacked along the output channels in the order (row
        phase, column phase) (0, 0), (0, 1), (1, 0), (1, 1); summed in float64, in `weight`'s dtype and device.
    """
    import torch

    fold = torch.tensor(FOLD, dtype=torch.float64)  # (phase, window row, tap)
    kernels = torch.einsum("apy,bqx,oiyx->aboipq", fold, fold, weight.detach().to("cpu", torch.float64))
    return kernels.reshape(4 * weight.shape[0], weight.shape[1], 2, 2).to(weight.device, weight.dtype)


def foldable(module) -> bool:
    """Whether `module` is a diffusers `Upsample2D` this file can fold: nearest 2x interpolation, then a 3x3
    convolution with zero padding 1 and stride 1, no norm, no transposed convolution."""
    conv = getattr(module, "conv", None)
    return (
        type(module).__name__ == "Upsample2D"
        and module.interpolate
        and module.use_conv
        and not module.use_conv_transpose
        and module.norm is None
        and conv is not None
        and tuple(conv.kernel_size) == (3, 3)
        and tuple(conv.padding) == (1, 1)
        and conv.padding_mode == "zeros"
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and conv.groups == 1
    )


def fold_upsamplers(model) -> int:
    """Replace every foldable `Upsample2D` inside `model` by a `FoldedUpsample` around it, in place.

    Args:
        model (`torch.nn.Module`): a UNet, a VAE, or any module holding diffusers' upsampling layers.

    Returns:
        How many layers it replaced (none again on a model already folded; `model` itself is never replaced).
    """
    folded_class = folded_upsample_class()
    found = [(name, module) for name, module in model.named_modules() if name and foldable(module)]
    folded = 0
    for name, module in found:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        if not isinstance(owner, folded_class):  # a folded layer's own original
            setattr(owner, child, folded_class(module))
            folded += 1
    return folded


@cache
def folded_upsample_class():
    import torch
    from torch import nn

    class FoldedUpsample(nn.Module):
        """An `Upsample2D` computed as a 2x2 convolution at the input's resolution and an interleave (see the
        module's docstring). The original layer stays inside for calls that ask for another output size."""

        def __init__(self, upsample):
            super().__init__()
            self.original = upsample
            conv = upsample.conv
            self.folded = nn.Conv2d(conv.in_channels, 4 * conv.out_channels, kernel_size=2, padding=1,
                                    bias=conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
            with torch.no_grad():
                self.folded.weight.copy_(folded_weight(conv.weight))
                if conv.bias is not None:
                    self.folded.bias.copy_(conv.bias.repeat(4))
            self.folded.requires_grad_(False)

        def forward(self, hidden_states, output_size=None, *args, **kwargs):
            batch, _, height, width = hidden_states.shape
            if args or kwargs or (output_size is not None and tuple(output_size) != (2 * height, 2 * width)):
                return self.original(hidden_states, output_size, *args, **kwargs)
            # Phase (a, b) of output pixel (i, j), at (2i + a, 2j + b), is position (i + a, j + b) of its channel
            # group: the 2x2 convolution with padding 1 gives (H + 1) x (W + 1) positions.
            phases = self.folded(hidden_states).unflatten(1, (2, 2, -1))  # (N, row phase, col phase, C, H+1, W+1)
            rows = [
                torch.stack([phases[:, a, b, :, a:a + height, b:b + width] for b in range(2)], dim=-1)
                for a in range(2)
            ]  # each (N, C, H, W, column phase)
            out = torch.stack(rows, dim=3).reshape(batch, -1, 2 * height, 2 * width)  # (N, C, H, a, W, b)
            # channels_last in, channels_last out, as interpolation and the convolution keep it (a 1x1 input is both)
            if not hidden_states.is_contiguous() and hidden_states.is_contiguous(memory_format=torch.channels_last):
                out = out.contiguous(memory_format=torch.channels_last)
            return out

    return FoldedUpsample
