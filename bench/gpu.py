"""GPU generation speed: full-size SD1.5 UNet + QR ControlNet + VAE + CLIP text encoder at random weights.

Speed does not depend on weight values, and no weights can be downloaded on the device machine, so every
component is built from SD1.5's configs in code with seeded random weights. The benchmark times the
product's own path (`diffusion.Engine.generate`: 8 candidates in one batched call, 768², 25 steps,
classifier-free guidance, DPM++ 2M Karras, control start 0.25) for several versions of the engine, checks
that each version makes the same images as the plain diffusers pipeline for the same seeds, and times the
whole job core (`ranking.best_of_n` + PNG encoding) with the fastest engine.

Variants (each: warm-up, then `--runs` timed runs; median, p95, peak GPU memory):
  A  plain diffusers StableDiffusionControlNetPipeline, fp16, ControlNetModel, eager (the baseline)
  B  A + the ControlNet skip (generator.core.engines.controlnet's QRControlNet: no ControlNet work while its scale is 0)
  C  B + channels_last + fused QKV projections (UNet, ControlNet, VAE) + cudnn.benchmark; SDPA as default
  D  C + torch.compile (inductor, mode "default", fullgraph=False) of UNet, ControlNet and VAE decoder
  F  C + torch.compile mode "reduce-overhead" (CUDA graphs) for UNet and ControlNet
  G  D with the engine's cuDNN attention preference (Engine.attention = "cudnn": cuDNN, flash, efficient, math)
  E  bf16 version of the fastest of C/D/F measured so far
  R  (reference, untimed) A in fp32 with TF32 off: how far fp16 itself is from exact arithmetic
  P  the product engine (cuda.compile_for_cuda, what a single-GPU worker runs: FA4 for the 96x96 self-attention
     where flash-attn-4 imports on Hopper); P0: P without FA4; PG: P with CUDA graphs; P8: P with FP8 products in
     the linear layers (bench/fp8.py, torchao; measured slower, not in the product; its difference from A is
     reported); PI: P with classifier-free guidance on the first 60 % of the steps only (a probe; changes the images)
With --fewstep the product variants also carry the few-step preset (a random rank-64 LoRA fused into a copy of the
UNet, as fewstep.load_fewstep_unet reads a real one) and time it at --fewstep-steps; with --seed-sets 3, A and the
product variants also draw seeds 2000.. and 3000.. and every product image is checked against A's (max abs <= 2,
mean abs <= 0.10).
Other stages: split (diffusion.SplitEngine over every GPU here, PG replicas as load_split_engine makes them),
job (best_of_n + PNGs), rq (whole jobs through Redis, RQ and Django; --rq-engine P or split), turbo, sdpa,
decoder (P's decoder with and without CUDA graphs), decoder-autotune (P's decoder under Inductor's max-autotune, left
in P's engine for an rq stage after it).
A-F and R run with Engine.attention = "default" (PyTorch's own kernel choice: on an H200 with torch 2.11 and
cuDNN 9.19 that is already cuDNN for SD1.5's attention, in a fresh process), as first measured; the product's
default is now "default" (forcing cuDNN gained 0.4 %: PyTorch already chose it on the H200). After the timed
runs, one 2-step call runs under torch.profiler to record which attention
ops and kernels the variant really used ("kernels" in the JSON): check it before reading a difference as a
kernel's. Compiled graphs are cached per attention setting (torch.compiler.config.cache_key_tag).

Usage (device machine; see bench/GPU.md for the wheels and the exact command):
  PYTHONUNBUFFERED=1 python3 bench/gpu.py --out $OUT
  python bench/gpu.py --tiny            # CPU dry run: toy sizes, 4 steps, 2 runs
Results go to OUT/gpu_results.json and OUT/gpu_results.md after every stage (partial results survive a
timeout); the reference images of A are kept in --cache (default /tmp/qart_bench) so a second call on the
same warm machine can skip A. Compiled variants share Inductor's on-disk cache (/tmp/torchinductor_*): the second
compiled variant of a process (or call on the same warm machine) compiles much faster.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fp8 as fp8_mod  # noqa: E402  (bench/fp8.py: variant P8's FP8 products, not in the product)
from sd15 import SD15, TINY, Components, warm_as_drawn  # noqa: E402  (SD1.5's configs, full and toy size)

from generator.core.codes import qr  # noqa: E402
from generator.core.engines import aesthetics, cuda, diffusion, fewstep, loading, parameters, tiny  # noqa: E402

# The verifier's stack (ranking, decoders: OpenCV, zxing-cpp, zbar) loads only in the stages that time whole jobs, so
# the generation stages run with diffusers and qrcode alone (the call that carries FlashAttention 4 has no room for
# OpenCV's 39 MB).

STARTED = time.perf_counter()
CONTENT = "https://qart.example/r/AbC123"
PROMPT = "a misty forest at dawn, moss, sunbeams, highly detailed, intricate"
FIRST_SEED = 1000

VARIANTS = {
    "A": dict(label="plain diffusers fp16, eager", skip=False, opt=False, compile=None, dtype="fp16",
              attention="default"),
    "B": dict(label="A + ControlNet skip (QRControlNet)", skip=True, opt=False, compile=None, dtype="fp16",
              attention="default"),
    "C": dict(label="B + channels_last + fused QKV + cudnn.benchmark", skip=True, opt=True, compile=None,
              dtype="fp16", attention="default"),
    "D": dict(label="C + torch.compile (inductor default)", skip=True, opt=True, compile="default", dtype="fp16",
              attention="default"),
    "F": dict(label="C + torch.compile reduce-overhead (CUDA graphs)", skip=True, opt=True,
              compile="reduce-overhead", dtype="fp16", attention="default"),
    "G": dict(label="D + cuDNN attention first (Engine.attention='cudnn')", skip=True, opt=True,
              compile="default", dtype="fp16", attention="cudnn"),
    "R": dict(label="A in fp32, TF32 off (reference, untimed)", skip=False, opt=False, compile=None,
              dtype="fp32", attention="default"),
    "P": dict(label="the product: B + cuda.compile_for_cuda (what load_engine does on CUDA)", skip=True,
              opt=False, compile=None, dtype="fp16", attention="default", product=True),
    "P0": dict(label="P without FlashAttention 4 (cuDNN attention throughout, the product before issue 16)",
               skip=True, opt=False, compile=None, dtype="fp16", attention="default", product=True, fa4=False),
    "P0E": dict(label="P0 with the ControlNet's conditioning embedding on every step (as diffusers; the product "
                      "before issue 16's fifth step embeds once per generation)", skip=True, opt=False, compile=None,
                dtype="fp16", attention="default", product=True, fa4=False, embed_once=False),
    "PW": dict(label="P with the guided batch whole up to the first cross-attention (no shared halves, guidance.py: "
                     "the product before issue 16's sixth step)", skip=True, opt=False, compile=None, dtype="fp16",
               attention="default", product=True, shared_halves=False),
    "PU": dict(label="P with diffusers' upsampling layers (no folding, upsampling.py: the product before issue 16's "
                     "ninth step)", skip=True, opt=False, compile=None, dtype="fp16", attention="default", product=True,
               fold=False),
    "PB": dict(label="P decoding the whole batch at once (Engine.decode_group = 0), as the product did before "
                     "issue 16's ninth step", skip=True, opt=False, compile=None, dtype="fp16",
               attention="default", product=True, decode_whole=True),
    "P0C": dict(label="P0 with the VAE decoder contiguous (NCHW) instead of channels_last (a probe)", skip=True,
                opt=False, compile=None, dtype="fp16", attention="default", product=True, fa4=False,
                vae_contiguous=True),
    "PG": dict(label="P with CUDA graphs (compile_for_cuda(cuda_graphs=True), what split engines use)",
               skip=True, opt=False, compile=None, dtype="fp16", attention="default", product=True,
               cuda_graphs=True),
    "PGD": dict(label="PG with the VAE decoder as CUDA graphs too (a split engine's replicas do not record it yet: "
                      "the check of it in their threads)", skip=True, opt=False, compile=None, dtype="fp16",
                attention="default", product=True, cuda_graphs=True, decoder_graphs=True),
    "P8": dict(label="P with fp8 (bench/fp8.py: torchao FP8 matrix products in the UNet's and ControlNet's "
                     "linear layers; changes the images)", skip=True, opt=False, compile=None, dtype="fp16",
               attention="default", product=True, fp8=True),
    # A probe for a named preset (issue 16 item 2), not in the product: classifier-free guidance on the first 60 % of
    # the steps only (15 of 25), so the UNet and ControlNet see 8 samples, not 16, on the last 10. Changes the images.
    "PI": dict(label="P with guidance on the first 60 % of the steps only (UNet batch 8 after; changes the images)",
               skip=True, opt=False, compile=None, dtype="fp16", attention="default", product=True,
               guidance_end=0.6),
    # Issue 16, twenty-first step (an H100): Inductor's freezing (weights as constants of the compiled graphs:
    # constant folding, weight layouts fixed at compile time).
    "PZ": dict(label="P + Inductor freezing (weights folded into the compiled graphs as constants)", skip=True,
               opt=False, compile=None, dtype="fp16", attention="default", product=True,
               inductor=dict(freezing=True)),
    "T": dict(label="P + Inductor autotuning (coordinate descent, no epilogue fusion)", skip=True, opt=False,
              compile=None, dtype="fp16", attention="default", product=True,
              inductor=dict(coordinate_descent_tuning=True, coordinate_descent_check_all_directions=True,
                            epilogue_fusion=False)),
}
COMPILED = ("D", "F", "G", "P", "P0", "P0E", "P0C", "PW", "PU", "PB", "PG", "PGD", "P8", "PI", "PZ", "T")


def set_inductor(config, settings: dict, before: dict) -> None:
    """Inductor's settings for one variant: `settings`, and every other one an earlier variant changed put
    back. Inductor's config is process-wide: a variant run after PZ or T compiled with their settings still on, under
    a cache tag (and a label) that named none.

    Args:
        config: `torch._inductor.config`.
        settings: the variant's (its spec's "inductor"), name -> value.
        before: kept across calls, name -> the value before any variant changed it.
    """
    for name, value in before.items():
        setattr(config, name, value)
    for name, value in settings.items():
        before.setdefault(name, getattr(config, name))
        setattr(config, name, value)


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default)."""
    return float(np.percentile(np.asarray(values), q))


# ---------------------------------------------------------------------------------------------- building
class Bench:
    def __init__(self, args):
        import torch

        self.args = args
        self.torch = torch
        self.cfg = TINY if args.tiny else SD15
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.cuda = self.device == "cuda"
        self.size = self.cfg["size"]
        self.steps = args.steps or self.cfg["steps"]
        self.seeds = [FIRST_SEED + i for i in range(args.n)]
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.cache = Path(args.cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"variants": {}, "job": {}, "notes": []}
        self.engines: dict = {}
        self.images: dict = {}
        self.extra_images: dict = {}  # variant -> {first seed: images} for the image check's other seed sets
        self.traced_attention: str | None = None  # attention setting the compiled graphs in this process saw
        self.inductor_before: dict = {}  # Inductor settings a variant changed -> their values before (set_inductor)
        started = time.perf_counter()
        self.parts = Components(self.cfg, self.device)  # the random weights, shared with gpu_probe.py
        self.tokenizer = self.parts.tokenizer
        self.results["parameters_millions"] = self.parts.parameters_millions
        log(f"random weights built in {time.perf_counter() - started:.1f}s: {self.parts.parameters_millions}")
        self.control = qr.render_control_image(qr.encode(CONTENT), self.size)
        self.params = parameters.GenerationParams(prompt=PROMPT, steps=self.steps, size=self.size)

    def dtype(self, name: str):
        torch = self.torch
        if name == "fp32":
            return torch.float32
        if name == "bf16":
            return torch.bfloat16
        return torch.float16 if self.cuda else torch.float32  # CPU dry run: fp32 stands in for fp16

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def build_engine(self, spec: dict, device: str | None = None):
        """An Engine for one variant on `device` (default: the first GPU), through `engine_from_pipeline`."""
        torch = self.torch
        pipe = self.parts.pipeline(self.dtype(spec["dtype"]), skip=spec["skip"], device=device)
        fewstep_unet = None
        if hasattr(pipe.controlnet, "embed_once"):  # a QRControlNet: P0E embeds on every step, as diffusers does
            pipe.controlnet.embed_once = spec.get("embed_once", True)
        import torch._inductor.config as inductor_config

        set_inductor(inductor_config, spec.get("inductor", {}), self.inductor_before)
        if spec.get("product"):
            # The few-step preset's UNet (a random full-size LoRA, fused), as load_engine builds it
            if self.args.fewstep:
                fewstep_unet = fewstep.load_fewstep_unet(pipe.unet, self.lora_file(pipe.unet))
            if self.device == "cuda":
                import torch._dynamo
                import torch.compiler.config as compiler_config

                # A fresh trace and cache tag per product variant: P (FA4) and P0 (no FA4) must not share graphs.
                torch._dynamo.reset()
                if hasattr(compiler_config, "cache_key_tag"):
                    compiler_config.cache_key_tag = (f"qart-product-fa4-{spec.get('fa4')}-fp8-{spec.get('fp8')}"
                                                     f"-embed-{spec.get('embed_once', True)}"
                                                     f"-fold-{spec.get('fold', True)}"
                                                     f"-inductor-{sorted(spec.get('inductor', {}).items())}")
                # exactly what the worker's load_engine applies
                fp8 = spec.get("fp8", False)
                if fp8 and fp8_mod.fp8_unusable(self.device):
                    raise RuntimeError(fp8_mod.fp8_unusable(self.device))
                cuda.compile_for_cuda(pipe, cuda_graphs=spec.get("cuda_graphs", False), fa4=spec.get("fa4"),
                                      fold=spec.get("fold", True), decoder_graphs=spec.get("decoder_graphs"))
                if spec.get("vae_contiguous"):  # P0C: before the first call, when the decoder's graph is traced
                    pipe.vae.to(memory_format=torch.contiguous_format)
                    # the UNet's channels_last latents would keep the decoder's activations channels_last
                    pipe.vae.post_quant_conv.register_forward_hook(lambda _m, _i, out: out.contiguous())
                if fewstep_unet is not None:
                    fewstep_unet = cuda.compile_unet_for_cuda(fewstep_unet, spec.get("cuda_graphs", False),
                                                              fa4=spec.get("fa4"), fold=spec.get("fold", True))
                    self.results.setdefault("notes", []).append(f"{spec['label']}: few-step UNet compiled")
                if fp8:  # P8, not the product: in place, before the first call traces the compiled graphs
                    for module in (pipe.unet._orig_mod, pipe.controlnet) + ((fewstep_unet._orig_mod,)
                                                                          if fewstep_unet is not None else ()):
                        log(f"FP8 products in {fp8_mod.quantize_fp8(module)} linear layers of {type(module).__name__}")
            else:
                log("P on the CPU: compile_for_cuda skipped (CUDA only), eager B path timed instead")
        if spec["opt"]:
            for module in (pipe.unet, pipe.controlnet, pipe.vae):
                module.fuse_qkv_projections()
                module.to(memory_format=torch.channels_last)
        # Per variant, not sticky: with benchmark on, cuDNN times every algorithm for each new conv shape,
        # which made the fp32 reference's warm-up take 188 s on an H200 (2026-11-22).
        torch.backends.cudnn.benchmark = bool(spec["opt"])
        if spec["compile"]:
            import torch._dynamo
            import torch._inductor.config as inductor_config

            # The attention kernel is picked when dynamo/AOT trace a graph. Neither dynamo's guards nor the
            # on-disk AOTAutograd/FX graph caches key on the SDPA flags: without a reset and a cache tag per
            # setting, D would replay G's graphs (cuDNN) or G D's. It happened on 2026-11-22 (D after G:
            # warm-up 19 s, profiled cuDNN kernels); reproduced on the CPU with math vs flash. Engines
            # compiled earlier and kept re-trace on their next call.
            if self.traced_attention not in (None, spec["attention"]):
                torch._dynamo.reset()
                log(f"torch._dynamo.reset(): attention {self.traced_attention} -> {spec['attention']}")
            import torch.compiler.config as compiler_config

            if hasattr(compiler_config, "cache_key_tag"):
                compiler_config.cache_key_tag = f"qart-sdpa-{spec['attention']}"
            elif self.traced_attention not in (None, spec["attention"]):  # no tag: no graph caches at all
                import torch._functorch.config as functorch_config

                functorch_config.enable_autograd_cache = False
                inductor_config.fx_graph_cache = False
                log("no torch.compiler.config.cache_key_tag: AOTAutograd and FX graph caches turned off")
            self.traced_attention = spec["attention"]

            # Several compiled copies of the same classes (fp16, bf16, modes) and the ControlNet's two paths
            # must not hit dynamo's recompile limit (8), which silently falls back to eager.
            for name, value in (("recompile_limit", 64), ("cache_size_limit", 64),
                                ("accumulated_recompile_limit", 1024), ("accumulated_cache_size_limit", 1024)):
                if hasattr(torch._dynamo.config, name):
                    setattr(torch._dynamo.config, name, value)
            inductor_config.conv_1x1_as_mm = True
            mode = None if spec["compile"] == "default" else spec["compile"]
            backend = self.args.compile_backend
            kwargs = dict(backend=backend) if backend != "inductor" else dict(mode=mode)
            pipe.unet = torch.compile(pipe.unet, fullgraph=False, **kwargs)
            pipe.controlnet = torch.compile(pipe.controlnet, fullgraph=False, **kwargs)
            # The decoder runs once a call: plain inductor (CUDA graphs would only pin memory).
            pipe.vae.decoder = torch.compile(pipe.vae.decoder, fullgraph=False,
                                             **(dict(backend=backend) if backend != "inductor" else {}))
        elif not spec.get("product"):  # P is compiled: a hook would break its graphs
            # Count real ControlNet forwards (its conditioning embedding runs only on the real path); eager
            # variants only: under torch.compile a hook's Python side effect runs at trace time, not per call.
            counter = [0]
            pipe.controlnet.controlnet_cond_embedding.register_forward_hook(
                lambda *_: counter.__setitem__(0, counter[0] + 1))
            pipe._qart_controlnet_calls = counter
        engine = diffusion.engine_from_pipeline(pipe, parameters.ModelSpec(base="random SD1.5", controlnet="random"),
                                                fewstep_unet=fewstep_unet if spec.get("product") else None)
        engine.attention = spec["attention"]
        # The product decodes one image at a time on CUDA (engine_from_pipeline); the references and PB decode the
        # whole batch at once, as diffusers does.
        if not spec.get("product") or spec.get("decode_whole"):
            engine.decode_group = 0
        # Only the product shares the guided halves (guidance.py): A and the other references stay plain diffusers.
        engine.shared_halves = bool(spec.get("product")) and spec.get("shared_halves", True)
        calls = [self.params] + ([replace(self.params, scheduler=self.args.fewstep_scheduler)]
                                 if engine.fewstep is not None else [])
        warm_as_drawn(engine, calls, {len(self.seeds)} | {len(share) for share in diffusion.split_seeds(self.seeds, 2)})
        if spec.get("product"):
            kernel = cuda.fa4_kernel() if self.cuda else None
            routed = sum(isinstance(m.get_processor(), cuda.FA4SelfAttention) for m in pipe.unet.modules()
                         if type(m).__name__ == "Attention")
            log(f"{spec['label']}: FA4 importable {kernel is not None}, UNet self-attention layers on FA4: {routed}")
        self._watch_decode(pipe)
        return engine

    def _watch_decode(self, pipe) -> None:
        """Record, per call, whether latents and decoded pixels are finite and how spread they are: kept on the device
        and read only when reported (`decode_stats`), as reading them at once would make every decode wait for the GPU
        (it did up to issue 16's fourteenth step: each image's decode was waited for before the next was queued)."""
        torch = self.torch
        vae = pipe.vae
        original = vae.decode
        last: list = []

        def decode(z, *args, **kwargs):
            out = original(z, *args, **kwargs)
            sample = (out[0] if isinstance(out, tuple) else out.sample).float()
            last[:] = [torch.stack([torch.isfinite(z).all().float(), z.float().std(),
                                    torch.isfinite(sample).all().float(), sample.std(),
                                    (sample.abs() >= 1).float().mean()])]
            return out

        vae.decode = decode
        pipe._qart_decode_stats = last

    @staticmethod
    def decode_stats(pipe) -> dict | None:
        """The last decode's figures (`_watch_decode`)."""
        if not pipe._qart_decode_stats:
            return None
        latent_finite, latent_std, pixels_finite, pixels_std, saturated = pipe._qart_decode_stats[-1].tolist()
        return dict(latent_finite=bool(latent_finite), latent_std=round(latent_std, 4),
                    pixels_finite=bool(pixels_finite), pixels_std=round(pixels_std, 4),
                    pixels_saturated=round(saturated, 4))

    # ------------------------------------------------------------------------------------------ timing
    def sync(self) -> None:
        if self.cuda:
            for index in range(self.torch.cuda.device_count()):
                self.torch.cuda.synchronize(index)

    def draw(self, engine, spec: dict, params, seeds, on_decoded=None) -> list:
        """One call of `engine` as the variant draws it: `Engine.generate`, or for a guidance interval (PI) the same
        pipeline call with a step callback that turns guidance off after `guidance_end` of the steps (diffusers'
        documented way: guidance scale 0 and the conditional halves of the prompt embeddings and control image)."""
        end = spec.get("guidance_end")
        if end is None:
            if on_decoded is not None:
                return engine.generate(self.control, params, seeds, on_decoded=on_decoded)
            return engine.generate(self.control, params, seeds)
        torch = self.torch
        cutoff = max(1, round(params.steps * end))
        pipe = engine.txt2img
        pipe.scheduler = diffusion.make_scheduler(params.scheduler, engine.scheduler_config)

        def cut(pipe, step, _t, kwargs):
            if step + 1 == cutoff:
                pipe._guidance_scale = 0.0
                kwargs["prompt_embeds"] = kwargs["prompt_embeds"].chunk(2)[-1]
                kwargs["image"] = kwargs["image"].chunk(2)[-1]
            return kwargs

        control = self.control.convert("RGB").resize((params.size, params.size), diffusion.Image.Resampling.NEAREST)
        with torch.inference_mode():
            return list(pipe(
                prompt=params.prompt, negative_prompt=params.negative_prompt, num_images_per_prompt=len(seeds),
                num_inference_steps=params.steps, guidance_scale=params.guidance_scale,
                controlnet_conditioning_scale=params.conditioning_scale, control_guidance_start=params.control_start,
                control_guidance_end=params.control_end,
                generator=[torch.Generator(self.device).manual_seed(int(s)) for s in seeds],
                image=control, height=params.size, width=params.size, output_type="pil",
                callback_on_step_end=cut, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "image"],
            ).images)

    def time_variant(self, key: str, spec: dict, runs: int, keep: bool) -> dict:
        torch = self.torch
        self.free()
        base = torch.cuda.memory_allocated() if self.cuda else 0
        started = time.perf_counter()
        if spec["dtype"] == "fp32":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        engine = self.build_engine(spec)
        built = time.perf_counter() - started
        warm = replace(self.params, steps=self.args.warm_steps)
        for i in range(self.args.warm_calls if spec["compile"] else 1):
            t0 = time.perf_counter()
            self.draw(engine, spec, warm, self.seeds)
            self.sync()
            log(f"{key}: warm-up {i + 1} ({self.args.warm_steps} steps) {time.perf_counter() - t0:.1f}s")
        warm_seconds = time.perf_counter() - started - built
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        times, images, handed = [], None, []
        counter = getattr(engine.txt2img, "_qart_controlnet_calls", None)
        controlnet_calls = None
        for r in range(runs):
            self.sync()
            before = counter[0] if counter else 0
            marks: list[float] = []  # product engines: when each image was handed over (as a job's would be)
            note = (lambda group, marks=marks: marks.append(time.perf_counter())) if spec.get("product") else None
            t0 = time.perf_counter()
            out = self.draw(engine, spec, self.params, self.seeds, on_decoded=note)
            self.sync()
            times.append(time.perf_counter() - t0)
            if marks:
                handed.append((marks[0] - t0, marks[-1] - t0))
            if counter:
                controlnet_calls = counter[0] - before
            log(f"{key}: run {r + 1}/{runs} {times[-1]:.3f}s")
            if images is None:
                images = np.stack([np.asarray(im.convert("RGB")) for im in out])
        if key == "A" or spec.get("product"):
            for k in range(1, self.args.seed_sets):  # the image check's other seed sets (not timed)
                seeds = [s + 1000 * k for s in self.seeds]
                out = self.draw(engine, spec, self.params, seeds)
                self.extra_images.setdefault(key, {})[seeds[0]] = np.stack([np.asarray(im.convert("RGB"))
                                                                             for im in out])
        peak = (torch.cuda.max_memory_allocated() - base) / 2**30 if self.cuda else None
        reserved = torch.cuda.max_memory_reserved() / 2**30 if self.cuda else None
        if spec["dtype"] == "fp32":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = True  # torch's default
        stats = self.decode_stats(engine.txt2img)
        kernels = self.kernel_check(key, engine) if self.args.kernel_check else None
        result = dict(
            label=spec["label"], dtype=spec["dtype"], compile=spec["compile"], runs=len(times),
            times=[round(t, 4) for t in times], median_s=round(statistics.median(times), 4),
            p95_s=round(percentile(times, 95), 4), min_s=round(min(times), 4),
            peak_gib=round(peak, 3) if peak is not None else None,
            reserved_gib=round(reserved, 3) if reserved is not None else None,
            build_s=round(built, 1), warmup_s=round(warm_seconds, 1), decode=stats,
            controlnet_forwards_per_call=controlnet_calls, attention=spec["attention"], kernels=kernels,
        )
        if handed:  # the engine alone, to set against a job's own (bench/rq_job.py's tail_first_handed)
            result["first_handed_s"] = round(statistics.median(h[0] for h in handed), 4)
            result["last_handed_s"] = round(statistics.median(h[1] for h in handed), 4)
        if getattr(engine, "fewstep", None) is not None:
            result["fewstep"] = self.time_fewstep(key, engine)
        self.images[key] = images
        if keep:
            self.engines[key] = engine
        else:
            del engine
        self.free()
        return result

    def lora_file(self, unet) -> str:
        """A random LoRA of `unet`'s shapes at rank 64 (LCM-LoRA's), saved as safetensors once per machine."""
        path = self.cache / f"fewstep_lora_{'tiny' if self.args.tiny else 'sd15'}.safetensors"
        if not path.exists():
            tiny.save_tiny_lora(path, unet, rank=4 if self.args.tiny else 64)
        return str(path)

    def time_fewstep(self, key: str, engine) -> dict:
        """The few-step preset (LCM, no classifier-free guidance: UNet batch 8) at each --fewstep-steps."""
        result = {}
        for i, steps in enumerate(self.args.fewstep_steps):
            params = replace(self.params, steps=steps, scheduler=self.args.fewstep_scheduler)
            t0 = time.perf_counter()
            for _ in range(self.args.warm_calls if i == 0 else 1):  # the first compiles the batch-8 graphs
                engine.generate(self.control, params, self.seeds)
            self.sync()
            times = []
            for _ in range(self.args.runs):
                self.sync()
                t1 = time.perf_counter()
                out = engine.generate(self.control, params, self.seeds)
                self.sync()
                times.append(time.perf_counter() - t1)
            pixels = np.stack([np.asarray(im.convert("RGB")) for im in out])
            result[str(steps)] = dict(steps=steps, scheduler=params.scheduler, warmup_s=round(t1 - t0 - times[-1], 1),
                                      times=[round(t, 4) for t in times], median_s=round(statistics.median(times), 4),
                                      p95_s=round(percentile(times, 95), 4), pixels_std=round(float(pixels.std()), 2))
            log(f"{key} few-step {steps} steps: median {result[str(steps)]['median_s']:.3f}s "
                f"p95 {result[str(steps)]['p95_s']:.3f}s")
        return result

    def check_images(self, key: str) -> dict | None:
        """Every image of every seed set against A's (the issue's bound: max abs <= 2, mean abs <= 0.10 per image)."""
        sets = [(FIRST_SEED, self.images.get(key), self.images.get("A"))]
        sets += [(first, imgs, self.extra_images.get("A", {}).get(first))
                 for first, imgs in self.extra_images.get(key, {}).items()]
        per_image = []
        for _first, got, ref in sets:
            if got is None or ref is None or got.shape != ref.shape:
                return None
            diff = np.abs(ref.astype(np.int16) - got.astype(np.int16))
            per_image += [(int(d.max()), float(d.mean())) for d in diff]
        worst_max, worst_mean = max(m for m, _ in per_image), max(a for _, a in per_image)
        return dict(seed_sets=len(sets), images=len(per_image), worst_max_abs=worst_max,
                    worst_mean_abs=round(worst_mean, 4), kept=bool(worst_max <= 2 and worst_mean <= 0.10))

    def kernel_check(self, key: str, engine) -> dict:
        """Which attention ops and GPU kernels one 2-step call really runs (torch.profiler; after the timing)."""
        torch = self.torch
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.cuda else [])
        # Not "cudnn": cuDNN's convolution kernels would crowd the list; its attention kernels say sdpa/flash,
        # and the aten op names (_scaled_dot_product_cudnn_attention / _flash_ / _efficient_) settle which.
        words = ("attention", "attn", "flash", "fmha", "sdpa", "scaled_dot_product")
        try:
            with profile(activities=activities) as prof:
                engine.generate(self.control, replace(self.params, steps=2), self.seeds)
                self.sync()
            found: dict = {}
            for event in prof.key_averages():
                name = event.key
                if not any(w in name.lower() for w in words):
                    continue
                on_gpu = getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA
                us = getattr(event, "device_time_total", 0.0) if on_gpu else getattr(event, "cpu_time_total", 0.0)
                found[("gpu: " if on_gpu else "op: ") + name[:160]] = dict(calls=event.count, ms=round(us / 1000, 2))
            top = dict(sorted(found.items(), key=lambda kv: -kv[1]["ms"])[:16])
            log(f"{key}: attention ops/kernels in a 2-step call: {top}")
            if self.args.top_kernels:  # every GPU kernel: where the rest of the time goes (convolutions, products)
                gpu = [(e.key, e.count, getattr(e, "device_time_total", 0.0)) for e in prof.key_averages()
                       if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
                total = sum(us for _, _, us in gpu)
                ranked = sorted(gpu, key=lambda k: -k[2])[:self.args.top_kernels]
                top["all_gpu_ms"] = round(total / 1000, 2)
                top["top_kernels"] = [dict(name=n[:200], calls=c, ms=round(us / 1000, 2)) for n, c, us in ranked]
                log(f"{key}: GPU kernels in a 2-step call: {total / 1000:.1f} ms; top: {top['top_kernels']}")
            return top
        except Exception as exc:  # the check must never cost the timing
            log(f"{key}: kernel check failed: {type(exc).__name__}: {exc}")
            return dict(error=f"{type(exc).__name__}: {exc}"[:300])

    def compare(self, key: str, reference: str = "A") -> dict | None:
        ref = self.images.get(reference)
        imgs = self.images.get(key)
        if ref is None or imgs is None or ref.shape != imgs.shape:
            return None
        diff = np.abs(ref.astype(np.int16) - imgs.astype(np.int16))
        mse = float((diff.astype(np.float64) ** 2).mean())
        per_image = [round(float(d.mean()), 3) for d in diff]
        return dict(
            max_abs=int(diff.max()), mean_abs=round(float(diff.mean()), 3),
            psnr_db=round(10 * math.log10(255**2 / mse), 2) if mse > 0 else float("inf"),
            identical=bool(mse == 0), mean_abs_per_image=per_image,
        )

    # -------------------------------------------------------------------------------------------- stages
    def run_variant(self, key: str, spec: dict, keep: bool = False) -> None:
        runs = 1 if key == "R" else self.args.runs
        log(f"=== {key}: {spec['label']}")
        try:
            result = self.time_variant(key, spec, runs, keep)
        except Exception as exc:  # record and go on: one failing variant must not lose the others
            import traceback

            traceback.print_exc()
            self.results["variants"][key] = dict(label=spec["label"], error=f"{type(exc).__name__}: {exc}"[:2000])
            self.engines.pop(key, None)
            self.free()
            self.save()
            return
        if key == "A":
            np.save(self.cache / "ref_A.npy", self.images["A"])
            for first, imgs in self.extra_images.get("A", {}).items():
                np.save(self.cache / f"ref_A_{first}.npy", imgs)
        result["vs_A"] = self.compare(key)
        if spec.get("product"):
            result["image_check"] = self.check_images(key)
            log(f"{key}: image check against A over every seed set: {result['image_check']}")
        if key == "G":
            result["vs_D"] = self.compare("G", "D")  # same compiled graph but the attention kernel
        self.results["variants"][key] = result
        log(f"{key}: median {result['median_s']:.3f}s p95 {result['p95_s']:.3f}s peak {result['peak_gib']} GiB "
            f"vs A {result['vs_A'] and {k: v for k, v in result['vs_A'].items() if k != 'mean_abs_per_image'}} "
            f"decode {result['decode']}")
        self.save()

    def fastest(self, keys) -> str | None:
        timed = [(self.results["variants"][k]["median_s"], k) for k in keys
                 if k in self.results["variants"] and "median_s" in self.results["variants"][k]]
        return min(timed)[1] if timed else None

    def whole_job(self, key: str, into: str = "job", repairs: tuple[bool, ...] = (False, True)) -> None:
        """`best_of_n` (generate 8, verify on CPU threads, aesthetic, repair) + PNG encoding, timed, into
        `results[into]`."""
        torch = self.torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        engine = self.engines.get(key)
        self.results.setdefault(into, {})
        if engine is None:
            self.results[into]["error"] = f"engine {key} not available"
            return
        log(f"=== whole job with engine {key} ({into})")
        from generator.core.codes import decoders
        from generator.core.engines import ranking

        dtype = engine.dtype
        with torch.device(self.device):
            torch.manual_seed(2)
            clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**self.cfg["clip_vision"]))
            head = aesthetics.build_head()
        clip = clip.to(dtype=dtype).eval().requires_grad_(False)
        head = head.eval().requires_grad_(False)
        engine.aesthetic = aesthetics.AestheticPredictor(clip, head, self.cfg["clip_vision"]["image_size"],
                                                         self.device, dtype)
        readers = list(decoders.available_readers())
        # available_readers() warns about a missing zbar on every verify call: once is enough here.
        import logging

        logging.getLogger(decoders.__name__).setLevel(logging.ERROR)
        job = self.results[into]
        job.update(engine=key, decoders=readers, wechat_models=str(decoders.wechat_model_dir()),
                   cpu_count=os.cpu_count(), steps=self.steps, candidates=len(self.seeds), size=self.size)

        # Time each stage inside best_of_n by wrapping its module-level helpers (the bench only).
        stage: dict[str, float] = {}

        def timed(name, fn):
            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.sync()
                    stage[name] = stage.get(name, 0.0) + time.perf_counter() - t0
            return wrapper

        original_submit, original_repair = ranking.submit_verify, ranking._repair_best_looking

        def submit_timed(*args, **kwargs):
            # best_of_n submits each candidate as it is decoded and waits for the verdicts after the aesthetic
            # scores: "verify" is that wait, the verifier's time the job does not hide behind other work.
            return timed("verify", original_submit(*args, **kwargs))

        ranking.submit_verify = submit_timed
        ranking._repair_best_looking = timed("repair", original_repair)
        engine.score_aesthetics = timed("aesthetic", engine.score_aesthetics)
        try:
            for repair in repairs:
                name = "with_repair" if repair else "no_repair"
                config = ranking.BestOfNConfig(n=len(self.seeds), max_batches=1, repair=repair, seed=FIRST_SEED)
                rows = []
                for r in range(self.args.job_runs + 1):  # the first is a warm-up (decoder nets, threads)
                    stage.clear()
                    self.sync()
                    t0 = time.perf_counter()
                    result = ranking.best_of_n(engine, CONTENT, self.params, config)
                    t_png = time.perf_counter()
                    pngs = []
                    for image in [result.control] + [c.image for c in result.candidates]:
                        buffer = io.BytesIO()
                        image.save(buffer, format="PNG")  # what generator.jobs stores
                        pngs.append(len(buffer.getvalue()))
                    done = time.perf_counter()
                    row = dict(total=done - t0, generation=result.generation_seconds,
                               verify=stage.get("verify", 0.0), aesthetic=stage.get("aesthetic", 0.0),
                               repair=stage.get("repair", 0.0), png=done - t_png,
                               passed=sum(c.passed for c in result.candidates),
                               repaired=sum(c.repaired for c in result.candidates),
                               scan_p_max=max(c.scan.scan_probability for c in result.candidates),
                               png_mib=sum(pngs) / 2**20)
                    log(f"job {name} {'warm-up' if r == 0 else f'run {r}'}: "
                        + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
                    if r:
                        rows.append(row)
                        job[name] = dict(runs=len(rows), rows=[{k: round(v, 4) for k, v in x.items()} for x in rows])
                        self.save()  # partial rows survive a crash or a timeout
                summary = {k: dict(median=round(statistics.median([row[k] for row in rows]), 4),
                                   p95=round(percentile([row[k] for row in rows], 95), 4))
                           for k in rows[0]}
                job[name] = dict(runs=len(rows), summary=summary,
                                 rows=[{k: round(v, 4) for k, v in row.items()} for row in rows])
                self.save()
        finally:
            ranking.submit_verify, ranking._repair_best_looking = original_submit, original_repair

    def split(self) -> None:
        """The product's `diffusion.SplitEngine` over every GPU here: each job's 8 candidates shared out.

        P's engine is replica 0; each other GPU gets the same recipe (`compile_for_cuda`) with the same weights.
        Like `loading.load_split_engine`, every replica warms up on its own share (4 of 8 on two GPUs), with
        dynamo's automatic dynamic shapes off so replica 0, which saw batch 8 as P, compiles a static graph for
        its share as a worker's would instead of a dynamic one. Images are compared with P's (batch 8, one GPU).
        """
        torch = self.torch
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if self.cuda else ["cpu", "cpu"]
        if self.args.split_devices:
            devices = [d.strip() for d in self.args.split_devices.split(",") if d.strip()]
        if len(devices) < 2:
            self.results["notes"].append("split skipped: one GPU on this machine")
            return
        import torch._dynamo

        # Replica 0 is P's engine when P ran first on the same device and the variants match, else a fresh one.
        key = self.args.split_variant
        first = self.engines.get(key)
        if first is not None and first.device not in (devices[0], "cuda" if devices[0] == "cuda:0" else ""):
            first = None
        log(f"=== split: {key} on {len(devices)} devices ({', '.join(devices)}); replica 0 "
            f"{'is ' + key if first is not None else 'built here'}")
        torch._dynamo.config.automatic_dynamic_shapes = False
        started = time.perf_counter()
        replicas = [first or self.build_engine(VARIANTS[key], device=devices[0])]
        replicas += [self.build_engine(VARIANTS[key], device=d) for d in devices[1:]]
        built = time.perf_counter() - started
        shares = diffusion.split_seeds(self.seeds, len(replicas))
        engine = diffusion.SplitEngine(replicas)
        warm = replace(self.params, steps=self.args.warm_steps)
        # As SplitEngine.warm_up: each replica in its own thread (CUDA graphs are recorded per thread).
        for index, (replica, share) in enumerate(zip(replicas, shares, strict=True)):
            for i in range(self.args.warm_calls):
                t0 = time.perf_counter()
                engine.on_replica(index, replica.generate, self.control, warm, share)
                self.sync()
                log(f"split: replica {index} warm-up {i + 1} ({len(share)} candidates) {time.perf_counter() - t0:.1f}s")
        warm_seconds = time.perf_counter() - started - built
        # Each replica alone on its share, full steps: what the split would take with no overhead at all.
        alone = []
        for index, (replica, share) in enumerate(zip(replicas, shares, strict=True)):
            runs = []
            for _ in range(2):
                self.sync()
                t0 = time.perf_counter()
                engine.on_replica(index, replica.generate, self.control, self.params, share)
                self.sync()
                runs.append(time.perf_counter() - t0)
            alone.append(round(min(runs), 4))
            log(f"split: replica {index} alone, {len(share)} candidates: {runs[0]:.3f}s, {runs[1]:.3f}s")
        gpus = sorted({torch.device(d).index or 0 for d in devices}) if self.cuda else []
        for index in gpus:
            torch.cuda.reset_peak_memory_stats(index)
        times, images, steps_seen = [], None, []
        for r in range(self.args.runs):
            self.sync()
            t0 = time.perf_counter()
            out = engine.generate(self.control, self.params, self.seeds, on_step=lambda s, t: steps_seen.append(s))
            self.sync()
            times.append(time.perf_counter() - t0)
            log(f"split: run {r + 1}/{self.args.runs} {times[-1]:.3f}s")
            if images is None:
                images = np.stack([np.asarray(im.convert("RGB")) for im in out])
        self.images["split"] = images
        # The same seeds on replica 0 (another GPU for every share but the first): the devices agree.
        start, across = len(shares[0]), []
        for share in shares[1:]:
            again = engine.on_replica(0, replicas[0].generate, self.control, self.params, share)
            for offset, image in enumerate(again):
                diff = np.abs(np.asarray(image.convert("RGB"), np.int16) - images[start + offset].astype(np.int16))
                across.append(int(diff.max()))
            start += len(share)
        peaks = [round(torch.cuda.max_memory_allocated(i) / 2**30, 3) for i in gpus] or None
        result = dict(
            label=f"{key} split over {len(devices)} devices ({'/'.join(str(len(x)) for x in shares)} candidates)",
            devices=devices, runs=len(times), times=[round(t, 4) for t in times],
            median_s=round(statistics.median(times), 4), p95_s=round(percentile(times, 95), 4),
            min_s=round(min(times), 4), peak_gib_per_device=peaks, peak_gib=max(peaks) if peaks else None,
            build_s=round(built, 1), warmup_s=round(warm_seconds, 1),
            progress_reports_per_call=len(steps_seen) // max(1, len(times)), replica_alone_s=alone,
            vs_A=self.compare("split"), vs_P=self.compare("split", "P"),
            other_shares_on_replica_0_max_abs_diff=across,
        )
        self.results["variants"]["split"] = result
        self.engines["split"] = engine
        log(f"split: median {result['median_s']:.3f}s p95 {result['p95_s']:.3f}s peaks {peaks} GiB, "
            f"vs P {result['vs_P'] and {k: v for k, v in result['vs_P'].items() if k != 'mean_abs_per_image'}}")
        self.save()

    def turbo(self) -> None:
        """The product engine (P) with the "turbo" preset's steps: a named preset, so its images differ."""
        engine = self.engines.get("P")
        if engine is None:
            self.results["notes"].append("turbo skipped: P not built in this call")
            return
        params = self.params.with_preset("turbo")
        times = []
        for r in range(self.args.runs + 1):  # the first: the scheduler's new step count, untimed
            self.sync()
            t0 = time.perf_counter()
            engine.generate(self.control, params, self.seeds)
            self.sync()
            if r:
                times.append(time.perf_counter() - t0)
                log(f"turbo: run {r}/{self.args.runs} {times[-1]:.3f}s")
        self.results["variants"]["turbo"] = dict(
            label=f"P with the turbo preset ({params.steps} steps, {params.scheduler})", runs=len(times),
            times=[round(t, 4) for t in times], median_s=round(statistics.median(times), 4),
            p95_s=round(percentile(times, 95), 4), steps=params.steps)
        self.save()

    def rq_job(self) -> None:
        """Whole jobs through Django, Redis and an RQ worker with the product engine (bench/rq_job.py)."""
        import rq_job

        engine = self.engines.get(self.args.rq_engine)
        if engine is None:
            self.results["notes"].append(f"rq skipped: {self.args.rq_engine} not built in this call")
            return
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        with self.torch.device(self.device):
            self.torch.manual_seed(2)
            clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**self.cfg["clip_vision"]))
            head = aesthetics.build_head()
        clip = clip.to(dtype=engine.dtype).eval().requires_grad_(False)
        scorer = engine.replicas[0] if isinstance(engine, diffusion.SplitEngine) else engine
        scorer.aesthetic = aesthetics.AestheticPredictor(clip, head.eval().requires_grad_(False),
                                                         self.cfg["clip_vision"]["image_size"], self.device,
                                                         engine.dtype)
        self.results["rq"] = rq_job.run(engine, steps=self.steps, size=self.size, n=len(self.seeds),
                                         runs=self.args.job_runs, seed=FIRST_SEED, prompt=PROMPT,
                                         content=CONTENT, log=log, save=self.save, results=self.results,
                                         turbo_steps=parameters.PRESETS["turbo"]["steps"],
                                         kinds=self.args.rq_kinds.split(","),
                                         fewstep_steps=self.args.fewstep_steps[0],
                                         fewstep_scheduler=self.args.fewstep_scheduler,
                                         queue_jobs=self.args.queue_jobs)
        self.results["rq"]["engine"] = self.args.rq_engine
        self.save()

    def timed_again(self, engine, spec: dict, key: str) -> dict:
        """`engine` (P's, changed in place by a stage: fa4exp, decoder) drawn again: one short warm-up call
        (`--warm-steps`), then `--runs` timed calls, noting when the first and the last image were handed over; the
        first call's images kept as `key`, the other seed sets drawn for the image check against A."""
        t0 = time.perf_counter()
        self.draw(engine, spec, replace(self.params, steps=self.args.warm_steps), self.seeds)
        self.sync()
        warm = time.perf_counter() - t0
        times, handed, first = [], [], None
        for _ in range(self.args.runs):
            marks: list[float] = []
            self.sync()
            t1 = time.perf_counter()
            images = self.draw(engine, spec, self.params, self.seeds,
                               on_decoded=lambda group, marks=marks: marks.append(time.perf_counter()))
            self.sync()
            times.append(time.perf_counter() - t1)
            handed.append((marks[0] - t1, marks[-1] - t1))
            first = first if first is not None else np.stack([np.asarray(im.convert("RGB")) for im in images])
        self.images[key] = first
        for k in range(1, self.args.seed_sets):
            seeds = [s + 1000 * k for s in self.seeds]
            drawn = self.draw(engine, spec, self.params, seeds)
            self.extra_images.setdefault(key, {})[seeds[0]] = np.stack([np.asarray(im.convert("RGB"))
                                                                        for im in drawn])
        return dict(warmup_s=round(warm, 1), times=[round(t, 4) for t in times],
                    median_s=round(statistics.median(times), 4), p95_s=round(percentile(times, 95), 4),
                    first_handed_s=round(statistics.median(h[0] for h in handed), 4),
                    last_handed_s=round(statistics.median(h[1] for h in handed), 4),
                    image_check=self.check_images(key))

    def fa4_exp(self) -> None:
        """P's engine again with each softmax variant of `--fa4-exp` (bench/fa4_exp.py: part of FA4's exponentials on
        the FMA units), the shipped kernel ("mufu") first and last: only FA4's kernel is compiled again (~3 s),
        Inductor's graphs stay, so the variants compare on one machine and one compiled engine. Each is timed and its
        images checked against A over every seed set; the fastest that keeps them (and beats "mufu" by more than
        1 %) is `fa4_exp_best`, which the rq kind "code-exp" uses."""
        import fa4_exp

        engine, spec = self.engines.get("P"), VARIANTS["P"]
        out = self.results.setdefault("fa4_exp", {})
        if engine is None or fa4_exp.cutlass is None:
            self.results["notes"].append("fa4exp skipped: it needs P built in this call and flash-attn-4")
            return
        names = (fa4_exp.promising(Path(self.args.out) / "fa4_exp.json") if self.args.fa4_exp == "auto"
                 else [n.strip() for n in self.args.fa4_exp.split(",") if n.strip() and n.strip() != "mufu"])
        if not names:
            self.results["notes"].append("fa4exp skipped: no softmax variant was faster alone (bench/fa4_exp.py)")
            return
        for name in ["mufu", *names, "mufu"]:
            key = name + ("/again" if name in out else "")
            try:
                fa4_exp.install(name)
                out[key] = dict(setting=fa4_exp.VARIANTS[name], **self.timed_again(engine, spec, f"P/{key}"))
            except Exception as exc:  # a variant that does not compile: record it, go on with the others
                out[key] = dict(error=f"{type(exc).__name__}: {exc}"[:1500])
            log(f"fa4exp {key}: {out[key]}")
            self.save()
        fa4_exp.install("mufu")
        shipped = min((out[k]["median_s"] for k in ("mufu", "mufu/again") if "median_s" in out.get(k, {})),
                      default=0.0)  # the shipped kernel not timed: no variant is called faster than it
        kept = [(r["median_s"], k) for k, r in out.items() if "median_s" in r and not k.startswith("mufu")
                and (r["image_check"] or {}).get("kept") and r["median_s"] < 0.99 * shipped]
        self.results["fa4_exp_best"] = min(kept)[1] if kept else None
        log(f"fa4exp: shipped kernel {shipped:.3f}s; best variant that keeps the images: "
            f"{self.results['fa4_exp_best']}")
        self.save()

    def decoder(self) -> None:
        """P's VAE decoder as shipped (Inductor, recorded as CUDA graphs) against the same decoder compiled without
        graphs (`cuda.compile_decoder(cuda_graphs=False)`, the product before issue 16's fourteenth step), on P's
        engine: for each, one image's decode (the product's group of one) timed 20 times as the launching thread
        sees it (`launch_ms`: until `decoding._decoded_bytes` returns, nothing waited for), as the GPU runs it
        (`gpu_ms`, CUDA events) and both (`wall_ms`); then the engine's whole call (`--runs` times after a warm-
        up, with when the first and last image were handed over) and its images checked against A. The decoder
        without graphs runs first (so that what the graphs' pool adds to the memory torch holds shows) and last, for
        drift."""
        torch = self.torch
        engine, spec = self.engines.get("P"), VARIANTS["P"]
        out = self.results.setdefault("decoder", {})
        if engine is None or not self.cuda:
            self.results["notes"].append("decoder skipped: it needs P built in this call, on CUDA")
            return
        pipe = engine.txt2img
        graphed = pipe.vae.decoder
        cuda.compile_decoder(pipe.vae, cuda_graphs=False)
        compiled = pipe.vae.decoder
        latents = self.one_latent(pipe)
        for key, decoder in (("compiled", compiled), ("graphs", graphed), ("compiled/again", compiled)):
            pipe.vae.decoder = decoder
            reserved = torch.cuda.memory_reserved()
            try:
                result = dict(**self.decode_alone(pipe, latents), **self.timed_again(engine, spec, f"P/decoder-{key}"))
                # What this decoder added to the memory torch holds (it only grows: a decoder timed after another
                # reuses its blocks, so only the first of two shows the difference)
                result["reserved_gib"] = round(torch.cuda.memory_reserved() / 2**30, 3)
                result["reserved_added_gib"] = round((torch.cuda.memory_reserved() - reserved) / 2**30, 3)
                out[key] = result
            except Exception as exc:  # record it: the call's other stages still matter
                out[key] = dict(error=f"{type(exc).__name__}: {exc}"[:1500])
            log(f"decoder {key}: {out[key]}")
            self.save()
        pipe.vae.decoder = graphed

    def one_latent(self, pipe):
        """One seeded latent of the product's size: what each of the product's decodes gets."""
        torch = self.torch
        side = self.size // pipe.vae_scale_factor
        return torch.randn(1, pipe.vae.config.latent_channels, side, side, device=self.device, dtype=pipe.vae.dtype,
                           generator=torch.Generator(self.device).manual_seed(5))

    def decode_alone(self, pipe, latents, kernels: int = 0) -> dict:
        """One latent's decode (`decoding._decoded_bytes`, the product's group of one) with `pipe`'s decoder, timed 20
        times after 3 warm-ups (graphs recorded, autotuning done): as the launching thread sees it (`launch_ms`), as the
        GPU runs it (`gpu_ms`, CUDA events) and both (`wall_ms`); with `kernels`, its costliest GPU kernels too."""
        torch = self.torch
        from generator.core.engines import decoding

        with torch.inference_mode():
            t0 = time.perf_counter()
            for _ in range(3):  # CUDA graphs: warmed up, then recorded
                decoding._decoded_bytes(pipe, latents)
            self.sync()
            warm = time.perf_counter() - t0
            launch, wall, gpu = [], [], []
            for _ in range(20):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                self.sync()
                t0 = time.perf_counter()
                start.record()
                decoding._decoded_bytes(pipe, latents)
                end.record()
                launch.append(time.perf_counter() - t0)
                self.sync()
                wall.append(time.perf_counter() - t0)
                gpu.append(start.elapsed_time(end) / 1000)
            result = dict(decode_warmup_s=round(warm, 1),
                          **{f"{name}_ms": round(1000 * statistics.median(v), 2)
                             for name, v in (("launch", launch), ("gpu", gpu), ("wall", wall))})
            if kernels:
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(5):
                        decoding._decoded_bytes(pipe, latents)
                    self.sync()
                found = [(e.key, e.count, e.device_time_total) for e in prof.key_averages()
                         if e.device_time_total > 0 and not e.key.startswith(("cuda", "Memcpy", "Memset"))]
                ranked = sorted(found, key=lambda k: -k[2])[:kernels]
                result["top_kernels"] = [dict(name=n[:160], calls=c // 5, ms=round(us / 5000, 3))
                                         for n, c, us in ranked]
        return result

    def decoder_autotune(self) -> None:
        """P's VAE decoder compiled with Inductor's max-autotune and recorded as CUDA graphs
        (`cuda.compile_decoder(cuda_graphs=True, autotune=True)`) against the shipped one (default mode, graphs): one
        latent's decode alone with its costliest kernels, then P's whole call with it, its images checked against A
        and P's. The autotuned decoder stays in P's engine, so an `rq` stage after this one runs whole jobs with it.
        Its compile is the call's last long step (bench/GPU.md, trap 12): put this stage last but for `rq`."""
        torch = self.torch
        engine, spec = self.engines.get("P"), VARIANTS["P"]
        if engine is None or not self.cuda:
            self.results["notes"].append("decoder-autotune skipped: it needs P built in this call, on CUDA")
            return
        pipe = engine.txt2img
        latents = self.one_latent(pipe)
        out = self.results.setdefault("decoder_autotune", {})
        out["shipped"] = self.decode_alone(pipe, latents, kernels=12)
        log(f"decoder-autotune shipped: {out['shipped']}")
        self.save()
        shipped = pipe.vae.decoder
        try:
            cuda.compile_decoder(pipe.vae, cuda_graphs=True, autotune=True)
            out["autotuned"] = self.decode_alone(pipe, latents, kernels=12)  # its warm-up is the autotuning compile
            log(f"decoder-autotune autotuned: {out['autotuned']}")
            self.save()
            out["autotuned"].update(self.timed_again(engine, spec, "P/decoder-autotune"))
            out["autotuned"]["vs_P"] = self.compare("P/decoder-autotune", "P")
            self.results["rq_decoder"] = "autotuned (max-autotune, CUDA graphs)"
        except Exception as exc:  # record it, put the shipped decoder back: the call's other stages still matter
            import traceback

            traceback.print_exc()
            out["autotuned_error"] = f"{type(exc).__name__}: {exc}"[:1500]
            pipe.vae.decoder = shipped
        log(f"decoder-autotune: {out}")
        self.save()
        torch.cuda.synchronize()

    def sdpa_probe(self) -> None:
        """Self-attention at the 96x96 level (9216 tokens, 8 heads of 40, batch 16) per SDPA backend."""
        torch = self.torch
        if not self.cuda:
            return
        from torch.nn.attention import SDPBackend, sdpa_kernel

        q, k, v = (torch.randn(16, 8, 9216, 40, device="cuda", dtype=torch.float16) for _ in range(3))
        flops = 4 * 16 * 8 * 9216 * 9216 * 40
        probe = {}
        for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
            try:
                with sdpa_kernel([getattr(SDPBackend, name)]):
                    for _ in range(3):
                        torch.nn.functional.scaled_dot_product_attention(q, k, v)
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    for _ in range(10):
                        torch.nn.functional.scaled_dot_product_attention(q, k, v)
                    end.record()
                    torch.cuda.synchronize()
                ms = start.elapsed_time(end) / 10
                probe[name] = dict(ms=round(ms, 3), tflops=round(flops / ms / 1e9, 1))
            except Exception as exc:
                probe[name] = dict(error=f"{type(exc).__name__}: {exc}"[:300])
        # 5 such layers in the UNet (25 steps) + 2 in the ControlNet (18 active steps of 25).
        probe["calls_per_generation"] = 5 * 25 + 2 * 18
        self.results["sdpa_96x96"] = probe
        log(f"SDPA probe: {probe}")
        self.save()

    def postprocess_probe(self) -> None:
        """The images' conversion after the VAE decode: diffusers' "pil" output (float batch copied to the CPU,
        scaled and rounded there) against its "pt" output through the product's `decoding.to_images` (the same
        steps on the device, bytes copied), for 8 decoded images at the bench's size; the pixels must be
        identical."""
        torch = self.torch
        from diffusers.image_processor import VaeImageProcessor

        from generator.core.engines.decoding import to_images

        device = "cuda" if self.cuda else "cpu"
        decoded = (torch.rand(len(self.seeds), 3, self.size, self.size, device=device) * 2.2 - 1.1).half()
        processor = VaeImageProcessor(vae_scale_factor=8)  # what the pipeline's postprocess runs, "pt" or "pil"
        probe, pixels = {}, []
        for name, convert in (("diffusers_pil", lambda: processor.postprocess(decoded, output_type="pil")),
                              ("to_images", lambda: to_images(processor.postprocess(decoded, output_type="pt")))):
            convert()
            times = []
            for _ in range(10):
                if self.cuda:
                    torch.cuda.synchronize()
                started = time.perf_counter()
                images = convert()
                times.append(time.perf_counter() - started)
            probe[name] = dict(median_ms=round(1000 * statistics.median(times), 1),
                               max_ms=round(1000 * max(times), 1))
            pixels.append([image.tobytes() for image in images])
        probe["identical"] = pixels[0] == pixels[1]
        self.results["postprocess"] = probe
        log(f"postprocess probe: {probe}")
        self.save()

    # ------------------------------------------------------------------------------------------- output
    def environment(self) -> None:
        torch = self.torch
        import diffusers
        import transformers

        env = dict(
            python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(), diffusers=diffusers.__version__,
            transformers=transformers.__version__, numpy=np.__version__, device=self.device,
            host_cpus=os.cpu_count(),
        )
        try:
            import cv2

            env["opencv"] = cv2.__version__
        except ImportError:
            pass
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                       sm_count=props.multi_processor_count)
            try:
                env["nvidia_smi"] = subprocess.run(
                    ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                     "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
            except (OSError, subprocess.SubprocessError) as exc:
                env["nvidia_smi"] = f"unavailable: {exc}"
        self.results["environment"] = env
        self.results["setup"] = dict(
            candidates=len(self.seeds), size=self.size, steps=self.steps, guidance=self.params.guidance_scale,
            conditioning=self.params.conditioning_scale, control_start=self.params.control_start,
            scheduler=self.params.scheduler, warm_steps=self.args.warm_steps, runs=self.args.runs,
            seeds=self.seeds, command=" ".join(sys.argv),
        )
        log(f"environment: {env}")

    def save(self) -> None:
        self.results["elapsed_s"] = round(time.perf_counter() - STARTED, 1)
        (self.out / "gpu_results.json").write_text(json.dumps(self.results, indent=1, default=str))
        (self.out / "gpu_results.md").write_text(self.markdown())

    def markdown(self) -> str:
        env = self.results.get("environment", {})
        lines = [f"Device: {env.get('gpu', env.get('device'))}; {env.get('nvidia_smi', '')}; torch {env.get('torch')}"
                 f" (CUDA {env.get('cuda')}), diffusers {env.get('diffusers')}, transformers "
                 f"{env.get('transformers')}, Python {env.get('python')}", "",
                 "| variant | what | median s | p95 s | peak GiB | vs A: max / mean abs diff (0-255), PSNR |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for key, v in self.results["variants"].items():
            if "error" in v:
                lines.append(f"| {key} | {v['label']} | failed: {v['error'][:200]} | | | |")
                continue
            d = v.get("vs_A")
            diff = "reference" if key == "A" else (
                f"{d['max_abs']} / {d['mean_abs']}, {d['psnr_db']} dB" if d else "n/a")
            dd = v.get("vs_D")
            if dd:
                diff += f" (vs D: {dd['max_abs']} / {dd['mean_abs']}, {dd['psnr_db']} dB)"
            median = f"{v['median_s']:.3f}" if key != "R" else f"({v['median_s']:.1f}, 1 run)"
            p95 = f"{v['p95_s']:.3f}" if key != "R" else ""
            lines.append(f"| {key} | {v['label']} | {median} | {p95} | {v.get('peak_gib')} | {diff} |")
        for key, v in self.results["variants"].items():
            check, few = v.get("image_check"), v.get("fewstep")
            if check:
                lines.append(f"\n{key} image check: {check['images']} images ({check['seed_sets']} seed sets) vs A: "
                             f"worst max {check['worst_max_abs']}, worst mean {check['worst_mean_abs']}; "
                             f"kept: {check['kept']}")
            for steps, f in (few or {}).items():
                lines.append(f"\n{key} few-step preset ({f['scheduler']}, {steps} steps, no CFG): median "
                             f"{f['median_s']:.3f} s, p95 {f['p95_s']:.3f} s")
        job = self.results.get("job", {})
        for name in ("no_repair", "with_repair"):
            if name in job and "summary" in job[name]:
                s = job[name]["summary"]
                lines.append("")
                lines.append(f"Whole job ({name}, engine {job['engine']}, decoders {job['decoders']}, "
                             f"{job['runs'] if 'runs' in job else job[name]['runs']} runs): "
                             + ", ".join(f"{k} median {s[k]['median']:.3f} / p95 {s[k]['p95']:.3f}"
                                         for k in ("total", "generation", "verify", "aesthetic", "repair", "png")))
        for name, summary in self.results.get("rq", {}).get("summary", {}).items():
            lines.append("")
            lines.append(f"Whole job through Redis + RQ + Django ({name}; verified by "
                         f"{', '.join(self.results['rq'].get('decoders', ['?']))}): "
                         + ", ".join(f"{k} median {v['median']:.3f} / p95 {v['p95']:.3f}" for k, v in summary.items()))
        if "unrelated_mean_abs" in self.results:
            lines.append("")
            lines.append(f"Mean abs diff between two different seeds of A (unrelated images): "
                         f"{self.results['unrelated_mean_abs']}")
        return "\n".join(lines) + "\n"


def use_fa4_tile(setting: str) -> dict:
    """Make every FA4 call of this process use the tile shape and flags in `setting` ("M,N,RS,OL"): the product's
    op calls `flash_attn_func`, which looks `_flash_attn_fwd` up at each call, so wrapping it reaches them all."""
    import functools

    from flash_attn.cute import interface

    m, n, rs, ol = (int(x) for x in setting.split(","))
    chosen = dict(tile_mn=(m, n), mma_pv_is_rs=bool(rs), intra_wg_overlap=bool(ol))
    interface._flash_attn_fwd = functools.partial(interface._flash_attn_fwd, **chosen)
    log(f"FA4 tile for this process: {chosen}")
    return dict(chosen, tile_mn=[m, n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="toy sizes, 4 steps, 2 runs: a CPU dry run")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "var" / "bench_gpu"))
    parser.add_argument("--cache", default="/tmp/qart_bench", help="keeps A's images between calls")
    parser.add_argument("--variants", default="A,B,C,D,job,E,F,R,sdpa",
                        help="stages in order: A B C D F G E R (see above), job (whole job), sdpa (attention probe), "
                             "post (the images' conversion after the decode), fa4exp (P with FA4 softmax variants), "
                             "decoder (P's VAE decoder with and without CUDA graphs: each decode's launch and GPU "
                             "time, then the engine timed with each)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per variant (default 5, tiny 2)")
    parser.add_argument("--job-runs", type=int, default=None, help="timed whole-job runs (default 5, tiny 2)")
    parser.add_argument("--n", type=int, default=8, help="candidates per call")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 25, tiny 4)")
    parser.add_argument("--warm-steps", type=int, default=None, help="steps of each warm-up call (default 5)")
    parser.add_argument("--warm-calls", type=int, default=2, help="warm-up calls for compiled variants")
    parser.add_argument("--deadline", type=float, default=530.0,
                        help="seconds: a stage whose estimate would end past this is skipped")
    parser.add_argument("--compile-backend", default="inductor", help="inductor, or aot_eager for a quick check")
    parser.add_argument("--rq-engine", default="P", choices=("P", "P0", "P8", "PU", "split"),
                        help="the rq stage's engine")
    parser.add_argument("--split-variant", default="PG", choices=("P", "PG", "PGD"),
                        help="the split stage's replicas: PG (CUDA graphs, as load_split_engine), PGD (PG with the "
                             "decoder as graphs too: the check before split engines record it) or P")
    parser.add_argument("--split-devices", default="",
                        help="the split stage's devices (default: every GPU; e.g. cuda:0,cuda:0 checks the threaded "
                             "path on one GPU, where the two replicas share the GPU and are not faster)")
    parser.add_argument("--rq-kinds", default="code,turbo,noise,repair",
                        help="the rq stage's jobs: code (code-like, 25 steps), code-whole (code with the whole batch "
                             "decoded at once), code-halves (code with each verdict in two processes at most), "
                             "code-pillow (PNGs by Pillow), code-quiet (progress written once a minute), "
                             "code-exp (FA4 softmax variant), code-nice (verifier processes at nice 10), "
                             "code-queued (every decode queued first), code-gc (objects frozen out of the collector), "
                             "code-nographs (VAE decoder without CUDA graphs), "
                             "turbo, "
                             "noise, repair (noise + repair), fewstep, queue, queue-fewstep "
                             "(bench/rq_job.py)")
    parser.add_argument("--no-kernel-check", dest="kernel_check", action="store_false",
                        help="skip the profiled 2-step call that records the attention kernels used")
    parser.add_argument("--top-kernels", type=int, default=0,
                        help="the kernel check also lists this many GPU kernels by time (all kinds)")
    parser.add_argument("--cudnn-limit", type=int, default=None,
                        help="torch.backends.cudnn.benchmark_limit for the whole process (torch's default 10: cuDNN "
                             "times at most 10 algorithms per convolution; 0 times every one). Process-wide and cached "
                             "per shape: compare it across calls, not variants")
    parser.add_argument("--seed-sets", type=int, default=1,
                        help="A and the product variants also draw seeds 2000.., 3000.. (untimed) for the image check")
    parser.add_argument("--fewstep", action="store_true",
                        help="product variants also build the few-step preset (a random rank-64 LoRA, fused) and "
                             "time it at --fewstep-steps")
    parser.add_argument("--fewstep-steps", default="4,8")
    parser.add_argument("--queue-jobs", type=int, default=50, help="jobs enqueued at once by the rq queue kinds")
    parser.add_argument("--fa4-tile", default="",
                        help="M,N,RS,OL: FA4's tile shape and schedule flags for every call of this process "
                             "(bench/fa4_tiles.py finds them; default: the kernel's own choice)")
    parser.add_argument("--fewstep-scheduler", default="lcm", choices=parameters.FEWSTEP_SCHEDULERS)
    parser.add_argument("--fa4-exp", default="poly3-1of8,poly3-1of4,poly3-3of8",
                        help="the fa4exp stage's softmax variants (bench/fa4_exp.py), each against the shipped one; "
                             "auto: those bench/fa4_exp.py found faster alone in this call's OUT (fa4_exp.json)")
    args = parser.parse_args()
    args.fewstep_steps = [int(s) for s in args.fewstep_steps.split(",") if s.strip()]
    args.runs = args.runs or (2 if args.tiny else 5)
    args.job_runs = args.job_runs or (2 if args.tiny else 5)
    args.warm_steps = args.warm_steps or (4 if args.tiny else 5)
    loading.quiet_libraries()

    if args.cudnn_limit is not None:
        import torch

        torch.backends.cudnn.benchmark_limit = args.cudnn_limit
    bench = Bench(args)
    bench.environment()
    if args.fa4_tile:
        bench.results["fa4_tile"] = use_fa4_tile(args.fa4_tile)
    bench.results["cudnn_benchmark_limit"] = __import__("torch").backends.cudnn.benchmark_limit
    bench.save()
    stages = [s.strip() for s in args.variants.split(",") if s.strip()]
    if "A" not in stages and (bench.cache / "ref_A.npy").exists():
        bench.images["A"] = np.load(bench.cache / "ref_A.npy")
        for k in range(1, args.seed_sets):
            first = FIRST_SEED + 1000 * k
            if (bench.cache / f"ref_A_{first}.npy").exists():
                bench.extra_images.setdefault("A", {})[first] = np.load(bench.cache / f"ref_A_{first}.npy")
        bench.results["notes"].append("A's images loaded from the cache of an earlier call")
    # Rough cost of each stage in seconds (H100/H200), to stay inside one call; compile dominates.
    # Compiled variants (D, F, G, E): ~210 s with a cold Inductor cache (D's compile took 176 s), ~120 s once
    # another compiled variant ran in this process (Triton kernels mostly shared; D alone from cache: ~30 s).
    estimate = dict(A=50, B=45, C=45, R=25, job=90, sdpa=10, post=5, turbo=25, rq=200, split=150, fa4exp=90,
                    decoder=90, **{"decoder-autotune": 330})
    job_done = False
    compiled_before = False
    for stage in stages:
        elapsed = time.perf_counter() - STARTED
        cost = estimate.get(stage, (120 if compiled_before else 210) if stage in (*COMPILED, "E") else 60)
        if not args.tiny and elapsed + cost > args.deadline:
            log(f"skip {stage}: {elapsed:.0f}s elapsed + ~{cost}s > deadline {args.deadline:.0f}s")
            bench.results["notes"].append(f"{stage} skipped: not enough time left in this call")
            bench.save()
            continue
        if stage in ("A", "B", "C", "R"):
            bench.run_variant(stage, VARIANTS[stage])
        elif stage in COMPILED:
            bench.run_variant(stage, VARIANTS[stage], keep=True)
            compiled_before = True
        elif stage == "E":
            best = bench.fastest(["C", "D", "F", "G"]) or "C"
            compiled_before = compiled_before or VARIANTS[best]["compile"] is not None
            spec = dict(VARIANTS[best], dtype="bf16", label=f"{best} in bf16")
            bench.run_variant("E", spec, keep=True)
        elif stage == "job":
            key = bench.fastest([k for k in ("B", "C", "D", "F", "G", "E")
                                 if k in bench.engines or k in ("B", "C")])
            if key not in bench.engines:  # eager variants are not kept: rebuild the fastest one
                bench.run_variant(key, VARIANTS[key], keep=True)
            bench.whole_job(key)
            job_done = True
        elif stage == "decoder":
            bench.decoder()
        elif stage == "decoder-autotune":
            bench.decoder_autotune()
        elif stage == "fa4exp":
            bench.fa4_exp()
        elif stage == "sdpa":
            bench.sdpa_probe()
        elif stage == "post":
            bench.postprocess_probe()
        elif stage == "turbo":
            bench.turbo()
        elif stage == "rq":
            bench.rq_job()
        elif stage == "split":
            try:
                bench.split()
            except Exception as exc:  # record it: the call's other results still matter
                import traceback

                traceback.print_exc()
                bench.results["variants"]["split"] = dict(label="split", error=f"{type(exc).__name__}: {exc}"[:2000])
                bench.save()
        else:
            raise SystemExit(f"unknown stage {stage!r}")
    # A (or D) may have run after the variants compared with it: fill in the comparisons now.
    for key, result in bench.results["variants"].items():
        if "error" in result:
            continue
        if key != "A" and not result.get("vs_A"):
            result["vs_A"] = bench.compare(key)
        if key == "G" and not result.get("vs_D"):
            result["vs_D"] = bench.compare("G", "D")
    if "A" in bench.images and len(bench.images["A"]) > 1:
        a = bench.images["A"].astype(np.int16)
        bench.results["unrelated_mean_abs"] = round(float(np.abs(a[0] - a[1]).mean()), 3)
    bench.save()
    log("done; job " + ("timed" if job_done else "not timed"))
    print(bench.markdown(), flush=True)


if __name__ == "__main__":
    main()
