"""Print files and preflight for placements: the Django side of `generator.core.codes.printing` and `preflight`.

Pages, the API and `qart_print` share this: which art a placement prints (its artwork, else its plain code), how
the art is brought to print size (the halftone engine draws again; diffusion art is resampled), the print options
as typed (`spec_from`), and the preflight report, cached per art, size and distance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import django_rq
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from redis.exceptions import RedisError
from rq import Worker

from campaigns import artwork as artwork_rules
from generator.core.codes import images, logos, preflight, printing, qr, repair, restamp, scan
from generator.core.engines import halftone
from generator.models import Candidate, GenerationJob
from qartsite.numbers import whole
from qartsite.storage import MediaUnavailable

# Ghostscript's CMYK profile (Artifex CMYK SWOP), from Debian's libgs-common: named in every CMYK file's report.
CMYK_PROFILE = "/usr/share/color/icc/ghostscript/default_cmyk.icc"
ART_BORDER = restamp.DEFAULT_BORDER  # the quiet zone generated art has, in modules (its control image's)
# The halftone engine draws every pixel as float arrays; past this side a redraw takes over 2 GB, so larger prints
# are drawn at this side and resampled (the report says so).
MAX_REDRAW_SIDE = 4096
PREFLIGHT_SECONDS = 7 * 24 * 3600  # a preflight depends only on the art, size, distance and verifier model
TRUE_VALUES = ("1", "true", "on", "yes")
log = logging.getLogger(__name__)
FALSE_VALUES = ("", "0", "false", "off", "no")


def flag(options: Mapping[str, str], name: str) -> bool:
    """A yes/no print option (a form's checkbox sends "on"; a query string true or false).

    Raises:
        printing.PrintError: a value that is neither: `cmyk=maybe` printed RGB without a word.
    """
    value = str(options.get(name, "")).lower()
    if value not in TRUE_VALUES + FALSE_VALUES:
        raise printing.PrintError(f"{name} must be true or false, got {value[:20]!r}.")
    return value in TRUE_VALUES


def plain_code(content: str) -> qr.QRCode:
    """A placement's plain code: any version (a plain code has no art to make room for)."""
    return qr.encode(content, ecc=settings.QART["DEFAULT_ECC"], max_version=40)


def spec_from(options: Mapping[str, str], default_width_cm: float | None = None) -> printing.PrintSpec:
    """The print options as a query string or form gives them: width=20cm, dpi, bleed=3mm, crop_marks, format,
    cmyk.

    Raises:
        printing.PrintError: an option that cannot be met (one message).
    """
    width = options.get("width") or (f"{default_width_cm:g}cm" if default_width_cm else "")
    if not width:
        raise printing.PrintError("Say how wide to print it, e.g. width=20cm (quiet zone included).")
    typed_dpi = str(options.get("dpi") or 300)
    dpi = whole(typed_dpi)
    if dpi is None:
        raise printing.PrintError(f"The resolution must be a whole number of dots per inch, got {typed_dpi[:20]!r}.")
    bleed = options.get("bleed") or "0mm"
    return printing.PrintSpec(
        width_mm=printing.parse_length(width), dpi=dpi, bleed_mm=printing.parse_length(bleed, "bleed"),
        crop_marks=flag(options, "crop_marks"), format=str(options.get("format") or "pdf").lower(),
        cmyk=flag(options, "cmyk"),
    )


def open_art(candidate: Candidate):
    """The candidate's stored image (RGB)."""
    with candidate.image.open("rb") as stored:
        return images.open_image(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])


def halftone_variant(candidate: Candidate) -> halftone.Variant | None:
    """The variant that drew a halftone candidate: its seed names the first, strengthening climbs from there."""
    variant: halftone.Variant | None = halftone.variant_for_seed(candidate.seed)
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
    code = qr.encode(job.content, ecc=job.ecc, max_version=40)
    logo = _job_logo(job, code)

    def render(side: int):
        drawn = min(side, MAX_REDRAW_SIDE)
        grid = repair.grid_from_code(code, drawn, ART_BORDER)
        image, _ = halftone.render(halftone.fit_picture(picture, drawn), halftone.layout(grid), variant, logo)
        return image

    method = f"re-rendered by the halftone engine ({variant.describe()}, at most {MAX_REDRAW_SIDE} px, then Lanczos)"
    return printing.PrintSource.procedural(art, job.content, render, method)


def _job_logo(job: GenerationJob, code: qr.QRCode) -> halftone.Logo | None:
    """The job's logo where the engine put it (the default share: jobs do not choose another)."""
    if not job.logo:
        return None
    with job.logo.open("rb") as stored:
        # checked at upload; a wordmark stored 512 px long may be thinner than a picture's minimum (jobs.py too)
        mark = images.open_picture(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"], min_side=1)
    return halftone.Logo(mark, logos.plate_for(code, halftone.HalftoneConfig.logo_share))


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
        code = qr.encode(candidate.job.content, ecc=candidate.job.ecc, max_version=40)
        return PrintSubject(source, code, source.image, False)
    return subject_for_code(plain_code(short_url))


def subject_for_code(code: qr.QRCode) -> PrintSubject:
    """A plain code to print; the preflight judges it drawn at 768 px."""
    return PrintSubject(printing.PrintSource.plain(code), code,
                        qr.render_control_image(code, size=768, border=printing.QUIET_ZONE), True)


class NotPrintable(Exception):
    """The placement's artwork must not be printed (it fails the scan check); the message says why."""


def make_file(placement, short_url: str, spec: printing.PrintSpec) -> printing.PrintFile:
    """A print file of the placement, read back and verified, with the preflight at its width in the report.

    Raises:
        NotPrintable: the artwork fails the scan check (printed anyway, its downloads stay off).
        printing.PrintError: the options cannot be met.
    """
    refused = artwork_rules.will_not_scan(placement)
    if refused:
        raise NotPrintable(f"Will not scan — do not print. {refused}")
    subject = subject_for(placement, short_url)
    made = printing.make_print_file(subject.source, spec, cmyk_profile=CMYK_PROFILE,
                                    threshold=settings.QART["SCAN_THRESHOLD"])
    report = preflight_for(subject, spec.width_mm / 1000, placement.scanning_distance)
    made.report["preflight"] = report
    return made


class Refused(Exception):
    """Why a print file is not offered, with the HTTP status that says it: 400 options that cannot be met, 409
    artwork that must not be printed (or whose image is missing), 422 a file whose read-back does not scan, 503 an
    image storage that cannot be reached."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


# A print file made in the request (small ones; large ones without a worker) takes seconds and hundreds of MB of
# the web process: one at a time for each person, so one account or script cannot run a web host out of memory in
# parallel. The marks and a worker's answers live in the queue's Redis, which the web and the workers share.
BUILDING_SECONDS = 120  # the mark's lifetime, should a web process die while it builds
BUSY = "A print file you asked for is still being made; download this one when it is done."


def _redis():
    return django_rq.get_connection(QUEUE)


def _mark(person_id: int | None) -> str:
    return f"{settings.QART['REDIS_PREFIX']}print-building:{person_id}"


@contextmanager
def one_build_each(person_id: int | None) -> Iterator[None]:
    """While the block runs, `person_id` has a print file being built; a second at the same time is refused.

    Raises:
        Refused: 429, that person already has one being built. Without Redis nothing is refused.
    """
    try:
        taken = person_id is None or _redis().set(_mark(person_id), "made here", nx=True, ex=BUILDING_SECONDS)
    except (RedisError, OSError):
        taken, person_id = True, None
    if not taken:
        raise Refused(BUSY, 429)
    try:
        yield
    finally:
        if person_id is not None:
            try:
                _redis().delete(_mark(person_id))
            except (RedisError, OSError):
                pass  # the mark expires by itself


def checked_file(placement, short_url: str, options: Mapping[str, str], person_id: int | None = None
                 ) -> printing.PrintFile:
    """The placement's print file for the typed `options`, made here, only when it scans as written; made for one
    person (`person_id`) at a time (`one_build_each`).

    Raises:
        Refused: why not, with its status.
    """
    spec = typed_spec(placement, options)
    with one_build_each(person_id):
        return made_and_checked(placement, short_url, spec)


def typed_spec(placement, options: Mapping[str, str]) -> printing.PrintSpec:
    """`spec_from` the typed options, the placement's printed width by default.

    Raises:
        Refused: 400, options that cannot be read.
    """
    try:
        return spec_from(options, placement.printed_width_cm)
    except printing.PrintError as exc:
        raise Refused(str(exc), 400) from None


def made_and_checked(placement, short_url: str, spec: printing.PrintSpec) -> printing.PrintFile:
    """`make_file`, with every reason not to offer the file as a `Refused`."""
    try:
        made = make_file(placement, short_url, spec)
    except NotPrintable as exc:
        raise Refused(str(exc), 409) from None
    except (printing.PrintError, qr.ContentError) as exc:
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


# Large print files are made by a worker, not in the request: an 82 cm poster of art at 300 dpi takes ~30 s and
# 1.3-1.9 GB (past a web server's timeout, and a web host's memory). Made once, a file is kept for a day, so its
# next download (or a HEAD) is read from the media storage. Without a worker on the queue, or without Redis, they
# are made in the request as before.
INLINE_PIXELS = 25_000_000  # a raster up to 5,000 px square (42 cm at 300 dpi): a few seconds, made in the request
QUEUE = "default"
BUILD_SECONDS = 600  # a worker's limit for one file; a build not heard from by then is started again
KEEP_SECONDS = 24 * 3600  # a made file, and its answer in Redis
REFUSAL_SECONDS = 600  # a build's refusal (the file does not scan as written, say) is the answer this long
FOLDER = "print-files"
RETRY_SECONDS = 5
MAKING = "Your print file is large, so it is being made in the background (up to a minute or two)."


@dataclass
class Stored:
    """A print file a worker made, in the media storage."""

    name: str
    format: str
    media_type: str
    report: dict

    def open(self):
        return default_storage.open(self.name, "rb")


class Making(Exception):
    """The print file is being made by a worker; ask again in `RETRY_SECONDS`."""

    message = MAKING


def raster_pixels(placement, spec: printing.PrintSpec) -> int:
    """How many pixels the file's page has; 0 for vectors (a plain code in PDF or SVG)."""
    if placement.artwork is None and spec.format in ("pdf", "svg"):
        return 0
    return printing.pixels(printing.geometry(spec).media_mm, spec.dpi) ** 2


def requested_file(placement, short_url: str, options: Mapping[str, str], person_id: int | None = None
                   ) -> printing.PrintFile | Stored:
    """The print file for the typed `options` (pages and API): made here when small, else a worker's (`Stored`
    once made).

    Raises:
        Making: a worker is making it (the request that starts it raises this too).
        Refused: why not, with its status (429: another of this person's files is being made).
    """
    spec = typed_spec(placement, options)
    if raster_pixels(placement, spec) <= INLINE_PIXELS:
        return checked_file(placement, short_url, options, person_id)
    key = build_key(placement, short_url, spec)
    try:
        answer = _answer(key)
        if answer is None and not _start(key, placement, short_url, spec, person_id):
            return checked_file(placement, short_url, options, person_id)  # no worker takes print files
    except (RedisError, OSError):
        return checked_file(placement, short_url, options, person_id)
    if answer is None or answer["state"] == "making":
        raise Making()
    if answer["state"] == "refused":
        raise Refused(answer["message"], answer["status"])
    stored = Stored(answer["name"], answer["format"], answer["media_type"], answer["report"])
    if not default_storage.exists(stored.name):  # deleted since: made again
        _redis().delete(_answer_key(key))
        return requested_file(placement, short_url, options, person_id)
    return stored


def build_key(placement, short_url: str, spec: printing.PrintSpec) -> str:
    """What a made file depends on: the placement's art (or its link), the options and the verifier."""
    art = f"artwork {placement.artwork.pk} {placement.artwork.image.name}" if placement.artwork else "plain"
    text = (f"{placement.pk}|{art}|{short_url}|{sorted(dataclasses.asdict(spec).items())}|{scan.MODEL}|"
            f"{settings.QART['SCAN_THRESHOLD']}")
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _answer_key(key: str) -> str:
    return f"{settings.QART['REDIS_PREFIX']}print-file:{key}"


def _answer(key: str) -> dict | None:
    """What is known of the file `key`: {"state": "making"}, "ready" (where it is) or "refused" (why)."""
    raw = _redis().get(_answer_key(key))
    return json.loads(raw) if raw else None


def _start(key: str, placement, short_url: str, spec: printing.PrintSpec, person_id: int | None) -> bool:
    """Queue the build of `key` unless it is queued already; False when no worker takes the queue.

    Raises:
        Refused: 429, another of this person's files is being made.
    """
    queue = django_rq.get_queue(QUEUE)
    if not Worker.count(queue=queue):
        return False
    redis = queue.connection
    building = redis.get(_mark(person_id)) if person_id is not None else None
    if building is not None and building.decode() != key:
        raise Refused(BUSY, 429)
    if redis.set(_answer_key(key), json.dumps({"state": "making"}), nx=True, ex=BUILD_SECONDS):  # queued once
        if person_id is not None:
            redis.set(_mark(person_id), key, ex=BUILD_SECONDS)
        queue.enqueue(build, key, placement.pk, short_url, dataclasses.asdict(spec), person_id,
                      job_timeout=BUILD_SECONDS, result_ttl=0, failure_ttl=KEEP_SECONDS)
    return True


def build(key: str, placement_pk: int, short_url: str, spec_fields: dict, person_id: int | None) -> str:
    """RQ job: make the print file `key`, keep it in the media storage, and leave the answer in Redis."""
    from campaigns.models import Placement

    started = time.monotonic()
    redis = _redis()

    def answer(seconds: int, **fields) -> None:
        redis.set(_answer_key(key), json.dumps(fields), ex=seconds)

    try:
        placement = Placement.objects.select_related("artwork__job").get(pk=placement_pk)
        made = made_and_checked(placement, short_url, printing.PrintSpec(**spec_fields))
        name = default_storage.save(f"{FOLDER}/{key}.{made.format}", ContentFile(made.data))
        answer(KEEP_SECONDS, state="ready", name=name, format=made.format, media_type=made.media_type,
               report=made.report)
        return f"made {name} in {time.monotonic() - started:.1f} s"
    except Placement.DoesNotExist:
        redis.delete(_answer_key(key))
        return "the placement is gone"
    except Refused as exc:
        answer(REFUSAL_SECONDS, state="refused", message=exc.message, status=exc.status)
        return f"refused: {exc.message}"
    except Exception:
        answer(REFUSAL_SECONDS, state="refused", status=500,
               message="The print file could not be made; try again, or choose a smaller size.")
        raise  # RQ keeps the traceback with the failed job
    finally:
        if person_id is not None and redis.get(_mark(person_id)) == key.encode():
            redis.delete(_mark(person_id))


def forget_old_files(now: float | None = None) -> int:
    """Delete made print files past their day (the maintenance's daily upkeep); returns how many."""
    now = time.time() if now is None else now
    try:
        _, names = default_storage.listdir(FOLDER)
    except FileNotFoundError:
        return 0
    deleted = 0
    for name in names:
        path = f"{FOLDER}/{name}"
        if now - default_storage.get_modified_time(path).timestamp() > KEEP_SECONDS + 3600:
            default_storage.delete(path)
            deleted += 1
    return deleted


def preflight_for(subject: PrintSubject, width_m: float, distance_m: float) -> dict:
    """The preflight report (`preflight.Preflight.to_dict`), cached per art, width, distance and verifier model."""
    art = subject.source.content + ("|plain" if subject.is_plain else "|" + _image_key(subject.image))
    key = "qart:preflight:" + hashlib.blake2b(
        f"{art}|{width_m:.5f}|{distance_m:.4f}|{scan.MODEL}".encode(), digest_size=12).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    border = printing.QUIET_ZONE if subject.is_plain else ART_BORDER
    report = preflight.preflight(subject.image, subject.source.content, code=subject.code, width_m=width_m,
                                 distance_m=distance_m, border=border,
                                 threshold=settings.QART["SCAN_THRESHOLD"]).to_dict()
    cache.set(key, report, PREFLIGHT_SECONDS)
    return report


def placement_preflight(placement, short_url: str, width_cm: float | None = None) -> dict | None:
    """The placement's preflight at `width_cm` (else its printed width); None when it has no width yet."""
    width_cm = width_cm or placement.printed_width_cm
    if not width_cm:
        return None
    return preflight_for(subject_for(placement, short_url), width_cm / 100, placement.scanning_distance)


def _image_key(image) -> str:
    return hashlib.blake2b(image.tobytes(), digest_size=8).hexdigest()
