"""Milliseconds of a GPU call by CUDA events: the one timing loop of bench/gpu_probe.py and bench/fa4_tiles.py."""

from __future__ import annotations


def event_times(fn, torch, reps: int, warm: int = 1) -> list[float]:
    """Milliseconds of each of `reps` calls of `fn`, after `warm` untimed ones, by CUDA events around each call.

    Each call is waited for, so its time includes its host-side launch latency (a fraction of a millisecond).
    """
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times
