"""The diffusion engines: batched generation, the split engine, and the ControlNet skip."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from generator.core.engines import diffusion, loading
from generator.core.engines.parameters import (
    SCHEDULERS,
    Cancelled,
    GenerationParams,
)
from tests.generator.core.engines.conftest import FAST


class TestGenerate:
    def test_it_makes_one_image_per_seed_in_one_batched_call(self, tiny_engine, control):
        steps: list[int] = []
        images = tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3, 4],
                                      on_step=lambda step, total: steps.append(step))
        assert len(images) == 4 and all(im.size == (256, 256) and im.mode == "RGB" for im in images)
        assert steps == [1, 2]  # one denoising loop for the whole batch
        assert len({im.tobytes() for im in images}) == 4

    def test_the_same_seed_gives_the_same_image(self, tiny_engine, control):
        params = GenerationParams(**FAST)
        a = tiny_engine.generate(control, params, seeds=[5, 6, 7])
        b = tiny_engine.generate(control, params, seeds=[5, 6, 7])
        assert [im.tobytes() for im in a] == [im.tobytes() for im in b]
        alone = tiny_engine.generate(control, params, seeds=[6])[0]
        # Another batch size changes BLAS blocking, so allow the last bit of 8-bit rounding.
        assert np.abs(np.asarray(alone, int) - np.asarray(a[1], int)).max() <= 2

    def test_it_runs_img2img_from_the_control_or_an_init_image(self, tiny_engine, control):
        params = GenerationParams(**FAST, strength=0.6)
        from_control = tiny_engine.generate(control, params, seeds=[1])[0]
        picture = Image.new("RGB", (300, 200), (200, 30, 30))
        from_picture = tiny_engine.generate(control, params, seeds=[1], init_image=picture)[0]
        assert from_control.size == from_picture.size == (256, 256)
        assert from_control.tobytes() != from_picture.tobytes()

    def test_every_scheduler_runs(self, tiny_engine, control):
        for name in SCHEDULERS:
            params = GenerationParams(**{**FAST, "scheduler": name})
            assert tiny_engine.generate(control, params, seeds=[0])[0].size == (256, 256)

    def test_it_stops_when_cancelled(self, tiny_engine, control):
        def cancel(step: int, total: int) -> None:
            raise Cancelled()

        with pytest.raises(Cancelled):
            tiny_engine.generate(control, GenerationParams(**FAST), seeds=[0], on_step=cancel)

    def test_it_splits_the_batch_on_out_of_memory(self, tiny_engine, control, monkeypatch):
        import torch

        real_call = type(tiny_engine.txt2img).__call__
        sizes: list[int] = []

        def limited(pipe, **kwargs):
            sizes.append(kwargs["num_images_per_prompt"])
            if kwargs["num_images_per_prompt"] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_call(pipe, **kwargs)

        monkeypatch.setattr(type(tiny_engine.txt2img), "__call__", limited)
        images = tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3, 4, 5])
        monkeypatch.undo()
        assert len(images) == 5
        assert sizes == [5, 2, 3, 1, 2]
        same = tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2])
        assert np.abs(np.asarray(images[1], int) - np.asarray(same[1], int)).max() <= 2


@pytest.fixture(scope="module")
def split_engine(tiny_spec):
    return loading.load_split_engine(tiny_spec, ["cpu", "cpu"], warm_batch=3)


class TestSplitEngine:
    def test_seeds_are_shared_out_in_order(self):
        assert diffusion.split_seeds(range(8), 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
        assert diffusion.split_seeds(range(8), 3) == [[0, 1, 2], [3, 4, 5], [6, 7]]
        assert diffusion.split_seeds([7], 4) == [[7]]

    def test_it_makes_the_single_engines_images_in_seed_order(self, split_engine, tiny_engine, control):
        params = GenerationParams(**FAST)
        seeds = [11, 12, 13, 14, 15]
        split = split_engine.generate(control, params, seeds)
        single = tiny_engine.generate(control, params, seeds)
        assert len(split) == 5
        for a, b in zip(split, single, strict=True):
            # Batches of 3 and 2 instead of 5: the last bit of 8-bit rounding may differ (as in one engine).
            assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 2
        assert len({im.tobytes() for im in split}) == 5

    def test_only_the_first_replica_loads_the_aesthetic_predictor(self, split_engine, control):
        first, second = split_engine.replicas
        assert first.aesthetic is not None and second.aesthetic is None
        assert first.txt2img.unet is not second.txt2img.unet  # one copy of the weights per device
        images = split_engine.generate(control, GenerationParams(**FAST), [1, 2])
        scores = split_engine.score_aesthetics(images)
        assert len(scores) == 2 and all(isinstance(x, float) for x in scores)
        assert split_engine.device == "cpu,cpu" and split_engine.spec == first.spec

    def test_progress_is_the_slowest_replicas_and_reported_in_the_calling_thread(self, split_engine, control):
        import threading

        calls: list[tuple[int, int, str]] = []
        params = GenerationParams(**{**FAST, "steps": 3})
        split_engine.generate(control, params, [1, 2, 3],
                              on_step=lambda s, t: calls.append((s, t, threading.current_thread().name)))
        steps = [s for s, _, _ in calls]
        assert steps == sorted(set(steps)) and steps[-1] == 3
        assert {t for _, t, _ in calls} == {3}
        assert {name for _, _, name in calls} == {threading.current_thread().name}

    def test_each_replica_always_runs_in_its_own_thread(self, split_engine, control, monkeypatch):
        # CUDA graphs are recorded per thread: a replica must never move to another one.
        import threading

        threads: dict[str, set[str]] = {}
        real = diffusion.Engine.generate

        def noted(engine, *args, **kwargs):
            threads.setdefault(str(id(engine)), set()).add(threading.current_thread().name)
            return real(engine, *args, **kwargs)

        monkeypatch.setattr(diffusion.Engine, "generate", noted)
        for _ in range(3):
            split_engine.generate(control, GenerationParams(**FAST), [1, 2])
        split_engine.on_replica(1, split_engine.replicas[1].generate, control, GenerationParams(**FAST), [3])
        names = [threads[str(id(r))] for r in split_engine.replicas]
        assert [len(n) for n in names] == [1, 1] and names[0] != names[1]
        assert threading.current_thread().name not in names[0] | names[1]

    def test_cancelling_stops_every_replica(self, split_engine, control, monkeypatch):
        seen: list[int] = []
        real = diffusion.Engine.generate

        def counted(engine, control, params, seeds, init_image=None, on_step=None):
            def step(done, total):
                seen.append(done)
                time.sleep(0.05)  # steps as slow as a GPU's, so the cancel lands mid-run
                on_step(done, total)

            return real(engine, control, params, seeds, init_image, step)

        monkeypatch.setattr(diffusion.Engine, "generate", counted)

        def cancel(step: int, total: int) -> None:
            raise Cancelled()

        params = GenerationParams(**{**FAST, "steps": 6})
        with pytest.raises(Cancelled):
            split_engine.generate(control, params, [1, 2], on_step=cancel)
        # Each replica stops at its next step once the caller cancelled: far fewer than 2 x 6 steps ran.
        assert len(seen) < 12 and max(seen) < 6

    def test_a_failing_replica_raises_its_own_error(self, split_engine, control, monkeypatch):
        monkeypatch.setattr(split_engine.replicas[1], "generate",
                            lambda *a, **k: (_ for _ in ()).throw(RuntimeError("replica 2 broke")))
        with pytest.raises(RuntimeError, match="replica 2 broke"):
            split_engine.generate(control, GenerationParams(**FAST), [1, 2, 3, 4])

    def test_it_needs_two_devices(self, tiny_spec):
        with pytest.raises(ValueError, match="at least two devices"):
            loading.load_split_engine(tiny_spec, ["cpu"])


class TestControlNetSkip:
    def test_inactive_steps_skip_the_controlnet_without_changing_images(self, tiny_engine, control):
        net = tiny_engine.txt2img.controlnet
        calls = {"real": 0}
        original = type(net).__mro__[1].forward

        def counting(self, *args, **kwargs):
            calls["real"] += 1
            return original(self, *args, **kwargs)

        params = GenerationParams(**{**FAST, "steps": 8, "control_start": 0.5})
        type(net).__mro__[1].forward = counting
        try:
            skipped = tiny_engine.generate(control, params, seeds=[3])[0]
        finally:
            type(net).__mro__[1].forward = original
        # 8 steps, guidance off for the first 4: at most one real call learns the shapes, the rest skip.
        assert calls["real"] <= 5
        full = GenerationParams(**{**FAST, "steps": 8, "control_start": 0.5, "conditioning_scale": 1.5})
        net._residual_shapes.clear()  # without learnt shapes every step runs the real network
        reference = tiny_engine.generate(control, full, seeds=[3])[0]
        assert np.abs(np.asarray(skipped, int) - np.asarray(reference, int)).max() <= 1
