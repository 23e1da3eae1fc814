"""What a generation is asked for: the weights (`ModelSpec`), the sampling parameters (`GenerationParams`), the
named presets, and the errors an engine raises. Plain dataclasses: importing this loads neither torch nor diffusers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from generator.core.codes.echoes import echo

DEFAULT_BASE = "Lykon/DreamShaper"
DEFAULT_CONTROLNET = "monster-labs/control_v1p_sd15_qrcode_monster"
DEFAULT_CONTROLNET_SUBFOLDER = "v2"
DEFAULT_NEGATIVE = "worst quality, low quality, ugly, disfigured, blurry, watermark, text"
SCHEDULERS = ("ddim", "dpmpp_2m_karras", "euler_a", "unipc")
# The few-step preset's schedulers: they need a few-step LoRA (ModelSpec.fewstep_lora; `fewstep.py`) and run
# without classifier-free guidance (the LoRA is distilled with it folded in), so the UNet sees 8 samples, not 16.
FEWSTEP_SCHEDULERS = ("lcm", "tcd")
# Modal's production recipe for qart.codes used DDIM at 50 steps; "fast" trades a little quality for 2x.
PRESETS = {
    "quality": {"scheduler": "ddim", "steps": 50},
    "fast": {"scheduler": "dpmpp_2m_karras", "steps": 25},
    # Fewer steps change the images (unlike the engine's speed-ups, which keep them): a preset of its own.
    # DPM-Solver++ 2M is built to converge in 15-20 steps; whether codes scan as often is for a sweep to show.
    "turbo": {"scheduler": "dpmpp_2m_karras", "steps": 15},
    # Only where a few-step LoRA is configured; its scheduler (lcm or tcd) comes with the LoRA (QART_FEWSTEP_SCHEDULER).
    "fewstep": {"scheduler": "lcm", "steps": 6},
}
# Attention kernels on CUDA: "cudnn" prefers cuDNN's fused attention, "default" leaves PyTorch's own choice. Either
# way a compiled engine on Hopper with flash-attn-4 installed runs the 96x96 self-attention on FA4 (`cuda.py`).
ATTENTION_CHOICES = ("cudnn", "default")


class EngineUnavailable(RuntimeError):
    """No engine can be loaded here; the message says why and how to fix it."""


class ModelNotFound(EngineUnavailable):
    """Requested weights are not on this machine (and qart never downloads at run time)."""


class DeviceNotFound(EngineUnavailable):
    """A configured device (QART_DEVICES) does not exist on this machine."""


class Cancelled(RuntimeError):
    """Raised by an `on_step` callback to stop a generation between denoising steps."""


@dataclass(frozen=True)
class ModelSpec:
    """Which weights to load. Each is a hub id (looked up in the local cache only) or a local path."""

    base: str = DEFAULT_BASE  # SD1.5 checkpoint: hub id, diffusers folder, or .safetensors/.ckpt file
    controlnet: str = DEFAULT_CONTROLNET  # QR ControlNet: hub id or folder
    controlnet_subfolder: str | None = DEFAULT_CONTROLNET_SUBFOLDER  # QR Code Monster keeps v2 in "v2/"
    base_config: str | None = None  # for single-file bases: a local diffusers folder with the SD1.5 configs
    aesthetic_clip: str | None = None  # CLIP ViT-L/14 vision tower for the aesthetic score; None: no score
    aesthetic_head: str | None = None  # LAION head weights (.pth or .safetensors)
    tiny: bool = False  # random toy weights: images are noise
    fewstep_lora: str | None = None  # few-step LoRA (file, folder or cached hub id) for the lcm/tcd schedulers

    @property
    def label(self) -> str:
        return "tiny (random weights: images are noise)" if self.tiny else f"{self.base} + {self.controlnet}"


@dataclass
class GenerationParams:
    """Everything that shapes the images. Defaults follow Modal's published recipe (fast scheduler)."""

    prompt: str  # what the picture shows
    negative_prompt: str = DEFAULT_NEGATIVE  # what it should not
    steps: int = 25  # denoising steps, 1-150
    guidance_scale: float = 3.5  # classifier-free guidance, 0-20 (<= 1 turns guidance off)
    conditioning_scale: float = 1.5  # how hard the QR pattern is imposed, 0-3
    control_start: float = 0.25  # fraction of steps before the ControlNet starts, 0-1
    control_end: float = 1.0  # fraction of steps after which it stops, 0-1, > control_start
    strength: float | None = None  # img2img: how much of the init image is repainted, (0, 1]; None: txt2img
    size: int = 768  # output side in pixels, 256-1024, a multiple of 64
    scheduler: str = "dpmpp_2m_karras"  # one of SCHEDULERS

    def validate(self) -> None:
        """Raise ValueError with a message for a person on the first bad value."""
        if not self.prompt or not self.prompt.strip():
            raise ValueError("Prompt is empty: describe the picture the code should become.")
        if len(self.prompt) > 1000 or len(self.negative_prompt) > 1000:
            raise ValueError("Prompts are limited to 1,000 characters.")
        checks = [
            ("steps", self.steps, 1, 150),
            ("guidance scale", self.guidance_scale, 0.0, 20.0),
            ("conditioning scale", self.conditioning_scale, 0.0, 3.0),
            ("control start", self.control_start, 0.0, 1.0),
            ("control end", self.control_end, 0.0, 1.0),
            ("size", self.size, 256, 1024),
        ]
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"{name.capitalize()} must be between {low} and {high}, got {value}.")
        if self.control_start >= self.control_end:
            raise ValueError(
                f"Control start ({self.control_start}) must be before control end ({self.control_end})."
            )
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise ValueError(f"Strength must be above 0 and at most 1, got {self.strength}.")
        if self.size % 64:
            raise ValueError(f"Size must be a multiple of 64 pixels, got {self.size}.")
        if self.scheduler not in SCHEDULERS + FEWSTEP_SCHEDULERS:
            raise ValueError(f"Unknown scheduler “{echo(self.scheduler)}”: choose one of {', '.join(SCHEDULERS)}.")

    @property
    def fewstep(self) -> bool:
        """Drawn by the few-step LoRA's UNet with its scheduler, without classifier-free guidance."""
        return self.scheduler in FEWSTEP_SCHEDULERS

    def with_preset(self, name: str) -> GenerationParams:
        if name not in PRESETS:
            raise ValueError(f"Unknown preset “{echo(name)}”: choose one of {', '.join(PRESETS)}.")
        return replace(self, **PRESETS[name])


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    """The shapes a worker warms up, from text such as "768x8,512x8" (image side x candidates, comma-separated).

    Compiled graphs specialise on shape, so each shape named here is compiled at the worker's start and a job of
    another shape is drawn eagerly (`diffusion.Engine.generate`). The bounds are those a job may ask for.

    Args:
        text (`str`): comma-separated `<size>x<candidates>` items; spaces and "×" are accepted.

    Returns:
        (size, candidates) pairs in the order given, each once.

    Raises:
        ValueError: one message naming the first bad item (or that none was given).
    """
    shapes: list[tuple[int, int]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", item.lower())
        if match is None:
            raise ValueError(f"“{echo(item)}” is not a shape: write size x candidates, comma-separated, "
                             "e.g. 768x8,512x8.")
        size, batch = int(match[1]), int(match[2])
        if not 256 <= size <= 1024 or size % 64:
            raise ValueError(f"“{echo(item)}”: the size must be a multiple of 64 from 256 to 1024, got {size}.")
        if not 1 <= batch <= 16:
            raise ValueError(f"“{echo(item)}”: the candidates must be between 1 and 16, got {batch}.")
        if (size, batch) not in shapes:
            shapes.append((size, batch))
    if not shapes:
        raise ValueError("No shape given: write size x candidates, comma-separated, e.g. 768x8,512x8.")
    return tuple(shapes)
