"""The short-link redirect: the one page every printed code leads to.

A code printed on 10,000 flyers cannot be re-printed, so the link must keep working, and counting, through any
outage. The request looks the slug up (cached in the process for LINK_TTL seconds), hands the scan to the durable
buffer (`campaigns.scan_buffer`: a Redis stream, else a spool file; `manage.py qart_drain_scans` stores it) and
redirects: the database is never written here. When the database is away (or slow: 2 s to connect, 1 s per
statement), known slugs answer from the last copy this process saw, else from the copy every process shares in
Redis; an unknown slug gets a 503 asking to retry, never a 500. No session. It only ever redirects to a destination
stored on the placement or its campaign (`Placement.destination`, or one its rules choose: `campaigns.rules`, compiled
once per lookup and kept with the link in both copies), with the scanner's query parameters added to its own
(`links.with_scanner_query`: they never change its scheme, host or path, nor a parameter it sets): a code of an
archived campaign or of a placement switched off goes to the campaign's fallback and is still counted; only a slug
that never existed (or a placement a superuser deleted) answers 404.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from contextlib import nullcontext
from datetime import UTC, datetime, tzinfo
from time import monotonic
from typing import NamedTuple

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from campaigns import drainer, geo, links, scan_buffer
from campaigns.models import Placement
from campaigns.rules import LinkRules
from qartsite.db_threads import DatabaseThreads
from qartsite.models import zone_named
from qartsite.site import client_address

log = logging.getLogger(__name__)

LINK_TTL = 5.0  # seconds a looked-up link is used without asking the database again
MAX_LINKS = 50_000  # unknown slugs from scanners or scrapers must not grow the copy without bound
STATEMENT_TIMEOUT_MS = 1000
# After a failed lookup, answer from the copies for this long without asking the database: a database that hangs
# would otherwise cost every scan the 2 s connect timeout.
DATABASE_RETRY_AFTER = 2.0
RETRY_AFTER_SECONDS = 30  # what the 503 asks the phone to wait
PROXY_COUNTRY = re.compile(r"[A-Za-z]{2}")  # a country code as QART["COUNTRY_HEADER"] should carry it

# (placement id, or None for "no such placement"; redirect URL; its compiled rules, None for none; its team's time
# zone, whose midnight rotates the visitor key: unique visitors are counted per day of that zone; its team's id,
# which the visitor key hashes so that one person's keys differ from team to team)
Link = tuple[int | None, str, LinkRules | None, tzinfo, int]
NO_LINK: Link = (None, "", None, UTC, 0)


class LinkUnavailable(Exception):
    """The database is away and no copy knows the slug."""


class LinkCopy:
    """This process's copy of the links: slug -> (expires at, generation, *the `Link`).

    Entries younger than LINK_TTL answer at once. Saving a campaign or placement (here) starts a new generation,
    which makes every entry stale; other processes see a change within LINK_TTL. Stale entries of known links are
    kept: they answer while the database is away.
    """

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, int, int | None, str, LinkRules | None, tzinfo, int]] = {}
        self.generation = 0

    def fresh(self, slug: str) -> Link | None:
        entry = self.entries.get(slug)
        if entry is not None and entry[1] == self.generation and entry[0] > monotonic():
            return entry[2:]
        return None

    def stale(self, slug: str) -> Link | None:
        """The last known link for `slug`, however old."""
        entry = self.entries.get(slug)
        return entry[2:] if entry is not None and entry[2] is not None else None

    def put(self, slug: str, link: Link) -> None:
        if len(self.entries) >= MAX_LINKS:
            self.entries = {s: e for s, e in self.entries.items() if e[2] is not None}  # unknown slugs go first
            if len(self.entries) >= MAX_LINKS:
                self.entries.clear()
        self.entries[slug] = (monotonic() + LINK_TTL, self.generation, *link)

    def expire(self) -> None:
        self.generation += 1

    def clear(self) -> None:
        self.entries.clear()


_links = LinkCopy()
database_outage = scan_buffer.Outage(DATABASE_RETRY_AFTER)


def forget_links(**_kwargs) -> None:
    """Signal receiver: a campaign or placement changed, so look every link up again."""
    _links.expire()


def find_link(slug: str) -> Link:
    """The link of `slug` from the database, each statement limited to STATEMENT_TIMEOUT_MS on PostgreSQL.

    Archived campaigns' and inactive placements' slugs are found too: printed codes must keep working, and
    `Placement.redirect_url` sends them to the campaign's fallback. A new slug typed in lower case ("/r/abcdefgh23")
    is found in capitals when no slug is stored as typed (`links.capitalised_slug`; in the same query).
    """
    # SET LOCAL lasts until the transaction ends: the redirect's queries only. SQLite has no such setting, and its
    # transactions begin IMMEDIATE (qartsite's settings): one there asked for the write lock, so any writer made every
    # lookup wait out the 1.5 s bound (a fault drill), where a plain read in WAL mode does not wait.
    postgresql = connection.vendor == "postgresql"
    with transaction.atomic() if postgresql else nullcontext():
        if postgresql:
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS:d}")
        capitals = links.capitalised_slug(slug)
        found = {placement.slug: placement for placement in Placement.objects.select_related("campaign__team")
                 .filter(slug__in=[slug, capitals] if capitals else [slug])}
    placement = found.get(slug) or found.get(capitals)  # as typed first: never one old slug for another
    if placement is None:
        return NO_LINK
    team = placement.campaign.team  # selected with the placement: no query more per lookup
    return placement.pk, placement.redirect_url(), placement.link_rules(), team.zone, team.pk


# Lookups bounded in time run here (qartsite.db_threads): a scan is answered from the copies once its time is up.
lookup_threads = DatabaseThreads(count=4, name="link-lookup")
# Scans neither buffer took are stored here (store_unbuffered), never in the lookup threads.
store_threads = DatabaseThreads(count=1, name="scan-store")
STORE_BACKLOG = 10_000


def looked_up(slug: str) -> Link:
    """`find_link`, waited for at most QART["LINK_LOOKUP_SECONDS"].

    The connect and statement timeouts bound a database that is away or slow, not one that stops answering on a
    connection already open (a stalled server, a lost network): a scan waited as long as the stall, 18 s in a
    drill. Here the lookup runs in another thread, and the scan is answered from the copies once the time is up.

    Raises:
        qartsite.db_threads.TimedOut: no answer in time (a DatabaseError).
    """
    seconds = settings.QART["LINK_LOOKUP_SECONDS"]
    if not seconds:
        return find_link(slug)
    return lookup_threads.call(find_link, slug, timeout=seconds)


def share_link(slug: str, link: Link) -> None:
    """Keep the copy in Redis in step with what the database said, for processes that start during an outage:
    [placement id, URL, the rules' JSON (`LinkRules.to_json`) or null, the team's time zone name, the team's id]."""
    if scan_buffer.redis_outage.known():
        return
    placement_id, url, rules, zone, team_id = link
    try:
        if placement_id is None:
            scan_buffer.redis_client().hdel(scan_buffer.links_key(), slug)
        else:
            shared = [placement_id, url, None if rules is None else rules.to_json(), str(zone), team_id]
            scan_buffer.redis_client().hset(scan_buffer.links_key(), slug, json.dumps(shared))
    except RedisError as exc:
        scan_buffer.redis_outage.begin(exc)


def shared_link(slug: str) -> Link | None:
    """The link of `slug` in the copy shared in Redis, or None. A copy written before it carried the team reads as
    team 0: during an outage its scans' visitor keys are those of no team, until a lookup writes the copy again."""
    if scan_buffer.redis_outage.known():
        return None
    try:
        raw = scan_buffer.redis_client().hget(scan_buffer.links_key(), slug)
    except RedisError as exc:
        scan_buffer.redis_outage.begin(exc)
        return None
    if not raw:
        return None
    try:
        placement_id, url, *rest = json.loads(raw)  # rest: rules, zone, team (any of them missing in older copies)
        rules = LinkRules.from_json(rest[0]) if rest and rest[0] is not None else None
        zone = zone_named(str(rest[1])) if len(rest) > 1 else UTC
        return int(placement_id), str(url), rules, zone, int(rest[2]) if len(rest) > 2 else 0
    except (ValueError, TypeError):  # not a link this code wrote
        return None


def resolve(slug: str) -> Link:
    """The `Link` of a placement's short link, or NO_LINK when no placement has the slug.

    Raises:
        LinkUnavailable: the database is away and neither copy knows the slug.
    """
    link = _links.fresh(slug)
    if link is not None:
        return link
    if not database_outage.known():
        try:
            link = looked_up(slug)
        except drainer.DATABASE_ERRORS as exc:
            database_outage.begin()
            log.warning("The database is away (%s): short links answer from their copies", exc)
        else:
            database_outage.end()
            _links.put(slug, link)
            share_link(slug, link)
            return link
    link = _links.stale(slug) or shared_link(slug)
    if link is None:
        raise LinkUnavailable(slug)
    return link


class Visit(NamedTuple):
    """What one request says about who scanned, worked out once: for the rules and for the scan event."""

    now: datetime
    agent: str
    address: str
    described: tuple[str, str, str, bool]  # links.describe_agent: browser, OS, device class, is_bot
    visitor_key: str


def visit_of(request: HttpRequest, zone: tzinfo, team_id: int) -> Visit:
    """The visit, its visitor key for the day in `zone` in team `team_id` (the link's team): a visitor's scans on one
    day of the team's count as one unique visitor, and an A/B split keeps them on one variant that day. A browser's
    speculative load (`links.is_speculative`) and a page that embeds the link (`links.is_embedded`) are flagged as
    bots, as link previews are: not a person who scanned."""
    # request.META, not request.headers: building the headers mapping costs more than the rest of the request's
    # work, and this is the busiest view (see bench/RESULTS.md).
    now = timezone.now()
    agent = request.META.get("HTTP_USER_AGENT", "")[:1000]
    address = client_address(request)
    described = links.describe_agent(agent)
    if links.is_speculative(request.META) or links.is_embedded(request.META):
        described = (described[0], described[1], "bot", True)
    return Visit(now, agent, address, described,
                 links.visitor_key(address, agent, settings.SECRET_KEY, now.astimezone(zone).date(), team_id))


def record_scan(request: HttpRequest, placement_id: int, visit: Visit, rule: str = "") -> None:
    """Hand one scan to the buffer, with the rule that chose its destination (`campaigns.rules`); what needs the
    address (country, visitor key) was worked out in `visit_of`, the country is looked up here."""
    meta = request.META
    browser, os_family, device_class, is_bot = visit.described
    country_header = settings.QART["COUNTRY_HEADER"]
    country = meta.get(f"HTTP_{country_header.upper().replace('-', '_')}", "").strip() if country_header else ""
    # A trusted proxy's country header wins; else the offline database (`campaigns.geo`) looks the address up here, so
    # only the country reaches the buffer, never the address. Two ASCII letters only: not Cloudflare's "XX" (no
    # country known) nor "T1" (Tor), nor Latin-1 bytes ("éè" was stored, as "ÉÈ").
    country = (country.upper() if PROXY_COUNTRY.fullmatch(country) and country.upper() != "XX"
               else geo.country_of(visit.address))
    event = scan_buffer.scan_event(
        placement_id, visit.now, browser=browser[:60], os=os_family[:60], device_class=device_class,
        referer=meta.get("HTTP_REFERER", "")[:500],
        accept_language=meta.get("HTTP_ACCEPT_LANGUAGE", "")[:100],
        country=country, is_bot=is_bot, visitor_key=visit.visitor_key, rule=rule,
    )
    try:
        scan_buffer.push(event)
    except OSError as exc:
        store_unbuffered(event, exc)


def store_unbuffered(event: dict, buffered: OSError) -> None:
    """Both buffers failed (a spool that cannot be written while Redis is away): the scan is stored in the database
    itself by a store thread of its own, which the redirect does not wait for (nor do the lookups, which have their
    own threads); at most STORE_BACKLOG scans wait for it. Only a scan the database refuses too, or one past the
    backlog, is lost: logged with the event, since losing one count is better than stranding the person who scanned.
    With QART["LINK_LOOKUP_SECONDS"] 0 (tests: their database is their thread's) it is stored in the request."""
    if not settings.QART["LINK_LOOKUP_SECONDS"]:
        store_event(event, buffered)
    elif store_threads.waiting() >= STORE_BACKLOG:
        log.error("Could not buffer a scan of placement %s (%s), and %d scans already wait for the database: %s",
                  event["placement"], buffered, STORE_BACKLOG, event)
    else:
        store_threads.submit(store_event, event, buffered)


class StoredUnbuffered:
    """The log line of scans stored without a buffer: one every SAY_EVERY seconds, with how many since the last. It was
    one a scan, 274 in 2 s of a fault drill (a read-only spool while Redis was away), burying everything else; a scan
    lost is still logged one by one, with its event, so it can be stored by hand."""

    SAY_EVERY = 10.0

    def __init__(self) -> None:
        self.count = 0
        self.said_at: float | None = None
        self.lock = threading.Lock()  # the store threads, and requests when LINK_LOOKUP_SECONDS is 0

    def add(self, event: dict, buffered: OSError) -> None:
        with self.lock:
            self.count += 1
            if self.said_at is not None and monotonic() - self.said_at < self.SAY_EVERY:
                return
            count, self.count, self.said_at = self.count, 0, monotonic()
        others = f" (and {count - 1} more since the last such line)" if count > 1 else ""
        log.warning("Could not buffer a scan of placement %s (%s): stored it in the database%s", event["placement"],
                    buffered, others)


stored_unbuffered = StoredUnbuffered()


def store_event(event: dict, buffered: OSError) -> None:
    try:
        drainer.store_events([event])
    except drainer.DATABASE_ERRORS as exc:
        log.error("Could not buffer a scan of placement %s (%s) nor store it (%s): %s", event["placement"], buffered,
                  exc, event)
    else:
        stored_unbuffered.add(event, buffered)


def could_be_slug(slug: str) -> bool:
    """Whether `slug` could be a stored one: not empty, no slash or white space (`links.new_slug` draws letters and
    digits), no longer than the column. Any other is no link, said without asking the database ("/r/AbC12345/x" or
    "/r/AbC12345%0Ax": which of two slugs was meant is anyone's guess). (A NUL never gets here: `qartsite.paths`
    answers 404 first. PostgreSQL refuses one in a text parameter, a DataError that `resolve` took for a database
    that is away.)"""
    return 0 < len(slug) <= SLUG_MAX_LENGTH and "/" not in slug and not any(char.isspace() for char in slug)


SLUG_MAX_LENGTH = Placement._meta.get_field("slug").max_length


def scanner_query(request: HttpRequest) -> str:
    """The request's query string as text, read as Django reads request.GET: under WSGI the server's bytes arrive
    as Latin-1 and are UTF-8 (undecodable bytes replaced); under ASGI Django has decoded them already."""
    raw = request.META.get("QUERY_STRING", "")
    if isinstance(request, ASGIRequest):
        return raw
    return raw.encode("iso-8859-1", errors="replace").decode(errors="replace")


# No CSRF check: no session is read or written here, and every method but GET and HEAD is a 405 (require_safe);
# the check answered POST, PUT and DELETE with Django's CSRF failure page (403) first.
@csrf_exempt
@require_safe
def short_link(request: HttpRequest, slug: str = "") -> HttpResponse:
    slug = links.slug_in(slug)  # a link copied with the full stop of the sentence it ended, or a stray slash
    if not could_be_slug(slug):
        return render(request, "campaigns/unknown_link.html", status=404)
    try:
        placement_id, url, rules, zone, team_id = resolve(slug)
    except LinkUnavailable:
        response = render(request, "campaigns/link_unavailable.html", status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
    if placement_id is None:
        return render(request, "campaigns/unknown_link.html", status=404)
    counted = request.method == "GET"  # HEAD requests are link checkers, not people
    if counted or rules is not None:
        visit = visit_of(request, zone, team_id)
        rule = ""
        if rules is not None:
            url, rule = rules.choose(url, visit.described[1], visit.visitor_key, visit.now.timestamp())
        if counted:
            record_scan(request, placement_id, visit, rule)
    if counted and links.is_speculative(request.META):
        # Declined (recorded above as a bot): a browser that loaded the link ahead would show its copy when the
        # person opens it, and that visit would never reach us. A non-2xx answer makes it fetch again then.
        response = HttpResponse(status=503)
    else:
        # The scanner's query goes on to whichever destination was chosen, added per request: the copies of the
        # link keep the destination without it. A 302, never a 301 or 308: browsers keep a permanent redirect and
        # follow it from their copy, uncounted and blind to a changed destination.
        response = HttpResponseRedirect(links.with_scanner_query(url, scanner_query(request)))
    response["Cache-Control"] = "no-store"  # every scan must reach us to be counted
    return response
