"""Several drainers on one busy team: run by bench/drainers.sh on a throwaway PostgreSQL cluster and Redis.

    bench/drainers.sh [SCANS=20000] [DRAINERS=1,2,3] [--layouts 1,3] [--repeat 2]   # this file expects its environment

Does a team's advisory lock (`campaigns.team_rollups.lock_teams`, held by a drainer's batch from its team rows'
upsert to its commit) cap one busy team's scans per second, and does a second or third drainer help?

1. Three teams: "One" (one campaign of 20 placements), "Many" and "Other" (10 campaigns of 5 placements each).
2. Per layout and number of drainers: the scan tables and rollups emptied, SCANS events (`scan_buffer.scan_event`:
   the last five minutes, placements weighted 1/rank^0.8, most visitors new, 2 % bots) put in the Redis stream in
   one order, then DRAINERS processes (`--drain`, each a `Drainer`, one consumer of the group) started, held at a
   barrier until all are ready, and timed from the release to the last one's end.
   Layouts: interleaved, as real traffic comes (every batch of 500 holds most of its team's placements), and in
   runs of 500 scans of one campaign (`runs`), so that two batches share no placement and no campaign: then a
   team's lock is the only lock two batches of one team share, and two teams' batches share none.
3. Each drainer times its waits for the locks a batch takes (placements' rows, campaigns' and teams' advisory
   locks) and how long it holds its team's lock; the parent samples pg_stat_activity every 20 ms for what the
   drainers' backends wait on. Every run checks that each scan was stored once and that the team rows count them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from time import monotonic, perf_counter, sleep, time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.utils import timezone  # noqa: E402

from campaigns import drainer, rollups, scan_buffer, team_rollups  # noqa: E402
from campaigns.models import Campaign, Placement, ScanEvent, ScanRollup, TeamRollup  # noqa: E402
from qartsite.models import Team  # noqa: E402

GO = "bench:drainers:go"
READY = "bench:drainers:ready"
SAMPLE_EVERY = 0.02
TABLES = "campaigns_scanevent, campaigns_scanrollup, campaigns_campaignrollup, campaigns_teamrollup"
# (layout, teams it feeds, in runs of one campaign's scans?)
LAYOUTS = (
    ("one campaign, interleaved", ("One",), False),
    ("10 campaigns, interleaved", ("Many",), False),
    ("10 campaigns, runs of 500", ("Many",), True),
    ("two teams, interleaved", ("Many", "Other"), False),
    ("two teams, runs of 500", ("Many", "Other"), True),
)
BROWSERS = ("Mobile Safari", "Chrome Mobile", "Samsung Internet", "Chrome", "Firefox")
SYSTEMS = ("iOS", "Android", "Android", "Windows", "Mac OS X")
COUNTRIES = ("GB", "FR", "DE", "US", "ES", "IT", "NL", "")
LANGUAGES = ("en-GB,en;q=0.9", "fr-FR,fr;q=0.9", "de-DE", "en-US")


# The drainers (--drain) ---------------------------------------------------------------------------------------------

class LockClock:
    """Seconds a drainer spends waiting for each lock, and holding its team's, gathered by wrapping the functions
    that take them (this process only)."""

    def __init__(self) -> None:
        self.waits: Counter[str] = Counter()
        self.team_held = 0.0
        self.team_since: float | None = None
        self.batches = 0
        self.in_batches = 0.0

    def install(self) -> None:
        advisory, lock_placements, store_events = (team_rollups.advisory_locks, rollups.lock_placements,
                                                   drainer.store_events)

        def timed_advisory(first_key: int, ids) -> None:
            started = perf_counter()
            advisory(first_key, ids)
            name = "team" if first_key == team_rollups.TEAM_LOCKS else "campaigns"
            self.waits[name] += perf_counter() - started
            if first_key == team_rollups.TEAM_LOCKS:
                self.team_since = perf_counter()

        def timed_placements(*args, **kwargs):
            started = perf_counter()
            try:
                return lock_placements(*args, **kwargs)
            finally:
                self.waits["placements"] += perf_counter() - started

        def timed_batch(*args, **kwargs):
            started, self.team_since = perf_counter(), None
            try:
                return store_events(*args, **kwargs)
            finally:
                ended = perf_counter()
                self.batches += 1
                self.in_batches += ended - started
                if self.team_since is not None:
                    self.team_held += ended - self.team_since  # until the commit, which store_events makes

        team_rollups.advisory_locks = timed_advisory
        rollups.lock_placements = timed_placements
        drainer.store_events = timed_batch


def drain(result: Path) -> None:
    """One drainer: ready, wait for the go, drain until a pass finds the stream empty, write what it timed."""
    clock = LockClock()
    clock.install()
    Team.objects.exists()  # connected before the clock starts
    client = scan_buffer.command_client()
    one = drainer.Drainer(log_outages=False)
    client.incr(READY)
    client.blpop([GO], timeout=120)
    started, stored = time(), 0
    cpu = os.times()
    while True:
        drained = one.drain_once()
        stored += drained.stored
        if not drained.read and not client.xlen(one.stream):
            break
    used = os.times()
    result.write_text(json.dumps({
        "started": started, "ended": time(), "stored": stored, "cpu": used.user + used.system - cpu.user - cpu.system,
        "waits": clock.waits, "team_held": clock.team_held, "batches": clock.batches, "in_batches": clock.in_batches,
    }))


# The parent ---------------------------------------------------------------------------------------------------------

def seed() -> dict[str, list[list[int]]]:
    """The three teams; answers each team's placements, by campaign."""
    layout = {"One": (1, 20), "Many": (10, 5), "Other": (10, 5)}
    teams: dict[str, list[list[int]]] = {}
    for name, (campaigns, placements) in layout.items():
        team = Team.objects.create(name=name)
        teams[name] = []
        for c in range(campaigns):
            campaign = Campaign.objects.create(team=team, name=f"{name} {c + 1}",
                                               destination="https://shop.example.com/offer")
            teams[name].append([Placement.objects.create(campaign=campaign, name=f"Poster {p + 1}").pk
                                for p in range(placements)])
    return teams


def events(count: int, by_campaign: list[list[int]], runs: bool, rng: random.Random) -> list[dict]:
    """`count` scans of the campaigns' placements (weighted 1/rank^0.8): interleaved, or in runs of a batch's size
    of one campaign each, the campaigns taken in turn."""
    now = timezone.now()
    visitors: list[str] = []

    def scan(placement_id: int) -> dict:
        if visitors and rng.random() < 0.3:
            visitor = rng.choice(visitors[-2000:])  # a visitor back for another look
        else:
            visitor = f"{rng.getrandbits(128):032x}"
            visitors.append(visitor)
        n = rng.randrange(5)
        return scan_buffer.scan_event(
            placement_id, now - timedelta(seconds=rng.uniform(0, 300)), browser=BROWSERS[n], os=SYSTEMS[n],
            device_class="desktop" if n > 2 else "mobile", country=rng.choice(COUNTRIES),
            accept_language=rng.choice(LANGUAGES), is_bot=rng.random() < 0.02, visitor_key=visitor, referer="",
            rule="")

    def weighted(placements: list[int]) -> Callable[[], int]:
        weights = [1 / (rank + 1) ** 0.8 for rank in range(len(placements))]
        return lambda: rng.choices(placements, weights)[0]

    if runs:
        pickers = [weighted(placements) for placements in by_campaign]
        return [scan(pickers[(n // drainer.BATCH) % len(pickers)]()) for n in range(count)]
    pick = weighted([pk for placements in by_campaign for pk in placements])
    return [scan(pick()) for _ in range(count)]


def campaigns_in_turn(teams: dict[str, list[list[int]]], names: tuple[str, ...]) -> list[list[int]]:
    """The teams' campaigns, alternating teams: runs of consecutive batches belong to different teams."""
    return [campaign for group in zip(*(teams[name] for name in names), strict=True) for campaign in group]


class Sampler(threading.Thread):
    """What the other backends of this database are doing, every SAMPLE_EVERY, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.seen: Counter[str] = Counter()

    def run(self) -> None:
        with connections["default"].cursor() as cursor:
            while not self.stop.is_set():
                cursor.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
                for state, kind, event in cursor.fetchall():
                    if state == "idle":
                        self.seen["idle"] += 1
                    elif kind == "Lock":
                        self.seen[f"lock:{event}"] += 1
                    else:
                        self.seen["in a statement" if state == "active" else "in a transaction, Python"] += 1
                self.stop.wait(SAMPLE_EVERY)
        connections["default"].close()


def postgresql_cpu() -> float:
    """CPU seconds of the cluster's postmaster and the backends it reaped (the drainers' end with them), when
    QART_BENCH_PG_DATA names its data folder; 0 otherwise."""
    folder = os.getenv("QART_BENCH_PG_DATA")
    if not folder:
        return 0.0
    pid = (Path(folder) / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def run_once(name: str, scans: list[dict], drainers: int, work: Path) -> dict:
    client = scan_buffer.command_client()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLES}")
        cursor.execute("VACUUM ANALYZE")
    stream = scan_buffer.stream_key()
    client.delete(stream, GO, READY)
    pipeline = client.pipeline(transaction=False)
    for event in scans:
        pipeline.xadd(stream, {"event": json.dumps(event)})
    pipeline.execute()
    results = [work / f"drainer-{n}.json" for n in range(drainers)]
    processes = [subprocess.Popen([sys.executable, __file__, "--drain", str(path)]) for path in results]
    deadline = monotonic() + 120
    while int(client.get(READY) or 0) < drainers:
        if monotonic() > deadline or any(process.poll() is not None for process in processes):
            raise SystemExit("a drainer did not get ready")
        sleep(0.05)
    sampler = Sampler()
    sampler.start()
    database = postgresql_cpu()
    started = time()
    client.rpush(GO, *range(drainers))
    for process in processes:
        if process.wait():
            raise SystemExit(f"a drainer ended with {process.returncode}")
    sampler.stop.set()
    sampler.join()
    database = postgresql_cpu() - database
    done = [json.loads(path.read_text()) for path in results]
    wall = max(one["ended"] for one in done) - started
    humans = sum(not event["is_bot"] for event in scans)
    stored = ScanEvent.objects.count()
    counted = TeamRollup.objects.filter(dimension=ScanRollup.Dimension.TOTAL).aggregate(n=Sum("scans"))["n"]
    if stored != len(scans) or counted != humans:
        raise SystemExit(f"{name}, {drainers}: stored {stored} of {len(scans)}, team rows count {counted} of {humans}")
    busy = drainers * wall
    waits: Counter[str] = Counter()
    for one in done:
        waits.update(one["waits"])
    samples = sum(count for state, count in sampler.seen.items() if state != "idle") or 1
    return {
        "layout": name, "drainers": drainers, "scans": len(scans), "wall": wall, "per_second": len(scans) / wall,
        "batches": sum(one["batches"] for one in done),
        "cpu": sum(one["cpu"] for one in done), "database": database,
        "in_batches": sum(one["in_batches"] for one in done) / busy,
        "wait_placements": waits["placements"] / busy, "wait_campaigns": waits["campaigns"] / busy,
        "wait_team": waits["team"] / busy, "team_held": sum(one["team_held"] for one in done) / busy,
        "sampled": {state: count / samples for state, count in sampler.seen.most_common() if state != "idle"},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain", type=Path, help="run as one drainer, writing its figures to this file")
    parser.add_argument("--scans", type=int, default=20000)
    parser.add_argument("--drainers", default="1,2,3")
    parser.add_argument("--work", type=Path, default=Path("/tmp"))
    parser.add_argument("--layouts", default="", help="numbers of the layouts to run, from 1 (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, the numbers of drainers interleaved")
    args = parser.parse_args()
    if args.drain:
        drain(args.drain)
        return
    counts = [int(n) for n in args.drainers.split(",")]
    teams = seed()
    rng = random.Random(7)
    print("| layout | drainers | scans/s | wall | CPU: drainers / PostgreSQL | in a batch "
          "| waiting: placements / campaigns / team | team lock held | pg_stat_activity (non-idle samples) |")
    print("|---|---|---|---|---|---|---|---|---|")
    chosen = [LAYOUTS[int(n) - 1] for n in args.layouts.split(",")] if args.layouts else LAYOUTS
    for name, names, runs in chosen:
        scans = events(args.scans, campaigns_in_turn(teams, names), runs, rng)
        for drainers in counts * args.repeat:
            row = run_once(name, scans, drainers, args.work)
            sampled = ", ".join(f"{state} {share:.0%}" for state, share in row["sampled"].items())
            print(f"| {name} | {drainers} | {row['per_second']:,.0f} | {row['wall']:.1f} s "
                  f"| {row['cpu']:.1f} / {row['database']:.1f} s "
                  f"| {row['in_batches']:.0%} | {row['wait_placements']:.0%} / {row['wait_campaigns']:.0%} / "
                  f"{row['wait_team']:.0%} | {row['team_held']:.0%} | {sampled} |", flush=True)


if __name__ == "__main__":
    main()
