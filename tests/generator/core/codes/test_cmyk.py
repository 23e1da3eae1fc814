"""CMYK for print files: the profile, pure K, art through the profile, and the PDF's output intent."""

from __future__ import annotations

import io

import numpy as np
import pikepdf
import pytest
from PIL import Image

from generator.core.codes import cmyk

PROFILE = "/usr/share/color/icc/ghostscript/default_cmyk.icc"
RGB_PROFILE = "/usr/share/color/icc/ghostscript/default_rgb.icc"


@pytest.fixture(scope="module")
def profile() -> cmyk.Profile:
    return cmyk.load_profile(PROFILE)


def _blank_pdf() -> bytes:
    out = io.BytesIO()
    document = pikepdf.new()
    document.add_blank_page(page_size=(100, 100))
    document.save(out)
    return out.getvalue()


class TestProfile:
    def test_it_reads_ghostscripts_profile_by_its_own_name(self, profile):
        assert profile.name == "Artifex CMYK SWOP Profile" and len(profile.data) > 100_000

    def test_it_refuses_a_missing_file_with_one_message(self, tmp_path):
        with pytest.raises(cmyk.ProfileError, match="cannot be read"):
            cmyk.load_profile(str(tmp_path / "none.icc"))

    def test_it_refuses_an_rgb_profile(self):
        with pytest.raises(cmyk.ProfileError, match="not CMYK"):
            cmyk.load_profile(RGB_PROFILE)


class TestSeparations:
    def test_pure_k_puts_dark_on_the_k_plate_only(self):
        image = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8), "L")
        plates = np.asarray(cmyk.pure_k(image))
        assert plates[..., :3].max() == 0
        assert plates[0, 0, 3] == 255 and plates[0, 1, 3] == 0

    def test_art_through_the_profile_is_a_rich_black_not_pure_k(self, profile):
        black = cmyk.through_profile(Image.new("RGB", (4, 4), "black"), profile)
        c, m, y, k = black.getpixel((0, 0))
        assert black.mode == "CMYK" and k > 128 and max(c, m, y) > 0


class TestOutputIntent:
    def test_it_embeds_the_profile_as_a_pdfx_output_intent(self, profile):
        data = cmyk.with_output_intent(_blank_pdf(), profile)
        with pikepdf.open(io.BytesIO(data)) as document:
            intent = document.Root.OutputIntents[0]
            assert intent.S == pikepdf.Name.GTS_PDFX
            assert str(intent.OutputConditionIdentifier) == "Artifex CMYK SWOP Profile"
            assert intent.DestOutputProfile.read_bytes() == profile.data and intent.DestOutputProfile.N == 4

    def test_it_lists_what_a_pdf_declares(self, profile):
        assert cmyk.output_intents(_blank_pdf()) == []
        found = cmyk.output_intents(cmyk.with_output_intent(_blank_pdf(), profile))
        assert found == [{"subtype": "GTS_PDFX", "identifier": "Artifex CMYK SWOP Profile",
                          "profile_bytes": len(profile.data), "profile_components": 4}]

    def test_the_same_pdf_gives_the_same_bytes(self, profile):
        pdf = _blank_pdf()
        assert cmyk.with_output_intent(pdf, profile) == cmyk.with_output_intent(pdf, profile)
