"""The worker's warm engines (`generator.warm_engines`): loaded once on the shapes in settings, a failed load
remembered until its files change or its time passes, and one message for what no check foresaw."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from generator import warm_engines


def test_the_engine_is_warmed_on_the_shapes_in_settings(settings, monkeypatch):
    settings.QART = {**settings.QART, "DEVICES": [], "WARM_SHAPES": "768x8, 512x4"}
    monkeypatch.setattr(warm_engines, "_engines", {})
    monkeypatch.setattr(warm_engines.ranking, "warm_verifier", lambda workers: None)
    loaded: list[dict] = []
    monkeypatch.setattr(warm_engines.loading, "load_engine",
                        lambda spec, device, **kwargs: loaded.append(kwargs) or "engine")

    assert warm_engines.get_engine(warm_engines.parameters.ModelSpec(tiny=True)) == "engine"
    assert loaded == [{"optimize": True, "warm_shapes": ((768, 8), (512, 4)), "decoder_autotune": False}]


def test_the_decoder_is_autotuned_when_the_setting_says_so(settings, monkeypatch):
    settings.QART = {**settings.QART, "DEVICES": [], "DECODER_AUTOTUNE": True}
    monkeypatch.setattr(warm_engines, "_engines", {})
    monkeypatch.setattr(warm_engines.ranking, "warm_verifier", lambda workers: None)
    loaded: list[dict] = []
    monkeypatch.setattr(warm_engines.loading, "load_engine",
                        lambda spec, device, **kwargs: loaded.append(kwargs) or "engine")

    warm_engines.get_engine(warm_engines.parameters.ModelSpec(tiny=True))
    assert loaded[0]["decoder_autotune"] is True


def test_a_load_failing_where_no_check_foresaw_it_is_one_message(settings, monkeypatch):
    settings.QART = {**settings.QART, "DEVICES": []}
    monkeypatch.setattr(warm_engines, "_engines", {})

    def fail(spec, device, **kwargs):
        raise KeyError("layers.0.weight")  # e.g. an aesthetic head of other tensors, as safetensors reports it

    monkeypatch.setattr(warm_engines.loading, "load_engine", fail)
    with pytest.raises(warm_engines.parameters.EngineUnavailable) as exc:
        warm_engines.get_engine(warm_engines.parameters.ModelSpec(tiny=True))
    assert "could not be loaded (KeyError: 'layers.0.weight')" in str(exc.value)
    assert "QART_AESTHETIC_HEAD" in str(exc.value) and warm_engines._engines == {}


def test_a_failed_load_is_tried_again_only_once_the_files_change_or_time_passes(settings, monkeypatch, tmp_path):
    settings.QART = {**settings.QART, "DEVICES": []}
    monkeypatch.setattr(warm_engines, "_engines", {})
    monkeypatch.setattr(warm_engines.ranking, "warm_verifier", lambda workers: None)
    lora = tmp_path / "lora.safetensors"
    lora.write_bytes(b"broken")
    spec = warm_engines.parameters.ModelSpec(tiny=True, fewstep_lora=str(lora))
    tries: list[int] = []
    outcome = {"error": warm_engines.parameters.EngineUnavailable("The few-step LoRA is unreadable.")}

    def load(spec, device, **kwargs):
        tries.append(1)
        if outcome["error"]:
            raise outcome["error"]
        return "engine"

    monkeypatch.setattr(warm_engines.loading, "load_engine", load)
    for _ in range(3):  # every job after the first gets the same message without loading gigabytes again
        with pytest.raises(warm_engines.parameters.EngineUnavailable, match="The few-step LoRA is unreadable."):
            warm_engines.get_engine(spec)
    assert len(tries) == 1 and warm_engines.load_error(spec) == "The few-step LoRA is unreadable."

    monkeypatch.setattr(warm_engines, "LOAD_RETRY_SECONDS", 0)  # as if its time had passed: tried again (still broken)
    with pytest.raises(warm_engines.parameters.EngineUnavailable):
        warm_engines.get_engine(spec)
    assert len(tries) == 2

    monkeypatch.setattr(warm_engines, "LOAD_RETRY_SECONDS", 300)
    lora.write_bytes(b"fixed now")  # the file changed: tried again at once, and the engine is kept
    outcome["error"] = None
    assert warm_engines.get_engine(spec) == "engine" == warm_engines.loaded_engine(spec)
    assert len(tries) == 3 and warm_engines.load_error(spec) is None
    assert warm_engines.get_engine(spec) == "engine" and len(tries) == 3


def test_a_bad_warm_shape_stops_the_worker_with_one_message(settings):
    settings.QART = {**settings.QART, "WARM_SHAPES": "768x8,700x8"}
    with pytest.raises(ImproperlyConfigured) as exc:
        warm_engines.warm_shapes()
    assert str(exc.value) == "QART_WARM_SHAPES: “700x8”: the size must be a multiple of 64 from 256 to 1024, got 700."
