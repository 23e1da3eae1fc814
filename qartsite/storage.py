"""Where media lives: the storage layer every upload, candidate, control image and labeling image goes through.

`settings.STORAGES["default"]` is the filesystem under MEDIA_ROOT (`FileSystemMediaStorage`: one host, `make run`) or,
with MEDIA_STORAGE=s3,
`S3MediaStorage`: a private bucket of any S3-compatible server (AWS S3, MinIO, SeaweedFS, Ceph, R2) that web
processes and GPU workers on any number of hosts share. Code elsewhere reads and writes media only through a file
field or a storage (`field.open("rb")`, `field.save(...)`, `storage.open(...)`), never by a filesystem path
(tests/qartsite/test_storage.py checks).

A storage that cannot be reached raises `MediaUnavailable`, an `OSError`: the code that already handles a missing
or unreadable file handles an outage too, and the places where the difference matters to a person (an upload, an
image, a download, a generation job) say that the storage is unavailable rather than that the file is gone.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import IO
from urllib.parse import urljoin

from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.handlers import add_expect_header
from botocore.utils import determine_content_length
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils._os import safe_makedirs
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from generator.core.codes.echoes import echo

# How long a request to the bucket may take, and how often it is tried: at most 2 x (connect + read) = 26 s when the
# bucket does not answer, under gunicorn's 30 s worker timeout (3 x (3 + 20) s was 69 s, and the worker was killed:
# a plain 500), instead of botocore's default minutes (60 s timeouts).
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
ATTEMPTS = 2
# What a web process (`qartsite.web_process`) waits instead: one try, a shorter read. Its sync workers are few (two):
# a frozen bucket held both for 20 s, one on an image and one on an upload, and every short link waited behind them
# (a fault drill, the S3 server SIGSTOPped). A page fails sooner; a job's files (workers) are worth the longer wait.
WEB_READ_TIMEOUT = 5
WEB_ATTEMPTS = 1
# What a web process waits for the answer to a look-up (a HEAD: an object's size and time, or the bucket's), which comes
# first in every read: it carries no body, so its time does not grow with the object, and a bucket that has not
# answered one in this long is taken as not answering. A frozen bucket held the first media request of each web worker
# WEB_READ_TIMEOUT (a fault drill); the GET that follows keeps WEB_READ_TIMEOUT, so a slow bucket streaming a large
# print file is not cut short.
WEB_LOOK_UP_TIMEOUT = 2
BUCKET_SEEN_SECONDS = 60  # after a 404, the bucket's existence is asked about at most this often
# After the bucket did not answer, this process's calls to it fail at once for this long; then one quick question
# (`PROBE_TIMEOUT`, no retry) decides whether calls go to it again. A frozen bucket held every web worker for a
# minute and more per image (a fault drill): short links waited behind them.
AWAY_SECONDS = 15
POOL_CONNECTIONS = 16  # connections a client keeps to the bucket: at least a job's files stored side by side
EXPECT_CONTINUE_BYTES = 8 * 1024 * 1024  # uploads this large still ask the server before sending the body
PROBE_TIMEOUT = 2
# What /healthz waits for the bucket's server (`S3MediaStorage.answers`): a monitor's check must answer in a second or
# two even while the bucket is frozen.
HEALTH_TIMEOUT = 1

PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")


class MediaUnavailable(OSError):
    """The media storage could not be reached, or refused the request: nothing is known about the file itself.

    `passing` is True when the server answered that it failed for a moment (a 5xx: "InternalError ... please try
    again", "SlowDown", "ServiceUnavailable"), as a bucket just back from an outage may for a few seconds."""

    passing = False


def did_not_answer(exc: Exception) -> bool:
    """Whether boto's error says the server could not be reached or did not answer in time (not that it refused)."""
    return isinstance(exc, BotoConnectionError | HTTPClientError)


@contextmanager
def bucket_errors(doing: str, name: str, bucket_check: Callable[[], None] | None = None,
                  no_answer: Callable[[str], None] | None = None) -> Iterator[None]:
    """Turn boto's errors into the file errors Django code expects: a missing object is `FileNotFoundError`,
    anything else (no connection, a timeout, refused credentials, a missing bucket) is `MediaUnavailable`.

    A 404 to a HEAD request has no body, so nothing tells a missing object from a missing bucket (a typo in
    MEDIA_S3_BUCKET): `bucket_check`, asked then, raises `MediaUnavailable` when the bucket is not there. Without
    it, a worker with a mistyped bucket failed every job for good with "the picture is no longer stored".
    `no_answer` is called with the message when the server could not be reached or did not answer in time (not when
    it refused)."""
    try:
        yield
    except FileNotFoundError:  # django-storages' own answer to a 404 for some calls (size, modified time)
        if bucket_check is not None:
            bucket_check()
        raise
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 and error.get("Code") not in ("NoSuchBucket",):
            if bucket_check is not None:
                bucket_check()
            raise FileNotFoundError(f"{name}: no such object in the bucket") from exc
        refused = MediaUnavailable(f"The media storage refused to {doing} “{echo(name)}”: {exc}")
        refused.passing = isinstance(status, int) and status >= 500
        raise refused from exc
    except (BotoCoreError, Boto3Error) as exc:
        message = f"The media storage could not {doing} “{echo(name)}”: {exc}"
        if no_answer is not None and did_not_answer(exc):
            no_answer(message)
        raise MediaUnavailable(message) from exc


def _expect_continue_if_large(model, params, **kwargs) -> None:
    """botocore's `add_expect_header`, for bodies of `EXPECT_CONTINUE_BYTES` or more only (see
    `S3MediaStorage.connection`)."""
    body = params.get("body")
    if hasattr(body, "read") and (determine_content_length(body) or 0) >= EXPECT_CONTINUE_BYTES:
        add_expect_header(model, params, **kwargs)


class S3MediaStorage(S3Storage):
    """django-storages' S3 backend for a private bucket that only qart's processes reach.

    - `url()` is the site's own `/media/<name>`: people never get a link into the bucket, and every request goes
      through the team check in `qartsite.media`, which streams the object.
    - Names are never overwritten (as on the filesystem): a name in the database always means the bytes first
      stored under it, which `qart_media_copy` relies on to check what it copied.
    - Every failure to reach the bucket is a `MediaUnavailable` (see `bucket_errors`), within short timeouts; once
      the bucket has not answered, this process's calls fail at once for `AWAY_SECONDS`, then a quick probe decides
      (`reachable`). A web process's reads start with a look-up that waits `WEB_LOOK_UP_TIMEOUT` (`look_up_client`).
    """

    _away_until = 0.0  # monotonic time before which calls fail at once; 0: the bucket answered last time
    web = False  # a web process's storage: WEB_READ_TIMEOUT, WEB_ATTEMPTS, reads looked up first (`limit_web_requests`)
    _away_reason = "The media storage did not answer"  # what the call that found it away said

    def _probe(self, saying: str, timeout: float) -> None:
        """`_ask_server`: an answer ends the pause, none starts it again (`_no_answer`). Raises `MediaUnavailable`."""
        try:
            self._ask_server(timeout)
        except (BotoCoreError, Boto3Error) as exc:
            if not did_not_answer(exc):
                # Not asked at all (no credentials found, say): nothing is known of the server. No pause: each call
                # fails at once on its own with the same reason, sending nothing.
                self._away_until = 0.0
                raise MediaUnavailable(f"The media storage could not be asked: {exc}") from exc
            self._no_answer(f"{saying}: {exc}")
            raise MediaUnavailable(self._away_reason) from exc
        self._away_until = 0.0

    def reachable(self, ask_now: bool = False) -> None:
        """Raise `MediaUnavailable` at once while the bucket is known not to answer. Once `AWAY_SECONDS` have passed,
        one call asks the server with a `PROBE_TIMEOUT` (any HTTP answer will do: it is up), the others failing at
        once meanwhile; calls about to go side by side (`generator.job_files`) ask it first, in their own thread, so
        that they do not race that one probe.

        Args:
            ask_now (`bool`, *optional*, defaults to `False`): ask the server now, whatever this process knows of it
                (the pause, or no outage at all). For a caller whose next calls would each wait out their timeouts and
                tries when it does not answer (the media sweep's listing waited 20 s and more on a frozen bucket), and
                for one that waited on purpose before trying again (a job's files stored again,
                `generator.job_files.store`), whose second try otherwise failed unasked while the pause outlasted its
                wait, and the GPU's work was thrown away (a fault drill).

        Raises:
            MediaUnavailable: the server is known not to answer, or did not answer now (this process's calls then
                fail at once for `AWAY_SECONDS`); or it could not be asked (no credentials, say), which the calls will
                say too.
        """
        until = self._away_until
        if not until and not ask_now:
            return
        now = time.monotonic()
        if now < until and not ask_now:
            raise MediaUnavailable(f"{self._away_reason} (a moment ago; no call goes to it for the next "
                                   f"{until - now:.0f} s)")
        if until:
            self._away_until = now + AWAY_SECONDS  # the other threads, while this one asks
        self._probe("The media storage still does not answer" if until else "The media storage does not answer",
                    PROBE_TIMEOUT)

    def _ask_server(self, timeout: float) -> None:
        """One HEAD request for the bucket, no retry, through `probe_client`: any HTTP answer will do (it is up, a 403
        or a 404 included). Raises boto's errors: `did_not_answer` tells those that say it is not up."""
        try:
            self.probe_client(timeout).head_bucket(Bucket=self.bucket_name)
        except ClientError:
            pass

    def answers(self) -> str:
        """For `/healthz`: "" when the bucket's server answers within HEALTH_TIMEOUT, else why not.

        While the bucket is known not to answer (`reachable`) the reason is returned without asking, so a frozen bucket
        costs the check HEALTH_TIMEOUT once per AWAY_SECONDS, not every time; one that does not answer now is known away
        for this process's other calls too, as a page's failed call would make it.

        Returns:
            "" or the one-line reason.
        """
        now = time.monotonic()
        if now < self._away_until:
            return f"{self._away_reason} (a moment ago)"
        try:
            self._probe("The media storage does not answer", HEALTH_TIMEOUT)
        except MediaUnavailable as exc:
            return str(exc)
        return ""

    def _no_answer(self, reason: str) -> None:
        self._away_until, self._away_reason = time.monotonic() + AWAY_SECONDS, reason

    @contextmanager
    def _calls(self, doing: str, name: str, bucket_check: Callable[[], None] | None = None) -> Iterator[None]:
        """`bucket_errors` for a call to the bucket, refused at once while it is known not to answer."""
        self.reachable()
        with bucket_errors(doing, name, bucket_check, self._no_answer):
            yield

    def __init__(self, **options) -> None:
        options.setdefault("file_overwrite", False)
        options.setdefault("default_acl", None)  # no ACL header: objects stay as private as the bucket
        # An object read is spooled to a temporary file past this size, not held in memory (django-storages' default,
        # 0, never spools: a poster's print file of hundreds of MB would sit in the web process).
        options.setdefault("max_memory_size", 8 * 1024 * 1024)
        super().__init__(**options)
        self.client_config = self.client_config.merge(Config(
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            # The uploads of a job's files side by side share one client (`generator.job_files.STORE_THREADS` of
            # them): a pool smaller than that drops and opens connections every job (botocore's default is 10).
            max_pool_connections=POOL_CONNECTIONS,
            # botocore's `max_attempts` counts the retries after the first try: ATTEMPTS of them made 3 tries, 30 s.
            retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
            # Checksums only where S3 requires them: several S3-compatible servers refuse the CRC trailers that
            # newer boto3 adds to every upload by default. qart_media_copy checks its copies itself.
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        ))

    def _serve_the_web(self) -> None:
        """Make this storage a web process's (`limit_web_requests`), before its first call: one try of
        WEB_READ_TIMEOUT, and every read looked up first (`look_up_client`). Set on this instance, not the class: a
        storage built afterwards (another test's, another alias's) keeps a worker's waits."""
        self.web = True
        self.client_config = self.client_config.merge(Config(
            read_timeout=WEB_READ_TIMEOUT, retries={"total_max_attempts": WEB_ATTEMPTS, "mode": "standard"}))

    @property
    def connection(self):
        """django-storages' connection (one a thread), asking `Expect: 100-continue` only of large uploads: botocore
        puts it on every upload, and waiting for the server's "continue" before sending the body cost each candidate's
        PUT a round trip more (three where two do: a HEAD, then the PUT), the last of which a job's tail waits for
        (bench/RESULTS.md, "Media in a bucket"). A large body (a print file's parts) keeps it: a server that refuses
        one says so before the body, not by closing the connection part-way (which reads as a storage away)."""
        connection = getattr(self._connections, "connection", None)
        if connection is None:
            connection = super().connection
            events = connection.meta.client.meta.events
            events.unregister("before-call.s3", add_expect_header)
            events.register("before-call.s3", _expect_continue_if_large)
        return connection

    @property
    def look_up_client(self):
        """The boto3 client of this thread for look-ups (HEAD requests): in a web process its own, which waits
        `WEB_LOOK_UP_TIMEOUT` for an answer (botocore has one read timeout per client); elsewhere the connection's."""
        if not self.web:
            return self.connection.meta.client
        client = getattr(self._connections, "look_up_client", None)
        if client is None:
            client = self._connections.look_up_client = self._client(Config(read_timeout=WEB_LOOK_UP_TIMEOUT))
        return client

    def probe_client(self, timeout: float):
        """The boto3 client of this thread that asks whether the server answers (`_ask_server`): connect and read
        timeouts of `timeout`, one try. Kept per thread and timeout: /healthz asks on every call.

        Made as the storage's connection is (`_client`): a bare HTTP request to the endpoint knew nothing of a private
        CA (the storage's `verify`, AWS_CA_BUNDLE) nor of a proxy (its `proxies`, HTTPS_PROXY), so such a bucket never
        answered it, the process took it for gone and the media sweep never ran.

        Args:
            timeout (`float`): seconds to wait for the connection, and then for the answer.

        Returns:
            A botocore S3 client.
        """
        clients = getattr(self._connections, "probe_clients", None)
        if clients is None:
            clients = self._connections.probe_clients = {}
        if timeout not in clients:
            clients[timeout] = self._client(Config(connect_timeout=timeout, read_timeout=timeout,
                                                   retries={"total_max_attempts": 1, "mode": "standard"}))
        return clients[timeout]

    def _client(self, config: Config):
        """A boto3 client of this thread's session made as django-storages makes the storage's connection (endpoint,
        region, TLS verification, and the client config's proxies and addressing), with `config` over its config."""
        return self._create_session().client(
            "s3", region_name=self.region_name, use_ssl=self.use_ssl, endpoint_url=self.endpoint_url,
            config=self.client_config.merge(config), verify=self.verify)

    def _create_session(self):
        """django-storages' session (its credentials), made once a thread: the thread's clients share it. A client
        made from a session that has made one before takes milliseconds, not the tenth of a second and more that a new
        session takes to load S3's description (a probe's client must not eat /healthz's HEALTH_TIMEOUT). boto3's
        sessions are not to be shared across threads."""
        session = getattr(self._connections, "session", None)
        if session is None:
            session = self._connections.session = super()._create_session()
        return session

    def check_bucket(self) -> None:
        """Raise `MediaUnavailable` when the bucket itself is missing (asked after a 404, see `bucket_errors`); a
        bucket seen within `BUCKET_SEEN_SECONDS` is not asked about again."""
        if time.monotonic() - getattr(self, "_bucket_seen_at", -BUCKET_SEEN_SECONDS) < BUCKET_SEEN_SECONDS:
            return
        self.reachable()
        try:
            self.look_up_client.head_bucket(Bucket=self.bucket_name)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise MediaUnavailable(f"The media storage has no bucket “{echo(self.bucket_name)}”: check "
                                       "MEDIA_S3_BUCKET (and MEDIA_S3_ENDPOINT_URL).") from exc
            # Not allowed to ask about the bucket (a policy on objects only): trust the object's 404, and do not
            # ask again for a while (every save asks).
        except (BotoCoreError, Boto3Error) as exc:
            message = f"The media storage could not look up its bucket: {exc}"
            if did_not_answer(exc):
                self._no_answer(message)
            raise MediaUnavailable(message) from exc
        self._bucket_seen_at = time.monotonic()

    def url(self, name: str, parameters=None, expire=None, http_method=None) -> str:
        return urljoin(settings.MEDIA_URL, filepath_to_uri(name))

    def _open(self, name, mode="rb"):
        if self.web and "r" in mode:
            # Looked up first, within WEB_LOOK_UP_TIMEOUT: django-storages' own look-up waits WEB_READ_TIMEOUT.
            self._head(name)
        with self._calls("read", name, self.check_bucket):
            stored = super()._open(name, mode)
            if "r" in mode:
                # Downloaded now, not at the first read(): a failure belongs to open(), before a response has begun.
                stored.file  # noqa: B018
        return stored

    def _save(self, name, content):
        # Some servers (SeaweedFS, MinIO in some setups) make a bucket a write names: a typo in MEDIA_S3_BUCKET on
        # one host would store its uploads where no other host looks. The bucket is looked up first (once a minute).
        self.check_bucket()
        with self._calls("store", name):
            return super()._save(name, content)

    def delete(self, name) -> None:
        with self._calls("delete", name):
            super().delete(name)

    def exists(self, name) -> bool:
        try:
            self._head(name)
        except FileNotFoundError:  # the object's 404, once the bucket is known to be there (`bucket_errors`)
            return False
        return True

    def size(self, name) -> int:
        with self._calls("look up", name, self.check_bucket):
            return super().size(name)

    def get_modified_time(self, name):
        with self._calls("look up", name, self.check_bucket):
            return super().get_modified_time(name)

    def listdir(self, name):
        with self._calls("list", name):
            return super().listdir(name)

    def files_under(self, folder: str) -> Iterator[tuple[str, datetime]]:
        """(name, last modified) of every object under `folder`, from flat listings of 1,000 keys a request:
        `listdir` asks once per sub-folder (one per generation job) and its callers then once per object for the
        time (`qartsite.media_sweep` walks every job's folder)."""
        prefix = self._normalize_name(clean_name(folder)).rstrip("/") + "/"
        with self._calls("list", folder):
            pages = self.connection.meta.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket_name, Prefix=prefix)
            for page in pages:
                for entry in page.get("Contents", ()):
                    key = entry["Key"]
                    yield (posixpath.relpath(key, self.location) if self.location else key), entry["LastModified"]

    def _head(self, name: str) -> dict:
        """The object's metadata, from one HEAD request."""
        with self._calls("look up", name, self.check_bucket):
            return self.look_up_client.head_object(Bucket=self.bucket_name, Key=self._normalize_name(clean_name(name)))

    def stat(self, name: str) -> tuple[int, float]:
        """The object's size and modification time (POSIX) from one request: `size()` and `get_modified_time()`
        ask the bucket once each (`qartsite.file_responses` needs both for every download)."""
        head = self._head(name)
        return head["ContentLength"], head["LastModified"].timestamp()

    def open_part(self, name: str, start: int, length: int) -> IO[bytes]:
        """`length` bytes of the object from `start`, and only those asked of the bucket (a resumed download of a
        large print file need not fetch what it has). Read now, as `_open` reads, so a failure comes before an
        answer has begun; held in a file spooled to disk past `max_memory_size`.

        Raises:
            FileNotFoundError: no such object. MediaUnavailable: the bucket cannot be reached.
        """
        part = tempfile.SpooledTemporaryFile(max_size=self.max_memory_size or 8 * 1024 * 1024, suffix=".S3")
        try:
            with self._calls("read", name, self.check_bucket):
                got = self.connection.meta.client.get_object(
                    Bucket=self.bucket_name, Key=self._normalize_name(clean_name(name)),
                    Range=f"bytes={start}-{start + length - 1}")
                for chunk in got["Body"].iter_chunks():
                    part.write(chunk)
        except BaseException:
            part.close()
            raise
        part.seek(0)
        return part

    def stored_md5(self, name: str) -> str | None:
        """The object's MD5 as the server reports it (its ETag), or None where the ETag is not a plain MD5
        (multipart uploads, some server-side encryptions)."""
        etag = self._head(name).get("ETag", "").strip('"')
        return etag if PLAIN_MD5.fullmatch(etag) else None


def limit_web_requests() -> None:
    """Called as a web process loads the application (`qartsite.web_process`), never by workers or commands: the
    media storage (`STORAGES["default"]`, the only one pages use), built now, asks a bucket once, for at most
    WEB_READ_TIMEOUT (a look-up, which every read and every upload starts with: WEB_LOOK_UP_TIMEOUT), then
    `reachable` fails calls at once. Media on the filesystem is left as it is."""
    media = storages["default"]
    if isinstance(media, S3MediaStorage):
        media._serve_the_web()


class FileSystemMediaStorage(FileSystemStorage):
    """The filesystem under MEDIA_ROOT, where a file that cannot be written whole leaves nothing under its name.

    Django's own storage writes straight to the file's name, and a write that fails half-way (a full disk, a quota)
    left an empty or cut-short file there that no row names, holding the very space the next write needed: a fault
    drill's full disk stayed full after a job's failed attempts, so every later upload failed too. Each file is
    written to a hidden name beside it first, deleted when the write fails, and moved to its name once whole: the
    name is first taken as an empty file (O_EXCL), so the move never replaces another file (a taken name gets
    another, as Django's storage does), on any filesystem (no hard links needed).
    """

    def _save(self, name: str, content) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        if self.directory_permissions_mode is not None:
            safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
        else:
            os.makedirs(directory, exist_ok=True)
        part = os.path.join(directory, f".{os.path.basename(full_path)}.{secrets.token_hex(6)}.part")
        try:
            with open(part, "xb") as written:
                for chunk in content.chunks():
                    written.write(chunk.encode() if isinstance(chunk, str) else chunk)
            while True:
                try:
                    os.close(os.open(full_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # the name is ours
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
            try:
                os.replace(part, full_path)
            except OSError:
                with suppress(FileNotFoundError):
                    os.remove(full_path)
                raise
        finally:
            with suppress(FileNotFoundError):
                os.remove(part)
        if self.file_permissions_mode is not None:
            os.chmod(full_path, self.file_permissions_mode)
        # As Django's own storage does: the file takes MEDIA_ROOT's group (a setgid folder shared by the web's and the
        # workers' users), not the group of whichever process wrote it.
        self._ensure_location_group_id(full_path)
        return os.path.relpath(full_path, self.location).replace("\\", "/")


def write_whole(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` whole or not at all, for files kept outside the media storage (a refused scan set
    aside, a print file a command makes).

    Written to a hidden name beside the target, then renamed over it: a reader never sees half a file, and a write
    that fails (a full disk) deletes its hidden file rather than leaving it to hold the space.

    Args:
        path: the file to write; its folder must exist.
        data: the whole content.

    Raises:
        OSError: the write or the rename failed; `path` is as it was.
    """
    folder, name = os.path.split(os.fspath(path))
    part = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.part")
    # Created as `open` creates a file (0666 less the umask), where mkstemp's 0600 left a print file unreadable to
    # the rest of its owner's group
    handle = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as written:
            written.write(data)
        os.replace(part, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.remove(part)
        raise


def md5_of(storage: Storage, name: str) -> str:
    """The MD5 (hex) of the file `name` in `storage`, read through the storage."""
    digest = hashlib.md5(usedforsecurity=False)
    with storage.open(name, "rb") as stored:
        for chunk in stored.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def holds(storage: Storage, name: str, md5: str) -> bool:
    """Whether `storage` holds exactly the bytes whose MD5 is `md5` under `name`: the server's own checksum when it
    reports one that matches, else the bytes read back."""
    reported = getattr(storage, "stored_md5", None)
    try:
        return (reported is not None and reported(name) == md5) or md5_of(storage, name) == md5
    except FileNotFoundError:
        return False
