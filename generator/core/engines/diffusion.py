"""The diffusion engines: Stable Diffusion 1.5 + a QR ControlNet, N candidates in one batched call.

`Engine` holds one warm pipeline pair on one device; `SplitEngine` shares each call's candidates across
several (one replica per GPU). Loading them is `generator.core.engines.loading`'s job.

    engine = loading.load_engine(ModelSpec())            # weights load once and stay warm
    images = engine.generate(control, GenerationParams(prompt="a misty forest"), seeds=range(8))
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from PIL import Image

from generator.core.codes.echoes import echo
from generator.core.engines.cuda import attention_context, graph_thread
from generator.core.engines.decoding import decode
from generator.core.engines.guidance import halves_shared, share_halves
from generator.core.engines.parameters import (
    FEWSTEP_SCHEDULERS,
    SCHEDULERS,
    Cancelled,
    GenerationParams,
    ModelSpec,
)

log = logging.getLogger(__name__)


def make_scheduler(name: str, config: dict):
    """A diffusers scheduler by qart's name, from the base model's scheduler config."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        LCMScheduler,
        TCDScheduler,
        UniPCMultistepScheduler,
    )

    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "dpmpp_2m_karras":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
        )
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(config)
    if name == "unipc":
        return UniPCMultistepScheduler.from_config(config)
    if name == "lcm":
        return LCMScheduler.from_config(config)
    if name == "tcd":
        return TCDScheduler.from_config(config)
    raise ValueError(f"Unknown scheduler “{echo(name)}”: choose one of {', '.join(SCHEDULERS + FEWSTEP_SCHEDULERS)}.")


# Schedulers whose timesteps are float32 where the others' are int64 (diffusers): the UNet and ControlNet then take
# another input dtype, which a compiled graph does not accept (it would recompile). The warm-up does not compile them
# (minutes more per shape for one scheduler), so a compiled engine draws them eagerly.
FLOAT_TIMESTEP_SCHEDULERS = ("euler_a",)


class Shape(NamedTuple):
    """What a compiled engine's graphs specialise on (`dynamic=False`): one call's image side and candidates, and
    which path draws it. A call of a shape not compiled at start would compile for minutes in the middle of a job."""

    size: int  # image side in pixels
    batch: int  # candidates (seeds) in the call
    fewstep: bool = False  # the few-step LoRA's UNet (a module of its own)
    img2img: bool = False  # from an init image (`GenerationParams.strength`)
    guided: bool = True  # classifier-free guidance doubles the UNet's batch; few-step calls run without
    float_timesteps: bool = False  # a scheduler of FLOAT_TIMESTEP_SCHEDULERS

    @classmethod
    def of(cls, params: GenerationParams, batch: int) -> Shape:
        # Guidance <= 1 is off in diffusers (`do_classifier_free_guidance`); the few-step preset always runs without.
        guided = not params.fewstep and params.guidance_scale > 1
        return cls(params.size, batch, params.fewstep, params.strength is not None, guided,
                   params.scheduler in FLOAT_TIMESTEP_SCHEDULERS)

    @property
    def label(self) -> str:
        """E.g. "768x8", "768x8 few-step img2img"."""
        words = [f"{self.size}x{self.batch}"]
        words += ["few-step"] * self.fewstep + ["img2img"] * self.img2img
        words += ["without guidance"] * (not self.guided and not self.fewstep)
        words += ["/".join(FLOAT_TIMESTEP_SCHEDULERS)] * self.float_timesteps
        return " ".join(words)


@contextmanager
def eager_modules(pipe) -> Iterator[None]:
    """While the block runs, `pipe` draws with the eager modules inside its compiled UNet, ControlNet and VAE decoder
    (`_orig_mod`: the same weights; a QRControlNet's own network), so a call nothing was compiled for does not
    compile.

    It swaps attributes of `pipe` and of the VAE its sibling pipelines share: an engine draws one call at a time
    (the worker runs one job at a time; a split engine's replicas each have their own modules and thread).
    """
    unet, controlnet, decoder = pipe.unet, pipe.controlnet, pipe.vae.decoder
    network = getattr(controlnet, "_orig_mod", controlnet)
    was_eager = getattr(network, "eager", None)  # a QRControlNet compiles its network itself (`compile_body`)
    try:
        pipe.unet = getattr(unet, "_orig_mod", unet)
        pipe.controlnet = network
        pipe.vae.decoder = getattr(decoder, "_orig_mod", decoder)
        if was_eager is not None:
            network.eager = True
        yield
    finally:
        pipe.unet, pipe.controlnet, pipe.vae.decoder = unet, controlnet, decoder
        if was_eager is not None:
            network.eager = was_eager


@dataclass
class Engine:
    """Loaded, warm pipelines (text-to-image and image-to-image share every weight) plus the scorer."""

    spec: ModelSpec
    txt2img: object  # StableDiffusionControlNetPipeline
    img2img: object  # StableDiffusionControlNetImg2ImgPipeline
    aesthetic: object | None  # aesthetics.AestheticPredictor
    device: str
    dtype: object
    scheduler_config: dict = field(default_factory=dict)
    # One of ATTENTION_CHOICES. "default": on the H200 PyTorch already picks cuDNN attention (measured: no gain
    # from forcing it, bench/RESULTS.md); "cudnn" forces it where PyTorch would pick flash (unmeasured there).
    attention: str = "default"
    # The few-step preset's (txt2img, img2img): the same components but a UNet with the few-step LoRA fused in;
    # None without a LoRA (`loading.load_engine` with ModelSpec.fewstep_lora).
    fewstep: tuple | None = None
    # Compiled: the shapes `warm_up_engine` compiled; a call of any other shape is drawn eagerly (`generate`).
    warmed: set[Shape] = field(default_factory=set)
    # Guided calls run the layers before the first cross-attention on one half of the batch (`guidance.py`);
    # bench/gpu.py turns it off to measure what it saves.
    shared_halves: bool = True
    # Latents per VAE decode call (`decoding.decode`; 0: the whole batch in one). With 1 (`engine_from_pipeline`
    # on CUDA), `generate`'s caller verifies the first candidates on the CPU while the GPU decodes the rest. On a
    # CPU engine the decode and the verifier share the cores: whole (bench/RESULTS.md, issue 16's ninth step).
    decode_group: int = 0
    # Unwarmed shapes already drawn eagerly, so each is logged once.
    _drawn_eagerly: set[Shape] = field(default_factory=set, repr=False)

    @property
    def compiled(self) -> bool:
        """Whether torch.compile wraps the modules (`cuda.compile_for_cuda`): then each new shape compiles."""
        return hasattr(self.txt2img.unet, "_orig_mod")

    def generate(
        self,
        control: Image.Image,
        params: GenerationParams,
        seeds: Sequence[int],
        init_image: Image.Image | None = None,
        on_step: Callable[[int, int], None] | None = None,
        on_decoded: Callable[[list[Image.Image]], None] | None = None,
    ) -> list[Image.Image]:
        """Generate one candidate per seed in a single batched call.

        On a compiled engine, a call whose `Shape` was not warmed at start runs the eager modules inside the
        compiled ones (same weights and images within fp16 rounding, slower) instead of compiling for minutes.

        Args:
            control (`PIL.Image.Image`): the QR control image (it is resized to `params.size`).
            params (`GenerationParams`): prompt and sampling parameters; validated here. A few-step scheduler
                (lcm, tcd) draws with the few-step LoRA's UNet and no classifier-free guidance (UNet batch = seeds).
            seeds (`Sequence[int]`): one seed per candidate. The same seed and parameters give the same
                image whatever the batch size or position.
            init_image (`PIL.Image.Image`, *optional*): for img2img, the picture to start from; defaults to
                the control image when `params.strength` is set.
            on_step (`Callable[[int, int], None]`, *optional*): called after each denoising step with
                (step, total); raise `Cancelled` in it to stop.
            on_decoded (`Callable[[list[PIL.Image.Image]], None]`, *optional*): called with the images as they are
                decoded (`decode_group` at a time), in seed order, before this returns them all; each image once.

        Returns:
            One RGB image per seed, in seed order.
        """
        import torch

        # 1. Check inputs
        params.validate()
        if not seeds:
            raise ValueError("At least one seed is needed.")
        size = params.size

        # 2. Prepare the control (and init) image, the scheduler and one generator per candidate
        control = control.convert("RGB").resize((size, size), Image.Resampling.NEAREST)
        txt2img, img2img = self.pipelines(params)
        pipe = img2img if params.strength is not None else txt2img
        pipe.scheduler = make_scheduler(params.scheduler, self.scheduler_config)
        generator_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(generator_device).manual_seed(int(s)) for s in seeds]

        def step_end(_pipe, step: int, _timestep, callback_kwargs: dict) -> dict:
            if on_step is not None:
                on_step(step + 1, params.steps)
            return callback_kwargs

        kwargs = dict(
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            num_images_per_prompt=len(seeds),
            num_inference_steps=params.steps,
            # Few-step LoRAs are distilled with guidance folded in: none here (guidance <= 1 turns it off).
            guidance_scale=1.0 if params.fewstep else params.guidance_scale,
            controlnet_conditioning_scale=params.conditioning_scale,
            control_guidance_start=params.control_start,
            control_guidance_end=params.control_end,
            generator=generators,
            callback_on_step_end=step_end,
            output_type="latent",  # decoded here (`decoding.decode`), a group at a time
        )
        # 3. One batched denoising run (eagerly for a shape a compiled engine was not warmed for)
        if params.strength is not None:
            init = (init_image or control).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
            kwargs.update(image=init, control_image=control, strength=params.strength)
        else:
            kwargs.update(image=control, height=size, width=size)
        shape = Shape.of(params, len(seeds))
        eager = self.compiled and shape not in self.warmed  # compiling it now would take minutes
        if eager:
            self._note_eager(shape)
        delivered: list[Image.Image] = []

        def decoded(images: list[Image.Image]) -> None:
            delivered.extend(images)
            if on_decoded is not None:
                on_decoded(images)

        try:
            with (torch.inference_mode(), attention_context(self.device, self.attention),
                  halves_shared(pipe, shape.guided and self.shared_halves),
                  eager_modules(pipe) if eager else nullcontext()):
                latents = pipe(**kwargs).images
                # 4. Decode, a group at a time, each group to the caller as it comes
                return decode(pipe, latents, self.decode_group, decoded)
        except torch.cuda.OutOfMemoryError:
            # 5. Out of GPU memory: free what the failed attempt held and run the batch in two halves.
            # Per-candidate generators keep every image the same as in one batch.
            if len(seeds) == 1 or delivered:  # images already handed over cannot be taken back
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(seeds) // 2
            log.warning("Out of GPU memory with %d candidates; retrying as %d + %d", len(seeds), half,
                        len(seeds) - half)
            first = self.generate(control, params, list(seeds[:half]), init_image, on_step, on_decoded)
            return first + self.generate(control, params, list(seeds[half:]), init_image, on_step, on_decoded)

    def _note_eager(self, shape: Shape) -> None:
        if shape not in self._drawn_eagerly:
            self._drawn_eagerly.add(shape)
            hint = (f"add {shape.size}x{shape.batch} to QART_WARM_SHAPES" if not shape.float_timesteps
                    else "the warm-up compiles no graphs for this scheduler")
            log.warning("%s was not warmed at start: drawn eagerly (slower) rather than compiling for minutes; %s",
                        shape.label, hint)

    def pipelines(self, params: GenerationParams) -> tuple:
        """The (txt2img, img2img) pair that draws `params`: the few-step LoRA's for a few-step scheduler."""
        if not params.fewstep:
            return self.txt2img, self.img2img
        if self.fewstep is None:
            raise ValueError(f"Scheduler “{echo(params.scheduler)}” belongs to the few-step preset, which needs a "
                             "few-step LoRA: set QART_FEWSTEP_LORA.")
        return self.fewstep

    def score_aesthetics(self, images: list[Image.Image]) -> list[float | None]:
        """Aesthetic scores, or None per image when no predictor is configured."""
        if self.aesthetic is None:
            return [None] * len(images)
        return self.aesthetic.score(images)


def warm_up_calls(size: int, fewstep: bool) -> list[GenerationParams]:
    """The short calls that compile one image side's graphs: text-to-image and image-to-image, and the few-step
    preset's two when the engine has it.

    Eight steps at control start 0.25 skip the ControlNet on steps 0-1: step 0 learns the residual shapes with a real
    call, step 1 compiles the skip (zero residuals, another memory layout for the UNet), steps 2-7 the real path.
    Image-to-image needs graphs of its own: its latents come out of the channels_last VAE encoder, a layout the
    text-to-image graphs do not accept (seen on an H200: the first such call recompiled).
    """
    calls = [GenerationParams(prompt="warm-up", steps=8, size=size)]
    if fewstep:
        calls.append(GenerationParams(prompt="warm-up", steps=8, size=size, scheduler="lcm"))
    return calls + [replace(params, strength=1.0) for params in calls]


def warm_up_engine(engine: Engine, shapes: Sequence[tuple[int, int]]) -> None:
    """Compile `engine` for each (size, candidates) in `shapes`, and record each `Shape` in `engine.warmed`.

    Compiled graphs specialise on shapes: a job of a shape warmed here finds its graphs ready; one of another shape
    is drawn eagerly (`Engine.generate`). An engine that is not compiled specialises on nothing: one small run (and
    one of the few-step preset) initialises it, and `warmed` stays empty.
    """
    if not engine.compiled:
        shapes = [(256, 1)]
    for size, batch in shapes:
        control = Image.new("RGB", (size, size), "white")
        for params in warm_up_calls(size, engine.fewstep is not None):
            if not engine.compiled and params.strength is not None:
                continue  # nothing to compile: text-to-image already initialised every module
            shape = Shape.of(params, batch)
            if engine.compiled:
                engine.warmed.add(shape)  # first, or `generate` would draw it eagerly
            try:
                engine.generate(control, params, seeds=list(range(batch)))
            except BaseException:
                engine.warmed.discard(shape)
                raise


def split_seeds(seeds: Sequence[int], parts: int) -> list[list[int]]:
    """Consecutive, near-equal, non-empty shares of `seeds` (8 over 3 -> 3, 3, 2), in order."""
    size, extra = divmod(len(seeds), parts)
    shares, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        if end > start:
            shares.append(list(seeds[start:end]))
        start = end
    return shares


@dataclass
class SplitEngine:
    """One warm `Engine` per device; each call's candidates are shared out and generated on all at once.

    For latency: on two GPUs a batch of eight takes about the time of four on one. Per-candidate generators
    keep every seed's image the same as on one device (within the rounding of another batch size). Progress,
    cancelling and the caller's callback stay in the calling thread (Django's database connections are
    per thread). Each replica runs in a thread of its own for its whole life: CUDA graphs are recorded per
    thread, and with them a step costs Python so little that the replicas' threads do not wait on each
    other for the interpreter (measured without them: two GPUs took 3.1 s where each alone took 1.8 s).
    """

    replicas: list[Engine]
    warmed: set[Shape] = field(default_factory=set)  # whole calls' shapes; each replica's own hold its shares
    _threads: list[ThreadPoolExecutor] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"qart-replica-{i}", initializer=graph_thread)
                         for i in range(len(self.replicas))]

    def on_replica(self, index: int, fn: Callable, *args, **kwargs):
        """Run `fn` in replica `index`'s own thread and return its result (warm-ups, benchmarks)."""
        return self._threads[index].submit(fn, *args, **kwargs).result()

    def warm_up(self, shapes: Sequence[tuple[int, int]]) -> None:
        """Each replica, in its own thread and one after another, warms up on its share of each shape's candidates
        (compiled graphs specialise on the share); `warmed` then holds the whole calls' shapes."""
        parts = len(self.replicas)
        for index, replica in enumerate(self.replicas):
            own = []
            for size, batch in shapes:
                shares = split_seeds(range(batch), parts)
                if index < len(shares):  # fewer candidates than replicas leave the last replicas out
                    own.append((size, len(shares[index])))
            self.on_replica(index, warm_up_engine, replica, own)  # not compiled: one small run whatever `own` is
        first = self.replicas[0]
        if first.compiled:
            self.warmed = {Shape.of(params, batch) for size, batch in shapes
                           for params in warm_up_calls(size, first.fewstep is not None)}

    @property
    def spec(self) -> ModelSpec:
        return self.replicas[0].spec

    @property
    def device(self) -> str:
        return ",".join(r.device for r in self.replicas)

    @property
    def dtype(self):
        return self.replicas[0].dtype

    def generate(
        self,
        control: Image.Image,
        params: GenerationParams,
        seeds: Sequence[int],
        init_image: Image.Image | None = None,
        on_step: Callable[[int, int], None] | None = None,
        on_decoded: Callable[[list[Image.Image]], None] | None = None,
    ) -> list[Image.Image]:
        """`Engine.generate`, with the seeds split across the replicas; `on_step` sees the slowest one, and
        `on_decoded` all the images at once, in this thread, when every replica is done."""
        params.validate()
        if not seeds:
            raise ValueError("At least one seed is needed.")
        shares = split_seeds(seeds, len(self.replicas))
        done_steps = [0] * len(shares)
        progressed = threading.Condition()
        stop = threading.Event()

        def replica_step(i: int) -> Callable[[int, int], None]:
            def step(done: int, _total: int) -> None:
                if stop.is_set():
                    raise Cancelled()
                with progressed:
                    done_steps[i] = done
                    progressed.notify()

            return step

        futures = [self._threads[i].submit(replica.generate, control, params, share, init_image, replica_step(i))
                   for i, (replica, share) in enumerate(zip(self.replicas, shares, strict=False))]
        reported = 0
        try:
            while not all(f.done() for f in futures):
                if any(f.done() and f.exception() is not None for f in futures):
                    break  # one replica failed: stop the others, then raise its error below
                with progressed:
                    progressed.wait(timeout=0.05)
                    slowest = min(done_steps)
                if on_step is not None and slowest > reported:
                    reported = slowest
                    on_step(slowest, params.steps)
        finally:
            stop.set()  # a no-op when all finished; else the others stop at their next step
            wait(futures)
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:
            raise next((e for e in failed if not isinstance(e, Cancelled)), failed[0])
        if on_step is not None and min(done_steps) > reported:
            on_step(min(done_steps), params.steps)
        images = [image for f in futures for image in f.result()]
        if on_decoded is not None:
            on_decoded(images)
        return images

    def score_aesthetics(self, images: list[Image.Image]) -> list[float | None]:
        """Scores from the first replica (the only one that loads the predictor)."""
        return self.replicas[0].score_aesthetics(images)



def engine_from_pipeline(txt2img, spec: ModelSpec, aesthetic=None, fewstep_unet=None) -> Engine:
    """Wrap a ready `StableDiffusionControlNetPipeline` (already on its device) as an `Engine`.

    The image-to-image pipeline is made from the same components, so it shares every weight; with `fewstep_unet`
    (a UNet with a few-step LoRA fused in) so do the few-step preset's pipelines, but for the UNet.
    """
    from diffusers import StableDiffusionControlNetImg2ImgPipeline, StableDiffusionControlNetPipeline

    if getattr(txt2img, "safety_checker", None) is not None:
        # `decoding.decode` ends the pipelines' calls itself, without the checker: refuse rather than skip it unseen.
        raise ValueError("qart's engines run without diffusers' safety checker: load the pipeline with "
                         "safety_checker=None.")

    def pair(components: dict, t2i=None) -> tuple:
        t2i = t2i or StableDiffusionControlNetPipeline(**components)
        i2i = StableDiffusionControlNetImg2ImgPipeline(**components)
        for pipe in (t2i, i2i):
            pipe.set_progress_bar_config(disable=True)
        return t2i, i2i

    components = txt2img.components
    for model in (txt2img.unet, txt2img.controlnet, fewstep_unet):
        if model is not None:
            share_halves(getattr(model, "_orig_mod", model))
    txt2img, img2img = pair(components, txt2img)
    fewstep = pair(dict(components, unet=fewstep_unet)) if fewstep_unet is not None else None
    device = str(txt2img.device)
    return Engine(spec, txt2img, img2img, aesthetic, device, txt2img.unet.dtype, dict(txt2img.scheduler.config),
                  fewstep=fewstep, decode_group=1 if device.startswith("cuda") else 0)
