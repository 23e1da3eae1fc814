"""Destination rules: one printed code, several destinations, by the scanner's phone, the date and an A/B split.

A placement's rules and its campaign's are stored as small JSON objects (`Placement.rules`, `Campaign.rules`):

    {"ios": "https://apps.apple.com/app/id1", "android": "https://play.google.com/store/apps/details?id=x",
     "other": "https://example.com/app", "starts_at": "2026-12-01T09:00:00+01:00",
     "ends_at": "2026-12-31T23:59:00+01:00",
     "split": [{"url": "https://example.com/a", "weight": 3}, {"url": "https://example.com/b", "weight": 1}]}

Every key is optional. Each kind of rule (schedule: starts_at/ends_at; devices: ios/android/other; split) comes from
the placement when it sets that kind, else from its campaign, so a campaign's rules are its placements' defaults.

Where a scan leads, the first that applies (in parentheses, the `rule` it records on the scan):

1. the placement is switched off or its campaign archived: the campaign's fallback, else its destination ("");
2. schedule: before `starts_at` or from `ends_at` on, the campaign's fallback, else its destination
   ("before_start", "after_end"): a code printed for an event never leads to a dead end. A campaign that routes
   by its dates (`Campaign.dates_route`) has them fill the ends its own rules leave open (`with_dates`: from the
   first moment of `starts_on` to the last of `ends_on`, in the team's time zone); a placement's schedule, where
   it sets one, replaces all of that;
3. device: iOS to `ios`, Android to `android`, any other system (desktops, and iPads that present themselves as
   Macs) to `other`, each only where set ("ios", "android", "other");
4. split: one of the `split` URLs, chosen by weight from the visitor key (`links.visitor_key`), so one visitor keeps
   one destination all day and no state is kept ("ab:" and the first 12 hex digits of the URL's SHA-256,
   `variant_rule`: the destination's, not its position's, so results follow a destination through edits of the
   split and across placements; scans stored before recorded the position, "ab:0", "ab:1", ...);
5. the placement's own destination, else the campaign's ("").

Every destination carries the placement's UTM parameters (`Placement.tagged`). The redirect keeps the compiled
`LinkRules` with the link (`campaigns.redirects`), so choosing costs a few comparisons and no query; a link without
rules carries None and costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.core.exceptions import ValidationError

from campaigns import links
from qartsite.numbers import whole

UTC = zoneinfo.ZoneInfo("UTC")
DEVICE_KEYS = {"ios": "iOS", "android": "Android", "other": "other systems"}  # key -> its name in messages
SCHEDULE_KEYS = ("starts_at", "ends_at")
KINDS = (SCHEDULE_KEYS, tuple(DEVICE_KEYS), ("split",))  # what a placement's rules replace of its campaign's
KEYS = (*DEVICE_KEYS, *SCHEDULE_KEYS, "split")
MAX_NAMED = 20  # unknown rules named in a message; the rest are counted
MAX_SPLIT = 10  # destinations in one split
MAX_WEIGHT = 1000
YEARS = (2000, 2200)  # a schedule's, a campaign's dates' and a placement's deployed_on: else a typing mistake


def fail(message: str) -> None:
    raise ValidationError(message, code="invalid_rules")


def url_problem(value: Any) -> str:
    """What is wrong with a rule's address ("" for nothing), checked like a destination."""
    if not isinstance(value, str):
        return "give a web address as text."
    value = value.strip()
    if any(ord(character) < 32 or character == "\x7f" for character in value):  # PostgreSQL's JSON refuses NUL
        return "the address contains control characters."
    try:
        links.validate_destination(value)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return ""


def checked_url(value: Any, name: str) -> str:
    problem = url_problem(value)
    if problem:
        fail(f"{name}: {problem}")
    return value.strip()


def checked_time(value: Any, name: str, zone: tzinfo) -> datetime:
    """An aware datetime from an ISO 8601 text (or a datetime); without an offset, a time of `zone`."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            fail(f"{name}: give a date and time like 2026-12-01T09:00:00+01:00.")
    if not isinstance(value, datetime):
        fail(f"{name}: give a date and time like 2026-12-01T09:00:00+01:00.")
    if not YEARS[0] <= value.year <= YEARS[1]:
        fail(f"{name}: give a year from {YEARS[0]} to {YEARS[1]}.")
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def split_problems(item: Any) -> list[str]:
    """What is wrong with one split destination ({"url": ..., "weight": ...}), each a sentence; [] for nothing.

    Shared by the API (`checked_split`, "A/B split, destination 2: …") and the page's split field
    (`campaigns.forms.split_lines`, "Line 2: …"), so both say the same thing about the same mistake.
    """
    if not isinstance(item, dict) or set(item) - {"url", "weight"} or "url" not in item:
        return ["give an object with a url and a weight."]
    problems = []
    weight = item.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        problems.append(f"the weight must be a whole number from 1 to {MAX_WEIGHT}.")
    url = url_problem(item["url"])
    if url:
        problems.append(url)
    return problems


def checked_split(value: Any) -> list[dict[str, Any]]:
    """The split in its stored form; every bad destination is named in the one message ("A/B split, destination
    1: …. A/B split, destination 3: …."), so one correction fixes them all."""
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_SPLIT:
        fail(f"A/B split: give 2 to {MAX_SPLIT} destinations, each with a url and a weight.")
    problems = [f"A/B split, destination {number}: {' '.join(found)}"
                for number, found in enumerate(map(split_problems, value), 1) if found]
    if problems:
        fail(" ".join(problems))
    return [{"url": item["url"].strip(), "weight": item.get("weight", 1)} for item in value]


def clean_rules(value: Any, zone: tzinfo = UTC) -> dict[str, Any]:
    """The rules in their stored form, every URL checked like a destination (`links.validate_destination`).

    Args:
        value (`dict`, *optional*): the rules as given (a form, the API, the admin); None or {} for none.
        zone (`tzinfo`, *optional*, defaults to UTC): the zone of schedule times given without an offset (the
            pages pass the team's).

    Returns:
        `dict`: only the keys set, times as ISO 8601 with their offset; {} for no rules.

    Raises:
        ValidationError: one message saying which rule is wrong and why (every bad destination of a split).
    """
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        fail("Rules must be an object with any of: " + ", ".join(KEYS) + ".")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        # The first few, each shortened: half a million unknown keys answered 4 MB naming every one.
        named = ", ".join(str(name)[:40] for name in unknown[:MAX_NAMED])
        more = f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED else ""
        fail(f"Unknown rule {named}{more}: use any of " + ", ".join(KEYS) + ".")
    rules: dict[str, Any] = {}
    for key, name in DEVICE_KEYS.items():
        if value.get(key) not in (None, ""):
            rules[key] = checked_url(value[key], f"Destination for {name}")
    times = {key: checked_time(value[key], "Start" if key == "starts_at" else "End", zone)
             for key in SCHEDULE_KEYS if value.get(key) not in (None, "")}
    if len(times) == 2 and times["ends_at"] <= times["starts_at"]:
        fail("End: the schedule must end after it starts.")
    rules.update({key: time.isoformat() for key, time in times.items()})
    if value.get("split") not in (None, [], ""):
        rules["split"] = checked_split(value["split"])
    return rules


def validate_rules(value: Any) -> None:
    """The model fields' validator (admin forms): `clean_rules` without keeping its result."""
    clean_rules(value)


def as_text(value: dict[str, Any] | None) -> str:
    """The rules as the history stores them: compact JSON with sorted keys, "" for none."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""


def from_text(text: str) -> dict[str, Any]:
    """The rules from `as_text` ({} for "" or text that is not rules JSON; `clean_rules` judges the rest)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def moment_in_words(stored: str) -> str:
    """A stored moment ('2026-11-01T00:00:00+01:00') as people read it: '1 Nov 2026 00:00 (UTC+01:00)'."""
    try:
        moment = datetime.fromisoformat(stored)
    except (TypeError, ValueError):
        return str(stored)
    offset = moment.utcoffset()
    zone = ""
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        zone = f" (UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})" if minutes else " (UTC)"
    return f"{moment.day} {moment:%b %Y %H:%M}{zone}"


def describe(value: dict[str, Any] | None) -> str:
    """The rules in words, for the history and the pages; "" for none."""
    if not value:
        return ""
    parts = [f"{'iOS' if key == 'ios' else name.capitalize()} → {value[key]}"
             for key, name in DEVICE_KEYS.items() if key in value]
    if "starts_at" in value:
        parts.append(f"from {moment_in_words(value['starts_at'])}")
    if "ends_at" in value:
        parts.append(f"until {moment_in_words(value['ends_at'])}")
    if "split" in value:
        total = sum(item["weight"] for item in value["split"])
        parts.append("split " + ", ".join(f"{100 * item['weight'] / total:.0f}% {item['url']}"
                                          for item in value["split"]))
    return "; ".join(parts)


# What each `ScanEvent.rule` means, for the dashboards; in precedence order (A/B variants after: `rule_label`).
RULE_NAMES = {
    # Where such a scan went (the fallback, else the destination) is the campaign's: not said here.
    "before_start": "Before the start date",
    "after_end": "After the end date",
    "ios": "iPhone (iOS) destination",
    "android": "Android destination",
    "other": "Other systems' destination",
}
NO_RULE = "Main destination (no rule)"
SPLIT_PREFIX = "ab:"


def variant_rule(url: str) -> str:
    """The rule a scan records when the split sends it to `url` (as written in the rules, before UTM tagging)."""
    return SPLIT_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:12]


def is_variant(rule: str) -> bool:
    return rule.startswith(SPLIT_PREFIX)


def variant_index(rule: str) -> int | None:
    """The position an A/B variant of a scan stored before `variant_rule` recorded ("ab:1" -> 1); None for any
    other rule."""
    number = rule.removeprefix(SPLIT_PREFIX)
    return whole(number, 999) if is_variant(rule) else None


def variant_letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def variant_destinations(sets: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Variant rule -> its destination, for every split destination of these sets of rules."""
    found: dict[str, str] = {}
    for value in sets:
        for item in (value or {}).get("split", ()):
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                found.setdefault(variant_rule(item["url"]), item["url"])
    return found


def rule_label(rule: str, variants: dict[str, str] | None = None) -> str:
    """A recorded rule in plain words: "ab:…" -> "A/B: <its destination>" (from `variants`,
    `variant_destinations`), "ab:0" (stored by position) -> "A/B variant A", "" -> the main destination."""
    if not rule:
        return NO_RULE
    index = variant_index(rule)
    if index is not None:
        return f"A/B variant {variant_letter(index)}"
    if is_variant(rule):
        url = (variants or {}).get(rule)
        return f"A/B: {url}" if url else "A/B: a destination no longer in any split"
    return RULE_NAMES.get(rule, f"Rule “{rule}”")


def rule_order(rule: str) -> tuple[int, int, str]:
    """Sort key: the rules in precedence order, then the A/B variants (equal here: the dashboard orders them by
    scans), unknown ones, the main destination last."""
    if not rule:
        return (3, 0, "")
    if is_variant(rule):
        return (1, 0, "")
    order = list(RULE_NAMES)
    return (0, order.index(rule), "") if rule in RULE_NAMES else (2, 0, rule)


def effective(campaign_rules: dict[str, Any] | None, placement_rules: dict[str, Any] | None) -> dict[str, Any]:
    """A placement's rules with its campaign's filling each kind it does not set (schedule, devices, split)."""
    placement_rules, campaign_rules = placement_rules or {}, campaign_rules or {}
    merged: dict[str, Any] = {}
    for kind in KINDS:
        source = placement_rules if any(key in placement_rules for key in kind) else campaign_rules
        merged.update({key: source[key] for key in kind if key in source})
    return merged


def validate_day(value: date) -> None:
    """A campaign's start or end date, or the day a placement went up: a year in `YEARS`."""
    if not YEARS[0] <= value.year <= YEARS[1]:
        # Not "invalid_date": a form's date field has a message of its own under that code, which would replace this.
        raise ValidationError(f"Give a year from {YEARS[0]} to {YEARS[1]}.", code="year_range")


def with_dates(rules: dict[str, Any] | None, starts_on: date | None, ends_on: date | None,
               zone: tzinfo) -> dict[str, Any]:
    """A campaign's rules with its dates filling the schedule's ends they leave open: `starts_at` from midnight
    starting `starts_on`, `ends_at` from midnight ending `ends_on` (whole days, both included), in `zone` (its
    team's)."""
    rules = rules or {}
    dated = dict(rules)
    if starts_on is not None and "starts_at" not in rules:
        dated["starts_at"] = datetime.combine(starts_on, time(), zone).isoformat()
    if ends_on is not None and "ends_at" not in rules and ends_on < date.max:
        dated["ends_at"] = datetime.combine(ends_on + timedelta(days=1), time(), zone).isoformat()
    return dated


class LinkRules:
    """Compiled rules of one live placement, UTM-tagged: what the redirect chooses from on every scan.

    Times are POSIX timestamps; `devices` maps an OS family ("iOS", "Android", or None for any other) to
    (URL, rule); `split` holds (cumulative weight, URL, rule) in order.
    """

    __slots__ = ("starts", "ends", "fallback", "devices", "split", "total")

    def __init__(self, starts: float | None, ends: float | None, fallback: str,
                 devices: dict[str | None, tuple[str, str]] | None, split: tuple[tuple[int, str, str], ...]) -> None:
        self.starts, self.ends, self.fallback = starts, ends, fallback
        self.devices, self.split = devices or None, split or ()
        self.total = split[-1][0] if split else 0

    def choose(self, default: str, os_family: str, visitor_key: str, now: float) -> tuple[str, str]:
        """(URL, rule fired) for one scan: `default` (the link's URL) with rule "" when no rule applies."""
        if self.starts is not None and now < self.starts:
            return self.fallback, "before_start"
        if self.ends is not None and now >= self.ends:
            return self.fallback, "after_end"
        if self.devices is not None:
            hit = self.devices.get(os_family if os_family in ("iOS", "Android") else None)
            if hit is not None:
                return hit
        if self.total:
            # The visitor key is an HMAC: its first 32 bits are uniform, and the same all day for one visitor.
            point = int(visitor_key[:8] or "0", 16) % self.total
            for bound, url, rule in self.split:
                if point < bound:
                    return url, rule
        return default, ""

    def to_json(self) -> list:
        """A plain-JSON form for the copy shared in Redis (`from_json` reads it back)."""
        devices = [[os_family, url, rule] for os_family, (url, rule) in (self.devices or {}).items()]
        return [self.starts, self.ends, self.fallback, devices, [list(item) for item in self.split]]

    @classmethod
    def from_json(cls, data: list) -> LinkRules:
        starts, ends, fallback, devices, split = data
        return cls(None if starts is None else float(starts), None if ends is None else float(ends), str(fallback),
                   {os_family: (str(url), str(rule)) for os_family, url, rule in devices},
                   tuple((int(bound), str(url), str(rule)) for bound, url, rule in split))


def compile_rules(rules: dict[str, Any], tagged: Callable[[str], str], fallback: str) -> LinkRules | None:
    """The `LinkRules` of a live placement's effective rules (`effective`); None when there are none.

    Args:
        rules (`dict`): stored rules (`clean_rules`' form).
        tagged (`Callable[[str], str]`): adds the placement's UTM parameters to a URL.
        fallback (`str`): where the schedule sends scans outside it, already tagged.
    """
    if not rules:
        return None
    devices = {os_family: (tagged(rules[key]), key)
               for key, os_family in (("ios", "iOS"), ("android", "Android"), ("other", None)) if key in rules}
    split, total = [], 0
    for item in rules.get("split", ()):
        total += int(item["weight"])
        split.append((total, tagged(item["url"]), variant_rule(item["url"])))
    starts, ends = (datetime.fromisoformat(rules[key]).timestamp() if key in rules else None for key in SCHEDULE_KEYS)
    return LinkRules(starts, ends, fallback, devices, tuple(split))
