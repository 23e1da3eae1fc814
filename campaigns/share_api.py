"""REST API for share links of a campaign's report (`campaigns.shares`): made, listed and revoked by the team's
owners and editors, like the page. Viewers list none and get 403 on making one; another team's campaign or share
answers like one that does not exist.

The link (with its token) is in the answer to the POST that makes a share, never again: only the token's hash is kept.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import shares
from campaigns.models import Campaign, ReportShare
from qartsite.access import editable_teams, require_editor
from qartsite.api import AsciiIntegerField, CreatedLocation, KnownFieldsOnly, ScopedField, no_body, user_objects
from qartsite.filters import IdFilter
from qartsite.idempotency import IdempotentCreate
from qartsite.site import absolute_url


class ReportShareSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    campaign = ScopedField(user_objects(Campaign), help_text="A campaign of a team where you edit.")
    days = AsciiIntegerField(write_only=True, min_value=1, max_value=shares.MAX_DAYS,
                             default=shares.DEFAULT_DAYS, help_text="How long the link opens the report.")
    live = serializers.SerializerMethodField(help_text="Whether the link still opens the report.")

    class Meta:
        model = ReportShare
        fields = ["id", "campaign", "label", "days", "expires", "revoked_at", "live", "created"]
        read_only_fields = ["expires", "revoked_at", "created"]
        extra_kwargs = {"label": {"help_text": "Who it is for (only your team sees this)."}}

    def get_live(self, share: ReportShare) -> bool:
        return shares.is_live(share)


class ReportShareWithLinkSerializer(ReportShareSerializer):
    url = serializers.CharField(read_only=True, help_text="The link that opens the report: shown this once.")

    class Meta(ReportShareSerializer.Meta):
        fields = [*ReportShareSerializer.Meta.fields, "url"]


class ReportShareFilter(filters.FilterSet):
    # Scoped like the field: another team's campaign id fails like one that does not exist.
    campaign = IdFilter(queryset=user_objects(Campaign))

    class Meta:
        model = ReportShare
        fields = ["campaign"]


class ReportShareViewSet(CreatedLocation, IdempotentCreate, mixins.CreateModelMixin, mixins.ListModelMixin,
                         mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Share links of the campaigns of teams where you edit, newest first. POST makes one (its `url` is in that
    answer only); POST `revoke` ends one at once. Nothing else changes a share."""

    idempotent_keeps_body = False  # the create answer carries a secret shown once

    queryset = ReportShare.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = ReportShareSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = ReportShareFilter

    def get_queryset(self) -> QuerySet[ReportShare]:
        return ReportShare.objects.in_teams(editable_teams(self.request.user)).order_by("-created", "-pk")

    @extend_schema(responses={201: ReportShareWithLinkSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = serializer.validated_data["campaign"]
        require_editor(request.user, campaign.team)
        share, token = shares.create(campaign, request.user, serializer.validated_data["days"],
                                     serializer.validated_data.get("label", ""))
        share.url = absolute_url(request, reverse("campaigns:shared_report", args=[token]))
        response = Response(ReportShareWithLinkSerializer(share).data, status=201)
        response["Cache-Control"] = "no-store"  # the answer carries the token
        return response

    @extend_schema(request=None, responses={200: ReportShareSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Revoke the link: it opens nothing from now on; revoking it again changes nothing."""
        no_body(request)
        share = self.get_object()
        shares.revoke(share)
        share.refresh_from_db()
        return Response(ReportShareSerializer(share).data)
