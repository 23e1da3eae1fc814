"""How the generation page offers a team's placements: a select while they are few (`LongSelect`), a search box past
that (`searches`). The job page's "Use this one" offers them the same way, a select or a search on each card.

A year of one marketing team (5,000 placements) made the select 647 KB of the page and most of its 343 ms
(bench/RESULTS.md). Past `SELECT_MAX` placements the page sends a text box instead: placement-search.js turns it into
a search that asks `generator.views.placement_search` for a few matches (`matching`) and fills in the chosen one's
id; without JavaScript, the text typed (a slug, or "Campaign / Placement") is found on the server (`named`).
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, Q, QuerySet, Value, When
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from campaigns.models import Placement
from qartsite import form_fields
from qartsite.models import Team

SELECT_MAX = 200  # placements a select still offers whole; past it, the search box
MATCHES = 20  # placements a search answers at most: a list to read, not to scroll
SEPARATOR = " / "  # between a campaign's name and a placement's, as the search box shows a choice


def offered(user, teams: QuerySet[Team]) -> QuerySet[Placement]:
    """The placements of `teams` that `user` may make codes for: those of their campaigns that are not archived,
    by campaign and name, with only the columns the picker and their short links read.

    Args:
        user: who asks; only their own teams' placements are ever offered.
        teams: the teams the page offers (the ones they edit).

    Returns:
        the placements, their campaigns joined.
    """
    return (
        Placement.objects.for_user(user).filter(campaign__team__in=teams, campaign__archived=False)
        .select_related("campaign__team").order_by("campaign__name", "name", "pk")
        # Whole rows (rules, JSON) of a team's thousands of placements and their campaigns were most of the page's
        # time. The team's setting writes each short link (`Placement.short_url`), without a query per placement.
        .only("name", "slug", "campaign__name", "campaign__team__capital_scheme")
    )


def searches(placements: QuerySet[Placement]) -> bool:
    """Whether a page offers `placements` through the search box: more than a select should carry (`SELECT_MAX`).
    Counted, not read: a team's thousands of rows were most of the pages' time."""
    return placements.count() > SELECT_MAX


def attributes(attrs: dict) -> str:
    """`attrs` as Django's widget templates write them (django/forms/widgets/attrs.html): in order, True as the bare
    name, False left out."""
    return mark_safe("".join(format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
                             for name, value in attrs.items() if value is not False))


class LongSelect(forms.Select):
    """A select drawn in Python, for the hundreds of options a team's placements make (up to `SELECT_MAX`; past it
    the page searches): Django draws each option through a template of its own, which took 0.45 s of the generation
    page for 5,000 placements. The same markup as Django's select (its option groups included)."""

    def render(self, name, value, attrs=None, renderer=None) -> str:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [format_html("<select name=\"{}\"{}>", widget["name"], attributes(widget["attrs"]))]
        for group_name, options, _ in widget["optgroups"]:
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">', group_name))
            parts.extend(format_html('\n  <option value="{}"{}>{}</option>', str(option["value"]),
                                     attributes(option["attrs"]), option["label"]) for option in options)
            if group_name:
                parts.append(mark_safe("\n  </optgroup>"))
        parts.append(mark_safe("\n</select>"))
        return mark_safe("".join(parts))


class PlacementChoiceField(form_fields.ModelChoiceField):
    """The generation form's placement: the select while the placements are few, the search's hidden id past
    `SELECT_MAX`."""

    widget = LongSelect

    def label_from_instance(self, obj: Placement) -> str:
        return f"{obj.name} ({obj.campaign.name})"


def shown_name(placement: Placement) -> str:
    """A placement as the search box shows it once chosen, and as one can type it: "Spring sale / Poster A"."""
    return f"{placement.campaign.name}{SEPARATOR}{placement.name}"


def still_names(placement: Placement, text: str) -> bool:
    """Whether `text`, the search box's, still names `placement`: its slug, or its campaign and name as
    "Campaign / Placement" (case aside), as the box shows a choice.

    Args:
        placement: the one whose id came with the text.
        text: what the search box held when the form was sent.

    Returns:
        False once the text was changed to name another (or none).
    """
    text = text.strip()
    if text == placement.slug:
        return True
    wanted = (placement.campaign.name.casefold(), placement.name.casefold())
    return any((campaign.casefold(), name.casefold()) == wanted for campaign, name in splits(text))


def as_json(placement: Placement, link_for: Callable[[Placement], str]) -> dict:
    """What generate.js needs of a placement once chosen: the short link it fills in and the team it sets."""
    return {"link": link_for(placement), "team": placement.campaign.team_id}


def splits(text: str) -> list[tuple[str, str]]:
    """Every way `text` reads as "campaign / placement": at each slash, since either name may hold one ("Bus stop
    4/5")."""
    return [(text[:at].strip(), text[at + 1:].strip()) for at, char in enumerate(text) if char == "/"]


def matching(placements: QuerySet[Placement], query: str) -> list[Placement]:
    """The first `MATCHES` + 1 of `placements` whose campaign name, name or slug contains `query` (the one past
    `MATCHES` tells the caller there are more); "Spring / Poster" also looks for both parts, each in its own
    column.

    Args:
        placements: what may be found (`offered`, perhaps narrowed to one team).
        query: what was typed; blank finds nothing.

    Returns:
        the placements: the one named (or whose slug is) exactly `query` first, then those whose name starts with
        it, then the rest; each group by campaign and name.
    """
    query = query.strip()
    if not query:
        return []
    found = Q(name__icontains=query) | Q(campaign__name__icontains=query) | Q(slug__icontains=query)
    for campaign, name in splits(query):
        if campaign and name:
            found |= Q(campaign__name__icontains=campaign, name__icontains=name)
    # The placement typed out in full came after every campaign's that merely contains it ("Poster 3" after
    # "Counter Poster 30" of a campaign earlier in the alphabet), and past the first MATCHES it was not listed at all.
    closeness = Case(When(Q(name__iexact=query) | Q(slug__iexact=query), then=Value(0)),
                     When(name__istartswith=query, then=Value(1)), default=Value(2))
    ordered = placements.filter(found).annotate(closeness=closeness)
    return list(ordered.order_by("closeness", *placements.query.order_by)[:MATCHES + 1])


def named(placements: QuerySet[Placement], text: str, team: Team) -> Placement:
    """The one placement of `team` among `placements` that `text` names: its slug (the end of its short link), or
    its campaign's and its own name exactly as "Campaign / Placement" (case aside).

    Another team's placement reads as a missing one: the same message, whatever exists elsewhere.

    Args:
        placements: what may be named (`offered`).
        text: what was typed in the search box with JavaScript off (or before a match was chosen).
        team: the job's team.

    Returns:
        the placement.

    Raises:
        ValidationError: none or several match, in words that say what to type.
    """
    text = text.strip()
    own = placements.filter(campaign__team=team)
    found = Q(slug=text)
    for campaign, name in splits(text):
        found |= Q(campaign__name__iexact=campaign, name__iexact=name)
    candidates = list(own.filter(found)[:2])
    exact = [placement for placement in candidates if placement.slug == text]
    if exact:  # a slug is unique: it wins over a name that happens to read the same
        return exact[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ValidationError(
            f"No placement of {team.name} is “{text}”: type its slug (the end of its short link) or its campaign "
            f"and name as “Campaign{SEPARATOR}Placement”, or leave it empty.", code="invalid_choice")
    raise ValidationError(f"Several placements of {team.name} are called “{text}”: type the slug (the end of its "
                          "short link) of the one you mean.", code="ambiguous")
