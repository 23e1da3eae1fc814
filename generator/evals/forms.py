"""The form that creates a labeling session: which team, which candidates (by job, by sweep, or a random sample),
and how large the codes are shown."""

from __future__ import annotations

import re

from django import forms
from django.db.models import QuerySet

from generator.evals.sessions import MAX_ITEMS, team_candidates
from generator.models import Candidate, EvalRun
from qartsite import form_fields
from qartsite.access import editable_teams
from qartsite.numbers import whole

SOURCES = [("jobs", "By job"), ("sweep", "By sweep"), ("random", "Random sample of the team's candidates")]


class LabelingSessionForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="e.g. “Friday, iPhones, 400 px”")
    team = form_fields.ModelChoiceField(queryset=None, empty_label=None)
    source = forms.ChoiceField(choices=SOURCES, initial="jobs", widget=forms.RadioSelect)
    jobs = forms.CharField(required=False, max_length=1000, label="Job ids",
                           help_text="Every candidate of these jobs, e.g. “12, 15, 16”")
    sweep = form_fields.ModelChoiceField(queryset=None, required=False,
                                         help_text="Every candidate of the sweep's samples")
    count = form_fields.IntegerField(required=False, min_value=1, max_value=MAX_ITEMS, initial=20,
                                     help_text="How many candidates to draw at random")
    display_size_px = form_fields.IntegerField(
        min_value=64, max_value=2000, initial=400, label="Display size (px)",
        help_text="How large each code is shown: the size you want the verdict for")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        teams = editable_teams(user)
        self.fields["team"].queryset = teams
        self.fields["sweep"].queryset = EvalRun.objects.filter(team__in=teams)
        if teams.count() == 1:
            self.fields["team"].initial = teams.first()

    def clean(self) -> dict:
        data = super().clean()
        team, source = data.get("team"), data.get("source")
        if team is None or source is None:
            return data
        if source == "jobs":
            candidates = self._by_jobs(team, data.get("jobs", ""))
        elif source == "sweep":
            candidates = self._by_sweep(team, data.get("sweep"))
        else:
            if "count" in self.errors:
                return data  # its own message (out of range, not a number) says it
            if not data.get("count"):
                raise forms.ValidationError({"count": "Say how many candidates to draw."})
            candidates = team_candidates(team).order_by("?")[: data["count"]]
        chosen = list(candidates[: MAX_ITEMS + 1])
        if not chosen:
            raise forms.ValidationError("No candidates to label there yet: pick finished jobs or a finished sweep.")
        if len(chosen) > MAX_ITEMS:
            raise forms.ValidationError(f"More than {MAX_ITEMS} candidates: split them into several sessions, "
                                        "people tire and the labels get worse.")
        data["candidates"] = chosen
        return data

    def _by_jobs(self, team, text: str) -> QuerySet[Candidate]:
        parts = [part.lstrip("#") for part in re.split(r"[\s,;]+", text.strip()) if part]
        ids = [whole(part) for part in parts]
        if not ids or None in ids:
            raise forms.ValidationError({"jobs": "Give job ids as numbers, separated by commas or spaces."})
        found = set(team_candidates(team).filter(job_id__in=ids).values_list("job_id", flat=True))
        missing = [str(i) for i in dict.fromkeys(ids) if i not in found]
        if missing:
            raise forms.ValidationError({"jobs": f"No candidates in {team} for job(s) {', '.join(missing)}."})
        return team_candidates(team).filter(job_id__in=ids).order_by("job_id", "rank", "index")

    def _by_sweep(self, team, run: EvalRun | None) -> QuerySet[Candidate]:
        if run is None:
            raise forms.ValidationError({"sweep": "Choose a sweep."})
        if run.team_id != team.pk:
            raise forms.ValidationError({"sweep": f"That sweep belongs to another team than {team}."})
        return team_candidates(team).filter(job__eval_samples__run=run).distinct().order_by("job_id", "index")
