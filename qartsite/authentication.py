"""API token authentication: django-rest-knox's, which keeps only a hash of each token.

Tokens are made on the account page or by `manage.py qart_token` and sent as `Authorization: Token <token>` (or
`Bearer <token>`, RFC 6750's scheme, which most HTTP clients send for a token). Those DRF made before knox still
work: qartsite's migration 0002 stored their hashes the way knox stores its own.

An expired token answers "Token expired: make a new one …" (`TOKEN_EXPIRED`) once; after that, "Invalid token." like
a token that never existed. Knox deletes an expired token lazily, the first time a token with its prefix is presented
(and a user's other expired tokens whenever one of theirs is), and keeps nothing to tell a deleted token from one
that never was: only that first use, by someone holding the whole token, can be told it expired.

Credentials under any other scheme (Basic, a password) are passed over, so a session still signs in beside them; the
401 of a request that had nothing else says which schemes are taken (`other_scheme`, through
`qartsite.api.exception_handler`).
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from generator.core.codes.echoes import echo

TOKEN_EXPIRED = "Token expired: make a new one on your account page (/accounts/) or with `manage.py qart_token`."


TOKEN_SCHEMES = {b"token", b"bearer"}
OTHER_SCHEME = ("`Authorization: {scheme}` is not taken here: send `Authorization: Token <token>` (or "
                "`Bearer <token>`), a token made on your account page (/accounts/) or with `manage.py qart_token`.")


def other_scheme(request) -> str:
    """Why a request that sent credentials under a scheme this API does not read was not authenticated, else "".

    Such a header is passed over, not refused, so a signed-in session still works behind a proxy that asks for its
    own (Basic) password; but a client that sent it alone was told "Authentication credentials were not provided."
    with its password in the header.

    Args:
        request: the DRF or Django request.

    Returns:
        `OTHER_SCHEME` naming the scheme sent (shortened), or "" where none was sent or it was Token or Bearer.
    """
    scheme = (get_authorization_header(request).split() or [b""])[0]
    if not scheme or scheme.lower() in TOKEN_SCHEMES:
        return ""
    return OTHER_SCHEME.format(scheme=echo(scheme.decode("latin-1")))


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox's token authentication, answering a token that is not UTF-8 with 401 like any other wrong token, and an
    expired one with `TOKEN_EXPIRED` rather than knox's "Invalid token.".

    Knox decodes the header's token as UTF-8 and lets the UnicodeDecodeError through (a 500); DRF's own token
    class refuses such a token as invalid, and so does this one.
    """

    presented = ""  # the token of this request (DRF makes an authenticator per request)

    def authenticate(self, request):
        scheme, *rest = get_authorization_header(request).split() or [b""]
        if scheme.lower() != b"bearer":
            return super().authenticate(request)
        # The same token under RFC 6750's scheme: knox reads only its own prefix, and a client configured for bearer
        # tokens got "Authentication credentials were not provided." with its token in hand.
        if len(rest) != 1:
            raise AuthenticationFailed(_("Invalid token header: send `Authorization: Token <token>`."))
        return self.authenticate_credentials(rest[0])

    def authenticate_credentials(self, token: bytes):
        try:
            self.presented = token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed(_("Invalid token.")) from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        """Knox's own step (pinned knox 5.1: a private method): delete `auth_token` if it expired, with its user's
        other expired tokens, and say whether it had. Where the expired row is the very token presented (its whole
        hash matches, so someone who knows only a prefix learns nothing), answer `TOKEN_EXPIRED` instead of knox's
        "Invalid token.", at no query beyond knox's."""
        presented = self.is_presented(auth_token)  # before knox deletes it: its digest is its primary key
        expired = super()._cleanup_token(auth_token)
        if expired and presented:
            raise AuthenticationFailed(TOKEN_EXPIRED)
        return expired

    def is_presented(self, auth_token: AuthToken) -> bool:
        try:
            digest = hash_token(self.presented)
        except (TypeError, binascii.Error):
            return False
        return compare_digest(digest, auth_token.digest)


class TokenScheme(OpenApiAuthenticationExtension):
    """The API schema's description of this class: `Authorization: Token <token>`, still named tokenAuth as when
    the tokens were DRF's, so generated clients keep their configuration."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization",
                                                     token_prefix=self.target.authenticate_header(None))
        # drf-spectacular's own words said the "Token" prefix was required, and a client built for bearer tokens
        # read that this API took none.
        scheme["description"] = ("`Token <token>` or `Bearer <token>`: a token made on your account page (/accounts/) "
                                 "or with `manage.py qart_token`, shown once.")
        return scheme
