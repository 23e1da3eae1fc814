"""The REST API's team plumbing, shared by every app's API (`campaigns.api`, `generator.api`), its refusals' JSON
(`exception_handler`), and serializers that refuse unknown body fields (`KnownFieldsOnly`; the query's yes/no filters
and orderings are as strict: `qartsite.filters`). What its schema says of those refusals: `qartsite.api_schema`.

Every queryset is narrowed with `.for_user(user)`, so another team's object answers 404 (never a 403 that
confirms it exists); members read; owners and editors change; viewers get 403 (`qartsite.access`). The same rule
holds for a team (or another object) named by id in a body: one of a team you are not in fails like an id that does
not exist (400, `ScopedField`); one of your own team where your role is not enough answers 403 saying which role it
needs (`team_for_create`; webhooks: owners only).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from operator import attrgetter

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework import exceptions, permissions, serializers, views
from rest_framework.fields import empty
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.utils import html, humanize_datetime

from generator.core.codes.echoes import echo
from qartsite import idempotency, parsers
from qartsite.access import (
    VIEWERS_CANNOT_CHANGE,
    cannot_create,
    editable_teams,
    owned_teams,
    require_editor,
    require_owner,
)
from qartsite.authentication import other_scheme
from qartsite.models import Team, named
from qartsite.numbers import plain_date, plainly_written
from qartsite.queries import sent_more_than_once


def request_user(request: Request | None):
    """The requesting user, or an anonymous one where there is no request (as when the schema is generated)."""
    return getattr(request, "user", None) or AnonymousUser()


# What a user may pick by id, given the request: these serve related fields and filters alike.
def user_teams(request: Request | None) -> QuerySet[Team]:
    return Team.for_user(request_user(request))


def user_objects(model: type[Model]) -> Callable[[Request | None], QuerySet]:
    """A scope for `ScopedField` and filters: `model`'s objects of the requesting user's teams (`for_user`)."""

    def scope(request: Request | None) -> QuerySet:
        # Named: the browsable API's filter and form selects name every object (5,000 placements: 5,000 queries).
        return named(model.objects.for_user(request_user(request)))

    return scope


class ScopedField(serializers.PrimaryKeyRelatedField):
    """A related object picked by id among those the requesting user can see.

    Ids of other teams' objects fail exactly like ids that do not exist, so the answer confirms nothing. An id must
    be a whole number: without `pk_field`, `{"team": 1.9}` picked team 1 (the database rounds it down).
    """

    def __init__(self, scope, **kwargs) -> None:
        self.scope = scope  # request -> queryset, e.g. `user_teams`
        kwargs.setdefault("pk_field", AsciiIntegerField())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return self.scope(self.context.get("request"))


# The renderers that draw an error answer as the API's errors are drawn: JSON, and the browsable API's page. A view's
# own format does not: the schema's YAML renderer drew `{"detail": ...}` as "detail: string: ...", the docs page's
# template as bare text ("401 Unauthorized").
ERROR_RENDERERS = (JSONRenderer, BrowsableAPIRenderer)


def exception_handler(exc: Exception, context: dict):
    """DRF's handler, with every error in the API's one shape (`ERROR_COMPONENTS`):

    - every 404 the same "Not found.": Django's `get_object_or_404` names the model it looked in ("No GenerationJob
      matches the given query."), which is internal and differs from endpoint to endpoint;
    - in JSON wherever the view answers in another format (`ERROR_RENDERERS`), a 406 included: no renderer was
      acceptable, and DRF's fallback, the view's first one, drew it as its own format would;
    - a field's messages as a list of strings (`field_messages`), a list field's items' and a nested object's
      included, which DRF answers as objects keyed by position or name;
    - a 415 naming the content types the endpoint reads (`unsupported_media_type`);
    - a 401 for credentials sent under a scheme the API does not read (Basic) that says so (`other_scheme`).
    """
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.NotAuthenticated) and request is not None and other_scheme(request):
        # In place: DRF has set the exception's WWW-Authenticate already.
        exc.detail = exceptions.ErrorDetail(other_scheme(request), code=exc.default_code)
    if isinstance(exc, exceptions.UnsupportedMediaType) and request is not None:
        exc = exceptions.UnsupportedMediaType(request.content_type, detail=unsupported_media_type(request))
    response = views.exception_handler(exc, context)
    if response is None or request is None:
        return response
    if isinstance(exc, exceptions.NotAcceptable) or type(getattr(request, "accepted_renderer", None)) not in \
            ERROR_RENDERERS:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    if isinstance(exc, exceptions.ValidationError):
        response.data = field_errors(response.data)
    return response


def unsupported_media_type(request: Request) -> str:
    """A 415's message: what was sent, and the content types the endpoint reads. DRF said `Unsupported media type ""
    in request.` to a body sent without a Content-Type (Python's `requests` with `data=json.dumps(...)`)."""
    sent = (request.content_type or "").strip()[:80]
    types = ", ".join(dict.fromkeys(parser.media_type for parser in request.parsers))
    if not sent:
        return f"The body has no Content-Type header: send it with one of {types}."
    return f"Unsupported media type “{sent}”: send the body as one of {types}."


def field_errors(detail) -> dict:
    """A 400's body as `FieldErrors` documents it: each field's messages as a list of strings, `detail` as the one
    string it is (a message about the request as a whole); a ValidationError raised with a message or a list outside
    a serializer (DRF's bare list) under `non_field_errors`."""
    if not isinstance(detail, Mapping):
        return {api_settings.NON_FIELD_ERRORS_KEY: field_messages(detail)}
    return {name: value if name == "detail" and isinstance(value, str) else field_messages(value)
            for name, value in detail.items()}


# Django's check that text holds no NUL, which DRF's CharField runs after the field's own rules (one line of text, a
# time zone's name, a URL's form), each of which refuses a NUL in its own words: "Null characters are not allowed."
# came second for the one fault. A length says nothing of the characters: beside it alone the NUL's message stays.
NUL_REFUSED = ProhibitNullCharactersValidator.code
LENGTH_CODES = ("max_length", "min_length")


def one_per_fault(messages: list) -> list:
    """A field's messages, DRF's refusal of a NUL (`NUL_REFUSED`) left out where another of its rules refused the
    value too: one message for one fault, every field of every serializer alike."""
    if any(getattr(message, "code", None) not in (NUL_REFUSED, *LENGTH_CODES) for message in messages):
        return [message for message in messages if getattr(message, "code", None) != NUL_REFUSED]
    return messages


def field_messages(detail, prefix: str = "") -> list[str]:
    """One field's messages as strings, each saying where it belongs: a list field's item by its number from 1
    ("Item 2: A valid integer is required."), a nested object's field by its name ("url: Enter a valid URL.")."""
    if isinstance(detail, Mapping):
        return [message for key, value in detail.items()
                for message in field_messages(value, f"{prefix}{item_name(key)}: ")]
    if isinstance(detail, list | tuple):
        if all(isinstance(value, str) for value in detail):
            return [f"{prefix}{value}" if prefix else value for value in one_per_fault(list(detail))]
        # A nested list of objects (`many=True`): the items that passed answer {} and are left out.
        return [message for index, value in enumerate(detail)
                for message in field_messages(value, f"{prefix}Item {index + 1}: ")]
    return [f"{prefix}{detail}"]


def item_name(key) -> str:
    """A list field's item by its number from 1 (DRF keys it by position from 0), a nested field by its name."""
    return f"Item {int(key) + 1}" if isinstance(key, int) or str(key).isdecimal() else str(key)


def plainly_written_only(field: serializers.Field, data) -> None:
    """Refuse a number sent as text in other than ASCII digits or with underscores (`qartsite.numbers.plainly_written`:
    "１２３" and "1_000" were stored as 123 and 1000), in `field`'s own words ("A valid integer is required."). The
    API's integer, float and decimal fields (`AsciiIntegerField`, `FiniteFloatField`, `ModelDecimalField`) check it
    first, in a body or a query."""
    if not plainly_written(data):
        field.fail("invalid")


class AsciiIntegerField(serializers.IntegerField):
    """DRF's IntegerField, refusing digits other than ASCII's and underscores (`plainly_written_only`): every integer
    the API reads, by `MODEL_FIELD_MAPPING` or by name, ids picked by `ScopedField` included."""

    def to_internal_value(self, data) -> int:
        plainly_written_only(self, data)
        return super().to_internal_value(data)


class AsciiDateField(serializers.DateField):
    """DRF's DateField, reading text as YYYY-MM-DD in ASCII digits only (`qartsite.numbers.plain_date`): Django's
    `parse_date`, which it reads with, took "２０２６-０５-０１" (full width), "20260501", "2026-W18-5" and
    "2026-5-1" as dates. Every date the API reads, by `MODEL_FIELD_MAPPING` (a campaign's starts_on and ends_on, a
    placement's deployed_on) or by name (the scan figures' from and to)."""

    def to_internal_value(self, value):
        if isinstance(value, str) and plain_date(value) is None:
            formats = getattr(self, "input_formats", api_settings.DATE_INPUT_FORMATS)
            self.fail("invalid", format=humanize_datetime.date_formats(formats))
        return super().to_internal_value(value)


class BriefChoiceField(serializers.ChoiceField):
    """DRF's ChoiceField, whose refusal quotes the value sent shortened (`echo`): 5,000 characters
    sent as a placement's `kind` came back whole in the message. Every choice the API reads, a model's included
    (`serializer_choice_field`)."""

    def fail(self, key, **kwargs):
        if "input" in kwargs:
            kwargs["input"] = echo(kwargs["input"])
        super().fail(key, **kwargs)


class FiniteFloatField(serializers.FloatField):
    """A FloatField that refuses NaN and infinities ("nan", "inf" in a form body; DRF 3.16's FloatField takes them),
    and JSON's true and false, which DRF reads as 1.0 and 0.0 (`"guidance_scale": true` made a job at 1.0) where its
    integer and decimal fields refuse them.

    A stored NaN breaks every later JSON answer that includes the row, so it is refused on the way in."""

    default_error_messages = {"not_finite": "Enter a finite number (not NaN or infinity)."}

    def to_internal_value(self, data) -> float:
        plainly_written_only(self, data)
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite")
        return value


class ModelDecimalField(serializers.DecimalField):
    """A model's decimal field whose range is said before its digits: 1e308 as a latitude got "Ensure that there are
    no more than 9 digits in total." (DRF counts digits first), where 91 gets the field's own range message."""

    def to_internal_value(self, data):
        plainly_written_only(self, data)
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as refused:
            try:
                value = decimal.Decimal(str(data).strip())
            except (decimal.InvalidOperation, ValueError):
                raise refused from None
            if value.is_finite():
                self.run_validators(value)  # the range's own message, where the value is out of it
            raise


class BoundedJSONField(serializers.JSONField):
    """A JSON field whose value sent as text (a form-encoded or multipart body) holds to the rules the API's parser
    sets for a JSON body (`qartsite.parsers`): nested at most `MAX_DEPTH` deep, numbers finite and within 64 bits.
    Else a 400 under the field's name, where Python's parser recursed to its limit (a 500) or read 1e400 as infinity.
    """

    default_error_messages = {"too_deep": f"Nested too deeply: at most {parsers.MAX_DEPTH} levels.",
                              "out_of_range": f"Out of range: {parsers.NUMBERS_RULE}"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**kwargs, "decoder": kwargs.get("decoder") or parsers.BoundedDecoder})

    def to_internal_value(self, data):
        text = getattr(data, "is_json_string", False) or self.binary
        if text and parsers.too_deep(data if isinstance(data, bytes) else str(data).encode()):
            self.fail("too_deep")
        try:
            value = super().to_internal_value(data)
        except parsers.TooManyDigits:
            self.fail("out_of_range")
        if text and not parsers.numbers_in_range(value):
            self.fail("out_of_range")
        return value


class ModelBooleanField(serializers.BooleanField):
    """A model's yes/no field that a form-encoded or multipart body may leave out, as a JSON body may: the model's
    default then holds. DRF reads a missing field of a form body as an unticked checkbox (False): a placement,
    webhook or generation made with `curl -F` was switched off, its repair off, where the same JSON left them on.
    (The browsable API's forms send "false" for nothing then: untick is not a way to switch off there; PATCH is.)"""

    default_empty_html = empty


class OneFileField(serializers.FileField):
    """DRF's FileField, refusing a multipart body that sends more than one part under its name: DRF took the last
    and dropped the others without a word, so which picture a generation used, or which CSV an import read, was the
    client library's order. Every file the API reads (an import's CSV, a generation's picture and logo)."""

    default_error_messages = {"several": "Send one file: the body has {count} parts named {name}."}

    def get_value(self, dictionary):
        parts = dictionary.getlist(self.field_name) if html.is_html_input(dictionary) else []
        # A tuple, which no parser makes: a JSON body's list stays DRF's "not a file".
        return tuple(parts) if len(parts) > 1 else super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, tuple):
            self.fail("several", count=len(data), name=self.field_name)
        return super().to_internal_value(data)


# A model serializer's fields for model fields: integers and dates in ASCII digits only (`AsciiIntegerField`,
# `AsciiDateField`), floats that refuse NaN and infinities (they pass the range validators, since every comparison with
# NaN is false, and break every answer that includes them), and yes/no fields a form body may leave out
# (`ModelBooleanField`).
# `serializer_field_mapping` of every writable serializer; a model field with choices takes `serializer_choice_field`
# instead (`BriefChoiceField`).
MODEL_FIELD_MAPPING = {**{model_field: AsciiIntegerField if field is serializers.IntegerField else field
                          for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()},
                       models.FloatField: FiniteFloatField, models.BooleanField: ModelBooleanField,
                       models.DateField: AsciiDateField,
                       models.JSONField: BoundedJSONField, models.DecimalField: ModelDecimalField}


# Sent by the browsable API's HTML forms with every write: not a field, and not a mistake.
FORM_EXTRAS = {"csrfmiddlewaretoken"}
# Unknown fields named one by one in a 400; the rest are counted.
MAX_UNKNOWN = 20


# Fields that read every value a form body gives their name: the rest take the last and drop the others.
MANY_VALUED = (serializers.ListField, serializers.MultipleChoiceField, serializers.ManyRelatedField,
               serializers.ListSerializer, OneFileField)


def repeated_in_form(fields: dict[str, serializers.Field], data) -> dict[str, list[str]]:
    """Each field of one value that a form body (urlencoded or multipart) names more than once, with its message:
    DRF took the last value without a word (`name=Spring&name=Summer` made "Summer"), where a JSON body naming a key
    twice is refused (`parsers`), and a query's parameter twice (`qartsite.queries`). A field of many values is left to
    itself (`OneFileField` says its own)."""
    if not html.is_html_input(data):
        return {}
    return {name: [sent_more_than_once(count, "form")] for name, field in fields.items()
            if not field.read_only and not isinstance(field, MANY_VALUED)
            and (count := len(data.getlist(name))) > 1}


# A serializer mixin that refuses fields it does not have (400, each under its name), rather than ignoring them: a
# misspelt `stepz` would otherwise make a generation with the default steps, and answer 201; and a field a form body
# names twice (`repeated_in_form`).
#
# Read-only fields are known, so an object as GET answers it can be sent back with PUT. Checked before any other
# validation, so a refused request costs nothing (a generation's rate is not asked, its picture not decoded); the
# body's other field errors come in the same answer.
#
# A comment, not a docstring: the API schema describes a serializer by the first docstring of its classes, and this
# one described every body that refuses unknown fields ("A serializer mixin...").
class KnownFieldsOnly:

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, Mapping):
            writable = ", ".join(name for name, field in self.fields.items() if not field.read_only)
            names = [name for name in data if name not in self.fields and name not in FORM_EXTRAS]
            # The first few by name, the rest counted: half a million unknown keys made a 100 MB answer.
            refused = {name: [f"Unknown field. Fields you can send: {writable}."] for name in names[:MAX_UNKNOWN]}
            if len(names) > MAX_UNKNOWN:
                refused[api_settings.NON_FIELD_ERRORS_KEY] = [
                    f"{len(names) - MAX_UNKNOWN} more unknown fields are not listed. Fields you can send: "
                    f"{writable}."]
            refused.update(repeated_in_form(self.fields, data))
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                merged = {**exc.detail, **refused}
                key = api_settings.NON_FIELD_ERRORS_KEY
                if key in exc.detail and key in refused:
                    merged[key] = [*exc.detail[key], *refused[key]]
                raise serializers.ValidationError(merged) from None
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


def no_body(request: Request) -> None:
    """Refuse a body sent to an action that reads none (cancel, dismiss, revoke, rotate a secret, send a test), rather
    than ignore it: `{"dismissed": false}` to an alert's dismiss dismissed it, and answered 200.

    Raises:
        rest_framework.exceptions.ValidationError: the body holds anything (400); an empty JSON object passes, and
        no body at all. `null`, `[]`, `0` and `false` are bodies too (they passed, being falsy).
    """
    data = request.data
    if isinstance(data, Mapping) and set(data) <= FORM_EXTRAS:
        return
    names = [name for name in data if name not in FORM_EXTRAS] if isinstance(data, Mapping) else []
    message = "This action reads no body: send none."
    raise serializers.ValidationError({name: [message] for name in names[:MAX_UNKNOWN]} if names
                                      else {api_settings.NON_FIELD_ERRORS_KEY: [message]})


class CreatedLocation:
    """A view set mixin: a 201 from `create` names the new object's address in Location, as HTTP asks, so a client
    can follow it without knowing how the API builds its paths. So does the 409 that answers a retried create whose
    first answer showed a secret (`idempotency.once`): it says the object "is at its address"."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        made = response.status_code == 201 or (response.status_code == 409
                                               and response.has_header(idempotency.REPLAYED))
        if (made and getattr(self, "action", None) == "create" and isinstance(data, Mapping)
                and data.get("id") is not None and not response.has_header("Location")):
            response["Location"] = self.reverse_action("detail", args=[data["id"]]).rstrip("/") + "/"
        return response


class TeamRolePermission(permissions.BasePermission):
    """Members read; owners and editors create and change. Views name the path to an object's team in
    `team_path`. Other teams' objects never reach `has_object_permission`: the queryset already hid them."""

    message = VIEWERS_CANNOT_CHANGE

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS or getattr(view, "action", None) != "create":
            return True
        if editable_teams(request.user).exists():
            return True
        self.message = cannot_create(request.user)  # DRF makes a permission object per request
        return False

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        require_editor(request.user, attrgetter(view.team_path)(obj))
        return True


def team_for_create(user, team: Team | None, owners_only: str = "") -> Team:
    """The team a new object belongs to: the one asked for, or, when none is named, the user's only team where they
    may make it.

    Args:
        user: the requesting user.
        team: the team the body names, or None.
        owners_only: for what only a team's owners make (webhooks), the 403's message; the team must then be one the
            user owns, and the default is the only team they own. Else the user must edit in the team.

    Returns:
        The team. Raises PermissionDenied (403) where the user may not make it there, or has no team to default to;
        a 400 under `team` where they could in several and named none.
    """
    if team is not None:
        if owners_only:
            require_owner(user, team, owners_only)
        else:
            require_editor(user, team)
        return team
    teams = list((owned_teams(user) if owners_only else editable_teams(user))[:2])
    if not teams:
        in_a_team = owners_only and Team.for_user(user).exists()
        raise PermissionDenied(owners_only if in_a_team else cannot_create(user))
    if len(teams) > 1:
        own = "own" if owners_only else "are in"
        raise serializers.ValidationError({"team": [f"You {own} more than one team: choose one."]})
    return teams[0]


@contextmanager
def model_errors_as_400(field: str):
    """Models validate on save as well (so scripts and the admin cannot skip it); answer those as 400s, under the
    field the error names, else under `field`."""
    try:
        yield
    except DjangoValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {field: exc.messages}
        raise serializers.ValidationError(errors) from None
