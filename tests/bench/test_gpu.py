"""bench/gpu.py: only what runs without a GPU. Inductor's settings are process-wide: a variant must compile with its
own (bench/GPU.md, twenty-first step: PZ's freezing), whatever ran before it in the same call."""

import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import gpu  # noqa: E402
import torch._inductor.config as inductor_config  # noqa: E402


class Built(Exception):
    """Raised by the stand-in bench once the variant's settings are applied: nothing is built or compiled."""


class Args:
    @property
    def fewstep(self):
        raise Built


def settings_when_built(bench, key: str) -> dict:
    """Inductor's settings as build_engine leaves them for the variant `key`, where it would compile."""
    with pytest.raises(Built):
        gpu.Bench.build_engine(bench, gpu.VARIANTS[key])
    return {name: getattr(inductor_config, name) for name in ("freezing", "coordinate_descent_tuning",
                                                               "epilogue_fusion")}


def test_a_variant_compiles_with_its_own_inductor_settings_whatever_ran_before(monkeypatch):
    # `--variants PZ,T,P` timed T and P with PZ's freezing still on, under a cache tag that named no freezing.
    for name, value in (("freezing", False), ("coordinate_descent_tuning", False), ("epilogue_fusion", True)):
        monkeypatch.setattr(inductor_config, name, value)
    pipeline = types.SimpleNamespace(controlnet=object())
    bench = types.SimpleNamespace(torch=None, parts=types.SimpleNamespace(pipeline=lambda *a, **k: pipeline),
                                  args=Args(), dtype=lambda name: name, inductor_before={})
    plain = {"freezing": False, "coordinate_descent_tuning": False, "epilogue_fusion": True}
    assert settings_when_built(bench, "PZ") == {**plain, "freezing": True}
    assert settings_when_built(bench, "T") == {**plain, "coordinate_descent_tuning": True, "epilogue_fusion": False}
    assert settings_when_built(bench, "P") == plain
