"""python manage.py qart_drain_scans: store the scans the short link buffered (spool files and Redis stream).

    qart_drain_scans            # runs until SIGTERM or Ctrl-C (make run starts one beside the worker)
    qart_drain_scans --once     # stores what is buffered now, then exits

Run one or more anywhere that reaches the database, Redis and the web processes' spool folder (QART_SPOOL_DIR).
A scan the database refuses is set aside for `qart_refused_scans`, and the others are stored.
"""

from __future__ import annotations

import math
import signal
import threading

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.drainer import CLAIM_IDLE_MS, DATABASE_ERRORS, Drainer
from qartsite.plurals import counted
from qartsite.queues import PASSWORD_FIX

# The longest --claim-idle: longer than any drainer stays away. Redis reads it as 64-bit milliseconds and refused
# 1e300 s, which the drainer took for "Redis is away".
LONGEST_CLAIM_IDLE = 365 * 24 * 3600


class Command(BaseCommand):
    help = (
        "Store buffered scans of the short links in the database, exactly once: from this host's spool files "
        "(QART_SPOOL_DIR: where web processes write scans first) and from the Redis stream (where they go when a "
        "file cannot be written, or first with QART_SCAN_BUFFER=stream; entries a stopped drainer left pending are "
        "taken over). Runs until stopped; while the database is away it waits and retries, acknowledging nothing. "
        "A scan the database refuses is set aside (see qart_refused_scans) and the others are stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="store what is buffered now, then exit")
        parser.add_argument("--claim-idle", type=float, default=CLAIM_IDLE_MS / 1000, metavar="SECONDS",
                            help="take over entries another drainer has left pending this long (default: %(default)s)")

    def handle(self, *args, **options) -> None:
        claim_idle = options["claim_idle"]
        if not (math.isfinite(claim_idle) and 0 <= claim_idle <= LONGEST_CLAIM_IDLE):
            # Redis refused a negative one too, which the drainer took for "Redis is away" (draining the spool alone,
            # exit 0); NaN and infinity were a ValueError's and an OverflowError's traceback.
            raise CommandError(f"--claim-idle must be between 0 and {LONGEST_CLAIM_IDLE:,} seconds (a year), "
                               f"got {claim_idle}")
        drainer = Drainer(claim_idle_ms=int(claim_idle * 1000), log_outages=not options["once"])
        if options["once"]:
            try:
                drained = drainer.drain_once()
            except DATABASE_ERRORS as exc:
                raise CommandError(f"The database is away ({exc}): nothing was acknowledged; run again.") from None
            refused = (f"; the database refused {counted(drained.refused, 'scan')}, set aside (see qart_refused_scans)"
                       if drained.refused else "")
            # One line, Redis's absence included: it was a log line of its own before the count.
            away = (f"; Redis could not be read ({drained.redis_away}), so only the spool was drained: run this "
                    "again once it answers" if drained.redis_away else "")
            if drained.password_refusal:  # no wait mends it
                away = (f"; {drained.password_refusal}, so only the spool was drained: run this again once "
                        f"{PASSWORD_FIX}")
            self.stdout.write(f"Stored {counted(drained.stored, 'new scan')} of {drained.read:,} buffered{refused}"
                              f"{away}.")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())  # finish the batch in hand, then stop
        drainer.run(stop)
