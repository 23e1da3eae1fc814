"""REST API for placement alerts (`campaigns.alerts`: scans stopped or fell sharply): every member reads their
teams' alerts; owners and editors dismiss them, like the campaign page. Another team's alert, or a filter naming
another team's placement, answers like one that does not exist.
"""

from __future__ import annotations

from django.db.models import F, QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.models import Placement, PlacementAlert
from qartsite.access import require_editor
from qartsite.api import KnownFieldsOnly, no_body, user_objects
from qartsite.filters import IdFilter, TrueFalseFilter


class PlacementAlertSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    class Meta:
        model = PlacementAlert
        fields = ["id", "placement", "kind", "day", "message", "created", "dismissed_at"]
        read_only_fields = fields  # made by the daily job; the browsable API must offer no form of every placement


class PlacementAlertFilter(filters.FilterSet):
    # Scoped: Django-filter's default would check the id against every team's placements, so another team's id
    # (an empty list) and a missing one (a 400) would answer differently.
    placement = IdFilter(queryset=user_objects(Placement))
    open = TrueFalseFilter(method="filter_open",
                           label="true: only alerts not dismissed yet; false: only dismissed ones")

    class Meta:
        model = PlacementAlert
        fields = ["placement", "kind", "open"]

    def filter_open(self, queryset: QuerySet[PlacementAlert], name: str, value: str) -> QuerySet[PlacementAlert]:
        return queryset.filter(dismissed_at__isnull=value == "true")


class PlacementAlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts on your teams' placements; open ones first. Filter with `open=true`; editors dismiss one with POST
    `dismiss`."""

    queryset = PlacementAlert.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = PlacementAlertSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = PlacementAlertFilter

    def get_queryset(self) -> QuerySet[PlacementAlert]:
        return PlacementAlert.objects.for_user(self.request.user).order_by(F("dismissed_at").desc(nulls_first=True),
                                                                            "-created")

    @extend_schema(request=None, responses={200: PlacementAlertSerializer})
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str | None = None) -> Response:
        """Dismiss the alert (owners and editors); dismissing it again changes nothing."""
        no_body(request)
        alert = self.get_object()
        require_editor(request.user, alert.placement.campaign.team)
        PlacementAlert.objects.filter(pk=alert.pk, dismissed_at__isnull=True).update(
            dismissed_at=timezone.now(), dismissed_by=request.user)
        alert.refresh_from_db()
        return Response(PlacementAlertSerializer(alert).data)
