"""bench/rq_job.py's `TailClock`: where a whole job's time goes after the engine's last image (issue 16, item 4)."""

import gc
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import rq_job  # noqa: E402


class Engine:
    """An engine that hands its images over in groups of one, as a CUDA engine does."""

    def generate(self, control, params, seeds, on_decoded=None):
        images = [f"image {seed}" for seed in seeds]
        for image in images:
            time.sleep(0.01)
            on_decoded([image])
        return images

    def score_aesthetics(self, images):
        time.sleep(0.01)
        return [1.0] * len(images)


def fake_modules():
    """What `install` wraps in `generator.jobs`, `generator.job_files` and `ranking`, as stand-ins that note their own
    calls."""
    calls = []

    class PngEncoder:
        def pngs(self, images):
            calls.append("pngs")
            return [b"png"] * len(images)

    pool = ThreadPoolExecutor(1)
    ranking = SimpleNamespace(
        submit_verify=lambda images: (lambda: calls.append("verified") or ["verdict"] * len(images)),
        verifier_pool=lambda workers: pool if workers > 1 else None)
    jobs = SimpleNamespace(_finish=lambda *a: calls.append("finish"))
    job_files = SimpleNamespace(PngEncoder=PngEncoder, store=lambda *a: calls.append("store"))
    return jobs, ranking, pool, calls, job_files


class TestTailClock:
    def test_notes_each_step_after_the_last_hand_over(self):
        clock, engine = rq_job.TailClock(), Engine()
        jobs, ranking, pool, calls, job_files = fake_modules()
        restore = clock.install(engine, jobs, ranking, job_files)
        handed = []
        generate = clock.generate(engine.generate)

        images = generate("control", "params", [1, 2, 3], on_decoded=handed.extend)
        time.sleep(0.01)
        engine.score_aesthetics(images)
        ranking.verifier_pool(2).submit(time.sleep, 0.02).result()
        time.sleep(0.01)  # the pool's callback runs in its thread once the result is set
        ranking.submit_verify(images)()
        job_files.PngEncoder().pngs(images)
        job_files.store()
        jobs._finish()
        row = clock.row()

        assert handed == images  # every group reached the job's own callback
        assert calls == ["verified", "pngs", "store", "finish"]
        assert list(row) == ["tail_generate_start", "tail_first_handed", "tail_generated", "tail_aesthetics_start",
                             "tail_aesthetics", "tail_last_part", "tail_verdicts", "tail_pngs", "tail_stored",
                             "tail_finished", "handover_s", "gc_s", "gc_runs"]
        # Counted from the third image, not the first: the first came two sleeps of 10 ms before it
        assert 0 <= row["tail_generated"] < row["tail_aesthetics_start"]
        assert row["tail_generate_start"] < row["tail_first_handed"] <= -0.02
        assert row["tail_aesthetics"] - row["tail_aesthetics_start"] >= 0.01
        assert row["tail_last_part"] - row["tail_aesthetics"] >= 0.02
        restore()
        pool.shutdown()

    def test_restore_puts_back_the_originals(self):
        clock, engine = rq_job.TailClock(), Engine()
        jobs, ranking, pool, _, job_files = fake_modules()
        before = (ranking.submit_verify, ranking.verifier_pool, job_files.PngEncoder.pngs, job_files.store,
                  jobs._finish)

        clock.install(engine, jobs, ranking, job_files)()

        assert (ranking.submit_verify, ranking.verifier_pool, job_files.PngEncoder.pngs, job_files.store,
                jobs._finish) == before
        assert "score_aesthetics" not in vars(engine)  # the class's method again, not a wrapper left behind
        pool.shutdown()

    def test_no_hand_over_counts_from_the_return_and_reset_forgets(self):
        clock = rq_job.TailClock()
        clock.generate(lambda control, params, seeds, on_decoded=None: ["image"])("control", "params", [1])
        clock.mark("stored")

        row = clock.row()
        assert list(row) == ["tail_generate_start", "tail_generated", "tail_stored", "handover_s", "gc_s", "gc_runs"]
        assert row["tail_generated"] == 0
        clock.reset()
        assert clock.row() == {}

    def test_notes_how_long_the_hand_overs_and_the_collector_held_the_job(self):
        clock, engine = rq_job.TailClock(), Engine()
        jobs, ranking, pool, _, job_files = fake_modules()
        restore = clock.install(engine, jobs, ranking, job_files)
        gc.collect()  # before the job: not counted
        clock.reset()

        def slow_hand_over(group):
            time.sleep(0.02)
            gc.collect()  # one full pass inside the job

        clock.generate(engine.generate)("control", "params", [1, 2], on_decoded=slow_hand_over)
        row = clock.row()
        restore()
        pool.shutdown()

        assert row["handover_s"] >= 0.04  # two hand-overs of 20 ms, not the engine's own 10 ms sleeps
        assert row["gc_runs"] >= 2 and row["gc_s"] > 0  # each pass seen, and timed
        assert clock._collected not in gc.callbacks  # restore took the collector's callback off again

    def test_summarise_takes_each_key_over_the_rows_that_have_it(self):
        summary = rq_job.summarise([{"total": 1.0, "tail_pngs": 0.1}, {"total": 3.0}, {"total": 2.0, "ok": True}])

        assert summary["total"]["median"] == 2.0
        assert summary["tail_pngs"] == {"median": 0.1, "p95": 0.1}
        assert "ok" not in summary


def test_renice_sets_the_verifier_processes_nice_value_and_back():
    import os
    import subprocess

    child = subprocess.Popen(["sleep", "30"])  # a stand-in for one of the pool's processes
    try:
        pool = SimpleNamespace(_processes={child.pid: None})
        said = []
        rq_job._renice(SimpleNamespace(_pool=pool), rq_job.NICE, said.append)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == rq_job.NICE
        rq_job._renice(SimpleNamespace(_pool=pool), 0, said.append)
        # Lowering it again needs privileges: where refused, the bench says so instead of failing.
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == 0 or "refused" in said[-2]
        assert said[-1].endswith("at nice 0")
    finally:
        child.kill()
        child.wait()


def test_renice_without_a_pool_touches_nothing():
    said = []
    rq_job._renice(SimpleNamespace(_pool=None), rq_job.NICE, said.append)
    assert said == [f"rq: verifier processes [] at nice {rq_job.NICE}"]


class TestTimedJobs:
    """`_timed_jobs`: one worker started once takes every job, each enqueued by a feeder after the last one ended."""

    def run(self, monkeypatch, finishes: bool):
        from generator import jobs

        clock, arrived, started = rq_job.TailClock(), queue.Queue(), []
        monkeypatch.setattr(jobs, "enqueue_generation", arrived.put)
        monkeypatch.setattr(rq_job, "IDLE_BEFORE", 0.0)
        monkeypatch.setattr(rq_job, "JOB_WAIT", 0.2)
        monkeypatch.setattr(rq_job, "WARM_UP_WAIT", 0.2)

        def work(**kwargs):  # the worker, in this (the main) thread: takes jobs until max_jobs or idle too long
            started.append(kwargs)
            for _ in range(kwargs["max_jobs"]):
                try:
                    arrived.get(timeout=0.5)
                except queue.Empty:
                    return
                if finishes:
                    clock.mark("generated")
                    clock.mark("finished")

        rows = rq_job._timed_jobs(lambda steps, scheduler, repair, r: SimpleNamespace(pk=r),
                                  lambda job: {"job": job.pk}, work, 2, 25, "dpmpp_2m_karras", False, "code",
                                  lambda message: None, clock)
        return rows, started

    def test_one_worker_takes_the_warm_up_and_every_timed_job(self, monkeypatch):
        rows, started = self.run(monkeypatch, finishes=True)

        assert started == [dict(burst=False, max_jobs=3, max_idle_time=rq_job.MAX_IDLE)]
        assert [row["job"] for row in rows] == [1, 2]  # the warm-up (job 0) not among them
        assert all("tail_finished" in row for row in rows)  # each with the clock's row

    def test_a_job_that_never_ends_stops_the_feeder_and_is_said(self, monkeypatch):
        with pytest.raises(RuntimeError, match="job 0 did not end"):
            self.run(monkeypatch, finishes=False)

    def test_the_clock_says_when_the_job_ended_until_reset(self):
        clock = rq_job.TailClock()
        clock.mark("stored")
        assert not clock.finished.is_set()
        clock.mark("finished")
        assert clock.finished.is_set()
        clock.reset()
        assert not clock.finished.is_set()
