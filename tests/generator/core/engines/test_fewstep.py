"""The few-step preset: a few-step LoRA read from a local file, fused into a copy of the UNet, drawn without guidance.

A tiny LoRA of the tiny UNet's shapes is built in code, saved as safetensors and loaded through the same loader real
weights use (`loading.load_engine` with `ModelSpec.fewstep_lora`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from generator.core.engines import fewstep, loading, tiny
from generator.core.engines.fewstep import FewStepLoraError
from generator.core.engines.parameters import EngineUnavailable, GenerationParams
from tests.generator.core.engines.conftest import FAST


@pytest.fixture(scope="module")
def lora_path(tiny_engine, tmp_path_factory) -> str:
    return tiny.save_tiny_lora(tmp_path_factory.mktemp("lora") / "lcm" / "pytorch_lora_weights.safetensors",
                               tiny_engine.txt2img.unet)


@pytest.fixture(scope="module")
def fewstep_engine(tiny_spec, lora_path):
    return loading.load_engine(dataclasses.replace(tiny_spec, fewstep_lora=lora_path), device="cpu", aesthetic=False)


class TestLoading:
    def test_it_fuses_the_lora_into_a_copy_of_the_unet(self, fewstep_engine, tiny_engine):
        base = dict(fewstep_engine.txt2img.unet.named_parameters())
        fused = dict(fewstep_engine.fewstep[0].unet.named_parameters())
        changed = {name for name in base if not torch.equal(base[name], fused[name])}
        assert any(name.endswith("attn1.to_q.weight") for name in changed)
        assert any(name.endswith("conv1.weight") for name in changed)
        # The default preset's UNet is untouched: the same weights as an engine loaded without a LoRA.
        plain = dict(tiny_engine.txt2img.unet.named_parameters())
        assert all(torch.equal(base[name], plain[name]) for name in base)
        # Everything but the UNet is shared.
        assert fewstep_engine.fewstep[0].vae is fewstep_engine.txt2img.vae
        assert fewstep_engine.fewstep[0].controlnet is fewstep_engine.txt2img.controlnet

    def test_it_finds_the_file_in_a_folder(self, lora_path, tiny_engine):
        folder = str(lora_path).rsplit("/", 1)[0]
        state, alphas = fewstep.read_lora(folder)
        assert state and alphas == {}
        assert fewstep.lora_file(folder).name == "pytorch_lora_weights.safetensors"

    def test_it_reads_a_file_whose_suffix_is_in_capitals(self, lora_path, tmp_path):
        # diffusers' own reader takes ".safetensors" only; a LoRA saved as "LCM.SAFETENSORS" is still safetensors.
        upper = tmp_path / "lora" / "LCM.SAFETENSORS"
        upper.parent.mkdir()
        upper.write_bytes(Path(lora_path).read_bytes())
        expected, _ = fewstep.read_lora(lora_path)
        for source in (upper, upper.parent):  # the file, and the folder holding it
            state, alphas = fewstep.read_lora(str(source))
            assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)

    def test_it_reads_kohya_files_with_their_alphas(self, tiny_engine, tmp_path):
        from safetensors.torch import save_file

        unet = tiny_engine.txt2img.unet
        name = next(n for n, _ in unet.named_modules() if n.endswith("attn1.to_q"))
        kohya = "lora_unet_" + name.replace(".", "_")
        weight = unet.get_submodule(name).weight
        save_file({f"{kohya}.lora_down.weight": torch.ones(2, weight.shape[1]),
                   f"{kohya}.lora_up.weight": torch.ones(weight.shape[0], 2),
                   f"{kohya}.alpha": torch.tensor(1.0)}, str(tmp_path / "kohya.safetensors"))
        state, alphas = fewstep.read_lora(str(tmp_path / "kohya.safetensors"))
        fused = fewstep.load_fewstep_unet(unet, str(tmp_path / "kohya.safetensors"))
        delta = fused.get_submodule(name).weight - weight
        assert torch.allclose(delta, torch.full_like(delta, 2 * 0.5))  # B @ A = 2 per element, scale alpha/rank
        assert list(alphas.values()) == [1.0] and len(state) == 2

    def test_a_missing_lora_gets_one_message(self, tiny_engine, tmp_path):
        for source in (str(tmp_path / "nope.safetensors"), "someone/not-in-the-cache"):
            with pytest.raises(FewStepLoraError, match="QART_FEWSTEP_LORA") as info:
                fewstep.load_fewstep_unet(tiny_engine.txt2img.unet, source)
            assert isinstance(info.value, EngineUnavailable) and "\n" not in str(info.value)

    def test_a_file_that_is_not_safetensors_is_refused(self, tiny_engine, tmp_path):
        pickled = tmp_path / "lora.bin"
        torch.save({"a": torch.ones(1)}, pickled)
        with pytest.raises(FewStepLoraError, match="not a .safetensors file"):
            fewstep.load_fewstep_unet(tiny_engine.txt2img.unet, str(pickled))

    def test_a_corrupt_file_gets_one_message(self, tiny_engine, lora_path, tmp_path):
        corrupt = tmp_path / "corrupt.safetensors"
        corrupt.write_bytes(open(lora_path, "rb").read()[:300])  # cut short, as a broken copy would be
        with pytest.raises(FewStepLoraError, match="could not be read"):
            fewstep.load_fewstep_unet(tiny_engine.txt2img.unet, str(corrupt))
        garbage = tmp_path / "garbage.safetensors"
        garbage.write_bytes(b"not a safetensors file at all")
        with pytest.raises(FewStepLoraError, match="could not be read"):
            fewstep.load_fewstep_unet(tiny_engine.txt2img.unet, str(garbage))

    def test_a_lora_for_another_model_gets_one_message(self, tiny_engine, tmp_path):
        from diffusers import UNet2DConditionModel

        # Same block layout, other widths: the layer names match, the shapes do not (an SDXL LoRA on SD1.5, say).
        config = dict(tiny_engine.txt2img.unet.config, block_out_channels=(32, 64))
        other = UNet2DConditionModel.from_config(config)
        path = tiny.save_tiny_lora(tmp_path / "other.safetensors", other)
        unet = tiny_engine.txt2img.unet
        before = {k: v.clone() for k, v in unet.state_dict().items()}
        with pytest.raises(FewStepLoraError, match="does not fit this model") as info:
            fewstep.load_fewstep_unet(unet, path)
        assert "SD1.5" in str(info.value)
        assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())

    def test_layers_the_model_lacks_get_one_message(self, tiny_engine, tmp_path):
        from safetensors.torch import save_file

        save_file({"unet.down_blocks.7.attentions.0.to_q.lora_A.weight": torch.ones(2, 4),
                   "unet.down_blocks.7.attentions.0.to_q.lora_B.weight": torch.ones(4, 2)},
                  str(tmp_path / "elsewhere.safetensors"))
        with pytest.raises(FewStepLoraError, match="which this model lacks"):
            fewstep.load_fewstep_unet(tiny_engine.txt2img.unet, str(tmp_path / "elsewhere.safetensors"))

    @pytest.mark.parametrize(("damage", "message"), [
        (lambda a, b: {"A": a}, "no up weights"),
        (lambda a, b: {"A": a, "B": b.flatten().contiguous()}, "not matrices"),
        (lambda a, b: {"A": a[:0].contiguous(), "B": b[:, :0].contiguous()}, "not matrices"),
        (lambda a, b: {"A": a, "B": torch.cat([b, b], dim=1)}, "disagree on their rank"),
        (lambda a, b: {"A": a, "B": torch.full_like(b, float("nan"))}, "NaN or infinite"),
    ])
    def test_a_damaged_layer_gets_one_message_and_changes_nothing(self, tiny_engine, lora_path, tmp_path, damage,
                                                                  message):
        from safetensors.torch import load_file, save_file

        state = load_file(lora_path)
        name = sorted(k for k in state if k.endswith(".lora_A.weight"))[0].removesuffix(".lora_A.weight")
        damaged = damage(state.pop(f"{name}.lora_A.weight"), state.pop(f"{name}.lora_B.weight"))
        state.update({f"{name}.lora_{part}.weight": tensor for part, tensor in damaged.items()})
        save_file(state, str(tmp_path / "damaged.safetensors"))
        unet = tiny_engine.txt2img.unet
        before = {k: v.clone() for k, v in unet.state_dict().items()}
        with pytest.raises(FewStepLoraError, match=message):
            fewstep.load_fewstep_unet(unet, str(tmp_path / "damaged.safetensors"))
        assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())

    def test_through_the_loader_a_bad_lora_stops_loading_with_its_message(self, tiny_spec, tmp_path):
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"\x00" * 64)
        with pytest.raises(FewStepLoraError, match="could not be read"):
            loading.load_engine(dataclasses.replace(tiny_spec, fewstep_lora=str(bad)), device="cpu",
                                warm_up=False, aesthetic=False)


class TestGeneration:
    @pytest.mark.parametrize("scheduler", ["lcm", "tcd"])
    def test_the_preset_draws_with_the_fused_unet_and_no_guidance(self, fewstep_engine, control, scheduler):
        batches = []
        unet = fewstep_engine.fewstep[0].unet
        hook = unet.register_forward_pre_hook(lambda _m, args: batches.append(args[0].shape[0]))
        try:
            params = GenerationParams(**dict(FAST, steps=4), scheduler=scheduler, guidance_scale=3.5)
            images = fewstep_engine.generate(control, params, seeds=[1, 2])
        finally:
            hook.remove()
        assert batches == [2] * 4  # one UNet call a step, 2 samples: no classifier-free guidance
        assert len(images) == 2 and images[0].size == (256, 256)
        assert type(fewstep_engine.fewstep[0].scheduler).__name__ == f"{scheduler.upper()}Scheduler"

    def test_the_preset_and_the_default_differ(self, fewstep_engine, control):
        params = GenerationParams(**FAST)
        plain = fewstep_engine.generate(control, params, seeds=[1])[0]
        few = fewstep_engine.generate(control, dataclasses.replace(params, scheduler="lcm"), seeds=[1])[0]
        assert plain.tobytes() != few.tobytes()

    def test_without_a_lora_the_preset_is_refused(self, tiny_engine, control):
        with pytest.raises(ValueError, match="QART_FEWSTEP_LORA"):
            tiny_engine.generate(control, GenerationParams(**FAST, scheduler="lcm"), seeds=[1])
