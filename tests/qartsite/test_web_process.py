"""The web process never imports torch, diffusers, transformers or accelerate: they belong to the GPU workers.

pytest itself has torch loaded, so the check runs in a fresh interpreter that loads only what the web loads (the
WSGI application), fills a throwaway database, requests every URL pattern of the project as a signed-in staff
superuser and reports what ended up in `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "accelerate")
MARKER = "WEB-PROCESS-REPORT "

# Run with `python -c` in the project root. Every name it needs is imported inside it: it shares nothing with pytest.
WALK = r'''
import io, json, sys, traceback
from datetime import date

HEAVY = ("torch", "diffusers", "transformers", "accelerate")
first_imports = {}  # heavy package -> the stack and the URL being requested when it was first imported
current_url = "(start-up)"


class HeavyImportSpy:
    """Records where a heavy package is first imported (the failure message shows it); imports nothing itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in HEAVY and fullname not in first_imports:
            first_imports[fullname] = {"url": current_url, "stack": "".join(traceback.format_stack()[:-1])}
        return None


sys.meta_path.insert(0, HeavyImportSpy())

import qartsite.wsgi  # the WSGI application, as gunicorn loads it

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from PIL import Image

from campaigns import shares
from campaigns.models import Campaign, Placement, PlacementAlert, WebhookDelivery, WebhookEndpoint
from generator.core.codes import qr
from generator.core.evals.grid import config_key
from generator.models import (Candidate, EvalRun, EvalSample, GenerationJob, GenerationPreset, HumanScanResult,
                              LabelingItem, LabelingSession, Prompt)
from qartsite.models import Invitation, Membership, Team


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


# 1. One of everything a page can show, owned by the signed-in user's team. Distinct primary keys, so a URL given
# another object's pk answers 404 and the walk says so.
user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-staff-1")
team = Team.objects.create(pk=11, name="Acme")
Membership.objects.create(team=team, user=user, role="owner")
# Sent to the signed-in user's own address: an invitation opens only for the account it was sent to.
invitation = Invitation.objects.create(team=team, email="staff@example.com", invited_by=user)
campaign = Campaign.objects.create(pk=12, team=team, name="Spring", destination="https://example.com/spring")
# A printed width, so the print download and the preflight run with their defaults (no query string here).
placement = Placement.objects.create(pk=13, campaign=campaign, name="Station poster", printed_width_cm=20)
prompt = Prompt.objects.create(owner=user, team=team, text="a misty forest")
job = GenerationJob.objects.create(pk=14, owner=user, team=team, placement=placement, prompt=prompt,
                                   content=f"http://testserver/r/{placement.slug}", status="done", scannable=True)
candidate = Candidate(pk=15, job=job, index=0, seed=123, scan_probability=0.9, verdict="pass", rank=1)
# A real code of the job's link: the print file made from it is read back and verified before it is sent.
code_png = io.BytesIO()
qr.render_control_image(qr.encode(job.content), 256).save(code_png, format="PNG")
candidate.image.save("candidate-00-seed123.png", ContentFile(code_png.getvalue()))
placement.artwork = candidate
placement.save()
session = LabelingSession.objects.create(pk=16, name="Office phones", team=team, created_by=user)
session.candidates.add(candidate)
item = LabelingItem.objects.create(pk=17, session=session, candidate=candidate)
HumanScanResult.objects.create(session=session, candidate=candidate, labeler=user, scanned=True, device="Pixel 7")
run = EvalRun.objects.create(pk=18, name="Scales", team=team, created_by=user, grid={"conditioning_scale": [1.5]})
config = {"conditioning_scale": 1.5}
EvalSample(run=run, prompt=prompt.text, content=job.content, config=config, config_key=config_key(config),
           job=job).record(job)
GenerationPreset.objects.create(team=team, name="From the sweep", params=config, is_default=True, source_run=run)
endpoint = WebhookEndpoint.objects.create(pk=19, team=team, url="https://hooks.example.com/", events=["scan.created"],
                                          secret="whsec_MDEyMzQ1Njc4OWFiY2RlZg==")
delivery = WebhookDelivery.objects.create(pk=20, endpoint=endpoint, message_id="m1", event="scan.created", ok=True)
alert = PlacementAlert.objects.create(pk=21, placement=placement, kind="stopped", day=date(2026, 5, 1),
                                      message="No scans in the last 24 hours.")
share, share_token = shares.create(campaign, user, days=7)

# 2. A value for every kind of URL argument, from the objects above
objects_by_segment = {"campaigns": campaign, "placements": placement, "jobs": job, "generations": job,
                      "candidates": candidate, "runs": run, "labeling": session, "webhooks": endpoint,
                      "webhook-deliveries": delivery, "alerts": alert, "shares": share, "teams": team}
by_name = {
    "team_id": team.pk, "campaign_id": campaign.pk, "placement_id": placement.pk, "item_pk": item.pk,
    "endpoint_id": endpoint.pk, "alert_id": alert.pk, "share_id": share.pk,
    "uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "format": "json", "path": candidate.image.name,
}
by_url_name = {
    ("evals:plot", "name"): "scan_rate", ("evals:alignment_plot", "name"): "calibration",
    ("invitation", "token"): invitation.token, ("labeling:hit", "token"): item.token,
    ("password_reset_confirm", "token"): default_token_generator.make_token(user),
    ("short_link", "slug"): placement.slug, ("campaigns:shared_report", "token"): share_token,
}


def argument(url_name, route, kwarg):
    if (url_name, kwarg) in by_url_name:
        return by_url_name[url_name, kwarg]
    if kwarg in by_name:
        return by_name[kwarg]
    if kwarg == "pk":  # the object the path segment before it names ("jobs/<int:pk>/": the job)
        segments = [s for s in route.split("(")[0].split("<")[0].strip("^/").split("/") if s]
        obj = objects_by_segment.get(segments[-1] if segments else "")
        return obj.pk if obj else 1
    return 1


def join(prefix, route):  # as django.urls.resolvers joins routes into ResolverMatch.route
    return route if not prefix else prefix + route.removeprefix("^")


def walk(patterns, prefix="", namespaces=()):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # hundreds of generated patterns: a handful of admin pages is requested below
            inner = namespaces + ((entry.namespace,) if entry.namespace else ())
            yield from walk(entry.url_patterns, join(prefix, str(entry.pattern)), inner)
        elif isinstance(entry, URLPattern):
            yield join(prefix, str(entry.pattern)), ":".join(namespaces + (entry.name,)) if entry.name else None, entry


# 3. Every pattern's URL, then a few admin pages, each requested as the signed-in superuser
client = Client(raise_request_exception=False)
client.force_login(user)
requests, patterns = [], []
for route, url_name, entry in walk(get_resolver().url_patterns):
    patterns.append(route)
    names = list(getattr(entry.pattern, "converters", {})) or list(entry.pattern.regex.groupindex)
    kwargs = {kwarg: argument(url_name, route, kwarg) for kwarg in names}
    try:
        url = reverse(url_name, kwargs=kwargs)
        matched = resolve(url).route
    except Exception as exc:
        requests.append({"route": route, "url": None, "status": None, "error": repr(exc)})
        continue
    requests.append({"route": route, "url": url, "matched": matched})
registered = [f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist" for m in admin.site._registry]
admin_urls = [reverse("admin:index")] + [reverse(name) for name in registered] + [
    reverse(f"admin:{o._meta.app_label}_{o._meta.model_name}_change", args=[o.pk])
    for o in (campaign, placement, job, candidate, session, run)
]
requests += [{"route": "(admin)", "url": url, "matched": "(admin)"} for url in admin_urls]
for request in requests:
    if request["url"] is None:
        continue
    current_url = request["url"]
    try:
        response = client.get(request["url"])
        request["status"] = response.status_code
        if response.status_code >= 500 and getattr(response, "exc_info", None):
            request["error"] = "".join(traceback.format_exception(*response.exc_info))[-2000:]
        response.close()
    except Exception as exc:  # a request that raised is recorded; the walk goes on
        request["status"], request["error"] = None, traceback.format_exc()[-2000:]

print("WEB-PROCESS-REPORT " + json.dumps({"patterns": patterns, "requests": requests,
                                          "modules": sorted(sys.modules), "first_imports": first_imports}))
'''


def heavy_modules(modules) -> list[str]:
    """The heavy packages (`HEAVY`) among module names, submodules counted under their package."""
    loaded = {name.split(".")[0] for name in modules}
    return [name for name in HEAVY if name in loaded]


def run_checked(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command[:3])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    """Migrate a fresh SQLite database, then run WALK in a fresh web process; its report."""
    from django.conf import settings

    tmp = tmp_path_factory.mktemp("web")
    (tmp / "media").mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "qartsite.settings", "DATABASE_URL": f"sqlite:///{tmp / 'web.db'}",
           "MEDIA_ROOT": str(tmp / "media"), "DEBUG": "1", "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1",
           # The walk scans a short link: its scan must reach no real stream or spool (see tests/conftest.py).
           "QART_REDIS_PREFIX": f"qart-test-{uuid.uuid4().hex[:12]}:", "QART_SPOOL_DIR": str(tmp / "spool")}
    run_checked([sys.executable, "manage.py", "migrate", "--noinput"], env)
    stdout = run_checked([sys.executable, "-c", WALK], env)
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    assert lines, f"no report in the web process's output:\n{stdout[-3000:]}"
    return json.loads(lines[-1].removeprefix(MARKER))


def test_it_loads_no_heavy_module_in_the_web_process(report):
    loaded = heavy_modules(report["modules"])
    where = {name: report["first_imports"].get(name) for name in loaded}
    assert not loaded, "the web process imported " + "\n\n".join(
        f"{name} while requesting {spot['url'] if spot else '?'}:\n{spot['stack'] if spot else ''}"
        for name, spot in where.items())


def test_it_requests_every_url_pattern(report):
    assert len(report["patterns"]) >= 40
    reached = {r["route"] for r in report["requests"] if r.get("status") and r["matched"] == r["route"]}
    missing = [r for r in report["requests"] if r["route"] not in reached]
    assert not missing, json.dumps(missing, indent=1)
    assert set(report["patterns"]) <= reached
    assert sum(r["route"] == "(admin)" for r in report["requests"]) >= 3


def test_it_runs_every_view_it_requests(report):
    # A 404 or 400 means the view stopped early and the imports behind it went unchecked: give the walk the
    # argument the new route needs. 405: POST-only views, which GET cannot reach further.
    # The admin's "view on site" answers 404 for every object: no model has a page of its own on the site.
    refused = [(r["url"], r["status"]) for r in report["requests"] if r.get("status") in range(400, 500)
               and r["status"] != 405 and not r["route"].startswith("admin/r/")
               # The API's catch-alls (under /api/, and /api in any case followed by anything else): their answer is
               # the JSON 404.
               and r["route"] not in (r"api/(?P<path>[\s\S]*)$", r"^[Aa][Pp][Ii][\s\S]*$")]
    assert not refused


def test_it_answers_no_request_with_a_server_error(report):
    failed = [r for r in report["requests"] if r.get("status") is None or r["status"] >= 500]
    assert not failed, "\n\n".join(f"{r['url']}: {r.get('status')}\n{r.get('error', '')}" for r in failed)


def test_it_reports_a_heavy_module_among_the_modules():
    assert heavy_modules(["django", "numpy", "torch", "torch._C", "transformers.models"]) == ["torch", "transformers"]
    assert heavy_modules(["django", "numpy", "torchvision_like"]) == []
