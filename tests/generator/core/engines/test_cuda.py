"""CUDA speed-ups that keep the images: the attention preference (checked on the CPU, where it is a no-op)."""

from __future__ import annotations

import pytest

from generator.core.engines import cuda
from generator.core.engines.parameters import (
    ATTENTION_CHOICES,
    GenerationParams,
)
from tests.generator.core.engines.conftest import FAST


class TestAttention:
    def test_pytorchs_choice_is_the_default_and_cpu_images_do_not_change(self, tiny_engine, control, monkeypatch):
        assert tiny_engine.attention == "default" and ATTENTION_CHOICES == ("cudnn", "default")
        params = GenerationParams(**FAST)
        images = {}
        for attention in ATTENTION_CHOICES:
            monkeypatch.setattr(tiny_engine, "attention", attention)
            images[attention] = [im.tobytes() for im in tiny_engine.generate(control, params, seeds=[1, 2])]
        assert images["cudnn"] == images["default"]  # no context on CPU: the very same computation

    def test_on_cuda_it_puts_cudnn_first_and_restores_the_order(self):
        import torch
        from torch.nn.attention import SDPBackend

        before = list(torch._C._get_sdp_priority_order())
        with cuda.attention_context("cpu", "cudnn"):
            assert list(torch._C._get_sdp_priority_order()) == before  # CPU: untouched
        with cuda.attention_context("cuda", "default"):
            assert list(torch._C._get_sdp_priority_order()) == before
        with cuda.attention_context("cuda:0", "cudnn"):  # only flags: runs without a GPU
            order = list(torch._C._get_sdp_priority_order())
            assert order[:4] == [int(b) for b in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                                                  SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH)]
            assert torch.backends.cuda.cudnn_sdp_enabled() and torch.backends.cuda.flash_sdp_enabled()
        assert list(torch._C._get_sdp_priority_order()) == before

    def test_torch_fills_in_its_default_order_before_the_first_context(self, monkeypatch):
        import torch

        # Else the context would save torch's not-yet-filled order (flash first) and leave it behind on exit.
        calls = []
        monkeypatch.setattr(torch, "_fused_sdp_choice", lambda q, k, v: calls.append(q.device.type) or 0)
        monkeypatch.setattr(cuda, "_sdpa_order_ready", set())
        cuda._initialise_sdpa_priority("cpu")
        cuda._initialise_sdpa_priority("cpu")
        assert calls == ["cpu"]  # once per device and process
        monkeypatch.setattr(torch, "_fused_sdp_choice", lambda *a: 1 / 0)
        cuda._initialise_sdpa_priority("meta")  # a failure is logged, never raised

    def test_an_unknown_choice_is_refused(self, tiny_engine, control, monkeypatch):
        monkeypatch.setattr(tiny_engine, "attention", "xformers")
        with pytest.raises(ValueError, match="Unknown attention “xformers”"):
            tiny_engine.generate(control, GenerationParams(**FAST), seeds=[0])


def sdpa_bshd(q, k, v):
    """A stand-in for FA4 on the CPU: the same (batch, tokens, heads, head size) layout, through SDPA."""
    import torch

    return torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)


class TestFlashAttention4:
    def test_it_is_not_used_off_cuda_or_without_the_package(self):
        assert cuda.fa4_usable("cpu") is False
        assert cuda.fa4_kernel() is None  # flash-attn-4 is not installed here

    @pytest.mark.parametrize(("capability", "kernel", "expected"), [
        ((9, 0), object(), True),    # Hopper with flash-attn-4: FA4
        ((9, 0), None, False),       # Hopper without it: cuDNN as before
        ((8, 0), object(), False),   # an A100: FA4's sm90 kernel is not for it (and unmeasured)
        ((10, 0), object(), False),  # Blackwell: not measured
    ])
    def test_it_needs_hopper_and_flash_attn_4(self, monkeypatch, capability, kernel, expected):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: capability)
        monkeypatch.setattr(cuda, "fa4_kernel", lambda: kernel)
        assert cuda.fa4_usable("cuda:0") is expected

    def test_routed_self_attention_computes_what_sdpa_does(self, tiny_engine):
        import copy

        import torch

        unet = copy.deepcopy(tiny_engine.txt2img.unet)
        unet.fuse_qkv_projections()
        torch.manual_seed(0)
        sample, text = torch.randn(2, 4, 16, 16), torch.randn(2, 77, 32)
        with torch.no_grad():
            expected = unet(sample, 10, text).sample
        calls = []

        def kernel(q, k, v):
            calls.append(q.shape)
            return sdpa_bshd(q, k, v)

        # The tiny UNet's heads are 8 wide at its attention level (SD1.5's 96x96 level: 40).
        assert cuda.route_self_attention(unet, kernel, head_size=8) == 4
        with torch.no_grad():
            got = unet(sample, 10, text).sample
        assert len(calls) == 4 and all(shape[1:] == (8 * 8, 4, 8) for shape in calls)  # self-attention only
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    def test_unfused_projections_are_routed_too(self, tiny_engine):
        import copy

        import torch

        # diffusers does not fuse the ControlNet's QKV projections: its self-attention goes through to_q/k/v.
        controlnet = copy.deepcopy(tiny_engine.txt2img.controlnet)
        controlnet.fuse_qkv_projections()
        torch.manual_seed(0)
        args = (torch.randn(2, 4, 16, 16), 10, torch.randn(2, 77, 32), torch.randn(2, 3, 128, 128))
        with torch.no_grad():
            expected = controlnet(*args, return_dict=False)
        assert cuda.route_self_attention(controlnet, sdpa_bshd, head_size=8) == 2
        with torch.no_grad():
            got = controlnet(*args, return_dict=False)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    def test_only_the_chosen_head_size_is_routed_and_only_once(self, tiny_engine):
        import copy

        unet = copy.deepcopy(tiny_engine.txt2img.unet)
        unet.fuse_qkv_projections()
        assert cuda.route_self_attention(unet, sdpa_bshd, head_size=40) == 0
        assert cuda.route_self_attention(unet, sdpa_bshd, head_size=8) == 4
        assert cuda.route_self_attention(unet, sdpa_bshd, head_size=8) == 0  # once


class TestCompileDecoder:
    def test_it_compiles_the_decoder_again_from_the_module_not_a_compiled_copy(self, tiny_engine, monkeypatch):
        import copy

        import torch

        vae = copy.deepcopy(tiny_engine.txt2img.vae)
        module = vae.decoder
        modes: list = []
        real = torch.compile
        monkeypatch.setattr(torch, "compile", lambda model, **kw: modes.append(kw.get("mode")) or real(model, **kw))
        cuda.compile_decoder(vae)
        first = vae.decoder
        cuda.compile_decoder(vae, cuda_graphs=True)
        cuda.compile_decoder(vae, autotune=True)
        cuda.compile_decoder(vae, cuda_graphs=True, autotune=True)
        assert modes == [None, "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune"]
        assert first._orig_mod is module and vae.decoder._orig_mod is module  # never a compiled module compiled

    def test_a_one_gpu_engine_records_the_decoder_as_graphs_a_split_engines_replica_does_not(self, tiny_engine,
                                                                                             monkeypatch):
        import copy

        import torch

        monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)  # nothing compiled here: who asks what
        asked: list[tuple[bool, bool]] = []
        monkeypatch.setattr(cuda, "compile_decoder",
                            lambda vae, cuda_graphs=False, autotune=False: asked.append((cuda_graphs, autotune)))
        for graphs in (False, True):  # load_engine: a one-GPU engine; load_split_engine's replicas (cuda_graphs)
            cuda.compile_for_cuda(copy.deepcopy(tiny_engine.txt2img), cuda_graphs=graphs, fa4=False)
        cuda.compile_for_cuda(copy.deepcopy(tiny_engine.txt2img), fa4=False, decoder_autotune=True)  # the setting
        assert asked == [(True, False), (False, False), (True, True)]
