"""The API's content negotiation: DRF's, but a format it cannot render is said to be one, an Accept header that names
no media type asks for nothing in particular, and a 406 names the types there are. No application imports: DRF loads
this by name while `rest_framework.views` is being imported."""

from __future__ import annotations

from django.http import Http404
from rest_framework import negotiation
from rest_framework.exceptions import NotAcceptable


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """A format no renderer has (`?format=csv`, a `.csv` suffix) is a 406 that names the formats there are: DRF
    raises Http404, which read "Not found." for a campaign that exists. A suffix of digits is still a 404: it is the
    rest of a mistyped id. Views that answer in one format whatever is asked (CSV exports, print files) force
    negotiation, which takes the first renderer when this raises."""

    def filter_renderers(self, renderers, format):
        chosen = [renderer for renderer in renderers if renderer.format == format]
        if not chosen and str(format).isdigit():
            raise Http404  # the rest of an id like "1.5" the router took for a suffix: no such object
        if not chosen:
            formats = ", ".join(dict.fromkeys(renderer.format for renderer in renderers))
            raise NotAcceptable(f"The format “{str(format)[:40]}” is not supported here; use one of: {formats}.")
        return chosen

    def get_accept_list(self, request) -> list[str]:
        """The header's media types. One that names none (`Accept:` sent empty, or only commas) is read as no header,
        `*/*` (RFC 9110, 12.5.1), as browsers and proxies do: DRF looked for a renderer of type "" and answered 406."""
        return [token for token in super().get_accept_list(request) if token] or ["*/*"]

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable as exc:
            if exc.available_renderers is None:
                raise  # filter_renderers' own words
            types = ", ".join(dict.fromkeys(renderer.media_type for renderer in renderers))
            asked = request.META.get("HTTP_ACCEPT", "")[:80]
            raise NotAcceptable(f"This answers in {types}; the Accept header asked for “{asked}”.",
                                available_renderers=renderers) from None
