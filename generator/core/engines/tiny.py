"""The `tiny` model preset: SD1.5-shaped components at toy size with seeded random weights.

For tests and for machines without real weights: no downloads, a few seconds on a CPU. Its images are
noise. `save_tiny_models(folder)` writes them laid out like the hub (a diffusers base folder, a
ControlNet repository with a `v2` subfolder, an aesthetic predictor folder), so they load through the
same loader as real weights.

The shapes keep SD1.5's geometry where the pipeline depends on it: the VAE downsamples 8x, latents have
4 channels, the ControlNet's conditioning embedding downsamples the control image 8x to latent size.
"""

from __future__ import annotations

import json
from pathlib import Path

from generator.core.engines.loading import quiet_libraries
from generator.core.engines.parameters import ModelSpec

TINY_SEED = 0
# A character-level CLIP tokenizer: every byte is a token, no merges. Real CLIP vocabularies are BPE;
# the tokenizer class and files are the same.
START, END = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    # CLIP's byte-level BPE maps each byte to a printable character (GPT-2's table).
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def write_tokenizer(folder: Path) -> None:
    """Write a tiny CLIP tokenizer (vocab.json, merges.txt, config) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = {token: i for i, token in enumerate(symbols + [s + "</w>" for s in symbols] + [START, END])}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": START,
        "eos_token": END,
        "unk_token": END,
        "pad_token": END,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def save_tiny_models(folder: str | Path) -> dict[str, str]:
    """Build the tiny components with seeded random weights and save them like hub repositories.

    Args:
        folder: where to write `base/`, `controlnet/v2/` and `aesthetic/`.

    Returns:
        Paths for the loader: {"base": ..., "controlnet": ..., "controlnet_subfolder": "v2", "aesthetic": ...}.
    """
    quiet_libraries()
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig

    from generator.core.engines import aesthetics

    root = Path(folder)
    base = root / "base"
    torch.manual_seed(TINY_SEED)
    blocks = dict(
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    unet = UNet2DConditionModel(
        sample_size=96, in_channels=4, out_channels=4, up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), **blocks
    )
    controlnet = ControlNetModel(in_channels=4, conditioning_embedding_out_channels=(8, 8, 8, 8), **blocks)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=768,
    )
    write_tokenizer(base / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(base / "tokenizer")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=77,
        )
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False)

    unet.save_pretrained(base / "unet")
    vae.save_pretrained(base / "vae")
    text_encoder.save_pretrained(base / "text_encoder")
    scheduler.save_pretrained(base / "scheduler")
    index = {
        "_class_name": "StableDiffusionControlNetPipeline",
        "_diffusers_version": "0.42.1",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
    }
    (base / "model_index.json").write_text(json.dumps(index, indent=2))
    controlnet.save_pretrained(root / "controlnet" / "v2")

    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32,
        patch_size=8, projection_dim=aesthetics.EMBEDDING_SIZE,
    )
    aesthetics.save_tiny_predictor(root / "aesthetic", vision)
    return {
        "base": str(base),
        "controlnet": str(root / "controlnet"),
        "controlnet_subfolder": "v2",
        "aesthetic": str(root / "aesthetic"),
    }


def tiny_spec(folder: str | Path) -> ModelSpec:
    """Build (once) and describe the tiny preset saved in `folder`."""
    folder = Path(folder)
    marker = folder / "base" / "model_index.json"
    if not marker.exists():
        save_tiny_models(folder)
    return ModelSpec(
        base=str(folder / "base"),
        controlnet=str(folder / "controlnet"),
        controlnet_subfolder="v2",
        aesthetic_clip=str(folder / "aesthetic" / "clip"),
        aesthetic_head=str(folder / "aesthetic" / "head.safetensors"),
        tiny=True,
    )
