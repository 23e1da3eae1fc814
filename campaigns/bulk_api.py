"""The API's bulk actions on campaigns (mixed into `campaigns.api.CampaignViewSet`, so they share its team scoping and
role checks): import placements from CSV (`?dry_run=1` checks only), one generation per placement, and CSV exports
of campaigns, placements and scans.

The rules are the pages' (`campaigns.bulk`, `campaigns.bulk_generation`, `scan_export_views.csv_response`); here
they are only turned into JSON. A CSV export answers `text/csv` whatever the Accept header asks; its errors answer
JSON.
"""

from __future__ import annotations

from django.core.validators import ProhibitNullCharactersValidator
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from campaigns import bulk, bulk_generation, stats
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.scan_export_views import csv_response
from campaigns.scan_summaries import ExportRangeQuerySerializer, asked_range
from generator import uploads
from generator.api import GenerationSerializer
from generator.throttles import refused
from qartsite import idempotency, parsers
from qartsite.api import MAX_UNKNOWN, AsciiIntegerField, KnownFieldsOnly, OneFileField
from qartsite.api_schema import either
from qartsite.responses import csv_download

CSV_ACTIONS = ("export", "export_placements", "export_scans")
CSV_RESPONSE = {(200, "text/csv"): OpenApiTypes.STR}


class ImportQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, default=False,
                                       help_text="1: check every row and store nothing")

    def to_internal_value(self, data):
        # The one query that changes what a write does: a misspelt `?dryrun=1` imported for real. So, unlike the
        # reading endpoints' queries, this one refuses what it does not know (DRF's `format` aside).
        unknown = [name for name in data if name not in self.fields and name != api_settings.URL_FORMAT_OVERRIDE]
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown query parameter. This import takes only dry_run."] for name in unknown[:MAX_UNKNOWN]})
        return super().to_internal_value(data)


class CsvTextField(serializers.CharField):
    """A CSV's text as sent: a NUL in it is refused by the import's own check (`bulk.pasted`), in the import's answer
    (`errors`), as a file's faults are; DRF's field refuses it in another shape."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


BOTH_CSVS = "Send the CSV once: as `file` or as `text`, not both."


class PlacementImportSerializer(KnownFieldsOnly, serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, default=False,
                                       help_text="true: check every row and store nothing (also as ?dry_run=1)")
    # An empty file is read like any other (`bulk.check` says it is empty, in the import's answer): DRF's own refusal
    # answered a field error, not the `ImportResult` every other unreadable file gets.
    file = OneFileField(required=False, allow_empty_file=True, help_text=(
        f"The CSV (UTF-8, a header row, up to {bulk.cap_in_words()}); columns "
        f"{', '.join(bulk.COLUMNS)}, only name required; an export's own columns ({', '.join(bulk.EXPORT_ONLY)}) "
        "are ignored."))
    text = CsvTextField(required=False, allow_blank=True, trim_whitespace=False,
                        help_text="Instead of a file: the CSV's text (not both).")

    def validate(self, attrs: dict) -> dict:
        # The page takes the file when both come (a file chosen, rows left in the box: one person's form); a client
        # that sends both has mixed two requests up, and the text was dropped without a word.
        if attrs.get("file") and (attrs.get("text") or "").strip():
            raise serializers.ValidationError({"text": [BOTH_CSVS]})
        return attrs


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True, help_text="The row as a spreadsheet numbers it (the header is "
                                                              "1); null: the file as a whole")
    column = serializers.CharField(help_text="Empty when the error is about the whole row or file")
    message = serializers.CharField()


class ImportedPlacementSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="null on a dry run")
    short_url = serializers.CharField(allow_null=True, help_text="null on a dry run")
    name = serializers.CharField()
    kind = serializers.CharField()
    location = serializers.CharField()
    printed_quantity = serializers.IntegerField(allow_null=True)
    printed_width_cm = serializers.FloatField(allow_null=True)
    scan_distance_m = serializers.FloatField(allow_null=True)
    destination_override = serializers.CharField()


class ImportResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    rows = serializers.IntegerField(help_text="Data rows read")
    errors = RowErrorSerializer(many=True, help_text="Every row's errors; any error: nothing was stored (400)")
    placements = ImportedPlacementSerializer(many=True, help_text="The rows as they are (dry run) or were stored")


class BoundedListField(serializers.ListField):
    """A list refused when over `max_length` before any item is checked: DRF checks every item first, and 400,000
    ids took a second of CPU before the length was looked at."""

    def to_internal_value(self, data):
        if self.max_length is not None and isinstance(data, list | tuple) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class BulkGenerationSerializer(GenerationSerializer):
    # The largest id: 2**70 in a form body reached the database (OverflowError, a 500); a JSON body's parser refuses it
    placements = BoundedListField(child=AsciiIntegerField(min_value=1, max_value=parsers.LARGEST),
                                  required=False, max_length=bulk.MAX_ROWS, help_text=(
        "Placements of this campaign (active ones); absent or empty: all its active placements, by name. One job each, "
        "queued in this order, carrying the placement's short link."))

    many_links = True

    class Meta(GenerationSerializer.Meta):
        fields = ["placements", "engine", "picture", "earlier_candidate", "prompt", "negative_prompt", "steps",
                  "guidance_scale", "conditioning_scale", "control_start", "control_end", "strength", "size",
                  "scheduler", "candidates_per_batch", "max_batches", "seed", "style", "background"]

    def validate(self, attrs: dict) -> dict:
        campaign: Campaign = self.context["campaign"]
        if campaign.archived:
            raise serializers.ValidationError("The campaign is archived: bring it back first.")
        offered = bulk_generation.placements_to_generate(campaign)
        asked = attrs.pop("placements", None)
        if asked:  # absent or empty (a multipart body without the field): every active placement
            ids = set(asked)
            if set(offered.filter(pk__in=ids).values_list("pk", flat=True)) != ids:
                raise serializers.ValidationError({"placements": ["Choose active placements of this campaign."]})
            self.placements = [placement for placement in offered if placement.pk in ids]
        else:
            self.placements = list(offered)
            if not self.placements:
                raise serializers.ValidationError({"placements": ["The campaign has no active placements."]})
        # The shared settings are checked as a single generation's, for the first placement.
        attrs.update(team=campaign.team, placement=self.placements[0])
        return super().validate(attrs)


class StartedGenerationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    placement = serializers.IntegerField()


class BulkGenerationResultSerializer(serializers.Serializer):
    started = serializers.IntegerField()
    generations = StartedGenerationSerializer(many=True, help_text="In queue order")


def imported(request: Request, checked: bulk.CheckedFile, placements: list[Placement] | None) -> list[dict]:
    if placements is None:
        return [{"id": None, "short_url": None, **form.cleaned_data} for form in checked.forms]
    return [{"id": p.pk, "short_url": p.short_url(request), **{column: getattr(p, column) for column in bulk.COLUMNS}}
            for p in placements]


class CampaignBulkActions:
    """Bulk actions of `CampaignViewSet`: `self.get_object()` scopes the campaign to your teams (404 otherwise), and
    its `TeamRolePermission` lets only owners and editors POST (viewers get 403)."""

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # A CSV export is text/csv whatever Accept says; its errors (a bad filter or range) still answer JSON.
        return super().perform_content_negotiation(request, force=force or self.action in CSV_ACTIONS)

    @extend_schema(parameters=[ImportQuerySerializer, idempotency.PARAMETER],
                   request={"multipart/form-data": PlacementImportSerializer},
                   filters=False, responses={
                       200: OpenApiResponse(ImportResultSerializer, description="Dry run: every row passes."),
                       201: OpenApiResponse(ImportResultSerializer, description="Every row stored."),
                       # Either body: the rows' result, or the API's own refusal (a field, the query, the key).
                       400: OpenApiResponse(either("ImportResult", "FieldErrors"), description=(
                           "Some row failed (or the file): the result, with every row's errors; or a field or the "
                           "query cannot be used: each one's messages. Nothing was stored.")),
                       409: OpenApiResponse(either("ImportResult", "ErrorDetail"), description=(
                           "Another import took some names meanwhile: the result; nothing stored. Or the first "
                           "request with this Idempotency-Key is still running: `detail` only.")),
                       422: OpenApiResponse(description="This Idempotency-Key was used for another query or "
                                                        "body.")})
    @action(detail=True, methods=["post"], url_path="import-placements",
            parser_classes=[parsers.MultiPartParser, parsers.FormParser], pagination_class=None, filterset_class=None)
    def import_placements(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """Import placements from a CSV: all rows or, when any row fails, none (400 with every row's errors)."""
        campaign = self.get_object()
        query = ImportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = PlacementImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # A dry run asked for in the query or in the form body: either way nothing is stored.
        dry_run = query.validated_data["dry_run"] or body.validated_data["dry_run"]
        result = {"dry_run": dry_run, "rows": 0, "errors": [], "placements": []}
        try:
            if body.validated_data.get("file"):
                data = bulk.read_upload(body.validated_data["file"])
            elif (body.validated_data.get("text") or "").strip():
                data = bulk.pasted(body.validated_data["text"])
            else:
                raise bulk.FileRefused("Send the CSV as `file` (multipart), or its rows as `text`.")
            checked = bulk.check(campaign, data)
        except bulk.FileRefused as exc:
            result["errors"] = [{"row": None, "column": "", "message": str(exc)}]
            return Response(ImportResultSerializer(result).data, status=status.HTTP_400_BAD_REQUEST)
        result["rows"] = checked.rows
        result["errors"] = [vars(error) for error in checked.errors]
        if not checked.ok:
            return Response(ImportResultSerializer(result).data, status=status.HTTP_400_BAD_REQUEST)
        try:
            stored = None if dry_run else bulk.store(checked)
        except bulk.FileRefused as exc:  # the campaign was archived since the check
            result["errors"] = [{"row": None, "column": "", "message": str(exc)}]
            return Response(ImportResultSerializer(result).data, status=status.HTTP_400_BAD_REQUEST)
        except bulk.NamesTaken:
            # Another import took some names since the check: nothing stored; every row's errors as they are now.
            result["errors"] = [vars(error) for error in bulk.check(campaign, data).errors]
            return Response(ImportResultSerializer(result).data, status=status.HTTP_409_CONFLICT)
        result["placements"] = imported(request, checked, stored)
        return Response(ImportResultSerializer(result).data, status=200 if dry_run else 201)

    @extend_schema(request=BulkGenerationSerializer, filters=False, parameters=[idempotency.PARAMETER], responses={
        201: BulkGenerationResultSerializer,
        400: OpenApiResponse(description="A bad parameter or placement: the message says which; nothing started."),
        413: OpenApiResponse(description="The body is over the upload cap; nothing was read."),
        429: OpenApiResponse(description="The team's generation rate has room for fewer jobs than placements: none "
                                         "started; `detail` says how many can start now, Retry-After when more can."),
        503: OpenApiResponse(description="The picture could not be stored, or the job queue does not answer; nothing "
                                         "was created (Retry-After)."),
        409: OpenApiResponse(description="The first request with this Idempotency-Key is still running."),
        422: OpenApiResponse(description="This Idempotency-Key was used for another query or body."),
    })
    @action(detail=True, methods=["post"], pagination_class=None, filterset_class=None)
    def generate(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """One generation per placement (all active ones, or `placements`) with one shared prompt or picture, each
        carrying its placement's short link: all start, or none does."""
        campaign = self.get_object()
        serializer = BulkGenerationSerializer(data=request.data, context={**self.get_serializer_context(),
                                                                          "campaign": campaign})
        serializer.is_valid(raise_exception=True)

        def make_job(placement: Placement):
            job = serializer.unsaved_job(request.user)
            job.placement, job.content = placement, placement.short_url(request)
            return job

        try:
            started = bulk_generation.start_jobs(serializer.placements, make_job, request.user, serializer.picture)
        except bulk_generation.NotStarted as exc:
            if exc.status == 429:
                raise refused(exc.retry_after, exc.message) from None
            # The queue was away (a refused password: no Retry-After, no wait mends it)
            headers = {"Retry-After": str(exc.retry_after)} if exc.status == 503 and exc.retry_after else None
            return Response({"detail": exc.message}, status=exc.status, headers=headers)
        except OSError:
            return Response({"detail": uploads.NOT_STORED}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "60"})
        result = {"started": len(started), "generations": [{"id": j.pk, "placement": j.placement_id} for j in started]}
        return Response(BulkGenerationResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={**CSV_RESPONSE, 400: OpenApiTypes.OBJECT}, filters=True)
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request: Request, format: str | None = None) -> StreamingHttpResponse:
        """Your teams' campaigns as CSV (the list's filters apply), each with its number of placements."""
        campaigns = self.filter_queryset(self.get_queryset())
        return csv_download(request, bulk.campaign_lines(campaigns), "", "campaigns.csv")

    @extend_schema(responses=CSV_RESPONSE, filters=False)
    @action(detail=True, methods=["get"], url_path="placements/export", pagination_class=None, filterset_class=None)
    def export_placements(self, request: Request, pk: str | None = None,
                          format: str | None = None) -> StreamingHttpResponse:
        """The campaign's placements as CSV in the import's columns, plus each short link: the file imports again."""
        campaign = self.get_object()
        placements = campaign.placements.select_related("campaign__team").order_by("name", "pk")
        return csv_download(request, bulk.placement_lines(placements, lambda p: p.short_url(request)), "",
                            "placements.csv")

    @extend_schema(parameters=[ExportRangeQuerySerializer], filters=False,
                   responses={**CSV_RESPONSE, 400: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="scans/export", pagination_class=None, filterset_class=None)
    def export_scans(self, request: Request, pk: str | None = None, format: str | None = None):
        """The campaign's raw scan events in a date range (the dashboard's; default: every stored scan), streamed
        as CSV (`is_repeat` and `local_time`, in the team's zone, are the last columns); a range that cannot be read
        is a 400 saying why, in JSON like every other API error. When raw scans of the range are no longer kept
        (retention) while the dashboard still counts them, the `X-Qart-Export-Note` header says so. `visitor` is the
        day's visitor key: one person's is the same on every placement of the team that day and another the next
        day, so the dashboard's unique visitors are its distinct keys per placement and local day, added up."""
        campaign = self.get_object()
        if {"range", "from", "to"} & set(request.query_params):
            asked_range(request, campaign.team, stats.Campaigns.one(campaign))  # raises the 400
        return csv_response(request, campaign.team, ScanEvent.objects.filter(placement__campaign=campaign),
                            campaign.placements.all(), campaign.name)

