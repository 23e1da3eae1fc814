"""Write a diffusers SD1.5 folder as ONE original-layout (LDM / CompVis) `.safetensors` checkpoint, for tests.

Real single-file checkpoints (civitai models, `v1-5-pruned-emaonly.safetensors`) keep the layout of the original
Stable Diffusion code: the UNet under `model.diffusion_model.` (`input_blocks`, `middle_block`, `output_blocks`),
the VAE under `first_stage_model.` (`encoder.down.N.block.M`, 1x1-conv attention) and the CLIP text encoder under
`cond_stage_model.transformer.`. None can be downloaded here, so the tests make one from the tiny preset: this is the
inverse of diffusers' `convert_ldm_unet_checkpoint` / `convert_ldm_vae_checkpoint` / `convert_ldm_clip_checkpoint`
(diffusers/loaders/single_file_utils.py), written from the layouts, not from diffusers' tables, so a loader bug
cannot cancel itself out. Block indices follow the folder's configs (block counts, layers per block), not SD1.5's
fixed twelve input blocks.
"""

from __future__ import annotations

import json
from pathlib import Path

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

# diffusers ResnetBlock2D -> LDM ResBlock (UNet)
UNET_RESNET_NAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
UNET_TOP_LEVEL = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
# diffusers VAE attention -> LDM AttnBlock (1x1 convolutions there, linear layers in diffusers)
VAE_ATTENTION_NAMES = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
VAE_TOP_LEVEL = {"conv_norm_out": "norm_out"}


def _rename_module(rest: str, names: dict[str, str]) -> str:
    """`norm1.weight` -> `in_layers.0.weight`: rename the leading module path of a parameter key."""
    for old, new in names.items():
        if rest.startswith(old + "."):
            return new + rest[len(old):]
    return rest


def unet_to_ldm(state: dict, config: dict) -> dict:
    """Map a diffusers `UNet2DConditionModel` state dict to LDM `model.diffusion_model.*` keys.

    Args:
        state: the UNet's tensors, diffusers keys.
        config: the UNet's `config.json` (`layers_per_block`, `down_block_types`, `up_block_types`).

    Returns:
        The same tensors under LDM keys.
    """
    per_block = config["layers_per_block"]
    up_has_attention = ["CrossAttn" in kind for kind in config["up_block_types"]]
    out: dict = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] in ("down_blocks", "up_blocks"):
            block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
            if parts[0] == "down_blocks":
                # input_blocks.0 is conv_in; each down block then has its layers and (but the last) a downsampler.
                first = 1 + block * (per_block + 1)
                if kind == "downsamplers":
                    new = f"input_blocks.{first + per_block}.0.op.{rest.removeprefix('conv.')}"
                else:
                    slot = 0 if kind == "resnets" else 1
                    rest = _rename_module(rest, UNET_RESNET_NAMES) if kind == "resnets" else rest
                    new = f"input_blocks.{first + index}.{slot}.{rest}"
            else:
                # Up blocks have one layer more; the upsampler sits after the last layer's resnet (and attention).
                first = block * (per_block + 1)
                if kind == "upsamplers":
                    slot = 2 if up_has_attention[block] else 1
                    new = f"output_blocks.{first + per_block}.{slot}.{rest}"
                else:
                    slot = 0 if kind == "resnets" else 1
                    rest = _rename_module(rest, UNET_RESNET_NAMES) if kind == "resnets" else rest
                    new = f"output_blocks.{first + index}.{slot}.{rest}"
        elif parts[0] == "mid_block":
            kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
            # middle_block: resnet 0, attention 0, resnet 1
            if kind == "resnets":
                new = f"middle_block.{2 * index}.{_rename_module(rest, UNET_RESNET_NAMES)}"
            else:
                new = f"middle_block.1.{rest}"
        else:
            new = _rename_module(key, UNET_TOP_LEVEL)
            if new == key:
                raise KeyError(f"No LDM name for UNet key {key!r}")
        out[UNET_PREFIX + new] = tensor
    return out


def vae_to_ldm(state: dict, config: dict) -> dict:
    """Map a diffusers `AutoencoderKL` state dict to LDM `first_stage_model.*` keys.

    Args:
        state: the VAE's tensors, diffusers keys.
        config: the VAE's `config.json` (`up_block_types` gives the decoder's block count).

    Returns:
        The same tensors under LDM keys (attention projections reshaped to 1x1 convolutions).
    """
    up_blocks = len(config["up_block_types"])
    out: dict = {}
    for key, tensor in state.items():
        parts = key.split(".")
        coder = parts[0]  # encoder / decoder / quant_conv / post_quant_conv
        if len(parts) > 2 and parts[1] in ("down_blocks", "up_blocks"):
            block, kind, rest = int(parts[2]), parts[3], ".".join(parts[4:])
            # The LDM decoder numbers its levels from the lowest resolution up: diffusers' up_blocks reversed.
            level = block if parts[1] == "down_blocks" else up_blocks - 1 - block
            name = "down" if parts[1] == "down_blocks" else "up"
            if kind == "resnets":
                index, rest = rest.split(".", 1)
                new = f"{coder}.{name}.{level}.block.{index}.{_rename_module(rest, {'conv_shortcut': 'nin_shortcut'})}"
            else:  # downsamplers.0.conv / upsamplers.0.conv
                sampler = "downsample" if name == "down" else "upsample"
                new = f"{coder}.{name}.{level}.{sampler}.{rest.split('.', 1)[1]}"
        elif len(parts) > 2 and parts[1] == "mid_block":
            kind, index, rest = parts[2], int(parts[3]), ".".join(parts[4:])
            if kind == "resnets":
                new = f"{coder}.mid.block_{index + 1}.{_rename_module(rest, {'conv_shortcut': 'nin_shortcut'})}"
            else:
                new = f"{coder}.mid.attn_1.{_rename_module(rest, VAE_ATTENTION_NAMES)}"
                if tensor.ndim == 2:
                    tensor = tensor[:, :, None, None]
        elif coder.endswith("quant_conv"):
            new = key
        else:
            new = f"{coder}.{_rename_module('.'.join(parts[1:]), VAE_TOP_LEVEL)}"
        out[VAE_PREFIX + new] = tensor
    return out


def clip_to_ldm(state: dict) -> dict:
    """Map a transformers `CLIPTextModel` state dict to LDM `cond_stage_model.transformer.text_model.*` keys.

    Args:
        state: the text encoder's tensors (transformers >= 5.6 drops the `text_model.` level; older keep it).

    Returns:
        The same tensors under LDM keys.
    """
    return {CLIP_PREFIX + (k if k.startswith("text_model.") else "text_model." + k): v for k, v in state.items()}


def write_ldm_checkpoint(base: str | Path, target: str | Path) -> Path:
    """Combine a diffusers SD1.5 folder's UNet, VAE and text encoder into one LDM-layout `.safetensors` file.

    Args:
        base: the diffusers folder (`unet/`, `vae/`, `text_encoder/` with safetensors weights and configs).
        target: the `.safetensors` file to write.

    Returns:
        `target` as a Path.
    """
    from safetensors.torch import load_file, save_file

    base = Path(base)

    def component(name: str, weights: str) -> tuple[dict, dict]:
        config = json.loads((base / name / "config.json").read_text())
        return load_file(str(base / name / weights)), config

    unet, unet_config = component("unet", "diffusion_pytorch_model.safetensors")
    vae, vae_config = component("vae", "diffusion_pytorch_model.safetensors")
    clip, _ = component("text_encoder", "model.safetensors")
    state = {**unet_to_ldm(unet, unet_config), **vae_to_ldm(vae, vae_config), **clip_to_ldm(clip)}
    expected = len(unet) + len(vae) + len(clip)
    if len(state) != expected:
        raise ValueError(f"Two tensors mapped to one LDM key: {expected} in, {len(state)} out.")
    target = Path(target)
    save_file({k: v.contiguous() for k, v in state.items()}, str(target))
    return target
