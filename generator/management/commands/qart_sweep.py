"""python manage.py qart_sweep: a parameter sweep on the GPU workers, resumable by name.

    qart_sweep --name cs-start --grid conditioning_scale=1.0,1.3,1.6 control_start=0,0.15,0.3 -n 8 \\
        --limit-prompts 20 --limit-contents 5 --team Acme --user alice --wait
    qart_sweep --name cs-start --team Acme --status
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.core.codes.echoes import echo
from generator.core.evals.grid import PARAMETERS, GridError, expand, parse_grid, parse_params
from generator.evals import sweeps
from generator.models import EvalRun
from qartsite.models import Membership, Team

POLL_SECONDS = 2.0


class Command(BaseCommand):
    help = (
        "Enqueue every (prompt, content, configuration) of a parameter grid on the gpu queue, as the team's "
        "sweep NAME; running it again resumes (finished samples are not repeated, failed ones are retried). "
        "Prompts and contents default to the shipped evaluation set. Exit 2 on bad input, with one message."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the sweep's name, unique in its team; reuse it to resume")
        parser.add_argument("--prompts", default=str(sweeps.DEFAULT_PROMPTS), metavar="FILE",
                            help="one prompt per line, # comments (default: the shipped evaluation prompts)")
        parser.add_argument("--contents", default=str(sweeps.DEFAULT_CONTENTS), metavar="FILE",
                            help="one code content per line (default: the shipped evaluation contents)")
        parser.add_argument("--grid", nargs="+", action="extend", default=[], metavar="NAME=V1,V2",
                            help=f"values of one swept parameter (repeatable): {', '.join(PARAMETERS)}")
        parser.add_argument("--base", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                            help="a value every sample shares instead of the job default, e.g. steps=30")
        parser.add_argument("-n", type=int, default=8, help="candidates per sample (one batch, no repair)")
        parser.add_argument("--team", help="the team's id or name (default: the user's only team)")
        parser.add_argument("--user", help="who runs it: owner of the jobs (default: the team's first owner)")
        parser.add_argument("--limit-prompts", type=int, metavar="K", help="only the first K prompts")
        parser.add_argument("--limit-contents", type=int, metavar="K", help="only the first K contents")
        parser.add_argument("--wait", action="store_true", help="show progress until every sample is finished")
        parser.add_argument("--status", action="store_true",
                            help="only print the sweep's progress (with --wait: watch it)")
        parser.add_argument("--dry-run", action="store_true", help="check and count, store and enqueue nothing")

    def handle(self, *args, **options) -> None:
        try:
            team, user = resolve_team_and_user(options["team"], options["user"], editing=not options["status"])
            if options["status"]:
                run = EvalRun.objects.filter(team=team, name=options["name"].strip()).first()
                if run is None:
                    raise sweeps.SweepError(f"team “{echo(team.name)}” has no sweep named “{echo(options['name'])}”")
            else:
                run = self.start(team, user, options)
        except GridError as exc:  # sweeps.SweepError too
            raise CommandError(str(exc), returncode=2) from None
        if run is None:  # a dry run
            return
        if options["wait"]:
            self.wait(run)
        else:
            self.show_progress(run, details=options["status"])

    def start(self, team: Team, user, options: dict) -> EvalRun | None:
        for option in ("n", "limit_prompts", "limit_contents"):
            if options[option] is not None and options[option] < 1:
                raise sweeps.SweepError(f"-{'' if option == 'n' else '-'}{option.replace('_', '-')} must be at "
                                        f"least 1, got {options[option]}")
        prompts = sweeps.read_lines(options["prompts"])[:options["limit_prompts"]]
        contents = sweeps.read_lines(options["contents"])[:options["limit_contents"]]
        grid = parse_grid(options["grid"])
        outcome = sweeps.start_sweep(team=team, user=user, name=options["name"], prompts=prompts, contents=contents,
                                     grid=grid, base=parse_params(options["base"]), candidates=options["n"],
                                     dry_run=options["dry_run"])
        configs = len(expand(grid))
        verb = "Checked" if options["dry_run"] else "Started" if outcome.created else "Resumed"
        self.stderr.write(f"{verb} sweep “{echo(outcome.run.name)}” of team “{echo(team.name)}”: "
                          f"{len(prompts)} prompt(s) × {len(contents)} content(s) × {configs} configuration(s), "
                          f"{options['n']} candidates each")
        for note in outcome.notes:
            self.stderr.write(f"Note: {note}")
        self.stdout.write(outcome.summary())
        return None if options["dry_run"] else outcome.run

    def show_progress(self, run: EvalRun, details: bool) -> None:
        progress = sweeps.progress(run, workers=sweeps.gpu_workers())
        record_engines(run, progress)
        self.stdout.write(f"{run.name}: {progress.summary()}")
        if details:
            self.stdout.write(f"code {run.code_version or 'unknown'}; engine {run.engine_label or 'not reported yet'}")
            for key, (done, total) in progress.per_config.items():
                self.stdout.write(f"  {done:>5}/{total:<5} {key or '(base parameters)'}")

    def wait(self, run: EvalRun) -> None:
        """Poll until no sample is queued or running: one updating line on a terminal, plain lines otherwise."""
        interactive = self.stdout.isatty()
        last = ""
        try:
            while True:
                progress = sweeps.progress(run, workers=sweeps.gpu_workers())
                line = f"{run.name}: {progress.summary()}"
                if interactive:
                    self.stdout.write(f"\r{line:<100}", ending="")
                    self.stdout.flush()
                elif line != last:
                    self.stdout.write(line)
                last = line
                if progress.finished:
                    break
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self.stdout.write("")
            self.stderr.write("Stopped watching; the workers go on. --status shows progress, the same command resumes.")
            return
        if interactive:
            self.stdout.write("")
        record_engines(run, progress)
        failed = progress.counts.get("failed", 0) + progress.counts.get("cancelled", 0)
        if failed:
            self.stderr.write(f"{failed} sample(s) did not finish; run the same command again to retry them.")


def record_engines(run: EvalRun, progress: sweeps.SweepProgress) -> None:
    """Store the model ids the workers reported, so the report names what made the images."""
    label = ", ".join(progress.engines)[:300]
    if label and label != run.engine_label:
        run.engine_label = label
        run.save(update_fields=["engine_label"])


def resolve_team_and_user(team_text: str | None, username: str | None, editing: bool = True) -> tuple[Team, object]:
    """The team (by id or name) and the user running the sweep: a member, and an owner or editor to start one."""
    user = None
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise sweeps.SweepError(f"no user named “{echo(username)}”")
    if team_text:
        teams = Team.objects.filter(pk=int(team_text)) if team_text.isdigit() else Team.objects.filter(
            name__iexact=team_text.strip())
        if len(teams) > 1:
            raise sweeps.SweepError(f"{len(teams)} teams are named “{echo(team_text)}”; give the team's id")
        if not teams:
            raise sweeps.SweepError(f"no team “{echo(team_text)}”")
        team = teams[0]
    else:
        candidates = list(Team.for_user(user) if user else Team.objects.all()[:2])
        if len(candidates) != 1:
            raise sweeps.SweepError("give --team (the team's id or name): "
                                    + ("the user belongs to no team" if user and not candidates else
                                       "there is more than one team" if candidates else "there is no team yet"))
        team = candidates[0]
    if user is None:
        owner = team.memberships.filter(role=Membership.Role.OWNER).order_by("joined", "pk").first()
        if owner is None:
            raise sweeps.SweepError(f"team “{echo(team.name)}” has no owner; give --user")
        user = owner.user
    role = Membership.role_of(user, team)
    if role is None:
        raise sweeps.SweepError(f"{user.username} is not a member of team “{echo(team.name)}”")
    if editing and role not in (Membership.Role.OWNER, Membership.Role.EDITOR):
        raise sweeps.SweepError(f"{user.username} is not an owner or editor of team “{echo(team.name)}”")
    return team, user
