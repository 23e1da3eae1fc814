from __future__ import annotations

import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generator.core.codes import qr, robust
from generator.management.commands.qart_repair import Command as RepairCommand
from tests.generator.core.codes.code_art import URL, corrupted

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def art(tmp_path) -> tuple[Path, Path]:
    """A 400 px code with corrupted centres, and its control image at 600 px (art is often made smaller)."""
    code, image, _ = corrupted(1)
    art_path, control_path = tmp_path / "art.png", tmp_path / "control.png"
    image.save(art_path)
    qr.render_control_image(code, 600, 4, "rounded", "grey").save(control_path)
    return art_path, control_path


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("qart_repair", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class TestQartRepair:
    def test_it_writes_the_repaired_image_and_prints_the_figures(self, art, tmp_path):
        art_path, control_path = art
        output = tmp_path / "fixed.png"
        out, _ = run(str(art_path), "--control", str(control_path), "--expect", URL, "-o", str(output))
        assert re.match(rf"{re.escape(str(art_path))}: before FAIL p=0\.0\d; after PASS p=", out), out
        # Repair aims for every capture of its check, so captures it never saw still read (robust.NEEDED of them).
        assert ("robust margin held: both decoders read 3 phone-like captures (3 needed) and 7 captures of the whole "
                "image at phone size (7 needed)") in out
        assert "% of pixels, SSIM 0.9" in out and f"wrote {output}" in out
        written = np.asarray(Image.open(output).convert("RGB"))
        assert written.shape == (400, 400, 3)
        assert not np.array_equal(written, np.asarray(Image.open(art_path).convert("RGB")))

    def test_it_prints_one_json_object(self, art, tmp_path):
        art_path, control_path = art
        output = tmp_path / "fixed.png"
        out, _ = run(str(art_path), "--control", str(control_path), "--expect", URL, "-o", str(output), "--json")
        line = json.loads(out)
        assert set(line) == {"path", "output", "before", "after", "passed", "modules_changed",
                             "pixels_changed_fraction", "ssim", "margin", "robust"}
        held = line["robust"]
        assert held["passed"] and held["captures_read"] == held["needed"] == 3
        assert held["whole_read"] == held["whole_needed"] == 7 and 7 <= len(held["whole_captures"]) <= 8
        assert line["robust"]["image"] == {"zxing": True, "wechat": True}
        assert set(line["before"]) == {"verdict", "scan_probability", "decoded", "misread"}
        assert line["before"]["verdict"] == "fail" and line["after"]["verdict"] == "pass" and line["passed"]
        assert line["after"]["decoded"] == [URL] and line["output"] == str(output)
        assert line["modules_changed"] > 0 and 0 < line["pixels_changed_fraction"] < 0.05 and line["ssim"] > 0.9

    def test_it_copies_an_image_that_already_passes(self, tmp_path):
        code = qr.encode(URL)
        art_path, control_path, output = tmp_path / "art.png", tmp_path / "control.png", tmp_path / "out.png"
        qr.render_control_image(code, 400, 4, "dots").save(art_path)
        qr.render_control_image(code, 400, 4).save(control_path)
        out, _ = run(str(art_path), "--control", str(control_path), "--expect", URL, "-o", str(output))
        assert "before PASS" in out and "already passes, nothing changed" in out
        assert np.array_equal(np.asarray(Image.open(output)), np.asarray(Image.open(art_path)))

    def test_it_writes_the_best_attempt_and_exits_1_when_it_still_fails(self, art, tmp_path):
        art_path, control_path = art
        output = tmp_path / "fixed.png"
        # No image reaches a scan probability of 1, so this repair cannot pass.
        with pytest.raises(CommandError, match="still fails the scan check") as exc:
            run(str(art_path), "--control", str(control_path), "--expect", URL, "-o", str(output),
                "--threshold", "1")
        assert exc.value.returncode == 1
        assert f"best attempt was written to {output}" in str(exc.value)
        assert output.exists()

    def test_it_names_every_bad_input_and_exits_2(self, tmp_path):
        text = tmp_path / "text.png"
        text.write_text("hello")
        with pytest.raises(CommandError) as exc:
            run(str(tmp_path / "missing.png"), "--control", str(text), "--expect", URL, "-o", str(tmp_path / "o.png"))
        assert exc.value.returncode == 2
        assert "missing.png: no such file" in str(exc.value) and f"{text}: not an image" in str(exc.value)
        assert not (tmp_path / "o.png").exists()

    def test_it_refuses_a_control_image_without_a_code(self, art, tmp_path):
        art_path, _ = art
        blank = tmp_path / "blank.png"
        Image.new("RGB", (400, 400), "white").save(blank)
        with pytest.raises(CommandError, match=f"{blank}: The control image has no dark pixels") as exc:
            run(str(art_path), "--control", str(blank), "--expect", URL, "-o", str(tmp_path / "o.png"))
        assert exc.value.returncode == 2

    def test_it_refuses_a_control_image_of_another_shape(self, art, tmp_path):
        art_path, _ = art
        wide = tmp_path / "wide.png"
        canvas = Image.new("RGB", (800, 400), "white")
        canvas.paste(qr.render_control_image(qr.encode(URL), 400, 4), (0, 0))
        canvas.save(wide)
        with pytest.raises(CommandError, match="must have the same shape") as exc:
            run(str(art_path), "--control", str(wide), "--expect", URL, "-o", str(tmp_path / "o.png"))
        assert exc.value.returncode == 2

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["-o", "out.jpg"], "choose a .png file name"),
            (["-o", "out.png", "--threshold", "2"], "--threshold must be between 0 and 1"),
            (["-o", "out.png", "--expect", ""], "--expect: Content is empty"),
        ],
    )
    def test_it_refuses_bad_options(self, art, tmp_path, extra, message):
        art_path, control_path = art
        with pytest.raises(CommandError, match=message) as exc:
            run(str(art_path), "--control", str(control_path), "--expect", URL, *extra)
        assert exc.value.returncode == 2

    def test_it_exits_2_without_a_traceback_from_the_shell(self, tmp_path):
        done = subprocess.run(
            [sys.executable, "manage.py", "qart_repair", str(tmp_path / "missing.png"), "--control",
             str(tmp_path / "control.png"), "--expect", URL, "-o", str(tmp_path / "out.png")],
            cwd=ROOT, capture_output=True, text=True,
        )
        assert done.returncode == 2
        assert "missing.png: no such file" in done.stderr and "control.png: no such file" in done.stderr
        assert "Traceback" not in done.stderr

    def test_its_help_states_the_margin_repair_stops_at(self):
        # Repair's stop (repair.repair's `hold`): the code's captures at robust.check's default, the whole image's
        # at WHOLE_NEEDED. The help said "all 4" captures of the code, and nothing of the whole image's.
        assert f"{robust.NEEDED} of {robust.CAPTURES} phone-like captures of the code" in RepairCommand.help
        assert f"{robust.WHOLE_NEEDED} of {robust.WHOLE_CAPTURES} captures of the whole image" in RepairCommand.help
