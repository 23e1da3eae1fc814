"""REST API routes under /api/: the apps' view sets, the OpenAPI 3 schema and its browsable docs."""

from __future__ import annotations

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from campaigns.alert_api import PlacementAlertViewSet
from campaigns.api import CampaignViewSet
from campaigns.placement_api import PlacementViewSet
from campaigns.share_api import ReportShareViewSet
from campaigns.webhook_api import WebhookDeliveryViewSet, WebhookEndpointViewSet
from generator.api import GenerationViewSet
from qartsite import views
from qartsite.team_api import TeamViewSet


class OptionalSlashRouter(DefaultRouter):
    """Routes that answer with or without the trailing slash, so `POST /api/campaigns` works as integrators type it.

    Without this, Django's APPEND_SLASH answers a slashless POST with a 301 that drops the body (a RuntimeError
    page under DEBUG). One pattern per route (`campaigns/?`), not two: the schema lists each path once, with its
    slash (drf-spectacular drops the `?`). Django reverses an optional slash to none, so `reverse()` of these
    names (the browsable API's root) gives the slashless form, which works as well.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"  # DRF's `trailing_slash` argument is a bool: the pattern is set after
        # Ids in ASCII digits, no leading zero (a view set may still set its own `lookup_value_regex`). DRF's
        # default, `[^/.]+`, handed the ORM "+1", " 1", "01", "١" (Arabic-Indic) and "１" (full-width), which int()
        # reads as 1: one object at many addresses.
        self._default_value_pattern = "[1-9][0-9]*"

router = OptionalSlashRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("placements", PlacementViewSet, basename="placement")
router.register("generations", GenerationViewSet, basename="generation")
router.register("alerts", PlacementAlertViewSet, basename="alert")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("shares", ReportShareViewSet, basename="share")
router.register("teams", TeamViewSet, basename="team")


class DocsView(SpectacularSwaggerView):
    """drf-spectacular's Swagger UI page, whose OPTIONS answers in JSON as every API path's does: its page template
    drew the description without the page's context, and failed (a 500)."""

    def options(self, request, *args, **kwargs):
        response = super().options(request, *args, **kwargs)
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response


schema = SpectacularAPIView.as_view()
# In the site's page (its header and navigation), not drf-spectacular's bare one.
docs = DocsView.as_view(url_name="api_schema", template_name="qartsite/api_docs.html")

# The API's root at /api (no slash), mounted by qartsite.urls beside /api/: a 301 there dropped a POST's body.
root_unslashed = router.get_api_root_view()

urlpatterns = [
    path("schema/", schema, name="api_schema"),
    path("docs/", docs, name="api_docs"),
    # Without the slash too, as every API path answers (no redirect).
    re_path(r"^schema$", schema, name="api_schema_unslashed"),
    re_path(r"^docs$", docs, name="api_docs_unslashed"),
    *router.urls,
    # Any other address under /api/ is the API's "Not found." in JSON, under DEBUG too (`make run`), where Django
    # answers an address no route takes with its HTML debug page instead of the site's handler404. Exempt from CSRF
    # as the API's views are: a POST there is a 404 like a GET, not a CSRF page. Any character, a line break (%0A)
    # included, which `.` does not match: such a path was Django's HTML page again.
    re_path(r"^(?P<path>[\s\S]*)$", csrf_exempt(views.api_address_not_found), name="api_not_found"),
]
