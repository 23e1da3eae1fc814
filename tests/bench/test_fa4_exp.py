"""bench/fa4_exp.py: FA4's softmax with part of its exponentials on the FMA units, measured on an H200 (bench/GPU.md,
thirteenth step). Only what runs without a GPU is tested here: which softmax a variant installs, that FA4's kernel
cache is emptied so the next call compiles it, and that a variant needing the CuTe DSL says so where it is missing."""

import json
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fa4_exp  # noqa: E402


@pytest.fixture
def fake_fa4(monkeypatch):
    """flash_attn.cute's interface (its in-memory kernel cache) and softmax (the Softmax class) as stand-ins."""

    def shipped(self, acc_S, is_first=False, check_inf=True):
        return "shipped"

    softmax = types.ModuleType("flash_attn.cute.softmax")
    softmax.Softmax = type("Softmax", (), {"online_softmax": shipped})
    interface = types.ModuleType("flash_attn.cute.interface")
    interface._flash_attn_fwd = lambda *args, **kwargs: None
    interface._flash_attn_fwd.compile_cache = {"a compiled kernel": object()}
    cute = types.ModuleType("flash_attn.cute")
    cute.interface, cute.softmax = interface, softmax
    package = types.ModuleType("flash_attn")
    package.cute = cute
    for name, module in (("flash_attn", package), ("flash_attn.cute", cute), ("flash_attn.cute.interface", interface),
                         ("flash_attn.cute.softmax", softmax)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(fa4_exp, "_original", None)
    return types.SimpleNamespace(softmax=softmax, interface=interface, shipped=shipped)


def test_a_variant_swaps_the_softmax_and_empties_the_kernel_cache(fake_fa4, monkeypatch):
    monkeypatch.setattr(fa4_exp, "cutlass", object())  # as where the DSL imports
    monkeypatch.setattr(fa4_exp, "online_softmax_mixed", "mixed", raising=False)

    fa4_exp.install("poly3-3of8")

    assert fake_fa4.softmax.Softmax.online_softmax == "mixed"
    assert (fa4_exp.FREQ, fa4_exp.RES, fa4_exp.DEGREE) == (8, 3, 3)  # what the traced kernel reads
    assert fake_fa4.interface._flash_attn_fwd.compile_cache == {}  # so the next call compiles the variant

    fake_fa4.interface._flash_attn_fwd.compile_cache["the variant's kernel"] = object()
    fa4_exp.install("mufu")

    assert fake_fa4.softmax.Softmax.online_softmax is fake_fa4.shipped
    assert fake_fa4.interface._flash_attn_fwd.compile_cache == {}


def test_without_the_dsl_a_variant_is_refused_and_the_shipped_softmax_stays(fake_fa4, monkeypatch):
    monkeypatch.setattr(fa4_exp, "cutlass", None)

    with pytest.raises(RuntimeError, match="CuTe DSL"):
        fa4_exp.install("poly3-1of4")

    assert fake_fa4.softmax.Softmax.online_softmax is fake_fa4.shipped


def test_every_variant_is_a_share_of_each_row_and_a_known_degree():
    for name, setting in fa4_exp.VARIANTS.items():
        if setting is None:
            assert name == "mufu"
            continue
        freq, res, degree = setting
        assert 0 < res < freq and degree in (2, 3), name
        assert name == f"poly{degree}-{res}of{freq}" or name == f"poly{degree}-1of{freq // res}", name


def test_promising_takes_the_variants_faster_alone_with_the_shipped_error(tmp_path):
    def entry(name, ms, error):
        return {"variant": name, "median_ms": ms, "error": error}

    measured = {"16/mufu": entry("mufu", 5.0, 3e-4), "16/poly3-1of4": entry("poly3-1of4", 4.5, 3.1e-4),
                "16/poly3-1of8": entry("poly3-1of8", 4.8, 3e-4), "16/poly3-3of8": entry("poly3-3of8", 4.95, 3e-4),
                "16/poly2-1of4": entry("poly2-1of4", 4.0, 9e-4),  # fast, but its error is three times the shipped
                "16/poly3-1of2": {"variant": "poly3-1of2", "failed": "did not compile"},
                "8/poly3-1of2": entry("poly3-1of2", 1.0, 3e-4),  # another batch size: not the one asked about
                "16/mufu/again": entry("mufu", 5.0, 3e-4)}
    path = tmp_path / "fa4_exp.json"
    path.write_text(json.dumps({"variants": measured}))

    assert fa4_exp.promising(path) == ["poly3-1of4", "poly3-1of8"]  # fastest first; 3of8 is within 2 %
    assert fa4_exp.promising(tmp_path / "missing.json") == []
    path.write_text(json.dumps({"variants": {"16/mufu": {"variant": "mufu", "failed": "x"}}}))
    assert fa4_exp.promising(path) == []


def test_the_attention_case_both_sweeps_time_is_the_products_layout_and_its_error_is_against_fp32():
    import cuda_timing
    import torch
    import torch.nn.functional as F

    q, k, v, error, flops = cuda_timing.self_attention_case(torch, 2, torch.Generator().manual_seed(0), device="cpu",
                                                            tokens=64)
    assert q.shape == k.shape == v.shape == (2, 64, cuda_timing.HEADS, cuda_timing.HEAD) and q.dtype == torch.float16
    assert q.data_ptr() + cuda_timing.HEADS * cuda_timing.HEAD * 2 == k.data_ptr()  # views of one fused projection
    assert flops == 4 * 2 * cuda_timing.HEADS * 64 * 64 * cuda_timing.HEAD
    exact = F.scaled_dot_product_attention(*(t.transpose(1, 2).float() for t in (q, k, v))).transpose(1, 2)
    assert error(exact) < 1e-6
    assert error(exact.half()) < 1e-3 < error(exact.flip(1))  # fp16 rounding is small; another answer is not
