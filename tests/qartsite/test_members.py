"""A team's members (`qartsite.members`): the last owner stays, and invitations follow their sender's ownership. The
team page's use of it: test_accounts.py (TestTeamMembers); the admin's: test_admin.py (TestTeamAdmin)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from qartsite import members
from qartsite.models import Invitation, Membership


@pytest.mark.django_db
class TestLastOwner:
    def test_the_last_owner_is_neither_demoted_nor_removed(self, team_users):
        owner = Membership.objects.get(team=team_users.team, user=team_users.owner)
        with pytest.raises(members.Refused, match="Acme needs an owner"):
            members.set_role(owner, "viewer")
        with pytest.raises(members.Refused, match="Acme needs an owner"):
            members.remove(owner)
        assert Membership.role_of(team_users.owner, team_users.team) == "owner"

    def test_any_member_but_the_last_owner_goes(self, team_users):
        editor = Membership.objects.get(team=team_users.team, user=team_users.teammate)
        members.set_role(editor, "owner")
        owner = Membership.objects.get(team=team_users.team, user=team_users.owner)
        members.set_role(owner, "viewer")
        assert owner.role == "viewer" and Membership.role_of(team_users.owner, team_users.team) == "viewer"
        members.remove(owner)
        assert Membership.role_of(team_users.owner, team_users.team) is None

    def test_a_member_removed_meanwhile_is_removed_once_and_gets_no_role(self, team_users):
        # A double click on "Remove": the second request read the membership before the first deleted it, then
        # raised Membership.DoesNotExist (a 500); a role change racing the removal did the same.
        editor = Membership.objects.get(team=team_users.team, user=team_users.teammate)
        read_before = Membership.objects.get(pk=editor.pk)
        members.remove(editor)
        members.remove(read_before)
        assert Membership.role_of(team_users.teammate, team_users.team) is None
        with pytest.raises(members.Refused, match="is no longer in Acme"):
            members.set_role(read_before, "owner")
        assert Membership.role_of(team_users.teammate, team_users.team) is None

    def test_it_refuses_a_role_there_is_not(self, team_users):
        with pytest.raises(members.Refused, match="Choose owner, editor or viewer"):
            members.set_role(Membership.objects.get(team=team_users.team, user=team_users.viewer), "admin")


@pytest.mark.django_db
class TestInvitationsFollowTheirSender:
    @pytest.fixture
    def second_owner(self, team_users) -> Membership:
        user = get_user_model().objects.create_user("second", password="pw-second-1")
        return Membership.objects.create(team=team_users.team, user=user, role="owner")

    def test_a_demoted_owners_unused_invitations_are_withdrawn_on_save(self, team_users, second_owner):
        pending = Invitation.objects.create(team=team_users.team, email="a@example.com", invited_by=second_owner.user)
        other_team = Invitation.objects.create(team=team_users.other_team, email="b@example.com",
                                               invited_by=second_owner.user)
        second_owner.role = "editor"
        second_owner.save()  # any path that saves the row: the admin, a shell
        assert not Invitation.objects.filter(pk=pending.pk).exists()
        assert Invitation.objects.filter(pk=other_team.pk).exists()

    def test_an_owner_saved_as_owner_keeps_them(self, team_users, second_owner):
        pending = Invitation.objects.create(team=team_users.team, email="a@example.com", invited_by=second_owner.user)
        second_owner.save()
        assert Invitation.objects.filter(pk=pending.pk).exists() and not members.sender_gone(pending)

    def test_sender_gone_spares_superusers_and_invitations_without_a_sender(self, team_users, second_owner):
        boss = get_user_model().objects.create_superuser("boss", password="pw-boss-1")
        assert not members.sender_gone(Invitation(team=team_users.team, email="c@example.com", invited_by=boss))
        assert not members.sender_gone(Invitation(team=team_users.team, email="c@example.com"))
        assert members.sender_gone(Invitation(team=team_users.team, email="c@example.com",
                                              invited_by=team_users.teammate))

    def test_a_deleted_accounts_unused_invitations_go_with_it(self, team_users, second_owner):
        # Django nulls the sender before the membership's delete signal runs: the invitation stood, sender-less, and
        # let someone into the team after its only owner's account was deleted.
        pending = Invitation.objects.create(team=team_users.team, email="a@example.com", invited_by=second_owner.user)
        used = Invitation.objects.create(team=team_users.team, email="b@example.com", invited_by=second_owner.user,
                                         accepted=timezone.now())
        others = Invitation.objects.create(team=team_users.team, email="c@example.com", invited_by=team_users.owner)
        second_owner.user.delete()
        assert not Invitation.objects.filter(pk=pending.pk).exists()
        assert Invitation.objects.filter(pk__in=[used.pk, others.pk]).count() == 2


@pytest.mark.django_db
def test_left_without_owner_names_teams_whose_every_owner_goes(team_users):
    User = get_user_model()
    second = User.objects.create_user("second", password="pw-second-1")
    Membership.objects.create(team=team_users.team, user=second, role="owner")
    assert members.left_without_owner([team_users.owner]) == []
    assert members.left_without_owner(User.objects.filter(pk__in=[team_users.owner.pk, second.pk])) == [team_users.team]
    assert members.left_without_owner([team_users.teammate]) == []  # an editor
    assert members.left_without_owner([team_users.outsider]) == [team_users.other_team]



@pytest.mark.django_db(transaction=True)  # two requests at once, each with a connection of its own
def test_two_owners_demoting_each_other_at_once_leave_the_team_an_owner(team_users, monkeypatch):
    # Each one's last-owner check saw the other still an owner; without the team's row held, both passed.
    from tests.conftest import at_once

    teammate = Membership.objects.get(team=team_users.team, user=team_users.teammate)
    members.set_role(teammate, "owner")

    def demote(user) -> int:
        try:
            members.set_role(Membership.objects.get(team=team_users.team, user=user), "viewer")
        except members.Refused:
            return 409
        return 200

    codes = at_once(monkeypatch, (members, "keeps_an_owner"), lambda: demote(team_users.owner),
                    lambda: demote(team_users.teammate))
    assert sorted(codes) == [200, 409]
    assert Membership.objects.filter(team=team_users.team, role="owner").count() == 1
