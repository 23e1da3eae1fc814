"""The worker's warm generation engines: which weights a job is drawn with (`engine_spec`), each engine loaded once
per process (`get_engine`), and a load that failed remembered so that it is not tried again for every job.

The worker loads its engine before it takes a job (`generator.worker`), a command with its first job
(`qart_generate`); a job takes it from here (`generator.jobs`). What a job asks of the engine is in
`generator.job_parameters`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from generator.core.engines import diffusion, loading, parameters, ranking, tiny

log = logging.getLogger(__name__)
_engines: dict[tuple[parameters.ModelSpec, bool], diffusion.Engine] = {}
LOAD_RETRY_SECONDS = 300


@dataclass(frozen=True)
class FailedLoad:
    at: float  # time.monotonic() of the failure
    fingerprint: tuple  # the weights as they were (`loading.weights_fingerprint`)
    message: str  # the EngineUnavailable's, raised again until the files change


_failed_loads: dict[tuple[parameters.ModelSpec, bool], FailedLoad] = {}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def engine_spec(model: str | None = None, controlnet: str | None = None) -> parameters.ModelSpec:
    """The weights to use: explicit arguments, else QART_* settings, else the real defaults on a GPU
    and the tiny preset without one."""
    q = settings.QART
    model = model or q["MODEL"] or (parameters.DEFAULT_BASE if cuda_available() else "tiny")
    if model == "tiny":
        return replace(tiny.tiny_spec(q["MODEL_DIR"] / "tiny"), fewstep_lora=q["FEWSTEP_LORA"] or None)
    return parameters.ModelSpec(
        base=model,
        controlnet=controlnet or q["CONTROLNET"] or parameters.DEFAULT_CONTROLNET,
        controlnet_subfolder=q["CONTROLNET_SUBFOLDER"] or None,
        base_config=q["BASE_CONFIG"] or None,
        aesthetic_clip=q["AESTHETIC_CLIP"] if q["AESTHETIC_HEAD"] else None,
        aesthetic_head=q["AESTHETIC_HEAD"] or None,
        fewstep_lora=q["FEWSTEP_LORA"] or None,
    )


def warm_shapes() -> tuple[tuple[int, int], ...]:
    """The (size, candidates) pairs the worker compiles at start, from QART_WARM_SHAPES.

    Parsed here, not in settings (which import no application module); a bad value stops the worker before it loads.
    """
    try:
        return parameters.parse_shapes(settings.QART["WARM_SHAPES"])
    except ValueError as exc:
        raise ImproperlyConfigured(f"QART_WARM_SHAPES: {exc}") from None


def get_engine(
    spec: parameters.ModelSpec | None = None, optimize: bool = True
) -> diffusion.Engine | diffusion.SplitEngine:
    """The warm engine for `spec` (default: from settings), loaded once per process.

    `optimize` compiles on CUDA (minutes once, then ~1.5x faster): right for long-lived workers, not for a
    one-off command, which gets the eager pipeline (the same images within fp16 rounding).

    A load that failed is not tried again for every job: with real weights each try loads gigabytes before it fails
    (a bad LoRA is met after SD1.5 is loaded). Its error is raised again until the files the spec names change
    (`loading.weights_fingerprint`) or `LOAD_RETRY_SECONDS` pass (weights copied into the hub cache change no path
    the spec names).
    """
    spec = spec or engine_spec()
    key = (spec, optimize)
    if key in _engines:
        return _engines[key]
    fingerprint = loading.weights_fingerprint(spec)
    failed = _failed_loads.get(key)
    if failed and time.monotonic() - failed.at < LOAD_RETRY_SECONDS and fingerprint == failed.fingerprint:
        raise parameters.EngineUnavailable(failed.message)
    log.info("Loading generation engine: %s", spec.label)
    devices, shapes = settings.QART["DEVICES"], warm_shapes()
    try:
        if len(devices) > 1:
            engine = loading.load_split_engine(spec, devices, optimize=optimize, warm_shapes=shapes)
        else:
            engine = loading.load_engine(spec, devices[0] if devices else None, optimize=optimize, warm_shapes=shapes,
                                         decoder_autotune=settings.QART["DECODER_AUTOTUNE"])
    except Exception as exc:
        if not isinstance(exc, parameters.EngineUnavailable):  # a file failing where no check foresaw it
            log.exception("Loading the generation engine failed")
            exc = parameters.EngineUnavailable(
                f"The generation engine could not be loaded ({type(exc).__name__}: {exc}). Check the files that "
                "QART_MODEL, QART_CONTROLNET, QART_AESTHETIC_CLIP, QART_AESTHETIC_HEAD and QART_FEWSTEP_LORA name."
            )
        _failed_loads[key] = FailedLoad(time.monotonic(), fingerprint, str(exc))
        raise exc from None
    _failed_loads.pop(key, None)
    _engines[key] = engine
    ranking.warm_verifier(ranking.BestOfNConfig().workers)
    return engine


def loaded_engine(spec: parameters.ModelSpec | None = None) -> diffusion.Engine | diffusion.SplitEngine | None:
    """The engine `get_engine` already holds for `spec` (default: from settings), or None; never loads."""
    return _engines.get((spec or engine_spec(), True))


def load_error(spec: parameters.ModelSpec | None = None) -> str | None:
    """Why the last load of `spec`'s engine failed, while that failure stands; None otherwise."""
    failed = _failed_loads.get((spec or engine_spec(), True))
    return failed.message if failed else None
