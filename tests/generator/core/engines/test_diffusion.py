"""The diffusion engines: batched generation, the split engine, and the shapes compiled at start."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from generator.core.engines import diffusion, guidance, loading
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

    def test_its_images_are_the_pipelines_own_pixels(self, tiny_engine, control):
        params = GenerationParams(**FAST)
        ours = tiny_engine.generate(control, params, seeds=[3, 4])
        pipe = tiny_engine.txt2img
        # The engine shares the guidance halves' first layers (test_guidance.py holds that to the whole batch's
        # images): the pipeline's own call does too, so the pixels here must match to the last bit.
        with guidance.halves_shared(pipe, True):
            theirs = pipe(prompt=params.prompt, negative_prompt=params.negative_prompt, num_images_per_prompt=2,
                          num_inference_steps=params.steps, guidance_scale=params.guidance_scale,
                          controlnet_conditioning_scale=params.conditioning_scale,
                          control_guidance_start=params.control_start, control_guidance_end=params.control_end,
                          generator=[torch.Generator("cpu").manual_seed(s) for s in (3, 4)],
                          image=control.convert("RGB").resize((256, 256), Image.Resampling.NEAREST), height=256,
                          width=256, output_type="pil").images
        assert [im.tobytes() for im in ours] == [im.tobytes() for im in theirs]

    def test_it_hands_over_each_image_as_it_is_decoded(self, tiny_engine, control, monkeypatch):
        params = GenerationParams(**FAST)
        assert tiny_engine.decode_group == 0  # on the CPU the whole batch decodes at once (one group)
        monkeypatch.setattr(tiny_engine, "decode_group", 1)  # as on CUDA
        handed: list[list[Image.Image]] = []
        decodes: list[int] = []
        real_decode = tiny_engine.txt2img.vae.decode
        monkeypatch.setattr(tiny_engine.txt2img.vae, "decode",
                            lambda latents, **kw: decodes.append(len(handed)) or real_decode(latents, **kw))
        images = tiny_engine.generate(control, params, seeds=[3, 4, 5], on_decoded=handed.append)
        assert [len(group) for group in handed] == [1, 1, 1]
        assert [im for group in handed for im in group] == images  # the same objects, in seed order
        # Off CUDA each image is handed over as soon as it is decoded (on CUDA one decode ahead: test_decoding.py)
        assert decodes == [0, 1, 2]
        monkeypatch.setattr(tiny_engine, "decode_group", 0)
        whole = tiny_engine.generate(control, params, seeds=[3, 4, 5], on_decoded=handed.append)
        assert [len(group) for group in handed] == [1, 1, 1, 3]
        # One latent at a time changes BLAS blocking, as another batch size does: the last bit of 8-bit rounding.
        for one, other in zip(images, whole, strict=True):
            assert np.abs(np.asarray(one, int) - np.asarray(other, int)).max() <= 2

    def test_a_pipeline_with_a_safety_checker_is_refused(self, tiny_engine):
        # The engine decodes its latents itself (`decoding.decode`): a checker would be skipped, not run.
        from types import SimpleNamespace

        with pytest.raises(ValueError, match="without diffusers' safety checker"):
            diffusion.engine_from_pipeline(SimpleNamespace(safety_checker=torch.nn.Identity()), tiny_engine.spec)

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
        handed: list = []
        images = tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3, 4, 5],
                                      on_decoded=handed.extend)
        monkeypatch.undo()
        assert len(images) == 5 and handed == images  # each image handed over once, in seed order
        assert sizes == [5, 2, 3, 1, 2]
        same = tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2])
        assert np.abs(np.asarray(images[1], int) - np.asarray(same[1], int)).max() <= 2

    def test_out_of_memory_after_images_were_handed_over_is_not_retried(self, tiny_engine, control, monkeypatch):
        import torch

        monkeypatch.setattr(tiny_engine, "decode_group", 1)
        real_decode = tiny_engine.txt2img.vae.decode
        decodes: list[int] = []

        def limited(latents, **kwargs):
            decodes.append(len(latents))
            if len(decodes) == 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_decode(latents, **kwargs)

        monkeypatch.setattr(tiny_engine.txt2img.vae, "decode", limited)
        handed: list = []
        # The first images were handed over (their verification may be under way): halves would hand them over again.
        with pytest.raises(torch.cuda.OutOfMemoryError):
            tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3], on_decoded=handed.extend)
        assert len(handed) == 2 and decodes == [1, 1, 1]


@pytest.fixture(scope="module")
def split_engine(tiny_spec):
    return loading.load_split_engine(tiny_spec, ["cpu", "cpu"], warm_shapes=[(256, 3)])


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

    @pytest.mark.parametrize("devices", [["cuda:0", "cuda:0"], ["cuda", "cuda:1", "cuda:0"]])
    def test_it_refuses_one_gpu_named_twice(self, tiny_spec, devices):
        # Refused before any device is looked for, so this holds on a machine without CUDA too.
        with pytest.raises(ValueError, match="cuda:0 is named more than once"):
            loading.load_split_engine(tiny_spec, devices)


def fake_compile(module):
    """torch.compile's wrapper around `module` (`_orig_mod` inside) that never compiles: a compiled engine on the CPU,
    as diffusers and `Engine` see one, without minutes of tracing."""
    from torch._dynamo.eval_frame import DisableContext, OptimizedModule

    return OptimizedModule(module, DisableContext())


def compiled(engine: diffusion.Engine) -> diffusion.Engine:
    """`engine` with its UNet, ControlNet and VAE decoder wrapped as `cuda.compile_for_cuda` wraps them."""
    unet, controlnet = fake_compile(engine.txt2img.unet), fake_compile(engine.txt2img.controlnet)
    for pipe in (engine.txt2img, engine.img2img):
        pipe.unet, pipe.controlnet = unet, controlnet
    engine.txt2img.vae.decoder = fake_compile(engine.txt2img.vae.decoder)
    return engine


@pytest.fixture
def compiled_engine(tiny_spec):
    return compiled(loading.load_engine(tiny_spec, device="cpu", warm_up=False, aesthetic=False))


def modules_called(engine: diffusion.Engine) -> dict[str, int]:
    """Counts of calls into each compiled wrapper ("unet") and into the eager module inside it ("eager unet"), for
    the UNet, ControlNet and VAE decoder; a call through a wrapper counts for both."""
    counts: dict[str, int] = {}

    def counter(name: str):
        def count(_module, _args):
            counts[name] = counts.get(name, 0) + 1

        return count

    pipe = engine.txt2img
    for name, module in (("unet", pipe.unet), ("controlnet", pipe.controlnet), ("decoder", pipe.vae.decoder)):
        module.register_forward_pre_hook(counter(name))
        module._orig_mod.register_forward_pre_hook(counter(f"eager {name}"))
    return counts


class TestWarmShapes:
    def test_a_shape_names_the_path_that_draws_it(self):
        shapes = [diffusion.Shape.of(params, 8) for params in diffusion.warm_up_calls(768, fewstep=True)]
        assert [s.label for s in shapes] == ["768x8", "768x8 few-step", "768x8 img2img", "768x8 few-step img2img"]
        unguided = diffusion.Shape.of(GenerationParams(**FAST, guidance_scale=1.0), 3)
        assert unguided.label == "256x3 without guidance" and unguided != diffusion.Shape(256, 3)
        # euler_a's timesteps are float32, the others' int64: another input dtype, so graphs of its own.
        shapes = {name: diffusion.Shape.of(GenerationParams(**FAST, scheduler=name), 3) for name in SCHEDULERS}
        assert shapes["euler_a"].label == "256x3 euler_a"
        assert {s for name, s in shapes.items() if name != "euler_a"} == {diffusion.Shape(256, 3)}
        assert [p.label for p in map(diffusion.Shape.of, diffusion.warm_up_calls(512, False), [2, 2])] == [
            "512x2", "512x2 img2img"]

    def test_the_warm_up_records_every_shape_it_compiled(self, compiled_engine):
        calls = modules_called(compiled_engine)
        diffusion.warm_up_engine(compiled_engine, [(256, 2), (320, 1)])
        assert sorted(s.label for s in compiled_engine.warmed) == ["256x2", "256x2 img2img", "320x1", "320x1 img2img"]
        assert calls["unet"] > 0 and calls["decoder"] == 4  # every warm-up call went through the compiled modules

    def test_a_warmed_shape_runs_the_compiled_modules(self, compiled_engine, control, caplog):
        diffusion.warm_up_engine(compiled_engine, [(256, 2)])
        calls = modules_called(compiled_engine)
        compiled_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2])
        assert calls["unet"] == calls["eager unet"] > 0 and calls["decoder"] == 1
        assert "was not warmed" not in caplog.text

    def test_an_unwarmed_shape_runs_the_eager_modules_and_says_so_once(self, compiled_engine, tiny_engine, control,
                                                                       caplog):
        diffusion.warm_up_engine(compiled_engine, [(256, 2)])
        calls = modules_called(compiled_engine)
        unet = compiled_engine.txt2img.unet
        images = compiled_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3])
        compiled_engine.generate(control, GenerationParams(**FAST), seeds=[4, 5, 6])
        assert "unet" not in calls and "controlnet" not in calls and "decoder" not in calls
        assert calls["eager unet"] > 0 and calls["eager controlnet"] > 0 and calls["eager decoder"] == 2
        # The compiled modules are back in place, and the images are the same weights' images.
        assert compiled_engine.txt2img.unet is unet and hasattr(compiled_engine.txt2img.vae.decoder, "_orig_mod")
        same = tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3])
        for a, b in zip(images, same, strict=True):
            assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 2
        warnings = [r.getMessage() for r in caplog.records if "was not warmed" in r.getMessage()]
        assert warnings == ["256x3 was not warmed at start: drawn eagerly (slower) rather than compiling for minutes; "
                            "add 256x3 to QART_WARM_SHAPES"]

    def test_a_scheduler_with_float_timesteps_is_drawn_eagerly_and_says_why(self, compiled_engine, control, caplog):
        diffusion.warm_up_engine(compiled_engine, [(256, 1)])
        calls = modules_called(compiled_engine)
        compiled_engine.generate(control, GenerationParams(**FAST, scheduler="euler_a"), seeds=[1])
        assert "unet" not in calls and calls["eager unet"] > 0
        assert "256x1 euler_a was not warmed at start" in caplog.text
        assert "the warm-up compiles no graphs for this scheduler" in caplog.text

    def test_img2img_is_a_shape_of_its_own(self, compiled_engine, control, monkeypatch):
        monkeypatch.setattr(diffusion, "warm_up_calls", lambda size, fewstep: [GenerationParams("warm-up", steps=2,
                                                                                                size=size)])
        diffusion.warm_up_engine(compiled_engine, [(256, 1)])
        calls = modules_called(compiled_engine)
        compiled_engine.generate(control, GenerationParams(**FAST, strength=0.6), seeds=[1])
        assert "unet" not in calls and calls["eager unet"] > 0

    def test_halves_after_out_of_memory_are_drawn_eagerly(self, compiled_engine, control, monkeypatch):
        import torch

        diffusion.warm_up_engine(compiled_engine, [(256, 4)])
        calls = modules_called(compiled_engine)
        real_call = type(compiled_engine.txt2img).__call__
        eager: list[tuple[int, bool]] = []

        def limited(pipe, **kwargs):
            eager.append((kwargs["num_images_per_prompt"], not hasattr(pipe.unet, "_orig_mod")))
            if kwargs["num_images_per_prompt"] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_call(pipe, **kwargs)

        monkeypatch.setattr(type(compiled_engine.txt2img), "__call__", limited)
        images = compiled_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3, 4])
        assert len(images) == 4
        assert eager == [(4, False), (2, True), (2, True)]
        assert "unet" not in calls and hasattr(compiled_engine.txt2img.unet, "_orig_mod")

    def test_an_engine_that_is_not_compiled_warms_no_shape_and_draws_any(self, tiny_engine, control, caplog):
        assert not tiny_engine.compiled and tiny_engine.warmed == set()
        tiny_engine.generate(control, GenerationParams(**FAST), seeds=[1, 2, 3])
        assert "was not warmed" not in caplog.text

    def test_a_split_engine_warms_each_replica_on_its_share(self, tiny_spec):
        replicas = [compiled(loading.load_engine(tiny_spec, device="cpu", warm_up=False, aesthetic=False))
                    for _ in range(2)]
        engine = diffusion.SplitEngine(replicas)
        engine.warm_up([(256, 3), (256, 1)])
        assert sorted(s.label for s in engine.warmed) == ["256x1", "256x1 img2img", "256x3", "256x3 img2img"]
        assert sorted(s.label for s in replicas[0].warmed) == ["256x1", "256x1 img2img", "256x2", "256x2 img2img"]
        assert sorted(s.label for s in replicas[1].warmed) == ["256x1", "256x1 img2img"]
