"""The `possessive` filter: `qartsite.plurals.possessive` in templates.

    {% load words %}{{ team.name|possessive }} codes  ->  "Acme Coffee Roasters' codes"
"""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from qartsite.plurals import possessive as possessive_of

register = template.Library()


@register.filter(needs_autoescape=True)
def possessive(name: object, autoescape: bool = True) -> SafeString:
    """The name escaped and its ending added as text, so the page reads "Acme's", not "Acme&#x27;s" in its source."""
    plain = str(name)
    ending = possessive_of(plain)[len(plain):]
    return mark_safe((conditional_escape(name) if autoescape else plain) + ending)
