"""REST API for campaigns and placements.

Access follows `qartsite.api`: every queryset is narrowed with `.for_user(user)`, so another team's object
answers 404 (never a 403 that confirms it exists); members read; owners and editors change; viewers get 403.

DELETE never deletes: printed codes cannot be re-printed, so a campaign is archived and a placement switched off
(`active: false`), and the answer (200) is the object as it now is. Their codes keep redirecting, to the campaign's
`fallback_url` when set, and keep counting; PATCH `archived: false` / `active: true` brings them back.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import stats
from campaigns.models import Campaign, Placement
from generator.models import Candidate
from qartsite.access import require_editor
from qartsite.api import (
    ScopedField,
    TeamRolePermission,
    model_errors_as_400,
    request_user,
    team_for_create,
    user_objects,
    user_teams,
)


class CampaignSerializer(serializers.ModelSerializer):
    team = ScopedField(user_teams, required=False,
                       help_text="Defaults to your team when you can edit in exactly one.")

    class Meta:
        model = Campaign
        fields = ["id", "team", "name", "destination", "fallback_url", "starts_on", "ends_on", "utm_source",
                  "utm_medium", "utm_campaign", "archived", "created"]
        read_only_fields = ["created"]

    def validate(self, attrs: dict) -> dict:
        user = request_user(self.context.get("request"))
        if self.instance is None:
            attrs["team"] = team_for_create(user, attrs.get("team"))
        elif "team" in attrs and attrs["team"] != self.instance.team:
            raise serializers.ValidationError({"team": ["A campaign stays in the team that made it."]})
        starts = attrs.get("starts_on", getattr(self.instance, "starts_on", None))
        ends = attrs.get("ends_on", getattr(self.instance, "ends_on", None))
        if starts and ends and ends < starts:
            raise serializers.ValidationError({"ends_on": ["The campaign cannot end before it starts."]})
        return attrs


class CampaignFilter(filters.FilterSet):
    team = filters.ModelChoiceFilter(queryset=user_teams)

    class Meta:
        model = Campaign
        fields = ["team", "archived"]


class CampaignViewSet(viewsets.ModelViewSet):
    """Your teams' campaigns. Creating one needs editor rights in its team."""

    serializer_class = CampaignSerializer
    permission_classes = [permissions.IsAuthenticated, TeamRolePermission]
    filterset_class = CampaignFilter
    ordering_fields = ["name", "created", "starts_on", "ends_on"]
    team_path = "team"

    def get_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.for_user(self.request.user)

    def perform_create(self, serializer) -> None:
        with model_errors_as_400("destination"):
            serializer.save()

    def perform_update(self, serializer) -> None:
        with model_errors_as_400("destination"):
            serializer.save()

    @extend_schema(responses={200: CampaignSerializer}, description=(
        "Archives the campaign; nothing is deleted. Its printed codes keep redirecting (to `fallback_url` when set, "
        "else to `destination`) and keep counting. Answers the archived campaign; PATCH `{\"archived\": false}` "
        "brings it back. Archived campaigns stay listed with `archived: true` (`?archived=false` leaves them out)."))
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        campaign = self.get_object()  # viewers get 403 here (TeamRolePermission)
        campaign.set_archived(True)
        return Response(self.get_serializer(campaign).data)


# --- Placements ------------------------------------------------------------------------------------------------


class PlacementSerializer(serializers.ModelSerializer):
    campaign = ScopedField(user_objects(Campaign))
    artwork = ScopedField(user_objects(Candidate), required=False, allow_null=True,
                          help_text="A generated candidate of the campaign's team.")
    artwork_image = serializers.ImageField(source="artwork.image", read_only=True, allow_null=True)
    short_url = serializers.SerializerMethodField(help_text="The link the printed code carries.")
    destination = serializers.URLField(read_only=True, help_text=(
        "Where scans lead now: while the placement is active and its campaign not archived, the override, else the "
        "campaign's destination; otherwise the campaign's fallback_url, else its destination."))

    class Meta:
        model = Placement
        fields = ["id", "campaign", "name", "kind", "location", "latitude", "longitude", "printed_quantity",
                  "deployed_on", "notes", "active", "slug", "short_url", "destination_override", "destination",
                  "artwork", "artwork_image", "created"]
        read_only_fields = ["slug", "created"]

    def get_short_url(self, placement: Placement) -> str:
        return placement.short_url(self.context["request"])

    def validate_campaign(self, campaign: Campaign) -> Campaign:
        require_editor(request_user(self.context.get("request")), campaign.team)
        return campaign

    def validate(self, attrs: dict) -> dict:
        campaign = attrs.get("campaign") or self.instance.campaign
        artwork = attrs.get("artwork", getattr(self.instance, "artwork", None))
        if artwork is not None and artwork.job.team_id != campaign.team_id:
            raise serializers.ValidationError({"artwork": ["Choose an image your campaign's team generated."]})
        return attrs


class PlacementFilter(filters.FilterSet):
    campaign = filters.ModelChoiceFilter(queryset=user_objects(Campaign))
    archived = filters.BooleanFilter(field_name="campaign__archived", help_text="Whether the campaign is archived")

    class Meta:
        model = Placement
        fields = ["campaign", "archived", "active", "kind"]


class CountSerializer(serializers.Serializer):
    key = serializers.CharField(help_text='A device class or an OS family; "Unknown" when not recorded')
    count = serializers.IntegerField()


class DayCountSerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()


class ScanSummarySerializer(serializers.Serializer):
    placement = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Scans by people (bots and link previews left out), ever")
    last_7_days = serializers.IntegerField(help_text="Scans by people in the last 7 x 24 hours")
    by_day = DayCountSerializer(many=True, help_text=f"The last {stats.CHART_DAYS} days, oldest first, ending today")
    by_device = CountSerializer(many=True)
    by_os = CountSerializer(many=True)


def scan_summary(placement: Placement) -> dict:
    """Scan counts for a placement, people only (see `campaigns.stats`)."""
    one = Placement.objects.filter(pk=placement.pk)
    counted = stats.with_scan_counts(one).get()
    daily = stats.daily_counts(one)
    return {
        "placement": placement.pk,
        "total": counted.total_scans,
        "last_7_days": counted.recent_scans,
        "by_day": [{"day": day, "count": count} for day, count in zip(daily.days, daily.counts[placement.pk],
                                                                        strict=True)],
        "by_device": [{"key": key, "count": count} for key, count in stats.breakdown(one, "device_class")],
        "by_os": [{"key": key, "count": count} for key, count in stats.breakdown(one, "os")],
    }


class PlacementViewSet(viewsets.ModelViewSet):
    """Your teams' placements: each printed code, with its own short link."""

    serializer_class = PlacementSerializer
    permission_classes = [permissions.IsAuthenticated, TeamRolePermission]
    filterset_class = PlacementFilter
    ordering_fields = ["name", "created", "kind", "deployed_on"]
    team_path = "campaign.team"

    def get_queryset(self) -> QuerySet[Placement]:
        return Placement.objects.for_user(self.request.user).select_related("campaign", "artwork")

    def perform_create(self, serializer) -> None:
        with model_errors_as_400("destination_override"):
            serializer.save()

    def perform_update(self, serializer) -> None:
        with model_errors_as_400("destination_override"):
            serializer.save()

    @extend_schema(responses={200: PlacementSerializer}, description=(
        "Switches the placement off (`active: false`); nothing is deleted. Its printed code keeps redirecting, to the "
        "campaign's `fallback_url` when set, else to its destination, and keeps counting. Answers the placement; PATCH "
        "`{\"active\": true}` switches it on again."))
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        placement = self.get_object()  # viewers get 403 here (TeamRolePermission)
        placement.set_active(False)
        return Response(self.get_serializer(placement).data)

    @extend_schema(responses=ScanSummarySerializer, filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    # `format`: the router also routes scans.json / scans.api here (format suffixes).
    def scans(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """Scan counts by day, device class and OS (bots and link previews left out)."""
        return Response(ScanSummarySerializer(scan_summary(self.get_object())).data)
