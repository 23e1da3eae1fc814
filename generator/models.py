"""The generator app's records, for generation and for the evals.

Generation: `Prompt` (prompts people reuse), `GenerationJob` (the row is the source of truth for a job's status;
RQ only carries its primary key), `Candidate` (one image of a job, with its scan verdict and scores) and
`GenerationPreset` (a team's default settings, chosen from a sweep).
Evals (`generator.evals`): `LabelingSession` and `LabelingItem` (codes shown to phones by one-time links),
`HumanScanResult` (whether a person's phone read a code), `EvalRun` and `EvalSample` (a parameter sweep and the
jobs it made), `VerifierModel` (the scan verifier's decision model fitted to people's labels; global, not a
team's). The eval models live here so their app label, tables and admin URLs stay `generator`.
Every team-owned model answers `objects.for_user(user)` (`qartsite.models.TeamOwnedQuerySet`).
"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.utils import timezone

from qartsite.models import TeamOwnedQuerySet

# A generation's float parameters: each must be finite (jobs.validate_job, GenerationJob.Meta.constraints).
FLOAT_PARAMETERS = ("guidance_scale", "conditioning_scale", "control_start", "control_end", "strength")
# Bounds standing for "finite" in SQL: SQLite has no literal for infinity, and PostgreSQL sorts NaN above all.
FINITE = 1e308


class Prompt(models.Model):
    """A prompt as typed, kept for the gallery of earlier prompts that people reuse."""

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    # SET_NULL here and on GenerationJob.owner: a prompt and a job are the team's work, not the person's; deleting
    # an account must not take a team's jobs, candidates and printed artwork with it.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="prompts")
    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="prompts")
    text = models.TextField(max_length=1000)
    negative_text = models.TextField(max_length=1000, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(auto_now=True)
    times_used = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_used"]

    def __str__(self) -> str:
        return self.text[:80]

    @classmethod
    def remember(cls, owner, text: str, negative_text: str, team=None) -> Prompt:
        """The team's (or, without a team, the owner's) prompt with this text, created on first use; its use
        count goes up by one. The gallery of earlier prompts is per team, so teammates reuse each other's."""
        scope = {"team": team} if team is not None else {"owner": owner, "team": None}
        prompt = cls.objects.filter(text=text, negative_text=negative_text, **scope).first()
        if prompt is None:
            prompt = cls.objects.create(owner=owner, team=team, text=text, negative_text=negative_text)
        # F() keeps concurrent uses from losing counts; saving also bumps last_used.
        cls.objects.filter(pk=prompt.pk).update(times_used=F("times_used") + 1, last_used=timezone.now())
        prompt.refresh_from_db()
        return prompt


class GenerationJob(models.Model):
    team_paths = ('team',)  # see TeamOwnedQuerySet
    str_related = ("prompt",)  # what __str__ reads (qartsite.models.named)
    objects = TeamOwnedQuerySet.as_manager()

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SCORING = "scoring"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="generations", help_text="Who started it; empty once their account is gone")
    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="generations")
    placement = models.ForeignKey("campaigns.Placement", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="generations", help_text="The placement whose short link it encodes")
    # RESTRICT, not PROTECT: a prompt in use cannot be deleted on its own, but deleting its team (which takes the
    # prompt and the jobs in one operation) works.
    prompt = models.ForeignKey(Prompt, on_delete=models.RESTRICT, related_name="jobs")
    content = models.TextField(help_text="The exact text the code carries, usually a short link.")

    # Parameters (see core.engines.parameters.GenerationParams and core.engines.ranking.BestOfNConfig)
    steps = models.PositiveSmallIntegerField(default=25)
    guidance_scale = models.FloatField(default=3.5)
    conditioning_scale = models.FloatField(default=1.5)
    control_start = models.FloatField(default=0.25)
    control_end = models.FloatField(default=1.0)
    strength = models.FloatField(null=True, blank=True, help_text="img2img strength; empty for text-to-image")
    size = models.PositiveSmallIntegerField(default=768)
    scheduler = models.CharField(max_length=32, default="dpmpp_2m_karras")
    candidates_per_batch = models.PositiveSmallIntegerField(default=8)
    max_batches = models.PositiveSmallIntegerField(default=2)
    seed = models.BigIntegerField(null=True, blank=True, help_text="First candidate's seed; chosen when empty")
    style = models.CharField(max_length=16, default="square")
    background = models.CharField(max_length=16, default="white")
    ecc = models.CharField(max_length=1, default="H")
    init_image = models.ImageField(upload_to="generations/init/", null=True, blank=True)
    # The halftone engine's logo for the centre of the code, on a white plate (`generator.core.codes.logos`).
    logo = models.ImageField(upload_to="generations/logos/", null=True, blank=True,
                             help_text="halftone: a logo in the centre of the code; the code is then level H")
    # Sweeps measure raw scan rates, so they turn repair off; people's jobs keep it on.
    repair = models.BooleanField(default=True, help_text="Repair failing candidates before another batch")

    # Engine: "diffusion" (Stable Diffusion + QR ControlNet, GPU) or "halftone" (the CPU engine: the uploaded
    # picture in `init_image`, module centres bound to the code)
    class Engine(models.TextChoices):
        DIFFUSION = "diffusion"
        HALFTONE = "halftone"

    engine = models.CharField(max_length=32, choices=Engine.choices, default=Engine.DIFFUSION)
    model_id = models.CharField(max_length=300, blank=True)
    controlnet_id = models.CharField(max_length=300, blank=True)

    # State
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=32, blank=True)
    progress = models.FloatField(default=0.0)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    rq_job_id = models.CharField(max_length=64, blank=True)
    control_image = models.ImageField(upload_to="generations/control/", null=True, blank=True)
    batches = models.PositiveSmallIntegerField(default=0)
    scannable = models.BooleanField(null=True)
    result_message = models.TextField(blank=True)
    # The halftone engine's verdict that the picture fought the code (`BestOfNResult.picture_fights`): its codes
    # scan, but keep little of the picture. Stored as the engine said it, so the page need not read the message.
    picture_fights = models.BooleanField(default=False, editable=False,
                                         help_text="Every code scans, but keeps little of the picture")
    # Drawn by the tiny test model (random weights): its candidates are noise, whatever the scan check says.
    tiny_model = models.BooleanField(default=False, editable=False,
                                     help_text="Drawn by the tiny test model: its candidates are noise")
    error = models.TextField(blank=True)

    # Timings
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    queue_seconds = models.FloatField(null=True, blank=True)
    generation_seconds = models.FloatField(null=True, blank=True)
    scoring_seconds = models.FloatField(null=True, blank=True)
    total_seconds = models.FloatField(null=True, blank=True)


    class Meta:
        ordering = ["-created"]
        # A stored NaN or infinity breaks every JSON answer that lists the job (PostgreSQL takes them), so the
        # database refuses them too; `jobs.validate_job` says so first, with a message.
        constraints = [
            models.CheckConstraint(condition=models.Q(**{f"{name}__gte": -FINITE, f"{name}__lte": FINITE}),
                                   name=f"generationjob_{name}_finite")
            for name in FLOAT_PARAMETERS
        ]

    def __str__(self) -> str:
        # A halftone job has no prompt: it is named by its engine (the admin listed it as `#1 '' (done)`).
        what = repr(self.prompt.text[:40]) if self.prompt.text else f"{self.get_engine_display().lower()} engine"
        return f"#{self.pk} {what} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def content_caption(self) -> str:
        """Its content as a short caption shows it: a web address without its leading "https://" or "http://". Only
        the leading one: the template's `cut` took every one, so "…/login?next=https://…" showed as "…?next=…"."""
        return re.sub(r"^https?://", "", self.content, flags=re.IGNORECASE)

    @property
    def result_warns(self) -> bool:
        """Whether the result message is a warning rather than good news: nothing scans, the halftone engine said
        the picture fought the code (its codes scan, but keep little of the picture), or the tiny test model drew
        noise."""
        return not self.scannable or self.picture_fights or self.tiny_model

    @property
    def working_seconds(self) -> float | None:
        """How long the job itself worked: drawing and checking its candidates, not `total_seconds`, which counts from
        when it was queued (a job behind others "took" their time too). None until it has done both."""
        if self.generation_seconds is None or self.scoring_seconds is None:
            return None
        return self.generation_seconds + self.scoring_seconds

    def top_candidates(self, count: int = 4):
        return self.candidates.order_by("rank")[:count]


def candidate_upload_to(candidate: Candidate, filename: str) -> str:
    return f"generations/{candidate.job_id}/{filename}"


class Candidate(models.Model):
    team_paths = ('job__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    class Verdict(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="candidates")
    index = models.PositiveSmallIntegerField()
    batch = models.PositiveSmallIntegerField(default=0)
    seed = models.BigIntegerField()
    # Indexed: the media view finds the candidate that owns a requested file by its name.
    image = models.ImageField(upload_to=candidate_upload_to, db_index=True)
    scan_probability = models.FloatField()
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    decoded_text = models.TextField(blank=True)
    misread = models.BooleanField(default=False)
    aesthetic_score = models.FloatField(null=True, blank=True)
    rank = models.PositiveSmallIntegerField(null=True, blank=True)
    repaired = models.BooleanField(default=False)
    pixels_changed = models.FloatField(null=True, blank=True, help_text="Fraction of pixels repair changed")
    ssim = models.FloatField(null=True, blank=True, help_text="SSIM to the unrepaired image")
    # {"features", "grades", "reasons", "seconds"} of the verification that gave the verdict
    scan_details = models.JSONField(default=dict, blank=True)
    # Which decision model judged it (decision.DecisionModel.id): a candidate judged by another model than the active
    # one is verified again before it becomes artwork (generator.verifier_models.current_verdict). Empty: judged
    # before models were recorded.
    verifier_model = models.CharField(max_length=64, blank=True)
    # The halftone engine: which variant made it, and how faithful it is to the uploaded picture.
    variant = models.CharField(max_length=120, blank=True, help_text="Engine variant, e.g. 'centre 0.33, dots'")
    fidelity_ssim = models.FloatField(null=True, blank=True,
                                      help_text="SSIM to the input picture outside the constrained module centres")
    color_error = models.FloatField(null=True, blank=True,
                                    help_text="Mean colour error (0-255) to the input outside the module centres")

    class Meta:
        ordering = ["job", "rank"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="unique_candidate_index")]

    def __str__(self) -> str:
        # Numbered by rank, as the pages number candidates ("candidate #1"); the drawing order is an internal index.
        number = f"#{self.rank}" if self.rank else f"{self.index} (not ranked yet)"
        return f"Generation #{self.job_id}, candidate {number} ({self.verdict})"

    @property
    def looks_out_of_ten(self) -> float | None:
        """The aesthetic score as pages show it, "n / 10": the predictor's regression can land a little outside its
        1-10 scale (the tiny test model's often does), and "-0.2 / 10" reads as a fault. Ranking uses the raw score."""
        return None if self.aesthetic_score is None else min(max(self.aesthetic_score, 0.0), 10.0)


class LabelingSession(models.Model):
    """A sitting in which people tried to scan candidates (or printed codes) with their phones."""

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="labeling_sessions")
    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="labeling_sessions")
    created = models.DateTimeField(auto_now_add=True)
    # How large the codes were shown: a code that scans at 600 px may not at 150 px.
    display_size_px = models.PositiveIntegerField(null=True, blank=True, help_text="On-screen size in pixels")
    candidates = models.ManyToManyField(Candidate, blank=True, related_name="labeling_sessions")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name


def labeling_token() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, 72 bits: unguessable, and short enough for a small code


class LabelingItem(models.Model):
    """One candidate's turn in a labeling session, with its own one-time link `/l/<token>`.

    The labeling page shows the candidate re-rendered so that its code carries this link; the first phone that
    opens the link records a HumanScanResult and the page moves on by itself.
    """

    team_paths = ('session__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    session = models.ForeignKey(LabelingSession, on_delete=models.CASCADE, related_name="items")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="labeling_items")
    position = models.PositiveIntegerField(default=0)
    token = models.CharField(max_length=32, unique=True, default=labeling_token)
    # The candidate re-rendered to carry /l/<token>; empty when it could not be (then only buttons record).
    image = models.ImageField(upload_to="labeling/", null=True, blank=True)
    shown_at = models.DateTimeField(null=True, blank=True)
    hit_at = models.DateTimeField(null=True, blank=True)
    hit_user_agent = models.TextField(blank=True)
    # Who had the item on screen when its clock started: a phone's hit carries no session, so it is credited to
    # them (the session's creator when nobody is recorded).
    shown_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="labeling_items_shown")
    result = models.OneToOneField("HumanScanResult", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="labeling_item")

    class Meta:
        ordering = ["session", "position"]
        constraints = [models.UniqueConstraint(fields=["session", "candidate"], name="unique_labeling_item")]

    def __str__(self) -> str:
        return f"{self.session} #{self.position} (candidate {self.candidate_id})"


class HumanScanResult(models.Model):
    """One person's attempt to scan one image with one phone and app: the ground truth for the verifier."""

    team_paths = ('session__team', 'candidate__job__team')  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    session = models.ForeignKey(LabelingSession, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="results")
    # The admin refuses to delete a job or candidate people labelled (`generator.admin.KeepsPrintedArtwork`): labels
    # are the verifier's only ground truth. A team or session deleted as a whole, or a retried job's partial
    # candidates, take theirs along.
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="human_scans")
    # Labels imported from a spreadsheet name an image file that may not be a stored candidate.
    image_name = models.CharField(max_length=255, blank=True)
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="human_scans")
    device = models.CharField(max_length=80, blank=True, help_text="Phone model, e.g. 'iPhone 13'")
    app = models.CharField(max_length=80, blank=True, help_text="Scanning app, e.g. 'iOS Camera'")
    scanned = models.BooleanField()
    seconds = models.FloatField(null=True, blank=True, help_text="Time until the phone read it")
    aesthetic_vote = models.SmallIntegerField(null=True, blank=True, choices=[(-1, "worse"), (0, "same"),
                                                                              (1, "better")])
    notes = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def clean(self) -> None:
        # A label of nothing ("candidate None: not scanned") teaches the verifier nothing and only skews the counts.
        if self.candidate_id is None and not self.image_name.strip():
            raise ValidationError("Choose the candidate that was scanned, or give the image's file name.")

    def __str__(self) -> str:
        subject = self.image_name or f"candidate {self.candidate_id}"
        return f"{subject}: {'scanned' if self.scanned else 'not scanned'} ({self.device or 'unknown device'})"


class EvalRun(models.Model):
    """A parameter sweep: every (prompt, content, configuration) of a grid, generated on the GPU workers."""

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    name = models.CharField(max_length=120)
    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="eval_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="eval_runs")
    created = models.DateTimeField(auto_now_add=True)
    # The swept parameters, {"conditioning_scale": [1.0, 1.3], "control_start": [0, 0.15]}, and the fixed ones
    # every sample shares (GenerationJob field names: steps, scheduler, size, candidates_per_batch, ...).
    grid = models.JSONField(default=dict)
    base_params = models.JSONField(default=dict, blank=True)
    candidates_per_sample = models.PositiveSmallIntegerField(default=8)
    code_version = models.CharField(max_length=64, blank=True, help_text="git commit the run started from")
    engine_label = models.CharField(max_length=300, blank=True, help_text="Model ids the workers reported")
    notes = models.TextField(blank=True)


    class Meta:
        ordering = ["-created"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_eval_run_name")]

    def __str__(self) -> str:
        return self.name


class EvalSample(models.Model):
    """One (prompt, content, configuration) of a sweep: one GenerationJob, and a copy of its results."""

    team_paths = ('run__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="samples")
    prompt = models.TextField()
    content = models.TextField()
    config = models.JSONField(default=dict, help_text="The swept values of this sample")
    config_key = models.CharField(max_length=300, help_text="Canonical text of `config`, for grouping")
    job = models.ForeignKey(GenerationJob, on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="eval_samples")
    status = models.CharField(max_length=16, choices=GenerationJob.Status.choices,
                              default=GenerationJob.Status.QUEUED, db_index=True)
    # Copied from the job when it finishes, so a report never depends on jobs or images still existing:
    # [{"index", "seed", "scan_probability", "verdict", "aesthetic_score", "misread", "image"}, ...]
    scores = models.JSONField(default=list, blank=True)
    generation_seconds = models.FloatField(null=True, blank=True)
    scoring_seconds = models.FloatField(null=True, blank=True)
    total_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "prompt", "content", "config_key"],
                                               name="unique_eval_sample")]

    def __str__(self) -> str:
        return f"{self.run} {self.config_key} {self.prompt[:30]!r}"

    def record(self, job: GenerationJob) -> None:
        """Copy a finished job's status, timings and every candidate's scores onto this sample."""
        self.status = job.status
        self.error = job.error
        self.generation_seconds = job.generation_seconds
        self.scoring_seconds = job.scoring_seconds
        self.total_seconds = job.total_seconds
        self.finished = job.finished
        self.scores = [
            {"index": c.index, "batch": c.batch, "seed": c.seed, "scan_probability": c.scan_probability,
             "verdict": c.verdict, "aesthetic_score": c.aesthetic_score, "misread": c.misread,
             "repaired": c.repaired, "image": c.image.name}
            for c in job.candidates.order_by("index")
        ]
        self.save()


class GenerationPreset(models.Model):
    """A team's named generation parameters; the default one fills the generation page's form."""

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, related_name="generation_presets")
    name = models.CharField(max_length=120)
    # GenerationJob field names and values: {"conditioning_scale": 1.3, "control_start": 0.15, ...}
    params = models.JSONField(default=dict)
    is_default = models.BooleanField(default=False)
    source_run = models.ForeignKey(EvalRun, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="presets", help_text="The sweep that justified it")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="generation_presets")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "-created"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_preset_name"),
            models.UniqueConstraint(fields=["team"], condition=models.Q(is_default=True),
                                    name="one_default_preset_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.name}"


class VerifierModel(models.Model):
    """A decision model of the scan verifier, fitted by `qart_calibrate` to people's labels, with its figures.

    Global, not a team's: the active one (at most one) judges every team's candidates, so only a superuser activates
    one (`generator.verifier_models`). With none active the shipped `decision.DEFAULT_MODEL` judges.
    """

    model_id = models.CharField(max_length=64, db_index=True, help_text="scan.DecisionModel.id: form and weights' hash")
    form = models.CharField(max_length=32, help_text="The feature set and rule the weights belong to")
    bias = models.FloatField()
    # [[feature name, weight], ...] in the fitted order: a list, since PostgreSQL's jsonb does not keep key order.
    weights = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="verifier_models")
    created = models.DateTimeField(auto_now_add=True)
    source = models.TextField(blank=True, help_text="Which labels it was fitted to: sessions, a CSV file, a folder")
    labels = models.JSONField(default=list, blank=True, help_text="Each label used: a result id or an image name")
    label_count = models.PositiveIntegerField(default=0)
    scanned_count = models.PositiveIntegerField(default=0, help_text="Labels where the phone read the code")
    # calibration.Calibration.to_dict(): {"current": {...}, "cross_validated": {...}, "folds", "threshold", ...}
    figures = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    activated_at = models.DateTimeField(null=True, blank=True)  # when it began judging this time (or again)

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                               name="one_active_verifier_model")]

    def __str__(self) -> str:
        return f"{self.model_id}{' (active)' if self.is_active else ''}"

    @property
    def not_scanned_count(self) -> int:
        return self.label_count - self.scanned_count


class VerifierActivation(models.Model):
    """One activation of a verifier model, kept in order: `verifier_models.rollback` undoes the latest one not yet
    undone, and the model of the one before it judges again (the shipped default when none is left). A model
    activated twice has two; a model a live activation names is not deleted (the admin refuses)."""

    model = models.ForeignKey(VerifierModel, on_delete=models.CASCADE, related_name="activations")
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    activated_at = models.DateTimeField(default=timezone.now)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    undone_at = models.DateTimeField(null=True, blank=True, help_text="When a rollback undid it (empty: it stands)")

    class Meta:
        ordering = ["-activated_at", "-pk"]

    def __str__(self) -> str:
        undone = " (rolled back)" if self.undone_at else ""
        return f"{self.model.model_id} activated {self.activated_at:%Y-%m-%d %H:%M}{undone}"
