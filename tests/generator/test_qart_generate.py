from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

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
            (["--scheduler", "plms"], "Unknown scheduler 'plms'"),
            (["--control-start", "0.9", "--control-end", "0.2"], "must be before control end"),
            (["-n", "0"], "Candidates per batch must be between 1 and 16"),
            (["--init-image", "x.png"], "--init-image needs --strength"),
        ],
    )
    def test_it_refuses_bad_parameters_before_loading_weights(self, tmp_path, args, message):
        with pytest.raises(CommandError) as exc:
            generate("p", "--content", URL, "--model", "no/such-model", "-o", str(tmp_path), *args)
        assert message in str(exc.value)

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
