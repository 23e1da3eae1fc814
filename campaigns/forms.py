"""Dashboard forms: campaigns and placements. Destinations are checked by `links.validate_destination`."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet

from campaigns import links
from campaigns.models import Campaign, Placement
from generator.models import Candidate
from qartsite.models import Team


def destination_field(required: bool, help_text: str, label: str | None = None) -> forms.CharField:
    # A CharField, not a URLField: URLField would answer "Enter a valid URL." to javascript: and friends,
    # where our validator says exactly what is wrong and what to type instead.
    return forms.CharField(
        max_length=2000, required=required, validators=[links.validate_destination], help_text=help_text, label=label,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/offer", "inputmode": "url"}),
    )


class DateInput(forms.DateInput):
    input_type = "date"


class CampaignForm(forms.ModelForm):
    destination = destination_field(True, "Where the codes lead unless a placement overrides it.")
    fallback_url = destination_field(False, "Where the codes lead once the campaign is archived or a placement is "
                                            "switched off. Leave empty to use the destination.", "Fallback address")

    class Meta:
        model = Campaign
        fields = ["name", "destination", "fallback_url", "starts_on", "ends_on", "utm_source", "utm_medium",
                  "utm_campaign", "archived"]
        widgets = {"starts_on": DateInput(), "ends_on": DateInput()}
        labels = {"utm_source": "UTM source", "utm_medium": "UTM medium", "utm_campaign": "UTM campaign"}
        help_texts = {"archived": "Archived campaigns leave the list; their printed codes still redirect, to the "
                                  "fallback address, and still count."}

    def clean(self) -> dict:
        data = super().clean()
        starts, ends = data.get("starts_on"), data.get("ends_on")
        if starts and ends and ends < starts:
            self.add_error("ends_on", "The campaign can't end before it starts.")
        return data


class NewCampaignForm(CampaignForm):
    """A new campaign, in one of the teams where the user is an owner or editor."""

    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)

    class Meta(CampaignForm.Meta):
        fields = ["team", "name", "destination", "fallback_url", "starts_on", "ends_on", "utm_source", "utm_medium",
                  "utm_campaign"]

    def __init__(self, *args, teams: QuerySet[Team], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class ArtworkChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, candidate: Candidate) -> str:
        rank = f"rank {candidate.rank}" if candidate.rank else "unranked"
        return (f"Generation #{candidate.job_id}, candidate {candidate.index} ({rank}, {candidate.verdict}, "
                f"scan {candidate.scan_probability:.0%})")


class PlacementForm(forms.ModelForm):
    destination_override = destination_field(False, "Leave empty to use the campaign's destination.")
    artwork = ArtworkChoiceField(queryset=Candidate.objects.none(), required=False,
                                 empty_label="None yet (plain code)")

    class Meta:
        model = Placement
        fields = ["name", "kind", "location", "latitude", "longitude", "printed_quantity", "deployed_on", "notes",
                  "active", "destination_override", "artwork"]
        widgets = {"deployed_on": DateInput(), "notes": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"active": "Switched off, the printed code still redirects, to the campaign's fallback address "
                                "(else its destination), and still counts."}

    def __init__(self, *args, team: Team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only artwork the team generated: a candidate id from another team must not validate.
        self.fields["artwork"].queryset = (
            Candidate.objects.filter(job__team=team).select_related("job").order_by("-job__created", "rank")
        )
