"""A fixture of stored scans around Berlin's 2026 autumn DST change, whose right figures are worked out by hand from
the raw rows (in `FigureData`'s comments), for the tests that check every road to a campaign's figures agrees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from campaigns.drainer import store_events
from campaigns.models import Campaign, Placement
from tests.campaigns.rollup_data import event


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@dataclass
class FigureData:
    """Berlin: CEST (UTC+2) until 2026-10-25 01:00 UTC, then CET (UTC+1). Local 2026-10-25 is 25 hours long: from
    10-24 22:00 UTC to 10-25 23:00 UTC; its local 02:00-02:59 happens twice.

    Poster (campaign "Autumn"), people's scans:
      a  10-24 21:59:59 UTC = 10-24 23:59:59 local   visitor A   day 24, hour 23
      b  10-24 22:00:00 UTC = 10-25 00:00:00 local   visitor A   day 25, hour 00 (a new day: A counts again)
      c  10-25 00:30 UTC    = 10-25 02:30 CEST       visitor B   day 25, hour 02
      d  10-25 01:30 UTC    = 10-25 02:30 CET        visitor B   day 25, hour 02 (the same visitor, same day)
      e  10-25 22:59:59 UTC = 10-25 23:59:59 CET     visitor C   day 25, hour 23
      f  10-25 23:00:00 UTC = 10-26 00:00:00 CET     visitor C   day 26, hour 00
      g  12 scans by visitor D from 10-25 12:00:00 UTC (13:00 local), 2 s apart: the 11th and 12th are repeats
         (more than 10 a minute), still scans; D is one visitor; day 25, hour 13
    plus a link preview (bot) on day 25 and a page that embeds the link (stored as a bot) on day 25: left out.
    Flyer (campaign "Autumn"): visitor A at 10-25 10:00 UTC (11:00 CET): day 25, hour 11.
    Banner (campaign "Archived", archived): visitor E twice on day 25 (09:00, 09:30 UTC: hour 10), once day 26.
    Doomed (campaign "Autumn", deleted once stored): visitor F on day 25: its scans go with it.

    Poster: day 24: 1 scan, 1 visitor; day 25: 2 (b, c, d, e = 4) + 12 = 16 scans, 4 visitors (A, B, C, D);
            day 26: 1 scan, 1 visitor.
    Flyer: day 25: 1 scan, 1 visitor.
    Autumn: day 24: 1/1, day 25: 17/5, day 26: 1/1; 24-26: 19 scans, 7 visitors (a sum of days and placements).
    Archived: day 25: 2 scans, 1 visitor; day 26: 1/1.

    Moved to Los Angeles (PDT, UTC-7, until 11-01): a, b (10-24 15:00), c (10-24 17:30), d (18:30), the flyer
    (03:00 on 10-25), the burst (05:00 on 10-25), e (15:59:59), f (16:00). Until the recount commits every figure
    keeps Berlin's days, and a scan drained meanwhile counts in them: `WHILE_RECOUNTING`, visitor C on the poster
    at 10-26 06:00 UTC (07:00 on 10-26 in Berlin, 23:00 on 10-25 in Los Angeles):
      Berlin days:  Autumn 24: 1/1, 25: 17/5, 26: 2/1 (C already counted that day, by f)
      after the recount, Los Angeles days: 24: a, b, c, d = 4 scans by A, B: 4/2; 25: the burst, e, f, the flyer
      and C's new scan = 16 scans by D, C (e, f and the new one: one visitor now) and A on the flyer: 16/3; 26: 0/0.

    Late scans past retention (`LATE`): the team keeps raw scans 30 days, and on 12-01 retention deleted every scan
    above; then three scans of those days reach the drainer late:
      A on the poster at 10-24 20:00 UTC (22:00 local, day 24): A is counted on day 24 already. The day's raw scans
        are gone, so nobody can tell: a late scan on a day whose counted scans retention may have deleted adds a
        scan and never a visitor. Day 24: 2 scans, still 1 visitor (A), which is right.
      G on the poster at 10-25 15:00 UTC (day 25): G is new, but for the same reason counts no visitor: poster day
        25: 17 scans, 4 visitors (one short, never one too many).
      G on the flyer at 10-26 10:00 UTC (day 26): the flyer counted no scan on day 26, so the day's visitors are
        all in the batch: G is new, 1 scan, 1 visitor.
      Autumn: 24: 2/1, 25: 18/5, 26: 2/2; 24-26: 22 scans, 8 visitors. Poster 24-26: 20 scans, 6 visitors.
    """

    autumn: Campaign
    archived: Campaign
    poster: Placement
    flyer: Placement
    banner: Placement


def batches(poster: Placement, flyer: Placement, banner: Placement, doomed: Placement) -> list[list[dict]]:
    """The scans as the drainer gets them: three batches, the last one late and out of order (scan a, of the day
    before, after the rest)."""
    burst = [event(poster, utc(2026, 10, 25, 12, 0, 0) + timedelta(seconds=2 * n), "d" * 32) for n in range(12)]
    return [
        [event(poster, utc(2026, 10, 24, 22, 0, 0), "a" * 32),
         event(poster, utc(2026, 10, 25, 0, 30), "b" * 32, device_class="desktop", os="Windows", browser="Chrome"),
         event(poster, utc(2026, 10, 25, 1, 30), "b" * 32, device_class="desktop", os="Windows", browser="Chrome"),
         event(poster, utc(2026, 10, 25, 7, 0), "", is_bot=True, device_class="bot", browser="Slackbot"),
         event(flyer, utc(2026, 10, 25, 10, 0), "a" * 32, country="DE"),
         event(banner, utc(2026, 10, 25, 9, 0), "e" * 32),
         event(doomed, utc(2026, 10, 25, 9, 0), "f" * 32)],
        [*burst[:7],
         event(poster, utc(2026, 10, 25, 8, 0), "x" * 32, is_bot=True, device_class="bot"),  # an embedding page
         event(poster, utc(2026, 10, 25, 22, 59, 59), "c" * 32),
         event(banner, utc(2026, 10, 25, 9, 30), "e" * 32)],
        [*burst[7:],
         event(poster, utc(2026, 10, 25, 23, 0, 0), "c" * 32),
         event(banner, utc(2026, 10, 25, 23, 30), "e" * 32),
         event(poster, utc(2026, 10, 24, 21, 59, 59), "a" * 32)],  # late: of the day before
    ]


def figure_data(team) -> FigureData:
    """The fixture's campaigns, placements and scans, stored by the drainer in its batches; the archived campaign
    archived after its scans were counted, and the doomed placement deleted."""
    team.time_zone = "Europe/Berlin"
    team.save()
    autumn = Campaign.objects.create(team=team, name="Autumn", destination="https://shop.example.com/")
    archived = Campaign.objects.create(team=team, name="Archived", destination="https://shop.example.com/old")
    poster = Placement.objects.create(campaign=autumn, name="Poster", kind="poster")
    flyer = Placement.objects.create(campaign=autumn, name="Flyer", kind="flyer")
    banner = Placement.objects.create(campaign=archived, name="Banner", kind="poster")
    doomed = Placement.objects.create(campaign=autumn, name="Doomed", kind="poster")
    for batch in batches(poster, flyer, banner, doomed):
        store_events(batch)
    archived.archived = True
    archived.save()
    doomed.delete()
    return FigureData(autumn, archived, poster, flyer, banner)


WHILE_RECOUNTING = utc(2026, 10, 26, 6, 0)  # visitor C on the poster (see `FigureData`)
RETENTION_RAN = utc(2026, 12, 1)  # retention (30 days) deleted every scan of the fixture


def late(data: FigureData) -> list[dict]:
    """The scans that reach the drainer after retention deleted their days' scans (`FigureData`, "Late scans")."""
    return [event(data.poster, utc(2026, 10, 24, 20, 0), "a" * 32),
            event(data.poster, utc(2026, 10, 25, 15, 0), "g" * 32),
            event(data.flyer, utc(2026, 10, 26, 10, 0), "g" * 32)]
