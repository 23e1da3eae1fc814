"""Fixtures for the generation core: the tiny preset, saved like the hub and loaded by the real loader."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory):
    from generator import pipeline

    return pipeline.tiny_spec(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_spec):
    from generator import pipeline

    return pipeline.load_engine(tiny_spec, device="cpu")
