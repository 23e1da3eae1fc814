"""Print files and preflight for placements: the Django side of `generator.core.codes.printing` and `preflight`.

Pages, the API and `qart_print` share this: which art a placement prints (its artwork, else its plain code), how
the art is brought to print size (the halftone engine draws again; diffusion art is resampled), the print options
as typed (`spec_from`), and the preflight report, cached per art, size and distance.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import django_rq
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from campaigns import artwork as artwork_rules
from generator.core.codes import decision, grids, images, logos, preflight, print_specs, printing, qr, restamp
from generator.core.codes.echoes import echo
from generator.core.engines import halftone, halftone_drawing
from generator.models import Candidate, GenerationJob
from qartsite.numbers import whole
from qartsite.queues import breaker
from qartsite.storage import MediaUnavailable

# Ghostscript's CMYK profile (Artifex CMYK SWOP), from Debian's libgs-common: named in every CMYK file's report.
CMYK_PROFILE = "/usr/share/color/icc/ghostscript/default_cmyk.icc"
ART_BORDER = restamp.DEFAULT_BORDER  # the quiet zone generated art has, in modules (its control image's)
# The halftone engine draws every pixel as float arrays; past this side a redraw takes over 2 GB, so larger prints
# are drawn at this side and resampled (the report says so).
MAX_REDRAW_SIDE = 4096
PREFLIGHT_SECONDS = 7 * 24 * 3600  # a preflight depends only on the art, size, distance and verifier model
# In the cache key with them: raised when the report's words change, so a page does not show last week's cached
# wording for up to PREFLIGHT_SECONDS (2: the warnings say squares and the white border, not modules and quiet zone).
PREFLIGHT_WORDING = 2
# This process's latest reports, answered while the cache cannot be (`preflight_for`): while the cache's Redis hung,
# each view of a placement page measured its preflight again (a second or three of a core after the cache's wait, a
# fault drill); reports are small, and a process shows few placements at a time.
PREFLIGHTS_KEPT = 256
TRUE_VALUES = ("1", "true", "on", "yes")
FALSE_VALUES = ("", "0", "false", "off", "no")


def flag(options: Mapping[str, str], name: str) -> bool:
    """A yes/no print option (a form's checkbox sends "on"; a query string true or false).

    Raises:
        print_specs.PrintError: a value that is neither: `cmyk=maybe` printed RGB without a word.
    """
    sent = str(options.get(name, ""))
    value = sent.lower()
    if value not in TRUE_VALUES + FALSE_VALUES:
        raise print_specs.PrintError(f"{name} must be true or false, got “{echo(sent)}”.", name)
    return value in TRUE_VALUES


def plain_code(content: str) -> qr.QRCode:
    """A placement's plain code: any version (a plain code has no art to make room for)."""
    return qr.encode(content, ecc=settings.QART["DEFAULT_ECC"], max_version=40)


def spec_from(options: Mapping[str, str], default_width_cm: float | None = None) -> print_specs.PrintSpec:
    """The print options as a query string or form gives them: width=20cm, dpi, bleed=3mm, crop_marks, format,
    cmyk.

    Raises:
        print_specs.PrintError: an option that cannot be met (one message).
    """
    width = options.get("width") or (f"{default_width_cm:g}cm" if default_width_cm else "")
    if not width:
        raise print_specs.PrintError("Say how wide to print it, e.g. width=20cm (the white border around the code "
                                     "included).", "width")
    typed_dpi = str(options.get("dpi") or 300)
    dpi = whole(typed_dpi)
    if dpi is None:
        raise print_specs.PrintError(f"The resolution must be a whole number of dots per inch, got "
                                     f"“{echo(typed_dpi)}”.", "dpi")
    bleed = options.get("bleed") or "0mm"
    return print_specs.PrintSpec(
        width_mm=print_specs.parse_length(width), dpi=dpi, bleed_mm=print_specs.parse_length(bleed, "bleed"),
        crop_marks=flag(options, "crop_marks"), format=str(options.get("format") or "pdf").lower(),
        cmyk=flag(options, "cmyk"),
    )


def open_art(candidate: Candidate):
    """The candidate's stored image (RGB)."""
    with candidate.image.open("rb") as stored:
        return images.open_image(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])


def halftone_variant(candidate: Candidate) -> halftone_drawing.Variant | None:
    """The variant that drew a halftone candidate: its seed names the first, strengthening climbs from there."""
    variant: halftone_drawing.Variant | None = halftone_drawing.variant_for_seed(candidate.seed)
    while variant is not None:
        if variant.describe() == candidate.variant:
            return variant
        variant = variant.stronger()
    return None


def candidate_source(candidate: Candidate) -> printing.PrintSource:
    """How a candidate prints: drawn again by the halftone engine at print size when it can be, else resampled."""
    job = candidate.job
    art = open_art(candidate)
    variant = halftone_variant(candidate) if job.engine == GenerationJob.Engine.HALFTONE else None
    if variant is None or not job.init_image:
        return printing.PrintSource.raster(art, job.content)
    with job.init_image.open("rb") as stored:
        picture = images.open_picture(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    code = candidate.art_code()  # drawn again as the art carries it
    logo = _job_logo(job, code)

    def render(side: int):
        drawn = min(side, MAX_REDRAW_SIDE)
        grid = grids.grid_from_code(code, drawn, ART_BORDER)
        fitted = halftone_drawing.fit_picture(picture, drawn)
        image, _ = halftone_drawing.render(fitted, halftone_drawing.layout(grid), variant, logo)
        return image

    method = f"re-rendered by the halftone engine ({variant.describe()}, at most {MAX_REDRAW_SIDE} px, then Lanczos)"
    return printing.PrintSource.procedural(art, job.content, render, method)


def _job_logo(job: GenerationJob, code: qr.QRCode) -> halftone_drawing.Logo | None:
    """The job's logo where the engine put it (the default share: jobs do not choose another)."""
    if not job.logo:
        return None
    with job.logo.open("rb") as stored:
        # checked at upload; a wordmark stored 512 px long may be thinner than a picture's minimum (jobs.py too)
        mark = images.open_picture(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"], min_side=1)
    return halftone_drawing.Logo(mark, logos.plate_for(code, halftone.HalftoneConfig.logo_share))


@dataclass
class PrintSubject:
    """What a placement prints: its source, the code it carries, and the art's image for the preflight."""

    source: printing.PrintSource
    code: qr.QRCode
    image: object
    is_plain: bool


def subject_for(placement, short_url: str) -> PrintSubject:
    """The placement's artwork when it has one, else its plain code for `short_url`."""
    if placement.artwork is not None:
        candidate = placement.artwork
        source = candidate_source(candidate)
        code = candidate.art_code()  # a restamped copy's version and mask, not the smallest's
        return PrintSubject(source, code, source.image, False)
    return subject_for_code(plain_code(short_url))


def subject_for_code(code: qr.QRCode) -> PrintSubject:
    """A plain code to print; the preflight judges it drawn at 768 px."""
    return PrintSubject(printing.PrintSource.plain(code), code,
                        qr.render_control_image(code, size=768, border=printing.QUIET_ZONE), True)


class NotPrintable(Exception):
    """The placement's artwork must not be printed (it fails the scan check, or carries a link other than the
    placement's short link); the message says why."""


def refuse_unprintable(placement) -> None:
    """Raises `NotPrintable` when the placement's artwork fails the scan check (`artwork.will_not_scan`) or no longer
    carries the placement's short link on this site's host (SITE_ROOT set or changed since it was chosen): its
    file would read back fine and send every scan elsewhere."""
    art = placement.artwork
    if art is not None and not artwork_rules.carries_short_link(art.job.content, placement):
        raise NotPrintable(f"Do not print: this artwork carries {art.job.content}, not this placement's short link "
                           "on this site, so its scans would not count here. Restamp it for this placement from "
                           "the placement page (a copy carrying its link), or choose other artwork.")
    refused = artwork_rules.will_not_scan(placement)
    if refused:
        raise NotPrintable(f"Will not scan — do not print. {refused}")


def make_file(placement, short_url: str, spec: print_specs.PrintSpec) -> printing.PrintFile:
    """A print file of the placement, read back and verified, with the preflight at its width in the report.

    Raises:
        NotPrintable: the artwork fails the scan check (printed anyway, its downloads stay off).
        print_specs.PrintError: the options cannot be met.
    """
    refuse_unprintable(placement)
    subject = subject_for(placement, short_url)
    made = printing.make_print_file(subject.source, spec, cmyk_profile=CMYK_PROFILE,
                                    threshold=settings.QART["SCAN_THRESHOLD"])
    report = preflight_for(subject, spec.width_mm / 1000, placement.scanning_distance)
    made.report["preflight"] = report
    return made


def live_warning(placement) -> str:
    """A sentence when the placement's code no longer leads to the campaign's offer (its campaign archived or the
    placement switched off), else "". Asked at each request, never stored with a made file: a campaign archived or
    brought back after the file was made must be said as it is now."""
    if placement.is_live:
        return ""
    why = "its campaign is archived" if placement.campaign.archived else "the placement is switched off"
    if placement.campaign.fallback_url:
        return f"This code leads to the campaign's fallback address {placement.destination} now, because {why}."
    return (f"This code still leads to {placement.destination}, but {why}: check that what people find there "
            "still stands before printing it.")


def report_now(report: dict, placement) -> dict:
    """A made file's report with what is true of the placement now (`live_warning`) first among its warnings."""
    said = live_warning(placement)
    return {**report, "warnings": [said, *report.get("warnings", [])]} if said else report


def cautions(report: dict, placement) -> list[str]:
    """What a person should read before printing a file with this `report` (a made file's, as stored), most pressing
    first: where the placement's code leads now (`live_warning`), whether it scans from the placement's distance
    (the preflight's own advice, else its verdict), then the file's other warnings."""
    preflight = report.get("preflight") or {}
    leads = [said] if (said := live_warning(placement)) else []
    scanning = list(preflight.get("warnings", []))
    if not preflight.get("scans_at_distance", True):  # the verdict and the preflight's first advice, one point
        reach = preflight["summary"]  # "scans from 0.1 m to 0.85 m at 5 cm wide", "too small to scan at ..."
        reach = f"it only {reach}" if reach.startswith("scans ") else reach
        verdict = (f"At {preflight['distance_m']:g} m, the placement's scanning distance, this print does not scan: "
                   f"{reach}.")
        scanning = [" ".join([verdict, *scanning[:1]]), *scanning[1:]]
    return leads + scanning + list(report.get("warnings", []))


class Refused(Exception):
    """Why a print file is not offered, with the HTTP status that says it: 400 options that cannot be met, 409
    artwork that must not be printed (or whose image is missing), 422 a file whose read-back does not scan, 503 an
    image storage that cannot be reached."""

    def __init__(self, message: str, status: int, option: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.option = message, status, option


# A print file made in the request (small ones; large ones without a worker: `print_builds`) takes seconds and
# hundreds of MB of the web process: one at a time for each person, so one account or script cannot run a web host
# out of memory in parallel. A person's file queued for a worker holds the same mark (`print_builds`).
BUILDING_SECONDS = 120  # the mark's lifetime, should a web process die while it builds
SAME_FILE_WAIT = 20.0  # seconds a second request for the file being made waits for it (`one_build_each`)
BUSY = ("Another print file you asked for is still being made (one at a time for each person): ask for this one "
        "again when that one is done.")


def redis_connection():
    """The Redis the web and the workers share (RQ's): marks here are seen by every process."""
    return django_rq.get_connection("default")


def building_mark(person_id: int | None) -> str:
    return f"{settings.QART['REDIS_PREFIX']}print-building:{person_id}"


@contextmanager
def one_build_each(person_id: int | None, what: str) -> Iterator[None]:
    """While the block runs, `person_id` has a print file (`what`: which) being built; another file at the same time
    is refused. The same file asked for again (a double click on "Download": the second request's answer is the one
    the browser shows) waits for the first to be made, up to SAME_FILE_WAIT, then is made again.

    Raises:
        Refused: 429, that person already has another one being built. Without Redis nothing is refused.
    """
    try:
        # Through the breaker: a stalled Redis held each file its timeout again before it was made
        with breaker(redis_connection()):
            taken = person_id is None or _mark_taken(building_mark(person_id), what)
    except (RedisError, OSError):
        taken, person_id = True, None
    if not taken:
        raise Refused(BUSY, 429)
    try:
        yield
    finally:
        if person_id is not None:
            try:
                redis_connection().delete(building_mark(person_id))
            except (RedisError, OSError):
                pass  # the mark expires by itself


def _mark_taken(mark: str, what: str) -> bool:
    """Set `mark` to `what` unless it is set; while it holds `what` itself, wait for it to go (up to SAME_FILE_WAIT).

    Raises:
        redis.exceptions.RedisError: Redis cannot be reached.
    """
    redis, deadline = redis_connection(), time.monotonic() + SAME_FILE_WAIT
    while not redis.set(mark, what, nx=True, ex=BUILDING_SECONDS):
        holder = redis.get(mark)
        if holder is None:
            continue  # gone since the set: try again at once
        if holder != what.encode() or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def checked_file(placement, short_url: str, spec: print_specs.PrintSpec, person_id: int | None = None,
                 which: str = "made here") -> printing.PrintFile:
    """The placement's print file for `spec` (see `typed_spec`), made here, only when it scans as written; made for
    one person (`person_id`) at a time (`one_build_each`; `which`: the file's key, `print_builds.build_key`).

    Raises:
        Refused: why not, with its status.
    """
    with one_build_each(person_id, which):
        return made_and_checked(placement, short_url, spec)


def typed_spec(placement, options: Mapping[str, str]) -> print_specs.PrintSpec:
    """`spec_from` the typed options, the placement's printed width by default, checked against what can be
    printed (`PrintSpec.validate`): nothing is measured or made from options that cannot be met.

    Raises:
        Refused: 400, options that cannot be read or met.
    """
    try:
        spec = spec_from(options, placement.printed_width_cm)
        spec.validate(vector=placement.artwork is None)
    except print_specs.PrintError as exc:
        raise Refused(str(exc), 400, exc.option) from None
    return spec


def made_and_checked(placement, short_url: str, spec: print_specs.PrintSpec) -> printing.PrintFile:
    """`make_file`, with every reason not to offer the file as a `Refused`."""
    try:
        made = make_file(placement, short_url, spec)
    except NotPrintable as exc:
        raise Refused(str(exc), 409) from None
    except (print_specs.PrintError, qr.ContentError) as exc:
        raise Refused(str(exc), 400) from None
    except MediaUnavailable:
        raise Refused("The image storage is unavailable right now; try the print file again in a minute.",
                      503) from None
    except (OSError, images.ImageError):
        raise Refused("This placement's artwork image is missing or unreadable, so it cannot be printed.",
                      409) from None
    if not made.printable:
        why = "; ".join(r["text"] for r in made.verification.reasons) or "no reader found the code"
        raise Refused(f"The {made.format.upper()} as written does not scan when read back (scan probability "
                      f"{made.verification.scan_probability:.0%}: {why}). Try a larger width or a higher dpi.", 422)
    return made


def preflight_for(subject: PrintSubject, width_m: float, distance_m: float) -> dict:
    """The preflight report (`preflight.Preflight.to_dict`), cached per art, width, distance, verifier model and
    the report's wording (`PREFLIGHT_WORDING`)."""
    art = subject.source.content + ("|plain" if subject.is_plain else "|" + _image_key(subject.image))
    key = "qart:preflight:" + hashlib.blake2b(
        f"{art}|{width_m:.5f}|{distance_m:.4f}|{decision.MODEL}|{PREFLIGHT_WORDING}".encode(),
        digest_size=12).hexdigest()
    try:
        cached = cache.get(key)
    except RedisError:  # the cache (CACHE_URL) is away: this process's copy, else measure it again
        cached = kept_preflights.get(key)
    if cached is not None:
        kept_preflights.keep(key, cached)
        return cached
    border = printing.QUIET_ZONE if subject.is_plain else ART_BORDER
    report = preflight.preflight(subject.image, subject.source.content, code=subject.code, width_m=width_m,
                                 distance_m=distance_m, border=border,
                                 threshold=settings.QART["SCAN_THRESHOLD"]).to_dict()
    kept_preflights.keep(key, report)
    with contextlib.suppress(RedisError):
        cache.set(key, report, PREFLIGHT_SECONDS)
    return report


class KeptReports:
    """The last `size` reports this process read or measured, by cache key, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.reports: OrderedDict[str, dict] = OrderedDict()
        self.lock = threading.Lock()  # an ASGI or threaded server's requests share it

    def get(self, key: str) -> dict | None:
        with self.lock:
            return self.reports.get(key)

    def keep(self, key: str, report: dict) -> None:
        with self.lock:
            self.reports[key] = report
            self.reports.move_to_end(key)
            while len(self.reports) > self.size:
                self.reports.popitem(last=False)


kept_preflights = KeptReports(PREFLIGHTS_KEPT)


def placement_preflight(placement, short_url: str, width_cm: float | None = None) -> dict | None:
    """The placement's preflight at `width_cm` (else its printed width); None when it has no width yet."""
    width_cm = width_cm or placement.printed_width_cm
    if not width_cm:
        return None
    return preflight_for(subject_for(placement, short_url), width_cm / 100, placement.scanning_distance)


def _image_key(image) -> str:
    return hashlib.blake2b(image.tobytes(), digest_size=8).hexdigest()
