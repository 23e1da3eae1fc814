"""FP8 matrix products for the GPU benchmark's variant P8 (torchao): measured, and not in the product.

On an H200 (bench/RESULTS.md, "Issue 16: the fp8 preset measured"), P8 was 1.6 % slower than the fp16 engine and
moved the images five times further from plain fp16 than fp16 rounding does: torchao's per-tensor dynamic scaling
adds a reduction and a cast around each product, which costs more than FP8 saves at SD1.5's layer widths.

    cuda.compile_for_cuda(pipe)                       # fused projections, channels_last, torch.compile (lazy)
    fp8.quantize_fp8(pipe.unet._orig_mod)             # before the first call, when the graphs are traced
"""

from __future__ import annotations


def fp8_unusable(device: str) -> str | None:
    """Why FP8 matrix products cannot run on `device` (one sentence), or None when they can: a CUDA GPU of compute
    capability 8.9 or newer (Ada, Hopper) and torchao importable."""
    if not str(device).startswith("cuda"):
        return f"FP8 precision needs a CUDA GPU; this engine runs on {device}."
    import torch

    if not torch.cuda.is_available():
        return "FP8 precision needs a CUDA GPU; none is visible here."
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if (major, minor) < (8, 9):
        return (f"FP8 precision needs a GPU of compute capability 8.9 or newer (Ada, Hopper); {device} has "
                f"{major}.{minor}.")
    try:
        import torchao.quantization  # noqa: F401
    except Exception as exc:  # not installed, or built for another torch
        return f"FP8 precision needs torchao (pip install torchao==0.18.0): {exc}"
    return None


def _fp8_eligible(module, _name: str) -> bool:
    import torch

    # FP8 matrix products want both dimensions in multiples of 16; SD1.5's linear layers all are.
    return isinstance(module, torch.nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0


def quantize_fp8(model) -> int:
    """Run the linear layers of `model` (a UNet or ControlNet, in place) as FP8 matrix products: e4m3 weights and
    activations, each scaled per tensor (activations at run time), through torchao. Convolutions stay fp16.

    Per-tensor scales because the model is fp16: row-wise scaled FP8 products return bf16 only. This changes the
    images. Measured on an H200 (bench/RESULTS.md, 2026-12-02): 1.6 % slower than fp16 and five times further from
    the fp16 images than fp16 rounding, so the product does not offer it. Call it after `cuda.compile_for_cuda` (which
    fuses the QKV projections) and before the first call (when torch.compile traces). Returns how many layers.
    """
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerTensor, quantize_

    count = sum(_fp8_eligible(m, "") for m in model.modules())
    # set_inductor_config=False: torchao would turn on Inductor's coordinate-descent autotuning for the whole process,
    # which made every compile outlast a 10-minute call (bench/GPU.md, third step).
    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerTensor(), set_inductor_config=False)
    quantize_(model, config, filter_fn=_fp8_eligible)
    return count
