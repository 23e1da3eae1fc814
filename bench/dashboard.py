"""The campaign dashboard with 1 M scan events: run by bench/dashboard.sh on a throwaway PostgreSQL cluster.

    bench/dashboard.sh [EVENTS] [PLACEMENTS]      # what to run; this file expects its environment

1. One team, one campaign of PLACEMENTS placements, EVENTS scan events spread over the last 365 days: one
   INSERT ... SELECT over generate_series, so a million rows take seconds, not the ORM's hour.
2. The rollups are built from them (`manage.py qart_rollups`'s path, timed).
3. Five warm requests of each page (after one that warms caches and connections) through Django's test client; the
   medians are printed. Timed: the campaign page for the lifetime range and the default range, the campaign list,
   one placement's page, and the campaign's scan summary from the API.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from campaigns.models import Campaign, Placement, ScanEvent  # noqa: E402
from qartsite.models import Membership, Team  # noqa: E402

WARM = 5

# Columns the events vary over, as PostgreSQL arrays indexed from the row number: enough distinct values for the
# cards to have something to rank, in proportions that are not uniform.
EVENTS_SQL = """
INSERT INTO campaigns_scanevent (placement_id, event_id, time, browser, os, device_class, referer, accept_language,
                                 client_hash, visitor_key, country, is_bot, is_repeat, rule)
SELECT placements[1 + (i * 7919) %% cardinality(placements)],
       gen_random_uuid(),
       now() - make_interval(secs => (i * 31.5576) %% (365 * 86400)),
       (ARRAY['Mobile Safari', 'Chrome Mobile', 'Samsung Internet', 'Chrome', 'Firefox'])[1 + i %% 5],
       (ARRAY['iOS', 'Android', 'Android', 'Windows', 'Mac OS X'])[1 + i %% 5],
       (ARRAY['mobile', 'mobile', 'mobile', 'desktop', 'tablet'])[1 + i %% 5],
       '',
       (ARRAY['en-GB,en;q=0.9', 'fr-FR,fr;q=0.9', 'de-DE', 'en-US', 'es-ES,es;q=0.8', 'it-IT'])[1 + i %% 6],
       '',
       md5((i / 3)::text)::varchar(32),
       (ARRAY['GB', 'FR', 'DE', 'US', 'ES', 'IT', 'NL', ''])[1 + i %% 8],
       i %% 33 = 0,
       false,
       CASE WHEN i %% 10 = 0 THEN 'ios' ELSE '' END
FROM generate_series(1::bigint, %s::bigint) AS i, (SELECT %s::bigint[] AS placements) AS p
"""


def make_events(count: int, placements: int) -> tuple[Campaign, object]:
    team = Team.objects.create(name="Bench")
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    Membership.objects.create(team=team, user=user, role="owner")
    campaign = Campaign.objects.create(team=team, name="Bench", destination="https://shop.example.com/offer")
    ids = [Placement.objects.create(campaign=campaign, name=f"Poster {n + 1}", printed_quantity=500 * (n + 1)).pk
           for n in range(placements)]
    started = perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(EVENTS_SQL, [count, ids])
        cursor.execute("ANALYZE campaigns_scanevent")
    print(f"events: {ScanEvent.objects.count():,} made in {perf_counter() - started:.1f} s")
    return campaign, user


def build_rollups(campaign: Campaign) -> None:
    try:
        from campaigns.rollup_rebuilds import rebuild
    except ImportError:
        try:
            from campaigns.rollups import rebuild  # a tree before the rebuild had a module of its own
        except ImportError:  # the tree before rollups: the pages read the events themselves
            print("rollups: none in this tree")
            return
    started = perf_counter()
    rebuild(Placement.objects.filter(campaign=campaign))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"rollups: built in {perf_counter() - started:.1f} s")


def median_ms(client: Client, url: str) -> tuple[float, list[float]]:
    response = client.get(url, secure=True)  # warms connections, templates and caches
    assert response.status_code == 200, (url, response.status_code, response.content[:500])
    times = []
    for _ in range(WARM):
        started = perf_counter()
        response = client.get(url, secure=True)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        times.append((perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--placements", type=int, default=10)
    args = parser.parse_args()
    campaign, user = make_events(args.events, args.placements)
    build_rollups(campaign)
    client = Client()
    client.force_login(user)
    placement = campaign.placements.order_by("pk").first()
    pages = {
        "campaign page, lifetime": f"/campaigns/{campaign.pk}/?range=lifetime",
        "campaign page, default range": f"/campaigns/{campaign.pk}/",
        "campaign list": "/campaigns/",
        "campaign list, lifetime": "/campaigns/?range=lifetime",
        "placement page, lifetime": f"/campaigns/placements/{placement.pk}/?range=lifetime",
        "API campaign scans, lifetime": f"/api/campaigns/{campaign.pk}/scans/?range=lifetime",
    }
    for name, url in pages.items():
        try:
            median, times = median_ms(client, url)
        except AssertionError as exc:
            print(f"{name:32} {url}: not measured ({str(exc)[:120]})")
            continue
        print(f"{name:32} median {median:7.1f} ms   ({', '.join(f'{t:.0f}' for t in times)})")


if __name__ == "__main__":
    main()
