"""The media storage layer (qartsite.storage): media only through it, the S3 backend's names and links, and a bucket
that cannot be reached turned into one kind of error."""

from __future__ import annotations

import ast
import errno
import hashlib
import io
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from qartsite.storage import MediaUnavailable, holds, md5_of, write_whole
from tests.conftest import ON_S3_ONLY, disk_full_after

ROOT = Path(__file__).resolve().parents[2]
# The Django apps: everything that could touch media. generator/core never sees a stored file (it takes bytes).
APPS = ("qartsite", "generator", "campaigns")
STORAGE_LAYER = {"qartsite/settings.py", "qartsite/storage.py"}
FILE_FIELDS = {"image", "control_image", "init_image", "artwork"}


def media_path_uses(source: str) -> list[str]:
    """'line N: what' for each place `source` reaches media by a filesystem path: a file field's `.path`, a storage's
    `.path(...)`, or MEDIA_ROOT."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "path":
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in FILE_FIELDS or "storage" in name:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, (ast.Attribute, ast.Name, ast.Constant)) and "MEDIA_ROOT" in {
                getattr(node, "attr", None), getattr(node, "id", None), getattr(node, "value", None)}:
            found.append(f"line {node.lineno}: MEDIA_ROOT")
    return found


def test_it_is_the_only_way_the_apps_reach_media():
    # Media may be in a bucket on another host: open(job.init_image.path) works on one machine only.
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in STORAGE_LAYER or "/migrations/" in relative or relative.startswith("generator/core/"):
                continue
            offenders += [f"{relative} {use}" for use in media_path_uses(path.read_text())]
    assert offenders == []


@pytest.mark.parametrize("source", [
    "images.open_image(job.init_image.path)",
    "open(candidate.image.path, 'rb')",
    "Path(default_storage.path(name)).read_bytes()",
    "folder = settings.MEDIA_ROOT / 'generations'",
    "os.path.join(MEDIA_ROOT, name)",
])
def test_the_check_finds_a_filesystem_path_to_media(source):
    assert media_path_uses(source)


def test_the_check_lets_storage_reads_and_other_paths_be():
    assert media_path_uses("with job.init_image.open('rb') as f: f.read()\nrequest.path\nurlsplit(url).path") == []


@ON_S3_ONLY
def test_it_links_into_the_site_and_never_overwrites_a_name(media_storage):
    first = default_storage.save("generations/1/a.png", ContentFile(b"first"))
    second = default_storage.save("generations/1/a.png", ContentFile(b"second"))

    assert first == "generations/1/a.png" and second != first and second.startswith("generations/1/a_")
    with default_storage.open(first, "rb") as stored:
        assert stored.read() == b"first"
    assert default_storage.url(first) == "/media/generations/1/a.png"
    assert default_storage.stored_md5(second) == hashlib.md5(b"second").hexdigest()


class DiskFillsUp(ContentFile):
    """A file whose writing fails after its first part, as on a disk that fills up half-way."""

    def chunks(self, chunk_size=None):
        yield self.read(1000)
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_file_that_cannot_be_written_whole_leaves_nothing_behind(_media_root):
    # A drill's full disk: Django's storage left an empty or cut-short file under the name, and it kept the disk full.
    with pytest.raises(OSError, match="No space left"):
        default_storage.save("generations/1/a.png", DiskFillsUp(b"x" * 5000))

    assert [p.name for p in _media_root.rglob("*") if p.is_file()] == []
    assert default_storage.save("generations/1/a.png", ContentFile(b"whole")) == "generations/1/a.png"
    with default_storage.open("generations/1/a.png", "rb") as stored:
        assert stored.read() == b"whole"


def test_a_file_outside_media_is_written_whole_or_left_as_it_was(tmp_path):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "kept.json"
    write_whole(target, b"first")
    with disk_full_after(1000), pytest.raises(OSError):
        write_whole(target, b"y" * 5000)

    assert [p.name for p in target.parent.iterdir()] == ["kept.json"] and target.read_bytes() == b"first"
    write_whole(target, b"second")
    assert target.read_bytes() == b"second"


def test_a_file_outside_media_gets_the_modes_any_new_file_gets(tmp_path):
    umask = os.umask(0o022)
    try:
        write_whole(tmp_path / "poster.pdf", b"%PDF")
    finally:
        os.umask(umask)
    assert (tmp_path / "poster.pdf").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_a_file_takes_the_media_folders_group_as_with_djangos_storage(_media_root):
    # A shared MEDIA_ROOT (setgid, the web's and the workers' users in its group): Django's storage gives each file the
    # folder's group; FileSystemMediaStorage left the writer's own.
    other = next((gid for gid in [*os.getgroups(), 1] if gid != os.getegid()), None)
    try:
        os.chown(_media_root, -1, other)
    except (PermissionError, TypeError):
        pytest.skip("this user cannot give the media folder another group")
    name = default_storage.save("generations/1/grouped.png", ContentFile(b"x"))
    assert (_media_root / name).stat().st_gid == other


@ON_S3_ONLY
def test_it_says_a_missing_object_is_missing(media_storage):
    assert not default_storage.exists("nothing/here.png")
    for ask in (default_storage.open, default_storage.size, default_storage.get_modified_time):
        with pytest.raises(FileNotFoundError):
            ask("nothing/here.png")
    default_storage.delete("nothing/here.png")  # deleting what is not there is not an error


@ON_S3_ONLY
def test_it_reads_only_the_part_asked_for_and_looks_an_object_up_in_one_request(media_storage, monkeypatch):
    data = bytes(range(256)) * 4
    name = default_storage.save("generations/4/d.bin", ContentFile(data))
    client = default_storage.connection.meta.client
    asked = []
    monkeypatch.setattr(client, "get_object", lambda **kwargs: asked.append(kwargs) or type(client).get_object(
        client, **kwargs))
    with default_storage.open_part(name, 1000, 20) as part:
        assert part.read() == data[1000:1020]
    assert [call["Range"] for call in asked] == ["bytes=1000-1019"]  # not the whole object
    size, modified = default_storage.stat(name)
    assert (size, modified) == (len(data), default_storage.get_modified_time(name).timestamp())
    for ask in (default_storage.stat, lambda missing: default_storage.open_part(missing, 0, 1)):
        with pytest.raises(FileNotFoundError):
            ask("nothing/here.bin")


@ON_S3_ONLY
def test_a_missing_bucket_is_an_unavailable_storage_not_a_missing_file(media_storage, settings, monkeypatch):
    # A HEAD's 404 carries no error code: a typo in MEDIA_S3_BUCKET read as "the file is gone", and a worker failed
    # every job for good.
    from tests.conftest import use_missing_bucket

    bucket = use_missing_bucket(media_storage, settings, monkeypatch)
    for ask in (default_storage.exists, default_storage.open, default_storage.size, default_storage.get_modified_time,
                default_storage.stored_md5):
        with pytest.raises(MediaUnavailable, match=f"has no bucket “{bucket}”: check MEDIA_S3_BUCKET"):
            ask("generations/1/a.png")
    # Nor does a write make the bucket (SeaweedFS would): the upload is refused, not stored where no host looks.
    with pytest.raises(MediaUnavailable, match=f"has no bucket “{bucket}”"):
        default_storage.save("generations/1/a.png", ContentFile(b"x"))


@ON_S3_ONLY
def test_it_checks_that_a_storage_holds_the_very_bytes(media_storage):
    name = default_storage.save("generations/2/b.png", ContentFile(b"some bytes"))
    md5 = hashlib.md5(b"some bytes").hexdigest()

    assert md5_of(default_storage, name) == md5
    assert holds(default_storage, name, md5)
    assert not holds(default_storage, name, hashlib.md5(b"other bytes").hexdigest())
    assert not holds(default_storage, "generations/2/missing.png", md5)


def test_it_reads_the_bytes_back_where_the_server_reports_no_plain_md5(media_storage, monkeypatch):
    name = default_storage.save("generations/3/c.png", ContentFile(b"multipart, say"))
    md5 = hashlib.md5(b"multipart, say").hexdigest()
    if media_storage.kind == "s3":
        monkeypatch.setattr(type(default_storage._wrapped), "stored_md5", lambda self, name: None)
    assert holds(default_storage, name, md5)
    assert not holds(default_storage, name, "0" * 32)


@pytest.mark.parametrize("ask", ["open", "save", "exists", "size", "get_modified_time", "delete", "listdir", "stat",
                                 "open_part"])
def test_it_says_the_storage_is_unavailable_in_one_kind_of_error(unreachable_media, ask):
    arguments = {"save": ("generations/1/a.png", ContentFile(b"x")), "listdir": ("generations",),
                 "open_part": ("generations/1/a.png", 0, 10)}
    with pytest.raises(MediaUnavailable, match="The media storage could not .* “generations") as raised:
        getattr(default_storage, ask)(*arguments.get(ask, ("generations/1/a.png",)))
    assert isinstance(raised.value, OSError)  # so code that handles a missing or unreadable file handles this too
    assert "Could not connect to the endpoint URL" in str(raised.value)


def test_once_the_bucket_does_not_answer_calls_fail_at_once_until_a_quick_probe_finds_it(unreachable_media,
                                                                                          monkeypatch):
    # A frozen bucket held every web worker 3 x (3 + 20) s per image (a fault drill): short links waited behind them.
    from botocore.stub import Stubber
    from storages.backends.s3 import S3Storage

    from qartsite import storage

    with pytest.raises(MediaUnavailable, match="Could not connect to the endpoint URL"):
        default_storage.open("generations/1/a.png")
    bucket, asked = default_storage._wrapped, []
    AWAY = "Could not connect to the endpoint URL.*a moment ago; no call goes to it"  # the first call's reason
    original_open = S3Storage._open
    monkeypatch.setattr(S3Storage, "_open", lambda self, *a: asked.append(a) or original_open(self, *a))
    monkeypatch.setattr(S3Storage, "_save", lambda self, *a: pytest.fail("stored while the bucket is away"))
    with pytest.raises(MediaUnavailable, match=AWAY):
        default_storage.open("generations/1/a.png")
    with pytest.raises(MediaUnavailable, match=AWAY):
        default_storage.save("generations/1/b.png", ContentFile(b"x"))
    assert asked == []
    # The pause over: one quick probe, which still finds nothing listening, and the pause starts again.
    bucket._away_until = storage.time.monotonic() - 1
    with pytest.raises(MediaUnavailable, match="still does not answer"):
        default_storage.open("generations/1/a.png")
    assert asked == [] and bucket._away_until > storage.time.monotonic() + storage.AWAY_SECONDS - 5
    # The server answers the probe (any HTTP answer, a 403 here): calls go to the bucket again.
    with Stubber(bucket.probe_client(storage.PROBE_TIMEOUT)) as server:
        server.add_client_error("head_bucket", http_status_code=403, expected_params={"Bucket": "qart"})
        bucket._away_until = storage.time.monotonic() - 1
        with pytest.raises(MediaUnavailable, match="Could not connect to the endpoint URL"):  # asked, and refused
            default_storage.open("generations/1/a.png")
        server.assert_no_pending_responses()  # the probe asked
    assert len(asked) == 1


def test_a_bucket_that_does_not_answer_is_asked_attempts_times_within_gunicorns_timeout(frozen_bucket, monkeypatch):
    # botocore's `max_attempts` counts the retries, not the tries: a frozen bucket was asked 3 times, 10 s each, and an
    # image held its web worker 30.1 s, at gunicorn's 30 s timeout (a fault drill: the S3 server stopped, SIGSTOP).
    from django.core.files.storage import storages

    from qartsite import storage

    assert storage.ATTEMPTS * (storage.CONNECT_TIMEOUT + storage.READ_TIMEOUT) < 30
    monkeypatch.setattr(storage, "READ_TIMEOUT", 0.3)
    with pytest.raises(MediaUnavailable, match="Read timeout"):
        storages["default"].open("generations/1/a.png")
    assert len(frozen_bucket) == storage.ATTEMPTS


@contextmanager
def served_by(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """`with served_by(handler) as url:` a loopback HTTP server answering with `handler` (HTTPS with `tls`, a server
    context), at `url`; stopped after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def use_bucket_at(url: str, settings, monkeypatch) -> None:
    """The default storage is the bucket "qart" of the S3 server at `url`, built again from the settings."""
    from django.core.files.storage import storages

    from tests.conftest import use_s3

    use_s3(settings, monkeypatch, ENDPOINT_URL=url, BUCKET="qart", ACCESS_KEY_ID="qart-test",
           SECRET_ACCESS_KEY="qart-test-secret")
    storages._storages.pop("default", None)  # built again from the settings just set


@contextmanager
def bucket_served_by(handler: type[BaseHTTPRequestHandler], settings, monkeypatch,
                     tls: ssl.SSLContext | None = None) -> Iterator[None]:
    """`with bucket_served_by(handler, ...):` the default storage is a bucket "qart" of a loopback server answering
    with `handler` (`served_by`), built again from the settings; the server is stopped after."""
    with served_by(handler, tls) as url:
        use_bucket_at(url, settings, monkeypatch)
        yield


def web_storage(monkeypatch, **timeouts: float):
    """The default storage as a web process builds it (qartsite.web_process, as gunicorn loads qartsite.wsgi), with
    `timeouts` (the storage module's names) set, and boto's clients built before a test's clock starts (0.2-0.9 s)."""
    from django.core.files.storage import storages

    from qartsite import storage, web_process

    for name, seconds in timeouts.items():
        monkeypatch.setattr(storage, name, seconds)
    web_process.load(lambda: "the application")
    built = storages["default"]
    assert built.web
    built.connection, built.look_up_client  # noqa: B018
    return built


@pytest.mark.parametrize("ask", ["open", "exists", "stat", "save"])
def test_a_web_process_gives_a_bucket_that_does_not_answer_one_brief_look_up(frozen_bucket, monkeypatch, ask):
    # Two sync workers, each held 20 s by a frozen bucket (an image, an upload): every short link waited behind them
    # (a fault drill). A web process tries once, briefly; and every media request's first call, a look-up (a read's,
    # or an upload's of its bucket), waits less again: the first of each web worker waited WEB_READ_TIMEOUT.
    from qartsite import storage

    assert storage.WEB_ATTEMPTS * (storage.CONNECT_TIMEOUT + storage.WEB_READ_TIMEOUT) <= 8
    assert storage.WEB_LOOK_UP_TIMEOUT < storage.WEB_READ_TIMEOUT
    # A worker's and a web process's reads are told apart from the look-up by the time they take.
    bucket = web_storage(monkeypatch, WEB_LOOK_UP_TIMEOUT=0.3, WEB_READ_TIMEOUT=1.5, READ_TIMEOUT=3.0)
    arguments = {"save": ("generations/1/b.png", ContentFile(b"x"))}
    started = time.monotonic()
    with pytest.raises(MediaUnavailable, match="Read timeout"):
        getattr(bucket, ask)(*arguments.get(ask, ("generations/1/a.png",)))
    assert len(frozen_bucket) == 1 and time.monotonic() - started < 1.0


def test_a_web_process_upload_waits_only_the_look_up_while_its_bucket_is_still_seen(frozen_bucket, monkeypatch):
    # The bucket's own look-up (`check_bucket`) is skipped for BUCKET_SEEN_SECONDS after it answered: a bucket frozen
    # meanwhile meets the upload's look-up of its name (names are never overwritten) first, and the breaker refuses
    # the PUT at once, rather than the PUT waiting out WEB_READ_TIMEOUT.
    bucket = web_storage(monkeypatch, WEB_LOOK_UP_TIMEOUT=0.3, WEB_READ_TIMEOUT=1.5, READ_TIMEOUT=3.0)
    bucket._bucket_seen_at = time.monotonic()
    started = time.monotonic()
    with pytest.raises(MediaUnavailable, match="could not look up “generations/1/b.png”: Read timeout"):
        bucket.save("generations/1/b.png", ContentFile(b"x"))
    assert len(frozen_bucket) == 1 and time.monotonic() - started < 1.0
    with pytest.raises(MediaUnavailable, match="a moment ago"):
        bucket.save("generations/1/b.png", ContentFile(b"x"))
    assert len(frozen_bucket) == 1


def test_a_storage_built_after_a_web_process_loaded_keeps_a_workers_waits(frozen_bucket, monkeypatch):
    # The web's waits were a class-wide flag: every storage built after a web process loaded (in a test, every later
    # test's) had them too, and tests of a worker's storage counted its calls wrong.
    from django.core.files.storage import storages

    from qartsite import storage

    web = web_storage(monkeypatch)
    storages._storages.pop("default")  # built again, as the next test's storage is
    worker = storages["default"]
    assert web.web and not worker.web and worker.look_up_client is worker.connection.meta.client
    assert (worker.client_config.read_timeout, worker.client_config.retries["total_max_attempts"]) == (
        storage.READ_TIMEOUT, storage.ATTEMPTS)
    assert (web.client_config.read_timeout, web.client_config.retries["total_max_attempts"]) == (
        storage.WEB_READ_TIMEOUT, storage.WEB_ATTEMPTS)

class _SlowS3(BaseHTTPRequestHandler):
    """A bucket that is slow but alive, as one busy streaming a large print file: it answers a look-up (HEAD) at once,
    and a read (GET, whole or a range) only after `PAUSE`, then sends the object in four pieces `PAUSE` apart."""

    protocol_version = "HTTP/1.1"
    PAUSE = 0.6
    BODY = bytes(range(256)) * 64

    def _headers(self, status: int, length: int, extra: dict | None = None) -> None:
        self.send_response(status)
        for header, value in {"Content-Length": str(length), "ETag": '"slow"', "Content-Type": "image/png",
                              "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", **(extra or {})}.items():
            self.send_header(header, value)
        self.end_headers()

    def do_HEAD(self):  # noqa: N802 - http.server's names
        self._headers(200, 0 if self.path.split("?")[0].rstrip("/") == "/qart" else len(self.BODY))

    def do_GET(self):  # noqa: N802
        body, status, extra = self.BODY, 200, {}
        if "Range" in self.headers:
            start, end = (int(at) for at in self.headers["Range"].removeprefix("bytes=").split("-"))
            body, status = body[start:end + 1], 206
            extra = {"Content-Range": f"bytes {start}-{end}/{len(self.BODY)}"}
        time.sleep(self.PAUSE)
        self._headers(status, len(body), extra)
        quarter = -(-len(body) // 4)
        for at in range(0, len(body), quarter):
            self.wfile.write(body[at:at + quarter])
            self.wfile.flush()
            time.sleep(self.PAUSE)

    def log_message(self, *args) -> None:
        pass


def test_a_web_process_reads_a_slow_bucket_whole_past_the_look_ups_timeout(settings, monkeypatch):
    # The look-up's short wait must not cut short a bucket that answers, only slowly: its first byte and each piece
    # after come later than WEB_LOOK_UP_TIMEOUT, within WEB_READ_TIMEOUT.
    with bucket_served_by(_SlowS3, settings, monkeypatch):
        bucket = web_storage(monkeypatch, WEB_LOOK_UP_TIMEOUT=_SlowS3.PAUSE / 3, WEB_READ_TIMEOUT=_SlowS3.PAUSE * 3)
        assert bucket.stat("print-files/poster.png")[0] == len(_SlowS3.BODY)
        with bucket.open("print-files/poster.png") as whole:
            assert whole.read() == _SlowS3.BODY
        with bucket.open_part("print-files/poster.png", 100, 5000) as part:
            assert part.read() == _SlowS3.BODY[100:5100]


class _RecordingS3(BaseHTTPRequestHandler):
    """Just enough of an S3 server for one save: the bucket is there, no object is, every PUT is taken; each request's
    method and headers noted in `seen` (a class attribute the test sets)."""

    protocol_version = "HTTP/1.1"  # as S3: keep-alive, and "100 Continue" answered where a client asks for it
    seen: list = []

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("ETag", '"0"')
        self.end_headers()

    def do_HEAD(self):  # noqa: N802 - http.server's names
        self.seen.append(("HEAD", dict(self.headers)))
        self._answer(200 if self.path.rstrip("/") == "/qart" else 404)

    def do_PUT(self):  # noqa: N802
        self.seen.append(("PUT", dict(self.headers)))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(200)

    def log_message(self, *args) -> None:
        pass


def test_uploads_send_their_body_at_once_without_waiting_for_a_continue(settings, monkeypatch):
    # botocore asks for "Expect: 100-continue" on every upload: a round trip more before each file's body.
    from django.core.files.storage import storages

    _RecordingS3.seen = []
    with bucket_served_by(_RecordingS3, settings, monkeypatch):
        name = storages["default"].save("candidate-00-seed1.png", ContentFile(b"\x89PNG" + bytes(2048)))
    puts = [headers for method, headers in _RecordingS3.seen if method == "PUT"]
    assert name == "candidate-00-seed1.png" and len(puts) == 1
    assert "Expect" not in puts[0] and int(puts[0]["Content-Length"]) == 2052


def test_large_uploads_still_ask_the_server_before_their_body():
    # A print file's parts: a server that refuses one says so before the body, not by closing the connection.
    from types import SimpleNamespace

    from qartsite import storage

    put = SimpleNamespace(http={"method": "PUT"})
    small = {"body": io.BytesIO(bytes(1024)), "headers": {}}
    large = {"body": io.BytesIO(bytes(storage.EXPECT_CONTINUE_BYTES)), "headers": {}}
    storage._expect_continue_if_large(put, small)
    storage._expect_continue_if_large(put, large)
    assert "Expect" not in small["headers"] and large["headers"]["Expect"] == "100-continue"


class _Bucket(BaseHTTPRequestHandler):
    """A server with the bucket "qart" and nothing in it; each request line noted in `seen` (set by the test). As a
    proxy it answers for the server it is asked about."""

    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_HEAD(self):  # noqa: N802 - http.server's names
        self.seen.append(self.requestline)
        self.send_response(200 if self.path.split("?")[0].rstrip("/").endswith("/qart") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class _Refusing(_Bucket):
    """A server that refuses every request (403): it is up all the same."""

    def do_HEAD(self):  # noqa: N802
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()


def private_ca(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 that no public CA signed (it is its own CA, as a company's private one), made by
    openssl in `folder`: its file, for the client to trust, and a server context that presents it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl here to make a certificate with")
    certificate, key = folder / "ca.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=qart test CA",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return certificate, context


@pytest.mark.parametrize("trusted_by", ["AWS_S3_VERIFY", "AWS_CA_BUNDLE", None])
def test_the_probe_trusts_the_ca_boto_is_given(settings, monkeypatch, tmp_path, trusted_by):
    # The probe was a bare HTTPS request that knew nothing of the private CA boto trusts: /healthz said such a bucket
    # did not answer, every probe after found it away again, and the media sweep (which asks it first) never ran.
    from django.core.files.storage import storages

    certificate, tls = private_ca(tmp_path)
    if trusted_by == "AWS_S3_VERIFY":  # django-storages' setting: the storage's `verify`
        settings.AWS_S3_VERIFY = str(certificate)
    elif trusted_by == "AWS_CA_BUNDLE":  # boto's own variable
        monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate))
    _Bucket.seen = []
    with bucket_served_by(_Bucket, settings, monkeypatch, tls=tls):
        bucket = storages["default"]
        if trusted_by is None:  # the server's certificate is really checked: trusted by nothing, it is refused
            assert bucket.answers().startswith("The media storage does not answer: SSL validation failed")
            assert _Bucket.seen == []
            return
        bucket.reachable(ask_now=True)
        assert bucket.answers() == "" and _Bucket.seen == ["HEAD /qart HTTP/1.1"] * 2


@pytest.mark.parametrize("proxied_by", ["AWS_S3_PROXIES", "HTTP_PROXY"])
def test_the_probe_goes_through_the_proxy_boto_is_given(settings, monkeypatch, proxied_by):
    # A bucket reached only through a proxy (no other way out of the network): the bare request went straight to it.
    from django.core.files.storage import storages

    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    _Bucket.seen = []
    with served_by(_Bucket) as proxy:
        if proxied_by == "AWS_S3_PROXIES":  # django-storages' setting: the storage's client config
            settings.AWS_S3_PROXIES = {"http": proxy}
        else:
            monkeypatch.setenv("HTTP_PROXY", proxy)
        use_bucket_at("http://s3.invalid:9000", settings, monkeypatch)  # a name no resolver knows (RFC 2606)
        bucket = storages["default"]
        bucket.reachable(ask_now=True)
        assert bucket.answers() == ""
    assert _Bucket.seen == ["HEAD http://s3.invalid:9000/qart HTTP/1.1"] * 2


def test_a_server_that_refuses_the_probe_is_up(settings, monkeypatch):
    # Any HTTP answer says the server is up (the keys may not be allowed to ask about the bucket): calls go to it.
    from django.core.files.storage import storages

    from qartsite import storage

    with bucket_served_by(_Refusing, settings, monkeypatch):
        bucket = storages["default"]
        bucket._no_answer("The media storage did not answer: a moment ago")
        bucket._away_until = storage.time.monotonic() - 1  # the pause over: the next call probes
        bucket.reachable()
        assert bucket._away_until == 0.0
        bucket.reachable(ask_now=True)
        assert bucket.answers() == ""


def test_a_frozen_server_is_found_away_by_one_try_within_the_probes_timeout(frozen_bucket, monkeypatch):
    from django.core.files.storage import storages

    from qartsite import storage

    monkeypatch.setattr(storage, "PROBE_TIMEOUT", 0.3)
    bucket = storages["default"]
    bucket.probe_client(0.3)  # boto's client built before the clock starts
    started = time.monotonic()
    with pytest.raises(MediaUnavailable, match="does not answer: Read timeout on endpoint URL"):
        bucket.reachable(ask_now=True)
    assert time.monotonic() - started < 0.8 and len(frozen_bucket) == 1  # no retry
    with pytest.raises(MediaUnavailable, match="a moment ago"):  # the other calls fail at once
        bucket.reachable()


def test_a_probe_that_cannot_be_sent_says_why_and_holds_no_call_back(settings, monkeypatch, tmp_path):
    # No credentials anywhere: boto sends nothing, so nothing is known of the server and no pause starts; each call
    # says the same itself.
    from django.core.files.storage import storages

    from tests.conftest import free_port, use_s3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    use_s3(settings, monkeypatch, ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", BUCKET="qart")
    storages._storages.pop("default", None)
    bucket = storages["default"]
    with pytest.raises(MediaUnavailable, match="^The media storage could not be asked: Unable to locate credentials$"):
        bucket.reachable(ask_now=True)
    assert bucket._away_until == 0.0
    assert bucket.answers() == "The media storage could not be asked: Unable to locate credentials"


def test_the_probes_client_is_kept_per_thread_and_timeout_and_tries_once(unreachable_media):
    from django.core.files.storage import storages

    bucket = storages["default"]
    client = bucket.probe_client(1)
    assert bucket.probe_client(1) is client and bucket.probe_client(2) is not client
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (1, 1, 1)
    assert client.meta.endpoint_url == bucket.connection.meta.client.meta.endpoint_url
    other_threads = []
    thread = threading.Thread(target=lambda: other_threads.append(bucket.probe_client(1)))
    thread.start()
    thread.join()
    assert other_threads[0] is not client  # boto's sessions and clients are not shared across threads


def test_a_server_error_is_told_from_a_refusal():
    # A bucket just back from an outage answers 500 ("please try again") for a moment; a 403 stays a 403. A job's
    # second store tries the first again (`job_files._store_again`), not the second.
    from botocore.exceptions import ClientError

    from qartsite.storage import bucket_errors

    def refused(status: int, code: str) -> MediaUnavailable:
        error = ClientError({"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}},
                            "PutObject")
        with pytest.raises(MediaUnavailable) as raised, bucket_errors("store", "generations/1/a.png"):
            raise error
        return raised.value

    assert refused(500, "InternalError").passing and refused(503, "SlowDown").passing
    assert not refused(403, "AccessDenied").passing and not refused(400, "InvalidRequest").passing
