"""Classifier-free guidance's shared layers: run on one half of the batch, the same output as on the whole batch."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from generator.core.engines import guidance
from generator.core.engines.parameters import GenerationParams
from tests.generator.core.engines.conftest import FAST


def attention_unet(**extra):
    """A toy SD1.5-like UNet whose first down block has attention (the tiny preset's first block has none)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8, **extra,
    ).eval()


class Pipe:
    """What `halves_shared` reads of a pipeline."""

    def __init__(self, unet, controlnet=None):
        self.unet, self.controlnet = unet, controlnet or torch.nn.Identity()


def guided_inputs(batch: int = 3):
    """A guidance call's UNet inputs: the latents twice over, two different prompts."""
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(batch, 4, 16, 16, generator=generator)
    prompts = torch.randn(2 * batch, 77, 32, generator=generator)
    return torch.cat([latents] * 2), prompts


@contextmanager
def batch_sizes(layers) -> Iterator[list[int]]:
    """The batch size each of `layers` runs at, in call order, while the block runs."""
    seen: list[int] = []
    handles = [layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0])) for layer in layers]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


class TestSharedLayers:
    def test_it_picks_the_first_resnet_and_self_attention(self):
        unet = attention_unet()
        first = unet.down_blocks[0]
        assert guidance.shared_layers(unet) == [first.resnets[0], first.attentions[0].transformer_blocks[0].attn1]

    def test_a_first_block_without_attention_shares_its_resnet_only(self, tiny_engine):
        unet = tiny_engine.txt2img.unet
        assert guidance.shared_layers(unet) == [unet.down_blocks[0].resnets[0]]
        assert guidance.shared_layers(torch.nn.Linear(2, 2)) == []

    def test_hooking_twice_hooks_once(self):
        unet = attention_unet()
        assert guidance.share_halves(unet) == 2
        assert guidance.share_halves(unet) == 0


class TestHalvesShared:
    def test_guided_output_is_the_whole_batchs_on_half_the_work(self):
        unet = attention_unet()
        sample, prompts = guided_inputs()
        with torch.no_grad():
            expected = unet(sample, 10, prompts).sample
            guidance.share_halves(unet)
            with batch_sizes(guidance.shared_layers(unet)) as seen, guidance.halves_shared(Pipe(unet), guided=True):
                shared = unet(sample, 10, prompts).sample
        assert seen == [3, 3]
        torch.testing.assert_close(shared, expected, rtol=1e-5, atol=1e-5)
        assert not getattr(guidance.shared_layers(unet)[0], guidance.SHARED)  # switched off after the block

    def test_unguided_calls_run_the_whole_batch(self):
        unet = attention_unet()
        guidance.share_halves(unet)
        sample = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(2))  # four different latents
        prompts = torch.randn(4, 77, 32)
        with torch.no_grad():
            expected = copy.deepcopy(unet)(sample, 10, prompts).sample
            with (batch_sizes(guidance.shared_layers(unet)) as seen,
                  guidance.halves_shared(Pipe(unet), guided=False)):
                out = unet(sample, 10, prompts).sample
        assert seen == [4, 4]
        torch.testing.assert_close(out, expected)

    def test_blocks_nest(self):
        # A block inside another's restores the setting it found, not "off".
        unet = attention_unet()
        guidance.share_halves(unet)
        layer = guidance.shared_layers(unet)[0]
        with guidance.halves_shared(Pipe(unet), guided=True):
            with guidance.halves_shared(Pipe(unet), guided=False):
                assert not getattr(layer, guidance.SHARED)
            assert getattr(layer, guidance.SHARED)
        assert not getattr(layer, guidance.SHARED)

    def test_a_guidance_embedded_unet_shares_nothing(self):
        # LCM-distilled UNets (time_cond_proj_dim) never double the batch in diffusers, whatever the guidance scale.
        unet = attention_unet(time_cond_proj_dim=8)
        guidance.share_halves(unet)
        with guidance.halves_shared(Pipe(unet), guided=True):
            assert not any(getattr(layer, guidance.SHARED) for layer in guidance.shared_layers(unet))

    def test_a_controlnet_pooling_its_conditions_shares_nothing(self):
        # diffusers runs such a ControlNet in guess mode: on the conditional half alone, so the halves differ.
        from types import SimpleNamespace

        unet = attention_unet()
        guidance.share_halves(unet)
        pooling = Pipe(unet, SimpleNamespace(config=SimpleNamespace(global_pool_conditions=True), modules=list))
        with guidance.halves_shared(pooling, guided=True):
            assert not any(getattr(layer, guidance.SHARED) for layer in guidance.shared_layers(unet))

    def test_an_odd_batch_says_so(self):
        unet = attention_unet()
        guidance.share_halves(unet)
        with guidance.halves_shared(Pipe(unet), guided=True), pytest.raises(ValueError, match="even batch"):
            unet(torch.randn(3, 4, 16, 16), 10, torch.randn(3, 77, 32))

    def test_a_compiled_unet_traces_each_setting_apart(self):
        # torch.compile guards on the switch: an unguided call must not replay the guided call's graph.
        unet = attention_unet()
        guidance.share_halves(unet)
        compiled = torch.compile(unet, backend="eager", dynamic=False)
        sample, prompts = guided_inputs()
        different = torch.randn_like(sample)
        with torch.no_grad():
            expected = unet(different, 10, prompts).sample
            with guidance.halves_shared(Pipe(compiled), guided=True):
                compiled(sample, 10, prompts)
            out = compiled(different, 10, prompts).sample
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


class TestEngine:
    def test_every_engine_shares_its_guided_halves(self, tiny_engine, control):
        unet, controlnet = tiny_engine.txt2img.unet, tiny_engine.txt2img.controlnet
        layers = guidance.shared_layers(unet) + guidance.shared_layers(controlnet)
        assert len(layers) == 2
        with batch_sizes(layers) as seen:
            tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2])
        assert seen and set(seen) == {2}  # the guided batch is 4
        with batch_sizes(layers) as seen:
            tiny_engine.generate(control, GenerationParams(**{**FAST, "guidance_scale": 1.0}), seeds=[1, 2])
        assert seen and set(seen) == {2}  # no guidance: the batch is the two seeds

    def test_images_stay_within_rounding_of_the_whole_batch(self, tiny_engine, control):
        params = GenerationParams(**FAST)
        shared = tiny_engine.generate(control, params, seeds=[5, 6])
        tiny_engine.shared_halves = False
        try:
            whole = tiny_engine.generate(control, params, seeds=[5, 6])
        finally:
            tiny_engine.shared_halves = True
        for a, b in zip(shared, whole, strict=True):
            assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 1
