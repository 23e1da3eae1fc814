"""The qart_demo_user command: the demo superuser `make run` prints the login of."""

from __future__ import annotations

import os
from io import StringIO
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpRequest
from django.test import TestCase, override_settings

User = get_user_model()


def run_command(**env: str) -> str:
    """Run the command with exactly these QART_DEMO_* variables set; return what it printed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QART_DEMO_")}
    out = StringIO()
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        call_command("qart_demo_user", stdout=out)
    return out.getvalue()


@override_settings(DEBUG=True)
class DemoUserTestCase(TestCase):
    def test_it_creates_a_superuser(self):
        run_command()

        user = User.objects.get(username="admin")
        self.assertTrue(user.is_superuser)
        self.assertTrue(user.is_staff)
        self.assertTrue(user.is_active)
        self.assertTrue(user.check_password("qart-demo"))

    def test_it_prints_the_login(self):
        self.assertEqual(run_command().splitlines()[0], "Demo admin: user admin / password qart-demo")

    def test_a_first_install_gets_a_demo_team_the_user_owns(self):
        from qartsite.models import Membership, Team

        self.assertIn("Demo team: “Demo team”, owned by admin", run_command())
        membership = Membership.objects.get(user__username="admin")
        self.assertEqual((membership.team.name, membership.role), ("Demo team", "owner"))
        self.assertNotIn("Demo team", run_command())  # once any team exists, none is made
        self.assertEqual(Team.objects.count(), 1)
        self.client.login(request=HttpRequest(), username="admin", password="qart-demo")  # axes needs a request
        self.assertContains(self.client.get("/campaigns/"), "Demo team")

    def test_an_install_with_teams_gets_no_demo_team(self):
        from qartsite.models import Team

        Team.objects.create(name="Marketing")
        run_command()
        self.assertFalse(User.objects.get(username="admin").teams.exists())

    def test_it_lets_the_user_log_in_to_the_admin(self):
        run_command()

        response = self.client.post(
            "/admin/login/?next=/admin/", {"username": "admin", "password": "qart-demo"}, follow=True
        )

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.redirect_chain[-1][0], "/admin/")
        self.assertTrue(response.context["user"].is_superuser)

    def test_its_password_can_be_reset_by_e_mail(self):
        # It had no address: "Forgot your password?" found no account, and make run's log showed no link.
        from django.core import mail

        run_command()
        response = self.client.post("/accounts/password_reset/", {"email": "admin@example.com"})

        self.assertEqual(response.status_code, 302)
        self.assertEqual([m.to for m in mail.outbox], [["admin@example.com"]])
        self.assertIn("/accounts/reset/", mail.outbox[0].body)
        User.objects.filter(username="admin").update(email="ops@qart.example")  # an address set since is kept
        run_command()

        self.assertEqual(User.objects.get(username="admin").email, "ops@qart.example")

    def test_it_is_idempotent(self):
        run_command()
        run_command()

        self.assertEqual(User.objects.filter(username="admin").count(), 1)
        self.assertTrue(User.objects.get(username="admin").check_password("qart-demo"))

    def test_running_it_again_keeps_the_demo_admins_api_tokens(self):
        # `make run` runs it at every start; a new password revokes a user's tokens, the same one must not.
        from knox.models import AuthToken

        run_command()
        AuthToken.objects.create(User.objects.get(username="admin"))
        run_command()
        self.assertEqual(AuthToken.objects.count(), 1)
        run_command(QART_DEMO_PASSWORD="a-longer-Secret-42")  # a new one does
        self.assertEqual(AuthToken.objects.count(), 0)

    def test_it_restores_an_existing_user(self):
        User.objects.create_user("admin", password="forgotten", is_active=False)

        run_command()

        user = User.objects.get(username="admin")
        self.assertTrue(user.is_superuser and user.is_staff and user.is_active)
        self.assertTrue(user.check_password("qart-demo"))

    def test_it_takes_the_password_from_the_environment(self):
        out = run_command(QART_DEMO_PASSWORD="a-longer-Secret-42")

        self.assertTrue(User.objects.get(username="admin").check_password("a-longer-Secret-42"))
        self.assertNotIn("a-longer-Secret-42", out)

    @override_settings(QART={**settings.QART, "DEMO_USER": "demo"})
    def test_it_uses_the_configured_user_name(self):
        run_command()

        self.assertTrue(User.objects.get(username="demo").is_superuser)
        self.assertFalse(User.objects.filter(username="admin").exists())

    @override_settings(DEBUG=False)
    def test_it_refuses_without_a_password_when_debug_is_off(self):
        with self.assertRaisesMessage(CommandError, "QART_DEMO_PASSWORD"):
            run_command()

        self.assertFalse(User.objects.filter(username="admin").exists())

    @override_settings(DEBUG=False)
    def test_it_refuses_a_weak_password_when_debug_is_off(self):
        with self.assertRaisesMessage(CommandError, "too weak"):
            run_command(QART_DEMO_PASSWORD="password")

        self.assertFalse(User.objects.filter(username="admin").exists())

    @override_settings(DEBUG=False)
    def test_it_accepts_a_given_password_when_debug_is_off(self):
        run_command(QART_DEMO_PASSWORD="a-longer-Secret-42")

        self.assertTrue(User.objects.get(username="admin").check_password("a-longer-Secret-42"))
