"""The few-step preset's weights: a user-supplied few-step LoRA for SD1.5 (LCM-LoRA, Hyper-SD, TCD) fused into a UNet.

Few-step LoRAs are distilled so that 4-8 steps of their own scheduler (LCM or TCD), without classifier-free
guidance, draw a finished picture: the UNet runs at batch 8 instead of 16 and 4-8 times instead of 25. The LoRA is
fused into a copy of the base UNet (the weights become W + scale * B @ A), so a step costs exactly what a plain UNet
step costs and the default preset's UNet stays as it was.

Weights come from a local `.safetensors` file, a local folder holding one, or a hub id already in the local Hugging
Face cache; nothing is downloaded. Every way a file can be wrong (missing, not safetensors, corrupt, made for
another model) raises `FewStepLoraError` with one message that says what to do.

    state, alphas = read_lora("latent-consistency/lcm-lora-sdv1-5")
    fused = fuse_lora(unet, state, alphas)      # in place; returns the number of layers changed
"""

from __future__ import annotations

import logging
from pathlib import Path

from generator.core.engines.parameters import EngineUnavailable

log = logging.getLogger(__name__)

LORA_FILE = "pytorch_lora_weights.safetensors"  # the name diffusers' save_lora_weights gives it
HINT = ("Point QART_FEWSTEP_LORA at a few-step LoRA for Stable Diffusion 1.5 (LCM-LoRA, Hyper-SD or TCD): a local "
        ".safetensors file, a folder holding one, or a hub id already in the Hugging Face cache.")


class FewStepLoraError(EngineUnavailable):
    """The few-step LoRA cannot be used; the message says why and what to do."""


def lora_file(source: str) -> Path:
    """The one `.safetensors` file `source` names: a file, a folder, or a hub id in the local cache only.

    Raises:
        FewStepLoraError: nothing readable there.
    """
    path = Path(source).expanduser()
    if not path.exists() and not source.startswith(("/", ".", "~")) and source.count("/") == 1:
        from huggingface_hub import snapshot_download

        try:  # a hub id: the local cache only, safetensors only (a pickle could run code)
            path = Path(snapshot_download(source, local_files_only=True, allow_patterns=["*.safetensors"]))
        except (OSError, ValueError) as exc:
            log.info("Few-step LoRA lookup failed: %s", exc)
            raise FewStepLoraError(f"The few-step LoRA '{source}' is not on this machine, and qart never "
                                   f"downloads at run time. {HINT}") from None
    if path.is_dir():
        files = [path / LORA_FILE] if (path / LORA_FILE).is_file() else sorted(
            f for f in path.iterdir() if f.suffix.lower() == ".safetensors" and f.is_file())
        if len(files) != 1:
            found = "no .safetensors file" if not files else f"{len(files)} .safetensors files"
            raise FewStepLoraError(f"The folder '{source}' holds {found}; name the LoRA file itself. {HINT}")
        path = files[0]
    if not path.is_file():
        raise FewStepLoraError(f"The few-step LoRA '{source}' does not exist. {HINT}")
    if path.suffix.lower() != ".safetensors":
        raise FewStepLoraError(f"'{source}' is not a .safetensors file; qart loads LoRA weights only from "
                               f"safetensors (a pickled .ckpt/.bin could run code). {HINT}")
    return path


def read_lora(source: str) -> tuple[dict, dict]:
    """The LoRA's UNet and text-encoder weights in one layout, whatever layout the file uses.

    Kohya/A1111 files (`lora_unet_...`, as LCM-LoRA and Hyper-SD ship) and diffusers/PEFT files (`unet.<module>.
    lora_A.weight`) both come back as {"unet.<module>.lora_A.weight": tensor, ...}, with alphas as
    {"unet.<module>": alpha} where the file has them (scale alpha / rank; none: scale 1).

    Raises:
        FewStepLoraError: missing, not safetensors, unreadable, or holding no LoRA weights.
    """
    import safetensors.torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft

    path = lora_file(source)
    try:
        # Read here rather than by diffusers, whose reader takes the lower-case suffix only (a "LCM.SAFETENSORS").
        state, alphas = StableDiffusionPipeline.lora_state_dict(safetensors.torch.load_file(path))
    except Exception as exc:  # safetensors' own errors (a truncated file, a header that is not JSON) and others
        log.info("Few-step LoRA read failed: %s", exc)
        raise FewStepLoraError(f"'{source}' could not be read as safetensors LoRA weights (the file is damaged or "
                               f"of another kind). {HINT}") from None
    state = convert_unet_state_dict_to_peft(dict(state))
    lora = {k: v for k, v in state.items() if k.endswith((".lora_A.weight", ".lora_B.weight"))}
    if not lora:
        raise FewStepLoraError(f"'{source}' holds no LoRA weights (no lora_A/lora_B or lora_down/lora_up "
                               f"tensors). {HINT}")
    # diffusers names each alpha after the converted down weight, in its older layout: convert those names too.
    alphas = convert_unet_state_dict_to_peft({k: float(v) for k, v in (alphas or {}).items()})
    names = {k: k.removesuffix(".alpha").removesuffix(".weight").removesuffix(".lora_A") for k in alphas}
    return lora, {names[k]: v for k, v in alphas.items()}


def fuse_lora(modules: dict, state: dict, alphas: dict, scale: float = 1.0) -> int:
    """Fuse LoRA weights into the modules they were trained for, in place: W += scale * alpha / rank * B @ A.

    Args:
        modules (`dict[str, torch.nn.Module]`): by prefix, e.g. {"unet": unet, "text_encoder": text_encoder};
            weights for another prefix are an error (a LoRA for another kind of model).
        state (`dict`): `read_lora`'s weights.
        alphas (`dict`): `read_lora`'s alphas.
        scale (`float`, *optional*, defaults to 1.0): the LoRA's strength.

    Returns:
        How many layers changed.

    Raises:
        FewStepLoraError: a layer the model lacks or of another shape (a LoRA for another model), checked for every
            layer before any weight changes.
    """
    import torch

    pairs = []
    for key in sorted(k for k in state if k.endswith(".lora_A.weight")):
        name = key.removesuffix(".lora_A.weight")
        prefix, _, path = name.partition(".")
        down, up = state[key], state.get(f"{name}.lora_B.weight")
        module = modules.get(prefix)
        layer = _submodule(module, path) if module is not None else None
        weight = getattr(layer, "weight", None)
        if weight is None:
            raise FewStepLoraError(f"The few-step LoRA has weights for '{name}', which this model lacks: it was made "
                                   f"for another model. {HINT}")
        if up is None:
            raise FewStepLoraError(f"The few-step LoRA has no up weights (lora_B) for '{name}', only its down "
                                   f"weights: the file is incomplete. {HINT}")
        if down.ndim < 2 or up.ndim < 2 or down.shape[0] == 0:
            raise FewStepLoraError(f"The few-step LoRA's weights for '{name}' are not matrices (down "
                                   f"{tuple(down.shape)}, up {tuple(up.shape)}): the file is damaged. {HINT}")
        rank = down.shape[0]
        if up.shape[1] != rank:
            raise FewStepLoraError(f"The few-step LoRA's weights for '{name}' disagree on their rank (down {rank}, up "
                                   f"{up.shape[1]}): the file is damaged. {HINT}")
        # Kohya files keep 1x1 convolutions' LoRA as matrices and the reverse: compare the sizes, reshape below.
        if up.shape[0] != weight.shape[0] or down[0].numel() != weight[0].numel():
            raise FewStepLoraError(
                f"The few-step LoRA does not fit this model: '{name}' is {tuple(weight.shape)} here, the LoRA's layers "
                f"make {(up.shape[0], *down.shape[1:])}. It was made for another model (SD1.5 is needed). {HINT}")
        if not (torch.isfinite(down).all() and torch.isfinite(up).all()):
            raise FewStepLoraError(f"The few-step LoRA's weights for '{name}' hold NaN or infinite values: the file "
                                   f"is damaged. {HINT}")
        pairs.append((weight, down, up, scale * alphas.get(name, rank) / rank))
    if not pairs:
        raise FewStepLoraError(f"The few-step LoRA has no weights for this model's UNet. {HINT}")
    with torch.no_grad():
        for weight, down, up, factor in pairs:
            delta = up.flatten(1).float() @ down.flatten(1).float()
            weight.add_((factor * delta).reshape(weight.shape).to(weight.device, weight.dtype))
    return len(pairs)


def _submodule(module, path: str):
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


def load_fewstep_unet(unet, source: str, scale: float = 1.0):
    """A copy of `unet` with the LoRA at `source` fused in; `unet` itself is left as it was.

    Raises:
        FewStepLoraError: see `read_lora` and `fuse_lora`.
    """
    import copy

    state, alphas = read_lora(source)
    if any(k.startswith("text_encoder.") for k in state):
        raise FewStepLoraError(f"'{source}' also changes the text encoder, which the default preset shares; qart "
                               f"takes few-step LoRAs for the UNet only (LCM-LoRA, Hyper-SD and TCD are). {HINT}")
    fewstep = copy.deepcopy(unet)
    count = fuse_lora({"unet": fewstep}, state, alphas, scale)
    log.info("Few-step LoRA %s: %d layers fused into a copy of the UNet", source, count)
    return fewstep
