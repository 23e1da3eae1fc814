"""Human scan labeling: sessions built from candidates, items re-rendered with their one-time links, and the
results a phone's hit or a labeler's button records.

The Django side of `generator.core.codes.restamp`; the pages live in `generator.evals.labeling_views`. Every
function takes objects the caller has already checked access to.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from io import BytesIO
from urllib.parse import urlsplit

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from campaigns import links
from campaigns.models import Placement
from generator.core.codes import grids, images, restamp
from generator.eval_models import labeling_token
from generator.models import Candidate, HumanScanResult, LabelingItem, LabelingSession
from qartsite.sql import lock_rows
from qartsite.storage import MediaUnavailable

log = logging.getLogger(__name__)
# A phone's read this soon after "Could not scan" was pressed makes the label a scan: phones take a few seconds more
# at times, and the labeler gave up just before.
LATE_READ_SECONDS = 30
MAX_ITEMS = 300  # a sitting of more than this is better split: people tire and the labels get worse
TOKEN_TRIES = 5  # a shortened token may collide with another item's; a fresh one almost never does twice
# What a code whose link does not fit carries instead (see `render_item`): plain text, which a phone shows and
# opens nothing with, in QR's alphanumeric mode so that "LABEL 300" fits even a version-1 level-H code.
SCAN_TEXT = "LABEL {number}"
TEXT_MARK = "-text"  # in the file name of an image that carries SCAN_TEXT rather than the link


def link_prefix(root: str) -> str:
    """The one-time link up to its token, e.g. "https://qart.example/l/"."""
    return root + reverse("labeling:hit", kwargs={"token": "TOKEN"}).removesuffix("TOKEN")


def create_session(team, user, name: str, candidates: Iterable[Candidate], display_size_px: int | None,
                   notes: str = "", seed: int | None = None) -> LabelingSession:
    """A session over `candidates`, one item each, in a shuffled order.

    Shuffled so that a job's candidates (often alike) do not come in a row, where people learn what to expect.

    Args:
        team: the team the session belongs to (the candidates are the caller's to check).
        user: who creates it; phone hits on items shown by nobody recorded are credited to them.
        name: the session's name.
        candidates: the candidates to label; duplicates are dropped.
        display_size_px: how large the codes are shown.
        notes: free text.
        seed: fixes the order (tests); random otherwise.

    Returns:
        The saved `LabelingSession` with its items.
    """
    chosen = list({c.pk: c for c in candidates}.values())
    random.Random(seed).shuffle(chosen)
    with transaction.atomic():
        session = LabelingSession.objects.create(team=team, created_by=user, name=name, notes=notes,
                                                 display_size_px=display_size_px)
        session.candidates.set(chosen)
        LabelingItem.objects.bulk_create(
            LabelingItem(session=session, candidate=c, position=i, token=labeling_token()) for i, c in enumerate(chosen)
        )
    return session


def render_item(item: LabelingItem, root: str) -> bool:
    """Re-render the item's candidate to carry its one-time link, once; the token is cut to fit the code.

    Done when the item is first shown rather than when the session is made: a restamp takes a tenth of a
    second, and a session of hundreds would keep its creator waiting.

    When not even a shortened link fits the original code's version, the code carries `SCAN_TEXT` instead:
    never the original content, whose campaign short link would count the labeler's scans as a campaign's.
    Not a larger version either: the art's picture is drawn on the original module grid, and a finer grid
    over it disagrees with about half of its modules, so the restamp would repaint the picture and the label
    would measure the repaint.

    Args:
        item: the item (its candidate and job are read).
        root: the site root phones reach (`qartsite.site.site_root`).

    Returns:
        Whether the item has an image; False means the art cannot be re-rendered (or its token is already out),
        and the page falls back on `scan_mode`.

    Raises:
        MediaUnavailable: the image storage cannot be reached now; nothing about the item changed.
    """
    if item.image:
        return True
    if item.shown_at is not None or item.result_id is not None:
        return False  # its token may already have been seen: never change it now
    job = item.candidate.job
    try:
        art, grid = art_and_grid(item.candidate)
        # As the art carries it: a restamped copy keeps its art's version and mask, which its text may not need.
        code = item.candidate.art_code()
        link = fitting_link(item, link_prefix(root), job.ecc, code.version)
        payload = link or scan_text(item)
        made = restamp.restamp(art, job.content, payload, ecc=job.ecc, grid=grid, code=code)
    except MediaUnavailable:
        raise  # a passing outage: the item keeps its chance of an image (the page says it cannot be shown now)
    except (OSError, ValueError) as exc:  # ImageError, RepairError, RestampError, ContentError, no free token
        log.info("Labeling item %s has no re-rendered image: %s", item.pk, exc)
        return False
    buffer = BytesIO()
    made.image.save(buffer, format="PNG")
    name = f"{item.session_id}-{item.position}{'' if link else TEXT_MARK}.png"
    item.image.save(name, ContentFile(buffer.getvalue()), save=False)
    try:
        with transaction.atomic():
            # Only where no other request drew it meanwhile (two tabs, a double click): each would show its own
            # image with its own token, and a phone scanning the losing tab's code would record nothing.
            drawn = LabelingItem.objects.filter(Q(image="") | Q(image__isnull=True), pk=item.pk).update(
                token=item.token, image=item.image.name)
    except IntegrityError:  # the token was taken between the check and the save: buttons only this time
        drawn = 0
    if not drawn:
        _forget(item.image.storage, item.image.name)
        item.refresh_from_db(fields=["token", "image"])
        return bool(item.image)
    return True


def _forget(storage, name: str) -> None:
    """Delete an image this request stored and no row took (`qartsite.media_sweep` would, a day later)."""
    try:
        storage.delete(name)
    except OSError as exc:
        log.info("Could not delete the unused labeling image %s: %s", name, exc)


def art_and_grid(candidate: Candidate) -> tuple:
    """The candidate's picture and, when its job kept one, the module grid read from its control image."""
    job = candidate.job
    with candidate.image.open("rb") as stored:
        art = images.open_image(stored.read())
    grid = None
    if job.control_image:
        with job.control_image.open("rb") as stored:
            grid = grids.grid_from_control(images.open_image(stored.read()))
    return art, grid


def fitting_link(item: LabelingItem, prefix: str, ecc: str, version: int) -> str | None:
    """The item's link cut to fit `version`, its token set to the cut one; None when no link fits.

    Raises:
        ValueError: every cut token drawn was another item's already.
    """
    for _ in range(TOKEN_TRIES):
        link = restamp.fit_link(prefix, item.token, ecc, version)
        if link is None:
            return None
        token = link.removeprefix(prefix)
        if token == item.token or not LabelingItem.objects.filter(token=token).exists():
            item.token = token
            return link
        item.token = labeling_token()
    raise ValueError(f"no free token for item {item.pk} after {TOKEN_TRIES} tries")


def scan_text(item: LabelingItem) -> str:
    """What the phone shows for an item whose code carries text: the item's number in the session."""
    return SCAN_TEXT.format(number=item.position + 1)


def scan_mode(item: LabelingItem) -> str:
    """How the labeling page presents the item, after `render_item`:

    - "link": the code carries the one-time link, and a phone's hit records the scan;
    - "text": it carries `scan_text` (no link fits), and the labeler records with the buttons;
    - "original": it could not be re-rendered, and the candidate is shown as it is; its content is no
      campaign's, so a scan counts nowhere but here;
    - "hidden": it could not be re-rendered and its content is a campaign short link: not shown at all, since
      every scan of it would count in the campaign's figures. The labeler skips it.
    """
    if item.image:
        return "text" if TEXT_MARK in item.image.name.rsplit("/", 1)[-1] else "link"
    return "hidden" if is_campaign_link(item.candidate.job) else "original"


def is_campaign_link(job) -> bool:
    """Whether the job's code carries a short link of this site's campaigns (scans of it are counted)."""
    if job.placement_id is not None:
        return True
    try:
        match = resolve(urlsplit(job.content).path)
    except (Resolver404, ValueError):  # ValueError: text urlsplit cannot take apart (a broken IPv6 host)
        return False
    return match.url_name == "short_link" and Placement.objects.filter(slug=match.kwargs.get("slug")).exists()


def show(item: LabelingItem, user) -> None:
    """Start the item's clock with `user` at the screen; a re-shown item without a result starts again (the
    earlier attempt was left), and is then credited to whoever shows it this time."""
    if item.result_id is None:
        item.shown_at, item.shown_by = timezone.now(), user
        item.save(update_fields=["shown_at", "shown_by"])


@lru_cache(maxsize=1024)
def phone_of(user_agent: str) -> tuple[str, str, bool]:
    """(device, app, is_bot) of a phone's user agent: the model when the agent names it, else its system, and
    the browser the camera app opened the link in."""
    from ua_parser import parse

    browser, os_family, _, is_bot = links.describe_agent(user_agent)
    device = parse(user_agent).device
    model = device.family if device and device.family not in ("Other", "Generic Smartphone", "K") else os_family
    return model[:80], browser[:80], is_bot


def record_hit(item: LabelingItem, user_agent: str) -> HumanScanResult | None:
    """Record a phone's first hit on a shown item as a scan; None when it was not shown or already recorded.

    The phone has no session: the scan is the labeler's who had the item on screen (`show`), or the session
    creator's for an item shown before anyone was recorded. The claim is one conditional UPDATE, so two hits at
    once (a phone that retries) make one result.
    """
    now = timezone.now()
    with transaction.atomic():
        hold_session(item)
        claimed = LabelingItem.objects.filter(pk=item.pk, shown_at__isnull=False, hit_at__isnull=True,
                                              result__isnull=True).update(hit_at=now, hit_user_agent=user_agent)
        if not claimed:
            return late_read(item, user_agent, now)
        item.refresh_from_db()
        device, app, _ = phone_of(user_agent)
        session = item.session
        result = HumanScanResult.objects.create(
            session=session, candidate=item.candidate, labeler_id=item.shown_by_id or session.created_by_id,
            device=device, app=app,
            scanned=True, seconds=round((now - item.shown_at).total_seconds(), 2),
        )
        item.result = result
        item.save(update_fields=["result"])
    return result


def late_read(item: LabelingItem, user_agent: str, now) -> HumanScanResult | None:
    """A phone that read the code within LATE_READ_SECONDS of "Could not scan" being pressed: the label becomes the
    phone's scan, with a note saying so. None when the item has no such label (a scan already, or too late)."""
    with transaction.atomic():
        claimed = LabelingItem.objects.filter(
            pk=item.pk, shown_at__isnull=False, hit_at__isnull=True, result__scanned=False,
            result__created__gte=now - timedelta(seconds=LATE_READ_SECONDS),
        ).update(hit_at=now, hit_user_agent=user_agent)
        if not claimed:
            return None
        item.refresh_from_db()
        result, (device, app, _) = item.result, phone_of(user_agent)
        result.scanned, result.seconds = True, round((now - item.shown_at).total_seconds(), 2)
        result.device, result.app = device or result.device, app or result.app  # the phone that read it
        result.notes = " ".join(filter(None, [result.notes, "Read by the phone just after “Could not scan”."]))
        result.save(update_fields=["scanned", "seconds", "device", "app", "notes"])
    return result


def hold_session(item: LabelingItem) -> None:
    """Hold `item`'s session for this transaction, before a label is written for it: a session deleted meanwhile
    (`delete_sessions`, which holds it before it collects what goes with it) takes the label with it, or the label
    finds it gone. Raises LabelingItem.DoesNotExist for a session deleted. Labels of one session wait for each other
    (FOR NO KEY UPDATE: Django offers no FOR KEY SHARE); each is a few short statements."""
    if not lock_rows(LabelingSession, [item.session_id]):
        raise LabelingItem.DoesNotExist("This labeling session was deleted a moment ago.")


def delete_sessions(chosen) -> None:
    """Delete labeling sessions (a queryset) with their items and labels, each held first (`hold_session`): a label
    written at that moment is deleted with them, not left pointing at a deleted session (an IntegrityError)."""
    with transaction.atomic():
        held = lock_rows(LabelingSession, chosen.values_list("pk", flat=True), deleting=True)
        LabelingSession.objects.filter(pk__in=held).delete()


def record_label(item: LabelingItem, user, scanned: bool | None, seconds: float | None,
                 aesthetic_vote: int | None, notes: str, device: str = "") -> HumanScanResult:
    """Record what the labeler pressed; an item with a result (a phone hit) has it amended, never doubled.

    Args:
        item: the item on screen.
        user: the labeler.
        scanned: True ("scanned", for phones that only preview the link), False ("could not scan"), or None
            (only a vote or notes).
        seconds: how long the item was on screen when they pressed it.
        aesthetic_vote: -1, 1 or None.
        notes: free text, appended to any already there.
        device: the phone the labeler says they use ("" when not said); a phone's own hit keeps the device it named.

    Returns:
        The item's `HumanScanResult`.

    Raises:
        ValueError: only a vote or notes for an item that has no result yet.
        LabelingItem.DoesNotExist: its session was deleted meanwhile.
    """
    with transaction.atomic():
        hold_session(item)
        # The item alone, then its result: a row joined to a locked one is read as it was before the wait, so a
        # result another request attached meanwhile was missed, and a second made (seen on PostgreSQL)
        item = LabelingItem.objects.select_for_update().get(pk=item.pk)
        result = HumanScanResult.objects.filter(pk=item.result_id).first() if item.result_id else None
        if result is None and scanned is None:
            raise ValueError("Nothing recorded for this code yet: press “scanned” or “could not scan” first.")
        if result is None:
            result = HumanScanResult(session=item.session, candidate_id=item.candidate_id, labeler=user,
                                     scanned=bool(scanned), seconds=seconds)
        elif scanned is not None and scanned != result.scanned:
            result.scanned, result.seconds = scanned, seconds  # the labeler corrects what was recorded
        if aesthetic_vote is not None:
            result.aesthetic_vote = aesthetic_vote
        if notes:
            result.notes = f"{result.notes}\n{notes}".strip()
        if device and not result.device:
            result.device = device
        result.save()
        if item.result_id is None:
            item.result = result
            item.save(update_fields=["result"])
    return result


def attach_to_item(result: HumanScanResult) -> LabelingItem | None:
    """A label entered by hand (the admin, an imported sheet) for a session's candidate answers that session's first
    item of the candidate still without one, as a button press would: the done page and `next_item` count it. A label
    whose session or candidate changed leaves the item it answered.

    Returns:
        The item it came to answer; None when it answers none, or still the one it answered.
    """
    answered = LabelingItem.objects.filter(result=result).first()
    if answered is not None:
        if (answered.session_id, answered.candidate_id) == (result.session_id, result.candidate_id):
            return None
        LabelingItem.objects.filter(pk=answered.pk).update(result=None)  # changed in the admin: the old item is open
    if result.session_id is None or result.candidate_id is None:
        return None
    with transaction.atomic():
        item = (LabelingItem.objects.select_for_update()
                .filter(session_id=result.session_id, candidate_id=result.candidate_id, result__isnull=True)
                .order_by("position").first())
        if item is None:
            return None
        item.result = result
        item.save(update_fields=["result"])
    return item


def next_item(session: LabelingSession, after: int | None = None) -> LabelingItem | None:
    """The first item without a result, after position `after` when given."""
    items = session.items.filter(result__isnull=True).select_related("candidate__job")
    if after is not None:
        items = items.filter(position__gt=after)
    return items.order_by("position").first()


def labelled_count(session: LabelingSession) -> int:
    return session.items.filter(result__isnull=False).count()


def team_candidates(team) -> QuerySet[Candidate]:
    return Candidate.objects.filter(job__team=team)
