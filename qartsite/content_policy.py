"""The Content-Security-Policy header (settings.CONTENT_SECURITY_POLICY), built once per process for most responses.

django-csp's middleware builds the policy from the settings on every response, twice (the enforced and the
report-only one), each time through `dataclasses.asdict`: a noticeable share of the short link's CPU (bench/RESULTS.md,
"After the bounded lookup and the Content-Security-Policy"). Most responses use no nonce and no per-view policy
(django-csp's decorators), so their header is always the same string: this middleware keeps it, and leaves every
other response to django-csp.
"""

from __future__ import annotations

from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

# What django-csp's decorators set on a response to change its policy: such responses are built by django-csp.
PER_VIEW = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")
POLICIES = {HEADER: ("CONTENT_SECURITY_POLICY", False),  # header: (its setting, report-only)
            HEADER_REPORT_ONLY: ("CONTENT_SECURITY_POLICY_REPORT_ONLY", True)}
EXEMPT = {HEADER: "_csp_exempt", HEADER_REPORT_ONLY: "_csp_exempt_ro"}


@cache
def fixed_policy(header: str) -> tuple[str, tuple[str, ...]]:
    """The header's value for a response without a nonce or a per-view policy, and the URL prefixes it skips."""
    setting, report_only = POLICIES[header]
    prefixes = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ())
    return build_policy(report_only=report_only), prefixes


@receiver(setting_changed)
def forget_policies(setting: str, **_kwargs) -> None:
    if setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        fixed_policy.cache_clear()


class ContentPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (same headers, same rules), with the usual response's header kept per process."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, name) for name in PER_VIEW):
            return super().process_response(request, response)
        if response.status_code in (404, 500) and settings.DEBUG:  # Django's debug pages: as django-csp
            return response
        for header in POLICIES:
            policy, prefixes = fixed_policy(header)
            if (policy and header not in response and not getattr(response, EXEMPT[header], False)
                    and not request.path_info.startswith(prefixes)):
                response[header] = policy
        # As django-csp: a nonce asked for after the header was written raises instead of going unused.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
