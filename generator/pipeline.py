"""The generation pipeline: Stable Diffusion 1.5 + a QR ControlNet, N candidates in one batched call.

Plain Python, importable without Django (torch and diffusers are imported when an engine loads).

    spec = ModelSpec()                                   # DreamShaper + QR Code Monster v2 (Modal's recipe)
    engine = load_engine(spec)                           # weights load once and stay warm
    images = engine.generate(control, GenerationParams(prompt="a misty forest"), seeds=range(8))
    engine = load_split_engine(spec, ["cuda:0", "cuda:1"])  # one replica per GPU; each call's candidates split

Any SD1.5 checkpoint works as the base: a hub id (already in the local cache), a local diffusers folder
or a single `.safetensors`/`.ckpt` file. The `tiny` preset (`generator.tiny`) is saved like the hub and
loaded through this same loader. Nothing is ever downloaded: missing weights raise `ModelNotFound` with
one message that names the model and how to point qart at local weights.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_BASE = "Lykon/DreamShaper"
DEFAULT_CONTROLNET = "monster-labs/control_v1p_sd15_qrcode_monster"
DEFAULT_CONTROLNET_SUBFOLDER = "v2"
DEFAULT_NEGATIVE = "worst quality, low quality, ugly, disfigured, blurry, watermark, text"
SCHEDULERS = ("ddim", "dpmpp_2m_karras", "euler_a", "unipc")
# Modal's production recipe for qart.codes used DDIM at 50 steps; "fast" trades a little quality for 2x.
PRESETS = {
    "quality": {"scheduler": "ddim", "steps": 50},
    "fast": {"scheduler": "dpmpp_2m_karras", "steps": 25},
    # Fewer steps change the images (unlike the engine's speed-ups, which keep them): a preset of its own.
    # DPM-Solver++ 2M is built to converge in 15-20 steps; whether codes scan as often is for a sweep to show.
    "turbo": {"scheduler": "dpmpp_2m_karras", "steps": 15},
}
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
# Component configs for a single-file base when ModelSpec.base_config is not set (looked up in the local cache only).
SD15_CONFIG_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
# Attention kernels on CUDA: "cudnn" prefers cuDNN's fused attention, "default" leaves PyTorch's own choice.
ATTENTION_CHOICES = ("cudnn", "default")
DEVICE_NAME = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


class EngineUnavailable(RuntimeError):
    """No engine can be loaded here; the message says why and how to fix it."""


class ModelNotFound(EngineUnavailable):
    """Requested weights are not on this machine (and qart never downloads at run time)."""


class DeviceNotFound(EngineUnavailable):
    """A configured device (QART_DEVICES) does not exist on this machine."""


class Cancelled(RuntimeError):
    """Raised by an `on_step` callback to stop a generation between denoising steps."""


@dataclass(frozen=True)
class ModelSpec:
    """Which weights to load. Each is a hub id (looked up in the local cache only) or a local path."""

    base: str = DEFAULT_BASE  # SD1.5 checkpoint: hub id, diffusers folder, or .safetensors/.ckpt file
    controlnet: str = DEFAULT_CONTROLNET  # QR ControlNet: hub id or folder
    controlnet_subfolder: str | None = DEFAULT_CONTROLNET_SUBFOLDER  # QR Code Monster keeps v2 in "v2/"
    base_config: str | None = None  # for single-file bases: a local diffusers folder with the SD1.5 configs
    aesthetic_clip: str | None = None  # CLIP ViT-L/14 vision tower for the aesthetic score; None: no score
    aesthetic_head: str | None = None  # LAION head weights (.pth or .safetensors)
    tiny: bool = False  # random toy weights: images are noise

    @property
    def label(self) -> str:
        return "tiny (random weights: images are noise)" if self.tiny else f"{self.base} + {self.controlnet}"


@dataclass
class GenerationParams:
    """Everything that shapes the images. Defaults follow Modal's published recipe (fast scheduler)."""

    prompt: str  # what the picture shows
    negative_prompt: str = DEFAULT_NEGATIVE  # what it should not
    steps: int = 25  # denoising steps, 1-150
    guidance_scale: float = 3.5  # classifier-free guidance, 0-20 (<= 1 turns guidance off)
    conditioning_scale: float = 1.5  # how hard the QR pattern is imposed, 0-3
    control_start: float = 0.25  # fraction of steps before the ControlNet starts, 0-1
    control_end: float = 1.0  # fraction of steps after which it stops, 0-1, > control_start
    strength: float | None = None  # img2img: how much of the init image is repainted, (0, 1]; None: txt2img
    size: int = 768  # output side in pixels, 256-1024, a multiple of 64
    scheduler: str = "dpmpp_2m_karras"  # one of SCHEDULERS

    def validate(self) -> None:
        """Raise ValueError with a message for a person on the first bad value."""
        if not self.prompt or not self.prompt.strip():
            raise ValueError("Prompt is empty: describe the picture the code should become.")
        if len(self.prompt) > 1000 or len(self.negative_prompt) > 1000:
            raise ValueError("Prompts are limited to 1,000 characters.")
        checks = [
            ("steps", self.steps, 1, 150),
            ("guidance scale", self.guidance_scale, 0.0, 20.0),
            ("conditioning scale", self.conditioning_scale, 0.0, 3.0),
            ("control start", self.control_start, 0.0, 1.0),
            ("control end", self.control_end, 0.0, 1.0),
            ("size", self.size, 256, 1024),
        ]
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"{name.capitalize()} must be between {low} and {high}, got {value}.")
        if self.control_start >= self.control_end:
            raise ValueError(
                f"Control start ({self.control_start}) must be before control end ({self.control_end})."
            )
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise ValueError(f"Strength must be above 0 and at most 1, got {self.strength}.")
        if self.size % 64:
            raise ValueError(f"Size must be a multiple of 64 pixels, got {self.size}.")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"Unknown scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}.")

    def with_preset(self, name: str) -> GenerationParams:
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
        return replace(self, **PRESETS[name])


def make_scheduler(name: str, config: dict):
    """A diffusers scheduler by qart's name, from the base model's scheduler config."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
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
    raise ValueError(f"Unknown scheduler {name!r}: choose one of {', '.join(SCHEDULERS)}.")


def skipping_controlnet_class():
    from diffusers import ControlNetModel

    class QRControlNet(ControlNetModel):
        """A ControlNet that does no work while its guidance is off.

        diffusers still runs the ControlNet on steps outside [control_start, control_end] and multiplies
        its residuals by zero: with start 0.25 that is a quarter of all ControlNet compute spent on
        zeros. Here those steps return zero residuals of the right shapes (learnt from the first real
        call at that input shape), which the UNet adds exactly as it would add the multiplied ones.
        """

        _residual_shapes: dict = {}

        def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=1.0,
                    *args, **kwargs):
            import torch

            key = (tuple(sample.shape), sample.dtype, str(sample.device))
            shapes = self._residual_shapes.get(key)
            if conditioning_scale == 0 and shapes is not None and not kwargs.get("guess_mode", False):
                # A list, as ControlNetModel returns: another type would make torch.compile recompile the UNet.
                down = [torch.zeros(s, dtype=sample.dtype, device=sample.device) for s in shapes[0]]
                mid = torch.zeros(shapes[1], dtype=sample.dtype, device=sample.device)
                return (down, mid) if not kwargs.get("return_dict", True) else _output(down, mid)
            out = super().forward(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale,
                                  *args, **kwargs)
            down, mid = (out if isinstance(out, tuple) else (out.down_block_res_samples, out.mid_block_res_sample))
            self._residual_shapes[key] = (tuple(tuple(d.shape) for d in down), tuple(mid.shape))
            return out

    def _output(down, mid):
        from diffusers.models.controlnets.controlnet import ControlNetOutput

        return ControlNetOutput(down_block_res_samples=down, mid_block_res_sample=mid)

    return QRControlNet


def _not_found(spec: ModelSpec, what: str, name: str) -> ModelNotFound:
    return ModelNotFound(
        f"The {what} weights '{name}' are not on this machine, and qart never downloads at run time. "
        "Point QART_MODEL (or --model) at a local diffusers folder or a .safetensors file and "
        "QART_CONTROLNET (or --controlnet) at a local ControlNet folder, or copy the hub repositories "
        f"({DEFAULT_BASE}, {DEFAULT_CONTROLNET}) into the Hugging Face cache; or use --model tiny."
    )


def _single_file_config(spec: ModelSpec) -> str:
    """The local diffusers folder whose configs shape a single-file checkpoint's UNet, VAE, text encoder, tokenizer
    and scheduler: `spec.base_config`, else SD1.5's configs already in the Hugging Face cache.

    Resolved here because diffusers' `from_single_file`, handed anything but a local folder, downloads the configs
    when they are not cached, `local_files_only=True` notwithstanding (it retries without it).
    """
    from huggingface_hub import snapshot_download

    name = spec.base_config or SD15_CONFIG_REPO
    hint = (
        f"A single-file base model ('{spec.base}') needs the SD1.5 component configs: point QART_BASE_CONFIG at a "
        "local diffusers folder of any SD1.5 model (model_index.json and the unet, vae, text_encoder, tokenizer and "
        f"scheduler configs; its weights are not needed), or copy {SD15_CONFIG_REPO} into the Hugging Face cache."
    )
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise ModelNotFound(f"'{name}' is not a diffusers folder (no model_index.json). {hint}")
        return str(folder)
    try:
        return snapshot_download(name, local_files_only=True, allow_patterns=["*.json", "**/*.json", "*.txt",
                                                                              "**/*.txt", "**/*.model"])
    except (OSError, ValueError) as exc:  # not cached (LocalEntryNotFoundError), or not a valid repo id
        log.info("Base config lookup failed: %s", exc)
        raise ModelNotFound(f"The configs '{name}' are not on this machine. {hint}") from None


def _load_single_file(spec: ModelSpec, common: dict):
    """`StableDiffusionControlNetPipeline` from one .safetensors/.ckpt file (original LDM or diffusers layout)."""
    from diffusers import StableDiffusionControlNetPipeline

    path = Path(spec.base).expanduser()
    if not path.is_file():
        raise _not_found(spec, "base model", spec.base)
    config = _single_file_config(spec)

    def unreadable(reason: str) -> ModelNotFound:
        return ModelNotFound(
            f"'{spec.base}' could not be loaded as a Stable Diffusion 1.5 checkpoint ({reason}). It must hold a "
            f"UNet, VAE and CLIP text encoder that match the configs in '{config}' (QART_BASE_CONFIG)."
        )

    try:
        txt2img = StableDiffusionControlNetPipeline.from_single_file(
            str(path), config=config, local_files_only=True, **common
        )
    except Exception as exc:  # a user's file fails anywhere in diffusers' converters: KeyError, SafetensorError...
        log.info("Single-file base model load failed: %s", exc)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if "meta tensor" in reason:
            # diffusers builds each model empty ("meta") and fills in the file's tensors: one the file lacks
            # stays empty and fails when the model moves, with a message about meta tensors.
            reason = "some of the model's tensors are missing from it"
        raise unreadable(reason) from None
    return txt2img


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

    def generate(
        self,
        control: Image.Image,
        params: GenerationParams,
        seeds: Sequence[int],
        init_image: Image.Image | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> list[Image.Image]:
        """Generate one candidate per seed in a single batched call.

        Args:
            control (`PIL.Image.Image`): the QR control image (it is resized to `params.size`).
            params (`GenerationParams`): prompt and sampling parameters; validated here.
            seeds (`Sequence[int]`): one seed per candidate. The same seed and parameters give the same
                image whatever the batch size or position.
            init_image (`PIL.Image.Image`, *optional*): for img2img, the picture to start from; defaults to
                the control image when `params.strength` is set.
            on_step (`Callable[[int, int], None]`, *optional*): called after each denoising step with
                (step, total); raise `Cancelled` in it to stop.

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
        pipe = self.img2img if params.strength is not None else self.txt2img
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
            guidance_scale=params.guidance_scale,
            controlnet_conditioning_scale=params.conditioning_scale,
            control_guidance_start=params.control_start,
            control_guidance_end=params.control_end,
            generator=generators,
            callback_on_step_end=step_end,
            output_type="pil",
        )
        # 3. One batched denoising run
        if params.strength is not None:
            init = (init_image or control).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
            kwargs.update(image=init, control_image=control, strength=params.strength)
        else:
            kwargs.update(image=control, height=size, width=size)
        try:
            with torch.inference_mode(), attention_context(self.device, self.attention):
                return list(pipe(**kwargs).images)
        except torch.cuda.OutOfMemoryError:
            # 4. Out of GPU memory: free what the failed attempt held and run the batch in two halves.
            # Per-candidate generators keep every image the same as in one batch.
            if len(seeds) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(seeds) // 2
            log.warning("Out of GPU memory with %d candidates; retrying as %d + %d", len(seeds), half,
                        len(seeds) - half)
            first = self.generate(control, params, list(seeds[:half]), init_image, on_step)
            return first + self.generate(control, params, list(seeds[half:]), init_image, on_step)

    def score_aesthetics(self, images: list[Image.Image]) -> list[float | None]:
        """Aesthetic scores, or None per image when no predictor is configured."""
        if self.aesthetic is None:
            return [None] * len(images)
        return self.aesthetic.score(images)


def _graph_thread() -> None:
    """Set up CUDA graph trees' per-thread state in a thread torch did not create.

    torch 2.11 sets it up only in the thread that first imports `torch._inductor.cudagraph_trees` (and in
    autograd's threads) and fails an assertion in any other thread that records a graph; 2.13 does it itself.
    """
    import torch

    if not torch.cuda.is_available():
        return
    from torch._inductor import cudagraph_trees

    local = cudagraph_trees.local
    if not hasattr(local, "tree_manager_containers"):  # what the module does for its importing thread
        local.tree_manager_containers = {}
        local.tree_manager_locks = collections.defaultdict(threading.Lock)


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
    _threads: list[ThreadPoolExecutor] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"qart-replica-{i}", initializer=_graph_thread)
                         for i in range(len(self.replicas))]

    def on_replica(self, index: int, fn: Callable, *args, **kwargs):
        """Run `fn` in replica `index`'s own thread and return its result (warm-ups, benchmarks)."""
        return self._threads[index].submit(fn, *args, **kwargs).result()

    def warm_up(self, size: int, batch: int) -> None:
        """Each replica, in its own thread and one after another, generates its share of `batch` candidates."""
        for index, share in enumerate(split_seeds(range(batch), len(self.replicas))):
            self.on_replica(index, _warm_up, self.replicas[index], size, len(share))

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
    ) -> list[Image.Image]:
        """`Engine.generate`, with the seeds split across the replicas; `on_step` sees the slowest one."""
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
        return [image for f in futures for image in f.result()]

    def score_aesthetics(self, images: list[Image.Image]) -> list[float | None]:
        """Scores from the first replica (the only one that loads the predictor)."""
        return self.replicas[0].score_aesthetics(images)


_sdpa_order_ready: set[str] = set()  # devices whose default SDPA priority torch has filled in


def _initialise_sdpa_priority(device: str) -> None:
    """Make torch fill in its default SDPA priority order now, once per device, before anyone changes it.

    torch sets its default order lazily, at the first attention call of the process (on Hopper with a recent
    cuDNN that default already puts cuDNN first). `sdpa_kernel(..., set_priority=True)` entered before that
    saves the not-yet-filled order (flash first) and restores it on exit, which leaves the whole process on
    flash afterwards: seen on an H200 (2026-11-22), where plain eager diffusers then took 5.80 s instead of
    5.05 s. Asking for a backend choice (no kernel runs) fills the default in first.
    """
    if device in _sdpa_order_ready:
        return
    _sdpa_order_ready.add(device)
    try:
        import torch

        q = torch.empty(1, 1, 8, 64, device=device, dtype=torch.float16)
        torch._fused_sdp_choice(q, q, q)
    except Exception as exc:  # a private API: never let it stop a generation
        log.info("Could not initialise the SDPA priority order on %s: %s", device, exc)


def attention_context(device: str, attention: str = "cudnn"):
    """The context `Engine.generate` runs the pipeline in: which scaled-dot-product-attention kernel to prefer.

    Why: SD1.5's self-attention at the 96x96 latent level (9,216 tokens, heads of 40; 161 calls per 25-step
    generation at 768^2 with ControlNet) is the costliest attention in the pipeline. On an H200 (torch 2.11,
    cuDNN 9.19, batch 16) one such call takes 10.4 ms on the flash kernel and 5.8 ms on cuDNN attention; a
    whole eager generation took 5.80 s on flash (profiled) against 5.05 s in a fresh process, where torch's
    default is cuDNN (bench/RESULTS.md, GPU section). So on
    CUDA, "cudnn" puts cuDNN first and keeps flash, memory-efficient and math as fallbacks, in that order, for
    inputs cuDNN refuses (older GPUs; head sizes it does not take, such as the VAE's 512). On that H200,
    PyTorch's own default already picks cuDNN for these calls, so "cudnn" pins it rather than speeding up;
    where torch puts flash first (other GPUs, older cuDNN, TORCH_CUDNN_SDPA_PREFERRED=0) it changes the kernel
    (not measured off Hopper). Images stay within fp16 rounding (measured: 1/255 max, as torch.compile alone).

    Notes: the flags are process-wide while the context is open (generation runs in one thread per worker).
    Under `torch.compile` the kernel is chosen when a graph is traced, not per call: dynamo does not re-trace
    when these flags change, and Inductor's on-disk caches (AOTAutograd/FX graph) do not key on them either,
    so a compiled deployment must trace inside this context and tag its cache per choice
    (`torch.compiler.config.cache_key_tag`, as bench/gpu.py does).
    CPU and MPS get no context ("default" everywhere): nothing to gain there and images stay as they were.
    On a torch without `set_priority` or cuDNN attention this falls back to no context.
    """
    import contextlib

    if attention not in ATTENTION_CHOICES:
        raise ValueError(f"Unknown attention {attention!r}: choose one of {', '.join(ATTENTION_CHOICES)}.")
    if attention == "default" or not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                 SDPBackend.MATH]
        context = sdpa_kernel(order, set_priority=True)
    except (ImportError, AttributeError, TypeError) as exc:  # torch too old for cuDNN attention / set_priority
        log.info("cuDNN attention preference unavailable (%s); using PyTorch's default", exc)
        return contextlib.nullcontext()
    _initialise_sdpa_priority(str(device))  # before the context saves the order it will restore
    return context


def engine_from_pipeline(txt2img, spec: ModelSpec, aesthetic=None) -> Engine:
    """Wrap a ready `StableDiffusionControlNetPipeline` (already on its device) as an `Engine`.

    The image-to-image pipeline is made from the same components, so it shares every weight.
    """
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    txt2img.set_progress_bar_config(disable=True)
    img2img = StableDiffusionControlNetImg2ImgPipeline(**txt2img.components)
    img2img.set_progress_bar_config(disable=True)
    return Engine(spec, txt2img, img2img, aesthetic, str(txt2img.device), txt2img.unet.dtype,
                  dict(txt2img.scheduler.config))


def compile_for_cuda(txt2img, cuda_graphs: bool = False) -> None:
    """Make a CUDA pipeline fast without changing its images beyond fp16 rounding (in place).

    The recipe measured fastest on an H200 (bench/RESULTS.md, variant D: 3.35 s for 8 candidates at 768², 25
    steps, against 4.66 s eager with the ControlNet skip): fused QKV projections and channels_last for the
    UNet, ControlNet and VAE, cuDNN autotuning, and torch.compile (Inductor, default mode) of the UNet, the
    ControlNet and the VAE decoder. Images stay within fp16 rounding of the eager pipeline (max 1/255).
    Compiling takes minutes on a cold cache; the worker pays it once, in its warm-up.

    `cuda_graphs` also records the UNet and ControlNet as CUDA graphs (mode "reduce-overhead"): no faster on
    one GPU (3.33 s vs 3.35 s, variant F), but a step then costs Python almost nothing, which a split engine
    needs (its replicas share one interpreter). Graphs are recorded per thread: call the pipeline from one.
    """
    import torch
    import torch._dynamo
    import torch._inductor.config as inductor_config

    for module in (txt2img.unet, txt2img.controlnet, txt2img.vae):
        module.fuse_qkv_projections()
        module.to(memory_format=torch.channels_last)
    torch.backends.cudnn.benchmark = True
    # The ControlNet's real and skipped paths and the img2img pipeline add graphs; stay under dynamo's
    # recompile limit, past which it silently falls back to eager.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    inductor_config.conv_1x1_as_mm = True
    mode = "reduce-overhead" if cuda_graphs else None
    txt2img.unet = torch.compile(txt2img.unet, fullgraph=False, mode=mode)
    txt2img.controlnet = torch.compile(txt2img.controlnet, fullgraph=False, mode=mode)
    txt2img.vae.decoder = torch.compile(txt2img.vae.decoder, fullgraph=False)


def pick_device() -> tuple[str, object]:
    """The best device here and its dtype: CUDA in fp16, else CPU fp32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def parse_devices(text: str) -> list[str]:
    """Devices from a comma-separated setting ("cuda:0,cuda:1"); empty means "the best one here".

    A device named twice gets two replicas (on the CPU that is how the tests run a split engine).

    Raises:
        ValueError: a name that is not cpu, mps, cuda or cuda:N.
    """
    devices = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in devices if not DEVICE_NAME.match(d)]
    if bad:
        raise ValueError(f"Unknown device {bad[0]!r}: use cpu, mps, cuda or cuda:N, comma-separated.")
    return devices


def unused_gpus_hint(gpu_count: int, devices: Sequence[str]) -> str | None:
    """A line for the worker's log when it leaves GPUs of this machine idle, saying how to use them."""
    used = {int(d.partition(":")[2] or 0) for d in devices if d.startswith("cuda")} or {0}
    idle = [i for i in range(gpu_count) if i not in used]
    if not idle:
        return None
    every = ",".join(f"cuda:{i}" for i in range(gpu_count))
    return (f"This machine has {gpu_count} GPUs and this worker uses {len(used)}: start one worker per GPU "
            f"(CUDA_VISIBLE_DEVICES=<n>) for more jobs an hour, or set QART_DEVICES={every} to share each job "
            f"across them for faster jobs.")


def check_device(device: str) -> None:
    """Raise `DeviceNotFound` with one message when `device` is not on this machine."""
    import torch

    if not device.startswith("cuda"):
        if device == "mps" and not torch.backends.mps.is_available():
            raise DeviceNotFound("The device 'mps' is not available on this machine.")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} GPU{'s' if count != 1 else ''}" + (f" (cuda:0 to cuda:{count - 1})" if count > 1 else "")
        raise DeviceNotFound(f"The device '{device}' is not on this machine, which has {have}: set "
                             f"QART_DEVICES to GPUs it has, or leave it empty to use the best one.")


def load_engine(
    spec: ModelSpec,
    device: str | None = None,
    dtype=None,
    warm_up: bool = True,
    optimize: bool = True,
    warm_size: int = 768,
    warm_batch: int = 8,
    aesthetic: bool = True,
    cuda_graphs: bool = False,
) -> Engine:
    """Load the pipelines once; the returned engine stays warm for every job.

    Args:
        spec: which weights.
        device: torch device; defaults to CUDA when present, else CPU.
        dtype: torch dtype; defaults to fp16 on CUDA, fp32 on CPU.
        warm_up: run one generation so the first job does not pay for lazy initialisation (and, compiled,
            for compiling: the warm-up uses the production shape `warm_size`² x `warm_batch`).
        optimize: on CUDA, apply `compile_for_cuda` (the measured fastest image-preserving recipe).
        warm_size: image side of the compiled warm-up, the size jobs use.
        warm_batch: candidates of the compiled warm-up, the batch jobs use.
        aesthetic: load the aesthetic predictor too (when the spec names one).
        cuda_graphs: compiled, also record CUDA graphs (see `compile_for_cuda`).

    Returns:
        An `Engine`.

    Raises:
        ModelNotFound: weights missing locally, with one message saying how to fix it.
        DeviceNotFound: `device` is not on this machine.
    """
    quiet_libraries()  # before the pipeline imports, which warn at import time
    import torch
    from diffusers import StableDiffusionControlNetPipeline

    from generator import aesthetics

    if device is None:
        device, _ = pick_device()
    check_device(str(device))
    dtype = dtype or (torch.float16 if str(device).startswith("cuda") else torch.float32)

    # 1. ControlNet (QR Code Monster keeps v2 in a subfolder)
    controlnet_class = skipping_controlnet_class()
    try:
        controlnet = controlnet_class.from_pretrained(
            spec.controlnet, subfolder=spec.controlnet_subfolder, dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        log.info("ControlNet load failed: %s", exc)
        raise _not_found(spec, "ControlNet", spec.controlnet) from None

    # 2. Base SD1.5: a diffusers folder / cached hub id, or a single checkpoint file
    common = dict(controlnet=controlnet, dtype=dtype, safety_checker=None, requires_safety_checker=False)
    if spec.base.lower().endswith(SINGLE_FILE_SUFFIXES):
        txt2img = _load_single_file(spec, common)
    else:
        try:
            txt2img = StableDiffusionControlNetPipeline.from_pretrained(spec.base, local_files_only=True, **common)
        except (OSError, ValueError) as exc:
            log.info("Base model load failed: %s", exc)
            raise _not_found(spec, "base model", spec.base) from None
    txt2img.to(device)

    # 3. Aesthetic predictor (optional)
    predictor = None
    if aesthetic and spec.aesthetic_clip and spec.aesthetic_head:
        try:
            predictor = aesthetics.load_predictor(spec.aesthetic_clip, spec.aesthetic_head, device, dtype)
        except (OSError, ValueError, RuntimeError) as exc:
            log.info("Aesthetic predictor load failed: %s", exc)
            raise _not_found(spec, "aesthetic predictor", spec.aesthetic_clip) from None

    if optimize and str(device).startswith("cuda"):
        compile_for_cuda(txt2img, cuda_graphs=cuda_graphs)
    engine = engine_from_pipeline(txt2img, spec, predictor)
    if warm_up:
        _warm_up(engine, warm_size, warm_batch)
    return engine


def _warm_up(engine: Engine, size: int, batch: int) -> None:
    """One short generation. Compiled graphs specialise on shapes: warm up on the jobs' shape (size² x batch),
    or the first job compiles (minutes); an eager engine only needs a small run."""
    compiled = hasattr(engine.txt2img.unet, "_orig_mod")
    size, batch = (size, batch) if compiled else (256, 1)
    warm = GenerationParams(prompt="warm-up", steps=2, size=size)
    engine.generate(Image.new("RGB", (size, size), "white"), warm, seeds=list(range(batch)))


def load_split_engine(
    spec: ModelSpec,
    devices: Sequence[str],
    warm_up: bool = True,
    warm_size: int = 768,
    warm_batch: int = 8,
    **kwargs,
) -> SplitEngine:
    """One warm engine per device (see `SplitEngine`), compiled with CUDA graphs on CUDA.

    Args:
        spec: which weights.
        devices: two or more devices, e.g. ["cuda:0", "cuda:1"].
        warm_up: warm each replica up in its own thread on its share of `warm_batch` candidates at
            `warm_size`² (compiled graphs specialise on each replica's share).
        **kwargs: passed to `load_engine` (dtype, optimize).
    """
    if len(devices) < 2:
        raise ValueError("A split engine needs at least two devices.")
    for device in devices:
        check_device(device)  # before minutes of loading
    replicas = []
    for i, device in enumerate(devices):
        log.info("Loading replica %d of %d on %s", i + 1, len(devices), device)
        replicas.append(load_engine(spec, device=device, warm_up=False, aesthetic=i == 0, cuda_graphs=True,
                                    **kwargs))
    engine = SplitEngine(replicas)
    if warm_up:
        engine.warm_up(warm_size, max(warm_batch, 1))
    return engine


def quiet_libraries() -> None:
    """No per-step progress bars or info chatter from diffusers/transformers: qart reports progress itself."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def tiny_spec(folder: str | Path) -> ModelSpec:
    """Build (once) and describe the tiny preset saved in `folder`."""
    from generator import tiny

    folder = Path(folder)
    marker = folder / "base" / "model_index.json"
    if not marker.exists():
        tiny.save_tiny_models(folder)
    return ModelSpec(
        base=str(folder / "base"),
        controlnet=str(folder / "controlnet"),
        controlnet_subfolder="v2",
        aesthetic_clip=str(folder / "aesthetic" / "clip"),
        aesthetic_head=str(folder / "aesthetic" / "head.safetensors"),
        tiny=True,
    )
