"""Aesthetic score: the LAION "improved aesthetic predictor" (CLIP ViT-L/14 image embedding + an MLP head).

Real weights: CLIP `openai/clip-vit-large-patch14` (a hub id or local folder) and the head's state dict
(`sac+logos+ava1-l14-linearMSE.pth`, or the same tensors as .safetensors). Scores run roughly 1-10;
above ~6 people call an image pretty. Candidates are scored as one batch on the pipeline's device.

The tiny preset saves a random CLIP vision tower and head in the same layout, loaded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

EMBEDDING_SIZE = 768  # CLIP ViT-L/14 projection size, what the LAION head expects
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CLIP = "openai/clip-vit-large-patch14"


def build_head():  # -> torch.nn.Module
    """The LAION head: its layer indices match the published state dict (layers.0, .2, .4, .6, .7)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(EMBEDDING_SIZE, 1024),
        nn.Dropout(0.2),
        nn.Linear(1024, 128),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.Dropout(0.1),
        nn.Linear(64, 16),
        nn.Linear(16, 1),
    )


def load_head_state(path: str | Path) -> dict:
    """The head's tensors from a .pth (torch.save) or .safetensors file, keys without the `layers.` prefix."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    return {key.removeprefix("layers."): value for key, value in state.items()}


@dataclass
class AestheticPredictor:
    """CLIP vision tower + head, on one device, in eval mode."""

    clip: object  # transformers.CLIPVisionModelWithProjection
    head: object  # torch.nn.Sequential
    image_size: int
    device: str
    dtype: object  # torch.dtype

    def score(self, images: list[Image.Image]) -> list[float]:
        """Aesthetic scores for a batch of images, in order.

        Args:
            images: RGB PIL images of any size.

        Returns:
            One float per image (about 1-10 with the real weights; arbitrary with the tiny ones).
        """
        import torch

        if not images:
            return []
        with torch.inference_mode():
            pixels = torch.stack([self._preprocess(image) for image in images]).to(self.dtype)
            embeds = self.clip(pixel_values=pixels).image_embeds.float()
            embeds = embeds / embeds.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            scores = self.head(embeds).squeeze(-1)
        return [round(float(s), 4) for s in scores.cpu()]

    def _preprocess(self, image: Image.Image):  # -> torch.Tensor
        """CLIP's own preprocessing (shorter side to `image_size` by PIL's antialiased bicubic, rounded to 8 bits as
        PIL's is; centre crop; normalise), done here because transformers' fast image processors need torchvision,
        and on the predictor's device: on a GPU host the CPU's cores are verifying these same images meanwhile (done
        with PIL and numpy here, it was a job's tail: bench/GPU.md, tenth step). Within one level of PIL's own resize
        (torch's antialiased bicubic is PIL's filter, in floats)."""
        import torch

        size = self.image_size
        rgb = torch.from_numpy(np.array(image if image.mode == "RGB" else image.convert("RGB")))
        pixels = rgb.to(self.device).permute(2, 0, 1)[None].float()  # 1 x 3 x h x w, 0-255
        w, h = image.size
        scale = size / min(w, h)
        shape = (max(size, round(h * scale)), max(size, round(w * scale)))
        if shape != (h, w):
            pixels = torch.nn.functional.interpolate(pixels, size=shape, mode="bicubic", antialias=True,
                                                     align_corners=False).round_().clamp_(0, 255)
        top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
        crop = pixels[0, :, top:top + size, left:left + size] / 255.0
        mean = torch.tensor(CLIP_MEAN, device=crop.device).view(3, 1, 1)
        std = torch.tensor(CLIP_STD, device=crop.device).view(3, 1, 1)
        return (crop - mean) / std


def load_predictor(clip: str, head: str, device: str = "cpu", dtype=None, local_files_only: bool = True):
    """Load the aesthetic predictor.

    Args:
        clip: hub id or local folder of a `CLIPVisionModelWithProjection`.
        head: path of the head's weights (.pth or .safetensors).
        device: torch device.
        dtype: torch dtype for CLIP (the head runs in fp32); defaults to fp32.
        local_files_only: never download (the product's default).

    Returns:
        An `AestheticPredictor`.
    """
    import torch
    from transformers import CLIPVisionModelWithProjection

    dtype = dtype or torch.float32
    model = CLIPVisionModelWithProjection.from_pretrained(clip, dtype=dtype, local_files_only=local_files_only)
    model.to(device).eval()
    mlp = build_head()
    mlp.load_state_dict(load_head_state(head))
    mlp.to(device).eval()
    return AestheticPredictor(model, mlp, model.config.image_size, device, dtype)


def save_tiny_predictor(folder: Path, vision_config) -> None:
    """Save a random tiny CLIP vision tower (`clip/`) and a random head (`head.safetensors`) into `folder`."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionModelWithProjection

    torch.manual_seed(1)
    CLIPVisionModelWithProjection(vision_config).save_pretrained(folder / "clip")
    state = {f"layers.{k}": v.contiguous() for k, v in build_head().state_dict().items()}
    save_file(state, str(folder / "head.safetensors"))
