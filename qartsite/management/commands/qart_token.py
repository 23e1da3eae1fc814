"""API tokens: make one, list them, revoke one.

    python manage.py qart_token alice [--name LABEL]   # prints a new token: the only time it is ever shown

The account page does the same for the signed-in person (`qartsite.tokens`).
    python manage.py qart_token alice --list           # prefix, created, expiry and name of each, no secret
    python manage.py qart_token alice --revoke PREFIX  # revokes the token whose prefix this is

Tokens are django-rest-knox's: the database keeps a hash and the token's first characters (its prefix), never the
token itself, so a lost token cannot be shown again: revoke it and make another. A new token expires after
QART_TOKEN_TTL_DAYS days when that is set, and never otherwise. Clients send `Authorization: Token <token>`.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from generator.core.codes.echoes import echo
from qartsite import tokens


class Command(BaseCommand):
    help = "Make an API token for USER (printed once), or list or revoke USER's tokens."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="",
                            help=f"a label for the new token (up to {tokens.NAME_LENGTH} characters)")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", dest="listing",
                            help="list USER's tokens (prefix, dates, name)")
        action.add_argument("--revoke", metavar="PREFIX", help="revoke USER's token that starts with PREFIX")

    def handle(self, *args, username: str, name: str, listing: bool, revoke: str | None, **options) -> None:
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user named “{echo(username)}”.") from None
        if name and (listing or revoke is not None):
            raise CommandError("--name labels a new token: it goes without --list and --revoke.")
        if listing:
            self.list_tokens(user)
        elif revoke is not None:
            self.revoke(user, revoke.strip())
        else:
            self.create(user, name.strip())

    def create(self, user, name: str) -> None:
        if not user.is_active:
            raise CommandError(f"{user.get_username()} is inactive: a token of theirs would be refused.")
        if len(name) > tokens.NAME_LENGTH:
            raise CommandError(f"--name is {len(name)} characters long; the most is {tokens.NAME_LENGTH}.")
        try:
            auth_token, token = tokens.make_token(user, name)
        except tokens.TokenRefused as refused:  # a name with a control character in it
            raise CommandError(str(refused)) from None
        expires = f"expires {auth_token.expiry:%Y-%m-%d %H:%M} UTC" if auth_token.expiry else "never expires"
        # The token alone on stdout, so `TOKEN=$(manage.py qart_token alice)` works; the rest on stderr.
        self.stdout.write(token)
        self.stderr.write(f"API token for {user.get_username()} (prefix {auth_token.token_key}, {expires}). "
                          "It is shown only now: store it. Send it as `Authorization: Token <token>`.")

    def list_tokens(self, user) -> None:
        listed = tokens.tokens_of(user)
        if not listed:
            self.stdout.write(f"{user.get_username()} has no API tokens.")
            return
        rows = [("PREFIX", "CREATED (UTC)", "EXPIRES (UTC)", "NAME")]
        for token in listed:
            expiry = f"{token.expiry:%Y-%m-%d %H:%M}" if token.expiry else "never"
            if token.expired:
                expiry += " (expired)"
            rows.append((token.prefix, f"{token.created:%Y-%m-%d %H:%M}", expiry, token.name))
        width = [max(len(row[i]) for row in rows) for i in range(3)]
        for prefix, created, expiry, name in rows:
            self.stdout.write(f"{prefix:<{width[0]}}  {created:<{width[1]}}  {expiry:<{width[2]}}  {name}".rstrip())

    def revoke(self, user, prefix: str) -> None:
        if not prefix:
            raise CommandError("--revoke needs the token's prefix, as --list shows it.")
        try:
            token_key = tokens.revoke(user, prefix)  # one home for the refusals, the account page's too
        except tokens.TokenRefused as refused:
            raise CommandError(f"{refused} Their prefixes: --list.") from None
        self.stdout.write(f"Revoked {user.get_username()}'s token {token_key}.")
