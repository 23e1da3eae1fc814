"""bench/fp8.py: variant P8's FP8 matrix products (torchao), measured on an H200 and kept out of the product."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fp8  # noqa: E402


@pytest.fixture(scope="module")
def unet():
    """A toy-size SD1.5 UNet (the benchmark's configs), built before `fake_torchao` hides the real torchao module
    from diffusers' import checks."""
    from diffusers import UNet2DConditionModel
    from sd15 import TINY

    return UNet2DConditionModel(**TINY["unet"])


class TestFp8:
    """The benchmark's FP8 products: where they can run, and which layers they take."""

    @pytest.fixture
    def fake_torchao(self, monkeypatch):
        """torchao's quantization module as the calls it receives (torchao refuses FP8 off an FP8-capable GPU)."""
        import sys
        import types

        calls = []
        module = types.ModuleType("torchao.quantization")
        module.PerTensor = lambda: "per-tensor"
        module.Float8DynamicActivationFloat8WeightConfig = lambda granularity, set_inductor_config: (
            "fp8 dynamic", granularity, set_inductor_config)
        module.quantize_ = lambda model, config, filter_fn: calls.append(
            (config, [name for name, m in model.named_modules() if filter_fn(m, name)]))
        monkeypatch.setitem(sys.modules, "torchao", types.ModuleType("torchao"))
        monkeypatch.setitem(sys.modules, "torchao.quantization", module)
        return calls

    def test_it_says_why_it_cannot_run(self, monkeypatch):
        import torch

        assert fp8.fp8_unusable("cpu") == "FP8 precision needs a CUDA GPU; this engine runs on cpu."
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: (8, 0))
        assert "compute capability 8.9 or newer" in fp8.fp8_unusable("cuda:0")
        assert "has 8.0" in fp8.fp8_unusable("cuda:0")
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: (9, 0))
        assert fp8.fp8_unusable("cuda:0").startswith("FP8 precision needs torchao")  # not installed here

    def test_a_hopper_gpu_with_torchao_can(self, monkeypatch, fake_torchao):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: (9, 0))
        assert fp8.fp8_unusable("cuda:0") is None

    def test_only_linear_layers_in_multiples_of_16_are_quantized(self, fake_torchao):
        import torch

        model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Conv2d(16, 16, 1), torch.nn.Linear(64, 24),
                                    torch.nn.Linear(48, 16))
        assert fp8.quantize_fp8(model) == 2
        # Inductor's settings are left alone: torchao's would autotune every kernel of every later compile.
        assert fake_torchao == [(("fp8 dynamic", "per-tensor", False), ["0", "3"])]

    def test_the_unets_attention_and_feed_forward_layers_are_eligible(self, unet, fake_torchao):
        count = fp8.quantize_fp8(unet)
        (_config, names), = fake_torchao
        assert count == len(names) > 0
        assert any(name.endswith("attn1.to_q") for name in names)
        assert any(name.endswith("ff.net.2") for name in names)
        assert not any("conv" in name for name in names)
