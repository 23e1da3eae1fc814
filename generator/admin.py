from __future__ import annotations

import copy

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.forms.models import construct_instance
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.views.decorators.http import require_POST

from generator import job_parameters, verifier_models
from generator.core.codes import decision
from generator.evals import label_csv, sessions
from generator.forms import bounds_kwargs, field_for_message, range_kwargs
from generator.models import (
    Candidate,
    EvalRun,
    EvalSample,
    GenerationJob,
    GenerationPreset,
    HumanScanResult,
    LabelingItem,
    LabelingSession,
    Prompt,
    VerifierModel,
)
from qartsite import form_fields
from qartsite.access import require_editor
from qartsite.admin_columns import ClippedColumns, clipped
from qartsite.models import Team
from qartsite.scoped_admin import PlainFields, SuperusersOnlyFields, TeamScopedAdmin, TeamScopedInline, visible_to


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


@admin.register(LabelingSession)
class LabelingSessionAdmin(ClippedColumns, TeamScopedAdmin):
    list_display = ("name_cell", "team", "created_by_cell", "display_size_px", "created")
    list_select_related = ("team", "created_by")  # the clipped columns' rows, one query for the page
    list_filter = ("team",)
    search_fields = ("name", "notes", "created_by__username")
    raw_id_fields = ("candidates",)  # every candidate of the team's jobs, eight more a job, as a two-list picker
    readonly_fields = ("created",)

    def delete_model(self, request, obj) -> None:
        sessions.delete_sessions(LabelingSession.objects.filter(pk=obj.pk))  # with a label written at that moment

    def delete_queryset(self, request, queryset) -> None:
        sessions.delete_sessions(queryset)


@admin.register(HumanScanResult)
class HumanScanResultAdmin(ClippedColumns, TeamScopedAdmin):
    # The session is a filter of this list, not a column: with it, the label's candidate and image name in two
    # columns, the list was ~240 px too wide for a 1280 px window.
    list_display = ("id", "image_cell", "labeler_cell", "device", "app", "scanned", "seconds", "aesthetic_vote",
                    "created")
    list_filter = ("scanned", "device", "app", "session")
    search_fields = ("image_name", "device", "app", "notes", "labeler__username")
    raw_id_fields = ("candidate",)
    readonly_fields = ("created",)
    actions = ["export_csv"]

    def get_queryset(self, request):
        # A result reaches a team through its session or through its candidate's job (team_paths); either will do.
        return super().get_queryset(request).select_related("candidate", "labeler", "session")

    @admin.display(description="image", ordering="image_name")
    def image_cell(self, obj: HumanScanResult) -> str | None:
        """What was scanned: the image's file name, else its candidate (as the label names itself)."""
        return clipped(obj.image_name or obj.candidate)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        item = sessions.attach_to_item(obj)
        if item is not None:
            self.message_user(request, f"It answers the session's item {item}: the session counts it as labelled.")

    @admin.action(description="Export selected results as CSV")
    def export_csv(self, request, queryset) -> HttpResponse:
        # The charset said, as the other CSV exports do: notes and names in any script are written as UTF-8.
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="human-scan-results.csv"'
        label_csv.export_csv(queryset.select_related("candidate", "labeler"), response)
        return response


@admin.register(LabelingItem)
class LabelingItemAdmin(ClippedColumns, SuperusersOnlyFields, TeamScopedAdmin):
    list_display = ("session_cell", "position", "candidate_cell", "shown_at", "hit_at", "result_cell")
    list_select_related = ("session", "candidate", "result")
    list_filter = ("session",)
    raw_id_fields = ("candidate", "result")
    readonly_fields = ("token", "shown_at", "hit_at", "hit_user_agent", "image")  # the labeling flow stores the image

    # What holds the key of the item's one-time link (/l/<token>): the token, and the image, which is that link drawn
    # as a code (`evals.sessions.render_item`): any phone that scans it reads the token. Whoever holds the token
    # records the item's scan, a label the verifier learns from: only a superuser reads it here.
    superusers_only = ("token", "image")


class EvalSampleInline(TeamScopedInline):
    model = EvalSample
    extra = 0
    can_delete = False
    fields = ("config_key", "prompt", "content", "status", "total_seconds")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EvalRun)
class EvalRunAdmin(ClippedColumns, TeamScopedAdmin):
    list_display = ("name_cell", "team", "created_by_cell", "candidates_per_sample", "code_version_cell", "created")
    list_select_related = ("team", "created_by")
    search_fields = ("name", "notes")
    readonly_fields = ("created", "code_version", "engine_label")
    inlines = [EvalSampleInline]


@admin.register(EvalSample)
class EvalSampleAdmin(ClippedColumns, TeamScopedAdmin):
    """Read-only: a sample is a measurement the sweep wrote (its `scores` name image files the reports open)."""

    list_display = ("run_cell", "config_key_cell", "prompt", "content_cell", "status", "total_seconds")
    list_select_related = ("run",)
    list_filter = ("status", "run")
    readonly_fields = [field.name for field in EvalSample._meta.fields if field.name != "id"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(GenerationPreset)
class GenerationPresetAdmin(ClippedColumns, TeamScopedAdmin):
    list_display = ("name_cell", "team", "is_default", "source_run_cell", "created")
    list_select_related = ("team", "source_run")
    list_filter = ("team", "is_default")
    raw_id_fields = ("source_run",)


def figure(value) -> str:
    return "—" if value is None else f"{value:.3f}"


@admin.register(VerifierModel)
class VerifierModelAdmin(PlainFields, admin.ModelAdmin):
    """Global, not a team's: the active model judges every team's candidates (`qartsite.admin` lists the admins
    that are not team-scoped). Staff read every model and its figures; only superusers activate one or roll back,
    by POST (the admin's CSRF check); a staff member who tries gets one message saying so. Models are made by
    `manage.py qart_calibrate`, never here."""

    list_display = ("model_id", "is_active", "label_count", "scanned_count", "cross_validated_balanced_accuracy",
                    "current_balanced_accuracy", "created_by", "created", "activated_by", "activated_at")
    list_filter = ("is_active", "form")
    fields = ("model_id", "form", "bias", "weights", "is_active", "activated_by", "activated_at", "created_by",
              "created", "source", "label_count", "scanned_count", "figures", "labels")
    readonly_fields = fields
    actions = ["activate", "activate_anyway"]
    change_list_template = "admin/generator/verifiermodel/change_list.html"

    # What a model was fitted to names the labelling sessions and images of every team whose labels it used: for
    # superusers only (the figures are everyone's). Not shown, and not filterable either (a row shown or not for
    # `?labels__icontains=` would name them one guess at a time).
    SUPERUSER_FIELDS = frozenset({"source", "labels"})

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if request.user.is_superuser else [f for f in fields if f not in self.SUPERUSER_FIELDS]

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        if (request is None or not request.user.is_superuser) and lookup.split("__")[0] in self.SUPERUSER_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting the active model would silently hand judging back to the shipped one, and deleting one a rollback
        # may return to would skip it: roll back past it first.
        return request.user.is_superuser and not (obj is not None and verifier_models.in_use(obj))

    @admin.display(description="balanced accuracy (cross-validated)")
    def cross_validated_balanced_accuracy(self, obj: VerifierModel) -> str:
        return figure((obj.figures or {}).get("cross_validated", {}).get("balanced_accuracy"))

    @admin.display(description="balanced accuracy of the model it was compared with")
    def current_balanced_accuracy(self, obj: VerifierModel) -> str:
        return figure((obj.figures or {}).get("current", {}).get("balanced_accuracy"))

    @admin.action(description="Activate the selected model (every team's jobs will use it)")
    def activate(self, request, queryset, force: bool = False) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to activate.", messages.ERROR)
            return
        row = queryset.get()
        try:
            verifier_models.activate(row, request.user, force=force)
        except (PermissionDenied, ValueError) as exc:
            few = not force and request.user.is_superuser and verifier_models.activation_refusal(row)
            hint = " “Activate anyway” activates it on purpose." if few else ""
            self.message_user(request, f"{exc}{hint}", messages.ERROR)
            return
        self.message_user(request, f"Activated {row.model_id}: every team's jobs use it from their next start.",
                          messages.SUCCESS)

    @admin.action(description="Activate anyway (fitted on few labels)")
    def activate_anyway(self, request, queryset) -> None:
        self.activate(request, queryset, force=True)

    def get_urls(self):
        rollback = self.admin_site.admin_view(require_POST(self.rollback_view))
        return [path("rollback/", rollback, name="generator_verifiermodel_rollback"), *super().get_urls()]

    def rollback_view(self, request) -> HttpResponse:
        try:
            restored = verifier_models.rollback(request.user)
        except (PermissionDenied, ValueError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            now = restored.model_id if restored is not None else "The shipped default model"
            self.message_user(request, f"Rolled back: {now} judges again.", messages.SUCCESS)
        return redirect("admin:generator_verifiermodel_changelist")

    def changelist_view(self, request, extra_context=None):
        active = verifier_models.active_row()
        extra_context = {**(extra_context or {}), "active_model": active,
                         "shipped_model": decision.MODEL, "can_roll_back": request.user.is_superuser,
                         "rolls_back_to": verifier_models.rollback_target() if active else None,
                         "history": verifier_models.history()}
        return super().changelist_view(request, extra_context)
