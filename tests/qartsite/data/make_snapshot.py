"""Made `main-2026-12-01.sqlite3`, the database `tests/qartsite/test_migrations.py` migrates.

Run once, with the code of commit 4502e94 (the last commit before the layout refactor), on a freshly migrated
SQLite database; kept for the record, not run by the suite (the code it imports is the old commit's):

    git worktree add /tmp/oldmain 4502e94 && cd /tmp/oldmain && ln -s /work/main/.venv .venv
    export DATABASE_URL=sqlite:////tmp/oldsnap/qart.sqlite3 DEBUG=1
    .venv/bin/python manage.py migrate
    .venv/bin/python /work/main/tests/qartsite/data/make_snapshot.py \
        /work/main/tests/qartsite/data/main-2026-12-01.sqlite3

It puts at least one row in every table of the project's models (and in auth's, DRF tokens', sessions', the admin
log's and the many-to-many tables), then writes a vacuumed copy to the path given.
"""

from __future__ import annotations

import os
import sys


def fill() -> None:
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from campaigns.models import Campaign, Placement, ScanEvent
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
    from qartsite.models import Invitation, Membership, Team

    now = timezone.now()
    # 1. Accounts: two users, a group with a permission, a token, a session, an admin log entry.
    owner = User.objects.create_superuser("owner", "owner@example.com", "pw-owner-1")
    labeler = User.objects.create_user("labeler", "labeler@example.com", "pw-labeler-1")
    group = Group.objects.create(name="labelers")
    permission = Permission.objects.get(codename="view_candidate")
    group.permissions.add(permission)
    labeler.groups.add(group)
    labeler.user_permissions.add(permission)
    Token.objects.create(user=owner)
    session = SessionStore()
    session["_auth_user_id"] = str(owner.pk)
    session.create()

    # 2. Teams.
    team = Team.objects.create(name="Acme")
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=labeler, role=Membership.Role.VIEWER)
    Invitation.objects.create(team=team, email="new@example.com", invited_by=owner)
    LogEntry.objects.create(user=owner, content_type=ContentType.objects.get_for_model(Team), object_id=str(team.pk),
                            object_repr=str(team), action_flag=ADDITION, change_message="[]")

    # 3. Campaigns; the placement's artwork is filled in once a candidate exists.
    campaign = Campaign.objects.create(team=team, name="Spring sale", destination="https://example.com/spring")
    placement = Placement.objects.create(campaign=campaign, name="Window poster", latitude="51.500000",
                                         longitude="-0.120000", printed_quantity=20)
    ScanEvent.objects.create(placement=placement, browser="Safari", os="iOS", device_class="mobile", country="GB")
    ScanEvent.objects.create(placement=placement, browser="Chrome", os="Android", device_class="mobile")

    # 4. Generation: a prompt, a finished job with two candidates (file fields hold plain names).
    prompt = Prompt.objects.create(owner=owner, team=team, text="a lighthouse at dusk", times_used=1)
    job = GenerationJob.objects.create(
        owner=owner, team=team, placement=placement, prompt=prompt, content="https://qart.example/s/abc",
        seed=1234, status=GenerationJob.Status.DONE, progress=1.0, batches=1, scannable=True,
        control_image="generations/control/1.png", started=now, finished=now, generation_seconds=12.5,
    )
    candidates = [
        Candidate.objects.create(job=job, index=i, seed=1234 + i, image=f"generations/{job.pk}/{i}.png",
                                 scan_probability=0.9 - i / 10, verdict="pass", rank=i + 1,
                                 scan_details={"decoders": ["zxing"]})
        for i in range(2)
    ]
    placement.artwork = candidates[0]
    placement.save()
    GenerationJob.objects.create(owner=labeler, team=team, prompt=prompt, content="halftone", engine="halftone",
                                 init_image="generations/init/photo.png")

    # 5. Labeling: a session over both candidates, an item whose phone hit recorded a result.
    labeling = LabelingSession.objects.create(name="Office phones", created_by=owner, team=team, display_size_px=300)
    labeling.candidates.add(*candidates)
    result = HumanScanResult.objects.create(session=labeling, candidate=candidates[0], labeler=labeler,
                                            device="iPhone 13", app="iOS Camera", scanned=True, seconds=1.2)
    HumanScanResult.objects.create(image_name="imported.png", scanned=False, aesthetic_vote=1)
    LabelingItem.objects.create(session=labeling, candidate=candidates[0], position=0, image="labeling/a.png",
                                shown_at=now, hit_at=now, shown_by=labeler, result=result)
    LabelingItem.objects.create(session=labeling, candidate=candidates[1], position=1)

    # 6. Evals: a sweep with one sample per configuration, and a preset it justified.
    run = EvalRun.objects.create(name="scale sweep", team=team, created_by=owner,
                                 grid={"conditioning_scale": [1.0, 1.5]}, base_params={"steps": 20},
                                 code_version="4502e94")
    for scale in (1.0, 1.5):
        sample = EvalSample.objects.create(run=run, prompt=prompt.text, content=job.content,
                                           config={"conditioning_scale": scale},
                                           config_key=f"conditioning_scale={scale}",
                                           job=job if scale == 1.5 else None)
    sample.record(job)
    GenerationPreset.objects.create(team=team, name="Sharp", params={"conditioning_scale": 1.5}, is_default=True,
                                    source_run=run, created_by=owner)


def main(destination: str) -> None:
    # Run as a file, the script's folder is first on sys.path; the old checkout it runs in must be.
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    with transaction.atomic():
        fill()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [destination])


if __name__ == "__main__":
    main(sys.argv[1])
