"""FlashAttention 4's sm90 forward with part of its softmax exponentials computed on the FMA units (issue 16).

At SD1.5's 96x96 self-attention (heads of 40) FA4 runs at ~350 TFLOP/s, where the products alone would allow ~790:
with so small a head, each score costs 80 multiply-adds in the two products but one exponential, and the
exponentials (MUFU.EX2, 16 a clock on each multiprocessor) bound the kernel (10.9 G of them a call at batch 16:
~2.6 ms of the measured ~5 ms). FA4's Blackwell kernel moves a share of its exponentials to the FMA units (a
polynomial for 2^frac(x), `flash_attn.cute.utils.ex2_emulation`); its Hopper kernel does not. This bench gives the
Hopper kernel's online softmax (`flash_attn.cute.softmax.Softmax.online_softmax`, which FA4's sm90 forward calls)
the same choice, element by element (in each thread's row fragment, index i % FREQ < RES: polynomial; others:
ex2.approx), and measures speed and error against fp32 attention. A degree-3 polynomial errs by ~1e-4 relative,
below fp16's rounding of the probabilities (4.9e-4 between neighbours) that the P@V product rounds them to anyway.

    python3 bench/fa4_exp.py --out $OUT [--reps 40] [--variants mufu,poly3-1of4]

Writes OUT/fa4_exp.json; prints a table. `install(name)` (used by bench/gpu.py's `fa4exp` stage and bench/rq_job.py's
`code-exp` kind) makes every later FA4 compile of this process use variant `name` and empties FA4's in-memory kernel
cache, so the next call compiles it (~3 s). Needs a Hopper GPU and flash-attn-4 (bench/GPU.md says how it travels).
No `from __future__ import annotations` here: the CuTe DSL reads `cutlass.Constexpr` from live annotations.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# name -> (FREQ, RES, polynomial degree): element i of a row fragment takes the polynomial when i % FREQ < RES.
VARIANTS = {
    "mufu": None,  # FA4 as shipped: every exponential on the MUFU unit
    "poly3-1of8": (8, 1, 3),
    "poly3-1of4": (4, 1, 3),
    "poly3-3of8": (8, 3, 3),
    "poly3-1of2": (2, 1, 3),
    "poly2-1of4": (4, 1, 2),
}
FREQ, RES, DEGREE = 4, 1, 3  # read while FA4's kernel is traced (module globals: the DSL reads them as constants)
_original = None


def install(name: str) -> None:
    """Every FA4 kernel compiled from now on in this process uses variant `name` (see VARIANTS)."""
    global _original, FREQ, RES, DEGREE
    from flash_attn.cute import interface, softmax

    if _original is None:
        _original = softmax.Softmax.online_softmax
    setting = VARIANTS[name]
    if setting is None:
        softmax.Softmax.online_softmax = _original
    elif cutlass is None:
        raise RuntimeError("FA4's softmax variants need the CuTe DSL (nvidia-cutlass-dsl), which is not importable")
    else:
        FREQ, RES, DEGREE = setting
        softmax.Softmax.online_softmax = online_softmax_mixed
    interface._flash_attn_fwd.compile_cache.clear()


try:  # the CuTe DSL: only where flash-attn-4 travelled (the device machine)
    import cutlass
    import cutlass.cute as cute
    import flash_attn.cute.utils as utils
    from cutlass import Float32
    from quack import layout_utils
except ImportError:
    cutlass = None

if cutlass is not None:

    @cute.jit
    def online_softmax_mixed(self, acc_S: cute.Tensor, is_first: cutlass.Constexpr[bool] = False,
                             check_inf: cutlass.Constexpr[bool] = True) -> cute.Tensor:
        """FA4's `Softmax.online_softmax` (flash-attn-4 4.0.0b36), with each row's exponentials split between
        the polynomial and ex2.approx as FREQ, RES and DEGREE say (module level: the DSL re-reads its source)."""
        acc_S_mn = layout_utils.reshape_acc_to_mn(acc_S)
        row_scale = cute.make_fragment_like(self.row_max, Float32)
        row_max = self.row_max
        row_sum = self.row_sum
        scale_log2 = self.scale_log2
        arch = self.arch
        for r in cutlass.range(cute.size(row_max), unroll_full=True):
            acc_S_row = acc_S_mn[r, None].load()
            row_max_cur = utils.fmax_reduce(
                acc_S_row, init_val=row_max[r] if cutlass.const_expr(not is_first) else None, arch=arch)
            row_max_cur = cute.arch.warp_reduction_max(row_max_cur, threads_in_group=4)
            row_max_prev = row_max[r]
            row_max[r] = row_max_cur
            if cutlass.const_expr(check_inf):
                row_max_cur = 0.0 if row_max_cur == -Float32.inf else row_max_cur
            row_max_cur_scaled = row_max_cur * scale_log2
            x = cute.make_rmem_tensor(acc_S_row.shape, Float32)
            x.store(acc_S_row * scale_log2 - row_max_cur_scaled)
            for i in cutlass.range_constexpr(cute.size(acc_S_row.shape)):
                if cutlass.const_expr(i % FREQ < RES):
                    x[i] = utils.ex2_emulation(x[i], poly_degree=DEGREE)
                else:
                    x[i] = cute.math.exp2(x[i], fastmath=True)
            acc_S_row_exp = x.load()
            if cutlass.const_expr(is_first):
                acc_S_row_sum = utils.fadd_reduce(acc_S_row_exp, init_val=None, arch=arch)
                row_scale[r] = 1.0
            else:
                row_scale[r] = cute.math.exp2((row_max_prev - row_max_cur) * scale_log2, fastmath=True)
                acc_S_row_sum = utils.fadd_reduce(acc_S_row_exp, init_val=row_sum[r] * row_scale[r], arch=arch)
            row_sum[r] = acc_S_row_sum
            acc_S_mn[r, None].store(acc_S_row_exp)
        return row_scale


def promising(path: Path, batch: int = 16, faster: float = 0.98, error: float = 1.5) -> list[str]:
    """The variants that `main` measured (its fa4_exp.json at `path`) at least 2 % faster than the shipped kernel at
    `batch`, with an error at most 1.5 times its own, fastest first; none where the file is missing."""
    if not path.is_file():
        return []
    measured = json.loads(path.read_text())["variants"]
    shipped = measured.get(f"{batch}/mufu", {})
    if "median_ms" not in shipped:
        return []
    found = [(entry["median_ms"], entry["variant"]) for key, entry in measured.items()
             if key.startswith(f"{batch}/") and entry.get("variant") != "mufu" and "median_ms" in entry
             and entry["median_ms"] < faster * shipped["median_ms"] and entry["error"] <= error * shipped["error"]]
    return [name for _, name in sorted(found)]


def main() -> None:
    import cuda_timing  # bench/cuda_timing.py

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batches", default="16,8", help="batch sizes (16: guided; 8: a shared half, few-step)")
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds: start no variant after this")
    args = parser.parse_args()
    started = time.perf_counter()

    import torch
    from flash_attn.cute import interface

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                   shape=[cuda_timing.TOKENS, cuda_timing.HEADS, cuda_timing.HEAD], reps=args.reps, variants={})
    generator = torch.Generator(device="cuda").manual_seed(0)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    for batch in [int(b) for b in args.batches.split(",")]:
        q, k, v, error, flops = cuda_timing.self_attention_case(torch, batch, generator)
        baseline = None
        for name in names + (["mufu"] if names and names[0] == "mufu" else []):  # the baseline again, last
            if time.perf_counter() - started > args.deadline:
                print(f"skip {name} at batch {batch}: past the deadline", flush=True)
                continue
            key = f"{batch}/{name}" + ("/again" if f"{batch}/{name}" in results["variants"] else "")
            entry = dict(batch=batch, variant=name, setting=VARIANTS[name])
            try:
                install(name)
                t0 = time.perf_counter()
                out = interface._flash_attn_fwd(q, k, v)[0]
                torch.cuda.synchronize()
                entry["first_call_s"] = round(time.perf_counter() - t0, 2)  # the CuTe DSL compile
                entry["error"] = error(out)
                entry["max_abs_vs_mufu"] = (float((out.float() - baseline).abs().max())
                                            if baseline is not None else 0.0)
                if baseline is None and name == "mufu":
                    baseline = out.float()
                times = cuda_timing.event_times(lambda q=q, k=k, v=v: interface._flash_attn_fwd(q, k, v), torch,
                                                args.reps)
            except Exception as exc:  # a variant that does not compile: record it and go on
                entry["failed"] = f"{type(exc).__name__}: {exc}"[:600]
                print(f"batch {batch} {name}: failed: {entry['failed'][:300]}", flush=True)
                results["variants"][key] = entry
                continue
            entry.update(median_ms=round(statistics.median(times), 4), min_ms=round(min(times), 4),
                         tflops=round(flops / statistics.median(times) / 1e9, 1))
            results["variants"][key] = entry
            print(f"batch {batch} {name}: {entry['median_ms']:.3f} ms ({entry['tflops']} TFLOP/s), error "
                  f"{entry['error']:.2e}, max abs vs mufu {entry['max_abs_vs_mufu']:.2e}, "
                  f"compile {entry['first_call_s']} s", flush=True)
            (out_dir / "fa4_exp.json").write_text(json.dumps(results, indent=1))
        q = k = v = error = baseline = None
        torch.cuda.empty_cache()
    install("mufu")
    (out_dir / "fa4_exp.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
