"""A small finished sweep built straight with the ORM, for the report command and pages' tests.

Four configurations (conditioning_scale 1.0/1.5 x control_start 0.0/0.25), two prompts, four candidates per
sample. Passes per (configuration, prompt), so every rate is known:

    cs 1.0, start 0.0:  forest 1/4, koi 2/4  -> 3/8, aesthetic 6.0
    cs 1.0, start 0.25: forest 2/4, koi 2/4  -> 4/8, aesthetic 5.5
    cs 1.5, start 0.0:  forest 4/4, koi 3/4  -> 7/8, aesthetic 5.0
    cs 1.5, start 0.25: forest 4/4, koi 4/4  -> 8/8, aesthetic 4.0

plus a failed and a queued sample that must not count as candidates.
"""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from generator.models import EvalRun, EvalSample

PROMPTS = ("a misty forest", "a koi pond")
PASSES = {(1.0, 0.0): (1, 2), (1.0, 0.25): (2, 2), (1.5, 0.0): (4, 3), (1.5, 0.25): (4, 4)}
AESTHETIC = {(1.0, 0.0): 6.0, (1.0, 0.25): 5.5, (1.5, 0.0): 5.0, (1.5, 0.25): 4.0}
GRID = {"conditioning_scale": [1.0, 1.5], "control_start": [0.0, 0.25]}
BASE = {"steps": 20, "seed": 7, "candidates_per_batch": 4, "max_batches": 1, "repair": False}


def key_of(cs: float, start: float) -> str:
    return f"conditioning_scale={cs},control_start={start}"


def stored_png(name: str, colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return default_storage.save(name, ContentFile(buffer.getvalue()))


def make_run(team, user=None, name: str = "spring sweep") -> EvalRun:
    run = EvalRun.objects.create(name=name, team=team, created_by=user, grid=GRID, base_params=BASE,
                                 candidates_per_sample=4, code_version="abc1234")
    for (cs, start), passes in PASSES.items():
        for prompt, passing in zip(PROMPTS, passes, strict=True):
            scores = [
                {"index": i, "batch": 0, "seed": 7 + i, "scan_probability": 0.9 if i < passing else 0.2,
                 "verdict": "pass" if i < passing else "fail", "aesthetic_score": AESTHETIC[(cs, start)],
                 "misread": False, "repaired": False,
                 "image": stored_png(f"evals/{run.pk}-{cs}-{start}-{prompt[2:5]}-{i}.png", (int(cs * 100), i * 50, 90))}
                for i in range(4)
            ]
            EvalSample.objects.create(run=run, prompt=prompt, content="https://qart.example/r/x",
                                      config={"conditioning_scale": cs, "control_start": start},
                                      config_key=key_of(cs, start), status="done", scores=scores,
                                      generation_seconds=8.0, scoring_seconds=2.0, total_seconds=10.0)
    config = {"conditioning_scale": 1.0, "control_start": 0.0}
    EvalSample.objects.create(run=run, prompt="a lighthouse", content="https://qart.example/r/x", config=config,
                              config_key=key_of(1.0, 0.0), status="failed", error="worker lost")
    EvalSample.objects.create(run=run, prompt="a lighthouse", content="https://qart.example/r/y", config=config,
                              config_key=key_of(1.0, 0.0), status="queued")
    return run
