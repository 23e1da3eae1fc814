"""The picture a halftone job draws, on the Django side: uploaded or one of the team's earlier candidates.

Shared by the generation page (`generator.forms`) and the API (`generator.api`), so both refuse the same files
with the same messages and store the same thing: a picture is decoded, checked (`images.open_picture`),
scaled to at most `STORED_SIDE` and re-encoded as PNG; the uploaded file itself is never stored or served.
An earlier candidate is looked up among the job's team's candidates only: another team's id reads as missing.
A logo for the centre of a halftone code is checked the same way (`logo_for`), and refused when the code has no
room for it (`logos.plate_for`), before anything is stored.

A browser cannot fill a file input again, so when the page's form goes back with an error the checked picture and
logo are kept for that person's next try (`keep`, `kept`: in the cache for an hour, by an unguessable token).
"""

from __future__ import annotations

import io
import logging
import math
import re
import secrets
import unicodedata

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image
from redis.exceptions import RedisError

from campaigns import links
from generator.core.codes import decoders, images, logos, qr
from generator.core.codes.amounts import over_cap
from generator.core.engines import halftone
from generator.models import Candidate, GenerationJob, Prompt
from qartsite.storage import MediaUnavailable

STORED_SIDE = halftone.MAX_SIZE  # no job draws larger, so nothing larger is kept
MAX_ZOOM = 4.0  # the page's slider; more would keep a square of a few dozen pixels of most photos
NEEDS_PICTURE = "The halftone engine draws the code into a picture: upload one or pick an earlier candidate."
NEEDS_UPLOAD = "The halftone engine draws the code into a picture: upload one."  # where no earlier one is offered
LOGO_SIDE = 512  # a logo fills at most a fifth of the code's area: a quarter of its side at 2048 px
CODE_CHECK_SIDE = 1024  # a picture is searched for a QR code of its own at most this large (zxing: tens of ms)
KEEP_SECONDS = 3600  # how long a picture from a try the form sent back stays kept for the next one
KEPT_GONE = "The picture from your last try is no longer kept; choose it again."
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
log = logging.getLogger(__name__)
PICTURE_NEEDS_HALFTONE = ("A picture is what the halftone engine draws the code into; the diffusion engine draws "
                          "from the prompt alone: choose \"Your picture\", or remove the picture.")
LOGO_NEEDS_HALFTONE = ("A logo in the centre is drawn by the halftone engine: choose \"Your picture\", or remove "
                       "the logo.")
NOT_STORED = ("The picture could not be stored: the image storage is unavailable right now. Nothing was created; "
              "try again in a minute.")


def log_not_stored(exc: OSError) -> None:
    """Log why a generation's picture (`NOT_STORED`) could not be stored: one line when the storage is away, an
    outage rather than a bug (a fault drill's frozen bucket left some sixty lines of traceback per upload in the web
    log); the traceback for anything else (a full disk, a bug)."""
    if isinstance(exc, MediaUnavailable):
        log.warning("A generation's picture could not be stored: %s", exc)
    else:
        log.exception("A generation's picture could not be stored")


def shown_name(name: str | None) -> str:
    """An upload's file name as pages and messages show it: without control or formatting characters (a
    right-to-left override would turn "gpj.exe" around on screen), at most 200 characters; "the upload" when
    none is left."""
    name = "".join(c for c in (name or "") if unicodedata.category(c) not in ("Cc", "Cf"))
    return name.strip()[:200] or "the upload"


def from_upload(upload) -> Image.Image:
    """The picture in an uploaded file, checked.

    Raises:
        images.ImageError: too large, animated, too small, not an image... (the message says which).
    """
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if upload.size is not None and upload.size > cap:
        # Checked before reading: the file may be far larger than memory should hold.
        sent, accepted = over_cap(upload.size, cap)
        raise images.ImageError(
            f"{shown_name(upload.name)}: the file is {sent}; pictures up to {accepted} are accepted. Save it smaller "
            "first."
        )
    data = upload.read()
    try:
        return images.open_picture(data, max_bytes=cap, max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    except images.ImageError as exc:
        raise images.ImageError(str(exc).replace("the upload", shown_name(upload.name), 1)) from None


def from_candidate(team, pk) -> Image.Image:
    """The image of candidate `pk` of `team`'s jobs.

    Raises:
        images.ImageError: no such candidate in that team (whether it exists elsewhere is not said), or its
            file is gone.
    """
    candidate = Candidate.objects.filter(pk=pk, job__team=team).first() if team is not None else None
    if candidate is None:
        raise images.ImageError("Pick one of this team's earlier candidates.")
    try:
        with candidate.image.open("rb") as stored:
            return images.open_picture(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    except MediaUnavailable:
        raise images.ImageError("That candidate's image cannot be read right now: the image storage is unavailable. "
                                "Try again in a minute, or upload a picture.") from None
    except OSError:
        raise images.ImageError("That candidate's image is missing; pick another or upload a picture.") from None


def chosen(upload, team, candidate_pk) -> Image.Image:
    """A halftone job's picture, as the page's form and the API take it: the upload if any, else the team's earlier
    candidate `candidate_pk`.

    Raises:
        images.ImageError: neither was given, or the one given cannot be used; `picture_field(upload,
            candidate_pk)` names the input the message belongs to.
    """
    if upload:
        return from_upload(upload)
    if candidate_pk is not None:
        return from_candidate(team, candidate_pk)
    raise images.ImageError(NEEDS_PICTURE)


def logo_for(upload, engine: str, content: str, kept_logo: Image.Image | None = None) -> Image.Image | None:
    """A halftone job's logo, checked like a picture, and checked to fit the centre of `content`'s code; None when
    none was uploaded. `kept_logo`: one checked on an earlier try (`kept`), used when no file is uploaded.

    Raises:
        images.ImageError: the file cannot be used (the message says why), or the engine is not halftone.
        logos.LogoError: the code has no room for a logo in its centre (a long link's large version).
    """
    if not upload and kept_logo is None:
        return None
    if engine != GenerationJob.Engine.HALFTONE:
        raise images.ImageError(LOGO_NEEDS_HALFTONE)
    logo = from_upload(upload) if upload else kept_logo
    code = qr.encode(content, ecc=logos.LOGO_ECC, max_version=settings.QART["MAX_VERSION"])
    logos.plate_for(code)
    refuse_other_code(logo, None, shown_name(upload.name) if upload else "The logo")  # a mark, never a code
    return logo


def refuse_other_code(picture: Image.Image, content: str | None, name: str) -> None:
    """Refuse a picture (or logo) that already carries a QR code of another text than `content` (None: any code): the
    code drawn into it does not hide that one, so a phone could open the other link (an uploaded code, or an earlier
    candidate made for another placement, scored "excellent" and then misread in print-size captures). One carrying
    `content` itself (an earlier candidate of the same link, in any case: `links.same_link`) is fine.

    Raises:
        images.ImageError: it carries another code; the message names what that code opens.
    """
    texts = decoders.read_zxing(np.asarray(_scaled(picture, CODE_CHECK_SIDE).convert("L")))
    # The same link in other case is the same link: a team's codes made before and after it chose "HTTPS://".
    other = next((text for text in texts if content is None or not links.same_link(text, content)), None)
    if other is not None:
        shown = other if len(other) <= 80 else other[:79] + "…"
        raise images.ImageError(f"{name} already carries a QR code that opens “{shown}”: a phone could open that "
                                "instead of your link. Choose a picture without a code in it.")


def picture_field(upload, candidate_pk) -> str:
    """The input a `chosen` error belongs to: the earlier candidate when only that was given, else the upload."""
    return "earlier_candidate" if candidate_pk is not None and not upload else "picture"


def crop(picture: Image.Image, x: float | None, y: float | None, zoom: float | None) -> Image.Image:
    """The square of `picture` the page's crop tool chose, or `picture` unchanged when none was sent (the engine
    then centre-crops it, `halftone_drawing.fit_picture`).

    Args:
        picture: the checked picture.
        x, y: the square's centre as fractions (0-1) of the width and height; None: the centre.
        zoom: 1 keeps the largest square that fits, 2 one of half its side...; None: 1.

    Returns:
        The square, at the picture's own resolution (the engine resizes it). A centre too near an edge for the
        square is moved inwards: the square never leaves the picture.

    Raises:
        images.ImageError: a value outside those ranges (the form's fields check them first).
    """
    if x is None and y is None and zoom is None:
        return picture
    x, y, zoom = 0.5 if x is None else x, 0.5 if y is None else y, 1.0 if zoom is None else zoom
    if not (0 <= x <= 1 and 0 <= y <= 1 and 1 <= zoom <= MAX_ZOOM):
        raise images.ImageError("The crop was not understood; choose the picture again and crop it.")
    width, height = picture.size
    side = max(1, round(min(width, height) / zoom))
    left = min(max(0, round(x * width - side / 2)), width - side)
    top = min(max(0, round(y * height - side / 2)), height - side)
    return picture.crop((left, top, left + side, top + side))


def storable(picture: Image.Image, name: str) -> Image.Image:
    """`picture` when it keeps `images.MIN_PICTURE_SIDE` pixels on its short side once stored (`attach`: at most
    `STORED_SIDE` long); a banner's shape would reach the engine too thin to draw from, and the job would fail.

    Raises:
        images.ImageError: too long and narrow a shape (the message says what to do).
    """
    width, height = picture.size
    short = math.floor(min(width, height) * min(1.0, STORED_SIDE / max(width, height)))
    if short >= images.MIN_PICTURE_SIDE:
        return picture
    if max(width, height) <= STORED_SIDE:  # small as chosen: the crop tool zoomed in too far on a small picture
        raise images.ImageError(
            f"{name}: the part chosen is {width}x{height} pixels, too small to draw a code from; at least "
            f"{images.MIN_PICTURE_SIDE} pixels on each side are needed. Zoom out, or choose a larger picture."
        )
    raise images.ImageError(
        f"{name}: {width}x{height} pixels is too long and narrow to draw a code from: kept at most "
        f"{STORED_SIDE} pixels long, its short side would be {short} pixels, and at least "
        f"{images.MIN_PICTURE_SIDE} are needed. Crop it closer to a square first."
    )


def _scaled(picture: Image.Image, side: int) -> Image.Image:
    picture = picture.copy()
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    return picture


def attach(job: GenerationJob, picture: Image.Image) -> None:
    """Store `picture` as the job's `init_image`: scaled to at most `STORED_SIDE` and re-encoded as PNG."""
    picture = _scaled(picture, STORED_SIDE)
    job.init_image.save(f"picture-{secrets.token_hex(8)}.png", ContentFile(images.png_bytes(picture)), save=False)


def _kept_key(user, kind: str) -> str:
    return f"qart:kept-upload:{user.pk}:{kind}"


def keep(user, picture: Image.Image, name: str, kind: str = "picture") -> str | None:
    """Keep a checked (and cropped) picture or logo (`kind`) for `user`'s next try, scaled as it would be stored;
    returns the token the page sends back (None when the cache cannot be reached: then the person chooses the file
    again). One of each kind per person: a newer try's replaces the older, so the cache holds at most two images
    a person, however many forms they send back."""
    token = secrets.token_urlsafe(24)
    value = (token, shown_name(name), images.png_bytes(_scaled(picture, STORED_SIDE)))
    try:
        cache.set(_kept_key(user, kind), value, KEEP_SECONDS)
    except (RedisError, OSError) as exc:  # the cache (Redis) away: keeping is a convenience
        log.warning("Could not keep an upload for the next try: %s", exc)
        return None
    return token


def _kept_value(user, token: str, kind: str) -> tuple[str, str, bytes] | None:
    """What `keep` stored for `user` under `token`: (token, file name, PNG); None when it is gone."""
    try:
        value = cache.get(_kept_key(user, kind)) if TOKEN.fullmatch(token or "") else None
    except (RedisError, OSError) as exc:
        log.warning("Could not read a kept upload: %s", exc)
        return None
    return value if value is not None and secrets.compare_digest(value[0], token) else None


def kept_name(user, token: str, kind: str = "picture") -> str | None:
    """The file name of what `keep` kept for `user` under `token`, without decoding it; None when it is gone."""
    value = _kept_value(user, token, kind)
    return value[1] if value is not None else None


def kept(user, token: str, kind: str = "picture") -> tuple[Image.Image, str]:
    """The picture `keep` kept for `user` under `token`, and its file's name.

    Raises:
        images.ImageError: `KEPT_GONE`: expired, replaced by a later try's, another person's, never kept, or the
            cache is unreachable.
    """
    value = _kept_value(user, token, kind)
    if value is None:
        raise images.ImageError(KEPT_GONE)
    _token, name, png = value
    picture = Image.open(io.BytesIO(png))  # qart's own PNG of a picture checked on the earlier try (and cropped)
    picture.load()
    return picture, name


def attach_logo(job: GenerationJob, logo: Image.Image) -> None:
    """Store `logo` as the job's `logo`: scaled to at most `LOGO_SIDE` and re-encoded as PNG."""
    logo = _scaled(logo, LOGO_SIDE)
    job.logo.save(f"logo-{secrets.token_hex(8)}.png", ContentFile(images.png_bytes(logo)), save=False)


@transaction.atomic
def save_new_job(job: GenerationJob, user, picture: Image.Image | None,
                 logo: Image.Image | None = None) -> GenerationJob:
    """Store a validated, unsaved job (the page's form and the API both make one): remember its prompt and, for the
    halftone engine, attach its picture and logo. Enqueueing is the caller's (`jobs.enqueue_generation`, after
    commit).

    Raises:
        OSError: the picture could not be stored (MediaUnavailable: the storage is away); nothing was saved, and
            `NOT_STORED` says so to people.
    """
    if job.engine == GenerationJob.Engine.HALFTONE:
        # A halftone job's prompt only labels it: kept off the team's gallery of prompts to draw from.
        job.prompt = Prompt.remember(user, job.prompt.text, "", team=None)
        attach(job, picture)
        if logo is not None:
            attach_logo(job, logo)
    else:
        job.prompt = Prompt.remember(user, job.prompt.text, job.prompt.negative_text, team=job.team)
    job.save()
    return job

