"""API tokens: make one (named, shown once), list them, revoke one; for the account page (`qartsite.accounts`) and
`manage.py qart_token` alike.

Tokens are django-rest-knox's: the database keeps a hash and the token's first characters (its prefix), never the
token itself, so a new token is shown once, when it is made (`qartsite.accounts` carries it across one redirect in
the session, `Cache-Control: no-store`). A person sees and revokes only their own tokens. A new password revokes
them all (`revoke_on_new_password`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from generator.core.codes.echoes import echo
from qartsite.models import OneLine, TokenLabel
from qartsite.plurals import possessive

NAME_LENGTH = TokenLabel._meta.get_field("name").max_length


class TokenRefused(ValueError):
    """What is wrong with a token request, in one sentence."""


@dataclass(frozen=True)
class TokenRow:
    prefix: str
    name: str
    created: datetime
    expiry: datetime | None
    expired: bool


def make_token(user, name: str) -> tuple[AuthToken, str]:
    """A new token for `user`, named `name` (may be empty): the row and the token itself, to be shown once."""
    name = name.strip()
    if not user.is_active:
        raise TokenRefused(f"{user.get_username()} is inactive: a token of theirs would be refused.")
    if len(name) > NAME_LENGTH:
        raise TokenRefused(f"The name is {len(name)} characters long; the most is {NAME_LENGTH}.")
    try:
        # The rule of every other name; and PostgreSQL refuses a NUL in text, which was a 500 on the account page
        OneLine("A token's name")(name)
    except ValidationError as exc:
        raise TokenRefused(exc.messages[0]) from None
    with transaction.atomic():
        auth_token, token = AuthToken.objects.create(user=user)  # expiry: knox's TOKEN_TTL (settings)
        if name:
            TokenLabel.objects.create(token=auth_token, name=name)
    return auth_token, token


def tokens_of(user, now: datetime | None = None) -> list[TokenRow]:
    """`user`'s tokens, oldest first. Knox deletes an expired token only when it, or another of the user's tokens,
    is presented (the API answers that first use "Token expired", `qartsite.authentication`): until then it is
    listed as expired."""
    now = now or timezone.now()
    return [TokenRow(token.token_key, TokenLabel.name_of(token), token.created, token.expiry,
                     bool(token.expiry and token.expiry <= now))
            for token in AuthToken.objects.filter(user=user).select_related("label").order_by("created")]


def revoke(user, prefix: str) -> str:
    """Revoke `user`'s one token whose prefix starts with `prefix`; returns its full prefix."""
    prefix = prefix.strip()
    if not prefix:
        raise TokenRefused("Give the token's prefix, as the list shows it.")
    matches = AuthToken.objects.filter(user=user, token_key__startswith=prefix)
    keys = list(matches.values_list("token_key", flat=True)[:2])
    if not keys:
        raise TokenRefused(f"{user.get_username()} has no token starting with “{echo(prefix)}”.")
    if len(keys) > 1:
        raise TokenRefused(f"Several of {possessive(user.get_username())} tokens start with “{echo(prefix)}”: "
                           "give more of the prefix.")
    matches.delete()
    return keys[0]


def revoke_on_new_password(sender, instance, update_fields=None, **kwargs) -> None:
    """`pre_save` of the user model: a password set with `set_password` (changed on the site, reset by email, set
    in the admin or by `changepassword`) revokes every API token of the user, as it ends their other sessions.
    After an account is taken over, a new password must lock the intruder out, scripts included.

    Django keeps the new raw password in `_password` until the save; a hash upgraded at sign-in goes through
    `set_password` too but clears it before saving, so signing in revokes nothing.
    """
    if instance.pk is None or getattr(instance, "_password", None) is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    AuthToken.objects.filter(user_id=instance.pk).delete()
