"""python manage.py qart_generate "PROMPT" --content TEXT -o DIR: best-of-N QR art, in this process.

Two engines: "diffusion" (Stable Diffusion + QR ControlNet; the prompt says what to draw) and "halftone" (no
GPU, no weights: `--image FILE` is drawn into the code, the prompt is optional and only labels the run).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator import job_parameters, warm_engines
from generator.core.codes import images, qr
from generator.core.codes.echoes import echo
from generator.core.engines import halftone, parameters, ranking
from generator.models import GenerationJob

# Options only the diffusion engine reads. They default to None (their defaults come in `diffusion_defaults`), so
# that the halftone engine can tell one was given and refuse it rather than ignore it: `--max-batches -1` with
# `--engine halftone` ran as if it were fine.
DIFFUSION_OPTIONS = ("max_batches", "model", "controlnet", "preset", "steps", "scheduler", "negative", "guidance",
                     "conditioning_scale", "control_start", "control_end", "strength", "init_image", "style",
                     "background", "no_repair")


class Command(BaseCommand):
    help = (
        "Generate QR art for TEXT in this process (no queue): N candidates in one batch, verified, scored, "
        "repaired if needed and ranked. Saves every candidate and the control image into DIR. "
        "--engine halftone --image FILE draws a picture into the code on the CPU, with no model weights."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = parameters.GenerationParams(prompt="-")
        parser.add_argument("prompt", nargs="?", default="", help="what the picture shows (optional for halftone)")
        parser.add_argument("--engine", choices=[e.value for e in GenerationJob.Engine],
                            help="diffusion (GPU weights) or halftone (CPU, --image); default: halftone when "
                                 "--image is given, else diffusion")
        parser.add_argument("--image", help="halftone: the picture or logo to draw the code into")
        parser.add_argument("--content", required=True, help="what the code carries, ideally a short link")
        parser.add_argument("-o", "--output", required=True, help="folder for the images (created if missing)")
        parser.add_argument("-n", type=int, default=settings.QART["CANDIDATES"], help="candidates per batch")
        parser.add_argument("--max-batches", type=int, help=f"default {settings.QART['MAX_BATCHES']}")
        parser.add_argument("--model", help="tiny, a cached hub id, a diffusers folder or a .safetensors file")
        parser.add_argument("--controlnet", help="QR ControlNet hub id (cached) or folder")
        parser.add_argument("--seed", type=int, help="first candidate's seed (random when omitted)")
        parser.add_argument("--preset", choices=list(parameters.PRESETS), help="scheduler and steps together")
        parser.add_argument("--steps", type=int, default=None, help=f"denoising steps (default {defaults.steps})")
        parser.add_argument("--scheduler", default=None, help=f"one of {', '.join(parameters.SCHEDULERS)}")
        parser.add_argument("--negative", help="negative prompt")
        parser.add_argument("--guidance", type=float, help=f"default {defaults.guidance_scale}")
        parser.add_argument("--conditioning-scale", type=float, help=f"default {defaults.conditioning_scale}")
        parser.add_argument("--control-start", type=float, help=f"default {defaults.control_start}")
        parser.add_argument("--control-end", type=float, help=f"default {defaults.control_end}")
        parser.add_argument("--strength", type=float, help="img2img strength (0-1]; the QR or --init-image")
        parser.add_argument("--init-image", help="picture to start from (img2img, needs --strength)")
        parser.add_argument("--size", type=int, default=defaults.size)
        parser.add_argument("--style", choices=qr.STYLES, help="control image module style (default square)")
        parser.add_argument("--background", choices=list(qr.BACKGROUNDS), help="default white")
        parser.add_argument("--no-repair", action="store_true", help="never repair failing candidates")
        parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")

    def handle(self, *args, **options) -> None:
        engine = options["engine"] or ("halftone" if options["image"] else "diffusion")
        if engine == "halftone":
            # `is`, not `in (None, False)`: `--max-batches 0` equals False and would pass unseen.
            given = [f"--{name.replace('_', '-')}" for name in DIFFUSION_OPTIONS
                     if options[name] is not None and options[name] is not False]
            if given:
                raise CommandError(f"The halftone engine does not use {', '.join(given)}: "
                                   f"{'it is' if len(given) == 1 else 'they are'} the diffusion engine's; leave "
                                   f"{'it' if len(given) == 1 else 'them'} out.")
            result, label, seconds = self.halftone(options)
        else:
            if options["image"]:
                raise CommandError("--image is the halftone engine's picture; for img2img use --init-image.")
            given = {name: options[name] for name in DIFFUSION_OPTIONS if options[name] is not None}
            result, label, seconds = self.diffusion({**options, **diffusion_defaults(), **given})
        self.report(result, label, seconds, options)

    def halftone(self, options: dict) -> tuple[ranking.BestOfNResult, str, float]:
        """Check, then draw the picture into the code on the CPU."""
        if not options["image"]:
            raise CommandError("The halftone engine needs --image FILE: the picture or logo to draw the code into.")
        config = halftone.HalftoneConfig(
            n=options["n"], seed=options["seed"], size=options["size"], threshold=settings.QART["SCAN_THRESHOLD"],
            max_version=settings.QART["MAX_VERSION"],
        )
        try:
            config.validate()
            qr.encode(options["content"], ecc=config.ecc, max_version=config.max_version)
            picture = images.open_picture(options["image"], max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
        except (ValueError, images.ImageError) as exc:
            raise CommandError(str(exc)) from None
        self.output_folder(options)
        started = time.perf_counter()
        result = halftone.best_halftones(picture, options["content"], config, self.progress_bar())
        self.stderr.write("")
        return result, "halftone (CPU)", time.perf_counter() - started

    def output_folder(self, options: dict) -> Path:
        out = Path(options["output"])
        try:
            out.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # exist_ok: only a file there ("cannot create the folder (File exists)" misled)
            raise CommandError(f"{out}: is a file, not a folder") from None
        except OSError as exc:
            raise CommandError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None
        return out

    def diffusion(self, options: dict) -> tuple[ranking.BestOfNResult, str, float]:
        """Check everything before loading any weights, then generate with the diffusion engine."""
        # 1. Check everything before loading any weights
        params = parameters.GenerationParams(
            prompt=options["prompt"], negative_prompt=options["negative"], guidance_scale=options["guidance"],
            conditioning_scale=options["conditioning_scale"], control_start=options["control_start"],
            control_end=options["control_end"], strength=options["strength"], size=options["size"],
        )
        config = ranking.BestOfNConfig(
            n=options["n"], max_batches=options["max_batches"], seed=options["seed"], style=options["style"],
            background=options["background"], repair=not options["no_repair"],
            threshold=settings.QART["SCAN_THRESHOLD"], max_version=settings.QART["MAX_VERSION"],
        )
        init = None
        try:
            if options["preset"]:
                params = params.with_preset(options["preset"])
                if options["preset"] == "fewstep" and job_parameters.fewstep_scheduler():
                    # The configured LoRA's scheduler (lcm or tcd), as on the page
                    params.scheduler = job_parameters.fewstep_scheduler()
            if options["steps"] is not None:
                params.steps = options["steps"]
            if options["scheduler"] is not None:
                params.scheduler = options["scheduler"]
            params.validate()
            if params.scheduler not in job_parameters.schedulers():  # lcm/tcd: only with the configured few-step LoRA
                raise ValueError(f"Scheduler “{echo(params.scheduler)}” is not offered here: choose one of "
                                 f"{', '.join(job_parameters.schedulers())} (the few-step preset needs "
                                 "QART_FEWSTEP_LORA, and then its QART_FEWSTEP_SCHEDULER).")
            config.validate()
            qr.encode(options["content"], ecc=config.ecc, max_version=config.max_version)
            if options["init_image"]:
                if params.strength is None:
                    raise ValueError("--init-image needs --strength (how much of it to repaint).")
                init = images.open_image(options["init_image"], settings.QART["MAX_IMAGE_PIXELS"])
        except (ValueError, images.ImageError) as exc:
            raise CommandError(str(exc)) from None
        spec = warm_engines.engine_spec(options["model"], options["controlnet"])
        if spec.tiny and options["controlnet"]:
            raise CommandError(unused_controlnet(options["model"]))
        self.output_folder(options)

        # 2. Load the engine (one clear message when weights are missing)
        try:
            # One-off: skip the minutes-long compile that a long-lived worker pays once.
            engine = warm_engines.get_engine(spec, optimize=False)
        except (parameters.EngineUnavailable, ImproperlyConfigured) as exc:  # missing weights, a bad QART_ setting
            raise CommandError(str(exc)) from None
        if engine.spec.tiny:
            self.stderr.write("Using the tiny model: random weights, so the images are noise (for testing).")

        # 3. Generate, with a progress bar on stderr
        started = time.perf_counter()
        result = ranking.best_of_n(engine, options["content"], params, config, self.progress_bar(), init)
        self.stderr.write("")
        return result, engine.spec.label, time.perf_counter() - started

    def report(self, result: ranking.BestOfNResult, label: str, seconds: float, options: dict) -> None:
        """Save every candidate and the control image, then print a table (or one JSON document)."""
        out = Path(options["output"])
        result.control.save(out / "control.png")
        rows = []
        for c in result.candidates:
            name = f"rank{c.rank:02d}-seed{c.seed}.png"
            c.image.save(out / name)
            rows.append({
                "rank": c.rank, "file": str(out / name), "seed": c.seed, "verdict": c.scan.verdict,
                "scan_probability": c.scan.scan_probability, "misread": c.scan.misread,
                "aesthetic_score": c.aesthetic, "repaired": c.repaired, "pixels_changed": c.pixels_changed,
                "ssim": c.ssim, "variant": c.variant, "fidelity_ssim": c.fidelity_ssim, "color_error": c.color_error,
            })
        if options["json"]:
            self.stdout.write(json.dumps({
                "prompt": options["prompt"], "content": result.code.content, "model": label,
                "scannable": result.scannable, "message": result.message, "control": str(out / "control.png"),
                "batches": result.batches, "seconds": {"total": round(seconds, 3),
                                                       "generation": round(result.generation_seconds, 3),
                                                       "scoring": round(result.scoring_seconds, 3)},
                "candidates": rows,
            }, ensure_ascii=False))
            return
        self.stdout.write(
            f"{'rank':>4}  {'verdict':7}  {'scan p':>6}  {'aesthetic':>9}  {'repaired':8}  {'fidelity':>8}  "
            f"{'colour err':>10}  file"
        )
        for row in rows:
            self.stdout.write(
                f"{row['rank']:>4}  {row['verdict']:7}  {row['scan_probability']:>6.2f}  "
                f"{_figure(row['aesthetic_score']):>9}  {'yes' if row['repaired'] else 'no':8}  "
                f"{_figure(row['fidelity_ssim']):>8}  {_figure(row['color_error'], 1):>10}  {row['file']}"
            )
        self.stdout.write(f"{result.message} ({seconds:.1f} s, {label})")

    def progress_bar(self):
        stream = sys.stderr
        interactive = stream.isatty()

        def show(stage: str, fraction: float) -> None:
            filled = int(round(30 * fraction))
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%  {stage}"
            stream.write(("\r" + line) if interactive else (line + "\n") if stage != "generating" else "")
            stream.flush()

        return show


def diffusion_defaults() -> dict:
    """What the diffusion engine's options are when not given (the page's defaults)."""
    defaults = parameters.GenerationParams(prompt="-")
    return {"max_batches": settings.QART["MAX_BATCHES"], "negative": defaults.negative_prompt,
            "guidance": defaults.guidance_scale, "conditioning_scale": defaults.conditioning_scale,
            "control_start": defaults.control_start, "control_end": defaults.control_end, "style": "square",
            "background": "white"}


def unused_controlnet(model: str | None) -> str:
    """Why `--controlnet` is refused where the tiny model serves: it draws with its own toy ControlNet, so the one
    named was ignored and the run looked configured when it was not.

    Args:
        model: the `--model` given, if any (else the tiny model came from QART_MODEL or the missing GPU).

    Returns:
        The one-line message.
    """
    if model:
        why = f"--model {model} is the tiny model"
    elif settings.QART["MODEL"]:
        why = f"without --model the tiny model serves (QART_MODEL={settings.QART['MODEL']})"
    else:
        why = "without --model the tiny model serves (this machine has no GPU)"
    return (f"--controlnet is not used: {why}, which brings its own toy ControlNet. Name a real base model with "
            "--model to use --controlnet, or leave --controlnet out.")


def _figure(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
