"""Create or update the demo superuser that `make run` prints the login of.

The user name is settings.QART["DEMO_USER"] (env QART_DEMO_USER, default "admin"); the password comes from the
environment variable QART_DEMO_PASSWORD, or is "qart-demo" when DEBUG is on. With DEBUG off there is no default
password: the command refuses unless QART_DEMO_PASSWORD is set, and checks it against the password validators.
Running it again resets the same user's password and flags, so it is safe to run on every start.

The user gets an address on a domain reserved for examples (`demo_email`, e.g. admin@example.com) where it has none:
without one, "Forgot your password?" could not find the account. `make run` prints e-mails in its log (the console
e-mail backend), so the reset link shows there; nothing is ever sent to example.com. An address set since is kept.

On an install with no team at all (the first `make run`), the demo user also gets a "Demo team" it owns, so the
first sign-in lands on the campaigns page instead of "you're not in a team yet". Once any team exists it
creates none.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from generator.core.codes.echoes import echo
from qartsite.models import Membership, Team

DEFAULT_PASSWORD = "qart-demo"
PASSWORD_ENV = "QART_DEMO_PASSWORD"
EMAIL_DOMAIN = "example.com"  # reserved for examples (RFC 2606): no one receives its mail


def demo_email(username: str) -> str:
    """The demo user's placeholder address: its name at example.com, or admin@ where the name is no address part."""
    address = f"{username}@{EMAIL_DOMAIN}"
    try:
        validate_email(address)
    except ValidationError:
        return f"admin@{EMAIL_DOMAIN}"
    return address


class Command(BaseCommand):
    help = f"Create or update the demo superuser (password from {PASSWORD_ENV}, or {DEFAULT_PASSWORD!r} under DEBUG)."

    def handle(self, *args, **options) -> None:
        username = settings.QART["DEMO_USER"]
        password = os.environ.get(PASSWORD_ENV, "")
        if not password:
            if not settings.DEBUG:
                raise CommandError(
                    f"Set {PASSWORD_ENV}: with DEBUG off there is no default demo password for “{echo(username)}”."
                )
            password = DEFAULT_PASSWORD

        User = get_user_model()
        with transaction.atomic():
            user, _created = User._default_manager.get_or_create(**{User.USERNAME_FIELD: username})
            if not settings.DEBUG:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError(f"{PASSWORD_ENV} is too weak: {' '.join(exc.messages)}") from None
            user.is_active = True
            user.is_staff = True
            user.is_superuser = True
            if not user.email:
                user.email = demo_email(username)
            if not user.check_password(password):
                # Only a new password is set: setting it again at every `make run` would revoke the demo admin's
                # API tokens each time (qartsite.tokens.revoke_on_new_password).
                user.set_password(password)
            user.save()
            team = None
            if not Team.objects.exists():
                team = Team.objects.create(name="Demo team")
                Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)

        shown = password if password == DEFAULT_PASSWORD else f"(from {PASSWORD_ENV})"
        self.stdout.write(f"Demo admin: user {username} / password {shown}")
        if team is not None:
            self.stdout.write(f"Demo team: “{echo(team.name)}”, owned by {username} (this install had no team yet)")
