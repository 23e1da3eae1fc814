"""Names a reader tells apart: two campaigns of a team, or two placements of a campaign, may not share one.

"Poster 1" and "poster 1", or "é" written as one character and as "e" with an accent, are one name to a person
reading the dashboard or a CSV; so they are one name here (`name_key`). The pages, the API, the admin (its forms,
its placements inline, its unarchive) and the CSV import all ask `campaign_name_clash` and `placement_name_clash`
(the import's final check, under the campaign's lock, compares its rows' keys itself: `campaigns.bulk.store`).

A check and its save are one transaction wherever a name is given (the pages, the API, the admin): the check locks
the team (for its campaigns) or the campaign (for its placements) until the row is saved, so two requests that name
alike at once (a double click, a retried call) make one row, and the second is told the name is taken.
"""

from __future__ import annotations

import unicodedata

from django.db import transaction

from campaigns.models import Campaign, Placement
from qartsite.models import Team

INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))  # zero-width and soft hyphen
CAMPAIGN_NAME_TAKEN = "Your team already has a campaign with this name: give this one another."
PLACEMENT_NAME_TAKEN = "The campaign already has a placement with this name."


def name_key(name: str) -> str:
    """What makes two names the same to a reader: case, the Unicode forms of one letter ("é" as one character or as
    "e" and an accent) and invisible characters left out."""
    return unicodedata.normalize("NFKC", name.translate(INVISIBLE)).casefold()


def campaign_name_clash(campaign: Campaign | None, team: Team, name: str, archived: bool) -> bool:
    """Whether saving `campaign` (None: a new one) with `name` and `archived` would give `team` two active campaigns
    of one name. Asked only of a change that could: a new campaign, a new name, or one coming back from the archive.
    An archived campaign's own edits, and a pair of one name made before the rule, stay editable."""
    if archived:
        return False
    if campaign is not None and campaign.pk is not None and not campaign.archived and (
            name_key(name) == name_key(campaign.name)):
        return False
    return campaign_name_taken(team, name, getattr(campaign, "pk", None))


def refuse_taken_campaign_name(form, data: dict) -> None:
    """A campaign form's check (the pages' and the admin's): its name under `name` when the team has another active
    campaign of that name. `data`: the form's cleaned data; the form's instance is still the campaign as stored."""
    instance = form.instance
    team = data.get("team") or (instance.team if instance.team_id else None)
    archived = data.get("archived", instance.archived if instance.pk else False)
    if "name" in data and team is not None and campaign_name_clash(instance if instance.pk else None, team,
                                                                   data["name"], archived):
        form.add_error("name", CAMPAIGN_NAME_TAKEN)


def placement_name_clash(placement: Placement | None, campaign: Campaign, name: str,
                         taken: set[str] | None = None) -> bool:
    """Whether saving `placement` (None or unsaved: a new one) with `name` gives `campaign` two placements of one
    name; its own name kept (or recased) never does. `taken`: the campaign's name keys, read once (a CSV import)."""
    if placement is not None and placement.pk is not None and name_key(name) == name_key(placement.name):
        return False
    if taken is not None:
        return name_key(name) in taken
    return placement_name_taken(campaign, name, getattr(placement, "pk", None))


def campaign_name_taken(team: Team, name: str, exclude_pk: int | None = None) -> bool:
    """Whether another campaign of `team` that is not archived has the name `name` (an archived one's name is free
    again: a team runs "Summer sale" every year)."""
    _hold(team)
    return _named(Campaign.objects.filter(team=team, archived=False).exclude(pk=exclude_pk), name)


def placement_name_taken(campaign: Campaign, name: str, exclude_pk: int | None = None) -> bool:
    """Whether another placement of `campaign`, switched off or not, has the name `name`."""
    _hold(campaign)
    return _named(Placement.objects.filter(campaign=campaign).exclude(pk=exclude_pk), name)


def _hold(row: Team | Campaign) -> None:
    """Lock `row` until the caller's transaction ends, and read it again as locked: a second check of a name in it
    waits, then sees the first's row, and a campaign archived meanwhile is seen archived (a placement added to it is
    then refused: `Placement.refused_as_new`). FOR NO KEY UPDATE, so rows that only point at it (scans, placements'
    own changes) are not held up. Outside a transaction nothing can be held; SQLite's write transactions (IMMEDIATE,
    settings) run one at a time anyway."""
    if transaction.get_connection().in_atomic_block:
        row.refresh_from_db(from_queryset=type(row).objects.select_for_update(no_key=True))


def _named(rows, name: str) -> bool:
    """Whether one of `rows` (campaigns or placements) has `name`, as a reader tells names apart."""
    key = name_key(name)
    return any(name_key(other) == key for other in rows.values_list("name", flat=True))
