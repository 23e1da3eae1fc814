"""campaigns.printfiles: which art a placement prints, how it reaches print size, and its preflight."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from campaigns import printfiles, restamps
from campaigns.models import Placement
from generator.core.codes import grids, logos, print_specs, printing, qr, restamp, scan
from generator.core.engines import halftone_drawing
from tests.campaigns.conftest import make_art


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station poster", printed_width_cm=20)


def link(placement: Placement) -> str:
    return f"http://testserver/r/{placement.slug}"


class TestSpecFrom:
    def test_it_reads_typed_options(self):
        spec = printfiles.spec_from({"width": "8in", "dpi": "600", "bleed": "3mm", "crop_marks": "1",
                                     "format": "TIFF", "cmyk": "on"})
        assert spec == print_specs.PrintSpec(width_mm=203.2, dpi=600, bleed_mm=3.0, crop_marks=True, format="tiff",
                                          cmyk=True)

    def test_false_written_any_usual_way_is_false(self):
        for value in ("", "0", "false", "OFF", "no"):
            assert not printfiles.spec_from({"width": "20cm", "cmyk": value, "crop_marks": value}).cmyk

    def test_it_defaults_to_the_placements_width_and_a_pdf(self):
        spec = printfiles.spec_from({}, default_width_cm=12.5)
        assert (spec.width_mm, spec.format, spec.dpi, spec.bleed_mm, spec.cmyk) == (125.0, "pdf", 300, 0.0, False)

    @pytest.mark.parametrize(("options", "words"), [({}, "how wide"), ({"width": "20cm", "dpi": "lots"}, "whole"),
                                                    ({"width": "20"}, "a unit"),
                                                    ({"width": "20cm", "cmyk": "maybe"}, "cmyk must be true or false"),
                                                    ({"width": "20cm", "crop_marks": "2"}, "crop_marks must be"),
                                                    # digits int() refuses: a superscript, more than 4,300 of them
                                                    ({"width": "20cm", "dpi": "²"}, "whole"),
                                                    ({"width": "20cm", "dpi": "9" * 5000}, "whole")])
    def test_it_refuses_bad_options_with_one_message(self, options, words):
        with pytest.raises(print_specs.PrintError, match=words):
            printfiles.spec_from(options)

    @pytest.mark.parametrize(("options", "message"), [
        ({"width": "20cm", "cmyk": "Ja\x00"}, "cmyk must be true or false, got “Ja\\u0000”."),
        ({"width": "20cm", "crop_marks": "y" * 100}, f"crop_marks must be true or false, got “{'y' * 60}…”."),
        ({"width": "20cm", "dpi": "3\n00"},
         "The resolution must be a whole number of dots per inch, got “3\\u000a00”."),
    ])
    def test_it_quotes_a_bad_value_as_every_message_does(self, options, message):
        # repr wrote '\x00' in straight quotes, and kept the value's case and 20 characters of its own
        with pytest.raises(print_specs.PrintError) as refused:
            printfiles.spec_from(options)
        assert str(refused.value) == message


@pytest.mark.django_db
class TestSources:
    def test_diffusion_art_is_resampled(self, team_users, placement):
        art = make_art(team_users.team, team_users.owner, link(placement))
        source = printfiles.candidate_source(art)
        assert source.render is None and source.image.size == (256, 256) and source.content == link(placement)

    def test_halftone_art_is_drawn_again_by_its_variant(self, team_users, placement):
        picture = io.BytesIO()
        Image.new("RGB", (128, 128), (200, 120, 40)).save(picture, format="PNG")
        variant = halftone_drawing.variant_for_seed(8).stronger()  # one verdict strengthened it
        art = make_art(team_users.team, team_users.owner, link(placement), engine="halftone")
        art.variant = variant.describe()
        art.save()
        art.job.init_image.save("picture.png", ContentFile(picture.getvalue()), save=True)
        assert printfiles.halftone_variant(art) == variant
        source = printfiles.candidate_source(art)
        drawn = source.render(600)
        assert drawn.size == (600, 600) and "halftone engine" in source.render_method
        assert scan.verify(drawn, link(placement)).passed

    def test_a_halftone_logo_is_drawn_again_in_the_centre(self, team_users, placement):
        def png(colour) -> ContentFile:
            buffer = io.BytesIO()
            Image.new("RGB", (128, 128), colour).save(buffer, format="PNG")
            return ContentFile(buffer.getvalue())

        variant = halftone_drawing.strongest(halftone_drawing.variant_for_seed(0))
        art = make_art(team_users.team, team_users.owner, link(placement), engine="halftone", ecc="H")
        art.variant = variant.describe()
        art.save()
        art.job.init_image.save("picture.png", png((200, 120, 40)), save=True)
        art.job.logo.save("logo.png", png((20, 60, 200)), save=True)
        drawn = printfiles.candidate_source(art).render(600)
        code = qr.encode(link(placement), ecc="H", max_version=40)
        grid = grids.grid_from_code(code, 600, printfiles.ART_BORDER)
        left, top, right, bottom = logos.plate_box(grid, logos.plate_for(code))
        centre = drawn.getpixel(((left + right) // 2, (top + bottom) // 2))
        assert centre == (20, 60, 200) and drawn.getpixel((left + 1, top + 1)) == (255, 255, 255)
        assert scan.verify(drawn, link(placement)).passed

    def test_a_wordmark_logo_stored_thinner_than_a_picture_still_draws(self, team_users, placement):
        # A 1700x200 wordmark is stored 512 px long (uploads.LOGO_SIDE): 512x60, under a picture's 64 px minimum
        buffer = io.BytesIO()
        Image.new("RGB", (512, 60), (20, 60, 200)).save(buffer, format="PNG")
        art = make_art(team_users.team, team_users.owner, link(placement), engine="halftone", ecc="H")
        art.job.logo.save("logo.png", ContentFile(buffer.getvalue()), save=True)
        code = qr.encode(link(placement), ecc="H", max_version=40)
        assert printfiles._job_logo(art.job, code).image.size == (512, 60)

    def test_an_unknown_variant_falls_back_to_resampling(self, team_users, placement):
        art = make_art(team_users.team, team_users.owner, link(placement), engine="halftone")
        art.variant = "hand-made"
        art.save()
        assert printfiles.halftone_variant(art) is None and printfiles.candidate_source(art).render is None


@pytest.mark.django_db
class TestSubjectFor:
    def test_restamped_art_is_measured_by_the_code_its_picture_carries(self, team_users, placement):
        # Art made for a link in byte mode (version 4), restamped with the placement's link in capitals, which
        # alphanumeric mode holds in version 3: the copy keeps its art's version and the mask nearest its art's.
        original = make_art(team_users.team, team_users.owner, "http://testserver/r/AbCdEfGh2x")
        capitals = f"HTTP://TESTSERVER/R/{placement.slug}"
        copy = restamps.restamp_for(original, placement, capitals)
        kept = restamp.encode_at_version(capitals, "H", 4, like=qr.encode(original.job.content, max_version=40).matrix)
        assert qr.encode(capitals, max_version=40).version < kept.version == 4
        placement.artwork = copy
        code = printfiles.subject_for(placement, capitals).code
        assert (code.version, code.mask) == (kept.version, kept.mask)
        assert (code.matrix == kept.matrix).all()


@pytest.mark.django_db
class TestCheckedFile:
    def test_a_placement_without_art_prints_its_plain_code_with_a_preflight(self, placement):
        made = printfiles.checked_file(placement, link(placement),
                                      printfiles.typed_spec(placement, {"width": "20cm", "format": "svg"}))
        assert made.printable and made.report["preflight"]["summary"].startswith("scans from")
        assert made.report["preflight"]["distance_m"] == 1.5  # a poster's usual distance

    def test_artwork_that_will_not_scan_is_refused_with_409(self, team_users, placement):
        placement.artwork = make_art(team_users.team, team_users.owner, link(placement), verdict="fail",
                                     probability=0.02)
        with pytest.raises(printfiles.Refused, match="Will not scan — do not print") as refused:
            printfiles.checked_file(placement, link(placement), printfiles.typed_spec(placement, {"width": "20cm"}))
        assert refused.value.status == 409

    def test_artwork_carrying_the_link_on_another_sites_host_is_refused_with_409(self, team_users, placement,
                                                                                 settings):
        # Chosen before SITE_ROOT was set (or made on a staging host): it reads back fine, and every scan goes
        # to a host that does not count it.
        placement.artwork = make_art(team_users.team, team_users.owner, link(placement))
        settings.SITE_ROOT = "https://qart.example"
        with pytest.raises(printfiles.Refused, match="carries http://testserver/r/.*not this placement's short link "
                                                     "on this site") as refused:
            printfiles.checked_file(placement, f"https://qart.example/r/{placement.slug}",
                                    printfiles.typed_spec(placement, {"width": "20cm"}))
        assert refused.value.status == 409

    def test_bad_options_are_400_and_unscannable_files_422(self, team_users, placement, monkeypatch):
        with pytest.raises(printfiles.Refused) as refused:
            printfiles.typed_spec(placement, {"width": "20cm", "format": "gif"})
        assert refused.value.status == 400
        failing = scan.ScanResult(None, [], [], False, False, 0.01, "fail", 0.0, reasons=[{"text": "too faint"}])
        monkeypatch.setattr(printing.scan, "verify", lambda *args, **kwargs: failing)
        with pytest.raises(printfiles.Refused, match="too faint") as refused:
            printfiles.checked_file(placement, link(placement), printfiles.typed_spec(placement, {"width": "20cm"}))
        assert refused.value.status == 422


@pytest.mark.django_db
class TestPreflight:
    def test_it_is_cached_per_art_width_and_distance(self, placement, monkeypatch):
        first = printfiles.placement_preflight(placement, link(placement))
        monkeypatch.setattr(printfiles.preflight, "preflight", lambda *a, **k: pytest.fail("not cached"))
        assert printfiles.placement_preflight(placement, link(placement)) == first
        placement.scan_distance_m = 4.0
        with pytest.raises(pytest.fail.Exception):
            printfiles.placement_preflight(placement, link(placement))

    def test_a_report_cached_in_old_words_is_not_shown(self, placement, fresh_cache):
        # Reports are cached for a week: without a new key the placement page kept saying "the quiet zone is not
        # plain" and "modules" for a week after the warnings were put in plain words.
        import hashlib

        from generator.core.codes import decision

        old_key = "qart:preflight:" + hashlib.blake2b(
            f"{link(placement)}|plain|0.20000|{placement.scanning_distance:.4f}|{decision.MODEL}".encode(),
            digest_size=12).hexdigest()
        fresh_cache.set(old_key, {"summary": "old", "warnings": ["The quiet zone is 2 modules."]})
        assert printfiles.placement_preflight(placement, link(placement))["summary"] != "old"

    def test_while_the_cache_is_away_a_report_this_process_has_is_not_measured_again(self, placement, monkeypatch,
                                                                                        cache_away):
        # While the cache's Redis hung, each view of a placement page measured its preflight again (a fault drill).
        with cache_away():
            first = printfiles.placement_preflight(placement, link(placement))
            monkeypatch.setattr(printfiles.preflight, "preflight", lambda *a, **k: pytest.fail("measured again"))
            assert printfiles.placement_preflight(placement, link(placement)) == first

    def test_a_report_read_from_the_cache_is_kept_for_when_it_is_away(self, placement, monkeypatch, fresh_cache,
                                                                      cache_away):
        first = printfiles.placement_preflight(placement, link(placement))
        printfiles.kept_preflights.reports.clear()  # as in a process that has only read it from the cache
        assert printfiles.placement_preflight(placement, link(placement)) == first
        monkeypatch.setattr(printfiles.preflight, "preflight", lambda *a, **k: pytest.fail("measured again"))
        with cache_away():
            assert printfiles.placement_preflight(placement, link(placement)) == first

    def test_the_least_recently_used_report_goes_first(self):
        kept = printfiles.KeptReports(2)
        for key in ("a", "b", "a", "c"):  # "a" used again after "b"
            kept.keep(key, {"key": key})
        assert [kept.get(key) for key in ("a", "b", "c")] == [{"key": "a"}, None, {"key": "c"}]

    def test_without_a_width_there_is_none(self, placement):
        placement.printed_width_cm = None
        assert printfiles.placement_preflight(placement, link(placement)) is None


def test_cautions_say_where_it_leads_first_and_a_failing_distance_once():
    from types import SimpleNamespace

    ended = SimpleNamespace(is_live=False, destination="https://example.com/ended",
                            campaign=SimpleNamespace(archived=True, fallback_url="https://example.com/ended"))
    report = {"warnings": ["The art has 21 ppi."],
              "preflight": {"scans_at_distance": False, "distance_m": 1.5, "summary": "too small to scan at 1 cm wide",
                            "warnings": ["At 1 cm wide each square of the code is only 0.24 mm: print it larger.",
                                         "Low contrast."]}}
    assert printfiles.cautions(report, ended) == [
        "This code leads to the campaign's fallback address https://example.com/ended now, because its campaign is "
        "archived.",
        "At 1.5 m, the placement's scanning distance, this print does not scan: too small to scan at 1 cm wide. "
        "At 1 cm wide each square of the code is only 0.24 mm: print it larger.",
        "Low contrast.",
        "The art has 21 ppi.",
    ]
    near = {"preflight": {"scans_at_distance": False, "distance_m": 3, "warnings": [],
                          "summary": "scans from 0.1 m to 0.85 m at 5 cm wide"}}  # read "does not scan: scans from"
    assert printfiles.cautions(near, SimpleNamespace(is_live=True)) == [
        "At 3 m, the placement's scanning distance, this print does not scan: it only scans from 0.1 m to 0.85 m at "
        "5 cm wide."]
    fine = {"warnings": [], "preflight": {"scans_at_distance": True, "warnings": []}}
    assert printfiles.cautions(fine, SimpleNamespace(is_live=True)) == []


class TestOneBuildEach:
    """One print file made at a time for each person; the same file asked for again waits for the first."""

    @pytest.fixture(autouse=True)
    def _no_mark(self):
        redis = printfiles.redis_connection()
        redis.delete(printfiles.building_mark(7))
        yield
        redis.delete(printfiles.building_mark(7))

    def test_the_same_file_asked_again_waits_for_the_first_then_is_made(self):
        # A double click on "Download": the second request was refused (429), and the browser showed that answer.
        import threading

        order = []

        def again() -> None:
            with printfiles.one_build_each(7, "file-a"):
                order.append("second made")

        with printfiles.one_build_each(7, "file-a"):
            second = threading.Thread(target=again)
            second.start()
            second.join(0.5)
            order.append("first made")
        second.join(10)
        assert order == ["first made", "second made"]
        assert printfiles.redis_connection().get(printfiles.building_mark(7)) is None

    def test_a_mark_gone_between_its_check_and_its_read_is_taken(self, monkeypatch):
        # The first request's mark went just after the second's set failed: the second read no holder and was
        # refused (429) for the file it had asked for.
        class Between:
            sets = [False, True]
            connection_pool = SimpleNamespace(connection_kwargs={"host": "between", "port": 6379})  # its breaker's

            def set(self, *args, **kwargs):
                return self.sets.pop(0)

            def get(self, key):
                return None

            def delete(self, key):
                Between.sets.append("deleted")

        monkeypatch.setattr(printfiles, "redis_connection", Between)
        with printfiles.one_build_each(7, "file-a"):
            assert Between.sets == []  # taken at the second try
        assert Between.sets == ["deleted"]

    def test_another_file_at_the_same_time_is_refused(self):
        with printfiles.one_build_each(7, "file-a"):
            with pytest.raises(printfiles.Refused) as refused:
                with printfiles.one_build_each(7, "file-b"):
                    pass
        assert refused.value.status == 429 and refused.value.message == printfiles.BUSY
