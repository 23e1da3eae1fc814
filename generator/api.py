"""REST API for generations: create a job, follow its status and progress, read its ranked candidates, cancel it.

Creating first asks whether the team has generations left (`throttles`, shared with the page; before a picture is
decoded), checks every parameter with `job_parameters.validate_job` before anything is saved, then counts against the
team's generation rate (GPU time is money), saves, and queues the job once the transaction commits.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import links
from campaigns.models import Placement
from generator import engine_status, job_parameters, jobs, reconcile, uploads, verifier_models
from generator.core.codes import images, logos, qr
from generator.core.engines import parameters, ranking
from generator.forms import PROMPT_CHARS, bounds_kwargs, field_for_message, prompt_problem, range_kwargs
from generator.models import Candidate, EvalSample, GenerationJob, Prompt
from generator.throttles import TeamGenerationThrottle, refused
from qartsite.api import (
    MODEL_FIELD_MAPPING,
    AsciiIntegerField,
    BriefChoiceField,
    CreatedLocation,
    KnownFieldsOnly,
    OneFileField,
    ScopedField,
    TeamRolePermission,
    no_body,
    request_user,
    team_for_create,
    user_objects,
    user_teams,
)
from qartsite.filters import IdFilter, TeamFilter, TrueFalseFilter
from qartsite.idempotency import IdempotentCreate

POLLING = ("queued, running and scoring: on its way (GET the generation again every few seconds; `progress` and "
           "`stage` say how far it has come); done, failed and cancelled: final, its `candidates` complete.")


class ScanReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="e.g. finder_damaged, low_contrast, quiet_zone, not_found")
    text = serializers.CharField()


class CandidateSerializer(serializers.ModelSerializer):
    scan_verdict = serializers.SerializerMethodField(
        help_text='The verdict in plain words: "Scans reliably." or "May not scan: " and why.')
    scan_reasons = serializers.SerializerMethodField(help_text="What the verifier found wrong, worst first.")
    verifier_model = serializers.CharField(read_only=True, help_text="The id of the decision model that judged it.")

    class Meta:
        model = Candidate
        fields = ["id", "rank", "index", "batch", "seed", "image", "scan_probability", "verdict", "scan_verdict",
                  "scan_reasons", "verifier_model", "misread", "decoded_text", "aesthetic_score", "repaired",
                  "pixels_changed", "ssim", "variant", "fidelity_ssim", "color_error"]
        read_only_fields = fields

    def get_scan_verdict(self, candidate: Candidate) -> str:
        return verifier_models.scan_verdict(candidate)

    @extend_schema_field(ScanReasonSerializer(many=True))
    def get_scan_reasons(self, candidate: Candidate) -> list[dict[str, str]]:
        reasons = verifier_models.scan_reasons(candidate)
        return [{"code": str(r.get("code", "")), "text": str(r["text"])} for r in reasons]


class GenerationSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    # NaN and infinities would be stored (PostgreSQL takes them) and then break every listing of the team's jobs.
    serializer_field_mapping = MODEL_FIELD_MAPPING
    team = ScopedField(user_teams, required=False,
                       help_text="Defaults to the placement's team, else to your team when you edit in just one.")
    placement = ScopedField(user_objects(Placement), required=False, allow_null=True,
                            help_text="The placement whose short link the code carries.")
    engine = BriefChoiceField(
        GenerationJob.Engine.choices, required=False,
        help_text="diffusion (a prompt, GPU weights) or halftone (a picture, CPU). Default: halftone when this "
                  "server has no diffusion weights and a picture is given, else diffusion.",
    )
    picture = OneFileField(
        write_only=True, required=False,
        help_text="halftone: the picture or logo (multipart upload; still, at least 64 px a side). Re-encoded as PNG.",
    )
    logo = OneFileField(
        write_only=True, required=False,
        help_text="halftone: a logo for the centre of the code, on a white square (PNG, JPEG or WebP); the code is "
                  "then level H. Refused when the code has no room for it.",
    )
    earlier_candidate = AsciiIntegerField(
        write_only=True, required=False, min_value=1,
        help_text="halftone: instead of a picture, the id of one of the team's earlier candidates.",
    )
    # At most PROMPT_CHARS characters, said in the page's words (`validate_prompt`), not DRF's stock ones.
    prompt = serializers.CharField(source="prompt.text", required=False, allow_blank=True, default="",
                                   help_text=f"What the picture shows (diffusion; optional for halftone); at most "
                                             f"{PROMPT_CHARS:,} characters.")
    negative_prompt = serializers.CharField(source="prompt.negative_text", allow_blank=True,
                                            default=parameters.DEFAULT_NEGATIVE,
                                            help_text=f"What it should not; at most {PROMPT_CHARS:,} characters.")
    # Capped before anything is encoded: fitting 4 M characters into a code cost 10 s of CPU. Its ends stripped, as
    # the page's form strips them: a pasted "  https://example.com/ " made a code that carried the spaces.
    content = serializers.CharField(required=False, allow_blank=True,
                                    max_length=qr.MAX_CONTENT_CHARS,
                                    error_messages={"max_length": qr.CONTENT_TOO_LONG},
                                    help_text="The exact text the code carries (its leading and trailing spaces "
                                              "removed); defaults to the placement's short link.")
    scheduler = BriefChoiceField(parameters.SCHEDULERS, default=parameters.GenerationParams.scheduler,
                                 help_text="lcm or tcd: the few-step preset (4-8 steps, no guidance), offered only "
                                           "where a few-step LoRA is configured.")
    style = BriefChoiceField(qr.STYLES, default="square")
    background = BriefChoiceField(list(qr.BACKGROUNDS), default="white")
    queue_position = serializers.SerializerMethodField(
        help_text="While `status` is queued, its place in the queue: 1 for the next job to run; null otherwise (or "
                  "when the queue cannot tell).")
    worker_silent = serializers.SerializerMethodField(help_text=(
        f"While running: seconds since its worker was last heard from (it reports every {reconcile.RENEWAL} s; past "
        f"{reconcile.SILENT_AFTER} s the worker has most likely stopped, and the job is re-queued or failed within a "
        f"few minutes). Null otherwise, or when Redis cannot tell (it restarted)."))
    candidates = CandidateSerializer(many=True, read_only=True, help_text="Best first.")

    class Meta:
        model = GenerationJob
        fields = [
            "id", "team", "placement", "engine", "picture", "logo", "earlier_candidate", "prompt", "negative_prompt",
            "content",
            "steps", "guidance_scale", "conditioning_scale", "control_start", "control_end", "strength", "size",
            "scheduler", "candidates_per_batch", "max_batches", "seed", "style", "background", "ecc",
            "status", "stage", "progress", "queue_position", "worker_silent", "cancel_requested", "batches",
            "scannable", "picture_fights", "tiny_model", "result_message", "error", "created", "started", "finished",
            "queue_seconds", "generation_seconds", "scoring_seconds", "total_seconds", "control_image", "candidates",
        ]
        # The ranges the core enforces, on each field: a value out of range is that field's 400 (all at once), in the
        # page's words, and the schema documents them (`generator.forms.RANGES`, held to the core by its tests).
        extra_kwargs = {name: range_kwargs(name, label) for name, label in (
            ("steps", "Steps"), ("guidance_scale", "Guidance scale"), ("conditioning_scale", "Conditioning scale"),
            ("control_start", "Control start"), ("control_end", "Control end"), ("size", "Size"),
            ("candidates_per_batch", "Candidates per batch"), ("seed", "Seed"))} | {
            "max_batches": bounds_kwargs("The batch budget", 1, ranking.MAX_BATCH_BUDGET),
            # Which statuses are final was nowhere to be read: a client polling until "running" ended stopped at
            # "scoring", with no candidates yet.
            "status": {"help_text": POLLING},
            # Above 0, which a minimum cannot say: the core refuses 0 in its own words.
            "strength": {
                "max_value": 1.0,
                "error_messages": {"max_value": "Strength must be above 0 and at most 1, got %(value)s."},
                "help_text": "img2img: how much of the start (the code's control image) is repainted, above 0 and at "
                             "most 1; empty: text to image."}}
        read_only_fields = [
            "ecc", "status", "stage", "progress", "cancel_requested", "batches", "scannable", "picture_fights",
            "tiny_model", "result_message", "error", "created", "started", "finished", "queue_seconds",
            "generation_seconds", "scoring_seconds", "total_seconds", "control_image",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The few-step scheduler (lcm or tcd) only where a few-step LoRA is configured.
        self.fields["scheduler"].choices = job_parameters.schedulers()

    def get_queue_position(self, job: GenerationJob) -> int | None:
        return jobs.queue_position(job)

    def get_worker_silent(self, job: GenerationJob) -> float | None:
        silence = reconcile.worker_silence(job)
        return None if silence is None else round(silence, 1)

    # One picture for many links (a campaign's placements, `BulkGenerationSerializer`): it may carry no code at all.
    many_links = False

    def validate_prompt(self, value: str) -> str:
        if problem := prompt_problem("The prompt", value):
            raise serializers.ValidationError(problem)
        return value

    def validate_negative_prompt(self, value: str) -> str:
        if problem := prompt_problem("The negative prompt", value):
            raise serializers.ValidationError(problem)
        return value

    def validate_content(self, value: str) -> str:
        if problem := links.web_address_problem(value):  # "htp:/exa mple" would scan, and open nothing
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict) -> dict:
        placement = attrs.get("placement")
        team = attrs.get("team") or (placement.campaign.team if placement else None)
        attrs["team"] = team_for_create(request_user(self.context.get("request")), team)
        if placement is not None and placement.campaign.team_id != attrs["team"].pk:
            raise serializers.ValidationError({"placement": ["Choose a placement of the generation's team."]})
        # Before the picture is decoded: a team with no generations left costs no more than this.
        throttle = TeamGenerationThrottle(attrs["team"])
        if not throttle.has_room():
            raise refused(throttle.wait(), throttle.used_up())
        if not attrs.get("content"):  # blank, or only spaces (the field strips them), as on the page
            if placement is None:
                raise serializers.ValidationError(
                    {"content": ["Say what the code carries, or choose a placement to carry its short link."]}
                )
            attrs["content"] = placement.short_url(self.context["request"])
        self.settle_engine(attrs)
        try:
            self.logo = uploads.logo_for(attrs.get("logo"), attrs["engine"], attrs["content"])
        except qr.ContentError:
            self.logo = None  # the content's own error, said by validate_job
        except (images.ImageError, logos.LogoError) as exc:
            raise serializers.ValidationError({"logo": [str(exc)]}) from None
        return attrs

    def settle_engine(self, attrs: dict) -> None:
        """Settle the engine (see `engine_status.default_engine`); halftone needs a picture, diffusion a prompt."""
        self.picture = None  # the checked PIL picture of a halftone job, stored by uploads.save_new_job
        given = "picture" in attrs or "earlier_candidate" in attrs
        attrs["engine"] = attrs.get("engine") or engine_status.default_engine(given)
        if attrs["engine"] == engine_status.DIFFUSION:
            if not attrs.get("prompt", {}).get("text", "").strip():
                raise serializers.ValidationError({"prompt": ["Describe the picture the code should become."]})
            if given:  # it was dropped without a word, and a text-to-image job ran
                field = uploads.picture_field(attrs.get("picture"), attrs.get("earlier_candidate"))
                raise serializers.ValidationError({field: [uploads.PICTURE_NEEDS_HALFTONE]})
            return
        upload, candidate_pk = attrs.get("picture"), attrs.get("earlier_candidate")
        if upload and candidate_pk is not None:  # the upload won without a word, the candidate never looked at
            raise serializers.ValidationError({"earlier_candidate": [
                "Send a picture or an earlier candidate, not both."]})
        try:
            name = uploads.shown_name(upload.name) if upload else "The candidate"
            picture = uploads.storable(uploads.chosen(upload, attrs["team"], candidate_pk), name)
            uploads.refuse_other_code(picture, None if self.many_links else attrs["content"], name)
            self.picture = picture
        except images.ImageError as exc:
            raise serializers.ValidationError({uploads.picture_field(upload, candidate_pk): [str(exc)]}) from None

    def unsaved_job(self, owner) -> GenerationJob:
        """The validated job, not yet saved, with an unsaved prompt (remembered only once the job is accepted)."""
        data = dict(self.validated_data)
        data.pop("picture", None)
        data.pop("earlier_candidate", None)
        data.pop("logo", None)
        prompt = Prompt(owner=owner, **data.pop("prompt"))
        data.setdefault("candidates_per_batch", settings.QART["CANDIDATES"])
        data.setdefault("max_batches", settings.QART["MAX_BATCHES"])
        ecc = logos.LOGO_ECC if self.logo is not None else settings.QART["DEFAULT_ECC"]
        return GenerationJob(owner=owner, prompt=prompt, ecc=ecc, **data)


class GenerationFilter(filters.FilterSet):
    team = TeamFilter(queryset=user_teams)
    placement = IdFilter(queryset=user_objects(Placement))
    scannable = TrueFalseFilter()
    # Unset lists every job, as before this filter existed: clients that page through everything keep working.
    sweep = TrueFalseFilter(
        method="filter_sweep",
        help_text="true: only jobs made by an evaluation sweep (qart_sweep); false: only the others. Default: all.",
    )

    class Meta:
        model = GenerationJob
        fields = ["team", "placement", "status", "scannable", "sweep"]

    def filter_sweep(self, queryset: QuerySet[GenerationJob], name: str, value: str) -> QuerySet[GenerationJob]:
        in_sweep = Exists(EvalSample.objects.filter(job=OuterRef("pk")))
        return queryset.filter(in_sweep) if value == "true" else queryset.filter(~in_sweep)


# The team's generation rate as a created generation's answer says it (`throttles.rate_headers`), as response headers
# of the 201: in its description alone, a client made from the schema had no field to read them by. Not sent without
# a rate (QART_GENERATION_RATE empty) or when the cache could not be read: not required.
RATE_HEADERS = [
    OpenApiParameter(name, int, OpenApiParameter.HEADER, response=[201], description=description)
    for name, description in (
        ("RateLimit-Limit", "Generations the team may create in the rate's window (QART_GENERATION_RATE)."),
        ("RateLimit-Remaining", "Generations the team may still create now."),
        ("RateLimit-Reset", "Seconds until the oldest counted generation leaves the window."))
]


CREATE_EXAMPLE = OpenApiExample("For a short link", request_only=True, value={
    "prompt": "a misty forest at dawn, volumetric light", "content": "https://qart.example/r/AbC12345",
    "steps": 25, "seed": 42, "style": "rounded",
})


@extend_schema_view(
    create=extend_schema(parameters=RATE_HEADERS, examples=[CREATE_EXAMPLE], responses={
        # Sent since the rate was counted, said nowhere: an integrator could not pace a batch by them.
        201: OpenApiResponse(GenerationSerializer, description=(
            "Created and queued. RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds until the oldest "
            "counted generation leaves the window) say the team's generation rate; poll the generation (Location) "
            "until its `status` is final.")),
        400: OpenApiResponse(description="A bad parameter: the message says which and why."),
        413: OpenApiResponse(description="The body is over the upload cap (QART_MAX_UPLOAD_BYTES); nothing was read."),
        429: OpenApiResponse(description="The team's generation rate, shared with the generation page, is used up; "
                                         "Retry-After says when to retry. Checked before a picture is decoded."),
        503: OpenApiResponse(description="The picture could not be stored (the image storage is unavailable): "
                                         "nothing was created; or the job queue does not answer: nothing was "
                                         "created (should it go away just after the job was, `id` names the job, "
                                         "failed with the reason: nothing will run it). Retry-After says when to "
                                         "retry."),
    }),
)
class GenerationViewSet(CreatedLocation, IdempotentCreate, mixins.CreateModelMixin, mixins.ListModelMixin,
                        mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your teams' generations: create one (editors), follow its progress (poll it until `status` is done, failed
    or cancelled), read its ranked candidates, delete a finished one (editors) with its images and uploads."""

    serializer_class = GenerationSerializer
    permission_classes = [permissions.IsAuthenticated, TeamRolePermission]
    filterset_class = GenerationFilter
    ordering_fields = ["created", "status", "total_seconds"]
    team_path = "team"

    def get_queryset(self) -> QuerySet[GenerationJob]:
        ranked = Candidate.objects.order_by(F("rank").asc(nulls_last=True), "index")
        return GenerationJob.objects.for_user(self.request.user).select_related("prompt").prefetch_related(
            Prefetch("candidates", queryset=ranked)
        )

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = serializer.unsaved_job(request.user)
        try:
            job_parameters.validate_job(job)
        except qr.ContentError as exc:
            raise serializers.ValidationError({"content": [str(exc)]}) from None
        except ValueError as exc:
            # At the field it is about, as the page's form puts it; a message about the job as a whole as "detail".
            field = field_for_message(exc, serializer.fields)
            raise serializers.ValidationError({field: [str(exc)]} if field else {"detail": str(exc)}) from None
        if refusal := jobs.queue_refusal(request.user.is_superuser):  # nothing stored or counted
            retry = {"Retry-After": "60"} if refusal == jobs.QUEUE_UNAVAILABLE else None  # no wait mends a password
            return Response({"detail": refusal}, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=retry)
        # Counted only now that the job is accepted (the serializer only asked whether there was room).
        throttle = TeamGenerationThrottle(job.team)
        if not throttle.allow_request(request, self):
            raise refused(throttle.retry_after(), throttle.refusal())
        try:
            with transaction.atomic():
                uploads.save_new_job(job, request.user, serializer.picture, serializer.logo)
                jobs.enqueue_generation(job)  # sends once this transaction commits
        except OSError as exc:
            uploads.log_not_stored(exc)
            return Response({"detail": uploads.NOT_STORED}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "60"})
        made = self.get_queryset().get(pk=job.pk)
        if made.status == GenerationJob.Status.FAILED and made.error == jobs.QUEUE_UNAVAILABLE:
            # Queued on commit, which just failed: the row stays (failed, with the reason), but nothing will run, so
            # the answer is not a 201, and the team's rate gets its job back.
            throttle.give_back()
            return Response({"detail": made.error, "id": made.pk}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "60"})
        return Response(self.get_serializer(made).data, status=status.HTTP_201_CREATED,
                        headers=throttle.rate_headers())

    @extend_schema(responses={
        204: None,
        409: OpenApiResponse(description="Something keeps it: it has not finished, a placement prints one of its "
                                         "codes, or people labelled them (`detail` says which)."),
    })
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        """Delete a finished generation, its candidates, picture and logo (their files within a day)."""
        job = self.get_object()
        kept = jobs.delete(job)
        if kept:
            return Response({"detail": kept}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={
        200: GenerationSerializer,
        409: OpenApiResponse(description="The generation has already finished."),
    })
    @action(detail=True, methods=["post"])
    # `format`: the router also routes cancel.json / cancel.api here (format suffixes).
    def cancel(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """Cancel: at once while queued, between denoising steps while running."""
        no_body(request)
        job = self.get_object()
        if job.is_finished:
            return Response({"detail": f"This generation has already finished ({job.status})."},
                            status=status.HTTP_409_CONFLICT)
        jobs.request_cancel(job)
        return Response(self.get_serializer(self.get_queryset().get(pk=job.pk)).data)
