"""Drill: the media bucket's server frozen (SIGSTOP: its port takes connections and never answers) while people use
the site, then thawed.

Real processes: gunicorn (two sync workers, as in production) storing media in a SeaweedFS of the drill's own, and
`qart_media_sweep`. While the bucket hangs, every page and API call that reads or writes media (the job page, the
gallery, a candidate's image and download, the API's jobs, print files of artwork in PNG and PDF, from the page and
the API, and of a plain code in SVG, the placement page, the shared report, an upload of a picture, and of a picture
with a logo) answers within `ANSWER_WITHIN` seconds with a page or a clear 503, never a 500 or a hang, the short link
keeps redirecting and /healthz says media is not ok; the sweep stops with one line, no traceback, within its probe's
timeout. Thawed, the same images are answered again without a restart.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
from PIL import Image

from campaigns import links, shares
from campaigns.models import Campaign, Placement
from qartsite import storage
from tests.campaigns.conftest import make_art
from tests.drills.conftest import log_tail
from tests.drills.people import Person
from tests.generator.factories import VALID, job_with_candidates

# the web processes read committed rows; `s3`: on a bucket of the drill's own, run once (make test's PostgreSQL pass)
pytestmark = [pytest.mark.drill, pytest.mark.s3, pytest.mark.django_db(transaction=True)]

# A person waits this long at most for any answer while the bucket hangs: a frozen server's port takes connections at
# once, and a web worker's first call, a look-up (a read's, or an upload's of its bucket), waits
# `storage.WEB_LOOK_UP_TIMEOUT` for an answer, once; after that its calls fail at once for `storage.AWAY_SECONDS`. The
# first answer of each of the two workers took 5.0-5.3 s while the look-up waited `storage.WEB_READ_TIMEOUT`; 2.0-2.3 s
# since.
ANSWER_WITHIN = storage.WEB_LOOK_UP_TIMEOUT + 1.5
# What Django's start took the sweep command here, at most, with the drill's processes beside it (2.5-5 s measured).
COMMAND_START = 8
SITE_ROOT = "https://qart.example"  # where the codes' short links point: a host phones can open


def png(size: int = 96) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_media_answer_is_quick_and_plain_while_the_bucket_hangs(bucket_server, start_web, service_env,
                                                                      settings, monkeypatch, team_users):
    # 1. A finished job, artwork chosen for a placement, a share of its campaign: all in the bucket.
    bucket_server.use_here(settings, monkeypatch)
    owner, team = team_users.owner, team_users.team
    job = job_with_candidates(team, owner, count=2, status="done")
    campaign = Campaign.objects.create(team=team, name="Drill", destination="https://shop.example.com/")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    placement.artwork = make_art(team, owner, links.code_link(f"{SITE_ROOT}/r/{placement.slug}", team.capital_scheme))
    placement.save()
    plain = Placement.objects.create(campaign=campaign, name="Flyer")  # no artwork: its code alone, SVG too
    _, token = shares.create(campaign, owner)
    candidate = job.candidates.order_by("rank").first()
    base = start_web(SITE_ROOT=SITE_ROOT, **bucket_server.env)
    person = Person(base, owner)
    image = f"/media/{candidate.image.name}"
    assert person.ask("warm", "GET", image).status_code == 200

    # 2. The bucket hangs; a person goes through every page that touches it.
    bucket_server.freeze()
    try:
        asked = [
            ("candidate image", "GET", image),
            ("job page", "GET", f"/generate/jobs/{job.pk}/"),
            ("gallery", "GET", "/generate/jobs/"),
            ("candidate download", "GET", f"/generate/candidates/{candidate.pk}/download.png"),
            ("API job", "GET", f"/api/generations/{job.pk}/"),
            ("API jobs", "GET", "/api/generations/"),
            ("print PNG", "GET", f"/campaigns/placements/{placement.pk}/print?width=10cm&format=png&confirm=1"),
            ("print SVG", "GET", f"/campaigns/placements/{placement.pk}/print?width=10cm&format=svg&confirm=1"),
            ("print PDF", "GET", f"/campaigns/placements/{placement.pk}/print?width=10cm&format=pdf&confirm=1"),
            ("plain print SVG", "GET", f"/campaigns/placements/{plain.pk}/print?width=10cm&format=svg"),
            ("API print PDF", "GET", f"/api/placements/{placement.pk}/print/?width=10cm&format=pdf"),
            ("placement page", "GET", f"/campaigns/placements/{placement.pk}/"),
            ("shared report", "GET", f"/campaigns/shared/{token}/"),
            ("healthz", "GET", "/healthz"),
            ("short link", "GET", f"/r/{placement.slug}"),
        ]
        for what, method, path in asked:
            person.ask(what, method, path)
        form = {**VALID, "team": team.pk, "engine": "halftone", "candidates_per_batch": "2",
                "csrfmiddlewaretoken": person.csrf("/generate/")}
        person.ask("picture upload", "POST", "/generate/", data=form, files={"picture": ("p.png", png())})
        person.ask("picture and logo upload", "POST", "/generate/", data=form,
                   files={"picture": ("p.png", png()), "logo": ("l.png", png())})
        sweep_started = time.monotonic()
        sweep = subprocess.run([sys.executable, "manage.py", "qart_media_sweep"], capture_output=True, text=True,
                               timeout=120, env={**service_env, **bucket_server.env})
        sweep_took = time.monotonic() - sweep_started
    finally:
        bucket_server.thaw()

    # 3. Thawed: the image is answered again, within the pause after which a web process asks the bucket again.
    person.wait_for("after", image, 200, storage.AWAY_SECONDS + 10)

    slow = [(what, status, round(seconds, 1)) for what, status, seconds, _ in person.answers[1:-1]
            if seconds > ANSWER_WITHIN]
    failed = [(what, status, body[-300:]) for what, status, _, body in person.answers if status >= 500 and
              status != 503]
    assert not slow and not failed, (slow, failed, log_tail(bucket_server.process))
    for what, status, _, body in person.answers[1:-1]:
        if status == 503:
            assert "storage" in body.lower() and "Traceback" not in body, (what, body[-1000:])
    assert person.answers[-1][1] == 200
    answered = {what: (status, body) for what, status, _, body in person.answers}
    assert answered["short link"][0] == 302 and answered["plain print SVG"][0] == 200
    assert answered["healthz"][0] == 200 and '"media": "ok"' not in answered["healthz"][1], answered["healthz"]
    # The bucket asked first, once (`storage.PROBE_TIMEOUT`), and Django's start: 4.0-6.4 s, where the listing's tries
    # (`storage.ATTEMPTS`, each within a worker's timeouts) took 22-25 s.
    assert sweep_took < storage.PROBE_TIMEOUT + COMMAND_START, sweep_took
    assert sweep.returncode == 1 and "run it again once the storage answers" in sweep.stderr, sweep.stderr[-2000:]
    assert "Traceback" not in sweep.stdout + sweep.stderr, sweep.stderr[-2000:]
