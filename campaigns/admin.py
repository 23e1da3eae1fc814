from __future__ import annotations

from django.contrib import admin

from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.admin import TeamScopedAdmin, TeamScopedInline


class PlacementInline(TeamScopedInline):
    model = Placement
    extra = 0
    fields = ("name", "kind", "location", "active", "slug")
    readonly_fields = ("slug",)


@admin.register(Campaign)
class CampaignAdmin(TeamScopedAdmin):
    list_display = ("name", "team", "destination", "starts_on", "ends_on", "archived", "created")
    list_filter = ("archived", "team")
    search_fields = ("name", "destination", "team__name")
    inlines = [PlacementInline]


@admin.register(Placement)
class PlacementAdmin(TeamScopedAdmin):
    list_display = ("name", "campaign", "kind", "location", "slug", "active", "deployed_on")
    list_filter = ("kind", "active", "campaign__team")
    search_fields = ("name", "location", "slug", "campaign__name")
    readonly_fields = ("slug", "created")
    raw_id_fields = ("artwork",)
    list_select_related = ("campaign",)


@admin.register(ScanEvent)
class ScanEventAdmin(TeamScopedAdmin):
    list_display = ("time", "placement", "device_class", "os", "browser", "country", "is_bot")
    list_filter = ("is_bot", "device_class", "os", "country")
    search_fields = ("placement__slug", "placement__name")
    date_hierarchy = "time"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
