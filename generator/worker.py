"""The GPU worker: `python manage.py rqworker gpu --worker-class generator.worker.GenerationWorker`.

RQ's default worker forks a child per job, which would reload gigabytes of weights for every job and
cannot share a CUDA context. This worker runs jobs in its own process (RQ's SimpleWorker) and loads the
engine - with a warm-up generation - before it takes its first job, so every job finds it warm.
Run any number of them, on any number of GPU hosts, against the same Redis, database and media storage.
"""

from __future__ import annotations

import logging

from rq import SimpleWorker

log = logging.getLogger(__name__)


class GenerationWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        from generator import jobs, pipeline

        try:
            engine = jobs.get_engine()
            log.info("Generation engine ready on %s: %s", engine.device, engine.spec.label)
            if jobs.cuda_available():
                import torch

                hint = pipeline.unused_gpus_hint(torch.cuda.device_count(), engine.device.split(","))
                if hint:
                    log.warning("%s", hint)
        except pipeline.EngineUnavailable as exc:
            # Keep serving: each job will fail with this same message instead of hanging in the queue.
            log.error("%s", exc)
        return super().work(*args, **kwargs)
