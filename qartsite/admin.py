from __future__ import annotations

from django.contrib import admin

from qartsite.models import Invitation, Membership, Team


class TeamScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see only their teams' rows, as in pages and the API."""

    team_path = "team"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.team_path}__in": Team.for_user(request.user)})


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created")
    search_fields = ("name",)
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "team", "role", "created", "accepted")
    list_filter = ("role",)
    search_fields = ("email", "team__name")
    readonly_fields = ("token",)
