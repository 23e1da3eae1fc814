"""The generation form: prompt, team and placement, content, presets and the advanced parameters.

The core decides what is valid: `clean()` builds the job and runs `job_parameters.validate_job`, and shows its
message on the field it is about. The ranges here only set the inputs' min/max so browsers help first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from campaigns import links
from campaigns.models import Placement
from generator import engine_status, job_parameters, placement_picker, uploads
from generator.core.codes import images, logos, qr
from generator.core.engines import parameters
from generator.models import GenerationJob, Prompt
from generator.throttles import TeamGenerationThrottle
from qartsite import form_fields
from qartsite.access import editable_teams
from qartsite.models import Team

# Looks trade picture for scannability: how hard the code is imposed, and from which fraction of the steps.
LOOKS = {
    "balanced": {"label": "Balanced", "conditioning_scale": 1.5, "control_start": 0.25,
                 "help": "Scans reliably and still looks like a picture."},
    "art": {"label": "More art", "conditioning_scale": 1.2, "control_start": 0.3,
            "help": "A freer picture; fewer candidates scan."},
    "scannable": {"label": "More scannable", "conditioning_scale": 1.8, "control_start": 0.15,
                  "help": "The code shows more; best for small prints."},
}
SPEEDS = {
    "turbo": {"label": "Turbo", "help": "The quickest, about 2 seconds; a little less detail.",
              **parameters.PRESETS["turbo"]},
    "fast": {"label": "Fast", "help": "About twice as quick as Quality.", **parameters.PRESETS["fast"]},
    "quality": {"label": "Quality", "help": "The finest detail; takes the longest.", **parameters.PRESETS["quality"]},
}
FEWSTEP = {"label": "Few-step", "help": "Under a second; drawn a quicker way, so its picture differs from what the "
           "other speeds draw.", **parameters.PRESETS["fewstep"]}


def speeds() -> dict:
    """The speeds offered here: the few-step preset only where a few-step LoRA is configured (QART_FEWSTEP_LORA),
    with the scheduler it was made for."""
    scheduler = job_parameters.fewstep_scheduler()
    return {"fewstep": dict(FEWSTEP, scheduler=scheduler), **SPEEDS} if scheduler else SPEEDS

# (min, max, step) of each advanced input: the ranges GenerationParams.validate and BestOfNConfig.validate
# enforce. tests/generator/test_forms.py checks that the two agree.
RANGES = {
    "steps": (1, 150, 1),
    "guidance_scale": (0, 20, 0.1),
    "conditioning_scale": (0, 3, 0.05),
    "control_start": (0, 1, 0.05),
    "control_end": (0, 1, 0.05),
    "size": (256, 1024, 64),
    "candidates_per_batch": (1, 16, 1),
    "seed": (0, 2**32 - 129, 1),
}

# Which field a message from the core is about, by its first words; anything else goes on top of the form.
MESSAGE_FIELDS = (
    ("Prompt", "prompt"), ("Steps", "steps"), ("Guidance", "guidance_scale"),
    ("Conditioning", "conditioning_scale"), ("Control start", "control_start"), ("Control end", "control_end"),
    ("Size", "size"), ("Candidates", "candidates_per_batch"), ("Seed", "seed"), ("Style", "style"),
    ("Background", "background"), ("Strength", "strength"), ("The batch budget", "max_batches"),
    ("Scheduler", "scheduler"), ("Unknown scheduler", "scheduler"),
)


def field_for_message(exc: ValueError, fields) -> str | None:
    """Which of `fields` a core message is about (by its first words, `MESSAGE_FIELDS`); None for the form as a
    whole."""
    message = str(exc)
    field = "content" if isinstance(exc, qr.ContentError) else next(
        (name for prefix, name in MESSAGE_FIELDS if message.startswith(prefix)), None)
    return field if field in fields else None


def bounds_kwargs(label: str, low, high) -> dict:
    """A range as Django and DRF fields take it (min_value, max_value and their message), in the core's words:
    "Candidates must be between 1 and 16, got 0."."""
    message = f"{label} must be between {low} and {high}, got %(value)s."
    return {"min_value": low, "max_value": high, "error_messages": {"min_value": message, "max_value": message}}


def range_kwargs(name: str, label: str) -> dict:
    """A field's range from `RANGES` (`bounds_kwargs`), bounds written as the core writes them: "Conditioning scale
    must be between 0.0 and 3.0, got 4.5."."""
    low, high, step = RANGES[name]
    kind = int if isinstance(step, int) else float
    return {**bounds_kwargs(label, kind(low), kind(high)), "min_value": low, "max_value": high}


def number(name: str, label: str, help_text: str = "", *, integer: bool = False, **kwargs) -> forms.Field:
    """An advanced input with its range: the browser's min/max, and the same range checked on the field, so a form
    sent with several values out of range says so for each at once (`range_kwargs`)."""
    low, high, step = RANGES[name]
    widget = forms.NumberInput(attrs={"min": low, "max": high, "step": step,
                                      "inputmode": "numeric" if integer else "decimal"})
    field_class = form_fields.IntegerField if integer else form_fields.FloatField
    return field_class(label=label, help_text=help_text, required=False, widget=widget,
                       **range_kwargs(name, label.split(" (")[0]), **kwargs)


PROMPT_CHARS = Prompt._meta.get_field("text").max_length  # negative_text's too


class PromptField(forms.CharField):
    """A prompt's text, at most `PROMPT_CHARS` characters. Its textarea has no maxlength: a browser cuts a longer
    paste there without a word. The page counts instead (char-count.js reads `data-max-chars`), and a text sent
    longer is refused in the form's words, with how long it is."""

    def __init__(self, called: str, **kwargs) -> None:
        super().__init__(required=False, **kwargs)
        self.called = called  # how messages name it: "The negative prompt"
        self.widget.attrs["data-max-chars"] = PROMPT_CHARS

    def validate(self, value: str) -> None:
        super().validate(value)
        if problem := prompt_problem(self.called, value):
            raise ValidationError(problem, code="max_length")


def prompt_problem(called: str, text: str) -> str:
    """Why `text` cannot be a prompt ("" when it can): the page's form and the API say it alike."""
    if len(text) > PROMPT_CHARS:
        return f"{called} can be at most {PROMPT_CHARS:,} characters; this one has {len(text):,}. Shorten it."
    return ""


# Hidden fields the person never typed: one message that says what to do, not "ensure this value is ≤ 1".
CROP_ERRORS = {key: "The crop was not understood; choose the picture again and crop it."
               for key in ("invalid", "min_value", "max_value")}


class GenerationForm(forms.Form):
    engine = forms.ChoiceField(
        choices=[(engine_status.HALFTONE, "Your picture (halftone, CPU)"),
                 (engine_status.DIFFUSION, "Drawn from a prompt (GPU)")],
        required=False, widget=forms.RadioSelect,
    )
    picture = forms.FileField(
        required=False, label="Picture to draw the code into",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text="A photo, an illustration or a large logo: PNG, JPEG or WebP, still, at least 64 px a side. Its "
                  "colours are kept where the code allows; some variants are drawn in greys.",
    )
    # The square the page's crop tool chose (`uploads.crop`): its centre as fractions of the picture's width and
    # height, and the zoom (1: the largest square that fits). Hidden: generate.js fills them in.
    crop_x = form_fields.FloatField(required=False, min_value=0, max_value=1, widget=forms.HiddenInput,
                                    error_messages=CROP_ERRORS)
    crop_y = form_fields.FloatField(required=False, min_value=0, max_value=1, widget=forms.HiddenInput,
                                    error_messages=CROP_ERRORS)
    crop_zoom = form_fields.FloatField(required=False, min_value=1, max_value=uploads.MAX_ZOOM,
                                       widget=forms.HiddenInput, error_messages=CROP_ERRORS)
    logo = forms.FileField(
        required=False, label="Logo in the centre (optional)",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text=f"PNG, JPEG or WebP. Placed on a white square in the middle of the code, about "
                  f"{logos.DEFAULT_SHARE:.0%} of its area. The code then carries the most spare data it can, so phones "
                  "still read it with the middle covered, and it is checked with the logo on it.",
    )
    # An earlier candidate of the team as the picture: radio buttons drawn by the template (`earlier`).
    earlier_candidate = form_fields.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    prompt = PromptField(
        "The prompt", widget=forms.Textarea(attrs={"rows": 3, "placeholder": "a misty pine forest at dawn"}),
        help_text="What the picture shows. The code's pattern becomes part of it.",
    )
    negative_prompt = PromptField(
        "The negative prompt", initial=parameters.DEFAULT_NEGATIVE, label="Negative prompt",
        widget=forms.Textarea(attrs={"rows": 2}), help_text="What the picture should not show.",
    )
    team = form_fields.ModelChoiceField(queryset=Team.objects.none(), empty_label=None, error_messages={
        "invalid_choice": "That team is not one you can make codes for: reload the page and try again."})
    placement = placement_picker.PlacementChoiceField(
        queryset=Placement.objects.none(), required=False, empty_label="None: I'll enter the content",
        help_text="The printed code this is for. Its short link is what the code opens, and scans are counted.",
        # Another team's id reads as a missing one's.
        error_messages={"invalid_choice": "That placement is not one of your team's (or no longer exists): choose "
                                          "it again."},
    )
    # The search box that stands for `placement` past `placement_picker.SELECT_MAX` placements: generate.js fills in
    # the chosen match's id; without it, a slug or "Campaign / Placement" typed here is found by `clean`.
    placement_name = forms.CharField(
        label="Placement", required=False, max_length=500,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                      "placeholder": "Campaign / placement, or its slug"}),
        help_text="The printed code this is for: type part of its name, its campaign's or its slug, and choose it "
                  "(without JavaScript, type its slug or “Campaign / Placement” whole). Its short link is what the "
                  "code opens, and scans are counted. Empty: you enter the content.",
    )
    content = forms.CharField(
        max_length=qr.MAX_CONTENT_CHARS, required=False, label="The code opens",
        error_messages={"max_length": qr.CONTENT_TOO_LONG},
        widget=forms.TextInput(attrs={"placeholder": "https://…", "autocomplete": "off", "spellcheck": "false"}),
        help_text="A short link makes fewer, bigger squares in the code, which leaves the picture more room.",
    )
    look = forms.ChoiceField(choices=[(k, v["label"]) for k, v in LOOKS.items()], initial="balanced",
                             widget=forms.RadioSelect)
    speed = forms.ChoiceField(choices=[(k, v["label"]) for k, v in SPEEDS.items()], initial="fast",
                              widget=forms.RadioSelect)

    # Advanced. Blank steps, conditioning scale and control start take the presets' values.
    steps = number("steps", "Steps", "How many times the picture is refined: more give finer "
                   "detail and take longer. Blank: the speed's.", integer=True)
    guidance_scale = number("guidance_scale", "Guidance scale", "How closely the picture follows the prompt.",
                            initial=3.5)
    conditioning_scale = number("conditioning_scale", "Conditioning scale",
                                "How hard the code is imposed. Blank: the look's.")
    control_start = number("control_start", "Control start", "Fraction of steps before the code. Blank: the look's.")
    control_end = number("control_end", "Control end", "Fraction of steps after which the code stops.", initial=1.0)
    size = number("size", "Size (px)", "Side of the generated image, a multiple of 64.", integer=True,
                  initial=768)
    seed = number("seed", "Seed", "Blank: a random one. The same seed and settings give the same picture.",
                  integer=True)
    candidates_per_batch = number("candidates_per_batch", "Candidates", "Pictures drawn per batch.", integer=True)
    style = forms.ChoiceField(label="Shape of the code's squares", choices=[(s, s.capitalize()) for s in qr.STYLES],
                              initial="square")
    background = forms.ChoiceField(choices=[(b, b.capitalize()) for b in qr.BACKGROUNDS], initial="white",
                                   help_text="Grey lets the picture use light and dark around the code.")

    PRESET_FIELDS = ("steps", "conditioning_scale", "control_start")
    # The advanced fields the halftone engine reads (`job_parameters.halftone_config`); the page hides the others for
    # it.
    HALFTONE_FIELDS = ("size", "seed", "candidates_per_batch")
    ADVANCED_FIELDS = ("steps", "guidance_scale", "conditioning_scale", "control_start", "control_end", "size",
                       "seed", "candidates_per_batch", "style", "background")

    def __init__(self, user, *args, link_for: Callable[[Placement], str], placement: Placement | None = None,
                 earlier: bool = True, many_links: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not earlier:  # a page that offers no earlier candidate as the picture (generating for every placement)
            del self.fields["earlier_candidate"]
        self.user = user
        # One picture for many links (generating for every placement): a code in it is another link's for all but
        # one of them, so it may carry none at all (`uploads.refuse_other_code`).
        self.many_links = many_links
        self.link_for = link_for
        self.job: GenerationJob | None = None
        self.picture = None  # the checked PIL picture of a halftone job, stored by save()
        self.logo = None  # ... and its checked logo, if any
        # Uploads kept from an earlier try that was sent back, and those this one keeps (`keep_uploads`):
        # "picture"/"logo" -> (token, file name), which the page sends back as kept_picture / kept_logo.
        self.kept: dict[str, tuple[str, str]] = {}
        self.rate_limited = False  # the team had no generations left (the page answers 429)...
        self.retry_after: float | None = None  # ...and seconds until it has one
        teams = editable_teams(user)
        # Viewers see the form as it would be, disabled: the page shows what editors can do.
        self.read_only = not teams.exists()
        if self.read_only:
            teams = Team.for_user(user)
        self.fields["team"].queryset = teams
        if teams.count() == 1:
            self.fields["team"].widget = forms.HiddenInput()
        self.fields["placement"].queryset = placement_picker.offered(user, teams)
        self.fields["candidates_per_batch"].initial = settings.QART["CANDIDATES"]
        # generate.js refuses a larger picture before it is sent (qartsite.limits would answer 413).
        self.fields["picture"].widget.attrs["data-max-bytes"] = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.fields["picture"].widget.attrs["data-max-pixels"] = settings.QART["MAX_IMAGE_PIXELS"]  # and a larger one
        self.fields["engine"].initial = engine_status.default_engine()
        self.speeds = speeds()
        self.fields["speed"].choices = [(k, v["label"]) for k, v in self.speeds.items()]
        look, speed = LOOKS["balanced"], SPEEDS["fast"]
        for name, value in (("steps", speed["steps"]), ("conditioning_scale", look["conditioning_scale"]),
                            ("control_start", look["control_start"])):
            self.fields[name].widget.attrs["placeholder"] = value
        if placement is not None:
            self.initial.update(placement=placement.pk, team=placement.campaign.team_id,
                                content=link_for(placement), placement_name=placement_picker.shown_name(placement))
        elif teams:
            self.initial.setdefault("team", teams[0].pk)
        if self.read_only:
            for field in self.fields.values():
                field.disabled = True

    @cached_property
    def searches_placements(self) -> bool:
        """Whether the page offers the placements through the search box: more than a select should carry."""
        return placement_picker.searches(self.fields["placement"].queryset)

    @property
    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.ADVANCED_FIELDS]

    def clean(self) -> dict:
        data = super().clean()
        team, placement = data.get("team"), self.settle_placement(data)
        if not data.get("content") and placement is not None:
            data["content"] = self.link_for(placement)
        # A placement typed but not found has its own message: not a second one about the content.
        if not data.get("content") and not {"content", "placement", "placement_name"} & self.errors.keys():
            self.add_error("content", "Enter the link or text the code should open, or pick a placement.")
        # Before the picture is decoded: a team with no generations left costs no more than this. What was kept from
        # an earlier try stays kept (it needs no decoding to be offered again).
        if team is not None and not self.has_room(team):
            for kind in ("picture", "logo"):
                token = self.data.get(f"kept_{kind}", "")
                name = uploads.kept_name(self.user, token, kind) if token else None
                if name is not None:
                    self.kept[kind] = (token, name)
            return data
        self.settle_engine(data)
        self.settle_logo(data)
        if self.errors:
            return data
        self.job = self.build_job(data)
        try:
            job_parameters.validate_job(self.job)
        except ValueError as exc:  # qr.ContentError is a ValueError too
            self.add_error(field_for_message(exc, self.fields), str(exc))
        return data

    def settle_placement(self, data: dict) -> Placement | None:
        """The placement chosen, in `data` too: the select's, or the search box's (`placement_picker`). Its messages
        go where the person chooses: the search box, or the select (the summary links to it)."""
        team, placement = data.get("team"), data.get("placement")
        chooser = "placement_name" if self.searches_placements else "placement"
        typed = (data.get("placement_name") or "").strip()
        if "placement_name" in self.data:  # the page had the search box: its text is the choice the person sees
            # The id stands while the text still names it. Changed since with JavaScript off (which leaves the id as
            # it was), the id sent the code to a placement the box no longer showed, and a refused id kept refusing.
            if placement is None or not placement_picker.still_names(placement, typed):
                self.errors.pop("placement", None)
                # The link filled in for the placement given up (the page's, with JavaScript off) is not kept
                filled = placement is not None and data.get("content") == self.link_for(placement)
                placement = data["placement"] = None
                if typed and team is not None:
                    try:
                        placement = data["placement"] = placement_picker.named(self.fields["placement"].queryset,
                                                                                typed, team)
                    except ValidationError as exc:
                        self.add_error(chooser, exc)
                if filled:
                    data["content"] = self.link_for(placement) if placement else ""
                # The page sent back shows this one (its id, and its link as the content where the old one's was)
                self.shown(placement=str(placement.pk) if placement else "",
                           **({"content": data["content"]} if filled else {}))
        elif self.searches_placements and placement is not None:
            # The page had the select (the team passed SELECT_MAX since): the search box now shows that choice.
            self.shown(placement_name=placement_picker.shown_name(placement))
        if "placement" in self.errors and chooser != "placement":
            self.add_error(chooser, list(self.errors.pop("placement")))
        if placement is not None and team is not None and placement.campaign.team_id != team.pk:
            self.add_error(chooser, "That placement belongs to another team.")
        return placement

    def shown(self, **values) -> None:
        """The page sent back shows `values` in those fields, in place of what was sent."""
        self.data = self.data.copy()  # a request's QueryDict is immutable
        for name, value in values.items():
            self.data[name] = value  # not update(): a QueryDict's adds to the values sent

    def clean_content(self) -> str:
        content = self.cleaned_data["content"]
        problem = links.web_address_problem(content)
        if problem:
            raise ValidationError(problem)
        return content

    def has_room(self, team: Team, count: bool = False) -> bool:
        """Whether `team`'s generation rate, shared with the API (`generator.throttles`), allows one more job;
        `count` uses one up (once the job is accepted). If not, the form says when to try again."""
        throttle = TeamGenerationThrottle(team)
        if throttle.allow_request(None, None) if count else throttle.has_room():
            return True
        self.rate_limited = True
        self.retry_after = throttle.retry_after()
        self.add_error(None, throttle.refusal())
        return False

    def room_note(self) -> str:
        """Before the form is filled in: which of the person's teams cannot start a job now (each message names its
        team, so someone in several picks another), or "" when all can. A picture sent to a team without room is not
        decoded (`has_room` comes first), so it could not be kept for the next try."""
        if self.read_only:
            return ""
        throttles = [TeamGenerationThrottle(team) for team in self.fields["team"].queryset.order_by("name")]
        return " ".join(throttle.used_up() for throttle in throttles if not throttle.has_room())

    def settle_engine(self, data: dict) -> None:
        """Settle the engine (see `engine_status.default_engine`); halftone needs a picture, diffusion a prompt."""
        given = bool(data.get("picture")) or data.get("earlier_candidate") is not None
        data["engine"] = data.get("engine") or engine_status.default_engine(given)
        if data["engine"] == engine_status.DIFFUSION:
            if not (data.get("prompt") or "").strip() and "prompt" not in self.errors:
                self.add_error("prompt", "Describe the picture the code should become.")
            if given:  # it would be dropped without a word
                self.add_error(uploads.picture_field(data.get("picture"), data.get("earlier_candidate")),
                               uploads.PICTURE_NEEDS_HALFTONE)
            return
        upload, candidate_pk = data.get("picture"), data.get("earlier_candidate")
        token = self.data.get("kept_picture", "")
        try:
            if token and not upload and candidate_pk is None:  # kept from the last try, already cropped
                picture, name = uploads.kept(self.user, token)
                self.kept["picture"] = (token, name)
                if data.get("content"):  # the link may have changed since that try
                    uploads.refuse_other_code(picture, self.own_link(data), name)
                self.picture = picture
                return
            if not upload and "earlier_candidate" not in self.fields:
                raise images.ImageError(uploads.NEEDS_UPLOAD)
            picture = uploads.chosen(upload, data.get("team"), candidate_pk)
            picture = uploads.crop(picture, data.get("crop_x"), data.get("crop_y"), data.get("crop_zoom"))
            name = uploads.shown_name(upload.name) if upload else "The candidate"
            picture = uploads.storable(picture, name)
            if data.get("content"):
                uploads.refuse_other_code(picture, self.own_link(data), name)
            # Set only once usable: `keep_uploads` keeps `self.picture` for the next try
            self.picture = picture
        except images.ImageError as exc:
            self.add_error(uploads.picture_field(upload, candidate_pk), str(exc))

    def own_link(self, data: dict) -> str | None:
        """The one text a code already in the picture may carry: the job's own, or none with `many_links`."""
        return None if self.many_links else data["content"]

    def settle_logo(self, data: dict) -> None:
        """The logo, checked and known to fit the centre of the code (`uploads.logo_for`)."""
        token = "" if self.data.get("kept_logo_off") else self.data.get("kept_logo", "")
        if not (data.get("logo") or token) or not data.get("content") or self.errors:
            return
        try:
            kept_logo = None
            if not data.get("logo"):  # kept from the last try
                kept_logo, name = uploads.kept(self.user, token, "logo")
                self.kept["logo"] = (token, name)
            self.logo = uploads.logo_for(data["logo"], data["engine"], data["content"], kept_logo)
        except qr.ContentError:
            pass  # the content's own error, said by validate_job on its field
        except (images.ImageError, logos.LogoError) as exc:
            self.add_error("logo", str(exc))

    def keep_uploads(self) -> list[str]:
        """Before the form goes back with an error: keep the picture and logo sent with it for the next try
        (`uploads.keep`), since a browser cannot refill a file input. A picture is kept as checked and cropped; one
        that could not be used, or an earlier candidate, is not kept.

        Returns:
            the files sent ("picture", "logo") that were not kept (the cache away, or a picture not decoded for a
            team without room) and have no message of their own: the page says to choose them again
            (generator/_dropped_upload.html), where they vanished without a word.
        """
        files = self.files or {}
        if self.picture is not None and "picture" not in self.kept and files.get("picture"):
            token = uploads.keep(self.user, self.picture, files["picture"].name)
            if token:
                self.kept["picture"] = (token, uploads.shown_name(files["picture"].name))
        logo = files.get("logo")
        if logo and "logo" not in self.kept and "logo" not in self.errors:
            try:
                logo.seek(0)
                picture = self.logo or uploads.from_upload(logo)
            except images.ImageError:
                picture = None  # its own message is on the field (or will be, once the rest is right)
            token = uploads.keep(self.user, picture, logo.name, "logo") if picture is not None else None
            if token:
                self.kept["logo"] = (token, uploads.shown_name(logo.name))
        return [kind for kind in ("picture", "logo")
                if files.get(kind) and kind not in self.kept and kind not in self.errors]

    def build_job(self, data: dict) -> GenerationJob:
        """The job as submitted, unsaved, with an unsaved prompt: nothing is stored until it validates."""
        look, speed = LOOKS[data["look"]], self.speeds[data["speed"]]

        def given(name: str, default):
            return default if data.get(name) is None else data[name]

        return GenerationJob(
            owner=self.user, team=data["team"], placement=data.get("placement"),
            prompt=Prompt(owner=self.user, text=data["prompt"], negative_text=data.get("negative_prompt", "")),
            content=data["content"], steps=given("steps", speed["steps"]), scheduler=speed["scheduler"],
            guidance_scale=given("guidance_scale", 3.5),
            conditioning_scale=given("conditioning_scale", look["conditioning_scale"]),
            control_start=given("control_start", look["control_start"]), control_end=given("control_end", 1.0),
            size=given("size", 768), seed=data.get("seed"),
            candidates_per_batch=given("candidates_per_batch", settings.QART["CANDIDATES"]),
            max_batches=settings.QART["MAX_BATCHES"], style=data["style"], background=data["background"],
            ecc=logos.LOGO_ECC if self.logo is not None else settings.QART["DEFAULT_ECC"], engine=data["engine"],
        )

    def save(self) -> GenerationJob:
        """Store the validated job, remembering its prompt for the team's gallery."""
        return uploads.save_new_job(self.job, self.user, self.picture, self.logo)
