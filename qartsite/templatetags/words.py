"""Filters for names in templates: `possessive` (`qartsite.plurals.possessive`) and `breaks_in_name`.

    {% load words %}{{ team.name|possessive }} codes  ->  "Acme Coffee Roasters' codes"
    {{ "SS26_DE_BER_Poster"|breaks_in_name }}  ->  "SS26_<wbr>DE_<wbr>BER_<wbr>Poster"
"""

from __future__ import annotations

import re

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


@register.filter(needs_autoescape=True)
def breaks_in_name(name: object, autoescape: bool = True) -> SafeString:
    """The name escaped, with a <wbr> after each run of underscores or dots but a trailing one.

    Teams name campaigns and placements in one long word ("SS26_DE_BER_OOH_Poster_UBahn_Mitte_..."), which a
    browser breaks nowhere: in a narrow column `overflow-wrap: anywhere` cut it at the column's edge, mid-word
    ("...Poster_UBa" / "hn_Mitte..."). With a break offered after each separator, a line ends at one and a part is
    cut only when it alone is wider than the line.
    """
    text = str(conditional_escape(name) if autoescape else name)
    return mark_safe(re.sub(r"[_.]+(?![_.]|$)", r"\g<0><wbr>", text))  # noqa: S308 (escaped above)
