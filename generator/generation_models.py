"""What a generation makes: `Prompt` (prompts people reuse), `GenerationJob` (the row is the source of truth for a
job's status; RQ only carries its primary key) and `Candidate` (one image of a job, with its scan verdict and scores).

Models of the generator app, kept apart by subject: other modules import them from `generator.models`, which is
where Django loads the app's models from.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone

from generator.core.codes import qr
from generator.core.codes.echoes import echo
from qartsite.models import TeamOwnedQuerySet

# A generation's float parameters: each must be finite (job_parameters.validate_job, GenerationJob.Meta.constraints).
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
    # Runs a stop of its worker interrupted without spending an attempt (`jobs.generation_failed`): at most
    # jobs.MAX_WORKER_STOPS, so that a job no worker ever lets finish cannot come back for ever.
    worker_stops = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Runs that a stop of its worker interrupted, spending no attempt")
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
        # database refuses them too; `job_parameters.validate_job` says so first, with a message.
        constraints = [
            models.CheckConstraint(condition=models.Q(**{f"{name}__gte": -FINITE, f"{name}__lte": FINITE}),
                                   name=f"generationjob_{name}_finite")
            for name in FLOAT_PARAMETERS
        ]

    def __str__(self) -> str:
        # A halftone job has no prompt: it is named by its engine (the admin listed it as `#1 “” (done)`). A prompt of
        # another team (a row made before the admin's one-team forms) is not quoted: the name is shown wherever the job
        # is, to its own team's staff too (the admin's titles, breadcrumbs, history, delete pages and log entries). A
        # prompt of no team (a sweep's, a halftone job's) is no other team's.
        if self.prompt.team_id is not None and self.prompt.team_id != self.team_id:
            what = "a prompt of another team"
        elif self.prompt.text:
            what = f"“{echo(self.prompt.text)}”"
        else:
            what = f"{self.get_engine_display().lower()} engine"
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

    def art_code(self) -> qr.QRCode:
        """The code this candidate's picture carries: its job's text as `qr.encode` writes it, or, for a restamped
        copy (`campaigns.restamps.restamp_for`), in the version and mask its restamp kept. Re-encoded at the smallest
        version, a link in capitals that restamped art made for a longer link in byte mode measured, printed and
        restamped the art as a smaller code than it is.

        Returns:
            The `qr.QRCode`.

        Raises:
            qr.ContentError: no QR code carries the job's text.
        """
        job = self.job
        details = self.scan_details if isinstance(self.scan_details, dict) else {}
        version, mask = details.get("version"), details.get("mask")
        if not (isinstance(version, int) and isinstance(mask, int) and 1 <= version <= 40 and 0 <= mask <= 7):
            return qr.encode(job.content, ecc=job.ecc, max_version=40)
        return qr.encode(job.content, ecc=job.ecc, max_version=40, mask=mask, version=version)

    @property
    def looks_out_of_ten(self) -> float | None:
        """The aesthetic score as pages show it, "n / 10": the predictor's regression can land a little outside its
        1-10 scale (the tiny test model's often does), and "-0.2 / 10" reads as a fault. Ranking uses the raw score."""
        return None if self.aesthetic_score is None else min(max(self.aesthetic_score, 0.0), 10.0)
