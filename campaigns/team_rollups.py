"""Each team's own daily rows (`TeamRollup`): what its campaigns' rows (`CampaignRollup`) add up to, its archived
campaigns' apart from the others'. The campaign list's overview sums them: a lifetime of 300 campaigns summed
120,000 campaign days per card, and reads ~400 team days now (bench/RESULTS.md).

Whatever changes a campaign's rows changes its team's by the same amounts, in the same transaction:
- the drainer's batches (`rollups.write_campaigns` adds their `team_sums`);
- a campaign's recount (`rollups.refresh_campaigns`: `take_out` its rows before, `put_in` the recounted ones after);
- a deleted placement (`rollups.placement_deleting`: `take_out_placement`);
- a campaign archived, brought back or moved to another team (`campaign_saving`: its rows change sets).
A repair recounts a team's rows from its campaigns' (`refresh_teams`, at the end of every `rollup_rebuilds.rebuild`).

Locks: placements' first (`rollups.lock_placements`; a campaign's own row where one changes), then campaigns' rows'
(`lock_campaigns`), then teams' (`lock_teams`), in that order everywhere and in id order within each, so no two
writers wait for each other in a circle. Holding a campaign's lock keeps its team and archived state from changing
under a writer (`campaign_saving` takes it too), so its rows always go to the set it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from django.db import connection, transaction

from campaigns.models import Campaign, CampaignRollup, ScanRollup, TeamRollup

CAMPAIGN_LOCKS = 0x71617274  # the advisory locks' first key, for campaigns' rows ("qart")
TEAM_LOCKS = 0x71617275  # and for teams' rows
OWNER = "team_id, archived"  # the columns that name one team's set of rows (`rollups.upsert`'s owner)
COLUMNS = ("team_id", "archived", "day", "dimension", "value", "scans", "visitors")
# A campaign saved with only other fields changed cannot have changed sets.
MOVING_FIELDS = {"team", "team_id", "archived"}
TeamKey = tuple[int, bool, date, str, str]  # team, archived, day, dimension, value


def lock_campaigns(campaign_ids: Iterable[int]) -> None:
    """Hold each campaign's rows for this transaction, in id order (a PostgreSQL advisory lock per campaign; SQLite
    locks the whole database for a writer anyway). Whoever writes a campaign's rows takes it: a drainer's batch
    (after its placements' locks), a recount, a deleted placement, a campaign changing sets."""
    advisory_locks(CAMPAIGN_LOCKS, campaign_ids)


def lock_teams(team_ids: Iterable[int]) -> None:
    """Hold each team's rows for this transaction, in id order, after the campaigns' locks."""
    advisory_locks(TEAM_LOCKS, team_ids)


def advisory_locks(first_key: int, ids: Iterable[int]) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for pk in sorted(set(ids)):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [first_key, pk])


def team_sums(sums: Mapping[tuple[int, date, str, str], Sequence[int]]) -> dict[TeamKey, list[int]]:
    """What campaigns' rows gained (`sums`: (campaign, day, dimension, value) -> (scans, visitors)) summed per team
    set, with those teams locked. Call holding the campaigns' locks: their team and archived state are read here."""
    owner_of = {pk: (team_id, archived) for pk, team_id, archived in Campaign.objects.filter(
        pk__in={key[0] for key in sums}).values_list("pk", "team_id", "archived")}
    teams: dict[TeamKey, list[int]] = {}
    for (campaign_id, day, dimension, value), (scans, visitors) in sums.items():
        team_id, archived = owner_of[campaign_id]
        one = teams.setdefault((team_id, archived, day, dimension, value), [0, 0])
        one[0] += scans
        one[1] += visitors
    lock_teams({key[0] for key in teams})
    return teams


def rows(teams: Mapping[TeamKey, Sequence[int]]) -> list[list]:
    """`team_sums` as rows of COLUMNS, in one order (team, archived, dimension, day, value): two writers of one team
    lock its rows in the same order."""
    adapt = connection.ops.adapt_datefield_value
    return [[team_id, archived, adapt(day), dimension, value, scans, visitors]
            for (team_id, archived, day, dimension, value), (scans, visitors) in sorted(
                teams.items(), key=lambda item: (item[0][0], item[0][1], item[0][3], item[0][2], item[0][4]))]


def owner(campaign_id: int) -> tuple[int, bool] | None:
    """The campaign's team and archived state as stored (None when it is gone)."""
    return Campaign.objects.filter(pk=campaign_id).values_list("team_id", "archived").first()


def put_in(campaign_id: int, team_id: int, archived: bool) -> None:
    """Add a campaign's stored rows to its team's set (`team_id`, `archived`), in one INSERT ... SELECT where the rows
    are. Call holding the campaign's lock and the team's."""
    theirs, mine = TeamRollup._meta.db_table, CampaignRollup._meta.db_table
    with connection.cursor() as cursor:
        # The WHERE is needed by SQLite: without it, ON CONFLICT would read as a join's ON.
        cursor.execute(
            f"INSERT INTO {theirs} ({', '.join(COLUMNS)}) SELECT %s, %s, day, dimension, value, scans, visitors "
            f"FROM {mine} WHERE campaign_id = %s ORDER BY dimension, day, value "
            f"ON CONFLICT ({OWNER}, dimension, day, value) DO UPDATE SET scans = {theirs}.scans + excluded.scans, "
            f"visitors = {theirs}.visitors + excluded.visitors", [team_id, archived, campaign_id])


def take_out(campaign_id: int, team_id: int, archived: bool) -> None:
    """Subtract a campaign's stored rows from its team's set; a row left counting no scan goes. Call holding the
    campaign's lock and the team's. Exact while the team's rows add up to its campaigns', which every writer keeps;
    should they not (rows edited by hand), a count stops at 0 rather than fail the recount that repairs the
    campaign, and the rebuild's `refresh_teams` repairs the team."""
    subtract(CampaignRollup._meta.db_table, "campaign_id", campaign_id, team_id, archived)


def take_out_placement(placement_id: int, team_id: int, archived: bool) -> None:
    """Subtract a placement's rows from its campaign's team's set (it is being deleted); hold its campaign's lock
    and the team's."""
    subtract(ScanRollup._meta.db_table, "placement_id", placement_id, team_id, archived)


def subtract(table: str, column: str, pk: int, team_id: int, archived: bool) -> None:
    theirs = TeamRollup._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {theirs} AS t SET scans = {at_least_0('t.scans - r.scans')}, "
            f"visitors = {at_least_0('t.visitors - r.visitors')} FROM {table} AS r "
            f"WHERE r.{column} = %s AND t.team_id = %s AND t.archived = %s AND t.dimension = r.dimension "
            f"AND t.day = r.day AND t.value = r.value", [pk, team_id, archived])
    TeamRollup.objects.filter(team_id=team_id, archived=archived, scans=0).delete()  # a row counts at least one scan


def at_least_0(difference: str) -> str:
    return f"CASE WHEN {difference} > 0 THEN {difference} ELSE 0 END"


def campaign_saving(sender: type, instance: Campaign, raw: bool = False, update_fields: Iterable[str] | None = None,
                    **kwargs) -> None:
    """Signal receiver (pre_save of a campaign, in `Campaign.save`'s transaction): when the campaign changes sets
    (archived or brought back, or moved to another team), move its rows from the set it leaves to the one it joins,
    holding its lock so that no drainer batch adds to the old set meanwhile."""
    if raw or instance.pk is None or update_fields is not None and not MOVING_FIELDS & set(update_fields):
        return
    # Its row first, as every change of a campaign locks it (`models.locked_copy`), then its rows' lock: the other
    # way round, an archive waited for an admin's edit holding the row while the edit waited for the archive here.
    stored = Campaign.objects.select_for_update(no_key=True).filter(pk=instance.pk).values_list(
        "team_id", "archived").first()
    joins = (instance.team_id, instance.archived)
    if stored is None or stored == joins:
        return
    lock_campaigns([instance.pk])
    lock_teams({stored[0], instance.team_id})
    take_out(instance.pk, *stored)
    put_in(instance.pk, *joins)


def refresh_teams(team_ids: Iterable[int]) -> None:
    """Recount each team's rows from its campaigns' rows, one transaction per team holding its lock: a drainer's
    batch whose campaign rows the recount read has committed its team rows too (it held the lock), one after it
    waits and adds to the recount. Reads every row of the team's campaigns: seconds for a year of hundreds."""
    theirs, mine, campaigns = TeamRollup._meta.db_table, CampaignRollup._meta.db_table, Campaign._meta.db_table
    for team_id in sorted(set(team_ids)):
        with transaction.atomic():
            lock_teams([team_id])
            TeamRollup.objects.filter(team_id=team_id).delete()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {theirs} ({', '.join(COLUMNS)}) SELECT %s, c.archived, r.day, r.dimension, r.value, "
                    f"SUM(r.scans), SUM(r.visitors) FROM {mine} AS r JOIN {campaigns} AS c ON c.id = r.campaign_id "
                    f"WHERE c.team_id = %s GROUP BY c.archived, r.day, r.dimension, r.value", [team_id, team_id])
