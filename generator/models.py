"""The generator app's records, for generation and for the evals.

Django loads the app's models from here, and other modules import every one of them from here. By subject, what a
generation makes is defined in `generation_models` (`Prompt`, `GenerationJob`, `Candidate`) and what the evals record
in `eval_models` (`LabelingSession`, `LabelingItem`, `HumanScanResult`, `EvalRun`, `EvalSample`). Defined here is what
the evals hand back to generation: `GenerationPreset` (a team's default settings, chosen from a sweep) and
`VerifierModel` with its `VerifierActivation`s (the scan verifier's decision model fitted to people's labels; global,
not a team's).
Every team-owned model answers `objects.for_user(user)` (`qartsite.models.TeamOwnedQuerySet`).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

# Django registers the app's models as it imports these: generation's first (`eval_models` imports them), then the
# evals', then those below, the order they always had: a model's reverse relations, and so the order of a cascade's
# deletes, follow it.
from generator.eval_models import EvalRun, EvalSample, HumanScanResult, LabelingItem, LabelingSession  # noqa: F401
from generator.generation_models import Candidate, GenerationJob, Prompt  # noqa: F401
from qartsite.models import TeamOwnedQuerySet


class GenerationPreset(models.Model):
    """A team's named generation parameters; the default one fills the generation page's form."""

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    team = models.ForeignKey("qartsite.Team", on_delete=models.CASCADE, related_name="generation_presets")
    name = models.CharField(max_length=120)
    # GenerationJob field names and values: {"conditioning_scale": 1.3, "control_start": 0.15, ...}; {} sets none,
    # the app's own defaults (a sweep's base configuration without fixed parameters is stored so).
    params = models.JSONField(default=dict, blank=True)
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

    PARAMS_NOT_AN_OBJECT = ('Give the parameters as a JSON object of generation settings by name, such as '
                            '{"steps": 30}; {} sets none (the app\'s defaults).')

    def __str__(self) -> str:
        return f"{self.team}: {self.name}"

    def clean(self) -> None:
        # An emptied box (the admin's) is no parameters, not a NULL the database refuses; anything but an object was
        # stored as it was, and the generation page, which reads parameters by name, failed for the whole team.
        if self.params is None:
            self.params = {}
        if not isinstance(self.params, dict):
            raise ValidationError({"params": self.PARAMS_NOT_AN_OBJECT})


class VerifierModel(models.Model):
    """A decision model of the scan verifier, fitted by `qart_calibrate` to people's labels, with its figures.

    Global, not a team's: the active one (at most one) judges every team's candidates, so only a superuser activates
    one (`generator.verifier_models`). With none active the shipped `decision.DEFAULT_MODEL` judges.
    """

    model_id = models.CharField(max_length=64, db_index=True,
                                help_text="decision.DecisionModel.id: form and weights' hash")
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
