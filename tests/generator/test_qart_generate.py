from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generator import warm_engines
from generator.core.engines import parameters

URL = "https://qart.example/r/AbC123"


@pytest.fixture
def tiny_settings(settings, tiny_spec):
    settings.QART = {**settings.QART, "MODEL_DIR": Path(tiny_spec.base).parent.parent}
    return settings


def generate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("qart_generate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class TestQartGenerate:
    def test_it_saves_every_candidate_and_prints_json_in_rank_order(self, tiny_settings, tmp_path):
        out, err = generate("a koi pond", "--content", URL, "--model", "tiny", "-o", str(tmp_path), "-n", "4",
                            "--steps", "2", "--size", "256", "--seed", "7", "--max-batches", "1", "--json")
        document = json.loads(out)
        assert "images are noise" in err
        assert document["content"] == URL and document["model"].startswith("tiny")
        ranks = [c["rank"] for c in document["candidates"]]
        assert ranks == [1, 2, 3, 4]
        assert sorted(c["seed"] for c in document["candidates"]) == [7, 8, 9, 10]
        for c in document["candidates"]:
            assert Image.open(c["file"]).size == (256, 256)
            assert c["verdict"] in ("pass", "fail") and 0 <= c["scan_probability"] <= 1
            assert set(c) >= {"file", "seed", "verdict", "scan_probability", "aesthetic_score", "repaired"}
        passing = [c["verdict"] == "pass" for c in document["candidates"]]
        assert passing == sorted(passing, reverse=True)  # scannable first
        assert Image.open(document["control"]).size == (256, 256)
        assert document["seconds"]["total"] > 0

    def test_it_prints_a_ranked_table(self, tiny_settings, tmp_path):
        out, _ = generate("a koi pond", "--content", URL, "--model", "tiny", "-o", str(tmp_path), "-n", "2",
                          "--steps", "1", "--size", "256", "--max-batches", "1", "--no-repair")
        lines = out.strip().splitlines()
        assert lines[0].split()[:4] == ["rank", "verdict", "scan", "p"]
        assert lines[1].split()[0] == "1" and lines[2].split()[0] == "2"
        assert "candidates" in lines[-1] and "tiny" in lines[-1]

    @pytest.mark.parametrize(
        "args, message",
        [
            (["--steps", "0"], "Steps must be between 1 and 150"),
            (["--guidance", "50"], "Guidance scale must be between"),
            (["--conditioning-scale", "7"], "Conditioning scale must be between"),
            (["--strength", "3"], "Strength must be above 0"),
            (["--size", "4096"], "Size must be between 256 and 1024"),
            (["--scheduler", "plms"], "Unknown scheduler “plms”"),
            (["--control-start", "0.9", "--control-end", "0.2"], "must be before control end"),
            (["-n", "0"], "Candidates per batch must be between 1 and 16"),
            (["--init-image", "x.png"], "--init-image needs --strength"),
            (["--max-batches", "0"], "The batch budget must be between 1"),
            (["--max-batches", "-1"], "The batch budget must be between 1"),
        ],
    )
    def test_it_refuses_bad_parameters_before_loading_weights(self, tmp_path, args, message):
        with pytest.raises(CommandError) as exc:
            generate("p", "--content", URL, "--model", "no/such-model", "-o", str(tmp_path), *args)
        assert message in str(exc.value)

    @pytest.mark.parametrize("args", [["--preset", "fewstep"], ["--scheduler", "lcm"], ["--scheduler", "tcd"]])
    def test_it_refuses_the_few_step_preset_without_a_lora_before_loading(self, tmp_path, monkeypatch, args):
        monkeypatch.setattr(warm_engines, "get_engine", lambda *a, **k: pytest.fail("loaded the engine"))
        with pytest.raises(CommandError, match="is not offered here.*needs QART_FEWSTEP_LORA"):
            generate("p", "--content", URL, "-o", str(tmp_path), *args)

    def test_the_few_step_preset_draws_with_the_configured_scheduler(self, settings, tmp_path, monkeypatch):
        settings.QART = {**settings.QART, "FEWSTEP_LORA": str(tmp_path / "lora.safetensors"),
                         "FEWSTEP_SCHEDULER": "tcd"}
        monkeypatch.setattr(warm_engines, "get_engine", lambda *a, **k: (_ for _ in ()).throw(
            parameters.EngineUnavailable("stop here")))
        seen = []
        real = parameters.GenerationParams.validate
        monkeypatch.setattr(parameters.GenerationParams, "validate", lambda p: (seen.append(p.scheduler), real(p)))
        with pytest.raises(CommandError, match="stop here"):
            generate("p", "--content", URL, "-o", str(tmp_path), "--preset", "fewstep")
        assert seen == ["tcd"]
        with pytest.raises(CommandError, match="Scheduler “lcm” is not offered here"):  # the LoRA is a TCD one
            generate("p", "--content", URL, "-o", str(tmp_path), "--scheduler", "lcm")

    def test_a_bad_warm_shapes_setting_is_one_message(self, settings, tmp_path):
        settings.QART = {**settings.QART, "WARM_SHAPES": "abc"}
        with pytest.raises(CommandError, match="QART_WARM_SHAPES"):
            generate("p", "--content", URL, "-o", str(tmp_path), "--model", "tiny")

    def test_it_refuses_content_that_is_too_long(self, tmp_path):
        with pytest.raises(CommandError, match="too long for QR art"):
            generate("p", "--content", "x" * 300, "-o", str(tmp_path))

    def test_it_reports_a_bad_init_image(self, tmp_path):
        bad = tmp_path / "init.png"
        bad.write_text("not a picture")
        with pytest.raises(CommandError, match="not an image"):
            generate("p", "--content", URL, "-o", str(tmp_path), "--strength", "0.5", "--init-image", str(bad))

    def test_a_real_model_without_weights_gives_one_clear_message(self, tmp_path, monkeypatch):
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        with pytest.raises(CommandError) as exc:
            generate("p", "--content", URL, "--model", "Lykon/DreamShaper", "-o", str(tmp_path / "out"))
        assert "not on this machine" in str(exc.value) and "--model tiny" in str(exc.value)

    @pytest.mark.parametrize(("args", "qart_model", "why"), [
        ([], "", "without --model the tiny model serves (this machine has no GPU)"),
        ([], "tiny", "without --model the tiny model serves (QART_MODEL=tiny)"),
        (["--model", "tiny"], "", "--model tiny is the tiny model"),
    ])
    def test_it_refuses_a_controlnet_the_tiny_model_would_ignore(self, settings, tmp_path, monkeypatch, args,
                                                                  qart_model, why):
        # The tiny model draws with its own toy ControlNet: the one named was dropped and the run looked configured.
        settings.QART = {**settings.QART, "MODEL": qart_model}
        monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
        monkeypatch.setattr(warm_engines, "get_engine", lambda *a, **k: pytest.fail("loaded the engine"))
        with pytest.raises(CommandError) as exc:
            generate("p", "--content", URL, "-o", str(tmp_path / "out"), "--controlnet", "my/qr-controlnet", *args)
        assert str(exc.value) == (f"--controlnet is not used: {why}, which brings its own toy ControlNet. Name a real "
                                  "base model with --model to use --controlnet, or leave --controlnet out.")
        assert not (tmp_path / "out").exists()

    def test_a_controlnet_goes_with_a_model_named(self, tmp_path, monkeypatch):
        monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
        specs = []

        def get_engine(spec, optimize):
            specs.append(spec)
            raise parameters.EngineUnavailable("stop here")

        monkeypatch.setattr(warm_engines, "get_engine", get_engine)
        with pytest.raises(CommandError, match="stop here"):
            generate("p", "--content", URL, "-o", str(tmp_path), "--model", "my/base", "--controlnet", "my/qr")
        assert [(spec.base, spec.controlnet) for spec in specs] == [("my/base", "my/qr")]


def picture(tmp_path: Path, name: str = "pic.png") -> Path:
    path = tmp_path / name
    image = Image.new("RGB", (200, 160), (250, 220, 120))
    image.paste((40, 90, 200), (50, 40, 150, 120))
    image.save(path)
    return path


class TestHalftoneEngine:
    def test_it_draws_a_picture_into_passing_codes_without_weights_or_a_prompt(self, tmp_path):
        out, _ = generate("--content", URL, "--engine", "halftone", "--image", str(picture(tmp_path)),
                          "-o", str(tmp_path / "out"), "-n", "2", "--size", "384", "--seed", "3", "--json")
        document = json.loads(out)
        assert document["model"] == "halftone (CPU)" and document["scannable"]
        assert [c["rank"] for c in document["candidates"]] == [1, 2]
        for c in document["candidates"]:
            assert c["verdict"] == "pass" and Image.open(c["file"]).size == (384, 384)
            assert c["variant"].startswith("centre ") and 0 < c["fidelity_ssim"] <= 1 and c["color_error"] >= 0

    def test_an_image_alone_picks_halftone_and_the_table_shows_fidelity(self, tmp_path):
        out, _ = generate("a label", "--content", URL, "--image", str(picture(tmp_path)), "-o", str(tmp_path / "o"),
                          "-n", "1", "--size", "256")
        lines = out.strip().splitlines()
        assert "fidelity" in lines[0] and "colour err" in lines[0]
        assert lines[1].split()[:2] == ["1", "pass"] and "halftone (CPU)" in lines[-1]

    @pytest.mark.parametrize(("args", "message"), [
        (["--engine", "halftone"], "needs --image FILE"),
        (["--engine", "halftone", "--image", "missing.png"], "no such file"),
        (["--engine", "diffusion", "--image", "x.png"], "for img2img use --init-image"),
        (["--image", "x.png", "--size", "100"], "Size must be between 256 and 2048"),
    ])
    def test_it_refuses_bad_halftone_arguments_with_one_line(self, tmp_path, args, message):
        with pytest.raises(CommandError, match=message):
            generate("--content", URL, "-o", str(tmp_path), *args)

    @pytest.mark.parametrize(("args", "message"), [
        (["--max-batches", "-1"], "does not use --max-batches: it is the diffusion engine's; leave it out."),
        (["--max-batches", "0"], "does not use --max-batches: it is"),
        (["--steps", "4", "--guidance", "7"], "does not use --steps, --guidance: they are the diffusion engine's; "
                                              "leave them out."),
        (["--no-repair"], "does not use --no-repair"),
        (["--style", "dots", "--background", "grey"], "does not use --style, --background"),
        (["--negative", ""], "does not use --negative"),
        (["--model", "tiny", "--strength", "0.5", "--init-image", "x.png"],
         "does not use --model, --strength, --init-image"),
    ])
    def test_it_refuses_the_diffusion_engines_options(self, tmp_path, args, message):
        with pytest.raises(CommandError) as exc:
            generate("--content", URL, "--engine", "halftone", "--image", str(picture(tmp_path)),
                     "-o", str(tmp_path / "out"), *args)
        assert str(exc.value).startswith("The halftone engine does not use") and message in str(exc.value)
        assert not (tmp_path / "out").exists()

    def test_it_says_an_output_file_is_no_folder(self, tmp_path):
        target = tmp_path / "out"
        target.write_text("a file")
        with pytest.raises(CommandError) as exc:
            generate("--content", URL, "--image", str(picture(tmp_path)), "-o", str(target))
        assert str(exc.value) == f"{target}: is a file, not a folder"

    def test_it_refuses_an_animated_picture(self, tmp_path):
        frames = [Image.new("RGB", (100, 100), c) for c in ("red", "blue")]
        frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
        with pytest.raises(CommandError, match="an animated PNG picture"):
            generate("--content", URL, "--image", str(tmp_path / "a.png"), "-o", str(tmp_path))

    def test_it_refuses_a_picture_format_other_than_png_jpeg_and_webp(self, tmp_path):
        frames = [Image.new("RGB", (100, 100), c) for c in ("red", "blue")]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        with pytest.raises(CommandError, match="PNG, JPEG or WebP"):
            generate("--content", URL, "--image", str(tmp_path / "a.gif"), "-o", str(tmp_path))
