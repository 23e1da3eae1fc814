"""REST API for webhooks: a team owner's endpoints and their deliveries (owners only, like the page: a webhook sends
the team's data elsewhere).

Access follows the rest of the API (`qartsite.api`): another team's endpoint answers 404 and another team's id in
`team` fails like one that does not exist (400); a member of the team who is not an owner gets 403 saying why, on
every action of an endpoint (read, change, delete, rotate, test) and on creating one, as on the page. Lists show
only the teams you own.

`team` defaults to the team you own when you own exactly one (`team_for_create`, as a campaign's defaults to the
team you edit in).

The signing secret is in the answer to the POST that makes an endpoint and to `rotate_secret`, never again. Such an
answer sent back as a PUT or PATCH is taken: `secret` unchanged passes (and changes nothing), a different one is
refused (400 naming `rotate-secret`), as the API's other read-only fields are known and left as stored.
`send_test` is the page's "Send a test" (`webhook_pings.queue_ping`).
"""

from __future__ import annotations

import hmac

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from redis.exceptions import RedisError
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns import webhook_pings, webhooks
from campaigns.api import OneAtATime
from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.webhook_views import OWNERS_ONLY
from qartsite.access import owned_teams, require_owner
from qartsite.api import (
    MODEL_FIELD_MAPPING,
    BriefChoiceField,
    CreatedLocation,
    KnownFieldsOnly,
    ScopedField,
    no_body,
    request_user,
    team_for_create,
    user_teams,
)
from qartsite.filters import IdFilter, TeamFilter, TrueFalseFilter
from qartsite.idempotency import IdempotentCreate
from qartsite.models import Team


def owned_team_scope(request: Request | None):
    return owned_teams(request_user(request))


SECRET_MADE_HERE = "The signing secret is made by the server and shown in this POST's answer: leave it out."
SECRET_UNCHANGED = ("The signing secret cannot be set: send it unchanged or leave it out. POST "
                    "/api/webhooks/{id}/rotate-secret/ for a new one.")


class WebhookEndpointSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    serializer_field_mapping = MODEL_FIELD_MAPPING
    team = ScopedField(user_teams, required=False,
                       help_text="A team you own. Defaults to your team when you own exactly one.")
    events = serializers.ListField(child=BriefChoiceField(choices=WebhookEndpoint.Event.choices),
                                   allow_empty=False)
    # Write-only: answers never show it (but the create's and rotate-secret's), and a client that stored one of those
    # and sends it back as a PUT must not be refused for it (it was an unknown field). Trimmed: a secret is compared.
    secret = serializers.CharField(write_only=True, required=False, trim_whitespace=False, help_text=(
        "Only for sending back an answer that showed it: the stored secret passes and changes nothing; any other "
        "is refused (rotate-secret makes a new one), and so is any on create."))

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "team", "url", "events", "active", "failing_since", "disabled_reason", "created", "secret"]
        read_only_fields = ["failing_since", "disabled_reason", "created"]

    def validate_secret(self, secret: str) -> str:
        if self.instance is None:
            raise serializers.ValidationError(SECRET_MADE_HERE)
        if not hmac.compare_digest(secret.encode(), self.instance.secret.encode()):
            raise serializers.ValidationError(SECRET_UNCHANGED.format(id=self.instance.pk))
        return secret

    def validate_events(self, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))  # each once, in the order given: a repeat would not send twice

    def validate_url(self, url: str) -> str:
        try:
            webhooks.validate_url(url)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return url

    def validate(self, attrs: dict) -> dict:
        attrs.pop("secret", None)  # the stored one, checked above
        if self.instance is None:
            # Your own team, without the owner's role: 403 saying so (another team's id already failed as missing).
            attrs["team"] = team_for_create(request_user(self.context.get("request")), attrs.get("team"),
                                            owners_only=OWNERS_ONLY)
        elif "team" in attrs and attrs["team"] != self.instance.team:
            raise serializers.ValidationError({"team": ["An endpoint stays in the team that made it."]})
        team = attrs.get("team") or getattr(self.instance, "team", None)
        url = attrs.get("url")
        if team is not None and url and webhooks.sent_there_already(team.pk, url, getattr(self.instance, "pk", None)):
            raise serializers.ValidationError({"url": [webhooks.SENT_THERE_ALREADY]})
        if attrs.get("active") and self.instance is not None and not self.instance.active:
            attrs["failing_since"], attrs["disabled_reason"] = None, ""  # switched on again: a fresh start
        return attrs


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The whsec_ signing secret: shown this once.")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "message_id", "event", "attempt", "ok", "status_code", "error", "time"]
        read_only_fields = fields  # written by the delivery worker only


class TestQueuedSerializer(serializers.Serializer):
    message_id = serializers.CharField(help_text=(
        "The test's message id: its attempt is listed under /api/webhook-deliveries/ with this id once sent"))


class TestRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    message_id = serializers.CharField(required=False, help_text="The test still waiting (409 only)")


def with_secret(endpoint: WebhookEndpoint, status: int = 200) -> Response:
    """The answer that shows an endpoint's secret, kept by no cache, as the page's and a share link's are: a proxy's
    or a client library's copy would hand the secret to whoever asked next."""
    response = Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status)
    response["Cache-Control"] = "no-store"
    return response


class OwnersEndpoint:
    """A view set mixin: the endpoint, like the page: 404 outside the user's teams, 403 for a member who is not an
    owner."""

    def get_object(self) -> WebhookEndpoint:
        endpoint = get_object_or_404(WebhookEndpoint.objects.filter(team__in=Team.for_user(self.request.user)),
                                     pk=self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        require_owner(self.request.user, endpoint.team, OWNERS_ONLY)
        self.check_object_permissions(self.request, endpoint)
        return endpoint


class WebhookEndpointFilter(filters.FilterSet):
    # As a campaign list's `?team=`: an owner of several teams asked for one team's and got every team's endpoints.
    # Scoped to the teams you own: another team's id fails like one that does not exist.
    team = TeamFilter(queryset=owned_team_scope)

    class Meta:
        model = WebhookEndpoint
        fields = ["team"]


class WebhookEndpointViewSet(CreatedLocation, IdempotentCreate, OneAtATime, OwnersEndpoint, viewsets.ModelViewSet):
    """The webhook endpoints of the teams you own. PATCH `active: true` switches a disabled one on again.

    A member of the endpoint's team who is not an owner gets 403 on each of its actions; anyone else, 404. A PATCH
    works on the endpoint as stored: one that a delivery job switched off meanwhile stays off."""

    # The docstring above is the API docs' text: the lock that keeps a PATCH on the stored endpoint is `OneAtATime`.

    idempotent_keeps_body = False  # the create answer carries a secret shown once

    queryset = WebhookEndpoint.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = WebhookEndpointSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = WebhookEndpointFilter
    ordering_fields = ["created"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.filter(team__in=owned_teams(self.request.user))

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save(secret=webhooks.new_secret())
        return with_secret(endpoint, status=201)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        webhooks.delete_endpoint(instance)  # with a delivery being logged at that moment

    @extend_schema(request=None, responses={200: WebhookEndpointWithSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret, in this answer only; the old one stops signing at once."""
        no_body(request)
        endpoint = self.get_object()
        endpoint.secret = webhooks.new_secret()
        endpoint.save(update_fields=["secret"])
        return with_secret(endpoint)

    @extend_schema(request=None, responses={202: TestQueuedSerializer, 403: TestRefusedSerializer,
                                            409: TestRefusedSerializer, 503: TestRefusedSerializer})
    @action(detail=True, methods=["post"], url_path="send-test")
    def send_test(self, request: Request, pk: str | None = None) -> Response:
        """Queue a signed `webhook.ping` to the endpoint (one attempt, logged as a delivery). One test per endpoint
        waits at a time: 409 with the waiting one's id until its attempt is logged."""
        no_body(request)
        endpoint = self.get_object()
        try:
            message_id = webhook_pings.queue_ping(endpoint)
        except webhook_pings.PingPending as pending:
            return Response({"detail": "A test of this endpoint is already queued: send another once its attempt is "
                                       "listed.", "message_id": pending.message_id}, status=409)
        except RedisError as exc:
            # A refused password: no Retry-After, as no wait mends it
            if refused := webhook_pings.password_refused(exc, request.user.is_superuser):
                return Response({"detail": refused}, status=503)
            return Response({"detail": webhook_pings.QUEUE_AWAY}, status=503, headers={"Retry-After": "60"})
        return Response({"message_id": message_id}, status=202)


def owned_endpoints(request: Request | None) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(team__in=owned_team_scope(request))


class WebhookDeliveryFilter(filters.FilterSet):
    # Scoped: django-filter's default checks the id against every team's endpoints, so another team's endpoint
    # (an empty list) and a missing one (a 400) would answer differently.
    endpoint = IdFilter(queryset=owned_endpoints)
    ok = TrueFalseFilter()
    # A choice: a misspelt event answered an empty list, as if nothing had been sent
    event = filters.ChoiceFilter(choices=[*WebhookEndpoint.Event.choices, (webhooks.PING_EVENT, "test message")])

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "ok", "event"]


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Delivery attempts to the endpoints of the teams you own, newest first (filter by `endpoint`)."""

    queryset = WebhookDelivery.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = WebhookDeliverySerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = WebhookDeliveryFilter

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return WebhookDelivery.objects.filter(endpoint__team__in=owned_teams(self.request.user))
