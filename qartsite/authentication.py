"""API token authentication: django-rest-knox's, which keeps only a hash of each token.

Tokens are made by `manage.py qart_token` and sent as `Authorization: Token <token>`. Those DRF made before knox
still work: qartsite's migration 0002 stored their hashes the way knox stores its own.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox's token authentication, answering a token that is not UTF-8 with 401 like any other wrong token.

    Knox decodes the header's token as UTF-8 and lets the UnicodeDecodeError through (a 500); DRF's own token
    class refuses such a token as invalid, and so does this one.
    """

    def authenticate_credentials(self, token: bytes):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed(_("Invalid token.")) from None
        return super().authenticate_credentials(token)


class TokenScheme(OpenApiAuthenticationExtension):
    """The API schema's description of this class: `Authorization: Token <token>`, still named tokenAuth as when
    the tokens were DRF's, so generated clients keep their configuration."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization",
                                                   token_prefix=self.target.authenticate_header(None))
