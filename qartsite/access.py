"""Team access in one place: which objects a user may see and change.

An object of another team answers 404 (never a 403 that confirms it exists); a viewer who tries to change
their own team's object gets 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404

from qartsite.models import Membership, Team


def get_for_user_or_404(queryset: QuerySet, **lookup) -> Model:
    """The object matching `lookup` in `queryset` (already narrowed with `.for_user(user)`), else 404."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise Http404("Not found")
    return obj


def require_editor(user, team: Team) -> None:
    """Raise PermissionDenied unless `user` is an owner or editor of `team`."""
    if Membership.role_of(user, team) not in (Membership.Role.OWNER, Membership.Role.EDITOR):
        raise PermissionDenied("Viewers can look but not change things. Ask a team owner for editor access.")


def require_owner(user, team: Team) -> None:
    """Raise PermissionDenied unless `user` owns `team` (only owners manage members)."""
    if Membership.role_of(user, team) != Membership.Role.OWNER:
        raise PermissionDenied("Only a team owner can invite people.")


def editable_teams(user) -> QuerySet[Team]:
    """Teams in which `user` may create and change things."""
    return Team.for_user(user).filter(
        memberships__user=user, memberships__role__in=(Membership.Role.OWNER, Membership.Role.EDITOR)
    ).distinct()
