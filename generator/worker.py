"""The GPU worker: `python manage.py rqworker gpu --worker-class generator.worker.GenerationWorker`.

RQ's default worker forks a child per job, which would reload gigabytes of weights for every job and
cannot share a CUDA context. This worker runs jobs in its own process (RQ's SimpleWorker) and loads the
engine - with a warm-up generation - before it takes its first job, so every job finds it warm.
Run any number of them, on any number of GPU hosts, against the same Redis, database and media storage.

Each worker says what it is in Redis (`generator.engine_status`): "loading" while the engine loads, then
"ready" with its device and model (or "unavailable" with the reason), kept alive by RQ's heartbeat and
deleted when the worker stops. The web process reads that instead of importing torch itself.
"""

from __future__ import annotations

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rq import SimpleWorker

from generator import engine_status

log = logging.getLogger(__name__)


class GenerationWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        from generator import jobs
        from generator.core.engines import devices, parameters

        try:
            spec = jobs.engine_spec()
            device = ",".join(settings.QART["DEVICES"]) or ("cuda" if jobs.cuda_available() else "cpu")
            self._report(engine_status.WorkerReport(self.name, "", "loading", device, spec.base, spec.tiny),
                         engine_status.LOADING_TTL)
            with engine_status.kept_alive(self.connection, self.name):
                engine = jobs.get_engine(spec)
            log.info("Generation engine ready on %s: %s", engine.device, engine.spec.label)
            report = engine_status.WorkerReport(self.name, "", "ready", engine.device, engine.spec.base,
                                                engine.spec.tiny)
            if jobs.cuda_available():
                import torch

                hint = devices.unused_gpus_hint(torch.cuda.device_count(), engine.device.split(","))
                if hint:
                    log.warning("%s", hint)
        except parameters.EngineUnavailable as exc:
            # Keep serving: each job will fail with this same message instead of hanging in the queue.
            log.error("%s", exc)
            report = engine_status.WorkerReport(self.name, "", "unavailable", error=str(exc))
        self._report(report, self.worker_ttl + 60)
        return super().work(*args, **kwargs)

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        try:
            engine_status.refresh(self.connection, self.name, timeout or self.worker_ttl + 60)
        except RedisError as exc:  # RQ's own heartbeat reports Redis trouble; ours must not add a crash
            log.warning("Could not refresh this worker's report: %s", exc)

    def register_death(self):
        try:
            engine_status.forget(self.connection, self.name)
        except RedisError as exc:
            log.warning("Could not delete this worker's report: %s", exc)
        super().register_death()

    def _report(self, report: engine_status.WorkerReport, ttl: int) -> None:
        try:
            engine_status.record(self.connection, report, ttl)
        except RedisError as exc:
            log.warning("Could not record this worker's report: %s", exc)
