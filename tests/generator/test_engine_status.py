"""What the workers say about themselves (generator.engine_status) and how GenerationWorker keeps it current, against
the real Redis the suite runs on."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from types import SimpleNamespace

import django_rq
import pytest
from redis import Redis
from rq import SimpleWorker
from rq.worker_registration import unregister

from generator import engine_status, warm_engines
from generator.core.engines import parameters
from generator.core.engines.diffusion import Shape
from generator.core.engines.parameters import ModelSpec
from generator.engine_status import WorkerReport
from generator.worker import GenerationWorker
from qartsite import queues

MODEL = "Lykon/DreamShaper"


@pytest.fixture
def connection(gpu_queue, monkeypatch):
    """The `gpu` queue's Redis, with reports under a prefix of this test's own: a real worker or another test on the
    same Redis neither shows up here nor loses its report."""
    prefix = f"qart:engine-test-{uuid.uuid4().hex}:"
    monkeypatch.setattr(engine_status, "KEY_PREFIX", prefix)
    connection = django_rq.get_connection("gpu")
    yield connection
    for key in connection.scan_iter(match=prefix + "*"):
        connection.delete(key)


@pytest.fixture
def worker(db, connection):
    """A GenerationWorker born as RQ's work() would register it, without loading an engine or taking jobs. With the
    database: its jobs and its maintenance first ask for it (`workers.wait_for_database`, `close_old_connections`)."""
    worker = GenerationWorker(["gpu"], connection=connection)
    worker.register_birth()
    yield worker
    unregister(worker)
    connection.delete(worker.key)


@pytest.fixture
def no_redis(monkeypatch):
    """Redis unreachable: a port nothing listens on."""
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    monkeypatch.setattr(engine_status.django_rq, "get_connection", lambda name: unreachable)


def key_of(name: str) -> str:
    return engine_status.KEY_PREFIX + name


def ready(name: str = "w1", device: str = "cuda", model: str = MODEL, tiny: bool = False) -> WorkerReport:
    return WorkerReport(name, "gpu-host-1", "ready", device, model, tiny)


# --- live_workers -----------------------------------------------------------------------------------------------


def test_it_lists_a_recorded_report(connection):
    engine_status.record(connection, ready(), ttl=300)

    [report] = engine_status.live_workers()

    assert (report.worker, report.host, report.state, report.device, report.model) == ("w1", "gpu-host-1", "ready",
                                                                                       "cuda", MODEL)
    assert report.since  # stamped when recorded


def test_it_fills_in_the_host_when_the_worker_gives_none(connection):
    engine_status.record(connection, WorkerReport("w1", "", "loading"), ttl=300)

    [report] = engine_status.live_workers()

    assert report.host


def test_it_leaves_out_a_forgotten_report(connection):
    engine_status.record(connection, ready("w1"), ttl=300)
    engine_status.record(connection, ready("w2"), ttl=300)

    engine_status.forget(connection, "w1")

    assert [r.worker for r in engine_status.live_workers()] == ["w2"]


def test_it_leaves_out_an_expired_report(connection):
    engine_status.record(connection, ready("w1"), ttl=300)
    connection.expire(key_of("w1"), 0)  # what a dead worker's report comes to once its TTL runs out

    assert engine_status.live_workers() == []


def test_it_reads_back_the_shapes_a_worker_compiled(connection):
    report = ready()
    report.shapes = ["768x8", "768x8 img2img"]
    engine_status.record(connection, report, ttl=300)

    assert [r.shapes for r in engine_status.live_workers()] == [["768x8", "768x8 img2img"]]


def test_it_reads_a_report_from_before_shapes_were_reported(connection):
    connection.set(key_of("w1"), json.dumps({"worker": "w1", "host": "gpu-host-1", "state": "ready", "device": "cuda",
                                             "model": MODEL, "tiny": False, "error": "", "since": ""}), ex=300)

    [report] = engine_status.live_workers()
    assert (report.worker, report.state, report.shapes) == ("w1", "ready", [])


def test_it_reads_a_report_from_a_newer_worker_with_fields_it_does_not_know(connection):
    # A rolling deploy: workers updated before the web processes must not look absent to them.
    connection.set(key_of("w1"), json.dumps({"worker": "w1", "host": "gpu-host-1", "state": "ready", "device": "cuda",
                                             "model": MODEL, "shapes": ["768x8"], "precision": "fp8"}), ex=300)

    [report] = engine_status.live_workers()
    assert (report.worker, report.state, report.shapes) == ("w1", "ready", ["768x8"])


def test_it_skips_an_unreadable_report(connection):
    connection.set(key_of("garbled"), "{not json", ex=300)
    connection.set(key_of("alien"), '{"worker": "x", "colour": "blue"}', ex=300)
    engine_status.record(connection, ready("w1"), ttl=300)

    assert [r.worker for r in engine_status.live_workers()] == ["w1"]


def test_it_leaves_out_at_once_a_report_whose_workers_process_here_is_gone(connection, gone_process):
    # SIGKILLed (the out-of-memory killer): its report said "ready" until it expired, and marketers submitted to it.
    engine_status.record(connection, replace(ready("killed"), process=gone_process), ttl=300)
    engine_status.record(connection, ready("alive"), ttl=300)  # this process's

    assert [r.worker for r in engine_status.live_workers()] == ["alive"]


def test_it_answers_none_when_redis_is_unreachable(no_redis):
    assert engine_status.live_workers() is None


def test_it_says_redis_refuses_the_sites_password_not_that_it_cannot_be_reached(monkeypatch, password_redis, caplog):
    # "cannot be reached right now": a marketer waited for what only whoever runs the site mends. Where Redis is goes
    # to the log and to whoever runs the site (a superuser), never the password.
    refusing = Redis.from_url(password_redis.url_with("wrong-password"))
    monkeypatch.setattr(engine_status.django_rq, "get_connection", lambda name: refusing)
    assert engine_status.live_workers() is None
    line = engine_status.page_status().line
    assert line == ("Worker status unknown: the job queue (Redis) refuses the site's password. Waiting will not mend "
                    "it: whoever runs the site must put it right."), line
    where = f"Redis at 127.0.0.1:{password_redis.port}/0 refused the password (invalid username-password pair"
    assert where in caplog.text
    staff_line = engine_status.page_status(operator=True).line
    assert staff_line.startswith("Worker status unknown: the job queue (Redis) refuses the site's password. " + where)
    assert staff_line.endswith(": it works again once REDIS_URL carries the password Redis asks for."), staff_line
    for said in (line, staff_line, caplog.text):
        assert "wrong-password" not in said and password_redis.password not in said


# --- summary ----------------------------------------------------------------------------------------------------


def test_it_says_when_no_worker_runs():
    assert engine_status.summary([]) == "No generation worker is running: jobs wait in the queue until one starts."


def test_it_names_the_model_of_a_ready_gpu_worker():
    assert engine_status.summary([ready()]) == f"1 GPU worker ready, {MODEL}."


def test_it_counts_workers_alike_together():
    assert engine_status.summary([ready("w1"), ready("w2", device="cuda:1")]) == f"2 GPU workers ready, {MODEL}."


def test_it_lists_workers_that_differ_one_by_one():
    workers = [ready("w1"), WorkerReport("w2", "cpu-host", "ready", "cpu", "")]

    assert engine_status.summary(workers) == f"1 CPU worker ready, its default model; 1 GPU worker ready, {MODEL}."


def test_it_warns_that_the_tiny_model_draws_noise():
    tiny = ready(device="cpu", model="/var/models/tiny/base", tiny=True)

    assert engine_status.summary([tiny]) == "1 CPU worker ready, the tiny test model (noise)."


def test_it_says_a_worker_is_loading():
    loading = WorkerReport("w1", "gpu-host-1", "loading", "cuda", MODEL)

    assert engine_status.summary([loading]) == f"1 GPU worker loading {MODEL}."


def test_it_says_a_worker_without_an_engine_draws_halftone_only():
    unavailable = WorkerReport("w1", "gpu-host-1", "unavailable", "cuda", MODEL, error=f"No weights for {MODEL}")

    assert engine_status.summary([unavailable]) == (
        f"1 GPU worker without a diffusion engine ({MODEL} could not be loaded: the worker's log says why): "
        "halftone only.")


def test_it_names_the_sizes_every_compiled_worker_was_warmed_for():
    first = replace(ready("w1"), shapes=["512x8", "768x8", "768x8 img2img", "768x8 few-step"])
    second = replace(ready("w2"), shapes=["768x8", "768x8 img2img", "1024x4"])
    assert engine_status.summary([first, second]) == (
        f"2 GPU workers ready, {MODEL}. Fastest at 768x8 (size x candidates, compiled at start); other sizes and "
        "counts are drawn more slowly.")
    assert engine_status.fast_shapes([first]) == ["512x8", "768x8"]
    # A worker that is not compiled (shapes empty) draws every size alike: nothing to say.
    assert engine_status.summary([ready()]) == f"1 GPU worker ready, {MODEL}."
    loading = replace(first, state="loading")
    assert engine_status.fast_shapes([loading]) == []


def test_it_says_when_redis_is_unreachable():
    assert engine_status.summary(None) == "Worker status unknown: the job queue (Redis) cannot be reached right now."


# --- diffusion_has_weights and default_engine -------------------------------------------------------------------


@pytest.fixture
def no_model_setting(settings):
    settings.QART = {**settings.QART, "MODEL": ""}


def test_it_trusts_weights_named_in_settings(connection, settings):
    settings.QART = {**settings.QART, "MODEL": MODEL}

    assert engine_status.diffusion_has_weights()
    assert engine_status.default_engine() == engine_status.DIFFUSION


def test_it_trusts_weights_named_in_settings_without_redis(no_redis, settings):
    settings.QART = {**settings.QART, "MODEL": MODEL}

    assert engine_status.diffusion_has_weights()


def test_it_finds_no_weights_without_a_setting_or_a_worker(connection, no_model_setting):
    assert not engine_status.diffusion_has_weights()


def test_it_finds_no_weights_when_redis_is_unreachable(no_redis, no_model_setting):
    assert not engine_status.diffusion_has_weights()
    assert engine_status.default_engine() == engine_status.HALFTONE


@pytest.mark.parametrize("state", ["ready", "loading"])
def test_it_finds_the_weights_of_a_live_worker(connection, no_model_setting, state):
    engine_status.record(connection, WorkerReport("w1", "gpu-host-1", state, "cuda", MODEL), ttl=300)

    assert engine_status.diffusion_has_weights()
    assert engine_status.default_engine() == engine_status.DIFFUSION


def test_it_finds_no_weights_on_tiny_or_unavailable_workers(connection, no_model_setting):
    engine_status.record(connection, ready("w1", device="cpu", model="/var/models/tiny/base", tiny=True), ttl=300)
    engine_status.record(connection, WorkerReport("w2", "gpu-host-1", "unavailable", error="no weights"), ttl=300)

    assert not engine_status.diffusion_has_weights()
    assert engine_status.default_engine() == engine_status.HALFTONE


def test_what_live_workers_hold_wins_over_settings(connection, settings):
    # A worker whose named weights failed to load, or one on the tiny model, draws no picture: settings naming
    # weights do not make the page promise them or send pictures to the diffusion engine.
    settings.QART = {**settings.QART, "MODEL": "/nonexistent/sd15"}
    engine_status.record(connection, WorkerReport("w2", "gpu-host-1", "unavailable", error="no weights"), ttl=300)
    assert not engine_status.diffusion_has_weights() and engine_status.page_status().note
    assert engine_status.default_engine() == engine_status.HALFTONE


def test_the_tiny_model_named_in_settings_is_no_weights(connection, settings):
    settings.QART = {**settings.QART, "MODEL": "tiny"}
    assert not engine_status.diffusion_has_weights()
    assert engine_status.default_engine() == engine_status.HALFTONE


def test_it_keeps_diffusion_for_a_request_without_a_picture(connection, no_model_setting):
    assert engine_status.default_engine(picture_given=False) == engine_status.DIFFUSION


# --- GenerationWorker's report ----------------------------------------------------------------------------------


def test_it_records_the_workers_report(worker, connection):
    worker._report(WorkerReport(worker.name, "", "ready", "cuda", MODEL), 300)

    assert [(r.worker, r.state) for r in engine_status.live_workers()] == [(worker.name, "ready")]
    assert 0 < connection.ttl(key_of(worker.name)) <= 300


def test_kept_alive_refreshes_the_report_while_the_block_runs_and_then_stops(worker, connection):
    worker._report(WorkerReport(worker.name, "", "ready", "cuda", MODEL), 5)

    with engine_status.kept_alive(connection, worker.name, ttl=60, every=0.01):
        deadline = time.monotonic() + 5
        while connection.ttl(key_of(worker.name)) <= 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 5 < connection.ttl(key_of(worker.name)) <= 60
    assert not [t for t in threading.enumerate() if t.name == "qart-report-keepalive"]  # the thread ended with it


def test_a_refresh_does_not_revive_a_deleted_report(worker, connection):
    with engine_status.kept_alive(connection, worker.name, every=0.01):
        time.sleep(0.05)

    assert not connection.exists(key_of(worker.name))


def test_the_report_is_kept_alive_while_the_worker_takes_jobs_and_lives_only_seconds_without_it(
        worker, connection, monkeypatch):
    # RQ's own heartbeat comes every ~7 minutes to an idle worker: a killed worker's report promised an engine for
    # 8 minutes. Now it lives REPORT_TTL seconds, refreshed by a thread for as long as the job loop runs.
    engine = SimpleNamespace(device="cuda:0", spec=ModelSpec(), warmed=set())
    monkeypatch.setattr(warm_engines, "get_engine", lambda spec: engine)
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    seen = {}

    def job_loop(self, *args, **kwargs):
        seen["ttl"] = connection.ttl(key_of(worker.name))
        seen["threads"] = [t.name for t in threading.enumerate() if t.name == "qart-report-keepalive"]
        return True

    monkeypatch.setattr(SimpleWorker, "work", job_loop)
    worker.work()

    assert 0 < seen["ttl"] <= engine_status.REPORT_TTL < worker.worker_ttl
    assert seen["threads"] == ["qart-report-keepalive"]


def test_a_worker_loading_or_busy_for_longer_than_its_reports_life_stays_listed(worker, connection, monkeypatch):
    # The report lives seconds (a killed worker leaves the pages as fast): only the thread's refreshes keep it through
    # an engine's load of a minute or more and a 30 s job.
    monkeypatch.setattr(engine_status, "REPORT_TTL", 1)
    monkeypatch.setattr(engine_status, "REPORT_REFRESH", 0.2)
    seen = []

    def watch(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.append(tuple(r.state for r in engine_status.live_workers()))
            time.sleep(0.1)

    def loading(spec):
        watch(2.5)
        return SimpleNamespace(device="cpu", spec=ModelSpec(), warmed=set())

    monkeypatch.setattr(warm_engines, "get_engine", loading)
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: watch(2.5) or True)  # a job
    worker.work()

    assert set(seen) == {("loading",), ("ready",)} and (seen[0], seen[-1]) == (("loading",), ("ready",))


def test_a_worker_loading_its_engine_says_which_queues_it_will_take(worker, connection, monkeypatch):
    # RQ registers the worker only once its engine is loaded: meanwhile a large print file was made in the request,
    # 32 s, past the web server's timeout (a fault drill). The print files ask `loading_on` too.
    seen = {}

    def loading(spec):
        seen["loading"] = [(r.state, r.queues) for r in engine_status.live_workers()]
        seen["on"] = [engine_status.loading_on(queue) for queue in ("gpu", "default")]
        return SimpleNamespace(device="cpu", spec=ModelSpec(), warmed=set())

    monkeypatch.setattr(warm_engines, "get_engine", loading)
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: True)
    worker.work()

    assert seen == {"loading": [("loading", ["gpu"])], "on": [True, False]}
    assert not engine_status.loading_on("gpu")  # loaded: RQ counts it now


def test_a_report_redis_lost_is_recorded_again_while_the_worker_lives_and_not_once_it_stopped(
        worker, connection, monkeypatch):
    # Redis restarted without its data: the report's refresh (an EXPIRE) found no key, and the generation page said
    # "No generation worker is running" beside a worker taking jobs, until that worker was restarted (a fault drill).
    engine = SimpleNamespace(device="cuda:0", spec=ModelSpec(), warmed=set())
    monkeypatch.setattr(warm_engines, "get_engine", lambda spec: engine)
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(engine_status, "REPORT_REFRESH", 0.01)
    seen = {}

    def job_loop(self, *args, **kwargs):
        connection.delete(key_of(worker.name))
        deadline = time.monotonic() + 5
        while not connection.exists(key_of(worker.name)) and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["states"] = [r.state for r in engine_status.live_workers()]
        self._forget_report()  # the worker stops: its report must stay deleted
        time.sleep(0.1)
        seen["after_stop"] = connection.exists(key_of(worker.name))
        return True

    monkeypatch.setattr(SimpleWorker, "work", job_loop)
    worker.work()

    assert seen["states"] == ["ready"]
    assert seen["after_stop"] == 0


def test_it_deletes_the_report_when_the_worker_stops(worker, connection):
    worker._report(WorkerReport(worker.name, "", "ready", "cuda", MODEL), 300)

    worker.register_death()

    assert not connection.exists(key_of(worker.name))
    assert engine_status.live_workers() == []
    assert connection.hexists(worker.key, "death")  # RQ's own bookkeeping still ran


def test_it_keeps_going_when_redis_cannot_record_the_report(worker, connection, caplog):
    worker.connection = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    try:
        worker._report(WorkerReport(worker.name, "", "loading"), 300)
    finally:
        worker.connection = connection

    assert "Could not record this worker's report" in caplog.text
    assert not connection.exists(key_of(worker.name))


@pytest.mark.parametrize(
    "warmed, shapes, line",
    [
        ({Shape(768, 8, img2img=True), Shape(512, 8), Shape(768, 8)}, ["512x8", "768x8", "768x8 img2img"],
         "Compiled for these shapes (others are drawn eagerly, slower): 512x8, 768x8, 768x8 img2img"),
        (set(), [], "The engine is not compiled: every shape runs without compiling, none needs warming"),
    ],
)
def test_it_says_at_start_which_shapes_it_warmed(worker, connection, monkeypatch, caplog, warmed, shapes, line):
    engine = SimpleNamespace(device="cuda:0", spec=ModelSpec(), warmed=warmed)
    monkeypatch.setattr(warm_engines, "get_engine", lambda spec: engine)
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: True)  # no job loop
    caplog.set_level("INFO", logger="generator.worker")

    worker.work()

    [report] = engine_status.live_workers()
    assert (report.state, report.device, report.shapes) == ("ready", "cuda:0", shapes)
    assert line in caplog.text


def test_a_bad_warm_shapes_setting_stops_the_worker_with_one_line(worker, connection, settings, monkeypatch):
    settings.QART = {**settings.QART, "WARM_SHAPES": "768x8,700x8"}
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: pytest.fail("took jobs"))

    with pytest.raises(SystemExit) as stopped:
        worker.work()

    assert str(stopped.value) == ("qart: QART_WARM_SHAPES: “700x8”: the size must be a multiple of 64 from 256 to "
                                  "1024, got 700.")
    assert engine_status.live_workers() == []  # its "loading" report is gone too



def test_a_redis_that_accepts_and_never_answers_costs_seconds_not_the_request(monkeypatch):
    # A stalled Redis (SIGSTOP in a drill) held the generation page until gunicorn killed its worker, and the short
    # links waiting behind it. The queues' URLs carry read timeouts (settings.with_timeouts).
    import socket
    import threading
    import time

    from qartsite.settings import with_timeouts

    server = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: held.extend(server.accept() for _ in range(3)), daemon=True).start()
    url = with_timeouts(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    from django.conf import settings
    from redis import Redis

    assert settings.RQ_QUEUES[engine_status.QUEUE]["URL"].endswith("socket_connect_timeout=2&socket_timeout=3")
    monkeypatch.setattr(engine_status.django_rq, "get_connection", lambda name: Redis.from_url(url))
    started = time.monotonic()
    try:
        assert engine_status.live_workers() is None
        assert time.monotonic() - started < 8
    finally:
        server.close()
        for connection, _ in held:
            connection.close()


def test_a_worker_whose_engine_cannot_load_keeps_serving_and_says_what_failed(worker, connection, settings,
                                                                              monkeypatch):
    settings.QART = {**settings.QART, "MODEL": MODEL, "DEVICES": ["cuda:0"]}

    def unavailable(spec):
        raise parameters.EngineUnavailable("The base model weights are not on this machine.")

    monkeypatch.setattr(warm_engines, "get_engine", unavailable)
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: True)  # no job loop

    worker.work()

    [report] = engine_status.live_workers()
    assert (report.state, report.device, report.model) == ("unavailable", "cuda:0", MODEL)
    assert report.error == "The base model weights are not on this machine."
    assert engine_status.summary([report]).startswith(f"1 GPU worker without a diffusion engine ({MODEL} could not")


def test_a_worker_whose_engine_loads_at_a_later_job_reports_it_ready(worker, connection, settings, monkeypatch):
    # The files were fixed after the worker started: a job's `get_engine` loads them, and the page must stop saying
    # the worker has no engine.
    settings.QART = {**settings.QART, "MODEL": MODEL, "DEVICES": ["cuda:0"]}
    engine = SimpleNamespace(device="cuda:0", spec=ModelSpec(base=MODEL), warmed={Shape(768, 8)})
    held: dict = {}
    monkeypatch.setattr(warm_engines, "get_engine", lambda spec: (_ for _ in ()).throw(
        parameters.EngineUnavailable("The base model weights are not on this machine.")))
    monkeypatch.setattr(warm_engines, "loaded_engine", lambda: held.get("engine"))
    monkeypatch.setattr(warm_engines, "load_error", lambda: held.get("error"))
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: True)  # no job loop
    monkeypatch.setattr(SimpleWorker, "execute_job", lambda self, job, queue: None)
    worker.work()
    job = SimpleNamespace(id=str(uuid.uuid4()))

    held.clear()
    worker.execute_job(job, None)  # a halftone job: nothing loaded, nothing new
    [report] = engine_status.live_workers()
    assert report.state == "unavailable" and report.error == "The base model weights are not on this machine."

    monkeypatch.setattr(SimpleWorker, "execute_job", lambda self, job, queue: held.update(
        error="The few-step LoRA is unreadable."))
    worker.execute_job(job, None)  # tried again, failed on something else: the page says what now
    [report] = engine_status.live_workers()
    assert report.state == "unavailable" and report.error == "The few-step LoRA is unreadable."

    monkeypatch.setattr(SimpleWorker, "execute_job", lambda self, job, queue: held.update(engine=engine, error=None))
    worker.execute_job(job, None)
    [report] = engine_status.live_workers()
    assert (report.state, report.device, report.model, report.shapes, report.error) == (
        "ready", "cuda:0", MODEL, ["768x8"], "")


def test_a_worker_without_an_engine_tries_again_in_its_maintenance(worker, connection, settings, monkeypatch):
    # While it reports no engine the site sends picture requests to the halftone engine: no diffusion job would come
    # to load it again, so the minute's maintenance asks (get_engine loads only once files changed or time passed).
    settings.QART = {**settings.QART, "MODEL": MODEL, "DEVICES": ["cuda:0"]}
    engine = SimpleNamespace(device="cuda:0", spec=ModelSpec(base=MODEL), warmed=set())
    held: dict = {}
    asked: list[int] = []

    def get_engine(spec=None):
        asked.append(1)
        if "engine" not in held:
            raise parameters.EngineUnavailable("The base model weights are not on this machine.")
        return held["engine"]

    monkeypatch.setattr(warm_engines, "get_engine", get_engine)
    monkeypatch.setattr(warm_engines, "loaded_engine", lambda: held.get("engine"))
    monkeypatch.setattr(warm_engines, "load_error", lambda: None if "engine" in held else
                        "The base model weights are not on this machine.")
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: True)  # no job loop
    worker.work()
    worker._retry_engine()
    [report] = engine_status.live_workers()
    assert report.state == "unavailable" and len(asked) == 2  # at start, then in the maintenance

    held["engine"] = engine  # the files were fixed
    monkeypatch.setattr(SimpleWorker, "run_maintenance_tasks", lambda self: None)  # RQ's own: not this test's
    monkeypatch.setattr("generator.worker.reconcile.reconcile_jobs", lambda: None)
    monkeypatch.setattr("generator.worker.dashboards.run", lambda connection: None)
    worker.run_maintenance_tasks()
    [report] = engine_status.live_workers()
    assert report.state == "ready" and len(asked) == 3
    worker.run_maintenance_tasks()
    assert len(asked) == 3  # ready: nothing more to try


def test_a_redis_that_did_not_answer_is_not_asked_again_for_a_few_seconds(monkeypatch):
    # The generation page asks four times a render: a stalled Redis made each wait out its 3 s timeout, 12 s a page
    from redis import Redis
    from redis.exceptions import TimeoutError as RedisTimeoutError

    asked = []

    class Stalled(Redis):
        def scan_iter(self, *args, **kwargs):
            asked.append(1)
            raise RedisTimeoutError("Timeout reading from socket")

    stalled = Stalled(host="127.0.0.1", port=2, db=5)
    monkeypatch.setattr(engine_status.django_rq, "get_connection", lambda name: stalled)
    now = [1000.0]
    monkeypatch.setattr("campaigns.scan_buffer.monotonic", lambda: now[0])  # the clock of `Outage`
    assert [engine_status.live_workers() for _ in range(4)] == [None] * 4
    assert len(asked) == 1
    now[0] += queues.REDIS_AWAY_FOR + 0.1
    assert engine_status.live_workers() is None and len(asked) == 2  # asked again once the pause is over
