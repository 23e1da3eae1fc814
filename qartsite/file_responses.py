"""Downloads that answer as a file server does: validators, conditional requests and single byte ranges.

Every view that sends a file that does not change once made answers through `send`, after its own access check:
stored media (`qartsite.media`), print files (`campaigns.print_builds`), and the files made in the request from
fixed inputs (a candidate's PNG at a print size, the plain code's SVG and PNG). Dynamic exports (the CSV files)
do not: their content changes from one request to the next, and a validator would claim otherwise.

- `ETag` is strong. A stored file's comes from its storage name, size and modification time, not from its bytes:
  reading a print file of hundreds of MB (or downloading it from the bucket) to answer a 304 would cost what the
  304 saves. Names are never reused for other bytes (the filesystem storage and `S3MediaStorage` both refuse to
  overwrite), and a name deleted and stored again (a print file made again after its day) has another time. A file
  made in the request gets the hash of its bytes, which it has anyway: never a promise its bytes do not keep.
- Conditional requests are Django's own evaluation (`get_conditional_response`: If-Match, If-Unmodified-Since,
  If-None-Match, If-Modified-Since, RFC 9110 13.2.2); a 304 carries the 200's validators and Cache-Control. A file
  made in the request has no modification date, so If-Unmodified-Since is ignored (RFC 9110 13.1.4), where Django
  failed it with a 412 whatever the date.
- A 412 or 416 says why: in the API's JSON (`{"detail": ...}`) on its addresses (the print files), as every other
  answer of the API, in plain text on the pages'. Django's 412 was empty and called itself HTML.
- `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` answer 206 with those bytes only (Django has none of this: its
  step 5, If-Range, is "not supported"); one no byte of the file satisfies, 416 with `Content-Range: bytes */size`;
  several ranges or a header that is not one of those forms, the whole file (RFC 9110 14.2 lets a server ignore
  Range; a multipart answer is not worth its code for resuming a download). If-Range with a validator that is not
  the current one also gets the whole file, so a resumed download never splices two versions. Only GET: RFC 9110
  defines ranges for no other method, so a HEAD answers the whole file's headers (and no body).
- `Cache-Control: private`: only the signed-in browser may keep a copy, never a shared cache (one team's files).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import IO

from django.core.files.storage import Storage
from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe

from qartsite.responses import is_api_path, json_detail

# One range of the forms a download manager or a browser sends. 30 digits at most (far past any file's size):
# Python refuses to read an integer of more than 4,300 digits, and a longer one is no range anyone meant.
BYTE_RANGE = re.compile(r"bytes=([0-9]{0,30})-([0-9]{0,30})", re.ASCII | re.IGNORECASE)


# The 412's reason: a client that resumes a download names the copy it has; this is another.
PRECONDITION_FAILED = ("The file is not the one If-Match or If-Unmodified-Since names: it has changed since. Ask "
                       "again without them for the file as it is now.")


class Unsatisfiable(ValueError):
    """The Range asks for no byte the file has: 416."""


@dataclass(frozen=True)
class StoredFile:
    """A file in a storage, as far as one look at it (`look_up`) tells: its size and modification time."""

    storage: Storage
    name: str
    size: int
    modified: float | None  # POSIX time; None for a storage that keeps none

    @classmethod
    def look_up(cls, storage: Storage, name: str) -> StoredFile:
        """The file `name` of `storage`, without reading it.

        Raises:
            FileNotFoundError: there is no such file.
            MediaUnavailable: the storage cannot be reached.
        """
        stat = getattr(storage, "stat", None)  # S3MediaStorage: size and time from one request to the bucket
        if stat is not None:
            size, modified = stat(name)
            return cls(storage, name, size, modified)
        try:
            modified = storage.get_modified_time(name).timestamp()
        except NotImplementedError:
            modified = None
        return cls(storage, name, storage.size(name), modified)

    @property
    def etag(self) -> str:
        return strong_etag(f"{self.name}\n{self.size}\n{self.modified!r}".encode())

    def whole(self) -> IO[bytes]:
        """The whole file: from a storage that reads parts (a bucket), in one request, its size known from the look-up
        (django-storages' own file looks the object up twice more before it reads)."""
        if self.size and hasattr(self.storage, "open_part"):
            return self.part(0, self.size)
        return self.storage.open(self.name, "rb")

    def part(self, start: int, length: int) -> IO[bytes]:
        """`length` bytes from `start`: only those read from a storage that can (`open_part`), else by seeking."""
        open_part = getattr(self.storage, "open_part", None)
        if open_part is not None:
            return open_part(self.name, start, length)
        stored = self.storage.open(self.name, "rb")
        stored.seek(start)
        return Slice(stored, length)


class Slice:
    """The next `length` bytes of an open file, then its end: FileResponse streams it and closes the file."""

    def __init__(self, stored: IO[bytes], length: int) -> None:
        self.stored, self.left = stored, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.stored.read(size) if size else b""
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.stored.close()


def strong_etag(data: bytes) -> str:
    return f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) that a Range header asks of a file of `size` bytes.

    Returns:
        None when the header is to be ignored (not one range of bytes, or one whose last byte comes before its
        first): the whole file is sent.

    Raises:
        Unsatisfiable: the range starts past the file's end, or asks for its last 0 bytes (or any of an empty file).
    """
    match = BYTE_RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # bytes=-n: the last n bytes
        if int(last) == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(size - int(last), 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable(header)
    return start, (min(int(last), size - 1) if last else size - 1)


def range_applies(request: HttpRequest, etag: str, modified: float | None) -> bool:
    """Whether If-Range (when sent) names the file as it is now: its ETag, compared strongly (a weak tag never
    matches), or its exact Last-Modified date."""
    validator = request.META.get("HTTP_IF_RANGE", "").strip()
    if not validator:
        return True
    if validator.startswith(('"', "W/")):
        return validator == etag
    date = parse_http_date_safe(validator)
    return date is not None and modified is not None and date == int(modified)


def send(request: HttpRequest, content: bytes | StoredFile, content_type: str, filename: str,
         attachment: bool = True) -> HttpResponse:
    """The answer to a GET or HEAD of a file the caller has already let this person see.

    Args:
        content: the file's bytes (made in the request), or a stored file (`StoredFile.look_up`).
        content_type: its media type.
        filename: the name in Content-Disposition.
        attachment: whether a browser saves it (True) or shows it (False).

    Returns:
        200 with the whole file, 206 with one range, 304 (or 412) to a conditional request, 416 to a range past its
        end; each with the file's validators, `Accept-Ranges: bytes` and `Cache-Control: private`.

    Raises:
        OSError: the stored file could not be opened (FileNotFoundError, MediaUnavailable, ...).
    """
    # 1. What the file is: its size and validators.
    stored = content if isinstance(content, StoredFile) else None
    size = stored.size if stored else len(content)
    etag = stored.etag if stored else strong_etag(content)
    modified = stored.modified if stored else None
    headers = {"ETag": etag, "Accept-Ranges": "bytes",
               "Content-Disposition": content_disposition_header(attachment, filename)}
    if modified is not None:
        headers["Last-Modified"] = http_date(modified)

    # 2. The browser's copy is current (304), or a precondition fails (412): Django's own evaluation.
    response = HttpResponse(headers=headers)
    patch_cache_control(response, private=True)
    answer = get_conditional_response(preconditions(request, modified), etag=etag,
                                      last_modified=None if modified is None else int(modified), response=response)
    if answer.status_code == 412:
        return refusal(request, answer, PRECONDITION_FAILED, headers)
    if answer is not response:
        return answer

    # 3. One range of it, when asked for (GET only) and If-Range, if sent, names this file.
    wanted = None
    if request.method == "GET" and "HTTP_RANGE" in request.META and range_applies(request, etag, modified):
        try:
            wanted = byte_range(request.META["HTTP_RANGE"], size)
        except Unsatisfiable:
            refused = refusal(request, HttpResponse(status=416),
                              f"The file has {size} bytes: the range asked for is not in it.", headers)
            refused["Content-Range"] = f"bytes */{size}"
            return refused

    # 4. The bytes: none for a HEAD (nothing read from the storage), else the range or the whole file.
    if request.method == "HEAD":
        sent = HttpResponse(content_type=content_type, headers=headers)
        sent["Content-Length"] = str(size)
    elif wanted is not None:
        start, end = wanted
        length = end - start + 1
        body = stored.part(start, length) if stored else content[start:end + 1]
        sent = (FileResponse(body, status=206, content_type=content_type, headers=headers) if stored
                else HttpResponse(body, status=206, content_type=content_type, headers=headers))
        sent["Content-Range"] = f"bytes {start}-{end}/{size}"
        sent["Content-Length"] = str(length)
    elif stored:
        sent = FileResponse(stored.whole(), content_type=content_type, headers=headers)
        sent["Content-Disposition"] = headers["Content-Disposition"]  # FileResponse writes its own from the name
    else:
        sent = HttpResponse(content, content_type=content_type, headers=headers)
    patch_cache_control(sent, private=True)
    return sent


def preconditions(request: HttpRequest, modified: float | None) -> HttpRequest:
    """The request whose conditional headers `get_conditional_response` evaluates: `request` itself, or for a file
    with no modification date (made in the request) a copy of its method, path and headers without
    If-Unmodified-Since, which RFC 9110 13.1.4 has a server ignore then. Django failed it (412) instead, whatever the
    date: a download manager that sends it with its resumed request was refused the file."""
    if modified is not None or "HTTP_IF_UNMODIFIED_SINCE" not in request.META:
        return request
    evaluated = HttpRequest()
    evaluated.method, evaluated.path, evaluated.path_info = request.method, request.path, request.path_info
    evaluated.META = {name: value for name, value in request.META.items() if name != "HTTP_IF_UNMODIFIED_SINCE"}
    return evaluated


def refusal(request: HttpRequest, response: HttpResponse, message: str, headers: dict[str, str]) -> HttpResponse:
    """`response` (a 412 or 416) saying `message`: `{"detail": message}` on the API's addresses, as its every answer
    is JSON, else plain text; with the file's validators and `Accept-Ranges`, but without Content-Disposition: this
    message is not the file, and must not be saved under its name.

    Args:
        request: the request refused.
        response: the refusal, its status set (Django's own 412, already logged, is filled in rather than replaced).
        message: why it was refused.
        headers: the file's headers, as its 200 would carry them.

    Returns:
        `response`, with its body and headers.
    """
    if is_api_path(request.path):
        response.content, response["Content-Type"] = json_detail(message), "application/json"
    else:
        response.content, response["Content-Type"] = f"{message}\n", "text/plain; charset=utf-8"
    for header in ("ETag", "Last-Modified", "Accept-Ranges"):
        if header in headers:
            response[header] = headers[header]
    patch_cache_control(response, private=True)
    return response
