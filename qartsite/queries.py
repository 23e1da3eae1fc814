"""The API's query strings: a parameter of one value sent more than once is refused under its name (400, "Sent 2
times in the query: send it once."), where Django's query took the last value without a word and
`POST .../import-placements/?dry_run=1&dry_run=0` imported for real. The refusal is made where a value is read, so
every way the API reads one is covered, those to come included: its filters (django-filter's forms), ordering and
page number, the query serializers (`dry_run`, `width`, the print options, a scan range) and the views' own reads.
A parameter read with `getlist` takes every value; one no view reads is ignored however often it comes (a
cache-buster), as unknown parameters are. The pages keep Django's query.

A form body naming a field twice is refused in the same words (`qartsite.api.repeated_in_form`; `sent_more_than_once`
is the message's one home).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse, QueryDict
from rest_framework.exceptions import ValidationError

from qartsite.responses import is_api_path


def sent_more_than_once(count: int, where: str) -> str:
    """The refusal of a parameter of one value that a request names more than once.

    Args:
        count: how many times it was sent.
        where: "query" or "form".

    Returns:
        "Sent 2 times in the query: send it once."
    """
    return f"Sent {count} times in the {where}: send it once."


class OneValueEach(QueryDict):
    """A query string whose reads of one value (`get`, `[name]`) refuse a parameter sent more than once: DRF's
    ValidationError under its name, a 400 in the API's shape from any view, serializer or filter that reads it.
    `getlist` takes every value, as a parameter of many values reads them."""

    def __getitem__(self, key):
        count = len(self.getlist(key))
        if count > 1:
            raise ValidationError({key: [sent_more_than_once(count, "query")]}, code="repeated")
        return super().__getitem__(key)

    # Walks of the whole query (a copy's urlencode, a log line) take each parameter's last value, as Django's do: they
    # read parameters no view reads too, which may come twice (a cache-buster), and must not refuse them.
    def items(self) -> Iterator[tuple[str, str | list]]:
        for key, values in self.lists():
            yield key, values[-1] if values else []

    def values(self) -> Iterator[str | list]:
        for _, value in self.items():
            yield value

    def dict(self) -> dict:
        return dict(self.items())

    @classmethod
    def of(cls, query: QueryDict) -> OneValueEach:
        """`query` (Django's, as parsed from the request) with reads of one value refusing a parameter sent twice."""
        strict = cls(mutable=True, encoding=query.encoding)
        for key, values in query.lists():
            strict.setlist(key, values)
        strict._mutable = False  # immutable as Django's request.GET is
        return strict


class OneValueQueryMiddleware:
    """The API's requests read their query as `OneValueEach`; the pages' stay Django's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path):
            # `GET` is a cached property of Django's requests: set here, it is what DRF's `query_params` returns.
            request.GET = OneValueEach.of(request.GET)
        return self.get_response(request)
