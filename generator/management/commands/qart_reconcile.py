"""python manage.py qart_reconcile: one pass of the reconciler (generator.reconcile), printing what it did.

    qart_reconcile              # a job acts once it has looked orphaned for the grace period (run it again later)
    qart_reconcile --grace 0    # act at once: when you know that no worker is starting a job right now

Every generation worker already runs it each minute; this is for a site whose workers are all stopped, or to look now.
"""

from __future__ import annotations

import math

import django_rq
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from redis.exceptions import RedisError

from generator import jobs, reconcile
from qartsite.queues import PASSWORD_FIX, password_refused


class Command(BaseCommand):
    help = (
        "Find generation jobs nothing will finish (lost when Redis restarted, or whose worker died) and re-queue them "
        "once or fail them with the reason; end cancelled jobs that nothing runs. One pass; prints what it did."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--grace", type=float, default=reconcile.GRACE, metavar="SECONDS",
                            help="act on a job only once it has looked orphaned this long (default: %(default)s)")

    def handle(self, *args, **options) -> None:
        if not math.isfinite(options["grace"]) or options["grace"] < 0:  # NaN, infinity: no number of seconds
            raise CommandError(f"--grace must be 0 or more seconds, got {options['grace']}")
        queue = django_rq.get_queue(jobs.QUEUE)
        try:
            done = reconcile.reconcile_jobs(grace=options["grace"], queue=queue)
        except RedisError as exc:
            refusal = password_refused(queue.connection, exc)
            if refusal:  # not "cannot be reached": no wait mends it
                raise CommandError(f"{refusal}; nothing was reconciled. Run it again once {PASSWORD_FIX}.") from None
            raise CommandError(f"The job queue (Redis) cannot be reached ({exc}); nothing was reconciled.") from None
        except DatabaseError as exc:
            raise CommandError(f"The database cannot be reached ({exc}); run it again once it is back.") from None
        self.stdout.write(str(done))
