from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generator.core.codes import decoders


def encode(*args: str) -> str:
    out = StringIO()
    call_command("qart_encode", *args, stdout=out)
    return out.getvalue()


class TestQartEncode:
    def test_it_writes_a_control_image_that_reads_back(self, tmp_path):
        path = tmp_path / "code.png"
        output = encode("https://qart.example/r/AbC123", "-o", str(path), "--style", "dots", "--size", "512")
        assert "version 4, level H" in output
        image = Image.open(path)
        assert image.size == (512, 512)
        assert decoders.read_zxing(np.asarray(image.convert("L"))) == ["https://qart.example/r/AbC123"]

    def test_it_honours_border_background_and_ecc(self, tmp_path):
        path = tmp_path / "grey.png"
        output = encode("hi", "-o", str(path), "--border", "2", "--background", "grey", "--ecc", "L")
        assert "level L" in output and "version 1" in output
        pixels = np.asarray(Image.open(path))
        assert tuple(pixels[3, 3]) == (128, 128, 128)

    def test_it_refuses_long_content_with_the_capacity(self, tmp_path):
        with pytest.raises(CommandError, match="holds at most 58 characters"):
            encode("x" * 120, "-o", str(tmp_path / "long.png"))
        assert not (tmp_path / "long.png").exists()

    def test_it_refuses_empty_content(self, tmp_path):
        with pytest.raises(CommandError, match="empty"):
            encode("", "-o", str(tmp_path / "e.png"))

    def test_it_refuses_an_unknown_file_type(self, tmp_path):
        with pytest.raises(CommandError, match=".png, .jpg or .webp"):
            encode("hi", "-o", str(tmp_path / "code.gif"))

    def test_it_reports_an_unwritable_path(self, tmp_path):
        with pytest.raises(CommandError, match="cannot write"):
            encode("hi", "-o", str(tmp_path / "missing-folder" / "code.png"))

    def test_it_refuses_a_silly_size(self, tmp_path):
        with pytest.raises(CommandError, match="--size"):
            encode("hi", "-o", str(tmp_path / "c.png"), "--size", "10")
