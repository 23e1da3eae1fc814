"""python manage.py qart_refused_scans: the scans the database refused, set aside by the drainer
(`campaigns.refused_scans`).

    qart_refused_scans                      # lists them: id, placement, when scanned, when refused and why
    qart_refused_scans --retry ID [ID ...]  # stores them again once the cause is fixed ("all": every one)
    qart_refused_scans --discard ID [ID ...]  # drops them for good ("all": every one)

A retried scan is stored exactly once (its id is unique), and one the database still refuses stays listed.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis import Redis
from redis.exceptions import RedisError

from campaigns import refused_scans, scan_buffer
from campaigns.drainer import DATABASE_ERRORS, REFUSALS, store_events
from campaigns.refused_scans import Refused
from generator.core.codes.echoes import echo
from qartsite.plurals import counted
from qartsite.queues import PASSWORD_FIX, password_refused


class Command(BaseCommand):
    help = (
        "List the scans the database refused (the drainer set them aside so the other scans go on), with why; "
        "retry them once the cause is fixed, or discard them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_mutually_exclusive_group()
        actions.add_argument("--retry", nargs="+", metavar="ID",
                             help='store these refused scans again ("all": every one)')
        actions.add_argument("--discard", nargs="+", metavar="ID", help='drop these refused scans ("all": every one)')

    def handle(self, *args, retry: list[str] | None, discard: list[str] | None, **options) -> None:
        # Redis can fail after the first ping, and this host's files can be unreadable or undeletable: one line each,
        # never a traceback. Nothing is lost either way: a scan leaves the hash and its file only once stored.
        try:
            self.act(retry, discard)
        except RedisError as exc:
            refusal = password_refused(scan_buffer.command_client(), exc)
            if refusal:  # no wait mends it
                raise CommandError(f"{refusal}: run again once {PASSWORD_FIX} (a scan stored already is not "
                                   "stored twice).") from None
            raise CommandError(f"Redis is away ({exc}): run again once it answers (a scan stored already is not "
                               "stored twice).") from None
        except OSError as exc:
            raise CommandError(f"The refused scans' files in {refused_scans.folder()} cannot be read or removed "
                               f"({exc}): run again once they can.") from None

    def act(self, retry: list[str] | None, discard: list[str] | None) -> None:
        client = self.redis()
        refused = refused_scans.listed(client)
        if retry:
            self.retry(self.chosen(refused, retry), client)
        elif discard:
            chosen = self.chosen(refused, discard)
            refused_scans.forget([one.event_id for one in chosen], client)
            self.stdout.write(f"Discarded {counted(len(chosen), 'refused scan')}.")
        else:
            self.list(refused)

    def redis(self) -> Redis | None:
        """The Redis of the refused scans, after moving this host's files there; None (said so) when it is away."""
        client = scan_buffer.command_client()
        try:
            client.ping()  # collect asks Redis only when there are files to move
            refused_scans.collect(client)
        except RedisError as exc:
            why = password_refused(client, exc) or f"Redis is away ({exc})"
            self.stderr.write(f"{why}: only the refused scans kept on this host, in {refused_scans.folder()}, are "
                              "shown.")
            return None
        return client

    def list(self, refused: list[Refused]) -> None:
        for one in refused:
            event = one.event
            self.stdout.write(f"{one.event_id}  placement {event.get('placement')}  scanned {event.get('time')}  "
                              f"refused {one.refused_at:%Y-%m-%d %H:%M} UTC: {one.reason}")
        self.stdout.write(f"{counted(len(refused), 'refused scan')}." if refused else "No refused scans.")

    def chosen(self, refused: list[Refused], names: list[str]) -> list[Refused]:
        """The refused scans `names` names (ids as listed, with or without dashes, or "all"), or one message."""
        if [name.strip().lower() for name in names] == ["all"]:
            return refused
        by_id = {one.event_id: one for one in refused}
        chosen, unknown = [], []
        for name in names:
            key = name.strip().lower().replace("-", "")
            (chosen if key in by_id else unknown).append(by_id.get(key, name))
        if unknown:
            shown = ", ".join(f"“{echo(name)}”" for name in unknown)
            raise CommandError(f"No refused scan has the id {shown}: run qart_refused_scans to list them.")
        return list({one.event_id: one for one in chosen}.values())

    def retry(self, chosen: list[Refused], client: Redis | None) -> None:
        done: list[str] = []  # no longer refused: stored now, or nothing to store
        new = still = 0
        for one in chosen:
            try:
                new += store_events([one.event])
            except REFUSALS as exc:
                still += 1
                self.stdout.write(f"{one.event_id} is still refused: {refused_scans.reason_of(exc)}")
                continue
            except DATABASE_ERRORS as exc:
                refused_scans.forget(done, client)
                raise CommandError(f"The database is away ({refused_scans.reason_of(exc)}): "
                                   f"{counted(new, 'scan')} stored before it went; run again.") from None
            done.append(one.event_id)
        refused_scans.forget(done, client)
        said = [f"Stored {counted(new, 'refused scan')}"]
        if len(done) > new:
            said.append(f"{counted(len(done) - new, 'scan')} needed nothing (stored before, or its placement is "
                        "deleted)")
        if still:
            said.append(f"{counted(still, 'scan')} still refused")
        self.stdout.write("; ".join(said) + ".")