"""python manage.py qart_report: a sweep's report as PNG plots and an HTML page, and the team default.

    qart_report RUN -o DIR                        # RUN: the run's name (with --team if names clash) or id
    qart_report RUN -o DIR --prompt 3 --rows conditioning_scale --cols control_start
    qart_report RUN -o DIR --select best --min-scan-rate 0.95 [--preset-name NAME]
    qart_report RUN -o DIR --select "conditioning_scale=1.3,control_start=0.15" --json
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.loader import render_to_string
from django.utils import timezone

from generator.core.codes.echoes import echo
from generator.core.evals import statistics
from generator.evals import report_views
from generator.models import EvalRun
from qartsite.models import Team
from qartsite.plurals import counted, possessive

TOAST_FILE = "toast.png"


def fail(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    help = (
        "Write a sweep's report (PNG plots and index.html) into a folder and print its summary table; --select "
        "stores a configuration as the team's default generation preset. Exit 2 on bad inputs (one message)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run", metavar="RUN", help="the run's name or id")
        parser.add_argument("-o", "--output", metavar="DIR", required=True, help="folder for the plots and page")
        parser.add_argument("--team", metavar="TEAM", help="the run's team (name or id), when run names clash")
        parser.add_argument("--prompt", metavar="TEXT_OR_INDEX", default="0",
                            help="the toast plot's prompt: its exact text or its index in the run (default 0)")
        parser.add_argument("--rows", metavar="PARAM", help="swept parameter down the toast plot's rows")
        parser.add_argument("--cols", metavar="PARAM", help="swept parameter across the toast plot's columns")
        parser.add_argument("--select", metavar="CONFIG_KEY_OR_BEST",
                            help="store this configuration (or 'best') as the team's default preset")
        parser.add_argument("--min-scan-rate", type=float, default=report_views.DEFAULT_MIN_SCAN_RATE,
                            help="single-image scan rate 'best' must reach (default %(default)s)")
        parser.add_argument("--preset-name", metavar="NAME", default="", help="the preset's name (default: run "
                                                                                   "and configuration)")
        parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")

    def handle(self, *args, **options) -> None:
        if not 0.0 <= options["min_scan_rate"] <= 1.0:
            raise fail(f"--min-scan-rate must be between 0 and 1, got {options['min_scan_rate']}")
        run = self.find_run(options["run"], options["team"])
        built = report_views.build(run)
        if not built.summaries:
            raise fail(f"run “{echo(run.name)}” has no finished samples yet ({len(built.samples)} sample(s) in all)")
        prompt = self.pick_prompt(built, options["prompt"])
        rows, cols = self.pick_axes(built, options["rows"], options["cols"])
        choice = statistics.choose(built.summaries, options["min_scan_rate"])
        selected = self.pick_selection(built, options["select"], choice)
        if selected is not None and run.team is None:
            raise fail(f"run “{echo(run.name)}” belongs to no team, so it cannot set a team's default")

        out = Path(options["output"])
        files = self.write(out, built, statistics.toast_grid(built.samples, prompt, rows, cols, choice.summary.config),
                           choice)
        preset = None
        if selected is not None:
            preset = report_views.make_default(run, selected, name=options["preset_name"])
        if options["json"]:
            self.stdout.write(json.dumps({
                "run": {"id": run.pk, "name": run.name, "team": str(run.team) if run.team else None},
                "configurations": [s.to_dict() for s in built.summaries],
                "suggested": {"config_key": choice.summary.config_key, "reason": choice.reason},
                "preset": {"name": preset.name, "params": preset.params} if preset else None,
                "files": [str(out / name) for name in files],
            }, ensure_ascii=False))
            return
        self.stdout.write(format_table(built))
        self.stdout.write(f"\nSuggested default: {choice.summary.config_key or '(base)'}: {choice.reason}")
        if preset is not None:
            how = f" ({choice.reason})" if options["select"] == "best" else ""
            self.stdout.write(f"Stored “{echo(preset.name)}” as {possessive(run.team)} default preset{how}")
        self.stdout.write(f"Wrote {counted(len(files), 'file')} to {out}: open {out / 'index.html'}")

    @staticmethod
    def find_run(value: str, team_value: str | None) -> EvalRun:
        runs = EvalRun.objects.select_related("team")
        if team_value:
            lookup = {"pk": int(team_value)} if team_value.isdigit() else {"name": team_value}
            team = Team.objects.filter(**lookup).first()
            if team is None:
                raise fail(f"no team “{echo(team_value)}”")
            runs = runs.filter(team=team)
        found = list(runs.filter(name=value))
        if not found and value.isdigit():
            found = list(runs.filter(pk=int(value)))
        if not found:
            raise fail(f"no sweep run called “{echo(value)}”" + (f" in team “{echo(team_value)}”" if team_value else "")
                       + " (qart_sweep lists its name when it starts)")
        if len(found) > 1:
            teams = ", ".join(sorted(str(r.team) for r in found))
            raise fail(f"{len(found)} runs are called “{echo(value)}” (teams {teams}): add --team")
        return found[0]

    @staticmethod
    def pick_prompt(built: report_views.RunReport, value: str) -> str:
        if value in built.prompts:
            return value
        if value.isdigit() and int(value) < len(built.prompts):
            return built.prompts[int(value)]
        raise fail(f"--prompt “{echo(value)}”: neither a prompt of this run nor an index from 0 to "
                   f"{len(built.prompts) - 1}")

    @staticmethod
    def pick_axes(built: report_views.RunReport, rows: str | None, cols: str | None) -> tuple[str | None, str | None]:
        for option, name in (("--rows", rows), ("--cols", cols)):
            if name is not None and name not in built.swept:
                raise fail(f"{option} “{echo(name)}” is not a swept parameter of this run "
                           f"({', '.join(built.swept) or 'nothing was swept'})")
        if rows is None and cols is None:
            return report_views.default_axes(built.swept)
        if rows == cols:
            raise fail("--rows and --cols must be different parameters")
        return rows, cols

    @staticmethod
    def pick_selection(built: report_views.RunReport, value: str | None, choice: statistics.Choice):
        if value is None:
            return None
        if value == "best":
            return choice.summary
        summary = built.summary(value)
        if summary is None:
            keys = "; ".join(s.config_key for s in built.summaries)
            raise fail(f"--select “{echo(value)}”: no finished configuration with that key (keys: {keys}, or 'best')")
        return summary

    @staticmethod
    def write(
        out: Path, built: report_views.RunReport, grid: statistics.ToastGrid, choice: statistics.Choice
    ) -> list[str]:
        """Every plot as a PNG and index.html beside them; returns the file names."""
        pictures = {f"{name}.png": draw(built.summaries) for name, draw in statistics.PLOTS.items()}
        pictures[TOAST_FILE] = statistics.toast_plot(grid, report_views.load_stored_image)
        axes = " × ".join(a for a in (grid.rows, grid.cols) if a) or "no swept parameter"
        held = ", ".join(f"{k} = {v}" for k, v in grid.fixed.items())
        page = render_to_string("generator/evals/report_file.html", {
            "run": built.run, "built": built, "rows": built.rows, "choice": choice,
            "counts": sorted(report_views.progress([built.run])[built.run.pk].items()),
            "plot_urls": {name: f"{name}.png" for name in statistics.PLOTS}, "toast_file": TOAST_FILE,
            "toast_axes": axes, "written": timezone.now(),
            "toast_caption": f"“{grid.prompt}” across {axes}: each cell shows that prompt's first candidate, framed "
                             f"red (none scan) to green (all scan) with the prompt's scan rate in the cell"
                             + (f"; held at {held}" if held else "") + ".",
        })
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, data in pictures.items():
                (out / name).write_bytes(data)
            (out / "index.html").write_text(page, encoding="utf-8")
        except FileExistsError:  # from mkdir, which takes a folder that is there: a file is
            raise fail(f"{out}: is a file, not a folder") from None
        except OSError as exc:
            raise fail(f"{out}: cannot write the report there ({exc.strerror or exc})") from None
        return [*pictures, "index.html"]


def format_table(built: report_views.RunReport) -> str:
    """The summary table as printed: one line per configuration."""
    run = built.run
    header = (f"{'configuration':<44} {'samples':>7} {'cands':>6} {'scan':>7} {'95% interval':>15} "
              f"{'k=4':>7} {'k=8':>7} {'aesth':>6} {'lat s':>7}  pareto")
    lines = [f"Sweep “{echo(run.name)}” ({run.team or 'no team'}): {built.finished_count} finished sample(s) of "
             f"{len(built.samples)}", "", header]
    for row, summary in zip(built.rows, built.summaries, strict=True):
        batch = {k: measured for k, measured, _ in row["batches"]}
        lines.append(
            f"{row['label'][:44]:<44} {row['samples']:>7} {row['candidates']:>6} {row['scan_rate']:>7} "
            f"{row['interval']:>15} {batch.get(4, '–'):>7} {batch.get(8, '–'):>7} {row['aesthetic_mean']:>6} "
            f"{report_views.number(summary.latency_mean):>7}  {'*' if row['pareto'] else ''}"
        )
    return "\n".join(lines)
