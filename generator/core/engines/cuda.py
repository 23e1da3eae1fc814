"""CUDA speed-ups that keep the images: the attention kernel preference, torch.compile, CUDA graph threads.

Nothing here changes what a pipeline draws beyond fp16 rounding (bench/RESULTS.md has the measurements).
"""

from __future__ import annotations

import collections
import logging
import threading

from generator.core.engines.parameters import ATTENTION_CHOICES

log = logging.getLogger(__name__)


def graph_thread() -> None:
    """Set up CUDA graph trees' per-thread state in a thread torch did not create.

    torch 2.11 sets it up only in the thread that first imports `torch._inductor.cudagraph_trees` (and in
    autograd's threads) and fails an assertion in any other thread that records a graph; 2.13 does it itself.
    """
    import torch

    if not torch.cuda.is_available():
        return
    from torch._inductor import cudagraph_trees

    local = cudagraph_trees.local
    if not hasattr(local, "tree_manager_containers"):  # what the module does for its importing thread
        local.tree_manager_containers = {}
        local.tree_manager_locks = collections.defaultdict(threading.Lock)


_sdpa_order_ready: set[str] = set()  # devices whose default SDPA priority torch has filled in


def _initialise_sdpa_priority(device: str) -> None:
    """Make torch fill in its default SDPA priority order now, once per device, before anyone changes it.

    torch sets its default order lazily, at the first attention call of the process (on Hopper with a recent
    cuDNN that default already puts cuDNN first). `sdpa_kernel(..., set_priority=True)` entered before that
    saves the not-yet-filled order (flash first) and restores it on exit, which leaves the whole process on
    flash afterwards: seen on an H200 (2026-11-22), where plain eager diffusers then took 5.80 s instead of
    5.05 s. Asking for a backend choice (no kernel runs) fills the default in first.
    """
    if device in _sdpa_order_ready:
        return
    _sdpa_order_ready.add(device)
    try:
        import torch

        q = torch.empty(1, 1, 8, 64, device=device, dtype=torch.float16)
        torch._fused_sdp_choice(q, q, q)
    except Exception as exc:  # a private API: never let it stop a generation
        log.info("Could not initialise the SDPA priority order on %s: %s", device, exc)


def attention_context(device: str, attention: str = "cudnn"):
    """The context `Engine.generate` runs the pipeline in: which scaled-dot-product-attention kernel to prefer.

    Why: SD1.5's self-attention at the 96x96 latent level (9,216 tokens, heads of 40; 161 calls per 25-step
    generation at 768^2 with ControlNet) is the costliest attention in the pipeline. On an H200 (torch 2.11,
    cuDNN 9.19, batch 16) one such call takes 10.4 ms on the flash kernel and 5.8 ms on cuDNN attention; a
    whole eager generation took 5.80 s on flash (profiled) against 5.05 s in a fresh process, where torch's
    default is cuDNN (bench/RESULTS.md, GPU section). So on
    CUDA, "cudnn" puts cuDNN first and keeps flash, memory-efficient and math as fallbacks, in that order, for
    inputs cuDNN refuses (older GPUs; head sizes it does not take, such as the VAE's 512). On that H200,
    PyTorch's own default already picks cuDNN for these calls, so "cudnn" pins it rather than speeding up;
    where torch puts flash first (other GPUs, older cuDNN, TORCH_CUDNN_SDPA_PREFERRED=0) it changes the kernel
    (not measured off Hopper). Images stay within fp16 rounding (measured: 1/255 max, as torch.compile alone).

    Notes: the flags are process-wide while the context is open (generation runs in one thread per worker).
    Under `torch.compile` the kernel is chosen when a graph is traced, not per call: dynamo does not re-trace
    when these flags change, and Inductor's on-disk caches (AOTAutograd/FX graph) do not key on them either,
    so a compiled deployment must trace inside this context and tag its cache per choice
    (`torch.compiler.config.cache_key_tag`, as bench/gpu.py does).
    CPU and MPS get no context ("default" everywhere): nothing to gain there and images stay as they were.
    On a torch without `set_priority` or cuDNN attention this falls back to no context.
    """
    import contextlib

    if attention not in ATTENTION_CHOICES:
        raise ValueError(f"Unknown attention {attention!r}: choose one of {', '.join(ATTENTION_CHOICES)}.")
    if attention == "default" or not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                 SDPBackend.MATH]
        context = sdpa_kernel(order, set_priority=True)
    except (ImportError, AttributeError, TypeError) as exc:  # torch too old for cuDNN attention / set_priority
        log.info("cuDNN attention preference unavailable (%s); using PyTorch's default", exc)
        return contextlib.nullcontext()
    _initialise_sdpa_priority(str(device))  # before the context saves the order it will restore
    return context


def compile_for_cuda(txt2img, cuda_graphs: bool = False) -> None:
    """Make a CUDA pipeline fast without changing its images beyond fp16 rounding (in place).

    The recipe measured fastest on an H200 (bench/RESULTS.md, variant D: 3.35 s for 8 candidates at 768², 25
    steps, against 4.66 s eager with the ControlNet skip): fused QKV projections and channels_last for the
    UNet, ControlNet and VAE, cuDNN autotuning, and torch.compile (Inductor, default mode) of the UNet, the
    ControlNet and the VAE decoder. Images stay within fp16 rounding of the eager pipeline (max 1/255).
    Compiling takes minutes on a cold cache; the worker pays it once, in its warm-up.

    `cuda_graphs` also records the UNet and ControlNet as CUDA graphs (mode "reduce-overhead"): no faster on
    one GPU (3.33 s vs 3.35 s, variant F), but a step then costs Python almost nothing, which a split engine
    needs (its replicas share one interpreter). Graphs are recorded per thread: call the pipeline from one.
    """
    import torch
    import torch._dynamo
    import torch._inductor.config as inductor_config

    for module in (txt2img.unet, txt2img.controlnet, txt2img.vae):
        module.fuse_qkv_projections()
        module.to(memory_format=torch.channels_last)
    torch.backends.cudnn.benchmark = True
    # The ControlNet's real and skipped paths and the img2img pipeline add graphs; stay under dynamo's
    # recompile limit, past which it silently falls back to eager.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    inductor_config.conv_1x1_as_mm = True
    mode = "reduce-overhead" if cuda_graphs else None
    txt2img.unet = torch.compile(txt2img.unet, fullgraph=False, mode=mode)
    txt2img.controlnet = torch.compile(txt2img.controlnet, fullgraph=False, mode=mode)
    txt2img.vae.decoder = torch.compile(txt2img.vae.decoder, fullgraph=False)
