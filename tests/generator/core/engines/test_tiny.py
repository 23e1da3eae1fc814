"""The tiny preset: built in code, saved like the hub, loaded through the real loader."""

from __future__ import annotations

import json
from pathlib import Path


class TestTinyPreset:
    def test_it_is_saved_like_hub_repositories(self, tiny_spec):
        base = Path(tiny_spec.base)
        index = json.loads((base / "model_index.json").read_text())
        assert index["_class_name"] == "StableDiffusionControlNetPipeline"
        for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            assert (base / part).is_dir(), part
        assert tiny_spec.controlnet_subfolder == "v2"
        assert (Path(tiny_spec.controlnet) / "v2" / "config.json").is_file()
        assert not (Path(tiny_spec.controlnet) / "config.json").exists()  # only reachable through the subfolder
        assert tiny_spec.tiny and "noise" in tiny_spec.label

    def test_it_loads_through_the_real_loader(self, tiny_engine):
        from diffusers import StableDiffusionControlNetPipeline

        assert isinstance(tiny_engine.txt2img, StableDiffusionControlNetPipeline)
        assert type(tiny_engine.txt2img.controlnet).__name__ == "QRControlNet"
        assert tiny_engine.img2img.unet is tiny_engine.txt2img.unet  # the two pipelines share weights
        assert tiny_engine.aesthetic is not None

    def test_its_tokenizer_is_built_in_code(self, tiny_engine):
        tokenizer = tiny_engine.txt2img.tokenizer
        ids = tokenizer("a red fox").input_ids
        # Character-level: "a</w>", "r", "e", "d</w>", "f", "o", "x</w>" between start and end.
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and len(ids) == 9
