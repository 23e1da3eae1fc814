"""Every team-owned model answers `objects.for_user(user)` (qartsite.models.TeamOwnedQuerySet); a team's name follows
the one-line rule of every other name."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, Placement, ScanEvent
from generator.models import Candidate, GenerationJob, HumanScanResult, LabelingSession, Prompt
from qartsite.models import OneLine, Team, TeamOwnedQuerySet, validate_team_name

PROJECT_APPS = ("qartsite", "campaigns", "generator")


def team_owned_models() -> list:
    """Models with a foreign key to Team or to another team-owned model (found by following the keys)."""
    models = [m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()]
    owned: set = set()
    changed = True
    while changed:
        changed = False
        for model in models:
            targets = {f.related_model for f in model._meta.fields if f.many_to_one}
            if model not in owned and (Team in targets or targets & owned):
                owned.add(model)
                changed = True
    return sorted(owned, key=lambda m: m._meta.label)


def test_it_finds_the_team_owned_models():
    labels = {m._meta.label for m in team_owned_models()}
    assert {"campaigns.ScanEvent", "generator.Candidate", "generator.HumanScanResult", "qartsite.Invitation"} <= labels
    assert "qartsite.Team" not in labels


def test_every_team_owned_model_has_for_user():
    for model in team_owned_models():
        assert isinstance(model.objects.all(), TeamOwnedQuerySet), model._meta.label
        for path in model.team_paths:
            model.objects.filter(**{f"{path}__isnull": False})  # each path leads somewhere real


def test_it_shows_a_user_only_their_teams_objects(team_users):
    def job_of(team, owner):
        prompt = Prompt.objects.create(owner=owner, team=team, text="a forest")
        job = GenerationJob.objects.create(owner=owner, team=team, prompt=prompt, content="https://x.example")
        return Candidate.objects.create(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass", rank=1)

    ours, theirs = job_of(team_users.team, team_users.owner), job_of(team_users.other_team, team_users.outsider)
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://x.example")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    ScanEvent.objects.create(placement=placement)
    assert list(Candidate.objects.for_user(team_users.viewer)) == [ours]
    assert list(Candidate.objects.for_user(team_users.outsider)) == [theirs]
    assert ScanEvent.objects.for_user(team_users.outsider).count() == 0
    assert ScanEvent.objects.for_user(team_users.teammate).count() == 1

    # A label belongs to a team through its session or, imported from a sheet, through its candidate.
    session = LabelingSession.objects.create(team=team_users.team, name="Phones")
    by_session = HumanScanResult.objects.create(session=session, scanned=True)
    by_candidate = HumanScanResult.objects.create(candidate=theirs, scanned=False)
    both = HumanScanResult.objects.create(session=session, candidate=ours, scanned=True)
    assert set(HumanScanResult.objects.for_user(team_users.owner)) == {by_session, both}
    assert list(HumanScanResult.objects.for_user(team_users.outsider)) == [by_candidate]
    assert HumanScanResult.objects.for_user(type("Anonymous", (), {"is_authenticated": False})()).count() == 0


@pytest.mark.parametrize("name", [
    "Design \U0001F469\u200d\U0001F3A8",  # an emoji made of two and a joiner
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: a non-joiner inside the word
    "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F fans",  # England's flag: tag characters
    "Acme\u200e (EU)",  # a left-to-right mark
])
def test_a_team_name_is_taken_where_any_other_name_is(name):
    # Its own rule refused every format character: refused for a team, taken for a campaign of the same name.
    OneLine("A campaign's name")(name)
    validate_team_name(name)


@pytest.mark.parametrize("name", ["Acme\r\nBcc: x@example.com", "Acme\tEU", "gpj.\u202eexe", "Acme\u2028EU", "   "])
def test_a_team_name_is_refused_where_any_other_name_is(name):
    with pytest.raises(ValidationError):
        validate_team_name(name)
