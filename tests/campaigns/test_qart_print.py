"""qart_print: print files from the command line, written only when they scan."""

from __future__ import annotations

import io
import json

import pypdfium2 as pdfium
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generator.core.codes import qr

CONTENT = "https://qart.example/r/AbC12345"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("qart_print", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def art(tmp_path) -> str:
    path = tmp_path / "art.png"
    qr.render_control_image(qr.encode(CONTENT), 768, style="dots").save(path)
    return str(path)


def test_it_prints_art_as_a_pdf_with_boxes_and_reports_in_json(art, tmp_path):
    target = tmp_path / "poster.pdf"
    report = json.loads(run(art, "--content", CONTENT, "--width", "20cm", "--bleed", "3mm", "--crop-marks",
                            "--cmyk", "-o", str(target), "--json"))
    page = pdfium.PdfDocument(target.read_bytes())[0]
    trim = page.get_trimbox()
    assert (trim[2] - trim[0]) / 72 * 25.4 == pytest.approx(200, abs=0.01)
    assert report["source_dpi"] == 97 and any("under 150" in w for w in report["warnings"])
    assert report["verified"]["passed"] and report["written"] and "Artifex" in report["colour"]
    assert report["pure_k"] is False and "not pure K" in report["colour"]  # art is a raster: a rich black
    assert report["read_back"]["output_intents"] == ["Artifex CMYK SWOP Profile"]
    assert report["preflight"]["summary"].startswith("scans from") and report["preflight"]["module_mm"] > 4


def test_without_an_image_it_prints_the_plain_code_as_vectors(tmp_path):
    target = tmp_path / "code.svg"
    text = run("--content", CONTENT, "--width", "8in", "-o", str(target))
    assert target.read_text().startswith("<svg") and 'width="203.2mm"' in target.read_text()
    assert "vectors" in text and "colour: RGB" in text and "preflight: scans from" in text


def test_a_plain_code_in_cmyk_is_pure_k_and_says_so(tmp_path):
    target = tmp_path / "code.pdf"
    report = json.loads(run("--content", CONTENT, "--width", "5cm", "--cmyk", "-o", str(target), "--json"))
    assert report["pure_k"] is True and report["icc_profile"] == "Artifex CMYK SWOP Profile"
    assert "pure K" in run("--content", CONTENT, "--width", "5cm", "--cmyk", "-o", str(target))


def test_it_says_an_output_folder_is_no_file(tmp_path):
    with pytest.raises(CommandError) as exc:
        run("--content", CONTENT, "--width", "5cm", "-o", str(tmp_path))
    assert exc.value.returncode == 1
    assert str(exc.value) == f"{tmp_path}: is a folder; give the name of the file to write"


def test_png_carries_the_dpi(art, tmp_path):
    target = tmp_path / "art.png"
    run(art, "--content", CONTENT, "--width", "5cm", "--dpi", "600", "-o", str(target))
    assert round(Image.open(target).info["dpi"][0]) == 600


def test_it_writes_nothing_when_the_file_would_not_scan(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (512, 512), "white").save(blank)
    target = tmp_path / "out.pdf"
    with pytest.raises(CommandError, match="does not scan") as failed:
        run(str(blank), "--content", CONTENT, "--width", "20cm", "-o", str(target))
    assert failed.value.returncode == 1 and not target.exists()


@pytest.mark.parametrize(("args", "words"), [
    (["--width", "20"], "needs a number and a unit"),
    (["--width", "20cm", "--format", "svg", "IMAGE"], "SVG is for plain codes"),
    (["--width", "20cm", "--format", "png", "--cmyk"], "PNG has no CMYK"),
    (["--width", "20cm", "missing.png"], "missing.png"),
    (["--width", "20cm", "-o", "code.eps"], "EPS is not offered"),
])
def test_it_refuses_bad_input_with_one_message(art, tmp_path, args, words):
    args = [art if a == "IMAGE" else str(tmp_path / a) if a.endswith(".eps") else a for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "x.pdf")]
    with pytest.raises(CommandError, match=words):
        run(*args, "--content", CONTENT)
    assert not (tmp_path / "code.eps").exists()
