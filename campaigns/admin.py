from __future__ import annotations

from django.contrib import admin

from campaigns.models import Campaign, Placement, ScanEvent


class PlacementInline(admin.TabularInline):
    model = Placement
    extra = 0
    fields = ("name", "kind", "location", "active", "slug")
    readonly_fields = ("slug",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "destination", "starts_on", "ends_on", "archived", "created")
    list_filter = ("archived", "team")
    search_fields = ("name", "destination", "team__name")
    inlines = [PlacementInline]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.for_user(request.user)


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ("name", "campaign", "kind", "location", "slug", "active", "deployed_on")
    list_filter = ("kind", "active", "campaign__team")
    search_fields = ("name", "location", "slug", "campaign__name")
    readonly_fields = ("slug", "created")
    raw_id_fields = ("artwork",)

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("campaign")
        return qs if request.user.is_superuser else qs.for_user(request.user)


@admin.register(ScanEvent)
class ScanEventAdmin(admin.ModelAdmin):
    list_display = ("time", "placement", "device_class", "os", "browser", "country", "is_bot")
    list_filter = ("is_bot", "device_class", "os", "country")
    search_fields = ("placement__slug", "placement__name")
    date_hierarchy = "time"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("placement")
        return qs if request.user.is_superuser else qs.filter(placement__in=Placement.objects.for_user(request.user))
