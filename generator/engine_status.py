"""Which engines this site can serve, from settings and from what the generation workers say about themselves.

The web process never imports torch and never asks its own host about a GPU: the GPUs live on the worker hosts.
Each worker (`generator.worker.GenerationWorker`) records its device, model and readiness in Redis under
`qart:engine:<worker name>` for REPORT_TTL seconds and a thread of the worker refreshes it every REPORT_REFRESH
seconds for as long as the worker lives (`kept_alive`); a worker that stops deletes its key, one that dies lets it
expire within REPORT_TTL (15 s), wherever the reader runs. The report names the worker's process too
(`processes.process_token`): a reader on the worker's own host drops a killed worker's report at once
(`processes.holder_gone`). The generation page and the API's default engine read those records here.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields

import django_rq
from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError

from generator.jobs import QUEUE
from generator.models import GenerationJob
from generator.processes import holder_gone, process_token
from qartsite import queues

log = logging.getLogger(__name__)

HALFTONE = GenerationJob.Engine.HALFTONE.value
DIFFUSION = GenerationJob.Engine.DIFFUSION.value
KEY_PREFIX = "qart:engine:"
# A worker's report lives this long unless its thread refreshes it: a worker killed while loading (minutes when
# compiling on a cold cache), while idle or mid-job drops off the pages within REPORT_TTL seconds, also for a reader on
# another host, which cannot see its process. (RQ's heartbeat comes only every ~7 minutes on an idle worker: the report
# it kept alive promised an engine for 8 minutes after a kill; then a 90 s report said "ready" for 60 to 90 s after a
# SIGKILL, and marketers submitted to a worker that was gone.) The price is one EXPIRE per worker every REPORT_REFRESH
# seconds; the thread that sends it runs through loading and jobs alike, and two refreshes may be missed (a Redis
# blip) before the report lapses; a lapsed one is recorded again at the next refresh (`refresh`).
REPORT_TTL = 15
REPORT_REFRESH = 5
NO_WEIGHTS_NOTE = (
    "No worker here has diffusion model weights, so the diffusion engine could only draw noise with its tiny "
    "test model. The halftone engine needs neither a GPU nor weights: it draws the code into your picture."
)


@dataclass
class WorkerReport:
    """What one worker says about itself."""

    worker: str  # RQ's worker name
    host: str
    state: str  # "loading", "ready" or "unavailable" (its engine could not load; `error` says why)
    device: str = ""  # "cuda", "cuda:0,cuda:1", "cpu"...
    model: str = ""  # the base model (hub id or path); "" while loading an unnamed default
    tiny: bool = False  # the tiny test model: images are noise
    error: str = ""
    since: str = ""  # ISO time of this state
    # Ready and compiled: the shapes it compiled at start, e.g. ["768x8", "768x8 img2img"] (`diffusion.Shape.label`);
    # empty for an engine that is not compiled. Reports from before this field read back with it empty.
    shapes: list[str] = field(default_factory=list)
    # The RQ queues it takes jobs from ("gpu", "default"); empty in reports from before this field.
    queues: list[str] = field(default_factory=list)
    # Its process (`processes.process_token`), for a reader on its host to tell it killed; "" where /proc does not say
    # and in reports from before this field (those lapse after REPORT_TTL).
    process: str = ""

    @property
    def gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def draws_pictures(self) -> bool:
        return self.state in ("loading", "ready") and not self.tiny


REPORT_FIELDS = frozenset(f.name for f in fields(WorkerReport))


def record(connection, report: WorkerReport, ttl: int) -> None:
    """Store `report` (called by the worker) for `ttl` seconds; its heartbeat extends it with `refresh`."""
    report.since = report.since or timezone.now().isoformat()
    report.host = report.host or socket.gethostname()
    report.process = report.process or process_token()
    connection.set(KEY_PREFIX + report.worker, json.dumps(asdict(report)), ex=max(1, int(ttl)))


def refresh(connection, worker: str, ttl: int, report: Callable[[], WorkerReport | None] | None = None) -> None:
    """Extend `worker`'s report by `ttl` seconds; where Redis no longer has it (restarted without its data), record
    `report()` again, unless that is None (the worker has stopped and deleted it)."""
    if not connection.expire(KEY_PREFIX + worker, max(1, int(ttl))) and report is not None:
        current = report()
        if current is not None:
            record(connection, current, ttl)


@contextmanager
def kept_alive(connection, worker: str, ttl: int | None = None, every: float | None = None,
               report: Callable[[], WorkerReport | None] | None = None):
    """Refresh `worker`'s report for `ttl` seconds (REPORT_TTL by default) every `every` seconds (REPORT_REFRESH by
    default) while the block runs (the worker's whole life: loading its engine, waiting for jobs and running them).
    With `report`, a report Redis lost is recorded again: after a Redis restart the page said "No generation worker is
    running" beside a worker taking jobs, until that worker was restarted."""
    stop = threading.Event()
    ttl = REPORT_TTL if ttl is None else ttl
    every = REPORT_REFRESH if every is None else every

    def beat() -> None:
        while not stop.wait(every):
            try:
                refresh(connection, worker, ttl, report)
            except RedisError as exc:
                log.warning("Could not refresh this worker's report: %s", exc)

    thread = threading.Thread(target=beat, name="qart-report-keepalive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def forget(connection, worker: str) -> None:
    connection.delete(KEY_PREFIX + worker)


def live_workers() -> list[WorkerReport] | None:
    """Every live worker's report, by name; None when Redis cannot be reached (then nobody knows). A Redis that did
    not answer is not asked again for a few seconds (`queues.breaker`): the generation page asks four times a
    render, and a stalled Redis made each wait out its timeout. A report whose worker's process, on this host, is gone
    (SIGKILLed: the out-of-memory killer) is left out at once rather than when it expires."""
    return read_workers()[0]


def read_workers(operator: bool = False) -> tuple[list[WorkerReport] | None, str]:
    """`live_workers`, and when Redis refused the site's password the page's words for it
    (`queues.password_refused_on_page`; where Redis is only for an `operator`), else "".

    Returns:
        `tuple[list[WorkerReport] | None, str]`: the reports (None when unknown) and the refusal's words.
    """
    connection = django_rq.get_connection(QUEUE)
    try:
        with queues.breaker(connection):
            keys = sorted(connection.scan_iter(match=KEY_PREFIX + "*", count=100))
            values = connection.mget(keys) if keys else []
    except queues.RedisSkipped:
        return None, ""
    except RedisError as exc:
        # A refused password is logged there with where Redis is; it is not "right now": no wait mends it
        refused = queues.password_refused_on_page(connection, exc, "the job queue (Redis)", operator)
        if refused is None:
            log.warning("Could not read the workers' reports: %s", exc)
        return None, refused or ""
    reports = []
    for value in values:
        if value is None:  # expired between SCAN and MGET
            continue
        try:
            # Known fields only: during a rolling deploy a newer worker's report may carry fields this code lacks.
            report = WorkerReport(**{k: v for k, v in json.loads(value).items() if k in REPORT_FIELDS})
        except (TypeError, ValueError, AttributeError):
            log.warning("Ignoring an unreadable worker report: %r", value[:200])
            continue
        if not holder_gone(report.process):
            reports.append(report)
    return reports, ""


def loading_on(queue: str) -> bool:
    """Whether a worker that will take jobs from `queue` is loading its engine now: RQ registers a worker only once its
    engine is loaded (seconds on a CPU, minutes compiling on a GPU), so `queues.workers_on` does not count it yet."""
    return any(w.state == "loading" and queue in w.queues for w in live_workers() or [])


def diffusion_has_weights() -> bool:
    """Whether the diffusion engine would draw real pictures. Where workers report, what they hold decides: one has
    (or is loading) real weights; a worker whose weights failed to load or that runs the tiny test model draws none,
    whatever settings say. With no report (no worker yet, or Redis away), settings decide: they name weights other
    than the tiny model (a worker started with them will load them)."""
    workers = live_workers()
    if workers:
        return any(w.draws_pictures for w in workers)
    model = settings.QART["MODEL"]
    return bool(model) and model != "tiny"


def default_engine(picture_given: bool = True) -> str:
    """The engine a request that names none gets: halftone where diffusion has no weights and there is a picture.

    Without a picture the halftone engine has nothing to draw, so such a request keeps the diffusion engine.
    """
    return HALFTONE if picture_given and not diffusion_has_weights() else DIFFUSION


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def summary(workers: list[WorkerReport] | None, refused: str = "") -> str:
    """One line for the generation page, e.g. "2 GPU workers ready, Lykon/DreamShaper"; with no reports (None) and
    `refused`, the words for a refused password (`read_workers`)."""
    if workers is None:
        return f"Worker status unknown: {refused}" if refused else (
            "Worker status unknown: the job queue (Redis) cannot be reached right now.")
    if not workers:
        return "No generation worker is running: jobs wait in the queue until one starts."
    parts = []
    groups: dict[tuple[str, str, str], int] = {}
    for w in workers:
        kind = "GPU worker" if w.gpu else "CPU worker"
        model = "the tiny test model (noise)" if w.tiny else (w.model or "its default model")
        groups[(w.state, kind, model)] = groups.get((w.state, kind, model), 0) + 1
    for (state, kind, model), n in sorted(groups.items()):
        if state == "ready":
            parts.append(f"{_count(n, kind)} ready, {model}")
        elif state == "loading":
            parts.append(f"{_count(n, kind)} loading {model}")
        else:
            parts.append(f"{_count(n, kind)} without a diffusion engine ({model} could not be loaded: the worker's "
                         "log says why): halftone only")
    line = "; ".join(parts) + "."
    fast = fast_shapes(workers)
    if fast:
        line += (f" Fastest at {', '.join(fast)} (size x candidates, compiled at start); other sizes and counts are "
                 "drawn more slowly.")
    return line


def fast_shapes(workers: list[WorkerReport]) -> list[str]:
    """The (size x candidates) pairs every ready compiled worker was warmed for, e.g. ["768x8"]: a job of one of
    them runs compiled wherever it lands; any other is drawn eagerly (`diffusion.Engine.generate`)."""
    compiled = [w for w in workers if w.state == "ready" and w.shapes]
    if not compiled:
        return []
    common = set.intersection(*({label.split()[0] for label in w.shapes} for w in compiled))
    return sorted(common, key=lambda label: tuple(int(x) for x in label.split("x")))


@dataclass
class EngineStatus:
    """What the generation page says about engines."""

    line: str  # the workers, in one line
    note: str  # why the page starts on the halftone engine, or ""
    diffusion_ready: bool


def page_status(operator: bool = False) -> EngineStatus:
    """What the generation page says about engines; where Redis is, when it refuses the site's password, only to an
    `operator` (a superuser)."""
    has_weights = diffusion_has_weights()
    workers, refused = read_workers(operator)
    return EngineStatus(summary(workers, refused), "" if has_weights else NO_WEIGHTS_NOTE, has_weights)
