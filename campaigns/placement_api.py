"""REST API for placements: each printed code, with its own short link; its artwork (checked, restamped, printed
anyway), print files and preflight, scans, and destination history.

Access, DELETE (switches a placement off) and `rules` are as `campaigns.api` says for campaigns and placements alike;
the destination fields, rules and history helpers and `OneAtATime` are that module's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.db.models import QuerySet
from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import artwork as artwork_rules
from campaigns import history, names, print_builds, printfiles, restamps
from campaigns.api import (
    FIELD_MAPPING,
    OneAtATime,
    changes_page,
    checked_rules,
    destination_changes_schema,
    rules_field,
)
from campaigns.models import LIMITED_FIELDS, Campaign, Placement, limit_errors
from campaigns.scan_summaries import RangeQuerySerializer, ScanSummarySerializer, asked_range, scan_summary
from generator.core.codes import print_specs
from generator.models import Candidate
from qartsite.access import require_editor
from qartsite.api import (
    AsciiIntegerField,
    BriefChoiceField,
    CreatedLocation,
    KnownFieldsOnly,
    ScopedField,
    TeamRolePermission,
    model_errors_as_400,
    request_user,
    user_objects,
)
from qartsite.api_schema import retry_after
from qartsite.filters import IdFilter, TrueFalseFilter
from qartsite.idempotency import IdempotentCreate
from qartsite.storage import MediaUnavailable

ARTWORK_OPTION_ALONE = ("This goes with `artwork`, the id of the candidate to print: send them together. The "
                        "placement's current artwork was judged when it was chosen.")


def limited_fields() -> dict[str, dict]:
    """`extra_kwargs` giving each of the placement's limited figures its one message (`models.limit_errors`)."""
    return {name: {"error_messages": limit_errors(name)} for name in LIMITED_FIELDS}


class PlacementSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    serializer_choice_field = BriefChoiceField
    campaign = ScopedField(user_objects(Campaign))
    artwork = ScopedField(user_objects(Candidate), required=False, allow_null=True, help_text=(
        "A generated candidate of the campaign's team that carries this placement's short link and passes the scan "
        "check; otherwise 400 with the reason. Choose it once the placement exists (its short link is made then)."))
    restamp = serializers.BooleanField(write_only=True, required=False, default=False, help_text=(
        "With `artwork` made for another link: use a copy restamped to carry this placement's short link."))
    print_anyway = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=1000,
                                         help_text="Why artwork that fails the scan check is printed anyway; needed "
                                                   "to choose such artwork, recorded with who and when.")
    artwork_image = serializers.ImageField(source="artwork.image", read_only=True, allow_null=True)
    short_url = serializers.SerializerMethodField(help_text="The link the printed code carries.")
    destination = serializers.URLField(read_only=True, help_text=(
        "Where scans lead now: while the placement is active and its campaign not archived, the override, else the "
        "campaign's destination; otherwise the campaign's fallback_url, else its destination. The short link adds the "
        "placement's UTM parameters, then the scanner's own query parameters (a name the destination already has "
        "keeps the destination's value)."))
    print_state = serializers.SerializerMethodField(help_text=(
        '"plain_code" (no artwork), "ok", or "will_not_scan": the artwork fails the scan check and print downloads '
        "are refused."))
    print_problem = serializers.SerializerMethodField(help_text="Why the artwork will not scan; empty otherwise.")
    print_anyway_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    scanning_distance = serializers.FloatField(read_only=True, help_text=(
        "Metres people scan from: scan_distance_m, else the kind's usual distance."))
    rules = rules_field()
    effective_rules = serializers.JSONField(read_only=True, help_text=(
        "The rules scans follow: these, with the campaign's for each kind they do not set (the campaign's dates "
        "filling its schedule where it routes by them)"))

    class Meta:
        model = Placement
        fields = ["id", "campaign", "name", "kind", "location", "latitude", "longitude", "printed_quantity",
                  "deployed_on", "notes", "active", "slug", "short_url", "destination_override", "destination",
                  "rules", "effective_rules", "artwork", "restamp", "print_anyway", "artwork_image", "print_state",
                  "print_problem", "print_anyway_by", "print_anyway_at", "print_anyway_reason", "scan_distance_m",
                  "printed_width_cm", "scanning_distance", "created"]
        read_only_fields = ["slug", "created", "print_anyway_at", "print_anyway_reason"]
        extra_kwargs = limited_fields()

    def get_short_url(self, placement: Placement) -> str:
        return placement.short_url(self.context["request"])

    def get_print_state(self, placement: Placement) -> str:
        if placement.artwork is None:
            return "plain_code"
        return "will_not_scan" if artwork_rules.will_not_scan(placement) else "ok"

    def get_print_problem(self, placement: Placement) -> str:
        return artwork_rules.will_not_scan(placement)

    def validate_campaign(self, campaign: Campaign) -> Campaign:
        require_editor(request_user(self.context.get("request")), campaign.team)
        return campaign

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None and "campaign" in attrs and attrs["campaign"] != self.instance.campaign:
            # Its printed code, scans and destination history belong to its campaign (the page offers no move).
            raise serializers.ValidationError({"campaign": [
                "A placement stays in the campaign that made it: its printed code's scans are counted there. "
                "Add a placement to the other campaign instead."]})
        campaign = attrs.get("campaign") or self.instance.campaign
        if "name" in attrs and names.placement_name_clash(self.instance, campaign, attrs["name"]):
            raise serializers.ValidationError({"name": [names.PLACEMENT_NAME_TAKEN]})
        checked_rules(attrs, campaign.team)
        candidate = attrs.get("artwork", getattr(self.instance, "artwork", None))
        if candidate is not None and candidate.job.team_id != campaign.team_id:
            raise serializers.ValidationError({"artwork": ["Choose an image your campaign's team generated."]})
        if "artwork" not in attrs or candidate is None or candidate.pk == getattr(self.instance, "artwork_id", None):
            # Unchanged artwork was judged when it was chosen. `restamp` and `print_anyway` say how to take the
            # `artwork` sent with them (the same one again is a retry): without it they did nothing, and answered 200
            # (a reason to print anyway recorded nowhere).
            stray = [name for name in ("restamp", "print_anyway") if attrs.get(name) and "artwork" not in attrs]
            if stray:
                raise serializers.ValidationError({name: [ARTWORK_OPTION_ALONE] for name in stray})
            return attrs
        if self.instance is None:
            raise serializers.ValidationError({"artwork": [
                "Create the placement first, then choose its artwork: no picture carries its short link yet."]})
        request = self.context["request"]
        try:
            attrs["artwork"] = restamps.choose(
                self.instance, candidate, short_url=self.instance.short_url(request), user=request_user(request),
                restamp=bool(attrs.get("restamp")), print_anyway_reason=attrs.get("print_anyway", ""))
        except artwork_rules.ArtworkRefused as refused:
            raise serializers.ValidationError({"artwork": [refused.message]}, code=refused.code) from None
        return attrs

    def update(self, instance: Placement, validated_data: dict) -> Placement:
        validated_data.pop("restamp", None)
        reason = validated_data.pop("print_anyway", "")
        if "artwork" in validated_data and validated_data["artwork"] != instance.artwork:
            artwork_rules.apply(instance, validated_data.pop("artwork"), user=request_user(self.context["request"]),
                                print_anyway_reason=reason)
        return super().update(instance, validated_data)

    def create(self, validated_data: dict) -> Placement:
        validated_data.pop("restamp", None)
        validated_data.pop("print_anyway", None)
        return super().create(validated_data)


class PrintQuerySerializer(serializers.Serializer):
    width = serializers.CharField(required=False, help_text=(
        "Printed side, the white border around the code included: 20cm, 200mm, 8in; default the placement's "
        "printed_width_cm"))
    dpi = AsciiIntegerField(required=False, default=300)
    bleed = serializers.CharField(required=False, help_text="e.g. 3mm")
    crop_marks = serializers.BooleanField(required=False)
    format = BriefChoiceField(choices=print_specs.FORMATS, required=False, default="pdf")
    cmyk = serializers.BooleanField(required=False, help_text="CMYK (PDF, TIFF); otherwise the file is RGB")


class PrintMakingSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="That the file is being made in the background, and for how long")
    retry_after = serializers.IntegerField(help_text="Seconds before asking again (the Retry-After header's)")


class PreflightQuerySerializer(serializers.Serializer):
    width = serializers.CharField(required=False, help_text="Printed side: 20cm, 8in; default printed_width_cm")


def header_safe(report: dict) -> dict:
    """The print report without the preflight's per-capture checks: a header stays small."""
    slim = dict(report)
    if isinstance(slim.get("preflight"), dict):
        slim["preflight"] = {k: v for k, v in slim["preflight"].items() if k != "checks"}
    return slim


class PlacementFilter(filters.FilterSet):
    campaign = IdFilter(queryset=user_objects(Campaign))
    archived = TrueFalseFilter(field_name="campaign__archived", help_text="Whether the campaign is archived")
    active = TrueFalseFilter()

    class Meta:
        model = Placement
        fields = ["campaign", "archived", "active", "kind"]


class PlacementViewSet(CreatedLocation, IdempotentCreate, OneAtATime, viewsets.ModelViewSet):
    """Your teams' placements: each printed code, with its own short link."""

    serializer_class = PlacementSerializer
    permission_classes = [permissions.IsAuthenticated, TeamRolePermission]
    filterset_class = PlacementFilter
    ordering_fields = ["name", "created", "kind", "deployed_on"]
    team_path = "campaign.team"

    def get_queryset(self) -> QuerySet[Placement]:
        return Placement.objects.for_user(self.request.user).select_related("campaign__team", "artwork")

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # The print action's `format` is the file's (pdf, png, ...), not DRF's renderer override: without force, an
        # unknown renderer "pdf" would answer 404. Its errors still come back as JSON (the first renderer).
        return super().perform_content_negotiation(request, force=force or self.action == "print_file")

    def update(self, request: Request, *args, **kwargs) -> Response:  # PATCH too (partial_update)
        self.prepare_artwork(request)
        return super().update(request, *args, **kwargs)

    def prepare_artwork(self, request: Request) -> None:
        """Verifying and restamping the artwork asked for take a second (`restamps.prepare`): done before
        `OneAtATime` locks the placement; the serializer's `validate` judges again, quickly, under the lock. (A
        create takes no artwork: the placement has no short link yet.)"""
        data = request.data
        if not isinstance(data, Mapping) or data.get("artwork") is None:
            return
        placement = self.stored_object()  # a 404 or 403 here is the one the locked lookup would answer
        fields = self.get_serializer(placement).fields
        try:
            candidate = fields["artwork"].run_validation(data["artwork"])
            restamp = fields["restamp"].run_validation(data.get("restamp", False))
        except serializers.ValidationError:
            return  # the serializer says so under the lock
        restamps.prepare(placement, candidate, short_url=placement.short_url(request), user=request.user,
                         restamp=restamp)

    def perform_create(self, serializer) -> None:
        with model_errors_as_400("destination_override"):
            serializer.save()

    def perform_update(self, serializer) -> None:
        with model_errors_as_400("destination_override"), history.recorded(serializer.instance, self.request.user):
            serializer.save()

    @destination_changes_schema()
    @action(detail=True, methods=["get"], url_path="destination-changes", filterset_class=None)
    def destination_changes(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """The placement's destination history: its override and rules."""
        return changes_page(self, self.get_object().destination_changes.select_related("changed_by"))

    @extend_schema(responses={200: PlacementSerializer}, description=(
        "Switches the placement off (`active: false`); nothing is deleted. Its printed code keeps redirecting, to the "
        "campaign's `fallback_url` when set, else to its destination, and keeps counting. Answers the placement; PATCH "
        "`{\"active\": true}` switches it on again."))
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        placement = self.get_object()  # viewers get 403 here (TeamRolePermission)
        placement.set_active(False)
        return Response(self.get_serializer(placement).data)

    @extend_schema(
        parameters=[PrintQuerySerializer, retry_after(202)], filters=False,
        # 206 and 304 as the description says: a client held to the schema refused a resumed download.
        responses={**{(code, kind): OpenApiTypes.BINARY for code in (200, 206)
                      for kind in ("application/pdf", "image/png", "image/tiff", "image/svg+xml")},
                   304: OpenApiResponse(description="If-None-Match named the file's ETag: it has not changed."),
                   202: PrintMakingSerializer, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT,
                   422: OpenApiTypes.OBJECT, 429: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
        description=(
            "A print file at physical size: the artwork's, else the plain code's (vectors in PDF and SVG). Read back "
            "and verified before it is sent. 400: options that cannot be met; 409: the artwork will not scan (print "
            "downloads are refused) or its image is missing; 422: the written file did not scan when read back; 429: "
            "another print file of yours is still being made (one at a time each); 503: the image storage, or for a "
            "large file the job queue, cannot be reached: nothing was ordered, ask again after Retry-After. 202: a "
            "large file (a raster over 25 million pixels) is being made by a worker: ask again after Retry-After "
            "seconds, the same query then answers with the file (kept a day). A HEAD asks without ordering: 409 "
            "when nothing is making the file (never asked for, or lost when the job queue restarted): a GET orders it. "
            "The report (sizes, source dpi, colour, boxes, preflight) is in the X-Qart-Print-Report header as JSON. "
            "The file carries an ETag: If-None-Match answers 304, and one `Range: bytes=...` answers 206 (If-Range "
            "honoured), so an interrupted download resumes."))
    @action(detail=True, methods=["get"], url_path="print", pagination_class=None, filterset_class=None)
    def print_file(self, request: Request, pk: str | None = None, format: str | None = None) -> HttpResponse:
        # `format` is the router's suffix (print.json): the file's own format is the `format` query parameter.
        placement = self.get_object()
        try:
            made = print_builds.requested_file(placement, placement.short_url(request), request.query_params,
                                               request.user.pk, start=request.method != "HEAD")
            response = print_builds.download(request, made, print_builds.file_name(placement, made))
        except printfiles.Refused as exc:
            # A person's other file being made frees in seconds; a queue or storage away, in a minute or so
            busy = {429: {"Retry-After": str(print_builds.RETRY_SECONDS)}, 503: {"Retry-After": "60"}}.get(exc.status)
            # At the option it is about, as preflight's errors and every other 400 of the API.
            body = {exc.option: [exc.message]} if exc.option else {"detail": exc.message}
            return Response(body, status=exc.status, headers=busy)
        except print_builds.Making as exc:
            return Response({"detail": exc.message, "retry_after": print_builds.RETRY_SECONDS}, status=202,
                            headers={"Retry-After": str(print_builds.RETRY_SECONDS)})
        response["X-Qart-Print-Report"] = json.dumps(header_safe(printfiles.report_now(made.report, placement)),
                                                     ensure_ascii=True)
        return response

    @extend_schema(parameters=[PreflightQuerySerializer], filters=False,
                   responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT,
                              503: OpenApiTypes.OBJECT}, description=(
                       "Where the printed code is predicted to scan: distance range at `width` (else the placement's "
                       "printed_width_cm), the narrowest width for its scanning distance, the side of one square of "
                       "the code (`module_mm`), and `warnings` in words for the person printing it (the white "
                       "border around the code, contrast, the range), with the camera model assumed. 409: the "
                       "artwork's image is missing; 503: the image storage cannot be reached (Retry-After)."))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def preflight(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        placement = self.get_object()
        query = PreflightQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        width = query.validated_data.get("width")
        try:
            width_cm = print_specs.parse_length(width) / 10 if width else placement.printed_width_cm
            if width_cm is not None and not 0.5 <= width_cm <= 500:
                raise print_specs.PrintError("The width must be between 0.5 cm and 5 m.")
            report = printfiles.placement_preflight(placement, placement.short_url(request), width_cm)
        except print_specs.PrintError as exc:
            return Response({"width": [str(exc)]}, status=400)
        except MediaUnavailable:  # an OSError too: not "missing", which tells the team to choose its artwork again
            return Response({"detail": "The image storage is unavailable right now; try again in a minute."},
                            status=503, headers={"Retry-After": "60"})
        except OSError:
            return Response({"detail": "This placement's artwork image is missing."}, status=409)
        if report is None:
            return Response({"width": ["Give width=20cm, or set the placement's printed_width_cm."]}, status=400)
        return Response(report)

    @extend_schema(parameters=[RangeQuerySerializer], responses={200: ScanSummarySerializer, 400: OpenApiTypes.OBJECT},
                   filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    # `format`: the router also routes scans.json / scans.api here (format suffixes).
    def scans(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """Scans and unique visitors in a date range, by day, hour, weekday, device, OS, browser, country and
        language: people's scans, repeats counted (see `total`). A range that cannot be read is a 400 saying why."""
        placement = self.get_object()
        one = Placement.objects.filter(pk=placement.pk)
        team = placement.campaign.team
        summary = {"placement": placement.pk, **scan_summary(one, team, asked_range(request, team, one))}
        return Response(ScanSummarySerializer(summary).data)
