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


# The layers LCM-LoRA for SD1.5 trains (its adapter config's target modules); Hyper-SD and TCD take the same.
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                "conv2", "conv_shortcut", "time_emb_proj", "downsamplers.0.conv", "upsamplers.0.conv")


def random_lora(unet, rank: int = 4, seed: int = TINY_SEED, std: float = 0.02) -> dict:
    """Seeded random LoRA weights of `unet`'s shapes, laid out as diffusers saves a PEFT LoRA
    (`unet.<module>.lora_A.weight`, `lora_B.weight`). For tests (tiny UNet) and speed runs (full size): a fused
    LoRA costs the same whatever its values.

    Args:
        unet: the UNet the LoRA is for.
        rank: the LoRA's rank.
        seed: torch seed.
        std: spread of the random values (B @ A changes each weight by about std² * rank).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in unet.named_modules():
        if not name.endswith(LORA_TARGETS) or not isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            continue
        out_features, in_shape = module.weight.shape[0], tuple(module.weight.shape[1:])
        down_shape = (rank, *in_shape) if module.weight.dim() == 4 else (rank, in_shape[0])
        up_shape = (out_features, rank, 1, 1) if module.weight.dim() == 4 else (out_features, rank)
        state[f"unet.{name}.lora_A.weight"] = torch.randn(down_shape, generator=generator) * std
        state[f"unet.{name}.lora_B.weight"] = torch.randn(up_shape, generator=generator) * std
    return state


def save_tiny_lora(path: str | Path, unet, rank: int = 4, seed: int = TINY_SEED) -> str:
    """Write `random_lora(unet)` as a safetensors file at `path` (what a real LoRA download is); returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in random_lora(unet, rank, seed).items()}
    save_file(state, str(path), metadata={"format": "pt"})
    return str(path)
