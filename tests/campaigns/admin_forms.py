"""The campaign admin's add form as posted, with no placement rows: for the admin and history tests."""

from __future__ import annotations

NO_PLACEMENTS = {"placements-TOTAL_FORMS": 0, "placements-INITIAL_FORMS": 0, "placements-MIN_NUM_FORMS": 0,
                 "placements-MAX_NUM_FORMS": 1000}


def campaign_form(team, **fields) -> dict:
    return {"name": "Spring Sale", "team": team.pk, "destination": "https://shop.example.com/", "utm_source": "qr",
            "utm_medium": "print", "utm_campaign": "", "dates_route": "on", **NO_PLACEMENTS, **fields}
