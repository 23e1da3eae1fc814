"""The API's scan figures (`/api/placements/{id}/scans/`, `/api/campaigns/{id}/scans/`): the dashboard's, for the
date range the query asks for, from `campaigns.stats`."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request

from campaigns import dashboard, stats
from qartsite.api import AsciiDateField, BriefChoiceField

# The pages' words (`stats.UNIQUE_COUNTED`), so an integrator reads the figure as the marketer does.
UNIQUE_HELP = f"Unique visitors, {stats.UNIQUE_COUNTED}. {stats.UNIQUE_EXPLAINED}"


def range_help(default: str) -> str:
    return (f"Local days of the team's time zone, ending today: 7d, 30d, 90d, lifetime (from the first scan), or "
            f"custom (give from and to). Default {default}; from/to alone mean custom.")


class RangeQuerySerializer(serializers.Serializer):
    range = BriefChoiceField(choices=stats.RANGE_KEYS, required=False, help_text=range_help(stats.DEFAULT_RANGE))
    # `from` is a keyword: the field is named in the schema through the serializer's own declared-fields map.
    to = AsciiDateField(required=False, help_text=("A custom range's last day (included), YYYY-MM-DD; one after "
                                                   "today reads as today (the range's end says so)"))


RangeQuerySerializer._declared_fields["from"] = AsciiDateField(
    required=False, help_text="A custom range's first day, YYYY-MM-DD, today at the latest")


class ExportRangeQuerySerializer(RangeQuerySerializer):
    """The scans export's query: its default is every stored scan (`scan_export_views.csv_response`), not the
    dashboard's 30 days, which its schema said."""

    range = BriefChoiceField(choices=stats.RANGE_KEYS, required=False,
                             help_text=range_help("lifetime: every stored scan"))


class RangeSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="7d, 30d, 90d, lifetime or custom")
    start = serializers.DateField()
    end = serializers.DateField()
    time_zone = serializers.CharField(help_text=(
        "The time zone the days are counted in: the team's, or its old one until the recount that follows a "
        "change of zone is done (minutes)"))


class CountSerializer(serializers.Serializer):
    key = serializers.CharField(help_text='The value as stored; "Unknown" when not recorded')
    label = serializers.CharField(help_text="As the dashboard shows it (a language's name, a capitalised device)")
    count = serializers.IntegerField(help_text="Scans")
    unique = serializers.IntegerField(help_text=UNIQUE_HELP)


class RuleCountSerializer(serializers.Serializer):
    key = serializers.CharField(allow_blank=True, help_text=(
        'The rule as scans record it ("ios", "android", "other", "before_start", "after_end"; an A/B destination: '
        '"ab:" and the first 12 hex digits of the SHA-256 of its URL as written in the split; "ab:0", "ab:1", ... '
        'by position for scans stored before 2026-12-02); "" for the main destination (scans no rule sent)'))
    label = serializers.CharField(help_text='In words, as the dashboard shows it ("A/B: https://example.com/a")')
    count = serializers.IntegerField(help_text="Scans")
    unique = serializers.IntegerField(help_text=(
        f"{UNIQUE_HELP} Each visitor counts under the rule of their first scan of the day."))
    split_share = serializers.FloatField(allow_null=True, help_text=(
        "An A/B variant's percent of the split's scans; null for other rules"))


class DayCountSerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()
    unique = serializers.IntegerField(help_text=UNIQUE_HELP)


# What a placement's and a campaign's summaries share; each names its own subject (the schema's examples showed a
# campaign summary's `placement` and a placement summary's `campaign`, which neither sends). A comment, not a
# docstring: drf-spectacular gives a serializer's docstring, inherited too, to the API's readers as its description.
class ScanFiguresSerializer(serializers.Serializer):
    range = RangeSerializer()
    total = serializers.IntegerField(help_text=f"Scans in the range, {stats.SCANS_COUNTED}. {stats.SCANS_EXPLAINED}")
    unique = serializers.IntegerField(help_text=UNIQUE_HELP)
    last_7_days = serializers.IntegerField(help_text="Scans by people in the last 7 local days, whatever the range")
    by_day = DayCountSerializer(many=True, help_text="Each day of the range, oldest first")
    by_hour = serializers.ListField(child=serializers.IntegerField(), help_text="Scans in each local hour, 0-23")
    by_weekday = serializers.ListField(child=serializers.IntegerField(), help_text="Scans Monday to Sunday")
    by_device = CountSerializer(many=True)
    by_os = CountSerializer(many=True)
    by_browser = CountSerializer(many=True)
    by_country = CountSerializer(many=True, help_text="ISO 3166 country codes, from the address at scan time")
    by_language = CountSerializer(many=True, help_text="The first language of Accept-Language")
    by_rule = RuleCountSerializer(many=True, help_text=(
        "Where the destination rules sent scans, in precedence order, then the main destination; empty when no rule "
        "sent a scan in the range"))


class ScanSummarySerializer(ScanFiguresSerializer):
    """A placement's scans in the range asked."""

    placement = serializers.IntegerField(help_text="The placement")


class PlacementFiguresSerializer(serializers.Serializer):
    placement = serializers.IntegerField()
    name = serializers.CharField()
    scans = serializers.IntegerField()
    unique = serializers.IntegerField(help_text=UNIQUE_HELP)
    printed_quantity = serializers.IntegerField(allow_null=True)
    scans_per_100_printed = serializers.FloatField(allow_null=True)
    first_scan = serializers.DateTimeField(allow_null=True)
    last_scan = serializers.DateTimeField(allow_null=True)
    trend = serializers.ListField(child=serializers.IntegerField(),
                                  help_text="Scans per day (ranges up to 31 days) or per week, oldest first")


class CampaignScanSummarySerializer(ScanFiguresSerializer):
    """A campaign's scans in the range asked, all its placements' together, and each placement's compared."""

    campaign = serializers.IntegerField(help_text="The campaign")
    placements = PlacementFiguresSerializer(many=True, help_text="The placements compared, most scans first")


def asked_range(request: Request, team, scope: stats.Scope) -> stats.DateRange:
    """The range of the query, or a 400 naming what is wrong (`from` or `to` beside a range that is not custom too:
    the page's picker sends its dates with every range, a client that sends both means one of them)."""
    params = request.query_params
    key = stats.range_key(params)
    if key in stats.RANGE_KEYS and key != "custom" and (params.get("from") or params.get("to")):
        raise serializers.ValidationError({"range": [
            f"from and to make a custom range: send them alone (or with range=custom), not with range={key}."]})
    try:
        return dashboard.range_for(team, params, scope)
    except stats.RangeError as exc:
        raise serializers.ValidationError({"range": [str(exc)]}) from None


def shares(scope: stats.Scope, dimension: str, days: stats.DateRange) -> list[dict]:
    return [{"key": share.value or "Unknown", "label": share.label, "count": share.scans, "unique": share.visitors}
            for share in stats.breakdown(scope, dimension, days)]


def scan_summary(scope: stats.Scope, team, days: stats.DateRange) -> dict:
    """Scan figures of `scope` in `days`, people only (see `campaigns.stats`)."""
    daily = stats.daily(scope, days)
    week = stats.parse_range({"range": "7d"}, stats.local_today(team), None)
    return {
        "range": {**days.query(), "key": days.key, "start": days.start, "end": days.end,
                  "time_zone": team.counted_time_zone},
        "total": sum(daily.scans),
        "unique": sum(daily.visitors),
        "last_7_days": sum(stats.daily(scope, week).scans),
        "by_day": [{"day": day, "count": count, "unique": unique}
                   for day, count, unique in zip(daily.days, daily.scans, daily.visitors, strict=True)],
        "by_hour": stats.hours(scope, days),
        "by_weekday": stats.weekdays(scope, days),
        **{f"by_{name}": shares(scope, dimension, days) for name, dimension in (
            ("device", stats.Dimension.DEVICE), ("os", stats.Dimension.OS), ("browser", stats.Dimension.BROWSER),
            ("country", stats.Dimension.COUNTRY), ("language", stats.Dimension.LANGUAGE))},
        "by_rule": [{"key": share.value, "label": share.label, "count": share.scans, "unique": share.visitors,
                     "split_share": share.split_share} for share in stats.rule_breakdown(scope, days)],
    }
