"""A halftone job's picture and logo: the crop the generation page sends, and the logo's checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from generator import uploads
from generator.core.codes import images


def gradient(width: int, height: int) -> Image.Image:
    # Each pixel's red is its column and its green its row, so a crop's corner says where it was cut.
    picture = Image.new("RGB", (width, height))
    picture.putdata([(x, y, 0) for y in range(height) for x in range(width)])
    return picture


class TestCrop:
    def test_it_leaves_the_picture_alone_without_a_crop(self):
        picture = gradient(120, 80)
        assert uploads.crop(picture, None, None, None) is picture

    def test_it_keeps_the_largest_centred_square_at_zoom_one(self):
        cropped = uploads.crop(gradient(120, 80), 0.5, 0.5, 1.0)
        assert cropped.size == (80, 80) and cropped.getpixel((0, 0)) == (20, 0, 0)

    def test_it_zooms_around_the_chosen_centre(self):
        cropped = uploads.crop(gradient(120, 80), 0.25, 0.5, 2.0)
        assert cropped.size == (40, 40) and cropped.getpixel((0, 0)) == (10, 20, 0)

    def test_it_moves_a_square_that_would_leave_the_picture_inwards(self):
        cropped = uploads.crop(gradient(120, 80), 1.0, 0.0, 2.0)
        assert cropped.size == (40, 40) and cropped.getpixel((0, 0)) == (80, 0, 0)

    @pytest.mark.parametrize(("x", "y", "zoom"), [(-0.1, 0.5, 1), (0.5, 1.2, 1), (0.5, 0.5, 0.5), (0.5, 0.5, 99)])
    def test_it_refuses_values_out_of_range(self, x, y, zoom):
        with pytest.raises(images.ImageError, match="The crop was not understood"):
            uploads.crop(gradient(120, 80), x, y, zoom)


def png_upload(image: Image.Image, name: str = "logo.png"):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.mark.parametrize(("name", "shown"), [("photo.png", "photo.png"), ("\u202egnp.exe", "gnp.exe"),
                                             ("a\x00b\nc.png", "abc.png"), ("\u200b", "the upload"),
                                             (None, "the upload"), ("x" * 300, "x" * 200)])
def test_a_file_name_is_shown_without_control_or_formatting_characters(name, shown):
    assert uploads.shown_name(name) == shown


@pytest.mark.parametrize(("cap", "size", "message"), [
    (10 * 2**20, 12 * 2**20, "photo.png: the file is 12 MB; pictures up to 10 MB are accepted."),  # was "12.0 MB"
    (200 * 1024, 400 * 1024, "photo.png: the file is 400 KB; pictures up to 200 KB are accepted."),  # was "0 MB"
    # Rounded alike, a file just over the cap read as the cap: "the file is 10 MB; pictures up to 10 MB"
    (10 * 2**20, 10 * 2**20 + 42_000, "photo.png: the file is 10.04 MB; pictures up to 10 MB are accepted."),
])
def test_a_picture_over_the_cap_is_refused_in_the_caps_own_words(settings, cap, size, message):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = cap
    with pytest.raises(images.ImageError) as refused:
        uploads.from_upload(SimpleNamespace(name="photo.png", size=size))  # refused by its size, before it is read
    assert str(refused.value) == f"{message} Save it smaller first."


class TestStorable:
    def test_a_banner_too_thin_once_stored_is_refused_saying_why(self):
        with pytest.raises(images.ImageError, match="banner.png: 4000x100 pixels is too long and narrow.*would be 51"):
            uploads.storable(gradient(4000, 100), "banner.png")

    def test_a_small_crop_is_refused_saying_to_zoom_out(self):
        with pytest.raises(images.ImageError, match="p.png: the part chosen is 50x50 pixels.*Zoom out"):
            uploads.storable(gradient(50, 50), "p.png")

    @pytest.mark.parametrize("size", [(4000, 128), (64, 64), (300, 2000)])
    def test_a_shape_that_keeps_its_short_side_passes_unchanged(self, size):
        picture = gradient(*size)
        assert uploads.storable(picture, "p.png") is picture
        assert min(uploads._scaled(picture, uploads.STORED_SIDE).size) >= images.MIN_PICTURE_SIDE


class TestLogo:
    URL = "https://qart.example/r/AbC123"

    def test_none_uploaded_is_none(self):
        assert uploads.logo_for(None, "halftone", self.URL) is None

    def test_a_transparent_logo_is_flattened_onto_white(self):
        logo = uploads.logo_for(png_upload(Image.new("RGBA", (80, 80), (0, 0, 0, 0))), "halftone", self.URL)
        assert logo.mode == "RGB" and logo.getpixel((0, 0)) == (255, 255, 255)

    def test_it_is_refused_for_diffusion(self):
        with pytest.raises(images.ImageError, match="drawn by the halftone engine"):
            uploads.logo_for(png_upload(gradient(80, 80)), "diffusion", self.URL)

    def test_a_tiny_logo_is_refused_like_a_tiny_picture(self):
        with pytest.raises(images.ImageError, match="logo.png"):
            uploads.logo_for(png_upload(gradient(20, 20)), "halftone", self.URL)


class TestKept:
    def test_a_kept_picture_comes_back_to_its_owner_only(self, team_users):
        picture = Image.new("RGB", (80, 60), (10, 200, 30))
        token = uploads.keep(team_users.owner, picture, "shop.png")
        back, name = uploads.kept(team_users.owner, token)
        assert (back.size, back.getpixel((5, 5)), name) == ((80, 60), (10, 200, 30), "shop.png")
        with pytest.raises(images.ImageError, match="no longer kept"):
            uploads.kept(team_users.teammate, token)
        with pytest.raises(images.ImageError, match="no longer kept"):
            uploads.kept(team_users.owner, token, "logo")

    def test_a_later_try_replaces_what_an_earlier_one_kept(self, team_users):
        first = uploads.keep(team_users.owner, Image.new("RGB", (80, 80), "red"), "first.png")
        second = uploads.keep(team_users.owner, Image.new("RGB", (80, 80), "blue"), "second.png")
        assert uploads.kept(team_users.owner, second)[1] == "second.png"
        with pytest.raises(images.ImageError, match="no longer kept"):
            uploads.kept(team_users.owner, first)

    def test_without_the_cache_nothing_is_kept_and_the_next_try_says_so(self, team_users, monkeypatch):
        from redis.exceptions import ConnectionError as RedisConnectionError

        def away(*args, **kwargs):
            raise RedisConnectionError("Redis is away")

        monkeypatch.setattr(uploads.cache, "set", away)
        monkeypatch.setattr(uploads.cache, "get", away)
        assert uploads.keep(team_users.owner, Image.new("RGB", (80, 80)), "shop.png") is None
        with pytest.raises(images.ImageError, match="no longer kept"):
            uploads.kept(team_users.owner, "a" * 32)
