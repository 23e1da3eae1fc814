"""The admin of the verifier's decision models: every model and its figures to staff; activation and rollback to
superusers (`generator.verifier_models` does both). Registered when `generator.admin` imports it (Django imports each
app's `admin` module only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from generator import verifier_models
from generator.core.codes import decision
from generator.models import VerifierModel
from qartsite.admin_log import TeammatesInHistory
from qartsite.admin_relations import LinksThatOpen
from qartsite.scoped_admin import PlainFields, SuperusersOnlyFields


def figure(value) -> str:
    return "—" if value is None else f"{value:.3f}"


@admin.register(VerifierModel)
class VerifierModelAdmin(TeammatesInHistory, LinksThatOpen, SuperusersOnlyFields, PlainFields, admin.ModelAdmin):
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
    # `?labels__icontains=` would name them one guess at a time). Who fitted it too: `qart_calibrate --user` names
    # anyone, and staff read only their teammates' names (`qartsite.admin.TeammateUserAdmin`); who activated one is
    # a superuser, as only they activate.
    superusers_only = ("source", "labels", "created_by")

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
