"""A team's members as its owners manage them (the team page, `accounts`; the admin's team page): roles, removal,
leaving, and invitations withdrawn. Two rules hold on every path:
- a team always keeps an owner: the last one can be neither demoted nor removed, nor leave, nor have their account
  deleted, in the admin or on their account page (`left_without_owner`, `delete_account`);
- an invitation is only as good as its sender's ownership: an owner who is removed or demoted takes their pending
  invitations along (`withdraw_invitations`, on every save and delete of a membership, and
  `withdraw_deleted_senders_invitations` when their account is deleted), and one whose sender no longer owns the team
  is refused when opened (`sender_gone`), whatever path changed the membership.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save

from qartsite.models import Invitation, Membership, Team
from qartsite.sql import lock_rows


class Refused(Exception):
    """Why a change to a team's members was not made, in words for the person who asked."""


def last_owner_message(team: Team) -> str:
    return f"{team.name} needs an owner: make someone else an owner first."


def keeps_an_owner(membership: Membership, role: str | None) -> bool:
    """Whether the team still has an owner once `membership` has `role` (None: once it is removed)."""
    if membership.role != Membership.Role.OWNER or role == Membership.Role.OWNER:
        return True
    return (Membership.objects.filter(team_id=membership.team_id, role=Membership.Role.OWNER)
            .exclude(pk=membership.pk).exists())


def set_role(membership: Membership, role: str) -> None:
    """Give `membership` `role`.

    Raises:
        Refused: not a role, or it would leave the team without an owner.
    """
    if role not in Membership.Role.values:
        raise Refused("Choose owner, editor or viewer.")
    with transaction.atomic():
        locked = _locked(membership)
        if locked is None:
            raise Refused(f"{membership.user.get_username()} is no longer in {membership.team.name}.")
        if not keeps_an_owner(locked, role):
            raise Refused(last_owner_message(locked.team))
        locked.role = role
        locked.save(update_fields=["role"])
    membership.role = role


def remove(membership: Membership) -> None:
    """Take `membership`'s person out of its team (an owner removing someone, or someone leaving); already out (a
    double click, two owners at once) is done.

    Raises:
        Refused: they are its last owner.
    """
    with transaction.atomic():
        locked = _locked(membership)
        if locked is None:
            return
        if not keeps_an_owner(locked, None):
            raise Refused(last_owner_message(locked.team))
        locked.delete()


def delete_account(user) -> None:
    """Delete `user`'s account: their memberships and API tokens go with it (CASCADE), the invitations they sent and
    nobody used too (`withdraw_deleted_senders_invitations`); what they made stays with its team, made by nobody
    (SET_NULL).

    Raises:
        Refused: they are the last owner of a team, named (checked again here with those teams locked: two owners
            deleting their accounts at once must not both pass).
    """
    with transaction.atomic():
        owned = Membership.objects.filter(user=user, role=Membership.Role.OWNER).values_list("team_id", flat=True)
        lock_rows(Team, owned)
        kept = left_without_owner([user])
        if kept:
            raise Refused(" ".join(last_owner_message(team) for team in kept))
        user.delete()


def _locked(membership: Membership) -> Membership | None:
    """`membership` as stored, with its team's row locked: two owners demoting each other at once must not both
    pass the last-owner check (PostgreSQL; SQLite writes one transaction at a time anyway). None: removed since it
    was read (a double click on "Remove" gave the second request a 500)."""
    lock_rows(Team, [membership.team_id])
    return Membership.objects.select_related("team").filter(pk=membership.pk).first()


def withdraw_invitations(sender, instance: Membership, signal, created: bool = False, **kwargs) -> None:
    """Signal receiver (post_save and post_delete of Membership): someone who no longer owns a team takes the
    invitations they sent and nobody has used with them."""
    if signal is post_save and (created or instance.role == Membership.Role.OWNER):
        return
    Invitation.objects.filter(team_id=instance.team_id, invited_by_id=instance.user_id,
                              accepted__isnull=True).delete()


def withdraw_deleted_senders_invitations(sender, instance, **kwargs) -> None:
    """Signal receiver (pre_delete of the user model): a deleted account's unused invitations go with it. After the
    delete they would have no sender (Django sets it to null first), and one without a sender stands."""
    Invitation.objects.filter(invited_by=instance, accepted__isnull=True).delete()


def left_without_owner(users) -> list[Team]:
    """The teams that would have no owner once `users` (a queryset or list of users) are gone."""
    owned = Team.objects.filter(memberships__user__in=users, memberships__role=Membership.Role.OWNER).distinct()
    return [team for team in owned.order_by("name")
            if not team.memberships.filter(role=Membership.Role.OWNER).exclude(user__in=users).exists()]


def sender_gone(invitation: Invitation) -> bool:
    """Whether `invitation`'s sender no longer owns its team (removed or demoted since; superusers, who invite from
    the admin, always may). One without a sender stands: made in the admin before the admin recorded its maker (a
    deleted account's invitations go with it, `withdraw_deleted_senders_invitations`)."""
    sender = invitation.invited_by
    if sender is None or sender.is_superuser:
        return False
    return Membership.role_of(sender, invitation.team) != Membership.Role.OWNER
