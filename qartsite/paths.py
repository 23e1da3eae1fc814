"""A request with a NUL in its URL path or in a header is refused before any view looks at it: 404 and 400.

No address the site makes contains one, and PostgreSQL refuses a NUL in a text parameter (DataError): a slug, token
or prefix taken from such a path gave a 500, and on the short link a DataError was taken for a database that is away
(every link of the process went to its copies for 2 s). Headers the same: django-axes records a failed sign-in's
User-Agent and Accept header, and a NUL there was a 500. gunicorn refuses such headers itself; the development server
(`make run`'s) passes them on. One check here covers every route and header, those to come included.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from qartsite.limits import refused

NUL_HEADER = "A header of this request holds a NUL character, which no browser sends: nothing was done."


class NulPathMiddleware:
    """Last in MIDDLEWARE, so the 404 page goes out through the others (its CSP nonce, the signed-in user)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            raise Http404("No page has this address.")
        if any("\x00" in value for key, value in request.META.items()
               if key.startswith("HTTP_") and isinstance(value, str)):
            return refused(request, NUL_HEADER, 400)  # JSON under /api/, as the API's clients read every answer
        return self.get_response(request)
