"""Top-level URL routes. Each app keeps its own urls module; the REST API lives under /api/."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from campaigns import redirects
from qartsite import admin as site_admin
from qartsite import api_urls, media, views

admin.site.site_header = "qart admin"
admin.site.site_title = "qart admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Ahead of the admin's own "view on site" redirect: a 404 for kinds of objects that have no table (site_admin).
    path("admin/r/<int:content_type_id>/<path:object_id>/", admin.site.admin_view(site_admin.view_on_site),
         name="admin_view_on_site"),
    path("admin/", admin.site.urls),
    # Whatever follows /r/, slashes included: a link typed back from a print with a stray slash or dot ("/r/x/.",
    # "/r/x//"), or pasted by a tool that adds one, is still the link, and anything else is the unknown link's page
    # (it was the generic 404). `links.slug_in` reads the slug out of it. Reversed with the slug alone. Any character,
    # a line break (%0A) included, which `.` does not match: such a path was the site's plain 404 again. Nothing at
    # all too: "/r/" and "/r" (a link cut short) are the unknown link's page, as an unknown slug is; "/r" in this
    # route, not left to APPEND_SLASH, whose redirect drops a POST (a RuntimeError, a 500, under DEBUG). "/R/" too:
    # codes carry the link in capitals (`campaigns.links.code_link`); reversed as "/r/" (a class's first character).
    re_path(r"^[rR](?:/(?P<slug>[\s\S]*))?$", redirects.short_link, name="short_link"),
    path("accounts/", include("qartsite.account_urls")),
    path("campaigns/", include("campaigns.urls")),
    path("generate/", include("generator.urls")),
    path("l/", include("generator.evals.labeling_urls")),
    path("evals/", include("generator.evals.urls")),
    path("api/", include("qartsite.api_urls")),
    re_path(r"^api$", api_urls.root_unslashed, name="api_root_unslashed"),  # every API path answers without its slash
    # "/api%0A", "/api.json", "/apiv2/campaigns", "/API/campaigns/": the API's JSON 404 as under /api/
    # (`responses.is_api_path`), not the site's HTML page (Django's debug page under DEBUG). In any case: "/api" and
    # "/api/..." in lower case are taken by the two routes above. Classes, not "(?i:api)": `reverse()` of any name
    # reads every pattern, and refuses that one (ValueError, a 500 on every page that links by name); capitals first,
    # so that this route's own reverse ("/API", each class's first letter) is an address it takes.
    re_path(r"^[Aa][Pp][Ii][\s\S]*$", csrf_exempt(views.api_address_not_found), name="api_near_miss"),
    # Uploads and generated images, in every mode, each answered only to its owner's team (qartsite.media).
    path(f"{settings.MEDIA_URL.lstrip('/')}<path:path>", media.serve, name="media"),
]

handler400 = "qartsite.views.bad_request"
handler403 = "qartsite.views.forbidden"
handler404 = "qartsite.views.not_found"
handler500 = "qartsite.views.server_error"
