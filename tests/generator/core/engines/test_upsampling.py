"""generator.core.engines.upsampling: nearest 2x upsampling and a 3x3 convolution, folded into a 2x2 convolution."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from diffusers.models.upsampling import Upsample2D

from generator.core.engines import loading, upsampling
from tests.generator.core.engines.conftest import FAST


def folded_copy(layer) -> torch.nn.Module:
    holder = torch.nn.Sequential(copy.deepcopy(layer))
    assert upsampling.fold_upsamplers(holder) == 1
    return holder[0]


class TestFoldedUpsample:
    @pytest.mark.parametrize("shape", [(2, 8, 5, 7), (1, 4, 1, 1), (3, 6, 12, 12)])
    @pytest.mark.parametrize("channels_last", [False, True])
    def test_it_computes_what_diffusers_layer_computes(self, shape, channels_last):
        torch.manual_seed(0)
        layer = Upsample2D(shape[1], use_conv=True, out_channels=5).double()
        folded = folded_copy(layer)
        x = torch.randn(shape, dtype=torch.float64)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        expected, got = layer(x), folded(x)
        assert got.shape == expected.shape == (shape[0], 5, 2 * shape[2], 2 * shape[3])
        # float64 from float64 weights: the same sums in another order, borders and corners included
        assert (got - expected).abs().max().item() < 1e-12
        assert got.stride() == expected.stride()  # the layout the next layer would have had

    def test_its_kernels_sum_the_taps_each_phase_reads(self):
        weight = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3)  # taps 0..8, row by row
        kernels = upsampling.folded_weight(weight).reshape(2, 2, 2, 2)  # (row phase, column phase, window rows, cols)
        # row phase 0 reads input rows i-1 (tap row 0) and i (tap rows 1 + 2); column phase 1 reads columns j (tap
        # columns 0 + 1) and j+1 (tap column 2)
        assert kernels[0, 1].tolist() == [[0 + 1, 2], [3 + 4 + 6 + 7, 5 + 8]]
        assert kernels[1, 0].tolist() == [[0 + 3, 1 + 2 + 4 + 5], [6, 7 + 8]]
        assert kernels.sum().item() == 4 * weight.sum().item()  # each phase uses every tap once

    def test_another_output_size_goes_through_the_original_layer(self):
        torch.manual_seed(1)
        layer = Upsample2D(4, use_conv=True).double()
        folded = folded_copy(layer)
        x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
        assert torch.equal(folded(x, output_size=(11, 10)), layer(x, output_size=(11, 10)))
        assert (folded(x, output_size=(10, 10)) - layer(x)).abs().max().item() < 1e-12  # 2x asked for by name

    @pytest.mark.parametrize("layer", [
        Upsample2D(4, use_conv=False),
        Upsample2D(4, use_conv_transpose=True),
        Upsample2D(4, use_conv=True, kernel_size=1, padding=0),
        Upsample2D(4, use_conv=True, interpolate=False),
        Upsample2D(4, use_conv=True, norm_type="rms_norm", eps=1e-6, elementwise_affine=True),
    ], ids=["no conv", "transposed", "1x1", "no interpolation", "norm"])
    def test_layers_it_cannot_fold_are_left_as_they_are(self, layer):
        holder = torch.nn.Sequential(layer)
        assert not upsampling.foldable(layer)
        assert upsampling.fold_upsamplers(holder) == 0 and holder[0] is layer

    def test_only_zero_padding_folds(self):
        layer = Upsample2D(4, use_conv=True)
        assert upsampling.foldable(layer)
        layer.conv.padding_mode = "reflect"  # the upsampled copy's edge rows would be read again, not zeros
        assert not upsampling.foldable(layer)

    def test_a_layer_alone_is_not_replaced(self):
        layer = Upsample2D(4, use_conv=True)
        assert upsampling.fold_upsamplers(layer) == 0  # only what a model holds can be swapped in place


class TestFoldUpsamplers:
    def test_it_folds_every_upsampling_layer_of_the_unet_and_vae_once(self, tiny_engine):
        for model in (tiny_engine.txt2img.unet, tiny_engine.txt2img.vae):
            layers = sum(type(m).__name__ == "Upsample2D" for m in model.modules())
            model = copy.deepcopy(model)
            assert layers > 0 and upsampling.fold_upsamplers(model) == layers
            assert upsampling.fold_upsamplers(model) == 0  # the originals kept inside are not folded again
            assert sum(type(m).__name__ == "FoldedUpsample" for m in model.modules()) == layers

    def test_the_engine_draws_the_same_images_folded(self, tiny_spec, tiny_engine, control):
        from generator.core.engines.parameters import GenerationParams

        folded = loading.load_engine(tiny_spec, device="cpu", warm_up=False, aesthetic=False)
        assert upsampling.fold_upsamplers(folded.txt2img.unet) > 0
        assert upsampling.fold_upsamplers(folded.txt2img.vae) > 0
        params = GenerationParams(**FAST)
        ours = folded.generate(control, params, seeds=[1, 2])
        theirs = tiny_engine.generate(control, params, seeds=[1, 2])
        for a, b in zip(ours, theirs, strict=True):
            difference = np.abs(np.asarray(a, int) - np.asarray(b, int))
            assert difference.max() <= 1 and difference.mean() < 0.05  # float32 rounding of the folded taps
