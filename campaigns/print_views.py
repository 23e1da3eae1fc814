"""A placement's code as files: the plain code as SVG or PNG, and print files at physical size (made and verified
in the request, or by a worker when large: `campaigns.print_builds`). Every team member may download them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from campaigns import print_builds, printfiles
from campaigns.models import Placement
from campaigns.placement_views import placement_page, placements_for
from generator.core.codes import downloads, qr
from qartsite import file_responses
from qartsite.access import get_for_user_or_404


def plain_code(request: HttpRequest, placement: Placement) -> qr.QRCode:
    # A plain code has no art to make room for, so any version is fine; short links stay small anyway.
    return qr.encode(placement.short_url(request), ecc=settings.QART["DEFAULT_ECC"], max_version=40)


@login_required
@require_safe
def placement_code_svg(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    return file_responses.send(request, downloads.code_svg(plain_code(request, placement)).encode(), "image/svg+xml",
                               f"qart-{placement.slug}.svg", attachment="download" in request.GET)


@login_required
@require_safe
def placement_code_png(request: HttpRequest, placement_id: int) -> HttpResponse:
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    size = downloads.PRINT_SIZES[1]  # 2048 px: 17 cm at 300 dpi, crisp since modules are drawn at that size
    image = qr.render_control_image(plain_code(request, placement), size=size)
    return file_responses.send(request, downloads.png_at_size(image, size), "image/png", f"qart-{placement.slug}.png")


@login_required
@require_safe
def placement_print(request: HttpRequest, placement_id: int) -> HttpResponse:
    """A print file at physical size (query: width=20cm, dpi, bleed, crop_marks, format, cmyk), read back and
    verified before it is sent; the artwork's, else the plain code's."""
    placement = get_for_user_or_404(placements_for(request), pk=placement_id)
    try:
        made = print_builds.requested_file(placement, placement.short_url(request), request.GET, request.user.pk,
                                           start=request.method != "HEAD")
        cautions = printfiles.cautions(made.report, placement) if request.GET.get("confirm") != "1" else []
        if cautions and request.method != "HEAD":
            # The API sends these in its report header; a person gets them before the file, with the same file
            # one click away.
            confirmed = request.GET.copy()
            confirmed["confirm"] = "1"
            return placement_page(request, placement, cautions=cautions,
                                  confirm_url=f"{request.path}?{confirmed.urlencode()}")
        response = print_builds.download(request, made, print_builds.file_name(placement, made))
        if cautions:  # a HEAD (the waiting page's script): the GET that follows shows them, not the file
            response["X-Qart-Print-Cautions"] = str(len(cautions))
        return response
    except (printfiles.Refused, print_builds.Making) as exc:
        if request.method == "HEAD" and isinstance(exc, print_builds.Making):
            return HttpResponse(status=202)  # the waiting page's script asking: no page to draw for it
        # A person at the print form: answer with the page, the reason (or that a worker is making the file, the
        # page asking again by itself) next to the form and the options as typed.
        return placement_page(request, placement, refusal=exc)
