"""Uploaded and generated files (everything under MEDIA_ROOT), answered only to the team that owns them.

A file is served only when a stored object names it in one of its file fields (`OWNERS`) and that object belongs to
one of the user's teams (`Team.for_user`); superusers see every owned file. Anything else (another team's file,
a file no object names, a directory, a path with `..`) answers the site's 404, never a 403 that confirms a file
exists. Browsers send their session cookie; API clients may send `Authorization: Token <key>` instead, so the
image URLs the API returns work with the same credentials as the API itself.

In production behind nginx, set QART_MEDIA_ACCEL_PREFIX: the view still decides access, then hands the sending to
nginx with `X-Accel-Redirect` (the prefix is an `internal` location aliased to MEDIA_ROOT).

With the media in an S3 bucket (MEDIA_STORAGE=s3, qartsite.storage) the view streams the object itself rather than
redirecting to a presigned URL: the bucket's endpoint need not be reachable from browsers (it often sits on a private
network), no link that works without the team check ever leaves the site (a presigned URL does, for its lifetime,
to anyone it is pasted to), and revalidation (304), byte ranges (`qartsite.file_responses`) and
`Cache-Control: private` work as they do for files on disk.
The cost is the bytes passing through the web process: images of at most a few megabytes, as before.

While the storage cannot be reached, an owned file answers 503 with a small picture that says "Image unavailable",
so a page shows that in place of the image (and the browser keeps no copy of it).
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import Storage
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from rest_framework.exceptions import AuthenticationFailed

from generator.models import Candidate, GenerationJob, LabelingItem
from qartsite import file_responses
from qartsite.access import editable_teams
from qartsite.authentication import TokenAuthentication
from qartsite.file_responses import StoredFile
from qartsite.models import Team
from qartsite.storage import MediaUnavailable

log = logging.getLogger(__name__)
# What an <img> shows while the storage is away: plain words, no script (an SVG shown by <img> cannot run any).
UNAVAILABLE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 120" width="320" height="120">'
    '<rect width="320" height="120" fill="#eeeeee"/>'
    '<text x="160" y="50" font-family="sans-serif" font-size="20" text-anchor="middle" fill="#444444">'
    'Image unavailable</text>'
    '<text x="160" y="76" font-family="sans-serif" font-size="13" text-anchor="middle" fill="#666666">'
    'The image storage cannot be reached.</text>'
    '<text x="160" y="96" font-family="sans-serif" font-size="13" text-anchor="middle" fill="#666666">'
    'Reload in a minute.</text></svg>'
)


@dataclass(frozen=True)
class MediaOwner:
    """A file field whose files are served, the lookup from its model to the team that owns them, and which of a
    user's teams see them (all of theirs unless said)."""

    model: type[Model]
    field: str
    team_lookup: str
    teams: Callable[[object], QuerySet[Team]] = Team.for_user

    @property
    def storage(self) -> Storage:
        return self.model._meta.get_field(self.field).storage

    def owns(self, name: str, user) -> bool:
        """Whether an object this user may see names the file `name` in this field."""
        objects = self.model._default_manager.filter(**{self.field: name})
        if not user.is_superuser:
            objects = objects.filter(**{f"{self.team_lookup}__in": self.teams(user)})
        return objects.exists()


# Every file field of the project's models (tests/qartsite/test_media.py fails when one is missing). Placement
# artwork and the eval reports point at candidates' images, so they need no entry of their own. Candidates
# first: most media requests are their images.
OWNERS = (
    MediaOwner(Candidate, "image", "job__team"),
    MediaOwner(GenerationJob, "control_image", "team"),
    MediaOwner(GenerationJob, "init_image", "team"),
    MediaOwner(GenerationJob, "logo", "team"),
    # A labeling item's image is its one-time link drawn as a code (`evals.sessions.render_item`), the key that records
    # its scan: the team's editors', as the one page that shows it (`labeling_views.session_run`). Its name is
    # "labeling/<session>-<position>.png": a viewer could ask for each.
    MediaOwner(LabelingItem, "image", "session__team", teams=editable_teams),
)


def named_files() -> dict[str, list[MediaOwner]]:
    """Every file name a row names, with the file fields that name it (`qart_media_copy`, `media_sweep`)."""
    names: dict[str, list[MediaOwner]] = defaultdict(list)
    for owner in OWNERS:
        stored = owner.model._default_manager.exclude(**{owner.field: ""}).exclude(**{f"{owner.field}__isnull": True})
        for name in stored.values_list(owner.field, flat=True).distinct().order_by(owner.field):
            names[name].append(owner)
    return dict(sorted(names.items()))


def clean_name(path: str) -> str | None:
    """The storage name a media URL's path asks for, or None when it is not a plain relative file name.

    Args:
        path: the URL path after MEDIA_URL, already percent-decoded by Django.

    Returns:
        `path` itself when it is relative, has no empty, `.` or `..` segment, no backslash and no NUL; else None.
    """
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return None
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    return path


def media_user(request: HttpRequest):
    """The session's user, else the user of a valid `Authorization: Token` header, else the anonymous user.

    A bad token counts as no token: the answer is the same 404 an anonymous visitor gets.
    """
    if request.user.is_authenticated:
        return request.user
    try:
        authenticated = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        authenticated = None
    return authenticated[0] if authenticated else request.user


def owner_of(name: str, user) -> MediaOwner | None:
    """The file field through which `user` may see the file `name`, if any."""
    if not user.is_authenticated:
        return None
    return next((owner for owner in OWNERS if owner.owns(name, user)), None)


@csrf_exempt  # read-only: POST and the rest are 405 (require_safe), not a CSRF failure page
@require_safe
def serve(request: HttpRequest, path: str) -> HttpResponse:
    """A media file for a member of its owner's team (see the module docstring), else 404."""
    name = clean_name(path)
    owner = owner_of(name, media_user(request)) if name else None
    if owner is None:
        raise Http404("Not found")
    try:
        response = stored_file(request, owner.storage, name)
    except MediaUnavailable as exc:
        log.warning("Media %s not served: %s", name, exc)
        response = HttpResponse(UNAVAILABLE_SVG, content_type="image/svg+xml", status=503)
        response["Retry-After"] = "60"
        add_never_cache_headers(response)
    response["X-Content-Type-Options"] = "nosniff"
    # Only the signed-in browser may keep a copy: a shared cache must never hand one team's file to another.
    patch_cache_control(response, private=True)
    return response


def stored_file(request: HttpRequest, storage: Storage, name: str) -> HttpResponse:
    """The response that sends the file `name` of `storage` (whole, one range of it, or 304: see
    `qartsite.file_responses`), or the sending handed to nginx; 404 when there is no such file.

    Raises:
        MediaUnavailable: the storage cannot be reached.
    """
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    prefix = settings.QART_MEDIA_ACCEL_PREFIX
    if prefix:
        if not storage.exists(name):
            raise Http404("Not found")
        # nginx sends the bytes and answers conditional and range requests. It keeps Content-Type,
        # Content-Disposition and Cache-Control from this response but not X-Content-Type-Options: its location adds
        # that (.env.example).
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = quote(prefix + name)
        response["Content-Disposition"] = content_disposition_header(False, posixpath.basename(name))
        return response
    # No exists() first: the look-up of size and time says the file is there, one request fewer to a bucket.
    # Shown in the page, never a download (the PNG downloads for print come from generator.core.codes.downloads); a
    # 416's message and the 503's picture carry no Content-Disposition: they are not the file, nor saved under its name.
    try:
        stored = StoredFile.look_up(storage, name)
        return file_responses.send(request, stored, content_type, posixpath.basename(name), attachment=False)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        raise Http404("Not found") from None
