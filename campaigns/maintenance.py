"""What the worker's periodic maintenance does for the dashboards (`generator.worker.GenerationWorker`, each minute):
recount the daily rollups of teams that changed their time zone, and once a day apply scan retention, delete print
files made a day ago (`campaigns.print_builds`) and media no row names (`qartsite.media_sweep`), and check the
placements' scans for alerts (`campaigns.alerts`).

Several workers share the work through Redis: a day's retention runs in whichever worker takes the day's key first,
and a team's recount is claimed by setting its `counted_time_zone` in the transaction that commits it (a second
worker that recounts it meanwhile waits for the first's locks, then does the same work again, harmlessly: a rebuild
is idempotent).
"""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError
from django.db.models import F
from redis import Redis, RedisError

from campaigns import alerts, print_builds, retention, rollup_rebuilds
from qartsite import media_sweep
from qartsite.models import Team

log = logging.getLogger(__name__)

RETENTION_EVERY = 24 * 3600  # seconds: daily is enough for a period counted in days


def recount_changed_zones() -> list[str]:
    """Recount the rollups of every team whose time zone changed since they were counted
    (`rollup_rebuilds.recount_team`); returns their names."""
    done = []
    for team in Team.objects.exclude(counted_time_zone=F("time_zone")).order_by("pk"):
        try:
            rebuilt = rollup_rebuilds.recount_team(team.pk, team.time_zone)
        except DatabaseError as exc:
            # One team's recount failing (a deadlock, a lock or statement timeout, a row it cannot write) must not
            # hold back the teams after it, nor the day's retention and alerts after the recounts in `run`: raised,
            # it was the first thing every maintenance tried, and failed, for good. Its rollback left it as it was.
            log.warning("Could not recount the days of %s in %s (%s); trying again at the next maintenance",
                        team.name, team.time_zone, exc)
            continue
        if rebuilt is None:
            continue  # changed again meanwhile (the next pass recounts the newer zone), or another worker has it
        log.info("Days of %s now count in %s: %s", team.name, team.time_zone, rebuilt)
        done.append(team.name)
    return done


def retention_key() -> str:
    return f"{settings.QART['REDIS_PREFIX']}retention:ran"


def apply_retention_daily(connection: Redis) -> retention.Purged | None:
    """Delete expired raw scans if no worker did in the last day; None when it was not this worker's turn."""
    if not connection.set(retention_key(), "1", nx=True, ex=RETENTION_EVERY):
        return None
    try:
        purged = retention.purge()
    except Exception:
        # The day's turn given back, so the next maintenance (a minute later, any worker) purges; kept, a database
        # that failed between taking the turn and purging skipped the day's retention.
        with contextlib.suppress(RedisError):
            connection.delete(retention_key())
        raise
    log.info("%s", purged)
    try:
        log.info("Deleted %d print files made over a day ago", print_builds.forget_old_files())
    except OSError as exc:  # the media storage away (MediaUnavailable is one): the next day's upkeep deletes them
        log.warning("Could not delete old print files: %s", exc)
    try:
        log.info("Media no row names: %s", media_sweep.sweep(default_storage, delete=True))
    except OSError as exc:
        log.warning("Could not sweep the media no row names: %s", exc)
    return purged


def run(connection: Redis) -> None:
    recount_changed_zones()
    apply_retention_daily(connection)
    alerts.check_daily(connection)  # placements whose scans stopped or fell sharply
