"""Customer-care policy per brand: SLA windows and optional business hours. Pure; no I/O.

A brand's policy (``care:`` in its configuration) reads::

    {"sla": ["1h", "24h"],                       # optional; default 1h and 24h
     "business_hours": {"timezone": "Europe/Paris", "days": "mon-fri", "hours": "09:00-18:00"}}  # optional

SLA windows
-----------
A window is a whole number of seconds, 1 s to 30 days. ``parse_duration`` reads ``"90s"``, ``"30m"``,
``"1h"``, ``"24h"``, ``"2d"``, ``"1h30m"`` (units in the order d, h, m, s, each at most once; upper
case accepted) or an int of seconds. ``window_label`` writes the one label of a value, which figure names
are built from (``answered_within_1h``, ``sla_breaches_24h``), so it is stable and unique per value:

- a multiple of 86,400 above 48 h → days: 259200 → ``"3d"``;
- else a multiple of 3,600 → hours (hence 1 to 48 h, and e.g. 73 h, stay hours): ``"1h"``, ``"24h"``, ``"48h"``;
- else a multiple of 60 → minutes: 1800 → ``"30m"``, 5400 → ``"90m"``;
- else seconds: 45 → ``"45s"``.

Labels are ``[0-9]+[dhms]``; ``parse_duration(window_label(s)) == s`` for every valid ``s``, so two
windows never share a label. ``"2d"`` and ``"48h"`` are the same window (label ``"48h"``).

Business hours
--------------
``BusinessHours(timezone, days, opens, closes)``: the desk is open at an instant exactly when the brand's
local wall clock (IANA zone ``timezone``) shows a weekday in ``days`` (0 = Monday … 6 = Sunday) and a
time of day ``t`` with ``opens <= t < closes``. Opening and closing are wall-clock times on the same day
(no overnight shifts, no ``24:00``; a round-the-clock desk simply has no business hours), whole seconds.

``business_seconds(start, end, hours)`` = the number of seconds of ``[start, end)`` (Unix seconds, UTC)
at which the desk is open; 0 when ``end <= start``. In formula, with ``off(t)`` the zone's UTC offset at
``t`` and ``open(L)`` the open test on the local naive time ``L = t + off(t)``::

    business_seconds(start, end) = #{ t in [start, end) : open(t + off(t)) }
                                 = sum over the pieces [a, b) of [start, end) with a constant offset o
                                       of  F(b + o) - F(a + o)

where ``F(L)`` counts the open seconds of the local naive time line up to ``L`` (whole weeks times the
weekly open seconds, plus the open part of the partial week). Cost: one UTC-offset probe per day of the
span plus ~17 per offset change (a binary search to the second), so O(days), not O(seconds or hours).
The probe steps a day at a time, which assumes a zone's offset never changes and changes back within
24 h (true of all of tzdata: the closest pair, Africa/Freetown 1939, is 4 days apart).

DST and other offset changes follow from the wall-clock definition:

- a local day is 23 or 25 hours long, and opening hours stay wall-clock times: 09:00-18:00 is 9 real
  hours on those days too;
- an opening or closing time that does not exist that day (it falls in the skipped hour) takes effect
  when the clock jumps past it: hours 02:30-10:00 on a day whose clock goes 02:00 → 03:00 open at
  03:00 local (7 h that day);
- wall-clock times that happen twice (the repeated hour) count both times when they are inside the
  hours: hours 01:00-02:30 on Paris's fall-back day (03:00 CEST → 02:00 CET) are open 01:00-02:30 CEST
  and again 02:00-02:30 CET, 2 h in all; hours 09:00-18:00 are never affected in zones that change at
  night. The same rule covers zones whose change is at midnight (the date itself is skipped or repeated).

What it means for the metrics: the clock of a message runs only while the desk is open. A message
received outside business hours starts its clock at the next opening; a reply sent outside hours adds
nothing after the last closing. With Mon-Fri 09:00-18:00, a message received Friday 20:00 and answered
Monday 09:30 has 1,800 business seconds; one received Saturday and answered Sunday has 0.

Examples::

    >>> parse_duration("1h30m"), window_label(5400), window_label(86400), window_label(3 * 86400)
    (5400, '90m', '24h', '3d')
    >>> hours = BusinessHours.from_mapping({"timezone": "Europe/Paris", "days": "mon-fri", "hours": "09:00-18:00"})
    >>> friday_20h = 1_700_247_600   # Fri 2023-11-17 20:00 Paris (19:00 UTC)
    >>> monday_0930 = friday_20h + 2 * 86400 + 13 * 3600 + 1800
    >>> business_seconds(friday_20h, monday_0930, hours)
    1800
    >>> policy = CarePolicy.from_mapping({"sla": ["24h", "1h"], "business_hours": None})
    >>> policy.sla_windows, policy.labels
    ((3600, 86400), ('1h', '24h'))

Configuration errors raise ``ValueError`` naming the field (``sla``, ``business_hours.timezone``,
``business_hours.days``, ``business_hours.hours``, or the unknown keys).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
MAX_WINDOW = 30 * DAY
MAX_WINDOWS = 8

_DURATION = re.compile(r"(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
_UNITS = (DAY, HOUR, MINUTE, 1)
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {**{name[:3]: i for i, name in enumerate(_WEEKDAYS)}, **{name: i for i, name in enumerate(_WEEKDAYS)}}
_MONDAY_NAIVE = 4 * DAY  # 1970-01-05 00:00 (naive) was a Monday: the origin of the local week line


# --- durations ----------------------------------------------------------------------------------------


def parse_duration(text: str | int) -> int:
    """Seconds of ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"``, ``"1h30m"`` or an int of seconds; 0 < result ≤ 30 days."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValueError(f"a duration is a string like '1h' or '30m' or an int of seconds, got {text!r}")
    if isinstance(text, int):
        seconds = text
    else:
        match = _DURATION.fullmatch(text.strip().lower())
        if not text.strip() or match is None:
            raise ValueError(
                f"unreadable duration {text!r}: use a number with units d, h, m, s in that order, "
                "e.g. '90s', '30m', '1h', '24h', '2d', '1h30m'"
            )
        seconds = sum(int(count) * unit for count, unit in zip(match.groups(), _UNITS, strict=True) if count)
    if not 0 < seconds <= MAX_WINDOW:
        raise ValueError(f"duration {text!r} is {seconds} s: it must be more than 0 s and at most 30 days")
    return seconds


def window_label(seconds: int) -> str:
    """The one label of a window: ``"3d"`` above 48 h in whole days, else ``"24h"``, ``"90m"``, ``"45s"``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise ValueError(f"a window is a positive int of seconds, got {seconds!r}")
    if seconds % DAY == 0 and seconds > 2 * DAY:
        return f"{seconds // DAY}d"
    if seconds % HOUR == 0:
        return f"{seconds // HOUR}h"
    if seconds % MINUTE == 0:
        return f"{seconds // MINUTE}m"
    return f"{seconds}s"


# --- business hours -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(key: str) -> ZoneInfo:
    """The IANA zone ``key``; ValueError naming the field when it is not one."""
    if not isinstance(key, str) or key in ("", "localtime"):
        raise ValueError(f"business_hours.timezone: {key!r} is not an IANA time zone (e.g. 'Europe/Paris')")
    try:
        zone = ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        zone = None
    known = _known_zones()
    if zone is None or (known and key not in known):
        raise ValueError(f"business_hours.timezone: unknown IANA time zone {key!r} (e.g. 'Europe/Paris', 'UTC')")
    return zone


def _day_item(item: object) -> set[int]:
    if isinstance(item, int) and not isinstance(item, bool):
        if 0 <= item <= 6:
            return {item}
        raise ValueError(f"business_hours.days: day {item} is out of range (0 = Monday … 6 = Sunday)")
    if not isinstance(item, str):
        raise ValueError(f"business_hours.days: {item!r} is not a day name")
    names = [part.strip().lower() for part in item.split("-")]
    unknown = [name for name in names if name not in _DAY_NAMES]
    if unknown or len(names) > 2:
        raise ValueError(f"business_hours.days: {item!r} is not a day ('mon' … 'sun') or a range ('mon-fri')")
    first, last = _DAY_NAMES[names[0]], _DAY_NAMES[names[-1]]
    return {(first + i) % 7 for i in range((last - first) % 7 + 1)}  # 'fri-mon' wraps over the weekend


def _parse_days(value: object) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``["mon", "tue"]``, ``["sat-sun"]`` or ints 0..6 → weekday numbers."""
    if isinstance(value, str):
        items: Sequence[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, Sequence | set | frozenset):
        items = list(value)
    else:
        raise ValueError(f"business_hours.days: expected 'mon-fri' or a list of days, got {value!r}")
    days: set[int] = set()
    for item in items:
        days |= _day_item(item)
    return frozenset(days)


def _parse_clock(text: str, whole: str) -> time:
    match = _CLOCK.fullmatch(text.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"business_hours.hours: {whole!r} is not 'HH:MM-HH:MM' (e.g. '09:00-18:00')")
    return time(int(match[1]), int(match[2]))


def _second_of_day(value: time) -> int:
    return value.hour * HOUR + value.minute * MINUTE + value.second


@dataclass(frozen=True)
class BusinessHours:
    """Open when the local clock in ``timezone`` shows a day in ``days`` (0 = Monday) and ``opens <= t < closes``."""

    timezone: str
    days: frozenset[int]
    opens: time
    closes: time

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if not isinstance(self.days, frozenset) or any(
            isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in self.days
        ):
            raise ValueError(f"business_hours.days: a frozenset of weekdays 0 (Monday) … 6 (Sunday), got {self.days!r}")
        if not self.days:
            raise ValueError("business_hours.days: at least one day is needed")
        for name in ("opens", "closes"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None or value.microsecond:
                raise ValueError(f"business_hours.hours: {name} must be a naive wall-clock time in whole seconds")
        if not self.opens < self.closes:
            raise ValueError(
                f"business_hours.hours: opening {self.opens:%H:%M} must be before closing {self.closes:%H:%M}"
                " on the same day"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BusinessHours:
        """From ``{"timezone": "Europe/Paris", "days": "mon-fri" | ["mon", …], "hours": "09:00-18:00"}``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"business_hours: expected a mapping with timezone, days, hours; got {data!r}")
        fields = ("timezone", "days", "hours")
        unknown = sorted(str(key) for key in data if key not in fields)
        if unknown:
            raise ValueError(f"business_hours: unknown keys {', '.join(unknown)} (known: {', '.join(fields)})")
        missing = [key for key in fields if key not in data]
        if missing:
            raise ValueError(f"business_hours: missing {', '.join(missing)}")
        hours = data["hours"]
        if not isinstance(hours, str) or hours.count("-") != 1:
            raise ValueError(f"business_hours.hours: {hours!r} is not 'HH:MM-HH:MM' (e.g. '09:00-18:00')")
        opens, closes = (_parse_clock(part, hours) for part in hours.split("-"))
        return cls(timezone=data["timezone"], days=_parse_days(data["days"]), opens=opens, closes=closes)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekly_seconds(self) -> int:
        """Open seconds in a week of 7 × 24 h."""
        return len(self.days) * (_second_of_day(self.closes) - _second_of_day(self.opens))

    def open_before(self, local: int) -> int:
        """F(L): open seconds of the naive local time line from Monday 1970-01-05 00:00 up to ``local`` (signed)."""
        weeks, into_week = divmod(local - _MONDAY_NAIVE, WEEK)
        opens, closes = _second_of_day(self.opens), _second_of_day(self.closes)
        total = weeks * self.weekly_seconds
        for day in self.days:
            start = day * DAY + opens
            if into_week > start:
                total += min(into_week, day * DAY + closes) - start
        return total


def _offset(zone: ZoneInfo, instant: int) -> int:
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset.days * DAY + offset.seconds


def _next_offset_change(zone: ZoneInfo, start: int, end: int, offset: int) -> int:
    """The first instant in (start, end) whose UTC offset is not ``offset``, or ``end``: day probes, then bisection."""
    same = start
    probe = min(start + DAY, end - 1)
    while probe > same and _offset(zone, probe) == offset:
        if probe == end - 1:
            return end
        same = probe
        probe = min(probe + DAY, end - 1)
    if probe <= same:
        return end
    differs = probe
    while differs - same > 1:
        middle = (same + differs) // 2
        if _offset(zone, middle) == offset:
            same = middle
        else:
            differs = middle
    return differs


def business_seconds(start: int, end: int, hours: BusinessHours) -> int:
    """Seconds of ``[start, end)`` (Unix seconds) inside ``hours``, in the brand's local time; 0 when end <= start.

    DST-correct and O(days): see the module docstring for the definition and the skipped/repeated hours.
    """
    if end <= start:
        return 0
    zone = hours.zone
    total = 0
    piece = start
    while piece < end:
        offset = _offset(zone, piece)
        piece_end = _next_offset_change(zone, piece, end, offset)
        total += hours.open_before(piece_end + offset) - hours.open_before(piece + offset)
        piece = piece_end
    return total


# --- the policy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarePolicy:
    """A brand's SLA windows (seconds, sorted, unique, 1..8 of them) and optional business hours."""

    sla_windows: tuple[int, ...] = (HOUR, DAY)
    business_hours: BusinessHours | None = None

    def __post_init__(self) -> None:
        windows = tuple(self.sla_windows) if isinstance(self.sla_windows, list | tuple) else None
        if windows is None:
            raise ValueError(f"sla: expected a list of windows, got {self.sla_windows!r}")
        if not 1 <= len(windows) <= MAX_WINDOWS:
            raise ValueError(f"sla: 1 to {MAX_WINDOWS} windows, got {len(windows)}")
        for window in windows:
            if isinstance(window, bool) or not isinstance(window, int) or not 0 < window <= MAX_WINDOW:
                raise ValueError(f"sla: window {window!r} must be an int of seconds, more than 0 and at most 30 days")
        repeated = sorted({window_label(w) for w in windows if windows.count(w) > 1})
        if repeated:
            raise ValueError(f"sla: window {', '.join(repeated)} is given more than once")
        object.__setattr__(self, "sla_windows", tuple(sorted(windows)))
        if self.business_hours is not None and not isinstance(self.business_hours, BusinessHours):
            raise ValueError(f"business_hours: expected BusinessHours or None, got {self.business_hours!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> CarePolicy:
        """From ``{"sla": ["1h", "24h"], "business_hours": {…}}``; both optional, None → ``DEFAULT_POLICY``."""
        if data is None:
            return DEFAULT_POLICY
        if not isinstance(data, Mapping):
            raise ValueError(f"care policy: expected a mapping with sla and business_hours, got {data!r}")
        unknown = sorted(str(key) for key in data if key not in ("sla", "business_hours"))
        if unknown:
            raise ValueError(f"care policy: unknown keys {', '.join(unknown)} (known: sla, business_hours)")
        sla = data.get("sla")
        if sla is None:
            windows: tuple[int, ...] = DEFAULT_POLICY.sla_windows
        elif isinstance(sla, list | tuple):
            try:
                windows = tuple(parse_duration(item) for item in sla)
            except ValueError as error:
                raise ValueError(f"sla: {error}") from None
        else:
            raise ValueError(f"sla: expected a list like ['1h', '24h'], got {sla!r}")
        raw_hours = data.get("business_hours")
        hours = None if raw_hours is None else BusinessHours.from_mapping(raw_hours)
        return cls(sla_windows=windows, business_hours=hours)

    @property
    def labels(self) -> tuple[str, ...]:
        """``window_label`` of each window, in order: ``("1h", "24h")``."""
        return tuple(window_label(window) for window in self.sla_windows)

    def elapsed(self, start: int, end: int) -> int:
        """Seconds that count against the SLA: business seconds with business hours, else ``max(0, end - start)``."""
        if self.business_hours is None:
            return max(0, end - start)
        return business_seconds(start, end, self.business_hours)


DEFAULT_POLICY = CarePolicy()
