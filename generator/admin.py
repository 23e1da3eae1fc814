"""The admin of generation: prompts, jobs and their candidates (the artwork a placement printed kept from deletion).
The evals' records have theirs in `generator.evals.admin`, the verifier's models in `generator.verifier_admin`;
both are imported here, since Django imports each app's `admin` module only."""

from __future__ import annotations

import copy

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.forms.models import construct_instance
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst

from generator import job_parameters, verifier_admin  # noqa: F401 (registers the verifier's models)
from generator.evals import admin as evals_admin  # noqa: F401 (registers the evals' records)
from generator.evals import sessions
from generator.forms import bounds_kwargs, field_for_message, range_kwargs
from generator.models import Candidate, GenerationJob, HumanScanResult, Prompt
from qartsite import form_fields
from qartsite.access import require_editor
from qartsite.admin_columns import ClippedColumns
from qartsite.models import Team
from qartsite.scoped_admin import TeamScopedAdmin, TeamScopedInline, visible_to


def thumbnail(image_field, size: int = 96) -> str:
    if not image_field:
        return "—"
    return format_html('<img src="{}" width="{}" height="{}" style="object-fit:cover;border-radius:4px">',
                       image_field.url, size, size)


@admin.register(Prompt)
class PromptAdmin(ClippedColumns, TeamScopedAdmin):
    list_display = ("text", "owner_cell", "times_used", "last_used")
    list_select_related = ("owner",)
    search_fields = ("text", "negative_text", "owner__username")
    readonly_fields = ("created", "last_used", "times_used")


HALFTONE_FIELDS = ("variant", "fidelity_ssim", "color_error")  # set by the halftone engine only


class CandidateInline(TeamScopedInline):
    model = Candidate
    extra = 0
    can_delete = False
    fields = ("preview", "rank", "verdict", "scan_probability", "aesthetic_score", "misread", "repaired", "seed",
              "variant", "fidelity_ssim", "color_error")
    readonly_fields = fields
    ordering = ("rank",)

    @admin.display(description="image")
    def preview(self, obj: Candidate) -> str:
        return thumbnail(obj.image)

    def get_fields(self, request, obj=None):
        # A diffusion job's candidates have no variant or fidelity: three empty columns would only be noise.
        if obj is not None and obj.engine != GenerationJob.Engine.HALFTONE:
            return [f for f in self.fields if f not in HALFTONE_FIELDS]
        return list(self.fields)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class KeepsPrintedArtwork:
    """Deleting a job or candidate that a placement prints as its artwork (`Placement.artwork` is RESTRICT), or that
    people labelled, is refused; the confirmation page names what keeps it and says what to do. Labels are kept here
    rather than by the database: a team deleted as a whole, or a retried job's partial candidates, take theirs
    along."""

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            # Django would list the placements as objects this user may not delete (only superusers delete
            # placements), which hides the reason. Nothing is deleted while anything is protected.
            perms_needed = set()
            protected = [format_html("{}: printed as its artwork. Choose other artwork for it first.", entry)
                         for entry in protected]
        via = "candidate__job__in" if self.model is GenerationJob else "candidate__in"
        labels = list(HumanScanResult.objects.filter(**{via: objs}).select_related("candidate"))
        if labels:
            # A job's deletion took its labels along: the verifier's only ground truth, gone in one click. Another
            # team's label (its session's) is named by its kind only, as `TeamScopedAdmin` names the rest.
            seen = {label.pk for label in labels} if request.user.is_superuser else set(
                visible_to(HumanScanResult, request.user).filter(pk__in=[label.pk for label in labels])
                .values_list("pk", flat=True))
            kind = capfirst(HumanScanResult._meta.verbose_name)
            perms_needed = set()
            protected = [*protected, *(format_html("{}: a person's scan label of it, the verifier's ground truth. "
                                                   "Delete the label first if it must go.",
                                                   label if label.pk in seen else f"{kind}: one of another team")
                                       for label in labels)]
        return to_delete, model_count, perms_needed, protected


# A job's parameters with a range in the core, each checked on its field in the core's words (`range_kwargs`), so a
# form with several values out of range says so for each at once.
JOB_RANGES = {"steps": "Steps", "guidance_scale": "Guidance scale", "conditioning_scale": "Conditioning scale",
              "control_start": "Control start", "control_end": "Control end", "size": "Size",
              "candidates_per_batch": "Candidates per batch", "seed": "Seed"}
# What `job_parameters.validate_job` reads: a change of any of them has the whole job checked again.
JOB_PARAMETERS = {*JOB_RANGES, "content", "strength", "scheduler", "max_batches", "style", "background", "ecc"}
# What a job's candidates were made from (`GenerationJobAdmin.get_readonly_fields`): its link, whose job it is, its
# engine, prompt and every generation setting.
LOCKED_ONCE_STARTED = tuple(field.name for field in GenerationJob._meta.fields
                            if field.name in {*JOB_PARAMETERS, "team", "placement", "engine", "prompt", "repair"})


def started(job: GenerationJob) -> bool:
    """Whether a worker has read the job: it is no longer queued, or it has candidates."""
    return job.status != GenerationJob.Status.QUEUED or job.candidates.exists()


class GenerationJobForm(form_fields.ModelForm):
    """The admin's job form: each range on its field, then what only the whole job can tell (size a multiple of 64,
    control start before control end, strength, the batch budget, scheduler, content, style) from
    `job_parameters.validate_job`, the check every new job passes, on the field it is about. Only when a parameter
    changed: an old job whose scheduler is no longer offered can still have its other fields edited."""

    def clean(self) -> dict:
        cleaned_data = super().clean()
        if self.errors or not JOB_PARAMETERS & set(self.changed_data):
            return cleaned_data  # one message per field: the core would only repeat the first of them
        # The job as it would be saved, on a copy: the form's own instance is built from the data after clean().
        job = construct_instance(self, copy.copy(self.instance))
        try:
            job_parameters.validate_job(job)
        except ValueError as exc:  # qr.ContentError is one
            self.add_error(field_for_message(exc, self.fields), str(exc))
        return cleaned_data


@admin.register(GenerationJob)
class GenerationJobAdmin(ClippedColumns, KeepsPrintedArtwork, TeamScopedAdmin):
    # Beside its filters a 1280 px window leaves the list ~900 px: the prompt, link and owner clipped, and a job's
    # progress and timing left to its page (its status says whether it runs), else the list scrolled sideways.
    list_display = ("id", "preview", "prompt_cell", "content_cell", "status", "scannable", "owner_cell", "created")
    list_filter = ("status", "scannable", "scheduler", "engine")
    search_fields = ("prompt__text", "content", "owner__username")
    readonly_fields = ("status", "stage", "progress", "attempts", "worker_stops", "rq_job_id", "batches", "scannable",
                       "picture_fights", "tiny_model", "result_message", "error", "created", "started", "finished",
                       "queue_seconds", "generation_seconds", "scoring_seconds", "total_seconds", "model_id",
                       "controlnet_id",
                       # Stored by the app after its checks (uploads.py: capped, re-encoded): never uploaded here
                       "init_image", "logo", "control_image")
    inlines = [CandidateInline]
    form = GenerationJobForm
    list_select_related = ("prompt", "owner")
    raw_id_fields = ("placement", "prompt")  # a team's thousands: a select of every one, named one query each

    def get_readonly_fields(self, request, obj=None):
        # Once the worker has read a job (`started`), its codes hold its link and
        # were drawn from its prompt and settings: changing them here made the job page state a link they do not open.
        if obj is not None and started(obj):
            return (*LOCKED_ONCE_STARTED, *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # The row as it is now, locked until the admin's transaction commits, with only what the form changed: the
        # form's copy was read when the page was drawn, and saving it whole wrote back the status, progress and
        # result of then over whatever a worker stored since (a finished job went back to "running").
        row = GenerationJob.objects.select_for_update().get(pk=obj.pk)
        columns = {field.name for field in GenerationJob._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in columns]
        if started(row) and (late := [name for name in changed if name in LOCKED_ONCE_STARTED]):
            # Its worker took it while the page was open: its codes are being drawn from what it had.
            self.message_user(request, "The job started while this page was open: its "
                              f"{', '.join(late)} stayed as the worker read them.", messages.WARNING)
            changed = [name for name in changed if name not in late]
        for name in changed:
            attname = GenerationJob._meta.get_field(name).attname
            setattr(row, attname, getattr(obj, attname))
        super().save_model(request, row, form, change)

    def get_queryset(self, request):
        # The list's thumbnail, best candidate first, for a page of jobs in one query rather than one per row.
        return super().get_queryset(request).prefetch_related(
            Prefetch("candidates", queryset=Candidate.objects.order_by("rank"), to_attr="ranked"))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in JOB_RANGES:
            kwargs.update(range_kwargs(db_field.name, JOB_RANGES[db_field.name]))
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="best")
    def preview(self, obj: GenerationJob) -> str:
        best = next(iter(obj.ranked), None)  # prefetched by get_queryset
        return thumbnail(best.image if best else None, 56)


# A candidate's figures whose range holds by definition: a probability, a fraction of the pixels, a structural
# similarity. The aesthetic score has none (a regression head's output), nor has a seed beyond the job's own.
# (The halftone engine's fidelity and colour error are read-only here.)
FIGURE_RANGES = {"scan_probability": ("Scan probability", 0.0, 1.0), "pixels_changed": ("Pixels changed", 0.0, 1.0),
                 "ssim": ("SSIM", -1.0, 1.0)}


@admin.register(Candidate)
class CandidateAdmin(ClippedColumns, KeepsPrintedArtwork, TeamScopedAdmin):
    # All twelve columns (the halftone engine's three figures, empty for a diffusion candidate, among them) were
    # wider than the ~900 px a 1280 px window leaves beside the filters: the halftone figures are shown in a list of
    # halftone jobs' candidates (the engine's filter), in place of what only diffusion gives (an aesthetic score, a
    # repair).
    list_display = ("preview", "job_cell", "rank", "verdict", "scan_probability", "aesthetic_score", "misread",
                    "repaired", "seed")
    halftone_list_display = ("preview", "job_cell", "rank", "verdict", "scan_probability", *HALFTONE_FIELDS, "seed")
    list_filter = ("verdict", "misread", "repaired", "job__engine")
    list_select_related = ("job__prompt",)
    raw_id_fields = ("job",)
    # The image is the engine's (never uploaded here: uploads are checked and re-encoded, uploads.py)
    readonly_fields = ("large_preview", "image", *HALFTONE_FIELDS)

    def get_list_display(self, request):
        engine = request.GET.get("job__engine__exact", request.GET.get("job__engine"))
        if engine == GenerationJob.Engine.HALFTONE:
            return self.halftone_list_display
        return super().get_list_display(request)

    def get_readonly_fields(self, request, obj=None):
        # The engine measured these; they are shown for halftone candidates and hidden where empty.
        if obj is not None and obj.fidelity_ssim is None and not obj.variant:
            return ("large_preview", "image")
        return self.readonly_fields

    def get_exclude(self, request, obj=None):
        if obj is not None and obj.fidelity_ssim is None and not obj.variant:
            return HALFTONE_FIELDS
        return super().get_exclude(request, obj)
    actions = ["create_labeling_session"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in FIGURE_RANGES:
            kwargs.update(bounds_kwargs(*FIGURE_RANGES[db_field.name]))
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="image")
    def preview(self, obj: Candidate) -> str:
        return thumbnail(obj.image, 64)

    @admin.action(description="Create labeling session from selected")
    def create_labeling_session(self, request, queryset):
        teams = Team.objects.filter(pk__in=queryset.values("job__team"))
        if teams.count() != 1:
            self.message_user(request, "Select candidates of one team: a session belongs to one team.",
                              messages.ERROR)
            return None
        team = teams.get()
        try:
            require_editor(request.user, team)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        session = sessions.create_session(team, request.user, f"Selection {timezone.now():%Y-%m-%d %H:%M}",
                                                   queryset.select_related("job"), 400)
        return redirect("evals:labeling_run", pk=session.pk)

    @admin.display(description="image")
    def large_preview(self, obj: Candidate) -> str:
        return thumbnail(obj.image, 384)
