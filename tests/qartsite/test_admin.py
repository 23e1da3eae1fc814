"""The admin's team isolation (qartsite.admin): every registered admin scoped, the teams' and invitations' admins,
the scoped replacements of Django's and the packages' own, and view on site. What every team-scoped admin does
with rows, choices, filters and changes: test_scoped_admin.py, with this module's cast and rows.

The cast are staff with every Django permission, so what keeps them out is the team scoping, not a missing
permission. Each team's rows carry its name ("Acme ...", "Rival ..."), so a page that leaks the other team
shows "Rival" somewhere.
"""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.html import strip_tags
from knox.models import AuthToken
from rest_framework.authtoken.models import TokenProxy

from campaigns.models import (
    Campaign,
    Placement,
)
from generator.models import (
    VerifierModel,
)
from generator.verifier_admin import VerifierModelAdmin
from qartsite.admin import (
    OwnTokenAdmin,
    SuperuserAccessAttemptAdmin,
    SuperuserAccessFailureLogAdmin,
    SuperuserAccessLogAdmin,
    SuperuserGroupAdmin,
    TeammateUserAdmin,
)
from qartsite.models import APIToken, Invitation, Membership, Team, TokenLabel
from qartsite.scoped_admin import TeamScopedAdmin, TeamScopedInline
from tests.qartsite.admin_pages import admin_links, choices_on, scoped_admins, url

# The admins of models that belong to no team, each replaced by a scoped one in qartsite.admin. django_rq's
# Queue admin is deliberately absent: it registers only with RQ_SHOW_ADMIN_LINK (off), and its dashboard lists
# every team's jobs; turning it on fails the registry test below until it gets a scoping rule.
SCOPED_ELSEWHERE = {
    get_user_model(): TeammateUserAdmin,  # teammates only, read only
    Group: SuperuserGroupAdmin,  # superusers only
    APIToken: OwnTokenAdmin,  # one's own API tokens only (knox's, by their prefix), read and revoke
    AccessAttempt: SuperuserAccessAttemptAdmin,  # sign-in records: superusers only
    AccessLog: SuperuserAccessLogAdmin,
    AccessFailureLog: SuperuserAccessFailureLogAdmin,
    VerifierModel: VerifierModelAdmin,  # global (every team's jobs use the active one): staff read, superusers activate
}


class TestRegistry:
    def test_it_has_a_scoping_rule_for_every_registered_admin(self):
        for model, model_admin in admin.site._registry.items():
            if model in SCOPED_ELSEWHERE:
                assert type(model_admin) is SCOPED_ELSEWHERE[model], model
            else:
                assert isinstance(model_admin, TeamScopedAdmin), f"{model.__name__}'s admin is not team-scoped"

    def test_it_scopes_every_inline(self):
        for model, model_admin in admin.site._registry.items():
            for inline in model_admin.inlines:
                assert issubclass(inline, TeamScopedInline), f"{inline.__name__} in {model.__name__}'s admin"

    def test_it_knows_how_to_scope_every_relation_of_team_scoped_models(self):
        # ScopedChoices narrows relations to teams, users and team-owned models; any other target would offer
        # Django's unscoped default.
        models = {model for model, _ in scoped_admins()}
        models |= {inline.model for _, model_admin in scoped_admins() for inline in model_admin.inlines}
        for model in models:
            for field in model._meta.get_fields():
                if field.concrete and field.is_relation:
                    target = field.related_model
                    assert target in (Team, get_user_model()) or hasattr(target, "team_paths"), (model, field.name)


@pytest.mark.django_db
class TestTeamAdmin:
    def test_it_shows_members_only_their_teams(self, client, cast, rows):
        client.force_login(cast.viewer)
        body = client.get(url(Team)).content.decode()
        assert url(Team, "change", cast.team) in body and url(Team, "change", cast.other_team) not in body

    def test_it_lets_only_owners_change_a_team_and_its_members(self, client, cast, rows):
        memberships = Membership.objects.filter(team=cast.team).order_by("pk")
        data = {"name": "Acme Inc", "time_zone": "UTC", "scan_retention_days": "",
                "memberships-TOTAL_FORMS": len(memberships),
                "memberships-INITIAL_FORMS": len(memberships), "memberships-MIN_NUM_FORMS": 0,
                "memberships-MAX_NUM_FORMS": 1000}
        for i, membership in enumerate(memberships):
            data |= {f"memberships-{i}-id": membership.pk, f"memberships-{i}-team": cast.team.pk,
                     f"memberships-{i}-user": membership.user_id, f"memberships-{i}-role": "owner"}
        for user in (cast.teammate, cast.viewer):
            client.force_login(user)
            assert client.post(url(Team, "change", cast.team), data).status_code == 403
            assert client.post(url(Team, "delete", cast.team), {"post": "yes"}).status_code == 403
        assert Membership.role_of(cast.viewer, cast.team) == "viewer"
        client.force_login(cast.owner)
        assert client.post(url(Team, "change", cast.team), {**data, "scan_retention_days": "30"}).status_code == 302
        assert Membership.role_of(cast.viewer, cast.team) == "owner"
        cast.team.refresh_from_db()  # set on the team page or the API, which ask before deleting scans
        assert cast.team.scan_retention_days is None

    def test_it_refuses_to_leave_a_team_without_an_owner(self, client, cast, rows):
        # Deleting the last owner's row, or making every owner something else, left a team nobody could manage.
        memberships = list(Membership.objects.filter(team=cast.team).order_by("pk"))
        data = {"name": "Acme", "time_zone": "UTC", "scan_retention_days": "",
                "memberships-TOTAL_FORMS": len(memberships), "memberships-INITIAL_FORMS": len(memberships),
                "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000}
        for i, membership in enumerate(memberships):
            data |= {f"memberships-{i}-id": membership.pk, f"memberships-{i}-team": cast.team.pk,
                     f"memberships-{i}-user": membership.user_id, f"memberships-{i}-role": membership.role}
        owner_row = next(i for i, m in enumerate(memberships) if m.user_id == cast.owner.pk)
        client.force_login(cast.owner)
        for change in ({f"memberships-{owner_row}-DELETE": "on"}, {f"memberships-{owner_row}-role": "editor"}):
            response = client.post(url(Team, "change", cast.team), data | change)
            assert response.status_code == 200 and "Acme needs an owner" in response.content.decode()
            assert Membership.role_of(cast.owner, cast.team) == "owner"
        viewer_row = next(i for i, m in enumerate(memberships) if m.user_id == cast.viewer.pk)
        handed_over = {f"memberships-{viewer_row}-role": "owner", f"memberships-{owner_row}-DELETE": "on"}
        response = client.post(url(Team, "change", cast.team), data | handed_over)
        assert response.status_code == 302 and Membership.role_of(cast.owner, cast.team) is None
        assert Membership.role_of(cast.viewer, cast.team) == "owner"

    def test_a_superuser_cannot_delete_a_teams_last_owner_account(self, client, cast, rows):
        # The account went, and its team had nobody to manage it.
        User = get_user_model()
        client.force_login(User.objects.create_superuser("boss", password="pw-boss-1"))
        page = client.get(url(User, "delete", cast.owner)).content.decode()
        assert "protected related objects" in page and "Acme needs an owner: make someone" in page
        client.post(url(User, "delete", cast.owner), {"post": "yes"})
        bulk = {"action": "delete_selected", "_selected_action": [cast.owner.pk, cast.viewer.pk], "post": "yes"}
        client.post(url(User), bulk)
        assert User.objects.filter(pk__in=[cast.owner.pk, cast.viewer.pk]).count() == 2
        # With another owner, the account goes.
        Membership.objects.filter(team=cast.team, user=cast.viewer).update(role="owner")
        assert client.post(url(User, "delete", cast.owner), {"post": "yes"}).status_code == 302
        assert not User.objects.filter(pk=cast.owner.pk).exists()

    def test_it_offers_owners_only_their_teammates_as_members(self, client, cast, rows):
        client.force_login(cast.owner)
        choices = choices_on(client.get(url(Team, "change", cast.team)))
        assert cast.owner in choices["user"] and cast.outsider not in choices["user"]

    def test_it_lets_only_superusers_add_teams(self, client, cast):
        client.force_login(cast.owner)
        assert client.get(url(Team, "add")).status_code == 403

    def test_a_superuser_adds_a_team_with_its_first_owner(self, client, cast):
        # The one-team check hashed the unsaved team: every team added here was a 500
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        inline = {"memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0",
                  "memberships-0-user": cast.outsider.pk, "memberships-0-role": "owner"}
        response = client.post(url(Team, "add"), {"name": "Gamma", "time_zone": "UTC", **inline})
        assert response.status_code == 302
        assert Membership.role_of(cast.outsider, Team.objects.get(name="Gamma")) == "owner"

    def test_a_superuser_owns_a_team_added_with_no_owner_named(self, client, cast):
        # README's way to a second team. Without an owner the team was nobody's: the site shows a team to its
        # members only, its maker neither.
        root = get_user_model().objects.create_superuser("root", password="pw-root-1")
        client.force_login(root)
        inline = {"memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0",
                  "memberships-0-user": cast.viewer.pk, "memberships-0-role": "viewer"}
        response = client.post(url(Team, "add"), {"name": "Gamma", "time_zone": "UTC", **inline})
        assert response.status_code == 302
        team = Team.objects.get(name="Gamma")
        assert (Membership.role_of(root, team), Membership.role_of(cast.viewer, team)) == ("owner", "viewer")
        assert "Gamma" in client.get(reverse("campaigns:list")).content.decode()


    @pytest.mark.parametrize("role", ["viewer", "editor"])
    def test_a_superuser_who_lists_themselves_in_another_role_is_asked_for_an_owner(self, client, cast, role):
        # They were made its owner all the same, the role they chose silently changed.
        root = get_user_model().objects.create_superuser("root", password="pw-root-1")
        client.force_login(root)
        inline = {"memberships-TOTAL_FORMS": "2", "memberships-INITIAL_FORMS": "0",
                  "memberships-0-user": root.pk, "memberships-0-role": role,
                  "memberships-1-user": cast.viewer.pk, "memberships-1-role": "viewer"}
        response = client.post(url(Team, "add"), {"name": "Gamma", "time_zone": "UTC", **inline})
        assert response.status_code == 200
        assert strip_tags(response.content.decode()).count("A team needs at least one owner") == 1
        assert not Team.objects.filter(name="Gamma").exists()
        # With an owner named, nobody else is promoted: the maker keeps the role they chose.
        named = inline | {"memberships-1-role": "owner"}
        assert client.post(url(Team, "add"), {"name": "Gamma", "time_zone": "UTC", **named}).status_code == 302
        team = Team.objects.get(name="Gamma")
        assert (Membership.role_of(root, team), Membership.role_of(cast.viewer, team)) == (role, "owner")


@pytest.mark.django_db
class TestInvitationAdmin:
    def test_it_lists_only_invitations_of_teams_the_user_owns(self, client, cast, rows):
        ours, theirs = rows["ours"][Invitation], rows["theirs"][Invitation]
        client.force_login(cast.owner)
        body = client.get(url(Invitation)).content.decode()
        assert url(Invitation, "change", ours) in body and url(Invitation, "change", theirs) not in body
        assert client.get(url(Invitation, "change", theirs)).status_code in (302, 404)
        assert ours.token in client.get(url(Invitation, "change", ours)).content.decode()

    def test_it_hides_invitations_and_tokens_from_editors_and_viewers(self, client, cast, rows):
        ours = rows["ours"][Invitation]
        for user in (cast.teammate, cast.viewer):
            client.force_login(user)
            assert ours.token not in client.get(url(Invitation)).content.decode()
            response = client.get(url(Invitation, "change", ours))
            assert response.status_code in (302, 404) and ours.token not in response.content.decode()

    def test_it_refuses_an_invitation_to_another_team(self, client, cast, rows):
        client.force_login(cast.owner)
        data = {"team": cast.other_team.pk, "email": "spy@example.com", "role": "owner"}
        response = client.post(url(Invitation, "add"), data)
        assert response.status_code == 200 and response.context["adminform"].form.errors
        client.force_login(cast.teammate)
        assert client.post(url(Invitation, "add"), data | {"team": cast.team.pk}).status_code == 403
        assert not Invitation.objects.filter(email="spy@example.com").exists()


    def test_its_sender_is_whoever_makes_it(self, client, cast, rows):
        # Naming another owner as the sender kept an owner-role invitation alive after its real sender was removed.
        from qartsite import accounts, members

        second = get_user_model().objects.create_user("second", password="pw-second-1")
        Membership.objects.create(team=cast.team, user=second, role="owner")
        client.force_login(cast.owner)
        data = {"team": cast.team.pk, "email": "back@example.com", "role": "owner", "invited_by": second.pk}
        assert client.post(url(Invitation, "add"), data).status_code == 302
        invitation = Invitation.objects.get(email="back@example.com")
        assert invitation.invited_by == cast.owner
        members.remove(Membership.objects.get(team=cast.team, user=cast.owner))
        assert accounts.invitation_problem(Invitation.objects.filter(pk=invitation.pk).first()) == "unknown"


@pytest.mark.django_db
class TestAutoRegisteredAdmins:
    def test_it_shows_staff_only_their_own_api_tokens(self, client, cast):
        (mine, secret), (teammates, _) = AuthToken.objects.create(cast.owner), AuthToken.objects.create(cast.teammate)
        others, _ = AuthToken.objects.create(cast.outsider)
        TokenLabel.objects.create(token=mine, name="ci deploys")
        client.force_login(cast.owner)
        body = client.get(url(APIToken)).content.decode()
        assert mine.token_key in body and "ci deploys" in body
        assert teammates.token_key not in body and others.token_key not in body
        assert client.get(url(APIToken, "change", teammates)).status_code in (302, 404)
        page = client.get(url(APIToken, "change", mine)).content.decode()
        assert mine.token_key in page and secret not in page and "digest" not in page.lower()
        # The hash is in the page's links (it is the row's key), never shown as text: not even as the token's name.
        assert mine.digest not in strip_tags(page)
        assert mine.digest not in strip_tags(client.get(url(APIToken, "delete", mine)).content.decode())

    def test_it_retires_knox_token_admin(self):
        assert AuthToken not in admin.site._registry

    def test_it_makes_no_tokens_in_the_admin(self, client, cast):
        # A token is shown once, when it is made: `manage.py qart_token` does that, the admin does not.
        for user in (cast.owner, get_user_model().objects.create_superuser("root", password="pw-root-1")):
            client.force_login(user)
            assert client.get(url(APIToken, "add")).status_code == 403
            assert client.post(url(APIToken, "add"), {"user": user.pk}).status_code == 403
        assert not AuthToken.objects.exists()

    def test_it_lets_staff_revoke_only_their_own_tokens(self, client, cast):
        (mine, _), (teammates, _) = AuthToken.objects.create(cast.owner), AuthToken.objects.create(cast.teammate)
        client.force_login(cast.owner)
        client.post(url(APIToken, "delete", teammates), {"post": "yes"})
        client.post(url(APIToken), {"action": "delete_selected", "_selected_action": [teammates.pk], "post": "yes"})
        assert AuthToken.objects.filter(pk=teammates.pk).exists()
        assert client.post(url(APIToken, "delete", mine), {"post": "yes"}).status_code == 302
        assert not AuthToken.objects.filter(pk=mine.pk).exists()

    def test_it_retires_drf_token_admin(self):
        assert TokenProxy not in admin.site._registry

    def test_it_keeps_sign_in_records_to_superusers(self, client, cast):
        AccessAttempt.objects.create(username="owner", ip_address="203.0.113.9", user_agent="spy", http_accept="*/*",
                                     path_info="/accounts/login/", get_data="", post_data="", failures_since_start=5)
        client.force_login(cast.owner)
        for model in (AccessAttempt, AccessLog, AccessFailureLog):
            assert client.get(url(model)).status_code == 403, model
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        assert "203.0.113.9" in client.get(url(AccessAttempt)).content.decode()
        assert client.get(url(AccessAttempt, "add")).status_code == 403

    def test_it_shows_staff_only_their_teammates_read_only(self, client, cast):
        User = get_user_model()
        client.force_login(cast.viewer)
        body = client.get(url(User)).content.decode()
        assert url(User, "change", cast.owner) in body and url(User, "change", cast.outsider) not in body
        assert client.get(url(User, "change", cast.outsider)).status_code in (302, 404)
        page = client.get(url(User, "change", cast.owner))
        assert page.status_code == 200 and "pbkdf2" not in page.content.decode().lower()
        assert "md5" not in page.content.decode().lower()  # the tests' password hasher
        response = client.post(url(User, "change", cast.viewer), {"username": "viewer", "is_superuser": "on"})
        assert response.status_code == 403
        assert client.post(f"/admin/auth/user/{cast.owner.pk}/password/",
                           {"password1": "taken-Over-42", "password2": "taken-Over-42"}).status_code == 403
        cast.owner.refresh_from_db()
        assert cast.owner.check_password("pw-owner-1")
        assert not User.objects.get(pk=cast.viewer.pk).is_superuser

    def test_it_lets_staff_filter_users_only_by_the_lists_filters(self, client, cast):
        # `?teams=<id>` (any one-step lookup, reverse relations included) told staff which teammates also belong
        # to another team; `?generations=<id>` which of them made another team's generation.
        User = get_user_model()
        Membership.objects.create(team=cast.other_team, user=cast.teammate, role="viewer")
        client.force_login(cast.owner)
        for lookup in (f"teams={cast.other_team.pk}", f"memberships__team={cast.other_team.pk}", "generations=1",
                       f"prompts__team={cast.other_team.pk}"):
            response = client.get(url(User) + f"?{lookup}")
            assert response.status_code == 400, lookup
            assert "teammate" not in response.content.decode(), lookup
        assert client.get(url(User) + "?is_staff__exact=1").status_code == 200
        cast.owner.is_superuser = True
        cast.owner.save(update_fields=["is_superuser"])
        listed = client.get(url(User) + f"?teams={cast.other_team.pk}").content.decode()
        assert url(User, "change", cast.teammate) in listed  # a superuser filters as Django allows

    def test_it_keeps_groups_to_superusers(self, client, cast):
        Group.objects.create(name="auditors")
        client.force_login(cast.owner)
        assert client.get(url(Group)).status_code == 403
        assert client.get(url(Group, "add")).status_code == 403
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        assert "auditors" in client.get(url(Group)).content.decode()


@pytest.mark.django_db
class TestDeletingTeams:
    def test_only_superusers_delete_a_team_and_its_printed_codes(self, client, cast, rows):
        client.force_login(cast.owner)
        assert client.post(url(Team, "delete", cast.team), {"post": "yes"}).status_code == 403
        client.post(url(Team), {"action": "delete_selected", "_selected_action": [cast.team.pk], "post": "yes"})
        assert Team.objects.filter(pk=cast.team.pk).exists() and Placement.objects.filter(campaign__team=cast.team)
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        assert client.get(url(Team, "delete", cast.team)).status_code == 200


@pytest.mark.django_db
class TestViewOnSite:
    def test_a_kind_of_object_without_a_table_has_no_page_rather_than_a_database_outage(self, client, admin_user):
        # django_rq's Queue: a placeholder model for its permission, never stored.
        queue = ContentType.objects.get(app_label="django_rq", model="queue")
        client.force_login(admin_user)
        response = client.get(reverse("admin:view_on_site", args=[queue.pk, 1]))
        assert response.status_code == 404 and "Retry-After" not in response

    def test_it_answers_unknown_kinds_and_objects_with_404(self, client, admin_user, rows):
        campaign = ContentType.objects.get_for_model(Campaign)
        client.force_login(admin_user)
        assert client.get(reverse("admin:view_on_site", args=[999_999, 1])).status_code == 404
        # A campaign has no page of its own here (no get_absolute_url): Django's own answer, a 404.
        url = reverse("admin:view_on_site", args=[campaign.pk, rows["ours"][Campaign].pk])
        assert client.get(url).status_code == 404


@pytest.fixture
def left(cast, linked):
    """Our rows made by someone who has left the team since (every relation of theirs to a user names them), and
    pointing into the other team's (`linked`); the other team's made by its owner, still there; the verifier model,
    activated by a superuser."""
    leaver = get_user_model().objects.create_user("leaver", password="pw-leaver-1")
    for model, obj in linked["ours"].items():
        by = {field.name: leaver for field in model._meta.concrete_fields
              if field.is_relation and field.related_model is get_user_model()}
        if by:
            model.objects.filter(pk=obj.pk).update(**by)
    operator = get_user_model().objects.create_superuser("operator", password="pw-operator-1")
    verifier = VerifierModel.objects.create(model_id="logistic-v1-aaaa1111", form="logistic-v1", bias=-4.0,
                                            weights=[["o_any", 1.0]], is_active=True, activated_by=operator,
                                            created_by=operator)
    return {side: {**rows, VerifierModel: verifier} for side, rows in linked.items()}


@pytest.mark.django_db
# An editor (`cast.teammate`) sees what an owner sees less the owners-only admins, and more than a viewer: not walked
# too, each walk being ~25 s.
@pytest.mark.parametrize("who", ["owner", "viewer", "outsider", "superuser"])
def test_every_link_of_the_admin_opens_for_whoever_it_is_shown_to(client, cast, left, who):
    # The index and, for every registered admin, its list, its add page and the change, delete and history pages of
    # one row the user sees: each link into the admin opens (200) for the user it is shown to. A read-only relation
    # linked to a page its user could not open: our row's maker who left the team ("... doesn't exist. Perhaps it
    # was deleted?"), the superuser who activated the verifier model. A link to the other team's rows would fail the
    # same way: none is drawn either.
    if who == "superuser":
        user = get_user_model().objects.create_superuser("root", password="pw-root-1")
    else:
        user = getattr(cast, who)  # staff with every permission: only the team scoping keeps them out
    token, _ = AuthToken.objects.create(user)
    own = {**(left["theirs"] if who == "outsider" else left["ours"]), APIToken: APIToken.objects.get(pk=token.pk),
           get_user_model(): cast.outsider if who == "outsider" else cast.teammate}
    client.force_login(user)
    pages = ["/admin/"]
    for model in sorted(admin.site._registry, key=lambda model: model._meta.label):
        pages += [url(model), url(model, "add")]
        if model in own:
            pages += [url(model, action, own[model]) for action in ("change", "delete", "history")]
    links: dict[str, list[str]] = {}
    for page in pages:
        answer = client.get(page)
        if answer.status_code == 200:
            for link in admin_links(answer, page):
                links.setdefault(link, []).append(page)
    assert url(Campaign, "change", own[Campaign]) in links and url(VerifierModel, "change", own[VerifierModel]) in links
    answers = {link: client.get(link).status_code for link in sorted(links)}
    assert {link: (status, links[link]) for link, status in answers.items() if status != 200} == {}
