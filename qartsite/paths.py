"""A request with a NUL in its URL path or in a header is refused before any view looks at it: 404 and 400.

No address the site makes contains one, and PostgreSQL refuses a NUL in a text parameter (DataError): a slug, token
or prefix taken from such a path gave a 500, and on the short link a DataError was taken for a database that is away
(every link of the process went to its copies for 2 s). Headers the same: django-axes records a failed sign-in's
User-Agent and Accept header, and a NUL there was a 500. gunicorn refuses such headers itself; the development server
(`make run`'s) passes them on. One check here covers every route and header, those to come included.

A page's address typed without its trailing slash is redirected to it with the method and body kept (a 308) when
the request is not a GET or HEAD: Django's own redirect (a 301, which clients follow with a GET and no body) lost a
form sent there, and under DEBUG it raised a RuntimeError instead (a 500 page).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseRedirectBase
from django.middleware.common import CommonMiddleware
from django.utils.http import escape_leading_slashes

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


class PermanentRedirectKeepingMethod(HttpResponseRedirectBase):
    """308 Permanent Redirect: the client sends the same method and body to the new address (RFC 9110, 15.4.9)."""

    status_code = 308


class AppendSlashMiddleware(CommonMiddleware):
    """Django's CommonMiddleware (APPEND_SLASH, the Content-Length of answers), whose redirect to the address with
    its slash keeps a POST, PUT, PATCH or DELETE what it was (a 308) in every mode. A GET or HEAD keeps Django's 301,
    which browsers remember."""

    def get_full_path_with_slash(self, request: HttpRequest) -> str:
        # Django's raises a RuntimeError under DEBUG for a POST, PUT or PATCH, since its 301 would lose the body.
        return escape_leading_slashes(request.get_full_path(force_append_slash=True))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code == 404 and request.method not in ("GET", "HEAD") and \
                self.should_redirect_with_slash(request):
            response = PermanentRedirectKeepingMethod(self.get_full_path_with_slash(request))
        return super().process_response(request, response)
