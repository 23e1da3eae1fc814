"""Sweep reports: which generation configuration scans, how often, and how good it looks.

Plain Python (numpy and matplotlib only), importable without Django. The input is a sweep's samples as plain
dicts, the fields of `EvalSample`:

    {"prompt": str, "config": {"conditioning_scale": 1.3, ...}, "config_key": str, "status": "done",
     "scores": [{"verdict": "pass", "aesthetic_score": 5.1, "image": "storage/name.png", "index": 0, ...}],
     "total_seconds": 41.2}

Per configuration the report gives the single-image scan rate (passing candidates / candidates) with a Wilson
interval, the scan rate of a batch of k (at least one of k candidates scans) measured from the stored batches
with the independent-candidates model 1 - (1 - p)^k beside it, the aesthetic score distribution, latency, and
which configurations are on the Pareto front of scan rate vs mean aesthetic score. `toast_grid` and the `*_plot`
functions turn that into pictures; images reach the toast plot through a callable, so storage stays outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

import numpy as np
from matplotlib import colormaps
from PIL import Image

from generator.core.evals import plots

BATCH_SIZES = tuple(range(1, 9))
FINISHED_OK = "done"
GAVE_UP = ("failed", "cancelled")
TOAST_CELL_PIXELS = 256
# Red (no candidate scans) through yellow to green (all scan): the tint of a toast cell.
RATE_COLOURS = colormaps["RdYlGn"]


def wilson_interval(passes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion.

    Args:
        passes (int): successes (candidates that scan).
        total (int): trials (candidates).
        confidence (float, *optional*, defaults to 0.95): the interval's coverage.

    Returns:
        (low, high); (nan, nan) when `total` is 0. Unlike the normal approximation it stays inside [0, 1] and
        is not of zero width at 0 or `total` passes.
    """
    if total == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = passes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def batch_scan_rate(candidates: int, failures: int, k: int) -> float:
    """The chance that a random k of a sample's candidates hold at least one that scans.

    Args:
        candidates (int): n, the sample's candidates.
        failures (int): f, how many of them do not scan.
        k (int): the batch size, 1 <= k <= n.

    Returns:
        1 - C(f, k) / C(n, k): exact for drawing k of these n without replacement.
    """
    if not 1 <= k <= candidates:
        raise ValueError(f"Batch size {k} needs 1 to {candidates} candidates")
    return 1.0 - math.comb(failures, k) / math.comb(candidates, k)


def measured_batch_rates(counts: Iterable[tuple[int, int]], sizes: Sequence[int] = BATCH_SIZES) -> list[float]:
    """Scan rate per batch size, averaged over samples: prompts differ, so each sample counts once.

    Args:
        counts: (candidates, failures) per sample.
        sizes: the batch sizes k.

    Returns:
        One rate per k; nan where no sample has k candidates.
    """
    counts = [(n, f) for n, f in counts if n > 0]
    rates = []
    for k in sizes:
        usable = [batch_scan_rate(n, f, k) for n, f in counts if n >= k]
        rates.append(sum(usable) / len(usable) if usable else math.nan)
    return rates


def model_batch_rates(scan_rate: float, sizes: Sequence[int] = BATCH_SIZES) -> list[float]:
    """1 - (1 - p)^k per batch size: what independent candidates that each scan with p would give."""
    return [1.0 - (1.0 - scan_rate) ** k for k in sizes]


def pareto_front(points: Sequence[tuple[float, float | None]]) -> list[bool]:
    """Which (scan rate, aesthetic) points no other point beats on one axis without losing on the other.

    A point without an aesthetic score competes on scan rate alone (as if its score were the lowest).
    """
    values = [(rate, -math.inf if score is None else score) for rate, score in points]
    return [
        not any(r >= rate and s >= score and (r > rate or s > score) for r, s in values)
        for rate, score in values
    ]


@dataclass
class ConfigSummary:
    """The figures of one configuration of a sweep."""

    config_key: str
    config: dict
    samples: int  # finished samples with candidates
    failed: int  # samples whose job failed or was cancelled (no candidates to count)
    candidates: int
    passes: int
    scan_rate: float  # passes / candidates
    scan_low: float  # Wilson interval of scan_rate
    scan_high: float
    batch_sizes: list[int]
    batch_measured: list[float]  # per k in batch_sizes, from the stored batches
    batch_model: list[float]  # per k, 1 - (1 - scan_rate)^k
    aesthetic_scores: list[float] = field(repr=False)
    aesthetic_mean: float | None
    aesthetic_median: float | None
    aesthetic_low: float | None  # quartiles
    aesthetic_high: float | None
    latency_mean: float | None  # seconds per sample (one job: every candidate, scored)
    latency_p95: float | None
    pareto: bool = False

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("aesthetic_scores")
        return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in data.items()}


def sort_key(config: dict) -> tuple:
    """Configurations in grid order: by parameter name, numbers by value."""
    return tuple((name, (0, value, "") if isinstance(value, int | float) else (1, 0, str(value)))
                 for name, value in sorted(config.items()))


def passes_of(sample: dict) -> int:
    return sum(score.get("verdict") == "pass" for score in sample.get("scores") or [])


def finished(samples: Iterable[dict]) -> list[dict]:
    """The samples that count: done, with candidates."""
    return [s for s in samples if s.get("status") == FINISHED_OK and s.get("scores")]


def summarize(samples: Iterable[dict], sizes: Sequence[int] = BATCH_SIZES,
              confidence: float = 0.95) -> list[ConfigSummary]:
    """The figures of every configuration with at least one finished sample.

    Args:
        samples: a sweep's samples as dicts (see the module docstring); unfinished ones are ignored, failed or
            cancelled ones are counted apart.
        sizes (*optional*, defaults to k = 1..8): batch sizes for the batch scan rate.
        confidence (float, *optional*, defaults to 0.95): coverage of the scan rate's interval.

    Returns:
        One `ConfigSummary` per configuration, in grid order, Pareto front marked.
    """
    groups: dict[str, list[dict]] = {}
    configs: dict[str, dict] = {}
    for sample in samples:
        groups.setdefault(sample["config_key"], []).append(sample)
        configs.setdefault(sample["config_key"], sample.get("config") or {})
    summaries = []
    for key in sorted(groups, key=lambda k: (sort_key(configs[k]), k)):
        done = finished(groups[key])
        if not done:
            continue
        summaries.append(summarize_config(key, configs[key], done, groups[key], sizes, confidence))
    marks = pareto_front([(s.scan_rate, s.aesthetic_mean) for s in summaries])
    for summary, mark in zip(summaries, marks, strict=True):
        summary.pareto = mark
    return summaries


def summarize_config(key: str, config: dict, done: list[dict], every: list[dict], sizes: Sequence[int],
                     confidence: float) -> ConfigSummary:
    counts = [(len(s["scores"]), len(s["scores"]) - passes_of(s)) for s in done]
    candidates = sum(n for n, _ in counts)
    passes = candidates - sum(f for _, f in counts)
    scan_rate = passes / candidates
    low, high = wilson_interval(passes, candidates, confidence)
    aesthetic = [float(c["aesthetic_score"]) for s in done for c in s["scores"] if c.get("aesthetic_score") is not None]
    latency = [float(s["total_seconds"]) for s in done if s.get("total_seconds") is not None]
    quartiles = [float(q) for q in np.percentile(aesthetic, [25, 50, 75])] if aesthetic else [None] * 3
    return ConfigSummary(
        config_key=key, config=config, samples=len(done), failed=sum(s.get("status") in GAVE_UP for s in every),
        candidates=candidates, passes=passes, scan_rate=scan_rate, scan_low=low, scan_high=high,
        batch_sizes=list(sizes), batch_measured=measured_batch_rates(counts, sizes),
        batch_model=model_batch_rates(scan_rate, sizes), aesthetic_scores=aesthetic,
        aesthetic_mean=float(np.mean(aesthetic)) if aesthetic else None, aesthetic_median=quartiles[1],
        aesthetic_low=quartiles[0], aesthetic_high=quartiles[2],
        latency_mean=float(np.mean(latency)) if latency else None,
        latency_p95=float(np.percentile(latency, 95)) if latency else None,
    )


@dataclass
class Choice:
    summary: ConfigSummary
    met_target: bool
    reason: str


def choose(summaries: Sequence[ConfigSummary], min_scan_rate: float) -> Choice:
    """The configuration to make the default: the best looking one that scans often enough.

    Args:
        summaries: the report's configurations (at least one).
        min_scan_rate (float): the single-image scan rate a configuration must reach.

    Returns:
        The highest mean aesthetic score among configurations whose scan rate reaches `min_scan_rate`; if none
        does, the highest scan rate. `reason` says which rule picked it.
    """
    if not summaries:
        raise ValueError("No configuration has finished samples")
    meeting = [s for s in summaries if s.scan_rate >= min_scan_rate]
    if meeting:
        best = max(meeting, key=lambda s: (-math.inf if s.aesthetic_mean is None else s.aesthetic_mean, s.scan_rate))
        return Choice(best, True, f"best mean aesthetic score of the {len(meeting)} configuration(s) scanning at "
                                  f"least {min_scan_rate:.0%}")
    best = max(summaries, key=lambda s: (s.scan_rate, s.aesthetic_mean or -math.inf))
    return Choice(best, False, f"no configuration scans at least {min_scan_rate:.0%}: highest scan rate instead")


def prompts_of(samples: Iterable[dict]) -> list[str]:
    """The sweep's prompts in the order the samples list them."""
    return list(dict.fromkeys(s["prompt"] for s in samples))


def swept_values(samples: Iterable[dict], name: str) -> list:
    """The values a swept parameter takes, in order."""
    values = {repr(s["config"][name]): s["config"][name] for s in samples if name in (s.get("config") or {})}
    return sorted(values.values(), key=lambda v: sort_key({name: v}))


@dataclass
class ToastCell:
    image: str | None  # storage name of the example shown
    passes: int
    candidates: int

    @property
    def scan_rate(self) -> float | None:
        return self.passes / self.candidates if self.candidates else None


@dataclass
class ToastGrid:
    prompt: str
    rows: str | None  # the parameter down the rows (None: one row)
    cols: str | None
    row_values: list
    col_values: list
    cells: list[list[ToastCell]]
    fixed: dict  # other swept parameters, held at these values


def toast_grid(samples: Iterable[dict], prompt: str, rows: str | None, cols: str | None,
               fixed: dict | None = None) -> ToastGrid:
    """One prompt's examples across two swept parameters, with each cell's scan rate.

    Args:
        samples: the sweep's samples as dicts.
        prompt (str): the prompt to show.
        rows (str or None): the parameter whose values make the rows; None for one row.
        cols (str or None): the parameter for the columns; None for one column.
        fixed (dict, *optional*): values for the other swept parameters; a cell takes only samples with them.

    Returns:
        The grid. A cell's example is its lowest-index candidate (with a sweep's fixed seeds, the same starting
        noise in every cell, so the cells differ by the parameters alone); its rate counts every candidate of
        this prompt's finished samples in the cell.
    """
    samples = [s for s in samples if s["prompt"] == prompt]
    fixed = {k: v for k, v in (fixed or {}).items() if k not in (rows, cols)}
    row_values = swept_values(samples, rows) if rows else [None]
    col_values = swept_values(samples, cols) if cols else [None]

    def in_cell(sample: dict, row, col) -> bool:
        config = sample.get("config") or {}
        wanted = {**fixed, **({rows: row} if rows else {}), **({cols: col} if cols else {})}
        return all(config.get(name) == value for name, value in wanted.items())

    cells = []
    for row in row_values:
        line = []
        for col in col_values:
            done = sorted(finished(s for s in samples if in_cell(s, row, col)), key=lambda s: s["config_key"])
            scores = [c for s in done for c in s["scores"]]
            first = min(done[0]["scores"], key=lambda c: c.get("index", 0)) if done else None
            line.append(ToastCell(first.get("image") if first else None, sum(c.get("verdict") == "pass"
                                                                             for c in scores), len(scores)))
        cells.append(line)
    return ToastGrid(prompt, rows, cols, row_values, col_values, cells, fixed)


def _labels(summaries: Sequence[ConfigSummary]) -> list[str]:
    return [s.config_key or "(base)" for s in summaries]


def _bar_figure(count: int):
    return plots.figure(7.0, max(2.5, 0.45 * count + 1.2))


def scan_rate_plot(summaries: Sequence[ConfigSummary]) -> bytes:
    """Horizontal bars of the single-image scan rate per configuration, Wilson intervals as error bars."""
    fig = _bar_figure(len(summaries))
    ax = fig.subplots()
    y = np.arange(len(summaries))
    rates = np.array([s.scan_rate for s in summaries])
    errors = np.array([[s.scan_rate - s.scan_low for s in summaries], [s.scan_high - s.scan_rate for s in summaries]])
    ax.barh(y, rates, xerr=errors, color=[RATE_COLOURS(r) for r in rates], edgecolor="#333", capsize=3)
    ax.set_yticks(y, _labels(summaries))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("single-image scan rate (95% Wilson interval)")
    return plots.to_png(fig)


def batch_plot(summaries: Sequence[ConfigSummary]) -> bytes:
    """Scan rate of a batch of k per configuration: measured (solid) and the 1 - (1 - p)^k model (dashed)."""
    fig = plots.figure(7.5, 4.5)
    ax = fig.subplots()
    colours = colormaps["tab10"]
    for i, s in enumerate(summaries):
        colour = colours(i % 10)
        ax.plot(s.batch_sizes, s.batch_measured, "o-", color=colour, label=s.config_key or "(base)")
        ax.plot(s.batch_sizes, s.batch_model, "--", color=colour, alpha=0.6)
    ax.set_xlabel("candidates per batch (k)")
    ax.set_ylabel("batch has a code that scans")
    ax.set_ylim(0, 1.02)
    ax.set_title("measured (solid) vs 1 - (1 - p)^k (dashed)", fontsize=10)
    if summaries:
        ax.legend(fontsize=7, loc="lower right")
    return plots.to_png(fig)


def aesthetic_plot(summaries: Sequence[ConfigSummary]) -> bytes:
    """Box plot of the candidates' aesthetic scores per configuration."""
    fig = _bar_figure(len(summaries))
    ax = fig.subplots()
    scored = [s for s in summaries if s.aesthetic_scores]
    if scored:
        ax.boxplot([s.aesthetic_scores for s in scored], orientation="horizontal", tick_labels=_labels(scored))
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "no aesthetic scores", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("aesthetic score (LAION predictor, ~1-10)")
    return plots.to_png(fig)


def latency_plot(summaries: Sequence[ConfigSummary]) -> bytes:
    """Mean seconds per sample per configuration, the 95th percentile marked."""
    fig = _bar_figure(len(summaries))
    ax = fig.subplots()
    y = np.arange(len(summaries))
    ax.barh(y, [s.latency_mean or 0.0 for s in summaries], color="#8fb3d9", edgecolor="#333", label="mean")
    ax.plot([s.latency_p95 or 0.0 for s in summaries], y, "k|", markersize=14, label="95th percentile")
    ax.set_yticks(y, _labels(summaries))
    ax.invert_yaxis()
    ax.set_xlabel("seconds per sample (generation + scoring of every candidate)")
    ax.legend(fontsize=8)
    return plots.to_png(fig)


def pareto_plot(summaries: Sequence[ConfigSummary]) -> bytes:
    """Scan rate vs mean aesthetic score; the non-dominated configurations filled and joined."""
    fig = plots.figure(6.5, 4.5)
    ax = fig.subplots()
    scored = [s for s in summaries if s.aesthetic_mean is not None]
    for s in scored:
        ax.scatter(s.scan_rate, s.aesthetic_mean, s=40, color="#1a7f37" if s.pareto else "white",
                   edgecolors="#1a7f37" if s.pareto else "#666", zorder=3)
        ax.annotate(s.config_key or "(base)", (s.scan_rate, s.aesthetic_mean), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    front = sorted((s.scan_rate, s.aesthetic_mean) for s in scored if s.pareto)
    if front:
        ax.plot(*zip(*front, strict=True), color="#1a7f37", alpha=0.6)
    ax.set_xlabel("single-image scan rate")
    ax.set_ylabel("mean aesthetic score")
    ax.set_title("Pareto front (filled): nothing both scans more and looks better", fontsize=10)
    return plots.to_png(fig)


def toast_plot(grid: ToastGrid, load_image: Callable[[str], Image.Image | None]) -> bytes:
    """The toast plot: one example image per cell, framed and labelled in the colour of its scan rate.

    Args:
        grid (ToastGrid): from `toast_grid`.
        load_image: storage name -> image, or None when it cannot be had (the cell then shows grey).

    Returns:
        PNG bytes.
    """
    n_rows, n_cols = len(grid.row_values), len(grid.col_values)
    fig = plots.figure(1.0 + 2.2 * n_cols, 1.0 + 2.3 * n_rows)
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, row in enumerate(grid.row_values):
        for c, col in enumerate(grid.col_values):
            ax, cell = axes[r][c], grid.cells[r][c]
            picture = load_image(cell.image) if cell.image else None
            if picture is None:
                picture = Image.new("RGB", (TOAST_CELL_PIXELS, TOAST_CELL_PIXELS), (225, 225, 225))
            picture = picture.convert("RGB")
            picture.thumbnail((TOAST_CELL_PIXELS, TOAST_CELL_PIXELS))
            ax.imshow(np.asarray(picture))
            ax.set_xticks([])
            ax.set_yticks([])
            rate = cell.scan_rate
            colour = "#999999" if rate is None else RATE_COLOURS(rate)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(6)
            label = "no sample" if rate is None else f"{rate:.0%} scan ({cell.passes}/{cell.candidates})"
            # The colour map is dark at both ends: white text there, black in the light middle.
            ink = "white" if rate is not None and not 0.15 < rate < 0.85 else "black"
            ax.text(0.5, 0.04, label, transform=ax.transAxes, ha="center", va="bottom", fontsize=8, color=ink,
                    bbox={"facecolor": colour, "alpha": 0.85, "edgecolor": "none", "pad": 2})
            if r == 0 and grid.cols:
                ax.set_title(f"{grid.cols} = {col}", fontsize=9)
            if c == 0 and grid.rows:
                ax.set_ylabel(f"{grid.rows} = {row}", fontsize=9)
    held = ", ".join(f"{k} = {v}" for k, v in grid.fixed.items())
    title = grid.prompt if len(grid.prompt) <= 90 else grid.prompt[:87] + "..."
    fig.suptitle(f"{title}" + (f"\n({held})" if held else ""), fontsize=10)
    return plots.to_png(fig)


PLOTS = {
    "scan_rate": scan_rate_plot,
    "batch": batch_plot,
    "aesthetic": aesthetic_plot,
    "latency": latency_plot,
    "pareto": pareto_plot,
}
