"""Team access in one place: which objects a user may see and change.

An object of another team answers 404 (never a 403 that confirms it exists); a viewer who tries to change
their own team's object gets 403.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from qartsite.models import Membership, Team
from qartsite.numbers import whole

VIEWERS_CANNOT_CHANGE = "Viewers can look but not change things. Ask a team owner for editor access."
NO_TEAM = "You are not in a team yet, so there is nothing you can change. Ask a team owner to invite you."
STAFF_ONLY = "The labeling and eval pages are for staff. Ask an administrator to mark your account as staff."


def get_for_user_or_404(queryset: QuerySet, **lookup) -> Model:
    """The object matching `lookup` in `queryset` (already narrowed with `.for_user(user)`), else 404."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise Http404("Not found")
    return obj


def require_editor(user, team: Team) -> None:
    """Raise PermissionDenied unless `user` is an owner or editor of `team`."""
    if not can_edit(user, team):
        raise PermissionDenied(VIEWERS_CANNOT_CHANGE)


def cannot_create(user) -> str:
    """Why `user` may not make anything: they are in no team, or only a viewer where they are."""
    return VIEWERS_CANNOT_CHANGE if Team.for_user(user).exists() else NO_TEAM


def can_edit(user, team: Team) -> bool:
    """Whether `user` is an owner or editor of `team` (pages use it to offer or hide their forms)."""
    return Membership.role_of(user, team) in (Membership.Role.OWNER, Membership.Role.EDITOR)


def require_owner(user, team: Team, message: str = "Only a team owner can invite people.") -> None:
    """Raise PermissionDenied (saying `message`) unless `user` owns `team` (only owners manage members and the
    team's settings)."""
    if Membership.role_of(user, team) != Membership.Role.OWNER:
        raise PermissionDenied(message)


def editable_teams(user) -> QuerySet[Team]:
    """Teams in which `user` may create and change things."""
    return Team.for_user(user).filter(
        memberships__user=user, memberships__role__in=(Membership.Role.OWNER, Membership.Role.EDITOR)
    ).distinct()


def owned_teams(user) -> QuerySet[Team]:
    """Teams that `user` owns (their owners manage members and invitations)."""
    return Team.for_user(user).filter(memberships__user=user, memberships__role=Membership.Role.OWNER).distinct()


def teammates(user) -> QuerySet:
    """Users who share a team with `user` (`user` included when they have a team)."""
    return get_user_model().objects.filter(memberships__team__in=Team.for_user(user)).distinct()


def staff_required(view):
    """Signed in (else the login page) and staff (else 403): eval pages show every team member's work."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied(STAFF_ONLY)
        return view(request, *args, **kwargs)

    return wrapped


def asked_team(teams: QuerySet[Team], asked: object) -> Team | None:
    """The team of `teams` that a page's `?team=` names (`asked`, as typed), else the first of `teams`: a person in
    several teams who is looking at one of them creates things in that one."""
    pk = whole(asked)
    return (teams.filter(pk=pk).first() if pk is not None else None) or teams.first()
