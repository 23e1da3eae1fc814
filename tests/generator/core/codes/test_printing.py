"""Print files at physical size: geometry, resolution, colour, and the read-back verdict."""

from __future__ import annotations

import io
import re

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image

from generator.core.codes import print_specs, printing, qr

CONTENT = "https://qart.example/r/AbC12345"
PROFILE = "/usr/share/color/icc/ghostscript/default_cmyk.icc"
PT = 72 / 25.4


@pytest.fixture(scope="module")
def code() -> qr.QRCode:
    return qr.encode(CONTENT, max_version=40)


@pytest.fixture(scope="module")
def art(code) -> Image.Image:
    return qr.render_control_image(code, 768, style="dots")


def spec(**fields) -> print_specs.PrintSpec:
    return print_specs.PrintSpec(**{"width_mm": 200.0, **fields})


class TestSpec:
    @pytest.mark.parametrize(("fields", "words"), [
        ({"format": "jpeg"}, "Print formats are"),
        ({"width_mm": 1.0}, "width must be between"),
        ({"dpi": 20}, "resolution must be between"),
        ({"bleed_mm": 40.0}, "bleed must be between"),
        ({"format": "png", "cmyk": True}, "PNG has no CMYK"),
        ({"format": "eps"}, "EPS is not offered"),
        ({"width_mm": 2000.0, "format": "png"}, "pixels a side; the most is 10,000. Lower the dpi"),
        # Too many pixels even at the fewest dpi: lowering it cannot help (it once said so); the widest is named.
        ({"width_mm": 4000.0, "format": "png", "dpi": 72}, r"too large for a raster file.*The widest is 352.7 cm"),
        ({"width_mm": 10.0 ** 300}, "got far more"),
    ])
    def test_it_refuses_what_cannot_be_printed_with_the_reason(self, code, fields, words):
        with pytest.raises(print_specs.PrintError, match=words):
            printing.make_print_file(printing.PrintSource.plain(code), spec(**fields))

    def test_svg_is_for_plain_codes_only(self, art):
        with pytest.raises(print_specs.PrintError, match="SVG is for plain codes"):
            printing.make_print_file(printing.PrintSource.raster(art, CONTENT), spec(format="svg"))

    def test_the_widest_raster_it_names_is_accepted(self):
        with pytest.raises(print_specs.PrintError) as refused:
            spec(width_mm=4000.0, format="png", dpi=72).validate(vector=True)
        widest = float(refused.value.args[0].split("The widest is ")[1].split(" cm")[0]) * 10
        spec(width_mm=widest, format="png", dpi=72).validate(vector=True)  # raises if it was a pixel too many

    def test_a_large_plain_code_is_fine_as_vectors(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(width_mm=2000.0))
        assert made.printable and made.report["dpi"] is None


class TestPdf:
    def test_it_sets_trim_bleed_and_media_boxes_with_marks_in_the_slug(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code),
                                        spec(bleed_mm=3.0, crop_marks=True, format="pdf"))
        page = pdfium.PdfDocument(made.data)[0]
        slug = print_specs.MARK_OFFSET_MM + print_specs.MARK_LENGTH_MM
        trim, bleed, media = page.get_trimbox(), page.get_bleedbox(), page.get_mediabox()
        assert trim[2] - trim[0] == pytest.approx(200 * PT, abs=0.01)
        assert trim[0] - bleed[0] == pytest.approx(3 * PT, abs=0.01)
        assert bleed[0] - media[0] == pytest.approx(slug * PT, abs=0.01)
        assert made.report["read_back"]["width_mm"] == 200.0 and made.printable

    def test_without_marks_the_media_box_is_the_bleed_box(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(bleed_mm=3.0))
        page = pdfium.PdfDocument(made.data)[0]
        assert tuple(page.get_mediabox()) == pytest.approx(tuple(page.get_bleedbox()), abs=0.01)

    def test_a_plain_code_is_vectors_in_pure_k_when_cmyk(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(cmyk=True))
        content = pdfium.PdfDocument(made.data)[0]
        assert b"/Subtype /Image" not in made.data  # no raster anywhere
        assert content.get_objects() and "pure K" in made.report["colour"]
        # 0 0 0 1 k: reportlab's CMYK fill operator, black only
        assert re.search(rb"0 0 0 1 k", _page_stream(made.data))

    def test_a_cmyk_pdf_carries_an_output_intent_with_the_named_profile(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(cmyk=True), cmyk_profile=PROFILE)
        with pikepdf.open(io.BytesIO(made.data)) as document:
            intent = document.Root.OutputIntents[0]
            assert intent.S == pikepdf.Name.GTS_PDFX
            assert str(intent.OutputConditionIdentifier) == "Artifex CMYK SWOP Profile"
            with open(PROFILE, "rb") as icc:
                assert intent.DestOutputProfile.read_bytes() == icc.read()
            assert re.search(rb"0 0 0 1 k", document.pages[0].Contents.read_bytes())  # the modules, K alone
        assert made.report["read_back"]["output_intents"] == ["Artifex CMYK SWOP Profile"]
        assert made.report["pure_k"] is True and made.report["icc_profile"] == "Artifex CMYK SWOP Profile"
        assert made.printable

    def test_rgb_files_say_so(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec())
        assert made.report["colour"].startswith("RGB") and made.report["pure_k"] is None
        assert made.report["read_back"]["output_intents"] == []

    def test_art_in_cmyk_goes_through_the_named_profile(self, art):
        made = printing.make_print_file(printing.PrintSource.raster(art, CONTENT), spec(cmyk=True),
                                        cmyk_profile=PROFILE)
        assert b"/DeviceCMYK" in made.data and "Artifex CMYK SWOP Profile" in made.report["colour"]
        assert made.report["pure_k"] is False and "not pure K" in made.report["colour"]
        assert made.report["read_back"]["output_intents"] == ["Artifex CMYK SWOP Profile"]
        assert made.printable

    def test_art_is_one_binary_flate_image_at_the_dpi(self, art):
        # Not ASCII85 over Flate (reportlab's default): 25 % more bytes, and minutes of pure Python for a poster.
        made = printing.make_print_file(printing.PrintSource.raster(art, CONTENT), spec(format="pdf", bleed_mm=0))
        with pikepdf.open(io.BytesIO(made.data)) as pdf:
            (image,) = [pikepdf.PdfImage(x) for x in pdf.pages[0].images.values()]
        assert image.filters == ["/FlateDecode"] and b"/ASCII85Decode" not in made.data
        assert image.width == image.height == print_specs.pixels(200.0, 300)

    def test_cmyk_art_without_a_profile_is_refused(self, art):
        with pytest.raises(print_specs.PrintError, match="ICC profile"):
            printing.make_print_file(printing.PrintSource.raster(art, CONTENT), spec(cmyk=True))


class TestRaster:
    def test_it_writes_the_dpi_and_reports_the_arts_own(self, art):
        made = printing.make_print_file(printing.PrintSource.raster(art, CONTENT), spec(format="png"))
        image = Image.open(io.BytesIO(made.data))
        assert image.size == (2362, 2362) and round(image.info["dpi"][0]) == 300
        assert made.report["source_dpi"] == 97  # 768 px over 7.87 in
        assert "Lanczos" in made.report["method"] and "under 150" in made.report["warnings"][0]
        assert made.printable

    def test_art_with_enough_pixels_is_not_warned_about(self, art):
        made = printing.make_print_file(printing.PrintSource.raster(art, CONTENT), spec(width_mm=60.0, format="png"))
        assert made.report["source_dpi"] >= 150 and made.report["warnings"] == []

    def test_procedural_art_is_drawn_again_at_print_size(self, art, code):
        sides = []

        def render(side: int) -> Image.Image:
            sides.append(side)
            return qr.render_control_image(code, side, style="dots")

        source = printing.PrintSource.procedural(art, CONTENT, render, "re-rendered by a test engine")
        made = printing.make_print_file(source, spec(format="tiff"))
        assert sides == [2362] and made.report["method"] == "re-rendered by a test engine at 2362 px"
        assert made.report["warnings"] == []

    def test_bleed_extends_the_art_and_marks_sit_outside_it(self, art):
        made = printing.make_print_file(printing.PrintSource.raster(art, CONTENT),
                                        spec(format="png", bleed_mm=3.0, crop_marks=True, dpi=150))
        image = np.asarray(Image.open(io.BytesIO(made.data)).convert("L"))
        slug = print_specs.pixels(print_specs.MARK_OFFSET_MM + print_specs.MARK_LENGTH_MM, 150)
        trim_edge = slug + print_specs.pixels(3.0, 150)
        assert image.shape[0] == print_specs.pixels(200 + 6 + 2 * 7, 150)
        assert image[trim_edge, : slug].min() < 128  # a crop mark on the trim line's extension
        assert image[slug + 1 : trim_edge - 1, : slug - 1].min() == 255  # nothing else in the slug

    def test_cmyk_tiff_embeds_the_profile_and_keeps_plain_modules_pure_k(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(format="tiff", cmyk=True, dpi=100),
                                        cmyk_profile=PROFILE)
        image = Image.open(io.BytesIO(made.data))
        cmy = np.asarray(image)[..., :3]
        assert image.mode == "CMYK" and image.info.get("icc_profile") and cmy.max() == 0
        assert made.report["read_back"]["icc_profile"] is True

    def test_cmyk_tiff_modules_are_k_255_and_paper_unprinted(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(format="tiff", cmyk=True, dpi=100),
                                        cmyk_profile=PROFILE)
        plates = np.asarray(Image.open(io.BytesIO(made.data)))
        module = plates.shape[0] / (code.size + 2 * printing.QUIET_ZONE)
        centres = ((np.arange(code.size) + printing.QUIET_ZONE + 0.5) * module).astype(int)
        sampled = plates[np.ix_(centres, centres)]  # one pixel at each module's centre
        dark, light = sampled[code.matrix], sampled[~code.matrix]
        assert (dark[:, :3] == 0).all() and (dark[:, 3] == 255).all()
        assert (light == 0).all()
        assert made.report["pure_k"] is True


class TestSvg:
    def test_it_draws_the_modules_at_physical_size(self, code):
        made = printing.make_print_file(printing.PrintSource.plain(code), spec(format="svg", bleed_mm=3.0))
        svg = made.data.decode()
        assert 'width="206mm"' in svg and 'viewBox="0 0 206 206"' in svg and made.printable
        runs = len(printing._runs(code.matrix))
        assert svg.count("<rect ") == runs + 1  # the trim's white square, then one rect per run of dark modules


class TestReadBack:
    def test_a_file_that_does_not_scan_is_not_printable(self, code):
        blank = Image.new("RGB", (768, 768), "white")
        made = printing.make_print_file(printing.PrintSource.raster(blank, CONTENT), spec(format="png", dpi=72))
        assert not made.printable and made.report["verified"]["passed"] is False


def _page_stream(data: bytes) -> bytes:
    """Every content stream of the file's pages, decoded."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return b"".join(page.Contents.read_bytes() if "/Contents" in page.obj else b"" for page in pdf.pages)


def test_reading_back_a_large_raster_of_its_own_warns_of_nothing(monkeypatch, recwarn):
    # The largest rasters (100 M pixels) pass Pillow's decompression-bomb warning line (89 M); here the line is moved
    # under a small file's size to show the same.
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(buffer, format="PNG", dpi=(300, 300))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(buffer.getvalue()))  # what Pillow says of the same file from elsewhere
    image, physical = printing.read_back(buffer.getvalue(), "png")
    assert image.size == (40, 40) and physical["dpi"] == 300
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
