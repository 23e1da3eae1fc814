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
        with pytest.raises(ValueError, match="Unknown attention 'xformers'"):
            tiny_engine.generate(control, GenerationParams(**FAST), seeds=[0])
