"""The UNet in two parts around the ControlNet's wait: exactly diffusers' forward, split where the residuals join."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from generator.core.engines import overlap
from generator.core.engines.diffusion import Shape, engine_from_pipeline
from generator.core.engines.parameters import GenerationParams
from tests.generator.core.engines.conftest import FAST
from tests.generator.core.engines.test_guidance import attention_unet


class Waits(overlap.Overlap):
    """An overlap whose wait only notes when it came (no CUDA here)."""

    def __init__(self, calls: list):
        super().__init__()
        self.calls = calls

    def wait(self) -> None:
        self.calls.append("wait")


def unet_inputs(unet, batch: int = 2, size: int = 16, seed: int = 1) -> tuple:
    """A ControlNet-guided UNet call's inputs: latents, timestep, prompts, and residuals of the right shapes."""
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 4, size, size, generator=generator)
    prompts = torch.randn(batch, 77, 32, generator=generator)
    with torch.no_grad():
        _, _, skips = overlap.down_path(unet, sample, torch.tensor(500), prompts)
        mid = unet.mid_block(skips[-1] * 0 + torch.randn(skips[-1].shape, generator=generator),
                             unet.time_embedding(unet.get_time_embed(sample, torch.tensor(500))), prompts)
    down = [torch.randn(s.shape, generator=generator) for s in skips]
    return sample, torch.tensor(500), prompts, down, torch.randn(mid.shape, generator=generator)


class TestSplitUNet:
    @pytest.mark.parametrize("size", [16, 15])  # 15: latents that do not halve evenly (upsample sizes passed on)
    @pytest.mark.parametrize("return_dict", [True, False])
    def test_it_computes_exactly_what_diffusers_forward_does(self, size, return_dict):
        unet = attention_unet()
        sample, t, prompts, down, mid = unet_inputs(unet, size=size)
        split = overlap.split_unet(unet, Waits([]))
        with torch.no_grad():
            expected = unet(sample, t, prompts, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample
            got = split(sample, t, encoder_hidden_states=prompts, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid, return_dict=return_dict)
        got = got.sample if return_dict else got[0]
        assert got.shape == expected.shape and torch.equal(got, expected)

    def test_it_waits_for_the_controlnet_between_the_down_path_and_the_residuals(self):
        unet = attention_unet()
        calls: list = []
        unet.down_blocks[-1].register_forward_hook(lambda *_: calls.append("down path done"))
        unet.mid_block.register_forward_pre_hook(lambda *_: calls.append("mid block"))
        sample, t, prompts, down, mid = unet_inputs(unet)
        calls.clear()
        with torch.no_grad():
            overlap.split_unet(unet, Waits(calls))(sample, t, prompts, down_block_additional_residuals=down,
                                                   mid_block_additional_residual=mid)
        assert calls == ["down path done", "wait", "mid block"]

    def test_a_call_it_does_not_split_waits_then_runs_the_whole_unet(self):
        unet = attention_unet()
        calls: list = []
        sample, t, prompts, down, mid = unet_inputs(unet)
        split = overlap.split_unet(unet, Waits(calls))
        with torch.no_grad():
            whole = split(sample, t, prompts, cross_attention_kwargs={"scale": 1.0},
                          down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
            plain = split(sample, t, prompts).sample  # no ControlNet residuals
            assert torch.equal(whole, unet(sample, t, prompts, down_block_additional_residuals=down,
                                           mid_block_additional_residual=mid).sample)
            assert torch.equal(plain, unet(sample, t, prompts).sample)
        assert calls == ["wait", "wait"]

    def test_a_unet_with_a_class_embedding_is_never_split(self):
        unet = attention_unet(num_class_embeds=3)
        assert not overlap.splittable(unet) and overlap.splittable(attention_unet())

    def test_it_answers_for_the_unet_and_holds_it_once(self):
        unet = attention_unet()
        split = overlap.split_unet(unet, Waits([]))
        assert split._orig_mod is unet
        assert split.config is unet.config and split.dtype == unet.dtype and split.device == unet.device
        assert len(list(split.parameters())) == len(list(unet.parameters()))
        assert sum(1 for _ in split.modules()) == sum(1 for _ in unet.modules()) + 1
        with pytest.raises(AttributeError):
            _ = split.not_an_attribute

    def test_its_parts_compile_to_the_same_output(self):
        torch._dynamo.reset()
        unet = attention_unet()
        sample, t, prompts, down, mid = unet_inputs(unet)
        split = overlap.split_unet(unet, Waits([]), backend="eager", dynamic=False)
        with torch.no_grad():
            got = split(sample, t, prompts, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid).sample
            expected = unet(sample, t, prompts, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample
        assert torch.equal(got, expected)


def test_an_engine_with_the_split_unet_draws_the_same_images(tiny_engine, control):
    # The tiny preset through the pipeline: the split UNet (and a ControlNet holding the overlap, which on the CPU
    # never leaves the one stream) gives the same pixels as the plain UNet.
    pipe = copy.copy(tiny_engine.txt2img)
    components = dict(pipe.components)
    controlnet = copy.copy(components["controlnet"])
    controlnet.overlap = overlap.Overlap()
    components.update(unet=overlap.split_unet(components["unet"], controlnet.overlap), controlnet=controlnet)
    from diffusers import StableDiffusionControlNetPipeline

    engine = engine_from_pipeline(StableDiffusionControlNetPipeline(**components), tiny_engine.spec)
    params = GenerationParams(**FAST, guidance_scale=3.5)
    engine.warmed.add(Shape.of(params, 2))  # a "compiled" engine (it has `_orig_mod`) draws unwarmed shapes eagerly
    unet = engine.txt2img.unet
    down_calls: list = []
    down = unet._down
    unet.__dict__["_down"] = lambda *args: down_calls.append(1) or down(*args)
    plain = tiny_engine.generate(control, params, [7, 8])
    split = engine.generate(control, params, [7, 8])
    assert [np.asarray(a).tolist() for a in plain] == [np.asarray(b).tolist() for b in split]
    assert isinstance(unet, overlap.split_unet_class()) and len(down_calls) == FAST["steps"]


def test_compile_for_cuda_splits_the_unet_and_hands_the_controlnet_its_overlap(tiny_spec, control, monkeypatch):
    # compile_for_cuda's own path on the CPU (Inductor swapped for dynamo's eager backend to keep it quick): the
    # split UNet's compiled parts and the compiled ControlNet draw what the same recipe draws with the UNet whole.
    from generator.core.engines import cuda, loading

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: compile_(fn, backend="eager", dynamic=False))
    torch._dynamo.reset()
    params = GenerationParams(**FAST, guidance_scale=3.5)
    drawn = {}
    for split in (False, True):
        pipe = loading.load_engine(tiny_spec, device="cpu", warm_up=False).txt2img
        cuda.compile_for_cuda(pipe, fa4=False, overlap=split)
        engine = engine_from_pipeline(pipe, tiny_spec)
        engine.warmed.add(Shape.of(params, 2))
        drawn[split] = [np.asarray(image).tolist() for image in engine.generate(control, params, [3, 4])]
        assert isinstance(pipe.unet, overlap.split_unet_class()) == split
        assert pipe.controlnet.overlap is getattr(pipe.unet, "_overlap", None)
        assert (pipe.controlnet.overlap is None) != split
    assert drawn[True] == drawn[False]
    pipe = loading.load_engine(tiny_spec, device="cpu", warm_up=False).txt2img
    cuda.compile_for_cuda(pipe, cuda_graphs=True, fa4=False)  # graph trees record one stream: the UNet stays whole
    assert pipe.controlnet.overlap is None and not isinstance(pipe.unet, overlap.split_unet_class())
