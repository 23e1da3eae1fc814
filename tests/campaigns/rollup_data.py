"""Scan events and the rollup tables' rows, read back as plain values, for the rollup tests of every app."""

from __future__ import annotations

from datetime import datetime

from campaigns.models import CampaignRollup, Placement, ScanRollup, TeamRollup
from campaigns.scan_buffer import scan_event


def event(placement: Placement, when: datetime, visitor: str = "a" * 32, **fields) -> dict:
    made = {"browser": "Mobile Safari", "os": "iOS", "device_class": "mobile", "referer": "",
            "accept_language": "fr-FR,fr;q=0.9", "country": "FR", "is_bot": False, "visitor_key": visitor}
    return scan_event(placement.pk, when, **{**made, **fields})


def placement_rows(placement: Placement, dimension: str = "") -> dict:
    """(day, value) -> (scans, visitors) of `placement`'s rows of `dimension` (the totals by default)."""
    return {(row.day, row.value): (row.scans, row.visitors)
            for row in ScanRollup.objects.filter(placement=placement, dimension=dimension)}


def all_rows() -> set:
    return set(ScanRollup.objects.values_list("placement_id", "day", "dimension", "value", "scans", "visitors",
                                              "first_scan", "last_scan"))


def campaign_rows() -> dict:
    return {(row.campaign_id, row.day, row.dimension, row.value): (row.scans, row.visitors)
            for row in CampaignRollup.objects.all()}


def added_up() -> dict:
    """What the campaigns' rows should hold: their placements' rows summed."""
    sums: dict = {}
    for row in ScanRollup.objects.select_related("placement"):
        key = (row.placement.campaign_id, row.day, row.dimension, row.value)
        scans, visitors = sums.get(key, (0, 0))
        sums[key] = (scans + row.scans, visitors + row.visitors)
    return sums


def team_rows() -> dict:
    return {(row.team_id, row.archived, row.day, row.dimension, row.value): (row.scans, row.visitors)
            for row in TeamRollup.objects.all()}


def team_added_up() -> dict:
    """What the teams' rows should hold: their campaigns' rows summed, archived campaigns apart."""
    sums: dict = {}
    for row in CampaignRollup.objects.select_related("campaign"):
        key = (row.campaign.team_id, row.campaign.archived, row.day, row.dimension, row.value)
        scans, visitors = sums.get(key, (0, 0))
        sums[key] = (scans + row.scans, visitors + row.visitors)
    return sums
