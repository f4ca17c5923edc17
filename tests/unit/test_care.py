"""Care policy: durations and their labels, business hours (DST included), the per-brand policy mapping."""

from __future__ import annotations

import random
import time as clock
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from streams.processing.care import (
    DEFAULT_POLICY,
    BusinessHours,
    CarePolicy,
    business_seconds,
    parse_duration,
    window_label,
)

H = 3600
D = 86400
WEEKDAYS = frozenset(range(5))


def at(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Unix seconds of a local wall-clock time (first occurrence when the hour repeats)."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone)).timestamp())


def hours(zone: str, span: str = "09:00-18:00", days: str | list[str] = "mon-fri") -> BusinessHours:
    return BusinessHours.from_mapping({"timezone": zone, "days": days, "hours": span})


PARIS = hours("Europe/Paris")


# --- parse_duration / window_label -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h", 3600),
        ("24h", 86400),
        ("2d", 172800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        (" 1H ", 3600),
        ("30d", 30 * D),
        (45, 45),
        (3600, 3600),
    ],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["", "  ", "1", "3600", "h", "1x", "1.5h", "1m1h", "1h1h", "1h 30m", "-1h", "0s", "0h0m", "31d", "721h",
     0, -5, 30 * D + 1, True, 3.5, None, ["1h"]],
)  # fmt: skip
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (3600, "1h"),
        (86400, "24h"),
        (2 * D, "48h"),
        (3 * D, "3d"),
        (30 * D, "30d"),
        (49 * H, "49h"),
        (73 * H, "73h"),
        (1800, "30m"),
        (5400, "90m"),
        (60, "1m"),
        (90, "90s"),
        (45, "45s"),
        (3601, "3601s"),
    ],
)
def test_window_label(seconds: int, label: str) -> None:
    assert window_label(seconds) == label
    assert parse_duration(label) == seconds


@pytest.mark.parametrize("bad", [0, -60, True, 1.0, "1h"])
def test_window_label_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        window_label(bad)  # type: ignore[arg-type]


def test_labels_round_trip_and_are_unique() -> None:
    values = [*range(1, 7201), *range(60, 30 * D + 1, 60)]
    labels: dict[str, int] = {}
    for seconds in values:
        label = window_label(seconds)
        assert parse_duration(label) == seconds, label
        assert label[:-1].isdigit() and label[-1] in "dhms" and not label.startswith("0")
        labels.setdefault(label, seconds)
        assert labels[label] == seconds
    # different spellings of one window share its label
    assert {window_label(parse_duration(text)) for text in ("2d", "48h", "2880m", "1d24h")} == {"48h"}
    assert {window_label(parse_duration(text)) for text in ("1h30m", "90m", "5400s", 5400)} == {"90m"}


# --- BusinessHours -----------------------------------------------------------------------------------


def test_business_hours_from_mapping() -> None:
    assert BusinessHours("Europe/Paris", WEEKDAYS, time(9), time(18)) == PARIS
    assert hours("UTC", "8:30-17:00", ["mon", "Tue", "wednesday"]).days == frozenset({0, 1, 2})
    assert hours("UTC", days="sat-sun").days == frozenset({5, 6})
    assert hours("UTC", days="fri-mon").days == frozenset({4, 5, 6, 0})
    assert hours("UTC", days="mon,wed, fri").days == frozenset({0, 2, 4})
    assert hours("UTC", days="mon-sun").days == frozenset(range(7))
    assert hours("UTC", " 08:30 - 17:45 ").opens == time(8, 30)
    assert BusinessHours.from_mapping({"timezone": "UTC", "days": [0, 6], "hours": "09:00-18:00"}).days == {0, 6}
    assert PARIS.weekly_seconds == 5 * 9 * H


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"timezone": "Europe/Pariss", "days": "mon-fri", "hours": "09:00-18:00"}, "business_hours.timezone"),
        ({"timezone": "localtime", "days": "mon-fri", "hours": "09:00-18:00"}, "business_hours.timezone"),
        ({"timezone": "../etc/passwd", "days": "mon-fri", "hours": "09:00-18:00"}, "business_hours.timezone"),
        ({"timezone": "", "days": "mon-fri", "hours": "09:00-18:00"}, "business_hours.timezone"),
        ({"timezone": 1, "days": "mon-fri", "hours": "09:00-18:00"}, "business_hours.timezone"),
        ({"timezone": "UTC", "days": "", "hours": "09:00-18:00"}, "business_hours.days"),
        ({"timezone": "UTC", "days": [], "hours": "09:00-18:00"}, "business_hours.days"),
        ({"timezone": "UTC", "days": "funday", "hours": "09:00-18:00"}, "business_hours.days"),
        ({"timezone": "UTC", "days": "mon-tue-wed", "hours": "09:00-18:00"}, "business_hours.days"),
        ({"timezone": "UTC", "days": [7], "hours": "09:00-18:00"}, "business_hours.days"),
        ({"timezone": "UTC", "days": 5, "hours": "09:00-18:00"}, "business_hours.days"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": "18:00-09:00"}, "business_hours.hours"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": "09:00-09:00"}, "business_hours.hours"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": "09:00-24:00"}, "business_hours.hours"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": "9-18"}, "business_hours.hours"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": "09:60-18:00"}, "business_hours.hours"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": ["09:00", "18:00"]}, "business_hours.hours"),
        ({"timezone": "UTC", "days": "mon-fri"}, "missing hours"),
        ({"timezone": "UTC", "days": "mon-fri", "hours": "09:00-18:00", "tz": "UTC"}, "unknown keys tz"),
        ("UTC 9-18", "business_hours"),
    ],
)
def test_business_hours_errors_name_the_field(data: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BusinessHours.from_mapping(data)  # type: ignore[arg-type]


def test_business_hours_constructor_validates() -> None:
    with pytest.raises(ValueError, match=r"business_hours\.days"):
        BusinessHours("UTC", frozenset(), time(9), time(18))
    with pytest.raises(ValueError, match=r"business_hours\.days"):
        BusinessHours("UTC", frozenset({7}), time(9), time(18))
    with pytest.raises(ValueError, match=r"business_hours\.hours"):
        BusinessHours("UTC", WEEKDAYS, time(9, 0, 0, 5), time(18))
    with pytest.raises(ValueError, match=r"business_hours\.hours"):
        BusinessHours("UTC", WEEKDAYS, time(9, tzinfo=ZoneInfo("UTC")), time(18))
    with pytest.raises(ValueError, match=r"business_hours\.timezone"):
        BusinessHours("Mars/Olympus", WEEKDAYS, time(9), time(18))


# --- business_seconds: hand-computed -----------------------------------------------------------------


def test_friday_evening_to_monday_morning() -> None:
    """Received Friday 20:00, answered Monday 09:30: the clock starts at Monday's opening."""
    assert (
        business_seconds(at("Europe/Paris", 2023, 11, 17, 20), at("Europe/Paris", 2023, 11, 20, 9, 30), PARIS) == 1800
    )


def test_inside_and_outside_hours() -> None:
    wednesday = (2023, 11, 15)
    assert business_seconds(at("Europe/Paris", *wednesday, 17), at("Europe/Paris", *wednesday, 20), PARIS) == H
    assert business_seconds(at("Europe/Paris", *wednesday, 8), at("Europe/Paris", *wednesday, 9, 30), PARIS) == 1800
    assert business_seconds(at("Europe/Paris", *wednesday, 10), at("Europe/Paris", *wednesday, 10, 0, 7), PARIS) == 7
    assert business_seconds(at("Europe/Paris", *wednesday, 0), at("Europe/Paris", *wednesday, 23), PARIS) == 9 * H
    assert business_seconds(at("Europe/Paris", *wednesday, 18), at("Europe/Paris", 2023, 11, 16, 9), PARIS) == 0
    # Wednesday 17:00 to Thursday 10:00: one hour each side of the night
    assert business_seconds(at("Europe/Paris", *wednesday, 17), at("Europe/Paris", 2023, 11, 16, 10), PARIS) == 2 * H


def test_weekend_only_spans_are_zero() -> None:
    assert business_seconds(at("Europe/Paris", 2023, 11, 18, 0), at("Europe/Paris", 2023, 11, 20, 0), PARIS) == 0
    assert business_seconds(at("Europe/Paris", 2023, 11, 17, 18), at("Europe/Paris", 2023, 11, 20, 9), PARIS) == 0
    sydney = hours("Australia/Sydney")
    # Saturday 10:00 to Monday 08:59 Sydney (Friday night to Sunday night in UTC)
    assert (
        business_seconds(at("Australia/Sydney", 2024, 6, 1, 10), at("Australia/Sydney", 2024, 6, 3, 8, 59), sydney) == 0
    )


def test_empty_and_reversed_spans_are_zero() -> None:
    start = at("Europe/Paris", 2023, 11, 15, 10)
    assert business_seconds(start, start, PARIS) == 0
    assert business_seconds(start, start - 3600, PARIS) == 0


def test_span_crossing_a_dst_change() -> None:
    """Paris springs forward on Sunday 2024-03-31: Friday is UTC+1, Monday UTC+2; the hours stay wall-clock."""
    start, end = at("Europe/Paris", 2024, 3, 29, 17), at("Europe/Paris", 2024, 4, 1, 10)
    assert end - start == 64 * H  # 65 wall-clock hours, one of them skipped
    assert business_seconds(start, end, PARIS) == 2 * H
    # New York falls back on Sunday 2024-11-03; a full week around it keeps 5 × 9 h
    new_york = hours("America/New_York")
    week = at("America/New_York", 2024, 10, 28), at("America/New_York", 2024, 11, 4)
    assert week[1] - week[0] == 7 * D + H
    assert business_seconds(*week, new_york) == 45 * H


@pytest.mark.parametrize(
    ("zone", "day", "span", "expected"),
    [
        # Paris 2024-03-31: 02:00 CET → 03:00 CEST (23-hour day)
        ("Europe/Paris", (2024, 3, 31), "00:00-23:59", 23 * H - 60),
        ("Europe/Paris", (2024, 3, 31), "01:00-04:00", 2 * H),
        ("Europe/Paris", (2024, 3, 31), "02:30-10:00", 7 * H),  # opening in the gap: opens at 03:00
        ("Europe/Paris", (2024, 3, 31), "01:00-02:30", H),  # closing in the gap: closes at 02:00 CET = 03:00 CEST
        # Paris 2024-10-27: 03:00 CEST → 02:00 CET (25-hour day)
        ("Europe/Paris", (2024, 10, 27), "01:00-04:00", 4 * H),
        ("Europe/Paris", (2024, 10, 27), "01:00-02:30", 2 * H),  # 02:00-02:30 shows twice and counts twice
        ("Europe/Paris", (2024, 10, 27), "09:00-18:00", 9 * H),
        # New York 2024-03-10: 02:00 EST → 03:00 EDT; 2024-11-03: 02:00 EDT → 01:00 EST
        ("America/New_York", (2024, 3, 10), "00:00-12:00", 11 * H),
        ("America/New_York", (2024, 11, 3), "00:00-12:00", 13 * H),
        # Sydney 2024-04-07: 03:00 AEDT → 02:00 AEST; 2024-10-06: 02:00 AEST → 03:00 AEDT
        ("Australia/Sydney", (2024, 4, 7), "00:00-23:00", 24 * H),
        ("Australia/Sydney", (2024, 10, 6), "00:00-23:00", 22 * H),
        ("UTC", (2024, 3, 31), "00:00-23:00", 23 * H),
    ],
)
def test_dst_days(zone: str, day: tuple[int, int, int], span: str, expected: int) -> None:
    daily = hours(zone, span, "mon-sun")
    start = at(zone, *day)
    end = int((datetime(*day, tzinfo=ZoneInfo(zone)) + timedelta(days=1)).timestamp())  # next local midnight
    assert business_seconds(start, end, daily) == expected


def test_long_spans_are_exact_and_fast() -> None:
    start = at("Europe/Paris", 2024, 1, 1)  # a Monday; the year has two DST changes
    end = at("Europe/Paris", 2024, 12, 30)  # 52 weeks later, also a Monday
    began = clock.perf_counter()
    assert business_seconds(start, end, PARIS) == 52 * 45 * H
    assert business_seconds(start, start + 20 * 365 * D, hours("America/New_York")) > 0
    assert clock.perf_counter() - began < 0.5  # ~7,000 days: a few offset probes per day


# --- business_seconds against a brute-force reference -----------------------------------------------


def reference(start: int, end: int, hours: BusinessHours, step: int) -> int:
    """Step through [start, end) and ask the local wall clock each time: exact when everything is on ``step``."""
    zone = ZoneInfo(hours.timezone)
    total = 0
    for instant in range(start, end, step):
        local = datetime.fromtimestamp(instant, zone)
        if local.weekday() in hours.days and hours.opens <= local.time() < hours.closes:
            total += min(step, end - instant)
    return total


def random_hours(rng: random.Random, zone: str) -> BusinessHours:
    days = frozenset(d for d in range(7) if rng.random() < 0.6) or frozenset({rng.randrange(7)})
    if rng.random() < 0.5:  # around the night, where the clocks change
        opens, closes = sorted(rng.sample(range(0, 6 * 60, 15), 2))
    else:
        opens, closes = sorted(rng.sample(range(0, 24 * 60), 2))
    return BusinessHours(zone, days, time(opens // 60, opens % 60), time(closes // 60, closes % 60))


def transitions(zone: str, year: int) -> list[int]:
    """Instants (to the hour) just after ``zone``'s UTC offset changes in ``year``."""
    tz = ZoneInfo(zone)
    found = []
    instant = int(datetime(year, 1, 1, tzinfo=tz).timestamp())
    previous = datetime.fromtimestamp(instant, tz).utcoffset()
    for probe in range(instant, instant + 366 * D, H):
        offset = datetime.fromtimestamp(probe, tz).utcoffset()
        if offset != previous:
            found.append(probe)
            previous = offset
    return found


ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "UTC"]


@pytest.mark.parametrize("zone", [*ZONES, "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_matches_minute_by_minute_reference(zone: str) -> None:
    rng = random.Random(f"care-{zone}")
    changes = transitions(zone, 2023) + transitions(zone, 2024)
    base = at("UTC", 2023, 1, 1)
    weeks = zone in ZONES
    for case in range(30 if weeks else 15):
        business = random_hours(rng, zone)
        if changes and case % 2 == 0:  # around a DST change
            start = rng.choice(changes) - rng.randrange(0, 3 * D)
        else:
            start = base + rng.randrange(0, 2 * 365 * D)
        start -= start % 60
        length = rng.choice([rng.randrange(0, 6 * H), rng.randrange(0, 4 * D), rng.randrange(0, 3 * 7 * D)])
        if not weeks:
            length = min(length, 5 * D)
        end = start + length - length % 60
        assert business_seconds(start, end, business) == reference(start, end, business, 60), (business, start, end)


@pytest.mark.parametrize("zone", ZONES)
def test_matches_second_by_second_reference(zone: str) -> None:
    """Odd seconds everywhere: the span ends and the opening hours (constructor allows seconds)."""
    rng = random.Random(f"care-seconds-{zone}")
    changes = transitions(zone, 2024) or [at("UTC", 2024, 3, 31, 1)]
    for _ in range(12):
        opens = rng.randrange(0, 5 * H)
        closes = rng.randrange(opens + 1, 6 * H)
        business = BusinessHours(zone, frozenset(range(7)), to_time(opens), to_time(closes))
        start = rng.choice(changes) - rng.randrange(0, 4 * H)
        end = start + rng.randrange(0, 8 * H)
        assert business_seconds(start, end, business) == reference(start, end, business, 1), (business, start, end)


def to_time(seconds: int) -> time:
    return time(seconds // H, seconds % H // 60, seconds % 60)


# --- CarePolicy --------------------------------------------------------------------------------------


def test_default_policy() -> None:
    assert DEFAULT_POLICY == CarePolicy() == CarePolicy.from_mapping(None) == CarePolicy.from_mapping({})
    assert DEFAULT_POLICY.sla_windows == (3600, 86400)
    assert DEFAULT_POLICY.labels == ("1h", "24h")
    assert DEFAULT_POLICY.business_hours is None
    assert DEFAULT_POLICY.elapsed(100, 4000) == 3900
    assert DEFAULT_POLICY.elapsed(4000, 100) == 0


def test_policy_from_mapping() -> None:
    policy = CarePolicy.from_mapping(
        {
            "sla": ["24h", "30m", 7200],
            "business_hours": {"timezone": "Europe/Paris", "days": "mon-fri", "hours": "09:00-18:00"},
        }
    )
    assert policy.sla_windows == (1800, 7200, 86400)
    assert policy.labels == ("30m", "2h", "24h")
    assert policy.business_hours == PARIS
    friday, monday = at("Europe/Paris", 2023, 11, 17, 20), at("Europe/Paris", 2023, 11, 20, 9, 30)
    assert policy.elapsed(friday, monday) == 1800
    assert CarePolicy.from_mapping({"sla": ["1h"], "business_hours": None}) == CarePolicy((3600,))
    assert CarePolicy((86400, 3600)).sla_windows == (3600, 86400)
    assert len(CarePolicy.from_mapping({"sla": [f"{n}h" for n in range(1, 9)]}).sla_windows) == 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sla": ["1h"], "hours": "9-5", "zone": "UTC"}, "unknown keys hours, zone"),
        ({"sla": []}, "sla: 1 to 8 windows"),
        ({"sla": [f"{n}h" for n in range(1, 10)]}, "sla: 1 to 8 windows"),
        ({"sla": ["1h", "60m"]}, "sla: window 1h is given more than once"),
        ({"sla": "1h"}, "sla: expected a list"),
        ({"sla": ["1h", "0s"]}, "sla: duration"),
        ({"sla": ["1h", "forever"]}, "sla: unreadable duration 'forever'"),
        ({"sla": ["31d"]}, "sla: duration"),
        ({"business_hours": {"timezone": "Nowhere", "days": "mon", "hours": "09:00-18:00"}}, "business_hours.timezone"),
        ({"business_hours": "9-5"}, "business_hours"),
        (["1h"], "care policy"),
    ],
)
def test_policy_errors(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CarePolicy.from_mapping(data)  # type: ignore[arg-type]


def test_policy_constructor_validates() -> None:
    with pytest.raises(ValueError, match="sla"):
        CarePolicy(())
    with pytest.raises(ValueError, match="sla"):
        CarePolicy((0,))
    with pytest.raises(ValueError, match="more than once"):
        CarePolicy((3600, 3600))
    with pytest.raises(ValueError, match="business_hours"):
        CarePolicy(business_hours="9-5")  # type: ignore[arg-type]
