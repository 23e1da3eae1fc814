"""The generation form: presets, placement links, the core's messages on the right field, team rules."""

from __future__ import annotations

import re

import pytest

from campaigns.models import Campaign, Placement
from generator import forms
from generator.forms import GenerationForm
from generator.models import Prompt
from qartsite.models import Membership

pytestmark = pytest.mark.django_db
LINK = "https://qart.example/r/{slug}"


def link_for(placement: Placement) -> str:
    return LINK.format(slug=placement.slug)


def placement_of(team, name: str = "Station Poster") -> Placement:
    campaign = Campaign.objects.create(team=team, name=f"{team.name} spring", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name=name)


def make_form(user, team, **data) -> GenerationForm:
    fields = {"prompt": "a koi pond at dawn", "negative_prompt": "blurry", "team": team.pk,
              "content": "https://qart.example/r/AbC123", "look": "balanced", "speed": "fast",
              "guidance_scale": "3.5", "control_end": "1.0", "size": "768", "candidates_per_batch": "8",
              "style": "square", "background": "white"}
    fields.update(data)
    return GenerationForm(user, fields, link_for=link_for)


class TestPresets:
    def test_it_fills_blank_overrides_from_the_look_and_speed(self, team_users):
        form = make_form(team_users.owner, team_users.team, look="scannable", speed="quality")
        assert form.is_valid(), form.errors
        job = form.job
        assert (job.conditioning_scale, job.control_start) == (1.8, 0.15)
        assert (job.steps, job.scheduler) == (50, "ddim")

    def test_it_keeps_values_typed_over_the_presets(self, team_users):
        form = make_form(team_users.owner, team_users.team, look="art", steps="30", conditioning_scale="1.4")
        assert form.is_valid(), form.errors
        assert (form.job.steps, form.job.conditioning_scale, form.job.control_start) == (30, 1.4, 0.3)
        assert form.job.scheduler == "dpmpp_2m_karras"

    @pytest.mark.parametrize("name", sorted(forms.RANGES))
    def test_it_keeps_the_input_ranges_in_step_with_the_core(self, team_users, name):
        low, high, step = forms.RANGES[name]
        for outside in (low - step, high + step):
            value = str(int(outside)) if isinstance(step, int) else str(round(outside, 2))
            form = make_form(team_users.owner, team_users.team, **{name: value})
            assert not form.is_valid()
            # The core's message names its range: it must be the one the input's min/max allow.
            message = " ".join(form.errors[name])
            bounds = re.search(r"between (\S+) and (\S+?),", message)
            assert bounds, message
            assert (float(bounds[1]), float(bounds[2])) == (low, high), message
            widget = form.fields[name].widget.attrs
            assert (widget["min"], widget["max"]) == (low, high)


class TestContent:
    def test_it_uses_the_placements_short_link_when_content_is_blank(self, team_users):
        placement = placement_of(team_users.team)
        form = make_form(team_users.owner, team_users.team, content="", placement=placement.pk)
        assert form.is_valid(), form.errors
        assert form.job.content == LINK.format(slug=placement.slug) and form.job.placement == placement

    def test_it_asks_for_content_without_a_placement(self, team_users):
        form = make_form(team_users.owner, team_users.team, content="")
        assert not form.is_valid()
        assert "pick a placement" in form.errors["content"][0]

    def test_it_puts_the_too_long_message_on_the_content_field(self, team_users):
        form = make_form(team_users.owner, team_users.team, content="https://example.com/" + "x" * 200)
        assert not form.is_valid()
        assert "too long for QR art" in form.errors["content"][0]

    def test_it_puts_messages_about_no_field_on_top(self, team_users):
        form = make_form(team_users.owner, team_users.team, control_start="0.9", control_end="0.5")
        assert not form.is_valid()
        assert "must be before control end" in form.errors["control_start"][0]
        assert forms.field_for_message(ValueError("The batch budget must be between 1 and 8")) is None


class TestTeams:
    def test_it_hides_the_team_for_a_single_team_and_offers_a_choice_for_several(self, team_users):
        assert make_form(team_users.owner, team_users.team)["team"].is_hidden
        Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
        assert not make_form(team_users.owner, team_users.team)["team"].is_hidden

    def test_it_refuses_a_placement_of_a_team_the_user_is_not_in(self, team_users):
        theirs = placement_of(team_users.other_team)
        form = make_form(team_users.owner, team_users.team, placement=theirs.pk)
        assert not form.is_valid() and "placement" in form.errors

    def test_it_refuses_a_placement_of_another_of_the_users_teams(self, team_users):
        Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
        other = placement_of(team_users.other_team)
        form = make_form(team_users.owner, team_users.team, placement=other.pk)
        assert not form.is_valid()
        assert form.errors["placement"] == ["That placement belongs to another team."]

    def test_it_offers_viewers_only_a_read_only_form(self, team_users):
        form = GenerationForm(team_users.viewer, link_for=link_for)
        assert form.read_only and all(field.disabled for field in form.fields.values())
        assert list(form.fields["team"].queryset) == [team_users.team]
        assert not GenerationForm(team_users.owner, link_for=link_for).read_only

    def test_it_saves_the_job_and_files_its_prompt_under_the_team(self, team_users):
        form = make_form(team_users.teammate, team_users.team)
        assert form.is_valid(), form.errors
        assert not Prompt.objects.exists()  # nothing is stored while validating
        job = form.save()
        assert (job.owner, job.team, job.ecc) == (team_users.teammate, team_users.team, "H")
        assert (job.prompt.team, job.prompt.text, job.prompt.negative_text, job.prompt.times_used) == (
            team_users.team, "a koi pond at dawn", "blurry", 1)
