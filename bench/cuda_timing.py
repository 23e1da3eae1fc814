"""Milliseconds of a GPU call by CUDA events: the one timing loop of bench/gpu_probe.py, bench/fa4_tiles.py and
bench/fa4_exp.py; and the attention case the last two time."""

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


# SD1.5's 96x96 self-attention at 768²: the tokens, heads and head size FA4 runs in the product.
TOKENS, HEADS, HEAD = 96 * 96, 8, 40


def self_attention_case(torch, batch: int, generator, device: str = "cuda", tokens: int = TOKENS):
    """The 96x96 self-attention at `batch`, as `cuda.FA4SelfAttention` passes it: (q, k, v, error, flops).

    q, k and v are strided fp16 views of one fused projection (batch, tokens, heads, head size); `error(out)` is
    ‖out − ref‖/‖ref‖ on the first batch element against fp32 attention; `flops` counts the two products. (`device`
    and `tokens`: a small case on the CPU, for tests.)
    """
    import torch.nn.functional as F

    fused = torch.randn(batch, tokens, 3, HEADS, HEAD, device=device, dtype=torch.float16, generator=generator)
    q, k, v = fused.unbind(2)
    ref = F.scaled_dot_product_attention(*(t[:1].transpose(1, 2).float() for t in (q, k, v))).transpose(1, 2)

    def error(out) -> float:
        return float((out[:1].float() - ref).norm() / ref.norm())

    return q, k, v, error, 4 * batch * HEADS * tokens * tokens * HEAD
