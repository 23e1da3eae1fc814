"""Sweep reports for staff: the team's runs, a run's report (tables, plots, the toast plot), and the team default.

The figures come from the core (`generator.core.evals.statistics`); this module feeds it a run's samples, loads
images from storage for the toast plot, and stores the chosen configuration as the team's default `GenerationPreset`.
`qart_report` uses the same helpers, so the command and the pages report the same thing.

Access: staff only, and only runs of the user's teams (another team's run answers 404); viewers may look,
making a configuration the default needs an editor or owner of the run's team.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from PIL import Image

from generator.core.codes import images
from generator.core.codes.echoes import echo
from generator.core.evals import statistics
from generator.evals import sweeps
from generator.models import Candidate, EvalRun, EvalSample, GenerationJob, GenerationPreset
from qartsite.access import can_edit, get_for_user_or_404, require_editor, staff_required
from qartsite.numbers import whole
from qartsite.plurals import possessive
from qartsite.responses import plain_400

DEFAULT_MIN_SCAN_RATE = 0.95
# Sweep-only settings a team default must not carry: a fixed seed would give every job the same picture, and
# sweeps turn repair off and draw one batch to measure raw scan rates, which people's jobs should not copy.
NOT_PRESET = ("seed", "repair", "max_batches")
SAMPLE_FIELDS = ("prompt", "content", "config", "config_key", "status", "scores", "generation_seconds",
                 "scoring_seconds", "total_seconds")


def sample_dicts(run: EvalRun) -> list[dict]:
    """The run's samples as the plain dicts `generator.core.evals.statistics` takes, in the order they were created."""
    return list(EvalSample.objects.filter(run=run).order_by("pk").values(*SAMPLE_FIELDS))


def swept_names(run: EvalRun, samples: list[dict]) -> list[str]:
    """The swept parameters, by name: the grid's, else those the samples' configurations carry."""
    names = set(run.grid) or {name for s in samples for name in (s["config"] or {})}
    return sorted(names)


def default_axes(names: list[str]) -> tuple[str | None, str | None]:
    """Rows and columns of the toast plot when none are asked for: the first two swept parameters."""
    return (names[0] if names else None), (names[1] if len(names) > 1 else None)


def image_loader(run: EvalRun):
    """`load_stored_image` for the images of `run`'s own candidates only: a sample's `scores` are copied data, and a
    file name written there by hand must not open another team's files."""
    own = set(Candidate.objects.filter(job__eval_samples__run=run).values_list("image", flat=True))
    return lambda name: load_stored_image(name) if name in own else None


def load_stored_image(name: str) -> Image.Image | None:
    """A candidate's image from storage, or None if it is gone or unreadable (the toast cell shows grey)."""
    try:
        with default_storage.open(name, "rb") as stored:
            return images.open_image(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    except (OSError, images.ImageError):
        return None


def preset_params(run: EvalRun, config: dict) -> dict:
    """What a preset from this run's configuration sets: the run's fixed parameters, then the swept ones."""
    fields = {f.name for f in GenerationJob._meta.get_fields()}
    params = {**(run.base_params or {}), **(config or {})}
    return {name: value for name, value in params.items() if name in fields and name not in NOT_PRESET}


def make_default(run: EvalRun, summary: statistics.ConfigSummary, user=None, name: str = "") -> GenerationPreset:
    """Store a configuration of `run` as its team's default preset, replacing the previous default.

    A preset of the same name is updated. Both changes happen in one transaction, so the team never has two
    defaults (a constraint forbids it) nor, after a failure, none.
    """
    name = (name or f"{run.name}: {summary.config_key or 'base'}")[:120]
    with transaction.atomic():
        GenerationPreset.objects.filter(team=run.team, is_default=True).exclude(name=name).update(is_default=False)
        preset, _ = GenerationPreset.objects.update_or_create(
            team=run.team, name=name,
            defaults={"params": preset_params(run, summary.config), "is_default": True, "source_run": run,
                      "created_by": user},
        )
    return preset


def default_preset(team_id) -> GenerationPreset | None:
    """The team's default preset, if it has one."""
    if not team_id:
        return None
    return GenerationPreset.objects.filter(team_id=team_id, is_default=True).select_related("source_run").first()


def preset_initial(preset: GenerationPreset | None, field_names) -> dict:
    """The preset's values for the form fields it names (the generation form's initial values)."""
    if preset is None:
        return {}
    return {name: value for name, value in preset.params.items() if name in field_names and name not in NOT_PRESET}


@dataclass
class RunReport:
    """A run's report as the page, the command and the templates use it."""

    run: EvalRun
    samples: list[dict]
    summaries: list[statistics.ConfigSummary]
    prompts: list[str]
    swept: list[str]

    @property
    def finished_count(self) -> int:
        return len(statistics.finished(self.samples))

    @property
    def rows(self) -> list[dict]:
        return table_rows(self.summaries)

    def summary(self, config_key: str) -> statistics.ConfigSummary | None:
        return next((s for s in self.summaries if s.config_key == config_key), None)

    def toast(self, prompt: str, rows: str | None, cols: str | None, min_scan_rate: float) -> statistics.ToastGrid:
        # Other swept parameters are held at the configuration `--select best` would choose.
        fixed = statistics.choose(self.summaries, min_scan_rate).summary.config if self.summaries else {}
        return statistics.toast_grid(self.samples, prompt, rows, cols, fixed)


def build(run: EvalRun) -> RunReport:
    samples = sample_dicts(run)
    summaries = statistics.summarize(samples)
    return RunReport(run, samples, summaries, statistics.prompts_of(samples), swept_names(run, samples))


def percent(value: float | None) -> str:
    return "–" if value is None or value != value else f"{100 * value:.1f}%"


def number(value: float | None, unit: str = "") -> str:
    return "–" if value is None or value != value else f"{value:.2f}{unit}"


def table_rows(summaries: list[statistics.ConfigSummary]) -> list[dict]:
    """The report's table, formatted once for the page, the HTML file and the printed summary."""
    return [
        {
            "config_key": s.config_key, "label": s.config_key or "(base parameters)", "pareto": s.pareto,
            "samples": s.samples, "failed": s.failed, "candidates": s.candidates, "passes": s.passes,
            "scan_rate": percent(s.scan_rate), "interval": f"{percent(s.scan_low)}–{percent(s.scan_high)}",
            "batches": [(k, percent(m), percent(p)) for k, m, p in zip(s.batch_sizes, s.batch_measured,
                                                                       s.batch_model, strict=True)],
            "aesthetic_mean": number(s.aesthetic_mean), "aesthetic_median": number(s.aesthetic_median),
            "aesthetic_iqr": f"{number(s.aesthetic_low)}–{number(s.aesthetic_high)}",
            "latency_mean": number(s.latency_mean, " s"), "latency_p95": number(s.latency_p95, " s"),
        }
        for s in summaries
    ]


def progress(runs) -> dict[int, dict[str, int]]:
    """Samples per status of each run: {run id: {"done": 12, "queued": 3, ...}}."""
    counts: dict[int, dict[str, int]] = {run.pk: {} for run in runs}
    rows = EvalSample.objects.filter(run__in=runs).values("run", "status").annotate(n=Count("pk"))
    for row in rows:
        counts[row["run"]][row["status"]] = row["n"]
    return counts


# Pages


def png(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    # One team's run, redrawn as its samples come in: the browser asks again each time, and no shared cache keeps it
    # (as the alignment plots).
    response["Cache-Control"] = "private, no-cache"
    return response


def toast_choice(request: HttpRequest, built: RunReport) -> tuple[str, str | None, str | None]:
    """The prompt (by index), rows and columns asked for in the query string, checked against the run."""
    index = whole(request.GET.get("prompt", "0"))
    if index is None or index >= len(built.prompts):
        raise ValueError(f"prompt must be a number from 0 to {len(built.prompts) - 1}")
    rows, cols = default_axes(built.swept)
    rows, cols = request.GET.get("rows") or rows, request.GET.get("cols") or cols
    for axis in (rows, cols):
        if axis is not None and axis not in built.swept:
            raise ValueError(f"“{echo(axis)}” is not a swept parameter of this run "
                             f"({', '.join(built.swept) or 'none'})")
    if rows is not None and rows == cols:
        raise ValueError("rows and cols must be different parameters")
    return built.prompts[int(index)], rows, cols


def run_of(request: HttpRequest, pk: int) -> EvalRun:
    return get_for_user_or_404(EvalRun.objects.for_user(request.user).select_related("team"), pk=pk)


@staff_required
@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    runs = list(EvalRun.objects.for_user(request.user).select_related("team", "created_by"))
    # The same progress line as qart_sweep prints (live job states, ETA over the listening GPU workers).
    workers = sweeps.gpu_workers()
    for run in runs:
        run.progress = sweeps.progress(run, workers)
    return render(request, "generator/evals/run_list.html", {"runs": runs})


@staff_required
@require_safe
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_of(request, pk)
    built = build(run)
    toast_query, toast_error = request.GET.urlencode(), ""
    if built.prompts:
        try:
            toast_choice(request, built)
        except ValueError as exc:
            toast_error, toast_query = str(exc), ""
    ctx = {
        "run": run,
        "built": built,
        "counts": sorted(progress([run])[run.pk].items()),
        "progress": sweeps.progress(run, sweeps.gpu_workers()),
        "can_edit": can_edit(request.user, run.team),
        "default": default_preset(run.team_id),
        "plot_urls": {name: reverse("evals:plot", args=[run.pk, name]) for name in statistics.PLOTS},
        "toast_url": reverse("evals:plot", args=[run.pk, "toast"]) + f"?{toast_query}",
        "toast_error": toast_error,
        "rows_cols": default_axes(built.swept),
        "min_scan_rate": DEFAULT_MIN_SCAN_RATE,
        "choice": statistics.choose(built.summaries, DEFAULT_MIN_SCAN_RATE) if built.summaries else None,
    }
    return render(request, "generator/evals/run_detail.html", ctx)


@staff_required
@require_safe
def plot_png(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    run = run_of(request, pk)
    built = build(run)
    if name == "toast":
        if not built.prompts:
            return plain_400("This run has no samples yet.")
        try:
            prompt, rows, cols = toast_choice(request, built)
        except ValueError as exc:
            return plain_400(str(exc))
        return png(statistics.toast_plot(built.toast(prompt, rows, cols, DEFAULT_MIN_SCAN_RATE), image_loader(run)))
    if name not in statistics.PLOTS:
        return plain_400(f"No plot called “{echo(name)}”; plots: toast, {', '.join(statistics.PLOTS)}")
    return png(statistics.PLOTS[name](built.summaries))


@staff_required
@require_POST
def make_default_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_of(request, pk)
    require_editor(request.user, run.team)
    summary = build(run).summary(request.POST.get("config_key", ""))
    if summary is None:
        return plain_400("That configuration has no finished samples in this run.")
    preset = make_default(run, summary, request.user)
    messages.success(request, f"“{preset.name}” is now {possessive(run.team)} default: the generation page starts "
                              "from it.")
    return redirect("evals:run", pk=run.pk)
