"""A generation row as the core's settings (`job_params`, `job_config`, `halftone_config`), the schedulers a job may
ask for here, and `validate_job`: the check every new job passes before it is stored (the page, the API, a bulk
generation, a sweep and the admin ask it), with a person's message.

The worker's engine is in `generator.warm_engines`; queueing and running a job in `generator.jobs`.
"""

from __future__ import annotations

import math

from django.conf import settings

from generator.core.codes import decision, qr
from generator.core.codes.echoes import echo
from generator.core.engines import halftone, parameters, ranking
from generator.generation_models import FLOAT_PARAMETERS
from generator.models import GenerationJob


def fewstep_scheduler() -> str | None:
    """The few-step preset's scheduler where a few-step LoRA is configured (QART_FEWSTEP_LORA), else None: the
    page and the API offer the preset only then."""
    q = settings.QART
    return q["FEWSTEP_SCHEDULER"] if q["FEWSTEP_LORA"] else None


def schedulers() -> tuple[str, ...]:
    """The schedulers a job may ask for here."""
    fewstep = fewstep_scheduler()
    return parameters.SCHEDULERS + ((fewstep,) if fewstep else ())


def job_params(job: GenerationJob) -> parameters.GenerationParams:
    return parameters.GenerationParams(
        prompt=job.prompt.text,
        negative_prompt=job.prompt.negative_text,
        steps=job.steps,
        guidance_scale=job.guidance_scale,
        conditioning_scale=job.conditioning_scale,
        control_start=job.control_start,
        control_end=job.control_end,
        strength=job.strength,
        size=job.size,
        scheduler=job.scheduler,
    )


def job_config(job: GenerationJob, model: decision.DecisionModel | None = None) -> ranking.BestOfNConfig:
    """Best-of-N's settings for `job`; `model` judges the candidates (the shipped one when None)."""
    return ranking.BestOfNConfig(
        n=job.candidates_per_batch,
        max_batches=job.max_batches,
        repair=job.repair,
        threshold=settings.QART["SCAN_THRESHOLD"],
        seed=job.seed,
        style=job.style,
        background=job.background,
        ecc=job.ecc,
        max_version=settings.QART["MAX_VERSION"],
        model=model,
    )


def halftone_config(job: GenerationJob, model: decision.DecisionModel | None = None) -> halftone.HalftoneConfig:
    """The halftone engine's settings for `job`; `model` judges the candidates (the shipped one when None)."""
    return halftone.HalftoneConfig(
        n=job.candidates_per_batch, seed=job.seed, threshold=settings.QART["SCAN_THRESHOLD"], size=job.size,
        ecc=job.ecc, max_version=settings.QART["MAX_VERSION"], model=model,
    )


def validate_job(job: GenerationJob) -> None:
    """Raise ValueError (or qr.ContentError) with a person's message for any bad parameter."""
    # Every engine: halftone ignores these, but they are stored and served all the same, and a NaN or infinity
    # would break every later answer that lists the job.
    for name in FLOAT_PARAMETERS:
        value = getattr(job, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name.replace('_', ' ').capitalize()} must be a finite number, got {value}.")
    if job.engine == GenerationJob.Engine.HALFTONE:
        # No prompt, steps or ControlNet: the picture (checked where it is uploaded) and the code are all.
        halftone_config(job).validate()
        qr.encode(job.content, ecc=job.ecc, max_version=settings.QART["MAX_VERSION"])
        return
    job_params(job).validate()
    if job.scheduler not in schedulers():
        raise ValueError(f"Scheduler “{echo(job.scheduler)}” is not offered here: choose one of "
                         f"{', '.join(schedulers())} (the few-step preset needs a few-step LoRA, QART_FEWSTEP_LORA).")
    job_config(job).validate()
    qr.encode(job.content, ecc=job.ecc, max_version=settings.QART["MAX_VERSION"])
    if job.style not in qr.STYLES:
        raise ValueError(f"Style must be one of {', '.join(qr.STYLES)}.")
    if job.background not in qr.BACKGROUNDS:
        raise ValueError(f"Background must be one of {', '.join(qr.BACKGROUNDS)}.")
