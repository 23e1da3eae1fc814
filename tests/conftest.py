"""Suite-wide fixtures. Kept light: anything specific to one area belongs in that area's tests."""

from __future__ import annotations

import os
import resource
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

# The media tests that run on the S3 server too: `make test` runs them against SeaweedFS once, in its PostgreSQL pass.
S3 = pytest.param("s3", marks=pytest.mark.s3, id="s3")
ON_S3_ONLY = pytest.mark.parametrize("media_storage", [S3], indirect=True)
# Where that server is: QART_TEST_S3_<name>, exported by scripts/test.sh.
S3_SERVER = ("ENDPOINT_URL", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploads and generated images go to a per-test folder, never to var/media."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    return media


@dataclass(frozen=True)
class MediaStorage:
    """Where a test's media lives, and the environment a worker process needs to store it in the same place."""

    kind: str
    env: dict[str, str]


def use_s3(settings, monkeypatch, **variables: str) -> MediaStorage:
    """Media in a bucket, configured as production configures it: MEDIA_S3_<name>=<value> for each of `variables`,
    read by the settings' own `s3_media_options`."""
    from qartsite import settings as site_settings

    env = {"MEDIA_STORAGE": "s3", "MEDIA_S3_REGION": "us-east-1", "MEDIA_S3_ADDRESSING_STYLE": "path",
           **{f"MEDIA_S3_{name}": value for name, value in variables.items()}}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = {"BACKEND": "qartsite.storage.S3MediaStorage", "OPTIONS": site_settings.s3_media_options()}
    settings.STORAGES = {**settings.STORAGES, "default": s3, "s3": s3}
    return MediaStorage("s3", env)


def use_missing_bucket(media_storage: MediaStorage, settings, monkeypatch) -> str:
    """`media_storage`'s S3 server with MEDIA_S3_BUCKET naming a bucket that is not there (a typo); returns the name."""
    bucket = f"typo-{uuid.uuid4().hex[:12]}"
    server = {name: media_storage.env[f"MEDIA_S3_{name}"] for name in S3_SERVER}
    use_s3(settings, monkeypatch, **{**server, "BUCKET": bucket})
    return bucket


@pytest.fixture(params=["filesystem", S3])
def media_storage(request, settings, monkeypatch, _media_root) -> MediaStorage:
    """Each test that uses this runs twice: on the filesystem, and on make test's S3 server (SeaweedFS on loopback),
    under a folder of the bucket of its own. Without the server the S3 run skips, except in CI, where it fails."""
    if request.param == "filesystem":
        return MediaStorage("filesystem", {"MEDIA_STORAGE": "filesystem", "MEDIA_ROOT": str(_media_root)})
    server = {name: os.environ.get(f"QART_TEST_S3_{name}", "") for name in S3_SERVER}
    if not all(server.values()):
        missing = "no S3 server: QART_TEST_S3_* are not set (make test starts SeaweedFS for its PostgreSQL pass)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; required in CI")
        pytest.skip(missing)
    return use_s3(settings, monkeypatch, **server, PREFIX=f"test-{uuid.uuid4().hex[:12]}")


def free_port() -> int:
    """A loopback port nothing listens on (free when asked): for a server a test starts, or one that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def password_redis(tmp_path):
    """A redis-server of the test's own that asks for a password (the drills' `RedisServer`), stopped after the test;
    skipped without redis-server, except in CI."""
    import shutil

    from tests.drills.conftest import RedisServer, required

    if shutil.which("redis-server") is None:
        required("no redis-server here (make test installs it)")
    server = RedisServer(tmp_path, password=f"right-{uuid.uuid4().hex[:8]}")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback server that takes connections and never answers, as a server stopped mid-way (SIGSTOP in a fault
    drill) does: yields its port and the connections it took, a list; all closed after the test."""
    server, taken = socket.create_server(("127.0.0.1", 0)), []

    def take_and_never_answer() -> None:
        while True:
            try:
                taken.append(server.accept()[0])  # kept open, never read
            except OSError:
                return

    threading.Thread(target=take_and_never_answer, daemon=True).start()
    try:
        yield server.getsockname()[1], taken
    finally:
        server.close()
        for connection in taken:
            connection.close()


@pytest.fixture
def stalled_queues(settings, monkeypatch, silent_server) -> list[socket.socket]:
    """Every RQ queue's Redis stalled (a server that takes connections and never answers: SIGSTOP in a fault drill),
    reached as a web process reaches it (`settings.WEB_REDIS_TIMEOUTS`: a second); returns the connections it took."""
    import django_rq

    from qartsite.settings import with_timeouts

    port, taken = silent_server
    url = with_timeouts(f"redis://127.0.0.1:{port}/0", settings.WEB_REDIS_TIMEOUTS)
    for config in django_rq.settings.QUEUES.values():
        monkeypatch.setitem(config, "URL", url)
    return taken


@pytest.fixture
def cache_away():
    """`with cache_away():` Django's cache is a Redis where nothing listens, as when CACHE_URL's server is down."""
    from django.test import override_settings

    return lambda: override_settings(CACHES={"default": {
        "BACKEND": "qartsite.redis_cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        "OPTIONS": {"socket_connect_timeout": 1}}})


@contextmanager
def disk_full_after(size: int) -> Iterator[None]:
    """`with disk_full_after(n):` this process's writes past n bytes of a file fail as a full disk makes them fail
    (the kernel refuses them: EFBIG, Python ignoring SIGXFSZ), whichever way the code under test writes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.fixture
def unreachable_media(settings, monkeypatch) -> MediaStorage:
    """Media in a bucket whose server cannot be reached (nothing listens on its port): the storage is down."""
    return use_s3(settings, monkeypatch, ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", BUCKET="qart",
                  ACCESS_KEY_ID="qart-test", SECRET_ACCESS_KEY="qart-test-secret")


@pytest.fixture
def frozen_bucket(settings, monkeypatch, silent_server) -> Iterator[list[socket.socket]]:
    """A bucket on a server that takes connections and never answers (`silent_server`); yields the connections it
    took, a list, once the default storage is built again from settings naming it."""
    from django.core.files.storage import storages

    port, asked = silent_server
    use_s3(settings, monkeypatch, ENDPOINT_URL=f"http://127.0.0.1:{port}", BUCKET="qart",
           ACCESS_KEY_ID="qart-test", SECRET_ACCESS_KEY="qart-test-secret")
    storages._storages.pop("default", None)  # built again (by the test) from the settings just set
    yield asked


@pytest.fixture(autouse=True)
def _web_redis_waits_put_back(monkeypatch):
    """The queues' Redis URLs and the cache's options as settings made them, after each test: a test that loads the
    web process (`qartsite.wsgi`, `web_process.load`) shortens their waits for the rest of the process
    (`queues.limit_web_redis`). The cache's too: with CACHE_URL set, every later test's cache waited a second."""
    import django_rq
    from django.conf import settings

    for config in django_rq.settings.QUEUES.values():
        monkeypatch.setitem(config, "URL", config["URL"])
    cache = settings.CACHES["default"]
    if "OPTIONS" in cache:
        monkeypatch.setitem(cache, "OPTIONS", cache["OPTIONS"])


@pytest.fixture(autouse=True)
def _redis_breakers_shut():
    """Every Redis breaker shut after each test (`queues.redis_outage`): a test whose Redis did not answer must not
    leave the next test's Redis skipped for a few seconds."""
    yield
    queues = sys.modules.get("qartsite.queues")
    if queues is not None:
        queues._redis_outages.clear()


@pytest.fixture(autouse=True)
def _scan_buffer_keys(settings, tmp_path):
    """Scans of short links go to this test's own Redis keys and spool folder: never to the real stream (a running
    drainer would store them in its database) nor to var/spool."""
    settings.QART = {**settings.QART, "REDIS_PREFIX": f"qart-test-{uuid.uuid4().hex[:12]}:",
                     "SPOOL_DIR": tmp_path / "spool"}


@pytest.fixture
def team_users(db):
    """The shared cast for access tests: an owner and a teammate (editor) and a viewer of one team, and an
    outsider who owns another team."""
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model

    from qartsite.models import Membership, Team

    users = get_user_model().objects
    team, other = Team.objects.create(name="Acme"), Team.objects.create(name="Rival")
    cast = SimpleNamespace(
        team=team,
        other_team=other,
        owner=users.create_user("owner", password="pw-owner-1"),
        teammate=users.create_user("teammate", password="pw-teammate-1"),
        viewer=users.create_user("viewer", password="pw-viewer-1"),
        outsider=users.create_user("outsider", password="pw-outsider-1"),
    )
    Membership.objects.create(team=team, user=cast.owner, role="owner")
    Membership.objects.create(team=team, user=cast.teammate, role="editor")
    Membership.objects.create(team=team, user=cast.viewer, role="viewer")
    Membership.objects.create(team=other, user=cast.outsider, role="owner")
    return cast


def staff(*users):
    """Make each of `users` staff (the labeling and report pages and the admin's door need no more); returns the
    first, for `logged_in(staff(user))`."""
    for user in users:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return users[0]


def make_staff(*users) -> None:
    """Staff with every permission Django has: only the team scoping can keep them out."""
    from django.contrib.auth.models import Permission

    permissions = list(Permission.objects.all())
    for user in users:
        user.is_staff = True
        user.save()
        user.user_permissions.set(permissions)


@pytest.fixture(autouse=True)
def _no_remembered_engine_failure():
    """`warm_engines.get_engine` remembers a failed load for the process: each test starts without one (a test's
    broken weights must not fail another test's job)."""
    warm_engines = sys.modules.get("generator.warm_engines")  # not imported yet: nothing remembered, no import paid
    if warm_engines is not None:
        warm_engines._failed_loads.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests make many users; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _link_lookups_in_the_request(settings):
    """Short links look up in the request's own thread: a lookup thread has a connection of its own, which does not
    see what a test wrote inside its transaction. The bounded lookup is tested with its own setting
    (tests/campaigns/test_redirects.py, TestHungDatabase), and the drills run it in gunicorn."""
    settings.QART = {**settings.QART, "LINK_LOOKUP_SECONDS": 0}


@pytest.fixture
def verifications(db, monkeypatch) -> list[bool]:
    """Each scan verification (`scan.verify`: the slow part of judging or restamping artwork) made during the test,
    as whether it ran inside a transaction the code opened (the one every `django_db` test runs in not counted): an
    edit's locks (`campaigns.models.locked_copy`) are held until its transaction ends."""
    from django.db import connection

    from generator.core.codes import scan

    outer, verify, seen = len(connection.atomic_blocks), scan.verify, []

    def recorded(*args, **kwargs):
        seen.append(len(connection.atomic_blocks) > outer)
        return verify(*args, **kwargs)

    monkeypatch.setattr(scan, "verify", recorded)
    return seen


@pytest.fixture
def enqueued(monkeypatch) -> list:
    """Generation jobs handed to the queue, recorded instead of sent (real queueing: tests/generator/test_jobs.py);
    the queue takes them (`jobs.queue_refusal`) without a Redis being asked."""
    calls: list = []
    monkeypatch.setattr("generator.jobs.enqueue_generation", calls.append)
    monkeypatch.setattr("generator.jobs.queue_refusal", lambda operator=False: None)
    return calls


@pytest.fixture
def queue_away(monkeypatch):
    """The generation queue's Redis is down: its URL names a port where nothing listens (django-rq reads the URL at
    every `get_queue`)."""
    import django_rq

    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL",
                        f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=1")


@pytest.fixture
def queue_refuses_password(monkeypatch, password_redis):
    """The generation queue's Redis asks for another password than REDIS_URL's (a real redis-server with
    `--requirepass`); the server, whose `port` the messages name."""
    import django_rq

    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", password_redis.url_with("wrong-password"))
    return password_redis


@pytest.fixture
def fresh_cache():
    """An empty cache before and after the test: generation rates are counted in it, and it outlives a test's
    database rollback."""
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()


class SlowCache:
    """A cache whose reads take a moment: concurrent read-modify-writes of one entry then surely overlap."""

    def __init__(self, cache) -> None:
        self.cache = cache

    def get(self, *args, **kwargs):
        value = self.cache.get(*args, **kwargs)
        time.sleep(0.002)
        return value

    def __getattr__(self, name: str):
        return getattr(self.cache, name)


def live_queue(name: str):
    """The real RQ queue `name` on the Redis the suite runs against; without that Redis the test is skipped (in CI
    it fails)."""
    import django_rq
    from redis.exceptions import RedisError

    queue = django_rq.get_queue(name)
    try:
        queue.connection.ping()
    except RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"no Redis at {os.environ.get('REDIS_URL', 'the default URL')} (make test starts one)")
    return queue


@pytest.fixture
def print_queue(monkeypatch):
    """The real queue large print files go to (`print_builds.QUEUE`), emptied before and after the test, with a
    worker counted on it (the test plays the worker: it runs the queued `build` itself). The test's own
    `monkeypatch` does it, so that a test changing the same again is undone in order."""
    from campaigns import print_builds

    queue = live_queue(print_builds.QUEUE)
    queue.empty()
    monkeypatch.setattr(print_builds, "workers_on", lambda queue: 1)
    monkeypatch.setattr(print_builds, "INLINE_PIXELS", 1000)  # every raster is large
    yield queue
    queue.empty()


# How long `at_once` waits for a step a request takes milliseconds for: long, so that a loaded machine (CI runs two
# passes side by side) is never taken for a failure; a real hang still fails, with a message.
WAIT = 60


def at_once(monkeypatch, pause_after: tuple[object, str], first: Callable[[], int],
            second: Callable[[], int], before: bool = False) -> list[int]:
    """Two requests at once, each in a thread of its own (and so a connection of its own: tests marked
    `django_db(transaction=True)`). `first()` pauses just after it calls `pause_after` (an object and the name of
    one of its functions; `before`: just before it calls it); `second()` runs meanwhile, or waits for a lock `first`
    holds; then `first` goes on. Their status codes, first's then second's."""
    checked, resume = threading.Event(), threading.Event()
    owner, name = pause_after
    original = getattr(owner, name)

    def pausing(*args, **kwargs):
        if before and threading.current_thread().name == "first":
            checked.set()
            resume.wait(WAIT)
        found = original(*args, **kwargs)
        if not before and threading.current_thread().name == "first":
            checked.set()
            resume.wait(WAIT)
        return found

    monkeypatch.setattr(owner, name, pausing)
    codes, errors = {}, []

    def run(tag, send):
        from django.db import connection

        try:
            codes[tag] = send()
        except BaseException as exc:  # raised again in the test's own thread, below
            errors.append(exc)
        finally:
            connection.close()

    one = threading.Thread(target=run, args=("first", first), name="first")
    one.start()
    assert checked.wait(WAIT), f"the first request did not reach {name} within {WAIT} s"
    two = threading.Thread(target=run, args=("second", second), name="second")
    two.start()
    two.join(1)  # without a lock it is done by now; with one it waits for the first
    resume.set()
    one.join(WAIT)
    two.join(WAIT)
    assert not one.is_alive() and not two.is_alive(), f"a request did not end within {WAIT} s"
    if errors:
        raise errors[0]
    return [codes.get("first"), codes.get("second")]
