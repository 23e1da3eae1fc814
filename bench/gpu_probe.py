"""Go/no-go probe of speed-ups for the product engine on one GPU (issue 16), with the image check in the same run.

What it answers, per candidate: how much faster than the product engine P (`cuda.compile_for_cuda`) is it for
8 candidates at 768², 25 steps, VAE decode included, and does every image stay within fp16 rounding of plain
diffusers fp16 eager (A) for the same seeds (max abs <= 2 and mean abs <= 0.10 in 0-255 levels, per image, for 3
seed sets of 8). Full-size SD1.5 components at seeded random weights (bench/sd15.py), as bench/gpu.py.

Stages (in the order given by --stages; each is skipped when its estimate would pass --deadline):
  attn   the 96x96 self-attention (9,216 tokens, 8 heads of 40, batch 16) and the other SD1.5 attention shapes, in
         the layout the fused-QKV processor hands over, per kernel: PyTorch's own choice, cuDNN, flash,
         memory-efficient, cuDNN with heads padded to 64, FlexAttention (Triton), and FlashAttention 4 (CuTe DSL,
         `flash_attn.cute`) when it imports; error against an fp32 reference
  ref    A: plain diffusers StableDiffusionControlNetPipeline, fp16, eager (images kept in --cache for later calls)
  P      the product engine; timed runs, images, GPU time per component (CUDA events) and a kernel profile
  PF     P with the 96x96 attention (and any other shape where the attn stage found FA4 faster) through FA4,
         as a custom op torch.compile leaves opaque
  blocks the UNet's 96x96 blocks (down_blocks[0], up_blocks[-1]) alone: eager, Inductor default, max-autotune
  vae    the VAE decoder alone (8 latents of 96x96): eager, Inductor default, max-autotune
  vaelayout  the VAE decoder alone, Inductor default: channels_last or contiguous, its attention as PyTorch picks or
         as SDPA's math backend (matrix products and a softmax)

Usage (device machine; bench/GPU.md gives the wheel install and the exact commands):
  PYTHONUNBUFFERED=1 python3 -W ignore bench/gpu_probe.py --out $OUT --stages attn,ref,P,blocks,vae
  python bench/gpu_probe.py --tiny --stages attn,ref,P,PF,blocks,vae      # CPU dry run, toy sizes
Writes OUT/probe.json after every stage, so a call stopped at its limit keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cuda_timing  # noqa: E402  (bench/cuda_timing.py)
from sd15 import SD15, TINY, Components, warm_as_drawn  # noqa: E402

from generator.core.engines import cuda, diffusion, loading, parameters  # noqa: E402

STARTED = time.perf_counter()
PROMPT = "a misty forest at dawn, moss, sunbeams, highly detailed, intricate"
SEED_SETS = (1000, 2000, 3000)  # 3 sets of 8 consecutive seeds
MAX_ABS, MAX_MEAN = 2, 0.10  # the bound for "images kept", per image, in 0-255 levels
# Rough cost of each stage in seconds on an H200, to stay inside one call (2026-12-01: ref 25, P 205 with a cold
# Inductor cache and 90 from a warm one, PF 150 after P on the same machine, attn 25). blocks and vae without their
# max-autotune compiles; those start only with AUTOTUNE_S[stage] seconds left (measured: 162 s for down_blocks[0],
# 315 s for the VAE decoder).
COST = dict(attn=60, ref=45, P=230, PF=200, blocks=60, vae=60, vaelayout=180)
AUTOTUNE_S = dict(blocks=180, vae=330)


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", flush=True)


# ------------------------------------------------------------------------------------------ FlashAttention 4
class FA4:
    """FlashAttention 4's forward (`flash_attn.cute.flash_attn_func`, CuTe DSL, compiled at first use) as
    `torch.ops.qart_probe.fa4(q, k, v)` on (batch, tokens, heads, head size) tensors: an op torch.compile keeps
    opaque (it cannot trace CuTe DSL), with a fake implementation for tracing."""

    calls = 0
    error: str | None = None
    ready = False

    @classmethod
    def load(cls) -> bool:
        if cls.ready or cls.error:
            return cls.ready
        try:
            import torch
            from flash_attn.cute import flash_attn_func

            # An explicit schema: this module's postponed annotations are strings, which infer_schema refuses
            # (it cost the second call of 2026-12-01 its FA4 stages).
            schema = "(Tensor q, Tensor k, Tensor v) -> Tensor"

            @torch.library.custom_op("qart_probe::fa4", mutates_args=(), schema=schema)
            def fa4(q, k, v):
                cls.calls += 1
                out = flash_attn_func(q, k, v)
                out = out[0] if isinstance(out, tuple) else out
                return out if out.is_contiguous() else out.contiguous()

            @fa4.register_fake
            def _(q, k, v):
                return q.new_empty((*q.shape[:-1], v.shape[-1]))

            cls.ready = True
        except Exception as exc:  # no wheels, no sm90 kernel, an API change: a finding, not a crash
            cls.error = f"{type(exc).__name__}: {exc}"[:500]
            log(f"FA4 unavailable: {cls.error}")
        return cls.ready

    @staticmethod
    def bshd(q, k, v):
        import torch

        return torch.ops.qart_probe.fa4(q, k, v)


class RoutedSDPA:
    """Sends the scaled-dot-product-attention calls of chosen shapes through FA4 while active.

    diffusers' processors call `F.scaled_dot_product_attention` on (batch, heads, tokens, head size) views of the
    fused QKV projection; FA4 takes (batch, tokens, heads, head size), which those views already are underneath,
    so the transposes cost nothing. Anything else (masks, causal text encoder, the VAE's head of 512) stays on
    PyTorch's kernel. `routes` holds (head size, "self" | "cross") pairs.
    """

    def __init__(self, routes: set[tuple[int, str]]):
        import torch.nn.functional as F

        self.F = F
        self.original = original = F.scaled_dot_product_attention

        def routed(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
            kind = "self" if key.shape[-2] == query.shape[-2] else "cross"
            if (attn_mask is None and not is_causal and scale is None and not kwargs and dropout_p == 0.0
                    and query.is_cuda and query.dim() == 4 and (query.shape[-1], kind) in routes):
                out = FA4.bshd(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2))
                return out.transpose(1, 2)
            return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                            scale=scale, **kwargs)

        self.routed = routed

    def __enter__(self):
        self.F.scaled_dot_product_attention = self.routed
        return self

    def __exit__(self, *exc):
        self.F.scaled_dot_product_attention = self.original


# ------------------------------------------------------------------------------------------------ the probe
class Probe:
    def __init__(self, args):
        import torch

        self.args = args
        self.torch = torch
        self.cfg = TINY if args.tiny else SD15
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.cuda = self.device == "cuda"
        self.steps = self.cfg["steps"]
        self.size = self.cfg["size"]
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.cache = Path(args.cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"stages": {}, "notes": [], "command": " ".join(sys.argv)}
        self.reference: list | None = None  # A's images per seed set
        self.routes: set[tuple[int, str]] = set()
        self.control = self._control_image()
        self.params = parameters.GenerationParams(prompt=PROMPT, steps=self.steps, size=self.size)
        self.seed_sets = [[first + i for i in range(args.n)] for first in SEED_SETS[:args.seed_sets]]
        if self.cuda:
            cuda._initialise_sdpa_priority("cuda")  # torch's own kernel order, filled in before any context
        self.parts = Components(self.cfg, self.device)  # the random weights, as bench/gpu.py's Bench builds them
        log("random weights built")

    def _control_image(self):
        """A QR-like control image (seeded 41x41 modules, three finder squares), without the QR package: speed
        does not depend on the pattern, and the probe must not depend on generator.core.codes."""
        from PIL import Image

        rng = np.random.default_rng(7)
        modules = rng.integers(0, 2, (41, 41)).astype(np.uint8)
        for y, x in ((0, 0), (0, 34), (34, 0)):
            modules[y:y + 7, x:x + 7] = 1
            modules[y + 1:y + 6, x + 1:x + 6] = 0
            modules[y + 2:y + 5, x + 2:x + 5] = 1
        pixels = np.pad((1 - modules) * 255, 4, constant_values=255).astype(np.uint8)
        return Image.fromarray(pixels).convert("RGB").resize((self.size, self.size), Image.Resampling.NEAREST)

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def module(self, cls, name: str):
        return self.parts.module(cls, name, self.torch.float16 if self.cuda else self.torch.float32)

    def pipeline(self, skip: bool):
        return self.parts.pipeline(self.torch.float16 if self.cuda else self.torch.float32, skip=skip)

    def compile_settings(self, tag: str) -> None:
        """A fresh dynamo and a compile-cache tag per variant: the attention kernel is fixed when a graph is
        traced and Inductor's on-disk graph caches do not key on it (bench/GPU.md, trap 1)."""
        import torch._dynamo
        import torch.compiler.config as compiler_config

        torch._dynamo.reset()
        if hasattr(compiler_config, "cache_key_tag"):
            compiler_config.cache_key_tag = f"qart-probe-{tag}"
        for name, value in (("recompile_limit", 64), ("cache_size_limit", 64)):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, value)

    def product_engine(self, tag: str):
        """The product's engine, built as `loading.load_engine` does on CUDA (eager with the skip on the CPU)."""
        pipe = self.pipeline(skip=True)
        if self.cuda:
            self.compile_settings(tag)
            cuda.compile_for_cuda(pipe)
        engine = diffusion.engine_from_pipeline(pipe, parameters.ModelSpec(base="random SD1.5", controlnet="random"))
        warm_as_drawn(engine, [self.params], {self.args.n})
        return engine

    # ------------------------------------------------------------------------------------------ measuring
    def generate(self, engine, seeds, steps: int | None = None):
        params = self.params if steps is None else replace(self.params, steps=steps)
        self.sync()
        t0 = time.perf_counter()
        out = engine.generate(self.control, params, seeds)
        self.sync()
        return time.perf_counter() - t0, np.stack([np.asarray(im.convert("RGB")) for im in out])

    def compare(self, images: list) -> dict | None:
        if self.reference is None:
            return None
        per_image = []
        for ref, got in zip(self.reference, images, strict=True):
            diff = np.abs(ref.astype(np.int16) - got.astype(np.int16))
            per_image += [(int(d.max()), float(d.mean())) for d in diff]
        worst_max = max(m for m, _ in per_image)
        worst_mean = max(a for _, a in per_image)
        return dict(images=len(per_image), worst_max_abs=worst_max, worst_mean_abs=round(worst_mean, 4),
                    mean_abs_all=round(statistics.mean(a for _, a in per_image), 4),
                    kept=bool(worst_max <= MAX_ABS and worst_mean <= MAX_MEAN))

    def time_engine(self, key: str, engine, label: str) -> dict:
        """Warm up, then --runs timed calls on the first seed set and one on each other set (all timed)."""
        t0 = time.perf_counter()
        for i in range(self.args.warm_calls):
            self.generate(engine, self.seed_sets[0], steps=self.args.warm_steps)
            log(f"{key}: warm-up {i + 1} ({self.args.warm_steps} steps) done at {time.perf_counter() - t0:.1f}s")
        warm = time.perf_counter() - t0
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
        times, images = [], []
        for r in range(self.args.runs):
            seconds, imgs = self.generate(engine, self.seed_sets[0])
            times.append(seconds)
            images = images or [imgs]
            log(f"{key}: run {r + 1} {seconds:.3f}s")
        for seeds in self.seed_sets[1:]:
            seconds, imgs = self.generate(engine, seeds)
            times.append(seconds)
            images.append(imgs)
            log(f"{key}: seeds {seeds[0]}.. {seconds:.3f}s")
        result = dict(label=label, warmup_s=round(warm, 1), times=[round(t, 4) for t in times],
                      median_s=round(statistics.median(times), 4),
                      p95_s=round(float(np.percentile(times, 95)), 4), min_s=round(min(times), 4),
                      peak_gib=round(self.torch.cuda.max_memory_allocated() / 2**30, 2) if self.cuda else None,
                      vs_A=self.compare(images))
        log(f"{key}: median {result['median_s']:.3f}s p95 {result['p95_s']:.3f}s vs A {result['vs_A']}")
        return result

    def components(self, engine) -> dict:
        """GPU time of the UNet, ControlNet and VAE decode in one 25-step call, from CUDA events around each."""
        if not self.cuda:
            return {}
        torch = self.torch
        pipe = engine.txt2img
        spans: dict[str, list] = {"unet": [], "controlnet": [], "vae_decode": []}
        handles = []
        for name, module in (("unet", pipe.unet), ("controlnet", pipe.controlnet)):
            def pre(_m, _a, name=name):
                event = torch.cuda.Event(enable_timing=True)
                event.record()
                spans[name].append([event, None])

            def post(_m, _a, _o, name=name):
                event = torch.cuda.Event(enable_timing=True)
                event.record()
                spans[name][-1][1] = event

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
        decode = pipe.vae.decode

        def timed_decode(*args, **kwargs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = decode(*args, **kwargs)
            end.record()
            spans["vae_decode"].append([start, end])
            return out

        pipe.vae.decode = timed_decode
        try:
            wall, _ = self.generate(engine, self.seed_sets[0])
        finally:
            pipe.vae.decode = decode
            for handle in handles:
                handle.remove()
        result = {name: dict(calls=len(s), ms=round(sum(a.elapsed_time(b) for a, b in s if b is not None), 1))
                  for name, s in spans.items()}
        result["wall_ms"] = round(wall * 1000, 1)
        result["rest_ms"] = round(result["wall_ms"] - sum(v["ms"] for v in result.values() if isinstance(v, dict)), 1)
        log(f"components: {result}")
        return result

    def kernel_profile(self, engine) -> dict:
        """GPU kernel time of one 25-step call by kind (attention, convolution, matrix product, Inductor's fused
        kernels, the rest) and the 15 costliest kernels; the sum against the wall time shows idle gaps."""
        if not self.cuda:
            return {}
        torch = self.torch
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            wall, _ = self.generate(engine, self.seed_sets[0])
        kinds: dict[str, float] = {}
        kernels = []
        for event in prof.key_averages():
            if getattr(event, "device_type", None) != torch.autograd.DeviceType.CUDA:
                continue
            ms = getattr(event, "device_time_total", 0.0) / 1000
            if ms <= 0:
                continue
            kind = kernel_kind(event.key)
            kinds[kind] = kinds.get(kind, 0.0) + ms
            kernels.append((ms, event.count, event.key[:140]))
        kernels.sort(reverse=True)
        result = dict(wall_ms=round(wall * 1000, 1), kernel_ms=round(sum(kinds.values()), 1),
                      by_kind={k: round(v, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
                      top=[dict(ms=round(ms, 1), calls=n, name=name) for ms, n, name in kernels[:15]])
        log(f"kernel profile: wall {result['wall_ms']} ms, kernels {result['kernel_ms']} ms, {result['by_kind']}")
        return result

    # ---------------------------------------------------------------------------------------------- stages
    def stage_attn(self) -> dict:
        """Each attention shape of SD1.5 at 768² and batch 16, per kernel, in the fused-QKV processor's layout."""
        torch = self.torch
        shapes = [("96x96 self", 9216, 9216, 40, 161), ("48x48 self", 2304, 2304, 80, 161),
                  ("24x24 self", 576, 576, 160, 161), ("96x96 cross", 9216, 77, 40, 161)]
        if not self.cuda:
            shapes = [(n, s // 64, kv if kv == 77 else kv // 64, d, c) for n, s, kv, d, c in shapes]
        fa4 = FA4.load() if self.cuda else False
        flex = None
        try:  # Triton on CUDA; the CPU dry run leaves it out (a C++ compile on two cores)
            if not self.cuda:
                raise RuntimeError("not tried on the CPU")
            from torch.nn.attention.flex_attention import flex_attention

            flex = torch.compile(flex_attention, dynamic=False)
        except Exception as exc:
            self.results["notes"].append(f"FlexAttention unavailable: {exc}")
        result: dict = {"fa4": FA4.error or ("loaded" if fa4 else "not tried on the CPU")}
        for name, s_q, s_kv, d, calls in shapes:
            row = self._attention_row(s_q, s_kv, d, calls, flex, fa4)
            result[name] = row
            log(f"attn {name}: " + ", ".join(f"{k} {v['ms']} ms ({v['tflops']} TF/s, err {v['rel_err']})"
                                            if isinstance(v, dict) and "ms" in v else f"{k} {v}"
                                            for k, v in row.items() if k != "shape"))
            self.free()
        result["fa4_routes"] = sorted(self.routes)
        return result

    def _attention_row(self, s_q: int, s_kv: int, d: int, calls: int, flex, fa4: bool) -> dict:
        torch = self.torch
        from torch.nn.attention import SDPBackend, sdpa_kernel

        F = torch.nn.functional
        batch, heads = (16 if self.cuda else 2), 8
        dtype = torch.float16 if self.cuda else torch.float32
        torch.manual_seed(1)
        if s_q == s_kv:  # self-attention: views into one fused QKV projection, as FusedAttnProcessor2_0 makes
            qkv = torch.randn(batch, s_q, 3 * heads * d, device=self.device, dtype=dtype)
            q, k, v = (t.view(batch, s_q, heads, d) for t in qkv.split(heads * d, dim=-1))
        else:
            q = torch.randn(batch, s_q, heads * d, device=self.device, dtype=dtype).view(batch, s_q, heads, d)
            kv = torch.randn(batch, s_kv, 2 * heads * d, device=self.device, dtype=dtype)
            k, v = (t.view(batch, s_kv, heads, d) for t in kv.split(heads * d, dim=-1))
        qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, S, D), what SDPA is given
        with sdpa_kernel([SDPBackend.MATH]):  # fp32 reference on the first sample
            ref = F.scaled_dot_product_attention(*(t[:1].float() for t in (qt, kt, vt)))
        flops = 4 * batch * heads * s_q * s_kv * d
        row: dict = {"calls_per_generation": calls, "shape": [batch, heads, s_q, s_kv, d]}
        try:
            row["torch_choice"] = str(SDPBackend(torch._fused_sdp_choice(qt, kt, vt)).name)
        except Exception as exc:
            row["torch_choice"] = f"unknown ({type(exc).__name__})"

        def sdpa():
            return F.scaled_dot_product_attention(qt, kt, vt)

        def pad64():  # zero-padded heads leave the scores and the first d output columns as they were
            padded = [F.pad(t, (0, 64 - d)) for t in (qt, kt, vt)]
            return F.scaled_dot_product_attention(*padded, scale=1 / math.sqrt(d))[..., :d]

        candidates = {"default": sdpa}
        if self.cuda:
            for backend in ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION"):
                candidates[backend.split("_")[0].lower()] = _pinned(sdpa, [getattr(SDPBackend, backend)])
            if d < 64:
                candidates["cudnn_pad64"] = _pinned(pad64, [SDPBackend.CUDNN_ATTENTION])
        if flex is not None:
            candidates["flex"] = lambda: flex(qt, kt, vt)
        if fa4:
            candidates["fa4"] = lambda: FA4.bshd(q, k, v).transpose(1, 2)
        for kernel, fn in candidates.items():
            try:
                t0 = time.perf_counter()
                out = fn()
                self.sync()
                first_s = time.perf_counter() - t0
                err = float((out[:1].float() - ref).norm() / ref.norm())
                ms = bench_ms(fn, torch, self.cuda)
                row[kernel] = dict(ms=round(ms, 3), tflops=round(flops / ms / 1e9, 1), rel_err=float(f"{err:.2e}"),
                                   first_call_s=round(first_s, 1))
            except Exception as exc:
                row[kernel] = dict(error=f"{type(exc).__name__}: {exc}"[:300])
        base, fast = row.get("default", {}).get("ms"), row.get("fa4", {})
        if base and fast.get("ms") and fast["rel_err"] < 5e-3 and fast["ms"] < 0.95 * base:
            self.routes.add((d, "self" if s_q == s_kv else "cross"))
            row["fa4_saves_ms_per_generation"] = round((base - fast["ms"]) * calls, 1)
        return row

    def stage_ref(self) -> dict:
        cached = [self.cache / f"ref_A_{seeds[0]}_{self.args.n}.npy" for seeds in self.seed_sets]
        if all(p.exists() for p in cached) and not self.args.tiny:
            self.reference = [np.load(p) for p in cached]
            return dict(note="A's images loaded from the cache of an earlier call on this machine")
        pipe = self.pipeline(skip=False)
        engine = diffusion.engine_from_pipeline(pipe, parameters.ModelSpec(base="random SD1.5", controlnet="random"))
        self.generate(engine, self.seed_sets[0], steps=self.args.warm_steps)
        times, images = [], []
        for seeds, path in zip(self.seed_sets, cached, strict=True):
            seconds, imgs = self.generate(engine, seeds)
            times.append(round(seconds, 4))
            images.append(imgs)
            np.save(path, imgs)
            log(f"A: seeds {seeds[0]}.. {seconds:.3f}s")
        self.reference = images
        a = images[0].astype(np.int16)
        unrelated = round(float(np.abs(a[0] - a[1]).mean()), 2) if len(a) > 1 else None
        del engine, pipe
        self.free()
        return dict(label="A: plain diffusers fp16, eager", times=times, median_s=statistics.median(times),
                    unrelated_seeds_mean_abs=unrelated)

    def stage_P(self) -> dict:
        engine = self.product_engine("P")
        result = self.time_engine("P", engine, "P: the product engine (cuda.compile_for_cuda)")
        result["components"] = self.components(engine)
        result["kernels"] = self.kernel_profile(engine)
        del engine
        self.free()
        return result

    def stage_PF(self) -> dict:
        if not self.cuda:
            return dict(skipped="FA4 needs CUDA")
        if not FA4.load():
            return dict(skipped=f"FA4 unavailable: {FA4.error}")
        routes = self.routes or {(int(d), kind) for d, kind in
                                 (r.split(":") for r in self.args.fa4_routes.split(",") if r)}
        if not routes:
            return dict(skipped="the attn stage found no shape where FA4 is faster")
        with RoutedSDPA(routes):
            engine = self.product_engine("PF")
            result = self.time_engine("PF", engine, f"P with FA4 for {sorted(routes)}")
            FA4.calls = 0
            result["components"] = self.components(engine)
            result["fa4_calls_per_generation"] = FA4.calls  # 161 for the 96x96 self-attention alone
            result["kernels"] = self.kernel_profile(engine)
        result["routes"] = sorted(routes)
        del engine
        self.free()
        return result

    def _unet_block_inputs(self, unet):
        """The real inputs of the 96x96 blocks, captured from one UNet call at batch 16 (2 x 8 candidates)."""
        torch = self.torch
        captured = {}
        hooks = [block.register_forward_pre_hook(
            lambda _m, args, kwargs, name=name: captured.setdefault(name, (args, kwargs)), with_kwargs=True)
            for name, block in (("down_blocks[0]", unet.down_blocks[0]), ("up_blocks[-1]", unet.up_blocks[-1]))]
        latent = self.size // 8
        dtype = unet.dtype
        with torch.inference_mode():
            sample = torch.randn(16, 4, latent, latent, device=self.device, dtype=dtype)
            text = torch.randn(16, 77, self.cfg["unet"]["cross_attention_dim"], device=self.device, dtype=dtype)
            unet(sample.to(memory_format=torch.channels_last), torch.tensor(500, device=self.device), text)
        for hook in hooks:
            hook.remove()
        return captured

    def compiled_variants(self, name: str, module, call, row: dict, autotune_s: float) -> None:
        """eager / Inductor default / max-autotune (no CUDA graphs) of one module on its real inputs, into `row`
        (saved after each, so a call stopped in a long autotune keeps the others)."""
        torch = self.torch
        modes = [("eager", None), ("inductor", "default"), ("max_autotune", "max-autotune-no-cudagraphs")]
        eager_out = None
        for label, mode in modes:
            left = self.args.deadline - (time.perf_counter() - STARTED)
            if mode == "max-autotune-no-cudagraphs" and left < autotune_s and not self.args.tiny:
                row[label] = dict(skipped=f"{left:.0f}s left < {autotune_s:.0f}s")
                continue
            try:
                self.compile_settings(f"{name}-{label}")
                fn = module
                if mode is not None:
                    options = {} if mode == "default" else dict(mode=mode)
                    fn = torch.compile(module, fullgraph=False, **(options if self.cuda else dict(backend="aot_eager")))
                t0 = time.perf_counter()
                with torch.inference_mode():
                    reference = call(fn)
                    self.sync()
                    first = time.perf_counter() - t0
                    ms = bench_ms(partial(call, fn), torch, self.cuda, reps=10)
                row[label] = dict(ms=round(ms, 3), first_call_s=round(first, 1))
                if label == "eager":
                    eager_out = reference
                else:
                    diff = (reference.float() - eager_out.float()).abs().max()
                    row[label]["max_abs_vs_eager"] = round(float(diff), 4)
            except Exception as exc:
                row[label] = dict(error=f"{type(exc).__name__}: {exc}"[:300])
            log(f"{name} {label}: {row[label]}")
            self.save()

    def stage_blocks(self) -> dict:
        from diffusers import UNet2DConditionModel

        torch = self.torch
        unet = self.module(UNet2DConditionModel, "unet")
        unet.fuse_qkv_projections()
        unet.to(memory_format=torch.channels_last)
        inputs = self._unet_block_inputs(unet)
        result = self.results["stages"].setdefault("blocks", {})
        for name, block in (("down_blocks[0]", unet.down_blocks[0]), ("up_blocks[-1]", unet.up_blocks[-1])):
            args, kwargs = inputs[name]

            def call(fn, args=args, kwargs=kwargs):
                out = fn(*args, **kwargs)
                return out[0] if isinstance(out, tuple) else out

            result[name] = {}
            self.compiled_variants(name, block, call, result[name], AUTOTUNE_S["blocks"])
        del unet
        self.free()
        return result

    def stage_vae(self) -> dict:
        from diffusers import AutoencoderKL

        torch = self.torch
        vae = self.module(AutoencoderKL, "vae")
        vae.to(memory_format=torch.channels_last)
        latent = self.size // 8
        z = torch.randn(self.args.n, 4, latent, latent, device=self.device, dtype=vae.dtype) * 5
        z = vae.post_quant_conv(z)

        def call(fn):
            return fn(z)

        result = self.results["stages"].setdefault("vae", {})
        result["decoder"] = {}
        self.compiled_variants("vae.decoder", vae.decoder, call, result["decoder"], AUTOTUNE_S["vae"])
        del vae
        self.free()
        return result

    def stage_vaelayout(self) -> dict:
        """The VAE decoder alone (8 latents of 96x96), Inductor default, in four forms: channels_last (the product)
        or contiguous, with its mid-block attention (one head of 512: no cuDNN or flash kernel takes it, so the
        memory-efficient one runs) as PyTorch chooses or as plain matrix products and a softmax (SDPA's math
        backend, which Inductor fuses). Each form against the eager channels_last decoder (fp16 rounding)."""
        from diffusers import AutoencoderKL
        from torch.nn.attention import SDPBackend, sdpa_kernel

        torch = self.torch
        vae = self.module(AutoencoderKL, "vae")
        latent = self.size // 8
        z = torch.randn(self.args.n, 4, latent, latent, device=self.device, dtype=vae.dtype) * 5
        with torch.inference_mode():
            z = vae.post_quant_conv(z)
            vae.to(memory_format=torch.channels_last)
            reference = vae.decoder(z.contiguous(memory_format=torch.channels_last)).float()
        self.sync()
        result = {}
        for layout in ("channels_last", "contiguous"):
            memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            vae.to(memory_format=memory_format)
            inputs = z.contiguous(memory_format=memory_format)
            for attention in ("default", "math"):
                name = f"{layout}, attention {attention}"
                try:
                    self.compile_settings(f"vae-{layout}-{attention}")
                    fn = torch.compile(vae.decoder, fullgraph=False,
                                       **({} if self.cuda else dict(backend="aot_eager")))
                    context = (sdpa_kernel([SDPBackend.MATH]) if attention == "math"
                               else contextlib.nullcontext())
                    t0 = time.perf_counter()
                    with torch.inference_mode(), context:
                        out = fn(inputs)
                        self.sync()
                        first = time.perf_counter() - t0
                        ms = bench_ms(partial(fn, inputs), torch, self.cuda, reps=10)
                    result[name] = dict(ms=round(ms, 3), first_call_s=round(first, 1),
                                        max_abs_vs_eager=round(float((out.float() - reference).abs().max()), 4),
                                        mean_abs_vs_eager=round(float((out.float() - reference).abs().mean()), 6))
                except Exception as exc:
                    result[name] = dict(error=f"{type(exc).__name__}: {exc}"[:300])
                log(f"vae decoder {name}: {result[name]}")
                self.save()
        del vae
        self.free()
        return result

    # ---------------------------------------------------------------------------------------------- output
    def environment(self) -> None:
        torch = self.torch
        import diffusers

        env = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), diffusers=diffusers.__version__, device=self.device)
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            env.update(gpu=props.name, sm_count=props.multi_processor_count)
        self.results["environment"] = env
        log(f"environment: {env}")

    def save(self) -> None:
        self.results["elapsed_s"] = round(time.perf_counter() - STARTED, 1)
        (self.out / "probe.json").write_text(json.dumps(self.results, indent=1, default=str))

    def summary(self) -> str:
        stages = self.results["stages"]
        lines = ["| variant | median s | p95 s | worst image vs A: max / mean abs | kept |", "|---|---|---|---|---|"]
        for key in ("ref", "P", "PF"):
            v = stages.get(key, {})
            if "median_s" in v:
                d = v.get("vs_A") or {}
                lines.append(f"| {key} | {v['median_s']:.3f} | {v.get('p95_s', '')} | "
                             f"{d.get('worst_max_abs', '')} / {d.get('worst_mean_abs', '')} | {d.get('kept', '')} |")
        return "\n".join(lines)


def _pinned(fn, backends):
    """`fn` run with only these SDPA backends allowed."""
    from torch.nn.attention import sdpa_kernel

    def run():
        with sdpa_kernel(backends):
            return fn()

    return run


def bench_ms(fn, torch, cuda: bool, reps: int = 20) -> float:
    """Median milliseconds of `fn` (CUDA events per call, after 3 warm-up calls).

    Each call is waited for, so a call's time includes its host-side launch latency (a fraction of a millisecond:
    Python, the SDPA context, FA4's launcher); the kernels' own times inside the pipeline come from the profile.
    """
    for _ in range(3):
        fn()
    if not cuda:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    return statistics.median(cuda_timing.event_times(fn, torch, reps, warm=0))


def kernel_kind(name: str) -> str:
    low = name.lower()
    if any(w in low for w in ("fmha", "flash", "attention", "sdpa", "attn")):
        return "attention"
    if any(w in low for w in ("fprop", "conv", "implicit_gemm", "dgrad", "winograd")):
        return "convolution"
    if any(w in low for w in ("gemm", "nvjet", "cutlass", "matmul", "triton_tem")):
        return "matrix product"
    if low.startswith(("triton_red", "triton_per")):
        return "inductor reduction (norms)"
    if low.startswith("triton_poi"):
        return "inductor pointwise"
    if "group_norm" in low or "groupnorm" in low:
        return "eager group norm"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "var" / "gpu_probe"))
    parser.add_argument("--cache", default="/tmp/qart_probe", help="keeps A's images for a later call")
    parser.add_argument("--stages", default="attn,ref,P,PF,blocks,vae")
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU: a dry run of every stage")
    parser.add_argument("--n", type=int, default=8, help="candidates per call")
    parser.add_argument("--seed-sets", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="timed calls on the first seed set")
    parser.add_argument("--warm-steps", type=int, default=5)
    parser.add_argument("--warm-calls", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds after start; later stages skip")
    parser.add_argument("--skip-done", default="",
                        help="stages to skip when an earlier call on this machine saved their result in --cache")
    parser.add_argument("--fa4-routes", default="40:self",
                        help="PF's FA4 shapes when no attn stage ran: head size:self|cross, comma-separated")
    args = parser.parse_args()
    if args.tiny:
        args.runs, args.seed_sets, args.warm_calls, args.warm_steps = 2, 2, 1, 2
    loading.quiet_libraries()
    probe = Probe(args)
    if args.tiny:
        probe.steps = 3
        probe.params = replace(probe.params, steps=3)
    probe.environment()
    probe.save()
    skip_done = {s.strip() for s in args.skip_done.split(",") if s.strip()}
    for stage in [s.strip() for s in args.stages.split(",") if s.strip()]:
        done = probe.cache / f"stage_{stage}.json"
        if stage in skip_done and done.exists():
            probe.results["stages"][stage] = dict(json.loads(done.read_text()), note="from an earlier call")
            log(f"skip {stage}: measured by an earlier call on this machine")
            continue
        elapsed = time.perf_counter() - STARTED
        if not args.tiny and elapsed + COST[stage] > args.deadline:
            log(f"skip {stage}: {elapsed:.0f}s elapsed + ~{COST[stage]}s > deadline {args.deadline:.0f}s")
            probe.results["stages"][stage] = dict(skipped="not enough time left in this call")
            probe.save()
            continue
        log(f"=== {stage}")
        t0 = time.perf_counter()
        try:
            probe.results["stages"][stage] = getattr(probe, f"stage_{stage}")()
        except Exception as exc:  # one failing stage must not lose the others
            import traceback

            traceback.print_exc()
            probe.results["stages"][stage] = dict(error=f"{type(exc).__name__}: {exc}"[:2000])
            probe.free()
        probe.results["stages"][stage]["stage_s"] = round(time.perf_counter() - t0, 1)
        probe.save()
        if "error" not in probe.results["stages"][stage]:
            done.write_text(json.dumps(probe.results["stages"][stage], default=str))
    probe.save()
    log("done")
    print(probe.summary(), flush=True)


if __name__ == "__main__":
    main()
