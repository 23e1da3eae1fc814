from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import images


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


class TestOpenImage:
    def test_it_opens_an_rgb_png(self, tmp_path):
        path = tmp_path / "ok.png"
        Image.new("RGB", (10, 8), (1, 2, 3)).save(path)
        image = images.open_image(path)
        assert image.mode == "RGB" and image.size == (10, 8) and image.getpixel((0, 0)) == (1, 2, 3)

    def test_it_reports_a_missing_file(self, tmp_path):
        with pytest.raises(images.ImageError, match="no such file"):
            images.open_image(tmp_path / "nope.png")

    def test_it_reports_a_folder(self, tmp_path):
        with pytest.raises(images.ImageError, match="is a folder"):
            images.open_image(tmp_path)

    def test_it_reports_an_empty_file(self, tmp_path):
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
        with pytest.raises(images.ImageError, match="empty"):
            images.open_image(path)

    def test_it_reports_a_non_image(self, tmp_path):
        path = tmp_path / "notes.png"
        path.write_text("just some text, not pixels")
        with pytest.raises(images.ImageError, match="not an image"):
            images.open_image(path)

    def test_it_reports_a_truncated_file(self, tmp_path):
        data = encoded(Image.effect_noise((200, 200), 50).convert("RGB"))
        path = tmp_path / "cut.png"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(images.ImageError, match="damaged or truncated"):
            images.open_image(path)

    def test_it_names_a_metadata_bomb_in_plain_words(self):
        # 2 MB of compressed text in a few KB: Pillow refuses to decompress it ("Decompressed data too large for
        # PngImagePlugin.MAX_TEXT_CHUNK"); people are told what that means
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text("comment", "a" * 2_000_000, zip=True)
        buffer = io.BytesIO()
        Image.new("RGB", (80, 80), "white").save(buffer, format="PNG", pnginfo=info)
        with pytest.raises(images.ImageError, match="more metadata .* than qart reads") as caught:
            images.open_picture(buffer.getvalue())
        assert "MAX_TEXT_CHUNK" not in str(caught.value)

    def test_it_refuses_a_decompression_bomb_before_decoding(self):
        bomb = encoded(Image.new("L", (5000, 5000)))  # a tiny file that claims 25 megapixels
        assert len(bomb) < 100_000
        with pytest.raises(images.ImageError, match="too large"):
            images.open_image(bomb, max_pixels=1_000_000)

    def test_it_names_the_size_and_the_limit_of_a_picture_past_pillows_own_guard(self):
        # 20000x20000 (a tiny PNG): Pillow refused it before qart's check, and the message named no size or limit
        bomb = encoded(Image.new("1", (20000, 20000)))
        with pytest.raises(images.ImageError) as caught:
            images.open_picture(bomb, max_pixels=40_000_000)
        assert str(caught.value) == ("the upload: 400,000,000 pixels is too large (the limit is 40,000,000). "
                                     "Resize it first.")

    def test_it_scales_16_bit_greyscale(self):
        values = np.array([[0, 32768, 65535]], dtype=np.uint16)
        image = images.open_image(encoded(Image.fromarray(values)))  # uint16 arrays open as I;16
        assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]

    def test_it_converts_cmyk(self):
        image = images.open_image(encoded(Image.new("CMYK", (4, 4), (0, 0, 0, 255)), "JPEG"))
        assert image.mode == "RGB" and max(image.getpixel((1, 1))) < 40

    def test_it_converts_palette_images(self):
        image = images.open_image(encoded(Image.new("RGB", (4, 4), (200, 10, 10)).convert("P")))
        assert image.mode == "RGB" and image.getpixel((0, 0))[0] > 150

    def test_it_flattens_transparency_onto_white(self):
        rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
        rgba.putpixel((0, 0), (0, 0, 0, 255))
        image = images.open_image(encoded(rgba))
        assert image.getpixel((1, 1)) == (255, 255, 255) and image.getpixel((0, 0)) == (0, 0, 0)

    def test_it_flattens_transparent_palette_images(self):
        pal = Image.new("P", (4, 4), 0)
        pal.putpalette([0, 0, 0, 10, 200, 10])
        pal.putpixel((0, 0), 1)
        pal.info["transparency"] = 0
        image = images.open_image(encoded(pal))
        assert image.getpixel((2, 2)) == (255, 255, 255) and image.getpixel((0, 0)) == (10, 200, 10)


class TestOpenPicture:
    """The halftone engine's input: stricter than open_image (bytes, animation, smallest side)."""

    @staticmethod
    def encoded(image, fmt: str = "PNG", **save) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **save)
        return buffer.getvalue()

    @pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
    def test_it_refuses_animations(self, fmt):
        frames = [Image.new("RGB", (100, 100), c) for c in ("red", "blue")]
        data = self.encoded(frames[0], fmt, save_all=True, append_images=frames[1:])
        with pytest.raises(images.ImageError, match=f"an animated {fmt} picture"):
            images.open_picture(data)

    @pytest.mark.parametrize(("fmt", "named"), [
        ("TIFF", "a TIFF file"), ("BMP", "a BMP file"), ("GIF", "a GIF file"), ("TGA", "not an image qart can use"),
    ])
    def test_it_accepts_only_png_jpeg_and_webp_judged_from_the_first_bytes(self, monkeypatch, fmt, named):
        data = self.encoded(Image.new("RGB", (100, 100), "red"), fmt)
        monkeypatch.setattr(images.Image, "open", lambda *a, **k: pytest.fail("a refused format was opened"))
        with pytest.raises(images.ImageError) as refused:
            images.open_picture(data)
        assert str(refused.value) == (f"the upload: {named}; pictures must be PNG, JPEG or WebP. "
                                      "Save it as one of those first.")

    @pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
    def test_it_opens_the_accepted_formats(self, fmt):
        picture = images.open_picture(self.encoded(Image.new("RGB", (80, 70), (200, 40, 90)), fmt))
        assert picture.mode == "RGB" and picture.size == (80, 70)

    def test_it_checks_the_pixel_count_from_the_header_before_decoding(self, monkeypatch):
        from PIL import ImageFile

        data = self.encoded(Image.new("L", (6300, 6300)))  # 37 KB; 40 MB once decoded
        monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
        with pytest.raises(images.ImageError, match="6300x6300 is too large"):
            images.open_picture(data, max_pixels=30_000_000)

    def test_it_refuses_a_file_over_the_byte_cap_before_decoding(self, tmp_path):
        path = tmp_path / "big.png"
        path.write_bytes(b"\0" * 3000)
        with pytest.raises(images.ImageError, match="the file is 3 KB; pictures up to 2 KB are accepted"):
            images.open_picture(path, max_bytes=2048)

    def test_it_says_a_file_just_over_the_byte_cap_is_over_it(self, tmp_path):
        # `qart_generate --image` said "the file is 10.0 MB; pictures up to 10.0 MB are accepted"
        path = tmp_path / "big.png"
        path.write_bytes(b"\0" * (10 * 2**20 + 42_000))
        with pytest.raises(images.ImageError, match=r"the file is 10\.04 MB; pictures up to 10 MB are accepted"):
            images.open_picture(path, max_bytes=10 * 2**20)

    def test_it_refuses_a_tiny_picture(self):
        with pytest.raises(images.ImageError, match="30x200 pixels is too small"):
            images.open_picture(self.encoded(Image.new("RGB", (30, 200))))

    def test_it_flattens_transparency_onto_white_and_re_encodes_as_png(self):
        picture = images.open_picture(self.encoded(Image.new("RGBA", (80, 80), (0, 0, 0, 0))))
        assert picture.mode == "RGB" and picture.getpixel((5, 5)) == (255, 255, 255)
        assert images.png_bytes(picture).startswith(b"\x89PNG")

    def test_it_keeps_open_images_messages(self):
        with pytest.raises(images.ImageError, match="not an image"):
            images.open_picture(b"plain text")


class TestPngBytes:
    @pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "1"])
    def test_it_keeps_every_pixel_and_the_mode(self, mode):
        rng = np.random.default_rng(3)
        channels = {"RGB": 3, "RGBA": 4}.get(mode)
        shape = (37, 53) + ((channels,) if channels else ())
        source = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode={"RGB": "RGB", "RGBA": "RGBA"}.get(
            mode, "L"))
        if mode not in ("L", "RGB", "RGBA"):
            source = source.convert(mode)
        data = images.png_bytes(source)
        back = Image.open(io.BytesIO(data))
        assert data.startswith(b"\x89PNG") and back.mode == source.mode and back.size == source.size
        assert np.array_equal(np.asarray(back), np.asarray(source))

    @pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
    def test_every_row_is_paeth_filtered_so_no_time_goes_to_choosing(self, mode):
        rng = np.random.default_rng(5)
        smooth = np.cumsum(rng.integers(0, 3, (24, 40, 4)), axis=1).astype(np.uint8)  # rows libpng might filter apart
        source = Image.fromarray(smooth, "RGBA").convert(mode)
        data = images.png_bytes(source)
        chunks, at = [], 8
        while at < len(data):
            length = int.from_bytes(data[at:at + 4], "big")
            chunks.append((data[at + 4:at + 8], data[at + 8:at + 8 + length]))
            at += 12 + length
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
        stride = 1 + 40 * {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        assert len(raw) == 24 * stride
        assert {raw[row * stride] for row in range(24)} == {4}  # PNG filter type 4: Paeth, on every row

    def test_the_colours_are_not_swapped(self):
        # OpenCV writes BGR: a red picture read back as blue would pass a test of grey pixels.
        back = Image.open(io.BytesIO(images.png_bytes(Image.new("RGBA", (8, 8), (200, 10, 30, 128)))))
        assert back.getpixel((3, 3)) == (200, 10, 30, 128)
        assert Image.open(io.BytesIO(images.png_bytes(Image.new("RGB", (8, 8), (200, 10, 30))))).getpixel((1, 1)) == (
            200, 10, 30)
