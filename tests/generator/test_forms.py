"""The generation form: presets, placement links, the core's messages on the right field, team rules."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from campaigns.models import Campaign, Placement
from generator import forms, job_parameters, placement_picker, uploads
from generator.forms import GenerationForm
from generator.models import Prompt
from qartsite.models import Membership
from tests.qartsite.inputs import FULL_WIDTH

pytestmark = pytest.mark.django_db
LINK = "https://qart.example/r/{slug}"


def link_for(placement: Placement) -> str:
    return LINK.format(slug=placement.slug)


def placement_of(team, name: str = "Station Poster") -> Placement:
    campaign = Campaign.objects.create(team=team, name=f"{team.name} spring", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name=name)


def make_form(user, team, **data) -> GenerationForm:
    fields = {"prompt": "a koi pond at dawn", "negative_prompt": "blurry", "team": team.pk,
              "content": "https://qart.example/r/AbC123", "look": "balanced", "speed": "fast",
              "guidance_scale": "3.5", "control_end": "1.0", "size": "768", "candidates_per_batch": "8",
              "style": "square", "background": "white"}
    fields.update(data)
    return GenerationForm(user, fields, link_for=link_for)


class TestPresets:
    def test_it_fills_blank_overrides_from_the_look_and_speed(self, team_users):
        form = make_form(team_users.owner, team_users.team, look="scannable", speed="quality")
        assert form.is_valid(), form.errors
        job = form.job
        assert (job.conditioning_scale, job.control_start) == (1.8, 0.15)
        assert (job.steps, job.scheduler) == (50, "ddim")

    def test_it_keeps_values_typed_over_the_presets(self, team_users):
        form = make_form(team_users.owner, team_users.team, look="art", steps="30", conditioning_scale="1.4")
        assert form.is_valid(), form.errors
        assert (form.job.steps, form.job.conditioning_scale, form.job.control_start) == (30, 1.4, 0.3)
        assert form.job.scheduler == "dpmpp_2m_karras"

    def test_it_offers_the_fewstep_preset_only_with_a_fewstep_lora(self, team_users, settings):
        settings.QART = dict(settings.QART, FEWSTEP_LORA="")
        form = make_form(team_users.owner, team_users.team, speed="fewstep")
        assert not form.is_valid() and "speed" in form.errors
        assert "fewstep" not in dict(form.fields["speed"].choices)
        settings.QART = dict(settings.QART, FEWSTEP_LORA="/models/lcm-lora.safetensors", FEWSTEP_SCHEDULER="tcd")
        form = make_form(team_users.owner, team_users.team, speed="fewstep")
        assert form.is_valid(), form.errors
        assert (form.job.steps, form.job.scheduler) == (6, "tcd")
        assert form.speeds["fewstep"]["scheduler"] == "tcd"

    def test_it_explains_every_speed_in_plain_words(self, settings):
        # The help under each speed is read by marketers: "50 DDIM steps" or "the few-step LoRA, on an H200" are
        # an engineer's words.
        settings.QART = dict(settings.QART, FEWSTEP_LORA="/models/lcm-lora.safetensors", FEWSTEP_SCHEDULER="tcd")
        helps = [speed["help"] for speed in forms.speeds().values()]
        assert len(helps) == 4
        for word in ("DDIM", "LoRA", "H200", "GPU", "steps"):
            assert not [text for text in helps if word in text], word

    def test_its_advanced_settings_name_squares_not_modules(self):
        # Advanced, but still read by the marketer who opens it: "Module style", "Denoising steps"
        fields = forms.GenerationForm.base_fields
        assert fields["style"].label == "Shape of the code's squares"
        assert fields["steps"].help_text.startswith("How many times the picture is refined")
        for field in fields.values():
            assert "module" not in f"{field.label} {field.help_text}".lower(), field.label
            assert "denois" not in f"{field.label} {field.help_text}".lower(), field.label

    @pytest.mark.parametrize("name", sorted(forms.RANGES))
    def test_it_keeps_the_input_ranges_in_step_with_the_core(self, team_users, name):
        low, high, step = forms.RANGES[name]
        for outside in (low - step, high + step):
            value = int(outside) if isinstance(step, int) else round(outside, 2)
            form = make_form(team_users.owner, team_users.team, **{name: str(value)})
            assert not form.is_valid()
            # The field's message and the core's name the same range: the one the input's min/max allow.
            valid = make_form(team_users.owner, team_users.team)
            assert valid.is_valid(), valid.errors
            setattr(valid.job, name, value)
            with pytest.raises(ValueError) as core:
                job_parameters.validate_job(valid.job)
            for message in (" ".join(form.errors[name]), str(core.value)):
                bounds = re.search(r"between (\S+) and (\S+?),", message)
                assert bounds, message
                assert (float(bounds[1]), float(bounds[2])) == (low, high), message
            kind = int if isinstance(step, int) else float
            assert form.errors[name][0].endswith(f" must be between {kind(low)} and {kind(high)}, got {value}.")
            widget = form.fields[name].widget.attrs
            assert (widget["min"], widget["max"]) == (low, high)

    def test_it_reports_every_value_out_of_range_at_once(self, team_users):
        form = make_form(team_users.owner, team_users.team, candidates_per_batch="0", size="99999", steps="500")
        assert not form.is_valid()
        assert form.errors["candidates_per_batch"] == ["Candidates must be between 1 and 16, got 0."]
        assert form.errors["size"] == ["Size must be between 256 and 1024, got 99999."]
        assert form.errors["steps"] == ["Steps must be between 1 and 150, got 500."]


class TestContent:
    def test_it_uses_the_placements_short_link_when_content_is_blank(self, team_users):
        placement = placement_of(team_users.team)
        form = make_form(team_users.owner, team_users.team, content="", placement=placement.pk)
        assert form.is_valid(), form.errors
        assert form.job.content == LINK.format(slug=placement.slug) and form.job.placement == placement

    def test_it_names_each_placement_before_its_campaign(self, team_users):
        # A long campaign name first left every option of a closed select reading the same.
        placement = placement_of(team_users.team, "Window sticker")
        form = make_form(team_users.owner, team_users.team)
        assert dict(form.fields["placement"].choices)[placement.pk] == "Window sticker (Acme spring)"

    def test_it_asks_for_content_without_a_placement(self, team_users):
        form = make_form(team_users.owner, team_users.team, content="")
        assert not form.is_valid()
        assert "pick a placement" in form.errors["content"][0]

    def test_it_puts_the_too_long_message_on_the_content_field(self, team_users):
        form = make_form(team_users.owner, team_users.team, content="https://example.com/" + "x" * 200)
        assert not form.is_valid()
        assert "too long for QR art" in form.errors["content"][0]
        assert "keeps the code's squares few and big" in form.errors["content"][0]  # not "modules": jargon
        # how many characters fit and what to do, not "a level-H code up to version 6"
        assert "220 characters, and QR art holds at most 58 characters like these" in form.errors["content"][0]
        assert "Shorten the link or text: a campaign placement's tracked short link" in form.errors["content"][0]
        assert "level-" not in form.errors["content"][0] and "version" not in form.errors["content"][0]

    def test_it_refuses_content_longer_than_any_code_holds_before_encoding(self, team_users, monkeypatch):
        monkeypatch.setattr("generator.core.codes.qr.encode", lambda *args, **kwargs: pytest.fail("encoded"))
        form = make_form(team_users.owner, team_users.team, content="x" * 2954)
        assert not form.is_valid() and not form.job
        assert form.errors["content"] == [
            "A QR code carries at most 2,953 characters; art codes far fewer. Use a short link instead."]

    @pytest.mark.parametrize(("content", "problem"), [
        ("htp:/exa mple", "it should start with https://"),
        ("https//example.com", "it should start with https://"),
        ("http:/example.com", "it should start with https://"),
        ("://example.com", "it should start with https://"),
        ("www.example .com", "contains a space"),
        ("https://exa mple.com/offer", "contains a space"),
        ("https://shop.example.com use code SPRING", "start with the words"),
        ("https://", "needs a host name"),
        ("https:///offer", "needs a host name"),
        ("http://[::1:8000/r/x", "cannot be read as one"),
        ("https://example.com:port/", "cannot be read as one"),
        ("https://ada:secret@example.com/", "user name or password"),
    ])
    def test_it_says_what_is_wrong_with_an_attempted_web_address(self, team_users, content, problem):
        form = make_form(team_users.owner, team_users.team, content=content)
        assert not form.is_valid()
        [message] = form.errors["content"]
        assert message.startswith("That doesn't look like a complete web address: ") and problem in message

    @pytest.mark.parametrize("content", [
        "https://shop.example.com/spring?utm_source=poster", "HTTP://EXAMPLE.COM", "www.example.com/menu",
        "+44 20 7946 0958", "tel:+442079460958", "mailto:hello@example.com", "BEGIN:VCARD\nFN:Ada\nEND:VCARD",
        "WIFI:S:Cafe;T:WPA;P:secret;;", "otpauth://totp/Acme:ada?secret=JBSWY3DPEHPK3PXP", "market://details?id=x",
        "Table 12: ask for the menu", "see http://example.com",
        # The site's own short links on hosts without a dot: an intranet name, a container, the test client's host
        "http://qart/r/AbC12345", "http://web:8000/r/AbC12345", "http://testserver/r/AbC12345",
        "http://[::1]:8000/r/AbC12345", "http://127.0.0.1:8140/r/AbC12345",
    ])
    def test_it_keeps_allowing_text_that_is_not_a_web_address(self, team_users, content):
        form = make_form(team_users.owner, team_users.team, content=content)
        assert form.is_valid(), form.errors

    def test_it_puts_messages_about_no_field_on_top(self, team_users):
        form = make_form(team_users.owner, team_users.team, control_start="0.9", control_end="0.5")
        assert not form.is_valid()
        assert "must be before control end" in form.errors["control_start"][0]
        page = forms.GenerationForm.base_fields
        assert forms.field_for_message(ValueError("The batch budget must be between 1 and 8"), page) is None
        assert forms.field_for_message(ValueError("The batch budget must be between 1 and 8"),
                                       {"max_batches": None}) == "max_batches"


class TestPromptLength:
    @pytest.mark.parametrize(("name", "label"), [("prompt", "The prompt"), ("negative_prompt", "The negative prompt")])
    def test_it_says_how_long_a_prompt_may_be_in_its_own_words(self, team_users, name, label):
        form = make_form(team_users.owner, team_users.team, **{name: "a misty pine forest." * 280})
        assert not form.is_valid()
        assert form.errors[name] == [f"{label} can be at most 1,000 characters; this one has 5,600. Shorten it."]

    def test_it_takes_a_prompt_of_the_full_length(self, team_users):
        form = make_form(team_users.owner, team_users.team, prompt="x" * 1000)
        assert form.is_valid(), form.errors

    @pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
    def test_it_lets_the_page_count_instead_of_cutting_a_long_paste(self, team_users, name):
        # A browser cuts a paste at maxlength without a word; the page counts characters instead (char-count.js).
        attrs = GenerationForm(team_users.owner, link_for=link_for).fields[name].widget.attrs
        assert "maxlength" not in attrs and attrs["data-max-chars"] == 1000


class TestNumbers:
    @pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e999"])
    @pytest.mark.parametrize("engine", ["diffusion", "halftone"])
    def test_it_refuses_numbers_that_are_not_finite(self, team_users, engine, value):
        form = make_form(team_users.owner, team_users.team, engine=engine, guidance_scale=value)
        assert not form.is_valid() and not form.job
        assert form.errors["guidance_scale"] == ["Enter a number."]

    @pytest.mark.parametrize("field, value, message", [
        ("size", "７６８", "Enter a whole number."),  # int() reads full-width digits: 768
        ("seed", "1_000", "Enter a whole number."),
        ("guidance_scale", "٣.٥", "Enter a number."),  # float(): 3.5
    ])
    def test_it_refuses_numbers_in_other_digits_or_with_underscores(self, team_users, field, value, message):
        form = make_form(team_users.owner, team_users.team, **{field: value})
        assert not form.is_valid() and not form.job
        assert form.errors[field] == [message]

    def test_it_refuses_a_team_id_in_other_digits(self, team_users):
        form = make_form(team_users.owner, SimpleNamespace(pk=str(team_users.team.pk).translate(FULL_WIDTH)))
        assert not form.is_valid()
        assert list(form.errors) == ["team"]


class TestTeams:
    def test_it_hides_the_team_for_a_single_team_and_offers_a_choice_for_several(self, team_users):
        assert make_form(team_users.owner, team_users.team)["team"].is_hidden
        Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
        assert not make_form(team_users.owner, team_users.team)["team"].is_hidden

    def test_it_refuses_a_placement_of_a_team_the_user_is_not_in(self, team_users):
        theirs = placement_of(team_users.other_team)
        form = make_form(team_users.owner, team_users.team, placement=theirs.pk)
        assert not form.is_valid() and "placement" in form.errors

    def test_it_refuses_a_placement_of_another_of_the_users_teams(self, team_users):
        Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
        other = placement_of(team_users.other_team)
        form = make_form(team_users.owner, team_users.team, placement=other.pk)
        assert not form.is_valid()
        assert form.errors["placement"] == ["That placement belongs to another team."]

    def test_it_offers_viewers_only_a_read_only_form(self, team_users):
        form = GenerationForm(team_users.viewer, link_for=link_for)
        assert form.read_only and all(field.disabled for field in form.fields.values())
        assert list(form.fields["team"].queryset) == [team_users.team]
        assert not GenerationForm(team_users.owner, link_for=link_for).read_only

    def test_it_saves_the_job_and_files_its_prompt_under_the_team(self, team_users):
        form = make_form(team_users.teammate, team_users.team)
        assert form.is_valid(), form.errors
        assert not Prompt.objects.exists()  # nothing is stored while validating
        job = form.save()
        assert (job.owner, job.team, job.ecc) == (team_users.teammate, team_users.team, "H")
        assert (job.prompt.team, job.prompt.text, job.prompt.negative_text, job.prompt.times_used) == (
            team_users.team, "a koi pond at dawn", "blurry", 1)


def upload(image=None, name: str = "picture.png", fmt: str = "PNG", **save):
    """An uploaded image file (a red square by default)."""
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = io.BytesIO()
    (image or Image.new("RGB", (120, 120), (200, 60, 40))).save(buffer, format=fmt, **save)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def halftone_form(user, team, files=None, **data) -> GenerationForm:
    fields = {"team": team.pk, "content": "https://qart.example/r/AbC123", "engine": "halftone", "look": "balanced",
              "speed": "fast", "size": "768", "style": "square", "background": "white", **data}
    return GenerationForm(user, fields, files or {}, link_for=link_for)


@pytest.fixture
def no_weights(monkeypatch):
    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)


class TestHalftoneEngine:
    def test_it_starts_on_halftone_without_weights_and_on_diffusion_with_them(self, team_users, monkeypatch):
        monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)
        assert GenerationForm(team_users.owner, link_for=link_for)["engine"].initial == "halftone"
        monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: True)
        assert GenerationForm(team_users.owner, link_for=link_for)["engine"].initial == "diffusion"

    def test_it_keeps_diffusion_for_a_request_without_engine_or_picture(self, team_users, no_weights):
        form = make_form(team_users.owner, team_users.team)
        assert form.is_valid(), form.errors
        assert form.job.engine == "diffusion"

    def test_it_stores_the_picture_re_encoded_as_png_and_keeps_the_label_off_the_gallery(self, team_users,
                                                                                         no_weights):
        from PIL import Image

        form = halftone_form(team_users.owner, team_users.team, {"picture": upload(fmt="JPEG", name="p.jpg")})
        assert form.is_valid(), form.errors
        job = form.save()
        assert job.engine == "halftone" and job.init_image.name.endswith(".png")
        with job.init_image.open("rb") as stored:
            assert Image.open(stored).format == "PNG"
        assert not Prompt.objects.filter(team=team_users.team).exists()

    def test_it_stores_a_logo_re_encoded_and_makes_the_code_level_h(self, team_users, no_weights, settings):
        from PIL import Image

        settings.QART = {**settings.QART, "DEFAULT_ECC": "M"}
        form = halftone_form(team_users.owner, team_users.team,
                             {"picture": upload(), "logo": upload(fmt="WEBP", name="logo.webp")})
        assert form.is_valid(), form.errors
        job = form.save()
        assert job.ecc == "H" and job.logo.name.endswith(".png")
        with job.logo.open("rb") as stored:
            assert Image.open(stored).format == "PNG"

    def test_a_logo_is_for_the_halftone_engine_only(self, team_users):
        form = make_form(team_users.owner, team_users.team, engine="diffusion")
        form.files = {"logo": upload()}
        assert not form.is_valid() and "drawn by the halftone engine" in form.errors["logo"][0]

    def test_a_logo_that_is_not_an_image_is_refused_on_its_field(self, team_users, no_weights):
        from django.core.files.uploadedfile import SimpleUploadedFile

        logo = SimpleUploadedFile("logo.gif", b"GIF89a nonsense", content_type="image/gif")
        form = halftone_form(team_users.owner, team_users.team, {"picture": upload(), "logo": logo})
        assert not form.is_valid() and "logo.gif" in form.errors["logo"][0]

    def test_a_logo_on_a_code_with_no_room_in_the_centre_is_refused(self, team_users, no_weights, settings):
        settings.QART = {**settings.QART, "MAX_VERSION": 40}
        form = halftone_form(team_users.owner, team_users.team, {"picture": upload(), "logo": upload()},
                             content="https://qart.example/r/AbC123/" + "x" * 40)
        assert not form.is_valid() and "No room for a logo: this link makes a code so large" in form.errors["logo"][0]
        assert "version" not in form.errors["logo"][0] and "alignment pattern" not in form.errors["logo"][0]

    @pytest.mark.parametrize("logo", [True, False])
    def test_content_too_long_for_any_code_is_said_on_its_field_with_a_logo_too(self, team_users, no_weights, logo):
        # 1,400 characters, under the 2,953 a code may carry: the logo's check met qrcode's "Invalid version (was 41,
        # expected 1 to 40)" as a 500; without a logo those words reached the page
        files = {"picture": upload(), **({"logo": upload()} if logo else {})}
        form = halftone_form(team_users.owner, team_users.team, files, content="https://e.com/" + "x" * 1400)
        assert not form.is_valid()
        assert "too long for QR art" in form.errors["content"][0]
        assert "Invalid version" not in str(form.errors) and "logo" not in form.errors

    def test_it_asks_for_a_picture(self, team_users, no_weights):
        form = halftone_form(team_users.owner, team_users.team)
        assert not form.is_valid()
        assert "draws the code into a picture" in form.errors["picture"][0]

    def test_diffusion_still_needs_a_prompt(self, team_users):
        form = make_form(team_users.owner, team_users.team, prompt="", engine="diffusion")
        assert not form.is_valid() and "Describe the picture" in form.errors["prompt"][0]

    @pytest.mark.parametrize(("make", "message"), [
        ("text", "not an image"),
        ("animated", "animated PNG picture"),
        ("tiff", "a TIFF file; pictures must be PNG, JPEG or WebP"),
        ("tiny", "too small to draw a code from"),
        ("huge", "pictures up to"),
    ])
    def test_it_refuses_bad_uploads_with_their_message(self, team_users, no_weights, settings, make, message):
        from django.core.files.uploadedfile import SimpleUploadedFile
        from PIL import Image

        frames = [Image.new("RGB", (100, 100), c) for c in ("red", "blue")]
        files = {
            "text": SimpleUploadedFile("notes.png", b"not a picture at all"),
            "animated": upload(frames[0], "anim.png", "PNG", save_all=True, append_images=frames[1:]),
            "tiff": upload(frames[0], "scan.tif", "TIFF", compression="tiff_lzw"),  # under the 1,000-byte cap
            "tiny": upload(Image.new("RGB", (40, 40)), "tiny.png"),
            "huge": upload(Image.new("RGB", (600, 600)), "huge.png"),
        }
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        form = halftone_form(team_users.owner, team_users.team, {"picture": files[make]})
        assert not form.is_valid()
        assert message in form.errors["picture"][0] and not form.job

    def test_it_takes_an_earlier_candidate_of_the_team_only(self, team_users, no_weights):
        from django.core.files.base import ContentFile

        from generator.models import Candidate, GenerationJob

        def candidate_of(team, owner):
            job = GenerationJob.objects.create(owner=owner, team=team, content="x",
                                               prompt=Prompt.objects.create(owner=owner, text="p"))
            return Candidate.objects.create(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass",
                                            image=ContentFile(upload().read(), name="c.png"))

        ours = candidate_of(team_users.team, team_users.owner)
        theirs = candidate_of(team_users.other_team, team_users.outsider)
        form = halftone_form(team_users.teammate, team_users.team, earlier_candidate=str(ours.pk))
        assert form.is_valid(), form.errors
        form = halftone_form(team_users.teammate, team_users.team, earlier_candidate=str(theirs.pk))
        assert not form.is_valid()
        assert form.errors["earlier_candidate"] == ["Pick one of this team's earlier candidates."]


@pytest.mark.django_db
def test_a_picture_with_the_diffusion_engine_is_refused_not_dropped(team_users):
    form = halftone_form(team_users.owner, team_users.team, files={"picture": upload()}, engine="diffusion",
                         prompt="a fox")
    assert not form.is_valid() and form.errors["picture"] == [uploads.PICTURE_NEEDS_HALFTONE]
    assert make_form(team_users.owner, team_users.team, engine="diffusion").is_valid()  # no picture: fine


@pytest.mark.parametrize("value", [None, "", 2, "1"])
def test_the_long_select_draws_what_djangos_select_draws(value):
    # Drawn in Python for speed (a team's thousands of placements), it must stay Django's markup.
    from django import forms as django_forms

    choices = [("", "None: I'll enter it"), (1, "A & <b>"), ("Group", [(2, 'x"y'), (3, "z")])]
    attrs = {"data-x": "1", "disabled": True, "hidden": False}
    asked = ("placement", value, {"id": "id_placement", "aria-describedby": "id_placement_helptext"})
    django_select = django_forms.Select(choices=choices, attrs=attrs).render(*asked)
    assert placement_picker.LongSelect(choices=choices, attrs=attrs).render(*asked) == django_select.replace(
        "\n\n", "\n")


class TestPlacementSearch:
    """Past `placement_picker.SELECT_MAX` placements the page sends a search box (`placement_name`) for the
    placement: what was typed there names it when no id came with it (JavaScript off)."""

    @pytest.fixture
    def acme(self, team_users):
        from tests.generator.factories import many_placements

        campaign = many_placements(team_users.team, placement_picker.SELECT_MAX + 1)
        Placement.objects.create(campaign=campaign, name="Bus stop 4/5")
        Placement.objects.create(campaign=campaign, name="Poster 7")  # a second "Spring / Poster 7"
        return campaign

    def test_it_finds_the_placement_by_slug_or_by_campaign_and_name(self, team_users, acme):
        poster = acme.placements.get(slug="spring0012")
        for typed in ("spring0012", " SPRING / poster 12 ", "Spring/Poster 12"):
            form = make_form(team_users.owner, team_users.team, content="", placement_name=typed)
            assert form.is_valid(), (typed, form.errors)
            assert form.cleaned_data["placement"] == poster and form.job.content == link_for(poster)
        stop = make_form(team_users.owner, team_users.team, content="", placement_name="Spring / Bus stop 4/5")
        assert stop.is_valid() and stop.cleaned_data["placement"].name == "Bus stop 4/5"
        assert make_form(team_users.owner, team_users.team, placement_name="").is_valid()  # none: the content typed

    def test_it_keeps_the_id_chosen_while_the_text_still_names_it(self, team_users, acme):
        # Two placements are "Spring / Poster 7": the id the search chose tells them apart
        second = acme.placements.filter(name="Poster 7").order_by("pk").last()
        for shown in ("Spring / Poster 7", "spring/poster 7", second.slug):
            form = make_form(team_users.owner, team_users.team, content="", placement=str(second.pk),
                             placement_name=shown)
            assert form.is_valid(), (shown, form.errors)
            assert form.cleaned_data["placement"] == second

    def test_the_text_changed_since_the_choice_names_the_placement(self, team_users, acme):
        # JavaScript off: the page came with a placement chosen (?placement=), its id in a hidden input the person
        # cannot change. The code went to that placement whatever the box said once they typed another.
        chosen, typed = acme.placements.get(slug="spring0007"), acme.placements.get(slug="spring0012")
        form = make_form(team_users.owner, team_users.team, content="", placement=str(chosen.pk),
                         placement_name="Spring / Poster 12")
        assert form.is_valid(), form.errors
        assert form.cleaned_data["placement"] == typed and form.job.content == link_for(typed)
        # The page came with the chosen one's link as the content, which JavaScript would have replaced: replaced
        filled = make_form(team_users.owner, team_users.team, content=link_for(chosen), placement=str(chosen.pk),
                           placement_name="Spring / Poster 12")
        assert filled.is_valid(), filled.errors
        assert filled.cleaned_data["placement"] == typed and filled.job.content == link_for(typed)
        # Sent back (another field refused): the page's hidden id is the one the text named
        refused = make_form(team_users.owner, team_users.team, prompt="", engine="diffusion",
                            content=link_for(chosen), placement=str(chosen.pk), placement_name="Spring / Poster 12")
        assert not refused.is_valid()
        assert (refused["placement"].value(), refused["content"].value()) == (str(typed.pk), link_for(typed))
        # The box emptied: no placement, whatever the id (the content typed is the code's)
        emptied = make_form(team_users.owner, team_users.team, placement=str(chosen.pk), placement_name=" ")
        assert emptied.is_valid(), emptied.errors
        assert emptied.cleaned_data["placement"] is None and emptied.job.placement is None

    def test_a_refused_id_gives_way_to_the_text_typed_again(self, team_users, acme):
        # The chosen placement was deleted: "choose it again" could not be done without JavaScript, the hidden id
        # being sent back refused every time, whatever was typed.
        gone = Placement.objects.create(campaign=acme, name="Gone")
        gone_pk = gone.pk
        gone.delete()
        poster = acme.placements.get(slug="spring0012")
        form = make_form(team_users.owner, team_users.team, content="", placement=str(gone_pk),
                         placement_name="spring0012")
        assert form.is_valid(), form.errors
        assert form.cleaned_data["placement"] == poster
        still = make_form(team_users.owner, team_users.team, content="", placement=str(gone_pk),
                          placement_name="Spring / Gone")
        assert list(still.errors) == ["placement_name"] and still.errors["placement_name"][0].startswith(
            "No placement of Acme is “Spring / Gone”")

    def test_a_typed_placement_is_refused_on_the_select_once_the_page_has_one(self, team_users, acme):
        # The page searched; by the time it was sent, placements were deleted and the page now has the select: the
        # message went to the search box, which the page no longer shows (the summary linked to nothing).
        Placement.objects.filter(campaign=acme, name__startswith="Poster 1").delete()
        form = make_form(team_users.owner, team_users.team, content="", placement_name="nothing-here")
        assert not form.searches_placements
        assert list(form.errors) == ["placement"] and form.errors["placement"][0].startswith("No placement of Acme")
        typed = make_form(team_users.owner, team_users.team, content="", placement_name="spring0007")
        assert typed.is_valid() and typed.cleaned_data["placement"].slug == "spring0007"

    def test_the_search_box_shows_a_choice_made_in_the_select(self, team_users, acme):
        # The page had the select; by the time it was sent, the team passed the select's limit: the page sent back
        # (another field refused) had the search box empty, the choice only in its hidden id.
        poster = acme.placements.get(slug="spring0012")
        form = make_form(team_users.owner, team_users.team, prompt="", engine="diffusion", placement=str(poster.pk))
        assert not form.is_valid() and "placement_name" not in form.errors
        assert form["placement_name"].value() == "Spring / Poster 12"

    def test_it_asks_for_the_slug_when_a_name_is_not_one(self, team_users, acme):
        form = make_form(team_users.owner, team_users.team, content="", placement_name="spring / poster 7")
        assert form.errors == {"placement_name": [
            "Several placements of Acme are called “spring / poster 7”: type the slug (the end of its short link) of "
            "the one you mean."]}

    def test_it_refuses_another_teams_placement_as_a_missing_one(self, team_users, acme):
        theirs = Placement.objects.create(
            campaign=Campaign.objects.create(team=team_users.other_team, name="Spring", destination="https://x.io/"),
            name="Poster 900")
        said = {}
        for typed in (theirs.slug, "nothing-here", "Spring / Poster 900"):
            form = make_form(team_users.owner, team_users.team, content="", placement_name=typed)
            said[typed] = form.errors["placement_name"][0].replace(typed, "…")
        assert len(set(said.values())) == 1 and list(said.values())[0].startswith("No placement of Acme is “…”")
        # Sent as the id (a stale page, or a hand-made one): the same message for theirs and for none
        for pk in (theirs.pk, 10**9):
            form = make_form(team_users.owner, team_users.team, placement=str(pk))
            assert form.errors == {"placement_name": [
                "That placement is not one of your team's (or no longer exists): choose it again."]}

    def test_it_says_a_placement_of_another_of_the_users_teams_on_the_search_box(self, team_users, acme):
        # the page's summary links each message to its field: the placement's id is a hidden input there
        Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
        other = placement_of(team_users.other_team)
        form = make_form(team_users.owner, team_users.team, placement=str(other.pk))
        assert form.errors == {"placement_name": ["That placement belongs to another team."]}
