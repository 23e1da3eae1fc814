"""Where printed codes lead, kept in a history: every change of a campaign's destination, fallback, rules, dates or
routing by them and of a placement's override or rules (`campaigns.rules`), with who, when, before and after
(`DestinationChange`; rules as compact JSON, dates as ISO 8601, the switch as "on"/"off"), and its one-click
revert.

One recording point for the pages, the API and the admin: wrap the save in `recorded(instance, user)`, which
compares the stored row before the save with the instance after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from campaigns import links, rules
from campaigns.models import Campaign, DestinationChange, Placement, locked_copy

TRACKED = {Campaign: ("destination", "fallback_url", "rules", "starts_on", "ends_on", "dates_route"),
           Placement: ("destination_override", "rules")}
Field = DestinationChange.Field
DAYS = (Field.STARTS_ON, Field.ENDS_ON)
SWITCH = {True: "on", False: "off"}
SHOWN = 10  # changes listed on a campaign or placement page


def as_text(field: str, value) -> str:
    """A tracked field's value as the history keeps it."""
    if field == Field.RULES:
        return rules.as_text(value)
    if field == Field.DATES_ROUTE:
        return SWITCH[bool(value)]
    if isinstance(value, date):
        return value.isoformat()
    return value or ""


def stored_values(instance) -> dict | None:
    """The tracked fields as stored now; None for a row not saved yet (its creation is no change)."""
    fields = TRACKED.get(type(instance))
    if not fields or instance.pk is None:
        return None
    return type(instance).objects.filter(pk=instance.pk).values(*fields).first()


def record_changes(instance, user, before: dict | None,
                   reverts: DestinationChange | None = None) -> list[DestinationChange]:
    """A `DestinationChange` for each tracked field of `instance` that differs from `before` (`stored_values`)."""
    if before is None:
        return []
    is_placement = isinstance(instance, Placement)
    texts = {field: (as_text(field, old), as_text(field, getattr(instance, field))) for field, old in before.items()}
    changes = [
        DestinationChange(campaign_id=instance.campaign_id if is_placement else instance.pk,
                          placement=instance if is_placement else None, field=field, before=old, after=new,
                          changed_by=user if getattr(user, "pk", None) else None, reverts=reverts)
        for field, (old, new) in texts.items() if old != new
    ]
    return DestinationChange.objects.bulk_create(changes)


@contextmanager
def recorded(instance, user, reverts: DestinationChange | None = None) -> Iterator[None]:
    """Save `instance` inside the block: its tracked changes are recorded with the save, in one transaction."""
    with transaction.atomic():
        before = stored_values(instance)
        yield
        record_changes(instance, user, before, reverts)


class RevertRefused(Exception):
    pass


def earlier_value(change: DestinationChange):
    """`change.before` as the field holds it, checked as on any save: RevertRefused says why it no longer is."""
    value = change.before
    if change.field == Field.DATES_ROUTE:
        return value == SWITCH[True]
    if change.field in DAYS:
        return date.fromisoformat(value) if value else None
    if change.field == Field.RULES:
        try:
            return rules.clean_rules(rules.from_text(value))
        except ValidationError as exc:
            raise RevertRefused(f"Not reverted: the earlier rules are no longer accepted. "
                                f"{' '.join(exc.messages)}") from None
    if value or change.field == Field.DESTINATION:
        try:
            links.validate_destination(value)
        except ValidationError as exc:
            raise RevertRefused(f"Not reverted: the earlier address “{value}” is no longer accepted. "
                                f"{' '.join(exc.messages)}") from None
    return value


def revert(change: DestinationChange, user) -> DestinationChange | None:
    """Set the changed field back to `change.before`, validated like any destination (rules like any rules), and
    record that as a change (None when the field already holds that value). RevertRefused says why a value no
    longer validates."""
    value = earlier_value(change)
    try:
        with transaction.atomic():
            # The row as stored, locked: a change saved meanwhile is judged (and kept) as it is now.
            target = locked_copy(change.placement or change.campaign)
            if target is None or as_text(change.field, getattr(target, change.field)) == change.before:
                return None
            before = stored_values(target)
            setattr(target, change.field, value)
            if isinstance(target, Campaign):
                target.clean()  # an earlier date may no longer fit the other one
            target.save(update_fields=[change.field])
            made = record_changes(target, user, before, reverts=change)
    except ValidationError as exc:  # the model's own checks, e.g. another of its fields no longer validates
        raise RevertRefused(f"Not reverted: {' '.join(exc.messages)}") from None
    return made[0] if made else None


def latest(campaign: Campaign, placement: Placement | None = None):
    """The page's last changes: a campaign's (its placements' included), or one placement's."""
    changes = (placement.destination_changes if placement is not None else campaign.destination_changes)
    return changes.select_related("changed_by", "placement")[:SHOWN]
