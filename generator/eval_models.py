"""What the evals record (`generator.evals`): `LabelingSession` and `LabelingItem` (codes shown to phones by one-time
links), `HumanScanResult` (whether a person's phone read a code: the verifier's ground truth), `EvalRun` and
`EvalSample` (a parameter sweep and the jobs it made).

Models of the generator app, kept apart by subject: other modules import them from `generator.models`, which is
where Django loads the app's models from; so their app label, tables and admin URLs stay `generator`.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from generator.core.codes.echoes import echo
from generator.generation_models import Candidate, GenerationJob
from qartsite.models import TeamOwnedQuerySet


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
        return f"{self.run} {self.config_key} “{echo(self.prompt)}”"

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
