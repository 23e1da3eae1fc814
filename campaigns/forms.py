"""Dashboard forms: campaigns and placements. Destinations are checked by `links.validate_destination`, destination
rules by `campaigns.rules`."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, tzinfo

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, Q, QuerySet, Value, When

from campaigns import artwork as artwork_rules
from campaigns import links, names, restamps, rules, webhooks
from campaigns.models import LIMITED_FIELDS, Campaign, Placement, WebhookEndpoint, limit_errors
from generator.models import Candidate
from qartsite import form_fields
from qartsite.models import Team
from qartsite.numbers import whole


class DestinationField(forms.CharField):
    """A destination as typed: a host and path without their scheme ("shop.example.com/winter") is read as its
    https:// address (`links.with_assumed_scheme`), as browsers' address bars and link products read it.

    A text field with the phone's web-address keyboard, not type=url: the browser refused such an address itself
    with "Please enter a URL." before the form was sent, and no message of ours said what to add.
    """

    def to_python(self, value: object) -> str:
        return links.with_assumed_scheme(super().to_python(value))


def destination_field(required: bool, help_text: str, label: str | None = None) -> forms.CharField:
    # A CharField, not a URLField: URLField would answer "Enter a valid URL." to javascript: and friends,
    # where our validator says exactly what is wrong and what to type instead.
    return DestinationField(
        max_length=2000, required=required, validators=[links.validate_destination], help_text=help_text, label=label,
        widget=forms.TextInput(attrs={"placeholder": "https://example.com/offer", "inputmode": "url",
                                      "autocapitalize": "off", "spellcheck": "false"}),
    )


class DateInput(forms.DateInput):
    input_type = "date"


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


RULE_FIELDS = ("rule_ios", "rule_android", "rule_other", "rule_starts_at", "rule_ends_at", "rule_split")


# ASCII digits (re.ASCII), as the API's weights are JSON numbers: \d and float() read "５０" (full width) as 50.
NUMBER = re.compile(r"[-+]?\d+(\.\d*)?", re.ASCII)


def split_item(words: list[str]) -> dict | None:
    """One line of the A/B split field ("50 https://example.com/a", or an address alone for weight 1) as a split
    destination for `rules.split_problems` to judge; None when it is not weight-then-address at all."""
    if len(words) == 1 and not NUMBER.fullmatch(words[0]):
        return {"url": words[0], "weight": 1}
    if len(words) == 2 and NUMBER.fullmatch(words[0]):
        weight = float(words[0])
        # A fraction stays one, so the rule's own check refuses it with the words every weight gets.
        return {"url": words[1], "weight": int(weight) if weight.is_integer() else weight}
    return None


def on_its_field(message: str) -> str:
    """A rule's message (`rules.clean_rules`: "A/B split: give 2 to 10 ...", "A/B split, destination 2: ...",
    "End: the schedule must ...") without the name of the field it now stands on: the page puts the field's label
    before it ("A/B split: A/B split: give ..." and "Until: End: ..." otherwise)."""
    for prefix in ("A/B split: ", "Start: ", "End: "):
        message = message.removeprefix(prefix)
    message = message.replace("A/B split, destination", "Destination")
    return message[:1].upper() + message[1:]


def split_lines(text: str) -> list[dict]:
    """The A/B split field's lines as split destinations; blank lines are skipped.

    Raises:
        ValidationError: one message naming every bad line ("Line 1: …. Line 3: …."), numbered as typed, blank
            lines included, in the words the API uses per destination (`rules.split_problems`).
    """
    split, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        item = split_item(words)
        found = (["write the weight, then the address: 50 https://example.com/a."] if item is None
                 else rules.split_problems(item))
        if found:
            problems.append(f"Line {number}: {' '.join(found)}")
        else:
            split.append(item)
    if problems:
        raise ValidationError(" ".join(problems), code="invalid_rules")
    return split


def same_minute(one: str, other: str) -> bool:
    return datetime.fromisoformat(one).timestamp() // 60 == datetime.fromisoformat(other).timestamp() // 60


class SeenVersion(forms.Form):
    """An edit form that overwrites no change made meanwhile unseen: it carries (`seen`, hidden) a fingerprint of
    the stored values of its fields as the page showed them. Saved, the row is read again under its lock
    (`campaigns.models.locked_copy`, by the view or the admin); a field changed since, to something else than this
    form saves, refuses the save naming it, the person's own values stay on the form with the new fingerprint, and
    saving again keeps theirs, knowingly. The same edit sent twice (a second press, Back and save) saves. A body
    without `seen` (a script, a test) is not checked."""

    seen = forms.CharField(required=False, widget=forms.HiddenInput)
    stored: dict[str, str] | None = None  # the fingerprint's parts of the row as read for this save

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["seen"].initial = self.fingerprint  # called when drawn: once every field is there

    def fingerprint(self) -> str:
        """`field:hash` of each of the instance's fields this form edits (its destination rules as one)."""
        model_fields = {field.name: field for field in self.instance._meta.concrete_fields}
        edited = [name for name in self.fields if name in model_fields]
        if "rule_ios" in self.fields:
            edited.append("rules")
        return ",".join(f"{name}:{fingerprint_of(model_fields[name].value_from_object(self.instance))}"
                        for name in edited)

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk is not None:
            self.stored = fingerprint_parts(self.fingerprint())  # before the form's values go on the instance
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # the form's values are on the instance now
        self.refuse_stale()

    def refuse_stale(self) -> None:
        seen = self.data.get(self.add_prefix("seen"))
        if not seen or self.stored is None:
            return
        shown, saving = fingerprint_parts(seen), fingerprint_parts(self.fingerprint())
        changed = [name for name, value in self.stored.items() if shown.get(name) != value != saving.get(name)]
        if not changed:
            return
        labels = [str(self[name].label) if name in self.fields else "Destination rules" for name in changed]
        self.add_error(None, f"A change was saved to this since the page was drawn ({', '.join(labels)}). Your "
                             "version is below: save again to keep it, or reload the page to see the saved one.")
        self.data = self.data.copy()
        self.data[self.add_prefix("seen")] = ",".join(f"{name}:{value}" for name, value in self.stored.items())


def fingerprint_parts(text: str) -> dict[str, str]:
    """A `SeenVersion` fingerprint's `field: hash` pairs."""
    return dict(part.split(":", 1) for part in text.split(",") if ":" in part)


def fingerprint_of(value) -> str:
    """A short hash of a stored value (a JSON field's with its keys in order)."""
    text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else repr(value)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


class RulesFormMixin:
    """A campaign's or placement's destination rules (`campaigns.rules`) as fields of its edit form; times in the
    team's time zone. Call `add_rule_fields` in `__init__`; `clean` puts the checked rules on the instance."""

    zone: tzinfo
    inherited_rules = ""  # a placement's campaign's rules in words, shown next to its own

    def add_rule_fields(self, stored: dict, zone: tzinfo, inherited: str = "") -> None:
        self.zone, self.stored_rules = zone, stored
        fields = {
            "rule_ios": destination_field(False, "Phones and tablets running iOS go here, e.g. the App Store.",
                                          "iOS destination"),
            "rule_android": destination_field(False, "Android phones and tablets go here, e.g. Google Play.",
                                              "Android destination"),
            "rule_other": destination_field(False, "Every other system (computers, iPads that present themselves "
                                                   "as Macs) goes here.", "Other systems' destination"),
            "rule_starts_at": forms.CharField(required=False, widget=DateTimeInput(), label="Leads there from",
                                              help_text=f"Before then ({zone}), the code leads to the campaign's "
                                                        "fallback address, else its destination."),
            "rule_ends_at": forms.CharField(required=False, widget=DateTimeInput(), label="Until",
                                            help_text=f"From then on ({zone}), the code leads to the campaign's "
                                                      "fallback address, else its destination."),
            "rule_split": forms.CharField(required=False, label="A/B split", widget=forms.Textarea(attrs={
                "rows": 3, "placeholder": "50 https://example.com/a\n50 https://example.com/b"}), help_text=(
                "Two or more destinations, one a line, each with its weight first (an address alone: weight 1, an "
                "equal share); a visitor keeps one all day. "
                "Device destinations come first: the split shares the scans they leave.")),
        }
        initial = {f"rule_{key}": stored[key] for key in rules.DEVICE_KEYS if key in stored}
        for key in rules.SCHEDULE_KEYS:
            if key in stored:
                local = datetime.fromisoformat(stored[key]).astimezone(zone)
                initial[f"rule_{key}"] = local.strftime("%Y-%m-%dT%H:%M")
        if "split" in stored:
            initial["rule_split"] = "\n".join(f"{item['weight']} {item['url']}" for item in stored["split"])
        for name, field in fields.items():
            field.initial = initial.get(name, "")
            self.fields[name] = field
        self.inherited_rules = inherited

    def rule_fields(self) -> list:
        return [self[name] for name in RULE_FIELDS if name in self.fields]

    def clean_rules_fields(self, data: dict) -> None:
        """Check the rule fields together (`rules.clean_rules`) and put the result on the instance."""
        if "rule_ios" not in self.fields or any(name in self.errors for name in RULE_FIELDS):
            return
        given = {key: data.get(f"rule_{key}") for key in (*rules.DEVICE_KEYS, *rules.SCHEDULE_KEYS)}
        try:
            given["split"] = split_lines(data.get("rule_split") or "")
        except ValidationError as exc:
            self.add_error("rule_split", exc)
            return
        try:
            cleaned = rules.clean_rules(given, self.zone)
        except ValidationError as exc:
            message = " ".join(exc.messages)
            field = ("rule_split" if message.startswith("A/B") else "rule_starts_at" if message.startswith("Start")
                     else "rule_ends_at" if message.startswith("End") else None)
            self.add_error(field, ValidationError(on_its_field(message) if field else message, code=exc.code))
            return
        for key in rules.SCHEDULE_KEYS:
            # The page shows minutes in the team's zone: an unchanged time keeps its stored form (seconds, offset),
            # so saving the page for another field records no change of rules.
            if key in cleaned and key in self.stored_rules and same_minute(cleaned[key], self.stored_rules[key]):
                cleaned[key] = self.stored_rules[key]
        self.instance.rules = cleaned


class CampaignForm(SeenVersion, RulesFormMixin, form_fields.ModelForm):
    destination = destination_field(True, "Where the codes lead unless a placement overrides it.")
    fallback_url = destination_field(False, "Where the codes lead once the campaign is archived or a placement is "
                                            "switched off. Leave empty to use the destination.", "Fallback address")

    class Meta:
        model = Campaign
        fields = ["name", "destination", "fallback_url", "starts_on", "ends_on", "dates_route", "utm_source",
                  "utm_medium", "utm_campaign", "archived"]
        widgets = {"starts_on": DateInput(), "ends_on": DateInput()}
        labels = {"utm_source": "UTM source", "utm_medium": "UTM medium", "utm_campaign": "UTM campaign"}
        help_texts = {"archived": "Archived campaigns leave the list; their printed codes still redirect, to the "
                                  "fallback address, and still count."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:  # rules are set once the campaign exists, on its edit page
            self.add_rule_fields(self.instance.rules, self.instance.team.zone)

    def main_fields(self) -> list:
        """The campaign's own fields; the page draws the rules in a fieldset of their own."""
        return [field for field in self.visible_fields() if field.name not in RULE_FIELDS]

    def clean(self) -> dict:
        data = super().clean()  # the model's clean() checks that it ends after it starts
        self.clean_rules_fields(data)
        names.refuse_taken_campaign_name(self, data)
        return data


class NewCampaignForm(CampaignForm):
    """A new campaign, in one of the teams where the user is an owner or editor."""

    team = form_fields.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)

    class Meta(CampaignForm.Meta):
        fields = ["team", "name", "destination", "fallback_url", "starts_on", "ends_on", "dates_route", "utm_source",
                  "utm_medium", "utm_campaign"]

    def __init__(self, *args, teams: QuerySet[Team], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


PICKER_SIZE = 48  # candidates shown in the picker; an older one is still accepted by id (the API, a saved form)


class ArtworkChoiceField(form_fields.ModelChoiceField):
    """Shows the team's latest candidates (`queryset`); accepts any of the team's (`lookup`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lookup = self.queryset

    def label_from_instance(self, candidate: Candidate) -> str:
        # Candidates are numbered by rank everywhere ("#2"), as the generation page shows them.
        number = f"#{candidate.rank}" if candidate.rank else "(unranked)"
        return (f"Generation #{candidate.job_id}, candidate {number} ({candidate.verdict}, "
                f"scan {candidate.scan_probability:.0%})")

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return self.lookup.get(pk=whole(value))
        except Candidate.DoesNotExist:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice") from None


def artwork_choices(team: Team, current: Candidate | None, placement: Placement | None = None) -> list[Candidate]:
    """The picker's candidates: this team's, those made for `placement`'s link first (after a bulk generation the
    team's newest were all other placements', and this one's own dropped out of the picker), then passing ones,
    newest first; the current artwork always."""
    mine = Value(1)
    if placement is not None and placement.slug:
        path, capitals = artwork_rules.short_link_paths(placement.slug)
        mine = Case(When(Q(job__placement=placement) | Q(job__content__endswith=path)
                         | Q(job__content__endswith=capitals), then=Value(0)), default=Value(1))
    fails = Case(When(verdict=Candidate.Verdict.PASS, misread=False, then=Value(0)), default=Value(1))
    ordered = (Candidate.objects.filter(job__team=team).select_related("job")
               .order_by(mine, fails, "-job__created", "-job_id", "rank", "index"))
    shown = list(ordered[:PICKER_SIZE])
    if current is not None and all(c.pk != current.pk for c in shown):
        shown.insert(0, current)
    return shown


def prepare_artwork(form: forms.ModelForm, *, short_url: str, user) -> None:
    """The slow part of choosing the artwork a placement form asks for (`restamps.prepare`), run by the page and the
    admin before they lock the placement; the form's `clean`, under the lock, judges again and says why not."""
    if "artwork" not in form.fields:
        return
    try:
        candidate = form.fields["artwork"].clean(form["artwork"].data)
        restamp = form.fields["restamp"].clean(form["restamp"].data)
    except ValidationError:
        return  # the form says so under the lock
    restamps.prepare(form.instance, candidate, short_url=short_url, user=user, restamp=restamp)


class PlacementForm(SeenVersion, RulesFormMixin, form_fields.ModelForm):
    """A placement; once it exists (it has a short link), also its artwork, chosen by the rules of
    `campaigns.artwork`: a candidate for another link is restamped on request, a failing one needs a reason."""

    destination_override = destination_field(False, "Leave empty to use the campaign's destination.")
    artwork = ArtworkChoiceField(queryset=Candidate.objects.none(), required=False, widget=forms.RadioSelect,
                                 empty_label="None yet (plain code)")
    restamp = forms.BooleanField(required=False, label="Restamp it for this placement", help_text=(
        "A picture made for another link gets a copy that carries this placement's short link."))
    print_anyway = forms.BooleanField(required=False, label="Print anyway", help_text=(
        "Only for artwork that fails the scan check: the placement then shows “will not scan — do not print”."))
    print_anyway_reason = forms.CharField(required=False, max_length=1000, label="Why print it anyway",
                                          widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Placement
        fields = ["name", "kind", "location", "latitude", "longitude", "printed_quantity", "deployed_on", "notes",
                  "active", "destination_override", "scan_distance_m", "printed_width_cm", "artwork"]
        widgets = {"deployed_on": DateInput(), "notes": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"active": "Switched off, the printed code still redirects, to the campaign's fallback address "
                                "(else its destination), and still counts.",
                      # the model's says "quiet zone included", the API's words
                      "printed_width_cm": "The code's printed side, the white border around it included."}
        error_messages = {name: limit_errors(name) for name in LIMITED_FIELDS}

    def __init__(self, *args, team: Team, user=None, short_url: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.team, self.user, self.short_url = team, user, short_url
        self.refused: artwork_rules.ArtworkRefused | None = None
        self.original_artwork_id = self.instance.artwork_id
        if self.instance.pk is not None:  # rules, like artwork, once the placement exists
            self.add_rule_fields(self.instance.rules, team.zone,
                                 rules.describe(self.instance.campaign.rules) or "none")
        if self.instance.pk is None:
            # No short link yet, so no picture can carry it: artwork is chosen once the placement exists.
            for name in self.ARTWORK_FIELDS:
                del self.fields[name]
            return
        # Only artwork the team generated: a candidate id from another team must not validate.
        field = self.fields["artwork"]
        field.lookup = Candidate.objects.filter(job__team=team).select_related("job")
        self.choices = artwork_choices(team, self.instance.artwork, self.instance)
        field.queryset = Candidate.objects.filter(pk__in=[c.pk for c in self.choices]).select_related("job")

    ARTWORK_FIELDS = ("artwork", "restamp", "print_anyway", "print_anyway_reason")

    def main_fields(self) -> list:
        """The placement's own fields; the page draws the artwork picker and its options itself."""
        return [field for field in self.visible_fields()
                if field.name not in self.ARTWORK_FIELDS and field.name not in RULE_FIELDS]

    taken_names: set[str] | None = None  # the campaign's name keys, read once for many rows (a CSV import)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        campaign = getattr(self.instance, "campaign", None)
        if campaign is not None and names.placement_name_clash(self.instance, campaign, name, self.taken_names):
            raise forms.ValidationError(names.PLACEMENT_NAME_TAKEN)
        return name

    def clean(self) -> dict:
        data = super().clean()
        self.clean_rules_fields(data)
        candidate = data.get("artwork")
        if "artwork" not in self.fields or self.errors or candidate is None or candidate.pk == self.original_artwork_id:
            return data  # unchanged artwork was judged when it was chosen
        reason = data.get("print_anyway_reason", "") if data.get("print_anyway") else ""
        try:
            data["artwork"] = restamps.choose(self.instance, candidate, short_url=self.short_url, user=self.user,
                                              restamp=bool(data.get("restamp")), print_anyway_reason=reason)
        except artwork_rules.ArtworkRefused as refused:
            self.refused = refused
            self.add_error("artwork", refused.message)
        return data

    def save(self, commit: bool = True) -> Placement:
        chosen = self.cleaned_data.get("artwork") if "artwork" in self.fields else None
        if "artwork" in self.fields and getattr(chosen, "pk", None) != self.original_artwork_id:
            reason = self.cleaned_data.get("print_anyway_reason", "") if self.cleaned_data.get("print_anyway") else ""
            artwork_rules.apply(self.instance, chosen, user=self.user, print_anyway_reason=reason)
        return super().save(commit)


class WebhookEndpointForm(form_fields.ModelForm):
    url = forms.CharField(max_length=2000, label="Address", help_text="An https:// address that accepts POST.",
                          widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/qart"}))
    events = forms.MultipleChoiceField(choices=[(event, event) for event in WebhookEndpoint.Event.values],
                                       widget=forms.CheckboxSelectMultiple,
                                       initial=[WebhookEndpoint.Event.SCAN_CREATED],
                                       help_text="What it receives (the names the deliveries carry).")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        webhooks.validate_url(url)
        return url
