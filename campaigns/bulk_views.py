"""Bulk pages of a campaign: import placements from CSV (a dry run first), generate for every placement, and the
CSV exports of campaigns and placements (the scans' export is `scan_export_views.campaign_scans_csv`).

Access as on every campaign page: objects through `.for_user(request.user)` (another team's answers 404), and every
page that changes something checks `require_editor` (viewers get 403), GET included: there is nothing to look at.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_safe

from campaigns import bulk, bulk_generation
from campaigns.models import Campaign, Placement
from generator import uploads
from generator.forms import GenerationForm
from qartsite import form_fields
from qartsite.access import get_for_user_or_404, require_editor
from qartsite.numbers import whole
from qartsite.responses import csv_download
from qartsite.site import site_root, unreachable_reason
from qartsite.templatetags.words import breaks_in_name

log = logging.getLogger(__name__)
# The generation form's inputs the bulk page shows; the rest (team, placement, content) it fills in itself.
GENERATION_FIELDS = ("engine", "prompt", "negative_prompt", "picture", "look", "speed", "style", "background")
# The engine each field is for, as on the generation page: the page shows the chosen engine's (bulk-generate.js).
ENGINE_OF = {"engine": "", "picture": "halftone"}  # every other field: diffusion's


class ImportForm(forms.Form):
    file = forms.FileField(required=False, label="CSV file",
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
                           error_messages={"empty": "The file is empty: the first row names the columns, the rows "
                                                    "below are the placements."})
    text = forms.CharField(required=False, label="Or the rows themselves", strip=False,
                           widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))


class PlacementsField(form_fields.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Placement) -> str:
        # A name in one long word wraps after its underscores beside its box, not wherever its line ends.
        return format_html("{} ({})", breaks_in_name(obj.name), obj.get_kind_display())


class PlacementChoiceForm(forms.Form):
    placements = PlacementsField(
        queryset=Placement.objects.none(), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one placement."},
        help_text="Each gets its own job, queued in this order.")

    def __init__(self, *args, campaign: Campaign, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["placements"].queryset = bulk_generation.placements_to_generate(campaign)


def editable_campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user).select_related("team"), pk=campaign_id)
    require_editor(request.user, campaign.team)
    return campaign


# Import -----------------------------------------------------------------------------------------------------

def uploaded_csv(form: ImportForm) -> bytes:
    """The CSV the form carries: the file if one was chosen, else the pasted text.

    Raises:
        bulk.FileRefused: neither, a file over the cap, or text with a NUL (`bulk.pasted`).
    """
    if form.cleaned_data.get("file"):
        return bulk.read_upload(form.cleaned_data["file"])
    text = form.cleaned_data.get("text") or ""
    if not text.strip():
        raise bulk.FileRefused("Choose a CSV file, or paste its rows.")
    return bulk.pasted(text)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def placement_import(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Upload (or paste) a CSV: every row is checked and shown with its errors; "Import" stores all or nothing."""
    campaign = editable_campaign(request, campaign_id)
    # Bound on every POST: an empty one was the blank form, 200 (its refusal below is the 400 it is)
    form = ImportForm(request.POST if request.method == "POST" else None, request.FILES or None)
    ctx: dict = {"campaign": campaign, "columns": bulk.COLUMNS, "cap": bulk.cap_in_words(),
                 "kinds": Placement.Kind.values}
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            data = uploaded_csv(form)
            checked = bulk.check(campaign, data)
            if request.POST.get("action") == "import" and checked.ok:
                try:
                    placements = bulk.store(checked)
                except bulk.NamesTaken:
                    # Another import took some names since the check: the rows again, with what is taken now.
                    checked, status = bulk.check(campaign, data), 409
                else:
                    messages.success(request, f"Imported {len(placements)} placement{'s' * (len(placements) != 1)}"
                                              ": each has its own short link.")
                    return redirect("campaigns:detail", campaign_id=campaign.pk)
            else:
                status = 200 if checked.ok else 400
        except bulk.FileRefused as exc:  # the file, or a campaign archived since the page was drawn
            form.add_error(None, str(exc))
            status = 400
        else:
            # The rows again, editable: fix them here and check again, or fix the file and upload it again.
            form = ImportForm(initial={"text": data.decode("utf-8-sig")})
            ctx.update(checked=checked, preview=[f.cleaned_data for f in checked.forms])
    if request.method == "POST" and form.errors:  # the form's own refusals too (an empty file): not a success
        status = 400
    ctx["form"] = form
    return render(request, "campaigns/bulk_import.html", ctx, status=status)


# Export -----------------------------------------------------------------------------------------------------

@login_required
@require_safe
def placements_csv(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign's placements in the import's columns (plus each short link): the file imports again."""
    campaign = get_for_user_or_404(Campaign.objects.for_user(request.user), pk=campaign_id)
    placements = campaign.placements.select_related("campaign__team").order_by("name", "pk")
    lines = bulk.placement_lines(placements, lambda placement: placement.short_url(request))
    return csv_download(request, lines, campaign.name, "placements.csv")


@login_required
@require_safe
def campaigns_csv(request: HttpRequest) -> HttpResponse:
    """The campaigns of your teams (`?team=<id>`: of one), archived ones included (a column says which)."""
    campaigns = Campaign.objects.for_user(request.user)
    team = whole(request.GET.get("team"))
    if team is not None:
        campaigns = campaigns.filter(team_id=team)
    return csv_download(request, bulk.campaign_lines(campaigns), "", "campaigns.csv")


# Generate for every placement -------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def generate_all(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """One shared prompt (or picture, for the halftone engine) starts one generation per chosen placement."""
    campaign = editable_campaign(request, campaign_id)

    def link_for(placement: Placement) -> str:
        return placement.short_url(request)

    room = bulk_generation.room_for(campaign)
    offered = bulk_generation.placements_to_generate(campaign)
    # Ticked: as many as can start now (all of them, with no rate): a page whose every box was ticked past the
    # team's room was refused as it came, and left a hundred boxes to untick by hand.
    chosen = PlacementChoiceForm(request.POST or None, campaign=campaign,
                                 initial={"placements": offered if room is None else offered[:room]})
    form = GenerationForm(request.user, link_for=link_for, earlier=False)
    status, problem = 200, ""
    if campaign.archived:
        problem = "This campaign is archived: bring it back before generating for its placements."
        status = 409 if request.method == "POST" else 200  # a POST started nothing: not a success
    elif request.method == "POST" and (chosen.is_valid() or offered.exists()):
        placements = list(chosen.cleaned_data["placements"]) if chosen.is_valid() else []
        first = placements[0] if placements else offered.first()
        # The form checks the shared settings (and the picture, once) as for the first placement; with none chosen,
        # as for the first offered, so every mistake is said at once and the picture is kept for the next try.
        data = request.POST.copy()
        data["team"], data["placement"], data["content"] = str(campaign.team_id), str(first.pk), ""
        form = GenerationForm(request.user, data, request.FILES, link_for=link_for, earlier=False, many_links=True)
        if form.is_valid() and placements:
            try:
                started = bulk_generation.start_jobs(
                    placements, lambda p: form.build_job({**form.cleaned_data, "placement": p,
                                                          "content": link_for(p)}),
                    request.user, form.picture)
            except bulk_generation.NotStarted as exc:
                problem, status = exc.message, exc.status
            except OSError:
                log.exception("A bulk generation's picture could not be stored")
                problem, status = uploads.NOT_STORED, 503
            else:
                messages.success(request, f"Started {len(started)} generation{'s' * (len(started) != 1)}, queued "
                                          "in the placements' order.")
                return redirect("generator:jobs")
        else:
            status = 429 if form.rate_limited else 400
    elif request.method == "POST":
        status = 400
    dropped: list[str] = []
    if request.method == "POST":  # going back: the picture sent stays for the next try, as on the generation page
        dropped = form.keep_uploads()
    for name in ("engine", "look", "speed"):  # compact here: the generation page draws these as cards
        form.fields[name].widget = forms.Select(choices=form.fields[name].choices)
    others = [message for name, errors in form.errors.items() if name not in GENERATION_FIELDS for message in errors]
    ctx = {"campaign": campaign, "chosen": chosen, "form": form, "problem": problem, "other_errors": others,
           # A picture sent but not kept (the cache away, or not decoded for a team without room): said beside its
           # field, as on the generation page, not lost without a word.
           "dropped": dropped,
           "fields": [(form[name], ENGINE_OF.get(name, "diffusion")) for name in GENERATION_FIELDS], "room": room,
           # Every code started here carries its placement's short link: say so before phones cannot open them.
           "unreachable": unreachable_reason(site_root(request)),
           # Said again at the top: under its field it sat below every placement's box, thousands of pixels down.
           "field_errors": [(form[name], message) for name in GENERATION_FIELDS
                            for message in form.errors.get(name, [])]}
    return render(request, "campaigns/bulk_generate.html", ctx, status=status)
