"""A URL path with a NUL in it is no page of the site: 404 before any view looks it up.

No address the site makes contains one, and PostgreSQL refuses a NUL in a text parameter (DataError): a slug, token
or prefix taken from such a path gave a 500, and on the short link a DataError was taken for a database that is away
(every link of the process went to its copies for 2 s). One check here covers every route, those to come included.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


class NulPathMiddleware:
    """Last in MIDDLEWARE, so the 404 page goes out through the others (its CSP nonce, the signed-in user)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            raise Http404("No page has this address.")
        return self.get_response(request)
