"""REST API for the teams you belong to and their settings: the time zone the dashboards count days in and how long
raw scans are kept (`campaigns.retention`). Every member reads them; only owners change them, like the team page.
Owners also rename the team here; members and invitations are managed on the team page.
"""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.response import Response

from campaigns import retention
from qartsite.access import require_owner
from qartsite.api import MODEL_FIELD_MAPPING, AsciiIntegerField, KnownFieldsOnly
from qartsite.models import Membership, Team


class TeamSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    serializer_field_mapping = MODEL_FIELD_MAPPING
    role = serializers.ChoiceField(choices=Membership.Role.choices, read_only=True, help_text="Your role in the team.")
    confirm_retention = AsciiIntegerField(
        write_only=True, required=False, help_text=(
            "A shorter `scan_retention_days` that deletes stored scans is refused (409, with `scans_deleted`) unless "
            "this repeats the new number of days: the next daily pass deletes them for good."))

    class Meta:
        model = Team
        fields = ["id", "name", "role", "time_zone", "scan_retention_days", "capital_scheme", "confirm_retention",
                  "created"]
        read_only_fields = ["created"]

    def validate(self, attrs: dict) -> dict:
        confirmed = attrs.pop("confirm_retention", None)
        if self.instance is not None and "scan_retention_days" in attrs:
            days = attrs["scan_retention_days"]
            lost = retention.newly_expired(self.instance, self.instance.scan_retention_days, days)
            if lost and confirmed != days:
                raise RetentionNotConfirmed(lost, days)
        return attrs


class RetentionNotConfirmed(Exception):
    """Shortening the retention would delete stored scans, and the request did not say it means it (409)."""

    def __init__(self, lost: int, days: int) -> None:
        super().__init__(f"Keeping single scans for {days} days deletes {lost} stored scan{'s' * (lost != 1)} at the "
                         f"next daily clean-up, for good (daily counts stay). Download them first if you need them, "
                         f"then send \"confirm_retention\": {days}.")
        self.lost = lost


class RetentionRefusedSerializer(serializers.Serializer):
    """The 409's body (`TeamViewSet.update`): documented as ErrorDetail, a client built from the schema had no
    `scans_deleted` to read."""

    detail = serializers.CharField()
    scans_deleted = serializers.IntegerField(help_text="The stored scans the shorter retention would delete")


RETENTION_409 = OpenApiResponse(RetentionRefusedSerializer, description=(
    "A shorter `scan_retention_days` would delete stored scans: `detail` says how many and `scans_deleted` counts "
    "them; send `confirm_retention`."))


@extend_schema_view(update=extend_schema(responses={200: TeamSerializer, 409: RETENTION_409}),
                    partial_update=extend_schema(responses={200: TeamSerializer, 409: RETENTION_409}))
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                  viewsets.GenericViewSet):
    """Your teams, with your role. Owners PATCH `name` (one line), `time_zone` (an IANA name; earlier days are
    recounted within a few minutes, and until then every figure keeps the old zone's days: the scan summaries'
    `range.time_zone` names the zone their days are in) and `scan_retention_days` (30 to 3660, or null to keep
    every scan; the daily counts are always kept)."""

    queryset = Team.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = TeamSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self) -> QuerySet[Team]:
        user = self.request.user
        role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
        return Team.for_user(user).annotate(role=Subquery(role))

    def update(self, request, *args, **kwargs) -> Response:
        try:
            return super().update(request, *args, **kwargs)
        except RetentionNotConfirmed as refused:
            return Response({"detail": str(refused), "scans_deleted": refused.lost}, status=status.HTTP_409_CONFLICT)

    def get_object(self) -> Team:
        team = super().get_object()
        if self.request.method not in permissions.SAFE_METHODS:
            # Before the body is validated: a member who may not change the settings gets 403, not a 400 about them.
            require_owner(self.request.user, team, "Only a team owner changes the team's settings.")
        return team
