"""A single original-layout `.safetensors`/`.ckpt` base model, loaded by the product loader with no network.

No real LDM checkpoint can be downloaded here: `ldm_checkpoint` writes the tiny preset in the original
(CompVis) layout, and these tests load it through `loading.load_engine` next to a folder that holds the
configs only, so every weight must come from the file.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from generator.core.engines import loading
from generator.core.engines.parameters import GenerationParams, ModelNotFound, ModelSpec
from tests.generator.core.engines import ldm_checkpoint

COMPONENTS = {  # component -> its weights file in the diffusers folder
    "unet": "diffusion_pytorch_model.safetensors",
    "vae": "diffusion_pytorch_model.safetensors",
    "text_encoder": "model.safetensors",
}


@pytest.fixture(scope="module")
def single_file(tiny_spec, tmp_path_factory):
    """The tiny base as one LDM-layout file, and a diffusers folder with the tiny configs but no weights."""
    root = tmp_path_factory.mktemp("single")
    checkpoint = ldm_checkpoint.write_ldm_checkpoint(tiny_spec.base, root / "tiny-ldm.safetensors")
    configs = root / "configs"
    shutil.copytree(tiny_spec.base, configs, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return checkpoint, configs


@pytest.fixture
def offline(monkeypatch):
    """No network: HF_HUB_OFFLINE, and every socket connection recorded and refused."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return refuse_connections(monkeypatch)


def refuse_connections(monkeypatch) -> list:
    """Record and refuse every internet connection attempt (local Unix sockets, e.g. multiprocessing's, pass)."""
    attempts: list = []
    connect = socket.socket.connect

    def guarded(sock, address, *args):
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return connect(sock, address, *args)
        attempts.append(address)
        raise OSError(f"network use in a test: {address}")

    def resolve(host, *args, **kwargs):  # a name lookup comes first, and fails on its own without DNS
        attempts.append(host)
        raise socket.gaierror(f"network use in a test: {host}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return attempts


@pytest.fixture
def empty_hf_cache(monkeypatch, tmp_path):
    """A Hugging Face cache with nothing in it, whatever this machine has cached."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def single_file_spec(tiny_spec, checkpoint, configs) -> ModelSpec:
    return ModelSpec(base=str(checkpoint), base_config=str(configs) if configs else None,
                              controlnet=tiny_spec.controlnet, controlnet_subfolder=tiny_spec.controlnet_subfolder)


def original_tensors(tiny_spec, component: str) -> dict:
    return load_file(str(Path(tiny_spec.base) / component / COMPONENTS[component]))


def assert_same_weights(engine, tiny_spec) -> None:
    for component in COMPONENTS:
        loaded = getattr(engine.txt2img, component).state_dict()
        expected = original_tensors(tiny_spec, component)
        assert set(loaded) >= set(expected), f"{component}: missing {sorted(set(expected) - set(loaded))[:5]}"
        for key, tensor in expected.items():
            assert loaded[key].shape == tensor.shape, f"{component}.{key}: shape"
            assert np.array_equal(loaded[key].cpu().numpy(), tensor.numpy()), f"{component}.{key}: values differ"


class TestLdmCheckpoint:
    def test_it_writes_the_original_layout(self, single_file, tiny_spec):
        checkpoint, _ = single_file
        state = load_file(str(checkpoint))
        expected = sum(len(original_tensors(tiny_spec, c)) for c in COMPONENTS)
        assert len(state) == expected
        assert {k.split(".")[0] for k in state} == {"model", "first_stage_model", "cond_stage_model"}
        assert not any("down_blocks" in k or "resnets" in k or "mid_block" in k for k in state)
        # Landmarks of the CompVis layout, at the tiny config's block indices (1 layer per block, 2 levels).
        assert state["model.diffusion_model.input_blocks.0.0.weight"].shape == (16, 4, 3, 3)  # conv_in
        assert "model.diffusion_model.input_blocks.3.0.op.weight" not in state  # the last level has no downsampler
        assert "model.diffusion_model.input_blocks.2.0.op.weight" in state
        assert "model.diffusion_model.input_blocks.3.1.proj_in.weight" in state
        assert "model.diffusion_model.middle_block.2.out_layers.3.weight" in state
        assert "model.diffusion_model.output_blocks.1.2.conv.weight" in state  # upsampler after an attention
        assert state["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (8, 8, 1, 1)
        assert "first_stage_model.decoder.up.3.upsample.conv.weight" in state  # decoder levels reversed
        assert "first_stage_model.decoder.up.0.upsample.conv.weight" not in state
        assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in state


class TestLoadSingleFile:
    def test_it_loads_every_weight_from_an_original_layout_file_offline(self, single_file, tiny_spec, offline):
        checkpoint, configs = single_file
        engine = loading.load_engine(single_file_spec(tiny_spec, checkpoint, configs), device="cpu", warm_up=False)
        assert_same_weights(engine, tiny_spec)
        assert offline == []

    def test_it_generates_the_same_images_as_the_diffusers_folder(self, single_file, tiny_spec, tiny_engine,
                                                                  offline):
        checkpoint, configs = single_file
        engine = loading.load_engine(single_file_spec(tiny_spec, checkpoint, configs), device="cpu", warm_up=False)
        control = Image.new("RGB", (256, 256), "white")
        control.paste("black", (64, 64, 192, 192))
        params = GenerationParams(prompt="a koi pond", steps=2, size=256)
        from_file = engine.generate(control, params, seeds=[3, 4])
        from_folder = tiny_engine.generate(control, params, seeds=[3, 4])
        for a, b in zip(from_file, from_folder, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))
        assert offline == []

    def test_it_loads_a_ckpt_holding_a_state_dict(self, single_file, tiny_spec, tmp_path, offline):
        import torch

        checkpoint, configs = single_file
        ckpt = tmp_path / "tiny-ldm.ckpt"
        torch.save({"state_dict": load_file(str(checkpoint))}, ckpt)  # how original training code saves
        engine = loading.load_engine(single_file_spec(tiny_spec, ckpt, configs), device="cpu", warm_up=False)
        assert_same_weights(engine, tiny_spec)

    def test_it_uses_sd15_configs_from_the_hf_cache_without_a_base_config(self, single_file, tiny_spec, offline,
                                                                           empty_hf_cache):
        checkpoint, configs = single_file
        # The hub cache's layout: refs/main names the snapshot folder that holds the files.
        repo = empty_hf_cache / ("models--" + loading.SD15_CONFIG_REPO.replace("/", "--"))
        commit = "0" * 40
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
        shutil.copytree(configs, repo / "snapshots" / commit)
        engine = loading.load_engine(single_file_spec(tiny_spec, checkpoint, None), device="cpu", warm_up=False)
        assert_same_weights(engine, tiny_spec)
        assert offline == []


class TestSingleFileErrors:
    def test_it_names_a_missing_file(self, single_file, tiny_spec, tmp_path):
        _, configs = single_file
        spec = single_file_spec(tiny_spec, tmp_path / "dreamshaper.safetensors", configs)
        with pytest.raises(ModelNotFound, match="'.*dreamshaper.safetensors' are not on this machine"):
            loading.load_engine(spec, device="cpu", warm_up=False)

    @pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"\x10\x00\x00\x00\x00\x00\x00\x00{broken"])
    def test_it_refuses_a_corrupt_file_with_one_message(self, single_file, tiny_spec, tmp_path, content):
        _, configs = single_file
        bad = tmp_path / "broken.safetensors"
        bad.write_bytes(content)
        with pytest.raises(ModelNotFound) as exc:
            loading.load_engine(single_file_spec(tiny_spec, bad, configs), device="cpu", warm_up=False)
        message = str(exc.value)
        assert "broken.safetensors' could not be loaded as a Stable Diffusion 1.5 checkpoint" in message
        assert "\n" not in message

    def test_it_refuses_a_file_that_is_not_an_sd_checkpoint(self, single_file, tiny_spec):
        _, configs = single_file
        controlnet = Path(tiny_spec.controlnet) / "v2" / "diffusion_pytorch_model.safetensors"
        with pytest.raises(ModelNotFound, match="could not be loaded as a Stable Diffusion 1.5 checkpoint"):
            loading.load_engine(single_file_spec(tiny_spec, controlnet, configs), device="cpu", warm_up=False)

    @pytest.mark.parametrize("dropped", ["model.diffusion_model.output_blocks.1.2.conv.weight",
                                         "first_stage_model.decoder.up.3.block.0.conv1.bias"])
    def test_it_refuses_a_file_missing_some_tensors(self, single_file, tiny_spec, tmp_path, dropped):
        from safetensors.torch import save_file

        checkpoint, configs = single_file
        state = load_file(str(checkpoint))
        del state[dropped]
        partial = tmp_path / "partial.safetensors"
        save_file(state, str(partial))
        with pytest.raises(ModelNotFound, match=r"partial.safetensors' could not .*tensors are missing"):
            loading.load_engine(single_file_spec(tiny_spec, partial, configs), device="cpu", warm_up=False)

    def test_it_asks_for_a_base_config_when_none_is_cached_and_never_downloads(self, single_file, tiny_spec,
                                                                               offline, empty_hf_cache):
        checkpoint, _ = single_file
        with pytest.raises(ModelNotFound) as exc:
            loading.load_engine(single_file_spec(tiny_spec, checkpoint, None), device="cpu", warm_up=False)
        message = str(exc.value)
        assert loading.SD15_CONFIG_REPO in message and "QART_BASE_CONFIG" in message
        assert offline == []

    def test_it_asks_for_a_base_config_even_online(self, single_file, tiny_spec, empty_hf_cache, monkeypatch):
        import huggingface_hub.constants

        # Online, diffusers alone would fetch the missing configs from the hub: qart must not even try.
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        attempts = refuse_connections(monkeypatch)
        checkpoint, _ = single_file
        with pytest.raises(ModelNotFound, match="QART_BASE_CONFIG"):
            loading.load_engine(single_file_spec(tiny_spec, checkpoint, None), device="cpu", warm_up=False)
        assert attempts == []

    def test_it_names_a_base_config_that_is_not_there(self, single_file, tiny_spec, tmp_path, offline,
                                                      empty_hf_cache):
        checkpoint, _ = single_file
        spec = single_file_spec(tiny_spec, checkpoint, tmp_path / "sd15-configs")
        with pytest.raises(ModelNotFound, match="sd15-configs' are not on this machine.*QART_BASE_CONFIG"):
            loading.load_engine(spec, device="cpu", warm_up=False)
        assert offline == []

    def test_it_refuses_a_base_config_that_is_not_a_diffusers_folder(self, single_file, tiny_spec, tmp_path):
        checkpoint, _ = single_file
        spec = single_file_spec(tiny_spec, checkpoint, tmp_path)
        with pytest.raises(ModelNotFound, match="is not a diffusers folder"):
            loading.load_engine(spec, device="cpu", warm_up=False)


class TestQartGenerateWithASingleFile:
    def test_it_passes_the_file_and_base_config_to_the_loader(self, single_file, tiny_spec, settings, tmp_path,
                                                              offline):
        from django.core.management import call_command

        checkpoint, configs = single_file
        settings.QART = {**settings.QART, "BASE_CONFIG": str(configs), "CONTROLNET": tiny_spec.controlnet,
                         "CONTROLNET_SUBFOLDER": "v2", "AESTHETIC_HEAD": ""}
        out = StringIO()
        call_command("qart_generate", "a koi pond", "--content", "https://qart.example/r/AbC123", "--model",
                     str(checkpoint), "-o", str(tmp_path / "out"), "-n", "1", "--steps", "1", "--size", "256",
                     "--max-batches", "1", "--no-repair", "--json", stdout=out, stderr=StringIO())
        document = json.loads(out.getvalue())
        assert document["model"] == f"{checkpoint} + {tiny_spec.controlnet}"
        assert len(document["candidates"]) == 1
        assert offline == []


class TestMissingWeights:
    def test_a_real_model_without_weights_gives_one_clear_message(self, monkeypatch, tmp_path):
        monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing is there
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(ModelNotFound) as exc:
            loading.load_engine(ModelSpec(), device="cpu", warm_up=False)
        message = str(exc.value)
        assert "monster-labs/control_v1p_sd15_qrcode_monster" in message
        assert "Lykon/DreamShaper" in message and "--model tiny" in message and "QART_MODEL" in message

    def test_a_missing_or_unreadable_aesthetic_head_names_it(self, tiny_spec, tmp_path):
        missing = dataclasses.replace(tiny_spec, aesthetic_head=str(tmp_path / "head.safetensors"))
        with pytest.raises(ModelNotFound, match="head '.*head.safetensors' is not a file.*QART_AESTHETIC_HEAD"):
            loading.load_engine(missing, device="cpu", warm_up=False)
        (tmp_path / "head.safetensors").write_text("not tensors")
        with pytest.raises(ModelNotFound, match="head '.*head.safetensors' could not be read.*QART_AESTHETIC_HEAD"):
            loading.load_engine(missing, device="cpu", warm_up=False)

    def test_a_missing_local_file_names_it(self, tiny_spec, tmp_path):
        spec = ModelSpec(base=str(tmp_path / "dreamshaper.safetensors"), controlnet=tiny_spec.controlnet)
        with pytest.raises(ModelNotFound, match="dreamshaper.safetensors"):
            loading.load_engine(spec, device="cpu", warm_up=False)

    def test_a_controlnet_folder_without_the_subfolder_is_said_to_be_there_but_unreadable(self, tiny_spec):
        spec = dataclasses.replace(tiny_spec, controlnet_subfolder="v3")
        with pytest.raises(ModelNotFound) as exc:
            loading.load_engine(spec, device="cpu", warm_up=False)
        message = str(exc.value)
        assert f"ControlNet weights in '{tiny_spec.controlnet}' (subfolder 'v3', QART_CONTROLNET_SUBFOLDER) could " \
               "not be loaded: " in message
        assert "not on this machine" not in message

    def test_a_base_folder_with_a_corrupt_model_index_is_said_to_be_there_but_unreadable(self, tiny_spec, tmp_path):
        base = shutil.copytree(tiny_spec.base, tmp_path / "base")
        (base / "model_index.json").write_text("{ not json")
        with pytest.raises(ModelNotFound) as exc:
            loading.load_engine(dataclasses.replace(tiny_spec, base=str(base)), device="cpu", warm_up=False)
        message = str(exc.value)
        assert f"The base model weights in '{base}' could not be loaded: " in message
        assert "not on this machine" not in message


class TestWeightsFingerprint:
    def test_it_changes_when_a_file_in_a_named_folder_changes_and_only_then(self, tiny_spec, tmp_path):
        base = shutil.copytree(tiny_spec.base, tmp_path / "base")
        spec = dataclasses.replace(tiny_spec, base=str(base))
        before = loading.weights_fingerprint(spec)
        assert loading.weights_fingerprint(spec) == before
        (base / "unet" / "config.json").write_text((base / "unet" / "config.json").read_text() + " ")
        assert loading.weights_fingerprint(spec) != before
        changed = loading.weights_fingerprint(spec)
        (base / "unet" / "config.json").chmod(0o600)  # unreadable weights made readable: the size and mtime stay
        assert loading.weights_fingerprint(spec) != changed

    def test_it_notices_a_file_appearing_where_the_spec_points(self, tmp_path):
        spec = ModelSpec(base="some/hub-id", controlnet="other/hub-id", fewstep_lora=str(tmp_path / "lora.safetensors"))
        before = loading.weights_fingerprint(spec)
        assert before == (("some/hub-id", ()), ("other/hub-id", ()), (spec.fewstep_lora, ()))
        (tmp_path / "lora.safetensors").write_bytes(b"1234")
        [*_, (name, files)] = loading.weights_fingerprint(spec)
        assert name == spec.fewstep_lora and [f[:2] for f in files] == [(spec.fewstep_lora, 4)]

    def test_it_reads_a_broken_link_as_such_and_bounds_the_walk(self, tmp_path):
        (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
        for i in range(5):
            (tmp_path / f"f{i}").write_text("x")
        spec = ModelSpec(base=str(tmp_path), controlnet="hub/id")
        [(_, files), _] = loading.weights_fingerprint(spec)
        assert files[-1] == (str(tmp_path / "gone"), None, None, None, None) and len(files) == 6
        [(_, files), _] = loading.weights_fingerprint(spec, limit=3)
        assert [Path(f[0]).name for f in files] == ["f0", "f1", "f2"]
