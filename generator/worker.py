"""The GPU worker: `python manage.py rqworker gpu --worker-class generator.worker.GenerationWorker`.

RQ's default worker forks a child per job, which would reload gigabytes of weights for every job and
cannot share a CUDA context. This worker runs jobs in its own process (RQ's SimpleWorker) and loads the
engine - with a warm-up generation - and opens the media storage's connections (`job_files.open_store_connections`)
before it takes its first job, so every job finds them warm.
Run any number of them, on any number of GPU hosts, against the same Redis, database and media storage.

Each worker says what it is in Redis (`generator.engine_status`): "loading" while the engine loads, then
"ready" with its device, model and the shapes it compiled (or "unavailable" with the reason), kept alive by a
thread for the worker's whole life (every few seconds: a killed worker drops off the pages within
`engine_status.REPORT_TTL` seconds) and deleted when the worker stops. The web process reads that instead of
importing torch itself.

While a job runs, a thread sends the heartbeats RQ's forking worker would send (SimpleWorker sends none, so a worker
killed mid-job was noticed only after the job's time limit) and renews the job's lease (`generator.leases`).
Every minute (`reconcile.INTERVAL`) RQ's maintenance runs the reconciler, which re-queues or ends jobs nothing
will finish, and the dashboards' upkeep (`campaigns.maintenance`: recounts after a time zone change, daily retention).
A job whose worker's process on this host is gone (SIGKILLed) is retried sooner (`reconcile.reclaim`, `_reclaim`):
looked for when the worker starts, every `reconcile.RECLAIM_EVERY` seconds while it is idle (which also retries, then,
a job whose worker's heartbeats expired, and puts back in the queue a job that a worker took and will not start:
`claims.put_back_taken`), and with each lease renewal while it runs a job (marked there, retried by the next idle
look of any worker). A job is started only while it is still this worker's to start (`claims.start`): one put back
while its worker was slow is run once, by the worker that takes it again. A job that RQ's cleanup retried or failed
while its worker, cut off from Redis, ran on writes nothing more once its row was handed on (`job_files.this_attempt`),
and its end is not recorded in RQ (`claims.still_started`). A job needs no Redis while it is drawn (its progress goes to
RQ from another thread: `jobs.ProgressWriter`); a Redis that does not answer once its code has returned is waited for
as long as its heartbeats last, and its end recorded once (`handle_execution_ended`).

Stopping the worker (SIGTERM or Ctrl-C: it finishes its job; a second one: it stops now) puts the job it interrupts back
at the front of the queue without spending one of the job's attempts (`request_force_stop`, `jobs.put_back`), and so
does a large print file it was making (`campaigns.print_builds`).
"""

from __future__ import annotations

import functools
import logging
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.utils import now
from rq.worker import WorkerStatus

from campaigns import maintenance as dashboards
from generator import claims, cleaning, engine_status, leases, reconcile
from qartsite import workers
from qartsite.workers import PutsBackStopped, RedisPatience, drop_dead_connections, wait_for_database

log = logging.getLogger(__name__)


class GenerationWorker(PutsBackStopped, RedisPatience, SimpleWorker):
    _max_jobs: int | None = None  # `work`'s max_jobs, counted by `execute_job`
    _jobs_run = 0  # jobs this worker ran since `work` began, not those lost to another worker

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("maintenance_interval", reconcile.INTERVAL)  # RQ's default: every 10 minutes
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker waits on the queue this long before its loop, its heartbeat (and so `_reclaim`) and its
        # maintenance come round again.
        return min(super().dequeue_timeout, reconcile.RECLAIM_EVERY)

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        if pipeline is None:  # the idle loop's, every dequeue_timeout, and one after each job; not a job's heartbeats
            self._reclaim()

    def _reclaim(self, retry: bool = True) -> None:
        """Mark abandoned the jobs whose worker's process on this host is gone (`reconcile.reclaim`) and, with `retry`,
        have RQ's cleanup of started jobs retry or fail whatever is abandoned now rather than at the next maintenance
        (up to a minute later; a worker on another host that died is taken this way too, once its heartbeats expired).
        The cleanup runs under RQ's maintenance lock (`reconcile.retry_abandoned`), as its registry cleaning, so that no
        job is retried twice; while another worker holds it, the next look (seconds later) tries again. Never raises:
        it runs in RQ's loop and in the heartbeats' thread.

        Args:
            retry (`bool`, *optional*, defaults to True): False in the heartbeats' thread, which only marks: RQ runs a
                job's failure callback under a SIGALRM time limit, which works only in the main thread (and would
                take the running job's own). The mark is an expired heartbeat, which the next look of any idle worker,
                of this one after its job, or the reconciler's pass turns into a retry.
        """
        try:
            for queue in self.queues:
                if retry:
                    reconcile.retry_abandoned(queue, self._exc_handlers)
                else:
                    reconcile.reclaim(queue)
        except RedisError:
            pass  # Redis away: the heartbeat and the dequeue already say so, every few seconds
        except DatabaseError as exc:  # RQ's cleanup runs the job's failure callback, which writes its row
            log.warning("Could not retry the jobs of a worker that is gone (%s); trying again in a moment", exc)
        except Exception:  # a bug: its traceback, and the worker goes on
            log.exception("Could not retry the jobs of a worker that is gone")

    def clean_registries(self) -> None:
        # RQ's, under the cleaning lock that names its holder (`generator.cleaning`): RQ's own lock, left by a worker
        # killed while it cleaned, stopped every retry for 15 minutes.
        for queue in self.queues:
            cleaning.clean_registries(queue, self)
        self.last_cleaned_at = now()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        close_old_connections()  # a database restarted since the last job left this process a dead connection
        self._retry_engine()
        self._maintain("The reconciler", reconcile.reconcile_jobs)
        # Recount days after a time zone change; daily scan retention.
        self._maintain("The dashboards' maintenance", lambda: dashboards.run(self.connection))

    @staticmethod
    def _maintain(what: str, task) -> None:
        """Run one periodic task of the maintenance; its failure is logged, never raised: RQ's work loop stops the
        worker on any exception from its maintenance, and a task that cannot run this time must not take the worker
        with it. An outage (Redis or the database away) is said in one line: its traceback came at every maintenance
        of the outage, a minute apart (a fault drill)."""
        try:
            task()
        except (RedisError, DatabaseError) as exc:
            log.warning("%s could not run (%s); it will try again at the next maintenance", what, exc)
        except Exception:  # a bug: its traceback
            log.exception("%s could not run; it will try again at the next maintenance", what)

    def get_heartbeat_ttl(self, job) -> int:
        # The forking worker's rule, not SimpleWorker's (the job's whole time limit): `execute_job` keeps the
        # heartbeats going, so RQ's cleanup takes the job of a worker killed mid-job within a minute and a half.
        return self.job_monitoring_interval + 60

    def execute_job(self, job, queue) -> None:
        drop_dead_connections()  # a database restarted since the last job: this job opens a new connection
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, stop), name="qart-job-heartbeat", daemon=True)
        self._hold(job)
        beat.start()
        taken_back = False
        try:
            wait_for_database()  # its lease renewed meanwhile: the reconciler leaves it be
            super().execute_job(job, queue)  # RedisPatience: a Redis gone when the job ends is logged, not raised
        except claims.TakenBack:
            taken_back = True
            log.warning("Worker %s: %s went back in the queue before this worker started it (its lease was missing "
                        "too long, or this worker was taken for gone); the worker that takes it now runs it",
                        self.name, job.id)
        except claims.TakenOver:
            log.warning("Worker %s: %s was retried or failed by RQ's cleanup while this worker ran it (its heartbeats "
                        "did not reach Redis); this run's end is not recorded", self.name, job.id)
            self._forget_execution()
        finally:
            stop.set()
            beat.join()
            self._follow_engine()
            try:
                # Only its own: a worker that lost the job (taken back, or over) leaves the lease of the one that has
                # it.
                leases.release(self.connection, job.id, worker=self.name)
            except RedisError as exc:
                log.warning("Could not release the lease on %s: %s", job.id, exc)
        if not taken_back:
            self._jobs_run += 1
        if self._max_jobs is not None and self._jobs_run >= self._max_jobs:
            log.info("Worker %s: finished executing %d jobs, quitting", self.name, self._jobs_run)
            raise StopRequested()  # RQ's loop quits on it, as on its own count reaching max_jobs

    def prepare_execution(self, job):
        # RQ's second step of taking the job, done only while the job is still this worker's to start
        # (`claims.start`): a job put back while this worker was slow to start it runs once, in the worker that took
        # it again.
        if not claims.fenced(self):
            return super().prepare_execution(job)
        self.execution = claims.start(self, job)
        if self.execution is None:
            raise claims.TakenBack(job.id)
        return self.execution

    def handle_execution_ended(self, job, queue, heartbeat_ttl: int) -> None:
        # Right after the job's code returned or raised, before RQ records its end (a success, or a failure callback
        # and a retry): a job that RQ's cleanup took over meanwhile is left as the cleanup left it (`claims.TakenOver`;
        # raised here, the run leaves RQ's `perform_job` at once, from its success path and its failure path alike).
        # Redis is waited for, as long as the job's heartbeats last (they go on meanwhile: nothing takes the job
        # over): a Redis frozen past the worker's timeout (20 s) failed the run in RQ's eyes, its row's verdict kept,
        # and RQ logged a traceback, ran the failure callback and the job again (a fault drill).
        patience, what = self.get_heartbeat_ttl(job), f"record the end of {job.id}"
        if not self.ask_patiently(what, functools.partial(claims.still_started, self, job), patience):
            raise claims.TakenOver(job.id)
        self.ask_patiently(what, functools.partial(super().handle_execution_ended, job, queue, heartbeat_ttl),
                           patience)

    def _forget_execution(self) -> None:
        """After a run taken over (`claims.TakenOver`): this worker idle again, as RQ records it after a job; the
        execution the cleanup took is not deleted again (its record expires with its time to live)."""
        self.execution = None
        try:
            with self.connection.pipeline() as pipeline:
                self.set_current_job_id(None, pipeline=pipeline)
                self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
                pipeline.execute()
        except RedisError as exc:
            log.warning("Worker %s: could not record itself idle: %s", self.name, exc)

    def prepare_job_execution(self, job, remove_from_intermediate_queue: bool = False) -> None:
        # The start took the job out of the intermediate list already (`claims.start`); RQ's own removal here, a moment
        # later, could take a later enqueue's copy of the same id.
        super().prepare_job_execution(job, remove_from_intermediate_queue and not claims.fenced(self))

    def request_force_stop(self, signum, frame) -> None:
        # RQ's cold shut down (a second SIGTERM or Ctrl-C while a job runs: `make run`'s stop, a service manager's)
        # raises a bare SystemExit from this signal handler, in the middle of the job. Raised as WorkerStopped, the
        # job's failure path can tell it from a SystemExit of the job's own code: RQ sets nothing else that says so
        # (`_stop_requested` is set by the first signal already, while the job may still run to its end).
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            raise workers.WorkerStopped() from None

    def handle_exception(self, job, *exc_info) -> None:
        if not isinstance(exc_info[1], workers.WorkerStopped):  # a job's own SystemExit included: a crash, as RQ says
            super().handle_exception(job, *exc_info)
            return
        # RQ logged the worker's stop as a crash with its traceback, 70 lines of torch frames on every Ctrl-C during a
        # generation. The job was only stopped: it goes back in the queue, its attempt not spent
        # (`workers.put_back_if_stopped`), or after MAX_WORKER_STOPS such stops is retried like any interrupted job (a
        # generation failed with the reason on its last; a print file, which has no retry, failed).
        if job.meta.get(workers.PUT_BACK):
            self.log.warning("Worker %s: stopped while running %s; it goes back in the queue, its attempt not spent",
                             self.name, job.id)
        else:
            self.log.warning("Worker %s: stopped while running %s; it runs again, unless that was its last attempt",
                             self.name, job.id)
        for handler in self._exc_handlers:  # RQ's rule: an explicit falsy answer stops the chain
            fallthrough = handler(job, *exc_info)
            if fallthrough is not None and not fallthrough:
                break

    def _beat(self, job, stop: threading.Event) -> None:
        """While `job` runs: the job's lease, and the worker's, job's and execution's heartbeats; and the jobs of a
        worker beside it that was killed marked abandoned (every worker of a host may be busy when the out-of-memory
        killer comes: an idle worker elsewhere then retries them within seconds)."""
        while not stop.wait(self.job_monitoring_interval):
            self._hold(job, renewal=True)  # another worker's lease, on a job this one lost while paused, is left to it
            try:
                if self.execution is not None:
                    self.maintain_heartbeats(job)
                self.register_again()  # the heartbeats' pipeline cannot ask whether Redis lost the registration
            except RedisError as exc:
                log.warning("Could not send the heartbeats of %s: %s", job.id, exc)
            self._reclaim(retry=False)

    def _hold(self, job, renewal: bool = False) -> None:
        try:
            leases.hold(self.connection, job.id, self.name, renewal=renewal)
        except RedisError as exc:
            log.warning("Could not renew the lease on %s: %s", job.id, exc)

    def work(self, *args, max_jobs: int | None = None, **kwargs):
        from generator import job_files, warm_engines
        from generator.core.engines import devices, parameters

        self._device = self._model = ""
        # Before the engine loads (a minute or more for large weights): a worker restarted after the out-of-memory
        # killer took it finds the job it was running at once.
        self._reclaim()
        try:
            spec = warm_engines.engine_spec()
            self._device = ",".join(settings.QART["DEVICES"]) or ("cuda" if warm_engines.cuda_available() else "cpu")
            self._model = spec.base
            self._engine_report = engine_status.WorkerReport(self.name, "", "loading", self._device, spec.base,
                                                             spec.tiny, queues=self.queue_names())
            self._report(self._engine_report, engine_status.REPORT_TTL)
            with engine_status.kept_alive(self.connection, self.name, report=self._current_report):
                engine = warm_engines.get_engine(spec)
            log.info("Generation engine ready on %s: %s", engine.device, engine.spec.label)
            report = self._ready(engine)
            if report.shapes:
                log.info("Compiled for these shapes (others are drawn eagerly, slower): %s", ", ".join(report.shapes))
            else:
                log.info("The engine is not compiled: every shape runs without compiling, none needs warming")
            if warm_engines.cuda_available():
                import torch

                hint = devices.unused_gpus_hint(torch.cuda.device_count(), engine.device.split(","))
                if hint:
                    log.warning("%s", hint)
        except ImproperlyConfigured as exc:  # e.g. QART_WARM_SHAPES: one line, as manage.py says a bad setting
            self._forget_report()  # not "loading" until its time to live runs out
            raise SystemExit(f"qart: {exc}") from None
        except parameters.EngineUnavailable as exc:
            # Keep serving: each job fails with this same message instead of hanging in the queue, and loading is
            # tried again once the weights' files change (`warm_engines.get_engine`); `_follow_engine` reports the
            # outcome.
            log.error("%s", exc)
            report = self._unavailable(str(exc))
        job_files.open_store_connections()  # nine connections to a bucket opened in the first job took ~1 s
        self._engine_report = report
        self._report(report, engine_status.REPORT_TTL)
        # `max_jobs` (`rqworker --max-jobs`) counted here, in `execute_job`: RQ's loop counts every job it hands to
        # it, one lost to another worker before it started (`claims.TakenBack`) too, and quit having run none.
        self._max_jobs, self._jobs_run = max_jobs, 0
        with engine_status.kept_alive(self.connection, self.name, report=self._current_report):
            # RQ's answer, whether any job ran, misses the last one: its loop counts a job after `execute_job`.
            return super().work(*args, **kwargs) or self._jobs_run > 0

    def _current_report(self) -> engine_status.WorkerReport | None:
        """What this worker says about itself now, for a report Redis lost; None once it has stopped."""
        return getattr(self, "_engine_report", None)

    def _ready(self, engine) -> engine_status.WorkerReport:
        shapes = [shape.label for shape in sorted(engine.warmed)]
        return engine_status.WorkerReport(self.name, "", "ready", engine.device, engine.spec.base, engine.spec.tiny,
                                          shapes=shapes, queues=self.queue_names())

    def _unavailable(self, error: str) -> engine_status.WorkerReport:
        return engine_status.WorkerReport(self.name, "", "unavailable", self._device, self._model, error=error,
                                          queues=self.queue_names())

    def _retry_engine(self) -> None:
        """Without an engine, try loading it again (each minute, with the maintenance): `warm_engines.get_engine` loads
        only once the weights' files changed or its retry time passed, else raises the remembered error at once. Jobs
        cannot be relied on to do it: while the worker reports no engine, the site sends picture requests to the
        halftone engine."""
        from generator import warm_engines
        from generator.core.engines import parameters

        report = getattr(self, "_engine_report", None)
        if report is None or report.state != "unavailable":
            return
        try:
            warm_engines.get_engine()
        except parameters.EngineUnavailable:
            pass  # remembered; `_follow_engine` reports a new reason
        except Exception:  # settings or torch failing here must not take the worker down
            log.exception("Could not try loading the engine again")
        self._follow_engine()

    def _follow_engine(self) -> None:
        """After a job of a worker without an engine: the job may have loaded it (the files were fixed) or failed
        on another error; the page says what the worker holds now, not what it held at start."""
        from generator import warm_engines

        report = getattr(self, "_engine_report", None)
        if report is None or report.state != "unavailable":
            return
        try:
            engine, error = warm_engines.loaded_engine(), warm_engines.load_error()
        except Exception:  # the spec itself (settings, torch) failing here must not take the worker down
            log.exception("Could not look up this worker's engine")
            return
        if engine is not None:
            log.info("Generation engine ready on %s: %s", engine.device, engine.spec.label)
            new = self._ready(engine)
        elif error and error != report.error:
            new = self._unavailable(error)
        else:
            return
        self._engine_report = new
        self._report(new, engine_status.REPORT_TTL)

    def register_death(self):
        self._forget_report()
        super().register_death()

    def _forget_report(self) -> None:
        self._engine_report = None  # first: the report's thread must not record it again once it is deleted
        try:
            engine_status.forget(self.connection, self.name)
        except RedisError as exc:
            log.warning("Could not delete this worker's report: %s", exc)

    def _report(self, report: engine_status.WorkerReport, ttl: int) -> None:
        try:
            engine_status.record(self.connection, report, ttl)
        except RedisError as exc:
            log.warning("Could not record this worker's report: %s", exc)
