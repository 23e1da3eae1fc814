"""`make run`'s preparation before it starts the workers and the site, in one process: check the database, migrate,
collect static files, make the demo admin, and with --requeue queue again the generation jobs the last stop
interrupted. The demo admin's login is all it writes on stdout (run.sh prints it in its banner); the rest goes to
stderr. Exits non-zero with one line when the database cannot be reached.

One process rather than a `manage.py` per step: each step started Python and Django anew, about 1.5 s of CPU apiece,
a good part of a second start's wait on two cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requeue", action="store_true",
                        help="queue again at once the waiting generation jobs nothing will finish (the Redis is new "
                             "and empty, and no worker or web process runs yet on this host)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import DatabaseError, OperationalError, connection
    from redis.exceptions import RedisError

    # 1. The database first, in one line: migrate's own answer to a database that is down is a screen of traceback.
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        sys.exit("run: the database (DATABASE_URL) cannot be reached: " + (str(exc).strip().splitlines() or [""])[0])
    # 2. The schema and the static files; their progress on stderr, so that stdout carries the login alone.
    call_command("migrate", interactive=False, stdout=sys.stderr)
    call_command("collectstatic", interactive=False, verbosity=0)
    # 3. The demo admin, and its login on stdout.
    call_command("qart_demo_user")
    # 4. A stop emptied Redis (make run's keeps nothing), so the jobs it interrupted, running or waiting, are in no
    # queue. The workers' reconciler would queue them again only after its grace period: two minutes of a job saying
    # "Retrying" beside an idle worker. With a new Redis and nothing started yet, no job can be on its way to a queue,
    # so no grace is needed; and that stop lost the waiting jobs, which spend nothing for it however often it happens
    # (a job the worker's stop interrupted was put back as waiting, its attempt not spent: `jobs.put_back`). A job
    # left running keeps the grace: a worker on another host sharing the database may run it still
    # (`reconcile._grace_for`).
    if args.requeue:
        from generator import reconcile

        try:
            reconcile.reconcile_jobs(grace=0, after_stop=True)  # logs what it did ("Reconciler: Jobs re-queued #12.")
        except (RedisError, DatabaseError) as exc:  # the workers' reconciler tries again each minute
            print(f"run: could not look for interrupted generation jobs now ({exc}); the worker will", file=sys.stderr)


def run() -> None:
    """`main`, where Ctrl-C ends it with the status a shell gives it (130) and no traceback: run.sh then says that it
    stops, and a screen of traceback of wherever Python was (an import, a migration) said nothing more."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()
