"""Words in agreement, for the messages people read: a count and its noun ("1 scan", "2 scans"), a name's possessive
("Acme's", "Acme Coffee Roasters'"). No application imports.

Templates have Django's `pluralize` filter; messages built in Python said "Stored 1 scans" and "has 1 codes to scan",
and names ending in s read "Acme Coffee Roasters's codes". Templates: `{% load words %}{{ team.name|possessive }}`.
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


def possessive(name: object) -> str:
    """`name` with its possessive ending: "Acme's", and an apostrophe alone after a final s ("Roasters'").

    Args:
        name: a team's, a person's or anything's name (its `str`).
    """
    name = str(name)
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"
