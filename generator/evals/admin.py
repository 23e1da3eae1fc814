"""The admin of the evals' records: labeling sessions, their items and human scan labels (the CSV export of labels
too), sweeps' runs and samples, and the presets a run hands back to generation. Registered when `generator.admin`
imports it (Django imports each app's `admin` module only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponse

from generator.evals import label_csv, sessions
from generator.models import EvalRun, EvalSample, GenerationPreset, HumanScanResult, LabelingItem, LabelingSession
from qartsite.admin_columns import ClippedColumns, clipped
from qartsite.scoped_admin import SuperusersOnlyFields, TeamScopedAdmin, TeamScopedInline


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
