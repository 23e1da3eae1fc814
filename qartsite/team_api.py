"""REST API for the teams you belong to and their settings: the time zone the dashboards count days in and how long
raw scans are kept (`campaigns.retention`). Every member reads them; only owners change them, like the team page.
Owners also rename the team here; members and invitations are managed on the team page.
"""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery
from rest_framework import mixins, permissions, serializers, viewsets

from qartsite.access import require_owner
from qartsite.api import KnownFieldsOnly
from qartsite.models import Membership, Team


class TeamSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices, read_only=True, help_text="Your role in the team.")

    class Meta:
        model = Team
        fields = ["id", "name", "role", "time_zone", "scan_retention_days", "created"]
        read_only_fields = ["created"]


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                  viewsets.GenericViewSet):
    """Your teams, with your role. Owners PATCH `name` (one line), `time_zone` (an IANA name; earlier days are
    recounted within a few minutes) and `scan_retention_days` (30 to 3660, or null to keep every scan; the daily
    counts are always kept)."""

    queryset = Team.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = TeamSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self) -> QuerySet[Team]:
        user = self.request.user
        role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
        return Team.for_user(user).annotate(role=Subquery(role))

    def get_object(self) -> Team:
        team = super().get_object()
        if self.request.method not in permissions.SAFE_METHODS:
            # Before the body is validated: a member who may not change the settings gets 403, not a 400 about them.
            require_owner(self.request.user, team, "Only a team owner changes the team's settings.")
        return team
