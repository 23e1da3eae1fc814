"""Generation parameters: validation messages and presets."""

from __future__ import annotations

import pytest
from PIL import Image

from generator.core.codes import qr
from generator.core.engines.parameters import GenerationParams, parse_shapes


@pytest.fixture(scope="module")
def control() -> Image.Image:
    return qr.render_control_image(qr.encode("https://qart.example/r/AbC123"), 256)



class TestParams:
    @pytest.mark.parametrize(
        "change, message",
        [
            ({"prompt": "  "}, "Prompt is empty"),
            ({"steps": 0}, "Steps must be between 1 and 150"),
            ({"steps": 500}, "Steps must be between 1 and 150"),
            ({"guidance_scale": 25}, "Guidance scale must be between"),
            ({"conditioning_scale": -1}, "Conditioning scale must be between"),
            ({"control_start": 0.8, "control_end": 0.5}, "Control start (0.8) must be before control end (0.5)"),
            ({"strength": 0}, "Strength must be above 0"),
            ({"strength": 1.5}, "Strength must be above 0"),
            ({"size": 2048}, "Size must be between 256 and 1024"),
            ({"size": 300}, "Size must be a multiple of 64"),
            ({"scheduler": "plms"}, "Unknown scheduler “plms”"),
        ],
    )
    def test_it_refuses_bad_values_with_a_message(self, change, message):
        with pytest.raises(ValueError) as exc:
            GenerationParams(**{"prompt": "ok", **change}).validate()
        assert message in str(exc.value)

    def test_presets_follow_modals_recipe_and_a_fast_one(self):
        quality = GenerationParams(prompt="x").with_preset("quality")
        assert (quality.scheduler, quality.steps) == ("ddim", 50)
        fast = GenerationParams(prompt="x").with_preset("fast")
        assert (fast.scheduler, fast.steps) == ("dpmpp_2m_karras", 25)
        defaults = GenerationParams(prompt="x")
        assert (defaults.guidance_scale, defaults.conditioning_scale, defaults.control_start,
                defaults.control_end, defaults.size) == (3.5, 1.5, 0.25, 1.0, 768)


class TestParseShapes:
    def test_it_reads_sizes_and_candidates_in_order_each_once(self):
        assert parse_shapes("768x8") == ((768, 8),)
        assert parse_shapes(" 768x8, 512 X 4,1024×16,768x8, ") == ((768, 8), (512, 4), (1024, 16))

    @pytest.mark.parametrize(
        "text, message",
        [
            ("700x8", "“700x8”: the size must be a multiple of 64 from 256 to 1024, got 700."),
            ("192x8", "the size must be a multiple of 64 from 256 to 1024, got 192."),
            ("1088x8", "the size must be a multiple of 64 from 256 to 1024, got 1088."),
            ("768x0", "“768x0”: the candidates must be between 1 and 16, got 0."),
            ("768x17", "the candidates must be between 1 and 16, got 17."),
            ("768", "“768” is not a shape: write size x candidates, comma-separated, e.g. 768x8,512x8."),
            ("768x8;512x8", "“768x8;512x8” is not a shape"),
            ("big", "“big” is not a shape"),
            ("768x-8", "“768x-8” is not a shape"),
            ("", "No shape given"),
            (" , ", "No shape given"),
        ],
    )
    def test_it_refuses_bad_text_with_one_message(self, text, message):
        with pytest.raises(ValueError) as exc:
            parse_shapes(text)
        assert message in str(exc.value)
