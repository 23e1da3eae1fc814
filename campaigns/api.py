"""REST API for campaigns (bulk actions: `campaigns.bulk_api`), and what the placements' (`campaigns.placement_api`)
shares with it: the destination fields, destination rules and their history, and `OneAtATime`.

Access follows `qartsite.api`: every queryset is narrowed with `.for_user(user)`, so another team's object
answers 404 (never a 403 that confirms it exists); members read; owners and editors change; viewers get 403.

DELETE never deletes: printed codes cannot be re-printed, so a campaign is archived and a placement switched off
(`active: false`), and the answer (200) is the object as it now is. Their codes keep redirecting, to the campaign's
`fallback_url` when set, and keep counting; PATCH `archived: false` / `active: true` brings them back.

`rules` (campaigns and placements) are destination rules, checked like destinations (`campaigns.rules`, which says
which wins); every change of a destination or of rules is listed by `destination-changes`.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from campaigns import history, names, rules, stats
from campaigns.bulk_api import CampaignBulkActions
from campaigns.models import ENDS_BEFORE_START, Campaign, DestinationChange, locked_copy
from campaigns.scan_summaries import CampaignScanSummarySerializer, RangeQuerySerializer, asked_range, scan_summary
from qartsite.api import (
    MODEL_FIELD_MAPPING,
    BoundedJSONField,
    CreatedLocation,
    KnownFieldsOnly,
    ScopedField,
    TeamRolePermission,
    model_errors_as_400,
    request_user,
    team_for_create,
    user_teams,
)
from qartsite.filters import TeamFilter, TrueFalseFilter
from qartsite.idempotency import IdempotentCreate
from qartsite.numbers import whole

# --- Destinations ----------------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.URI)
class DestinationField(serializers.CharField):
    """Where a code leads, checked only by the model's validator (`links.validate_destination`), which says exactly
    what is wrong: DRF's URLField would add "Enter a valid URL." to the same mistake, or answer it alone."""

    def run_validators(self, value: str) -> None:
        # One message: the model's validator comes first and says what is wrong ("... or is too long" included);
        # DRF's own length check (which also gives the schema its maxLength) only repeated it in other words.
        try:
            super().run_validators(value)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(exc.detail[:1]) from None


# The serializers' fields for model fields: destinations as above, floats finite (`qartsite.api`).
FIELD_MAPPING = {**MODEL_FIELD_MAPPING, models.URLField: DestinationField}


# --- Destination rules and their history --------------------------------------------------------------------


class SplitDestinationSerializer(serializers.Serializer):
    url = serializers.URLField()
    weight = serializers.IntegerField(min_value=1, max_value=rules.MAX_WEIGHT)


class RulesSchemaSerializer(serializers.Serializer):
    """Destination rules by kind: devices (`ios`, `android`, `other`), a schedule (`starts_at`, `ends_at`) and an
    A/B `split`; each kind may be left out."""

    # The docstring is the schema's; `campaigns.rules.clean_rules` checks what is sent.
    ios = serializers.URLField(required=False, help_text="Where iOS devices go")
    android = serializers.URLField(required=False, help_text="Where Android devices go")
    other = serializers.URLField(required=False, help_text="Where every other system goes")
    starts_at = serializers.DateTimeField(required=False, help_text=(
        "Before it, codes lead to the campaign's fallback_url (else its destination); ISO 8601, without an offset "
        "a time of the team's time zone"))
    ends_at = serializers.DateTimeField(required=False, help_text="From it on, codes lead to the fallback as well")
    split = SplitDestinationSerializer(many=True, required=False, help_text=(
        "2 to 10 destinations with integer weights; a visitor keeps one all day"))


@extend_schema_field(RulesSchemaSerializer)
class RulesField(BoundedJSONField):
    pass


def rules_field() -> RulesField:
    return RulesField(required=False, help_text=(
        "Destination rules; {} for none. First that applies: schedule (outside it, the fallback), device, A/B split, "
        "then the destination. A placement's rules of one kind (schedule, devices, split) replace its campaign's."))


def checked_rules(attrs: dict, team) -> None:
    """`attrs["rules"]` in its stored form, times without an offset read in `team`'s zone; else a 400 saying why."""
    if "rules" in attrs:
        try:
            attrs["rules"] = rules.clean_rules(attrs["rules"], team.zone)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"rules": exc.messages}) from None


class DestinationChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DestinationChange
        fields = ["id", "campaign", "placement", "field", "before", "after", "changed_by", "changed_at", "reverts"]
        read_only_fields = fields


def changes_page(view: viewsets.GenericViewSet, changes: QuerySet[DestinationChange]) -> Response:
    # The lists' `ordering` is not offered here (the schema says so); asked for anyway, it would pass unread
    if api_settings.ORDERING_PARAM in view.request.query_params:
        raise serializers.ValidationError({api_settings.ORDERING_PARAM: [
            "Changes come newest first: this list takes no ordering."]})
    page = view.paginate_queryset(changes)
    return view.get_paginated_response(DestinationChangeSerializer(page, many=True).data)


def destination_changes_schema():
    return extend_schema(filters=False, responses={200: DestinationChangeSerializer(many=True)}, description=(
        "Changes of where the codes lead, newest first: destinations, fallback, override and rules (before and after "
        "as stored; rules as JSON text), with who and when. Paginated like lists."))


# --- Changes one at a time -------------------------------------------------------------------------------------


class OneAtATime:
    """A view set mixin: a create or change is validated and saved in one transaction, a change on the row as stored
    and locked (`locked_copy`): two calls changing one campaign, placement or webhook endpoint at once are made one
    after the other, each on the other's result, and the name check's lock (`campaigns.names`) holds until the row
    is saved, so two calls naming alike at once make one row."""

    def create(self, request: Request, *args, **kwargs) -> Response:
        with transaction.atomic():
            return super().create(request, *args, **kwargs)

    def update(self, request: Request, *args, **kwargs) -> Response:  # PATCH too (partial_update)
        with transaction.atomic():
            return super().update(request, *args, **kwargs)

    def get_object(self):
        found = self.stored_object()
        if self.action not in ("update", "partial_update"):
            return found
        data = self.request.data
        moving_to = whole(data.get("campaign")) if isinstance(data, Mapping) else None  # a placement's new campaign
        locked = locked_copy(found, moving_to=moving_to)
        if locked is None:
            raise NotFound()  # deleted while the request was on its way
        return locked

    def stored_object(self):
        """The object as stored, scoped to the user's teams and permissions checked, not locked: for work before the
        transaction."""
        return super().get_object()


# --- Campaigns -------------------------------------------------------------------------------------------------


class CampaignSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    team = ScopedField(user_teams, required=False,
                       help_text="Defaults to your team when you can edit in exactly one.")
    rules = rules_field()

    class Meta:
        model = Campaign
        fields = ["id", "team", "name", "destination", "fallback_url", "starts_on", "ends_on", "dates_route",
                  "utm_source", "utm_medium", "utm_campaign", "rules", "archived", "created"]
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
            raise serializers.ValidationError({"ends_on": [ENDS_BEFORE_START]})
        team = attrs.get("team") or self.instance.team
        name = attrs.get("name", getattr(self.instance, "name", ""))
        archived = attrs.get("archived", getattr(self.instance, "archived", False))
        if names.campaign_name_clash(self.instance, team, name, archived):  # a new name, or back from the archive
            raise serializers.ValidationError({"name": [names.CAMPAIGN_NAME_TAKEN]})
        checked_rules(attrs, team)
        return attrs


class CampaignFilter(filters.FilterSet):
    team = TeamFilter(queryset=user_teams)
    archived = TrueFalseFilter()

    class Meta:
        model = Campaign
        fields = ["team", "archived"]


class CampaignViewSet(CreatedLocation, IdempotentCreate, OneAtATime, CampaignBulkActions, viewsets.ModelViewSet):
    """Your teams' campaigns. Creating one needs editor rights in its team. A campaign's placements are imported from
    CSV (`import-placements`) and generated for at once (`generate`); campaigns, placements and scans are exported
    as CSV (`export`)."""

    # A retried bulk generate must not start every job twice, nor a retried import answer that its names are taken.
    idempotent_actions = ("create", "generate", "import_placements")
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
        with model_errors_as_400("destination"), history.recorded(serializer.instance, self.request.user):
            serializer.save()

    @extend_schema(parameters=[RangeQuerySerializer], filters=False,
                   responses={200: CampaignScanSummarySerializer, 400: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def scans(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """The campaign's dashboard in a date range: its figures (as a placement's) and its placements compared
        (scans, unique visitors, scans per 100 printed, first and last scan, trend)."""
        campaign = self.get_object()
        placements = campaign.placements.all()
        whole = stats.Campaigns.one(campaign)
        days = asked_range(request, campaign.team, whole)
        figures = stats.placement_figures(placements, days)
        compared = [{"placement": p.pk, "name": p.name, "scans": figures[p.pk].scans,
                     "unique": figures[p.pk].visitors, "printed_quantity": p.printed_quantity,
                     "scans_per_100_printed": (round(100 * figures[p.pk].scans / p.printed_quantity, 1)
                                               if p.printed_quantity else None),
                     "first_scan": figures[p.pk].first_scan, "last_scan": figures[p.pk].last_scan,
                     "trend": figures[p.pk].trend} for p in placements]
        compared.sort(key=lambda row: (-row["scans"], row["name"]))
        summary = {"campaign": campaign.pk, **scan_summary(whole, campaign.team, days), "placements": compared}
        return Response(CampaignScanSummarySerializer(summary).data)

    @destination_changes_schema()
    @action(detail=True, methods=["get"], url_path="destination-changes", filterset_class=None)
    def destination_changes(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """The campaign's destination history, its placements' included."""
        return changes_page(self, self.get_object().destination_changes.select_related("changed_by"))

    @extend_schema(responses={200: CampaignSerializer}, description=(
        "Archives the campaign; nothing is deleted. Its printed codes keep redirecting (to `fallback_url` when set, "
        "else to `destination`) and keep counting. Answers the archived campaign; PATCH `{\"archived\": false}` "
        "brings it back. Archived campaigns stay listed with `archived: true` (`?archived=false` leaves them out)."))
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        campaign = self.get_object()  # viewers get 403 here (TeamRolePermission)
        campaign.set_archived(True)
        return Response(self.get_serializer(campaign).data)
