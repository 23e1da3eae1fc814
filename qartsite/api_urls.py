"""REST API routes under /api/: the apps' view sets, the OpenAPI 3 schema and its browsable docs."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from campaigns.alert_api import PlacementAlertViewSet
from campaigns.api import CampaignViewSet, PlacementViewSet
from campaigns.share_api import ReportShareViewSet
from campaigns.webhook_api import WebhookDeliveryViewSet, WebhookEndpointViewSet
from generator.api import GenerationViewSet
from qartsite.team_api import TeamViewSet

router = DefaultRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("placements", PlacementViewSet, basename="placement")
router.register("generations", GenerationViewSet, basename="generation")
router.register("alerts", PlacementAlertViewSet, basename="alert")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("shares", ReportShareViewSet, basename="share")
router.register("teams", TeamViewSet, basename="team")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    *router.urls,
]
