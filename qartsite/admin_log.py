"""The admin's log (Django's `LogEntry`) as staff who are not superusers read it: an object's history page names only
their teammates (`TeammatesInHistory`), and the index's "Recent actions" lists only their actions on objects they
still see (`recent_actions`). Superusers read the whole log.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest

from qartsite.access import teammates

# Who made a change, on a history page, when the user may not read their name.
SOMEONE_OUTSIDE = "someone outside your teams"


class TeammatesInHistory:
    """An admin whose objects' history pages name who made each change only where they are the user's teammates
    (`qartsite.access.teammates`, as the user list shows them) or the user; anyone else is `SOMEONE_OUTSIDE`. Django's
    page named everyone by their username and their current full name: a former member's after they left the team,
    another team's member or a superuser who once changed the object, a superuser who activated the verifier model
    every team reads. Every admin of the project builds on it (`tests/qartsite/test_admin_log.py` walks the
    registry)."""

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        context = getattr(response, "context_data", None)  # None: a redirect, for an object the user does not see
        if request.user.is_superuser or context is None:
            return response
        page = context["action_list"]
        page.object_list = entries = list(page.object_list)
        authors = {entry.user_id for entry in entries}
        # The user themselves too: `teammates` holds them only while they have a team, and one who has none (left
        # every team, or staff of no team) read their own changes as an outsider's.
        named = {request.user.pk, *teammates(request.user).filter(pk__in=authors).values_list("pk", flat=True)}
        for entry in entries:
            if entry.user_id not in named:
                # An unsaved stand-in, never saved: the template asks the entry's user for a username and a full name.
                entry.user = get_user_model()(username=SOMEONE_OUTSIDE)
        return response


def recent_actions(request: HttpRequest) -> QuerySet[LogEntry]:
    """The log entries behind the admin index's "Recent actions" (`AdminSite.get_log_entries`; the index shows the
    user's own): for staff who are not superusers, only those about objects their admin still shows them (each
    registered admin's `get_queryset`, where they may view its model at all).

    The sidebar names each object, so someone who left a team, or was moved out of it, kept reading the names of that
    team's campaigns; an owner made editor, its invitations' addresses; a superuser made staff, the usernames, groups,
    API tokens and sign-in records of every team that they had once changed.

    Args:
        request: the index's request.

    Returns:
        The log entries the index may list, the user's own among them.
    """
    entries = LogEntry.objects.select_related("content_type", "user")
    if request.user.is_superuser:
        return entries
    if not request.user.is_authenticated:  # the sign-in page: nobody's actions
        return entries.none()
    registry = admin.site._registry
    # The admin logs an object under its own model's content type, a proxy's (API tokens) included.
    types = ContentType.objects.get_for_models(*registry, for_concrete_models=False)
    shown = Q(pk__in=[])
    for model, model_admin in registry.items():
        if model_admin.has_view_or_change_permission(request):
            keys = model_admin.get_queryset(request).annotate(key=Cast("pk", models.TextField())).values("key")
            shown |= Q(content_type=types[model], object_id__in=keys)
    return entries.filter(shown)
