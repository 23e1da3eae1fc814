"""A count and its noun in agreement, for the messages people read: "1 scan", "2 scans". No application imports.

Templates have Django's `pluralize` filter; messages built in Python said "Stored 1 scans" and "has 1 codes to scan".
"""

from __future__ import annotations


def counted(count: int, noun: str, plural: str = "") -> str:
    """`count` (thousands grouped) and `noun`, or `plural` (defaults to noun + "s") for any count but 1.

    Args:
        count (`int`): how many.
        noun (`str`): the noun for one ("scan", "new scan", "rollup row").
        plural (`str`, *optional*): the noun for several, where it is not noun + "s" ("entries").
    """
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
