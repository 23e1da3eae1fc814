"""The `breaks_after_slashes` filter: a web address that wraps only after its slashes.

    {% load links %}{{ "qart.example/r/AbC12345"|breaks_after_slashes }}  ->  "qart.example/<wbr>r/<wbr>AbC12345"

A narrow caption with `overflow-wrap: anywhere` cut a short link mid-word ("qart.exampl / e/r/AbC123 / 45"); with
a break offered after each "/", the caption's `overflow-wrap: break-word` cuts a part only when it alone is wider
than the line.
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def breaks_after_slashes(text: object) -> SafeString:
    """`text` escaped, with a <wbr> after each run of slashes ("https://" is not split) but a trailing one."""
    return mark_safe(re.sub(r"/+(?!/|$)", r"\g<0><wbr>", str(escape(text))))  # noqa: S308 (escaped above)
