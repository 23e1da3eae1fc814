"""Loading the diffusion engines from local weights; nothing is ever downloaded.

Any SD1.5 checkpoint works as the base: a hub id (already in the local cache), a local diffusers folder
or a single `.safetensors`/`.ckpt` file. The `tiny` preset (`generator.core.engines.tiny`) is saved like the
hub and loaded through this same loader. Missing weights raise `ModelNotFound` with one message that names
the model and how to point qart at local weights.

    engine = load_engine(ModelSpec())                        # DreamShaper + QR Code Monster v2 (Modal's recipe)
    engine = load_split_engine(ModelSpec(), ["cuda:0", "cuda:1"])  # one replica per GPU; each call split
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from generator.core.engines import aesthetics
from generator.core.engines.controlnet import skipping_controlnet_class
from generator.core.engines.cuda import compile_for_cuda, compile_unet_for_cuda
from generator.core.engines.devices import check_device, pick_device
from generator.core.engines.diffusion import (
    Engine,
    SplitEngine,
    engine_from_pipeline,
    warm_up_engine,
)
from generator.core.engines.fewstep import load_fewstep_unet
from generator.core.engines.parameters import DEFAULT_BASE, DEFAULT_CONTROLNET, ModelNotFound, ModelSpec

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
# Component configs for a single-file base when ModelSpec.base_config is not set (looked up in the local cache only).
SD15_CONFIG_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"


AESTHETIC_HINT = ("Point QART_AESTHETIC_CLIP at a local CLIP ViT-L/14 folder and QART_AESTHETIC_HEAD at the LAION "
                  "aesthetic predictor's .pth or .safetensors file, or unset both to rank without aesthetic scores.")


def first_line(exc: Exception, limit: int = 300) -> str:
    """An exception's first line, at most `limit` characters (its type when it says nothing): libraries' errors
    (diffusers' converters, safetensors) run to pages."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


def _not_found(spec: ModelSpec, what: str, name: str, exc: Exception | None = None) -> ModelNotFound:
    """Weights that could not be loaded: missing here (the usual case, with how to fix it), or a local path that is
    there but unreadable as such weights (`exc` says why; "not on this machine" would send the user looking for
    files they have)."""
    if exc is not None and Path(name).expanduser().exists():
        reason = first_line(exc)
        where = f" (subfolder '{spec.controlnet_subfolder}', QART_CONTROLNET_SUBFOLDER)" if (
            what == "ControlNet" and spec.controlnet_subfolder) else ""
        return ModelNotFound(
            f"The {what} weights in '{name}'{where} could not be loaded: {reason}. It must be a diffusers folder "
            "(model_index.json or config.json beside the weights) as the hub repositories have it."
        )
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
        reason = first_line(exc)
        if "meta tensor" in reason:
            # diffusers builds each model empty ("meta") and fills in the file's tensors: one the file lacks
            # stays empty and fails when the model moves, with a message about meta tensors.
            reason = "some of the model's tensors are missing from it"
        raise unreadable(reason) from None
    return txt2img


def weights_fingerprint(spec: ModelSpec, limit: int = 10_000) -> tuple:
    """What the local weights `spec` names look like now: each local path's files with their sizes and modification
    times (a hub id, or a path not there, as itself). A load that failed is worth trying again once this changes.

    Args:
        spec: which weights.
        limit: files looked at per path at most (a folder pointed at by mistake must not cost a walk of a disk).
    """
    names = (spec.base, spec.controlnet, spec.base_config, spec.aesthetic_clip, spec.aesthetic_head, spec.fewstep_lora)
    return tuple((name, tuple(itertools.islice(_files(Path(name).expanduser()), limit)))
                 for name in filter(None, names))


def _files(path: Path) -> Iterator[tuple]:
    """(file, size, modification time, change time, inode) for `path`, or for each file under it in a fixed order;
    (path, None, ...) where one cannot be read (a broken link, a file gone meanwhile: still a change worth noticing)."""
    if not path.is_dir():
        try:
            stat = path.stat()  # a change of mode or a copy over it changes ctime or inode, not always mtime
            yield str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino
        except OSError:
            if path.is_symlink() or path.exists():
                yield str(path), None, None, None, None
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            yield from _files(Path(root, name))


def load_engine(
    spec: ModelSpec,
    device: str | None = None,
    dtype=None,
    warm_up: bool = True,
    optimize: bool = True,
    warm_shapes: Sequence[tuple[int, int]] = ((768, 8),),
    aesthetic: bool = True,
    cuda_graphs: bool = False,
    decoder_autotune: bool = False,
) -> Engine:
    """Load the pipelines once; the returned engine stays warm for every job.

    Args:
        spec: which weights.
        device: torch device; defaults to CUDA when present, else CPU.
        dtype: torch dtype; defaults to fp16 on CUDA, fp32 on CPU.
        warm_up: run short generations so the first job does not pay for lazy initialisation (and, compiled,
            for compiling: `warm_up_engine` compiles each of `warm_shapes`).
        optimize: on CUDA, apply `compile_for_cuda` (the measured fastest image-preserving recipe).
        warm_shapes: compiled, the (image side, candidates) pairs jobs use (QART_WARM_SHAPES), each compiled for
            text-to-image and image-to-image, and the few-step preset when configured; a job of another shape
            is drawn eagerly (`Engine.generate`). Not compiled: ignored (one small run initialises everything).
        aesthetic: load the aesthetic predictor too (when the spec names one).
        cuda_graphs: compiled, also record CUDA graphs (see `compile_for_cuda`).
        decoder_autotune: compiled, the VAE decoder under Inductor's max-autotune (QART_DECODER_AUTOTUNE; see
            `cuda.compile_decoder`).

    Returns:
        An `Engine`.

    With `spec.fewstep_lora`, the engine also serves the few-step preset: a copy of the UNet with that LoRA fused
    in, sharing every other weight (about 1.7 GB more in fp16).

    Raises:
        ModelNotFound: weights missing locally, with one message saying how to fix it.
        FewStepLoraError: the few-step LoRA is missing, unreadable or made for another model (one message).
        DeviceNotFound: `device` is not on this machine.
    """
    quiet_libraries()  # before the pipeline imports, which warn at import time
    import torch
    from diffusers import StableDiffusionControlNetPipeline

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
        raise _not_found(spec, "ControlNet", spec.controlnet, exc) from None

    # 2. Base SD1.5: a diffusers folder / cached hub id, or a single checkpoint file
    common = dict(controlnet=controlnet, dtype=dtype, safety_checker=None, requires_safety_checker=False)
    if spec.base.lower().endswith(SINGLE_FILE_SUFFIXES):
        txt2img = _load_single_file(spec, common)
    else:
        try:
            txt2img = StableDiffusionControlNetPipeline.from_pretrained(spec.base, local_files_only=True, **common)
        except (OSError, ValueError) as exc:
            log.info("Base model load failed: %s", exc)
            raise _not_found(spec, "base model", spec.base, exc) from None
    txt2img.to(device)

    # 3. Aesthetic predictor (optional)
    predictor = None
    if aesthetic and spec.aesthetic_clip and spec.aesthetic_head:
        head = Path(spec.aesthetic_head).expanduser()
        if not head.is_file():
            raise ModelNotFound(f"The aesthetic predictor's head '{spec.aesthetic_head}' is not a file on this "
                                f"machine. {AESTHETIC_HINT}")
        try:
            predictor = aesthetics.load_predictor(spec.aesthetic_clip, spec.aesthetic_head, device, dtype)
        except (OSError, ValueError) as exc:  # the CLIP folder: not on this machine, or not a CLIP model
            log.info("Aesthetic predictor load failed: %s", exc)
            raise ModelNotFound(f"The aesthetic predictor's CLIP model '{spec.aesthetic_clip}' could not be loaded "
                                f"from this machine ({exc}). {AESTHETIC_HINT}") from None
        except Exception as exc:  # the head's file: safetensors' own error, a .pth of other tensors (KeyError)...
            log.info("Aesthetic predictor head load failed: %r", exc)
            raise ModelNotFound(f"The aesthetic predictor's head '{spec.aesthetic_head}' could not be read "
                                f"({type(exc).__name__}: {exc}). {AESTHETIC_HINT}") from None

    # 4. The few-step preset's UNet: fused before anything fuses QKV or compiles
    fewstep_unet = load_fewstep_unet(txt2img.unet, spec.fewstep_lora) if spec.fewstep_lora else None

    if optimize and str(device).startswith("cuda"):
        compile_for_cuda(txt2img, cuda_graphs=cuda_graphs, decoder_autotune=decoder_autotune)
        if fewstep_unet is not None:
            fewstep_unet = compile_unet_for_cuda(fewstep_unet, cuda_graphs=cuda_graphs)
    engine = engine_from_pipeline(txt2img, spec, predictor, fewstep_unet)
    if warm_up:
        warm_up_engine(engine, warm_shapes)
    return engine


def load_split_engine(
    spec: ModelSpec,
    devices: Sequence[str],
    warm_up: bool = True,
    warm_shapes: Sequence[tuple[int, int]] = ((768, 8),),
    **kwargs,
) -> SplitEngine:
    """One warm engine per device (see `SplitEngine`), compiled with CUDA graphs on CUDA.

    Args:
        spec: which weights.
        devices: two or more devices, e.g. ["cuda:0", "cuda:1"].
        warm_up: warm each replica up in its own thread on its share of each of `warm_shapes`' (image side,
            candidates) (compiled graphs specialise on each replica's share; see `load_engine`).
        **kwargs: passed to `load_engine` (dtype, optimize).
    """
    if len(devices) < 2:
        raise ValueError("A split engine needs at least two devices.")
    gpus = [f"cuda:{d.partition(':')[2] or 0}" for d in devices if d.startswith("cuda")]
    if len(set(gpus)) < len(gpus):
        # Replicas record CUDA graphs in their own threads: two doing so on one GPU failed inside torch's graph trees
        # while recording the ControlNet's, as these replicas do ("storage data ptrs are not allocated in pool";
        # measured with the decoder's graphs recorded too, bench/GPU.md, fifteenth step).
        twice = sorted({g for g in gpus if gpus.count(g) > 1})
        raise ValueError(f"A split engine needs a different GPU for each replica; {', '.join(twice)} is named more "
                         f"than once in QART_DEVICES ({', '.join(devices)}).")
    for device in devices:
        check_device(device)  # before minutes of loading
    replicas = []
    for i, device in enumerate(devices):
        log.info("Loading replica %d of %d on %s", i + 1, len(devices), device)
        replicas.append(load_engine(spec, device=device, warm_up=False, aesthetic=i == 0, cuda_graphs=True,
                                    **kwargs))
    engine = SplitEngine(replicas)
    if warm_up:
        engine.warm_up(warm_shapes)
    return engine


def quiet_libraries() -> None:
    """No per-step progress bars or info chatter from diffusers/transformers: qart reports progress itself."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
