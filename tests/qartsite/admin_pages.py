"""The admin's pages and the rows they show: one object of every team-owned model, a page's URL, the
team-scoped admins, the choices a page offers, and what a browser sends back when its form is saved (`posted_back`)."""

from __future__ import annotations

from datetime import date, timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from django.contrib import admin
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from campaigns.models import (
    Campaign,
    DestinationChange,
    Placement,
    PlacementAlert,
    ReportShare,
    ScanEvent,
    ScanRollup,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
)
from generator.models import (
    Candidate,
    EvalRun,
    EvalSample,
    GenerationJob,
    GenerationPreset,
    HumanScanResult,
    LabelingItem,
    LabelingSession,
    Prompt,
)
from qartsite.models import Invitation, Team
from qartsite.scoped_admin import TeamScopedAdmin


def team_rows(team: Team, owner) -> dict:
    """One object of every team-owned model for `team`, named after it, by model."""
    name = team.name
    campaign = Campaign.objects.create(team=team, name=f"{name} campaign", destination="https://example.com")
    placement = Placement.objects.create(campaign=campaign, name=f"{name} poster")
    prompt = Prompt.objects.create(owner=owner, team=team, text=f"{name} prompt")
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=prompt, content=f"https://x.io/{name}")
    candidate = Candidate.objects.create(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass", rank=1,
                                         image=ContentFile(b"\x89PNG", name="c.png"))
    session = LabelingSession.objects.create(team=team, name=f"{name} sitting")
    session.candidates.add(candidate)
    result = HumanScanResult.objects.create(session=session, candidate=candidate, image_name=f"{name}.png",
                                            scanned=True)
    run = EvalRun.objects.create(team=team, name=f"{name} sweep")
    endpoint = WebhookEndpoint.objects.create(team=team, url=f"https://{name.lower()}.example.com/hook",
                                              events=["scan.created"], secret=f"whsec_{name}")
    return {
        Team: team,
        Invitation: Invitation.objects.create(team=team, email=f"{name}@example.com", invited_by=owner),
        Campaign: campaign,
        Placement: placement,
        ScanEvent: ScanEvent.objects.create(placement=placement, device_class="mobile"),
        Prompt: prompt,
        GenerationJob: job,
        Candidate: candidate,
        LabelingSession: session,
        LabelingItem: LabelingItem.objects.create(session=session, candidate=candidate, result=result),
        HumanScanResult: result,
        EvalRun: run,
        EvalSample: EvalSample.objects.create(run=run, prompt=f"{name} prompt", content="x", config_key="a=1",
                                              job=job),
        GenerationPreset: GenerationPreset.objects.create(team=team, name=f"{name} preset", source_run=run),
        WebhookEndpoint: endpoint,
        WebhookDelivery: WebhookDelivery.objects.create(endpoint=endpoint, message_id=f"{name}-message",
                                                        event="scan.created"),
        WebhookOutbox: WebhookOutbox.objects.create(endpoint=endpoint, event="scan.created", next_try=timezone.now(),
                                                    messages=[[f"{name}-waiting", {"placement": placement.pk}]]),
        DestinationChange: DestinationChange.objects.create(campaign=campaign, placement=placement,
                                                            field="destination_override", before="",
                                                            after=f"https://{name.lower()}.example.com/new",
                                                            changed_by=owner),
        PlacementAlert: PlacementAlert.objects.create(placement=placement, kind="stopped", day=date(2026, 5, 1),
                                                      message=f"{name} poster: no scans"),
        ReportShare: ReportShare.objects.create(campaign=campaign, token_hash=f"{name}-hash", label=f"{name} agency",
                                                expires=timezone.now() + timedelta(days=7), created_by=owner),
        ScanRollup: ScanRollup.objects.create(placement=placement, day=date(2026, 5, 1), scans=3, visitors=2,
                                              first_scan=timezone.now(), last_scan=timezone.now()),
    }


def url(model, action: str = "changelist", obj=None) -> str:
    """An admin page of `model`: its changelist, add page, or an object's change or delete page."""
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{action}", args=[] if obj is None else [obj.pk])


def scoped_admins() -> list[tuple[type, TeamScopedAdmin]]:
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if isinstance(model_admin, TeamScopedAdmin)]


def choices_on(response) -> dict:
    """The choices of every relation field on an admin add or change page, inlines included, by field name."""
    forms = [response.context["adminform"].form]
    forms += [inline.formset.empty_form for inline in response.context["inline_admin_formsets"]]
    # An inline form's hidden primary key is no choice: the formset finds rows only among the parent's own.
    return {name: list(field.queryset) for form in forms for name, field in form.fields.items()
            if hasattr(field, "queryset") and name != form._meta.model._meta.pk.name}


class _FormReader(HTMLParser):
    """The fields of the page's forms as a browser would send them back unchanged (`posted_back`)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file", "image"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.data.setdefault(name, []).append(attrs.get("value") or "")
        elif tag == "select" and name:
            self.select, self.options = name, []
        elif tag == "option" and self.select is not None:
            self.options.append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and name:
            self.textarea = name
            self.data.setdefault(name, []).append("")

    def handle_data(self, data) -> None:
        if self.textarea is not None:
            self.data[self.textarea][-1] += data

    def handle_endtag(self, tag) -> None:
        if tag == "select" and self.select is not None:
            chosen = [value for value, selected in self.options if selected]
            # A single select shows its first option when none is selected, and sends that.
            self.data[self.select] = chosen or [value for value, _ in self.options[:1]]
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def posted_back(response) -> dict[str, list[str]]:
    """What a browser sends when the page's form (an admin change page) is saved as it was drawn: its inputs, checked
    boxes, textareas and each select's selected option (the first, when none is). A select whose current value is
    not among its options sends another: what a person saving the page unchanged would save."""
    reader = _FormReader()
    reader.feed(response.content.decode())
    # The textarea's first newline belongs to the markup (Django starts every textarea with one).
    return {name: [value.removeprefix("\n") for value in values] for name, values in reader.data.items()}


class _LinkReader(HTMLParser):
    """The `href` of every <a> of a page, entities unescaped (`admin_links`)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def admin_links(response, page: str) -> set[str]:
    """The links of `response` (the answer to `page`, a path) into the admin, each as a path and its query, as a
    browser follows them: relative ones ("?o=2", a column's sort) resolved against `page`, fragments dropped."""
    reader = _LinkReader()
    reader.feed(response.content.decode())
    links = set()
    for href in reader.hrefs:
        parts = urlsplit(urljoin(page, href))
        if not parts.scheme and not parts.netloc and parts.path.startswith("/admin/"):
            links.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return links
