"""CUDA speed-ups that keep the images: the attention kernel preference, FlashAttention 4 for the largest
self-attention on Hopper, torch.compile, CUDA graph threads.

Nothing here changes what a pipeline draws beyond fp16 rounding (bench/RESULTS.md has the measurements). FP8 matrix
products (torchao) were measured slower on an H200 and further from the images; they live in bench/fp8.py, not here.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading

from generator.core.codes.echoes import echo
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
        raise ValueError(f"Unknown attention “{echo(attention)}”: choose one of {', '.join(ATTENTION_CHOICES)}.")
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


# FA4 runs self-attention only at this head size: SD1.5's 96x96 level at 768² (heads of 40). At heads of 80 and
# 160 and for cross-attention it was slower than cuDNN (bench/GPU.md, issue 16 probe).
FA4_HEAD_SIZE = 40


@functools.cache
def fa4_kernel():
    """FlashAttention 4's forward as `torch.ops.qart.fa4_attention(q, k, v)` on (batch, tokens, heads, head size)
    fp16/bf16 CUDA tensors, or None when flash-attn-4 does not import here.

    A custom op, so that torch.compile keeps it opaque (it cannot trace FA4's CuTe DSL launcher) and Inductor
    compiles everything around it. Registered once per process (a second registration would fail).
    """
    try:
        import torch
        from flash_attn.cute import flash_attn_func
    except Exception as exc:  # not installed, or the CuTe DSL failing to load its compiler libraries
        log.info("FlashAttention 4 unavailable: %s", exc)
        return None

    # An explicit schema: with postponed annotations, torch cannot infer one from the function (bench/GPU.md, trap 6).
    @torch.library.custom_op("qart::fa4_attention", mutates_args=(), schema="(Tensor q, Tensor k, Tensor v) -> Tensor")
    def fa4_attention(q, k, v):
        out = flash_attn_func(q, k, v)
        out = out[0] if isinstance(out, tuple) else out  # (out, softmax log-sum-exp) in some versions
        return out.contiguous()

    @fa4_attention.register_fake
    def _(q, k, v):
        return q.new_empty((*q.shape[:-1], v.shape[-1]))

    return torch.ops.qart.fa4_attention


def fa4_usable(device: str) -> bool:
    """Whether the engine on `device` should run its 96x96 self-attention on FlashAttention 4: a CUDA device of
    compute capability 9.0 (Hopper: FA4's sm90 kernel, the one measured) with flash-attn-4 importable."""
    if not str(device).startswith("cuda"):
        return False
    import torch

    if not torch.cuda.is_available() or torch.cuda.get_device_capability(torch.device(device)) != (9, 0):
        return False
    return fa4_kernel() is not None


class FA4SelfAttention:
    """A diffusers attention processor: self-attention through `kernel` (FA4), anything else through `fallback`.

    The fused QKV projection's output, viewed as (batch, tokens, 3, heads, head size), already is the layout FA4
    takes (as are separate projections viewed as (batch, tokens, heads, head size)), so unlike SDPA's (batch,
    heads, tokens, head size) nothing is transposed or copied. The arithmetic is FusedAttnProcessor2_0's (softmax
    scale 1/sqrt(head size)); FA4's rounding keeps the images within fp16 rounding (bench/RESULTS.md, issue 16).
    """

    def __init__(self, fallback, kernel):
        self.fallback = fallback
        self.kernel = kernel

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        if (encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3
                or attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None
                or attn.norm_k is not None):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        residual = hidden_states
        batch, tokens, _ = hidden_states.shape
        if getattr(attn, "fused_projections", False):
            q, k, v = attn.to_qkv(hidden_states).view(batch, tokens, 3, attn.heads, -1).unbind(2)
        else:  # diffusers 0.42 does not fuse the ControlNet's projections
            q, k, v = (proj(hidden_states).view(batch, tokens, attn.heads, -1)
                       for proj in (attn.to_q, attn.to_k, attn.to_v))
        hidden_states = self.kernel(q, k, v).reshape(batch, tokens, -1).to(q.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))  # projection, dropout
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def route_self_attention(model, kernel, head_size: int = FA4_HEAD_SIZE) -> int:
    """Give every self-attention of `model` (a UNet or ControlNet) with heads of `head_size` an `FA4SelfAttention`
    processor around its current one. Returns how many attention layers were routed."""
    routed = 0
    for module in model.modules():
        if type(module).__name__ != "Attention" or module.is_cross_attention:
            continue
        if module.inner_dim // module.heads != head_size:
            continue
        current = module.get_processor()
        if not isinstance(current, FA4SelfAttention):
            module.set_processor(FA4SelfAttention(current, kernel))
            routed += 1
    return routed


def _fast_layout(module, fa4: bool, fold: bool = True) -> None:
    """Fused QKV projections, folded upsampling layers when `fold` (`upsampling.py`), channels_last, and FA4 for the
    96x96 self-attention when `fa4`."""
    import torch

    from generator.core.engines.upsampling import fold_upsamplers

    module.fuse_qkv_projections()
    if fold:
        fold_upsamplers(module)
    module.to(memory_format=torch.channels_last)
    if fa4:
        routed = route_self_attention(module, fa4_kernel())
        log.info("FlashAttention 4 runs %d self-attention layers of %s", routed, type(module).__name__)


def compile_for_cuda(txt2img, cuda_graphs: bool = False, fa4: bool | None = None, fold: bool = True,
                     decoder_graphs: bool | None = None, decoder_autotune: bool = False) -> None:
    """Make a CUDA pipeline fast without changing its images beyond fp16 rounding (in place).

    The recipe measured fastest on an H200 (bench/RESULTS.md, variant D: 3.35 s for 8 candidates at 768², 25
    steps, against 4.66 s eager with the ControlNet skip): fused QKV projections and channels_last for the
    UNet, ControlNet and VAE, cuDNN autotuning, and torch.compile (Inductor, default mode) of the UNet, the
    ControlNet and the VAE decoder (on a one-GPU engine the decoder also as CUDA graphs: `compile_decoder`). Images
    stay within fp16 rounding of the eager pipeline (max 1/255).
    Compiling takes minutes on a cold cache; the worker pays it once, in its warm-up.

    `cuda_graphs` also records the UNet and ControlNet as CUDA graphs (mode "reduce-overhead"): no faster on
    one GPU (3.33 s vs 3.35 s, variant F), but a step then costs Python almost nothing, which a split engine
    needs (its replicas share one interpreter). Graphs are recorded per thread: call the pipeline from one.

    `decoder_graphs` (default: not `cuda_graphs`) records the VAE decoder as CUDA graphs. Measured and checked on a
    one-GPU engine (bench/GPU.md, fourteenth step); a split engine's replicas keep their decoder without graphs until
    the same is checked at full size in their threads (a toy-size check there was not conclusive).
    `decoder_autotune` compiles the decoder under Inductor's max-autotune (`compile_decoder`; QART_DECODER_AUTOTUNE).

    `fa4` runs the 96x96 self-attention of the UNet and ControlNet on FlashAttention 4 (-7 % on an H200, images
    kept: bench/RESULTS.md, issue 16); None: where `fa4_usable` says it can. Compiled graphs are static in shape
    (one per batch size: a few-step engine's UNet batch of 8 next to 16 with guidance), never dynamic-shape
    recompiles. torch.compile traces at the first call, so a caller may still change the modules in place before it
    (bench/fp8.py does).

    `fold` computes the UNet's and the VAE decoder's upsampling layers (nearest 2x, then a 3x3 convolution) as 2x2
    convolutions at the lower resolution (`upsampling.fold_upsamplers`): the same sums with 16 multiply-adds where
    there were 36, the kernels' folded taps rounded once to fp16.
    """
    import torch
    import torch._dynamo
    import torch._inductor.config as inductor_config

    fa4 = fa4_usable(str(txt2img.device)) if fa4 is None else fa4
    for module in (txt2img.unet, txt2img.controlnet, txt2img.vae):
        _fast_layout(module, fa4=fa4 and module is not txt2img.vae, fold=fold)
    torch.backends.cudnn.benchmark = True
    # The ControlNet's real and skipped paths and the img2img pipeline add graphs; stay under dynamo's
    # recompile limit, past which it silently falls back to eager.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    inductor_config.conv_1x1_as_mm = True
    mode = "reduce-overhead" if cuda_graphs else None
    txt2img.unet = torch.compile(txt2img.unet, fullgraph=False, mode=mode, dynamic=False)
    # A controlnet.QRControlNet (every pipeline qart builds) compiles its network alone: one graph for every scale.
    txt2img.controlnet.compile_body(fullgraph=False, mode=mode, dynamic=False)
    if decoder_autotune:
        log.info("The VAE decoder is compiled under Inductor's max-autotune (QART_DECODER_AUTOTUNE): the warm-up takes "
                 "~3.5 minutes more on a cold Inductor cache")
    compile_decoder(txt2img.vae, cuda_graphs=not cuda_graphs if decoder_graphs is None else decoder_graphs,
                    autotune=decoder_autotune)


def compile_decoder(vae, cuda_graphs: bool = False, autotune: bool = False) -> None:
    """Compile `vae`'s decoder in place (Inductor, default mode; compiled again from the module if it already was).

    `cuda_graphs` also records it as CUDA graphs (mode "reduce-overhead"), one per latent shape: each decode then
    costs the launching thread one graph replay (2.2 ms on an H100) instead of launching its kernels one by one from
    Python (6.5 ms), which inside a job, where the PNG and verifier threads share the interpreter, kept the GPU
    waiting between decodes (24 ms an image against 20 alone; over two calls whole job p95 −27 and −46 ms, median
    +3 and −58 ms; 1.4 GiB more reserved for the graphs' pool: bench/GPU.md, fourteenth step). `compile_for_cuda`
    records them on a one-GPU engine.

    `autotune` compiles it with Inductor's max-autotune instead (each convolution and product timed against Triton
    templates, coordinate-descent tuning; with `cuda_graphs`, mode "max-autotune" records it as graphs too). On an
    H100 (bench/GPU.md, twentieth step) one latent's decode took 16.8 ms of the GPU against 19.5, the 25-step engine
    20-46 ms less, images kept (max 1 level from the default compile's), for 216 s more of compile on a cold cache (30 s
    from Inductor's); whole jobs were not shorter at p95 (the verdicts then end the job), so it is a worker's setting
    (QART_DECODER_AUTOTUNE), not a default.
    """
    import torch

    decoder = getattr(vae.decoder, "_orig_mod", vae.decoder)
    mode = {(False, False): None, (True, False): "reduce-overhead", (False, True): "max-autotune-no-cudagraphs",
            (True, True): "max-autotune"}[(bool(cuda_graphs), bool(autotune))]
    vae.decoder = torch.compile(decoder, fullgraph=False, dynamic=False, mode=mode)


def compile_unet_for_cuda(unet, cuda_graphs: bool = False, fa4: bool | None = None, fold: bool = True):
    """A second UNet (the few-step preset's) made fast as `compile_for_cuda` makes the first; returns it compiled."""
    import torch

    _fast_layout(unet, fa4=fa4_usable(str(unet.device)) if fa4 is None else fa4, fold=fold)
    return torch.compile(unet, fullgraph=False, mode="reduce-overhead" if cuda_graphs else None, dynamic=False)
