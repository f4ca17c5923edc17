"""The care metrics: who is answered, how fast, within which SLA, and who is still waiting.

Definitions (written out with examples in docs/metrics.md; the names are the figures of ``rapport metrics``):

- an **inbound message** is an interaction with ``direction = 'inbound'``, a conversational kind (post, comment,
  reply, mention, direct_message) and ``deleted = 0``; it is **answered** when ``responses`` has a row for it
  (its brand's first direct reply). Every figure of a message belongs to the time of the message
  (``created_at``): the range ``[from, to)`` selects messages, and their replies and breaches come with them.
- ``inbound_messages``, ``answered_messages``, ``reply_rate`` = answered ÷ inbound;
- ``first_response_median_s``, ``first_response_p90_s``: exact quantiles of ``response_seconds`` over the answered
  messages, linear interpolation between closest ranks (``quantileExactInclusive``; Python's
  ``statistics.quantiles(…, n=10, method='inclusive')``); NULL with no answered message;
- ``answered_within_<W>`` (answered messages with ``response_seconds ≤ W``) and ``answered_within_<W>_rate``
  (÷ inbound messages) for each SLA window W of the brand (default 1 h and 24 h: ``_1h``, ``_24h``);
- ``first_response_business_median_s``: the median of ``response_business_seconds`` (brands with business hours
  only; NULL otherwise);
- ``needs_reply_messages``, ``needs_reply_answered``, ``needs_reply_rate`` = needs_reply_answered ÷
  needs_reply_messages;
- ``conversations`` = distinct ``conversation_id`` of the inbound messages, ``conversations_answered`` = those with
  an answered inbound message, ``conversation_reply_rate``;
- ``unanswered_messages`` = inbound − answered, ``needs_reply_unanswered`` = needs_reply − needs_reply_answered;
- ``sla_breaches_<W>``: rows of ``sla_breaches FINAL`` for window W whose message is in the range.

A rate whose denominator is 0 is NULL, not 0.

Where the numbers come from. ``care_hourly`` holds, per (brand, platform, hour), everything these figures need
(counts, the response times as arrays for exact quantiles, the conversations' 64-bit hashes, breaches per
window). Conversations are ``sipHash64(conversation_id)`` rather than the strings, at the cost of a collision
chance of about 3 in a million for 10 million conversations (a collision would count two conversations as one);
they are kept twice, as ``uniqExact`` states (the first version; ~30× faster to merge than states of the
strings) and as sorted arrays, which ``uniqExactArray`` reads 3.5× faster still over 10M interactions (0.18 s →
0.05 s): the engagement figures needed that time.

The worker's sink marks every hour it stored an event of as dirty (``care_dirty``, :func:`mark_dirty`) before it
acknowledges the batch to Kafka, and **recomputes** the dirty hours from the ``FINAL`` rows every
``RAPPORT_AGGREGATE_SECONDS`` (:func:`refresh_pending`): one recomputation serves every batch that touched an
hour meanwhile, and a mark outlives a crash. A recomputation from ``FINAL`` is a pure function of the stored
events, so a redelivered batch, a replayed file, a worker killed half-way (before the mark the batch comes again;
after it, the next run recomputes the marked hours), an edit or a removal all leave ``care_hourly`` equal to a
computation from ``FINAL`` rows; counters kept by increments (materialized views, ``SummingMergeTree``) would
count a redelivery twice and could not take back a removed message. :func:`figures_sql` reads ``care_hourly``;
:func:`direct_sql` computes the same figures from the rows themselves (the tests and ``rapport bench metrics``
compare the two).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.contract import CARE_DIRTY
from streams.metrics import engagement
from streams.metrics.shared import CONVERSATIONAL_SQL, rate, seconds
from streams.processing.care import DEFAULT_POLICY, CarePolicy, window_label
from streams.settings import Settings
from streams.sinks.warehouse import Warehouse, in_list, string_literal

Grouping = Literal["brand", "brand,platform", "brand,day", "brand,hour", "brand,tier", "brand,platform,tier"]
GROUPINGS: tuple[Grouping, ...] = (
    "brand",
    "brand,platform",
    "brand,day",
    "brand,hour",
    "brand,tier",
    "brand,platform,tier",
)

#: A bucket of care_hourly: (brand, platform, Unix second of the start of the hour).
Bucket = tuple[str, str, int]


def facts_sql(interactions_where: str, responses_where: str, breaches_where: str) -> str:
    """One row per inbound message (the definition above) with what the figures need of it: its brand, platform,
    time, conversation and needs_reply, whether it was answered and how fast, and its SLA breaches' windows."""
    return f"""
SELECT i.brand AS brand, i.platform AS platform, i.created_at AS created_at, i.conversation_id AS conversation_id,
       i.needs_reply AS needs_reply, toUInt8(r.inbound_id != '') AS answered, r.response_seconds AS response_seconds,
       r.response_business_seconds AS response_business_seconds, b.windows AS breach_windows
FROM (SELECT brand, platform, event_id, created_at, conversation_id, needs_reply FROM interactions FINAL
      WHERE direction = 'inbound' AND kind IN {CONVERSATIONAL_SQL} AND deleted = 0 AND {interactions_where}) AS i
LEFT JOIN (SELECT brand, inbound_id, response_seconds, response_business_seconds FROM responses FINAL
           WHERE {responses_where}) AS r ON r.brand = i.brand AND r.inbound_id = i.event_id
LEFT JOIN (SELECT brand, inbound_id, groupArray(window_s) AS windows FROM sla_breaches FINAL
           WHERE {breaches_where} GROUP BY brand, inbound_id) AS b ON b.brand = i.brand AND b.inbound_id = i.event_id
SETTINGS join_use_nulls = 0"""


# --- the aggregate: recomputed per hour from FINAL rows ---------------------------------------------------


def buckets_of(rows: Any, time_column: str) -> set[Bucket]:
    """The (brand, platform, hour) of every row of an Arrow table or a list of mappings."""
    if isinstance(rows, Sequence):
        return {(r["brand"], r["platform"], int(r[time_column]) // 3600 * 3600) for r in rows}
    import pyarrow as pa
    import pyarrow.compute as pc

    if rows.num_rows == 0:
        return set()
    hours = pc.multiply(pc.divide(rows.column(time_column).cast(pa.int64()), 3600), 3600)
    keys = pa.table({"b": rows.column("brand"), "p": rows.column("platform"), "h": hours}).group_by(["b", "p", "h"])
    unique = keys.aggregate([]).to_pydict()
    return set(zip(unique["b"], unique["p"], unique["h"], strict=True))


def refresh_sql(buckets: Sequence[Bucket] | None) -> str:
    """Recompute the ``care_hourly`` rows of ``buckets`` from ``FINAL`` rows (a bucket left without messages gets
    a row of zeros, which replaces what it held). ``None``: every bucket (those with messages, and those
    ``care_hourly`` holds)."""
    if buckets is None:
        facts = facts_sql("1", "1", "1")
        zeros = "SELECT brand AS b, platform AS p, toUnixTimestamp(hour) AS h FROM care_hourly"
    else:
        brands = in_list(b for b, _, _ in buckets)
        start, end = min(h for _, _, h in buckets), max(h for _, _, h in buckets) + 3600
        keys = ", ".join(f"({string_literal(b)}, {string_literal(p)}, {h})" for b, p, h in buckets)
        in_range = f"brand IN {brands} AND inbound_at >= {start} AND inbound_at < {end}"
        facts = facts_sql(
            f"brand IN {brands} AND created_at >= {start} AND created_at < {end} AND "
            f"(brand, platform, toUnixTimestamp(toStartOfHour(created_at))) IN ({keys})",
            in_range,
            in_range,
        )
        zeros = f"SELECT k.1 AS b, k.2 AS p, k.3 AS h FROM (SELECT arrayJoin([{keys}]) AS k)"
    return f"""
INSERT INTO care_hourly
SELECT brand, platform, hour,
       countIf(present) AS inbound_messages,
       countIf(present AND answered = 1) AS answered_messages,
       countIf(present AND needs_reply = 1) AS needs_reply_messages,
       countIf(present AND needs_reply = 1 AND answered = 1) AS needs_reply_answered,
       arraySort(groupArrayIf(response_seconds, present AND answered = 1)) AS response_seconds,
       arraySort(groupArrayIf(assumeNotNull(response_business_seconds),
                              present AND answered = 1 AND response_business_seconds IS NOT NULL)),
       uniqExactStateIf(sipHash64(conversation_id), present),
       uniqExactStateIf(sipHash64(conversation_id), present AND answered = 1),
       arraySort(groupUniqArrayIf(sipHash64(conversation_id), present)),
       arraySort(groupUniqArrayIf(sipHash64(conversation_id), present AND answered = 1)),
       sumMap(mapFromArrays(breach_windows, arrayMap(w -> toUInt64(1), breach_windows))),
       toUInt64(toUnixTimestamp64Nano(now64(9)))
FROM (
    SELECT brand, platform, toStartOfHour(created_at) AS hour, toUInt8(1) AS present, conversation_id, needs_reply,
           answered, response_seconds, response_business_seconds, breach_windows
    FROM ({facts})
    UNION ALL
    SELECT b, p, toDateTime(h, 'UTC'), toUInt8(0), '', toUInt8(0), toUInt8(0), toUInt32(0),
           CAST(NULL, 'Nullable(UInt32)'), CAST([], 'Array(UInt32)')
    FROM ({zeros})
)
GROUP BY brand, platform, hour"""


def refresh(warehouse: Warehouse, buckets: Iterable[Bucket], chunk: int = 2000) -> int:
    """Recompute the given buckets of ``care_hourly`` (``chunk`` buckets per statement). Returns how many."""
    ordered = sorted(set(buckets))
    for start in range(0, len(ordered), chunk):
        warehouse.command(refresh_sql(ordered[start : start + chunk]))
    return len(ordered)


def _dirty_rows(buckets: Iterable[Bucket], version: int, done: bool) -> list[dict[str, Any]]:
    """``care_dirty`` rows: marks (``done=False``) or their clearing (``done=True``), at ``version`` (ns)."""
    return [{"brand": b, "platform": p, "hour": h, "_version": version, "_done": int(done)} for b, p, h in buckets]


def mark_dirty(warehouse: Warehouse, buckets: Iterable[Bucket]) -> None:
    """Record that these hours changed (before their batch is acknowledged): ``refresh_pending`` recomputes them,
    now or after a crash, so the aggregate never misses a stored event."""
    ordered = sorted(set(buckets))
    if not ordered:
        return
    warehouse.insert(CARE_DIRTY, _dirty_rows(ordered, time.time_ns(), done=False))


def refresh_pending(warehouse: Warehouse, canned: engagement.CannedCache | None = None) -> int:
    """Recompute every hour marked dirty, then clear the marks made before it started (a mark made meanwhile has a
    later version and stays). Returns how many hours were recomputed."""
    started = time.time_ns()
    pending = [
        (str(b), str(p), int(h))
        for b, p, h in warehouse.rows("SELECT brand, platform, toUnixTimestamp(hour) FROM care_dirty FINAL")
    ]
    if pending:
        refresh(warehouse, pending)
        engagement.refresh(warehouse, pending, canned)
        warehouse.insert(CARE_DIRTY, _dirty_rows(pending, started, done=True))
    return len(pending)


def refresh_all(warehouse: Warehouse) -> None:
    """Recompute every bucket (``rapport metrics --rebuild``; after a migration adds a figure), the engagement
    aggregates too."""
    warehouse.command(refresh_sql(None))
    engagement.refresh_all(warehouse)


def brand_policies(settings: Settings) -> Mapping[str, CarePolicy]:
    """The brands' care policies that name and fill the figures: the brands file of ``RAPPORT_BRANDS_FILE``, else
    the ``brands.yaml`` that ``rapport up`` wrote into the data directory, else none (the default policy)."""
    from streams.processing.platforms import BrandDirectory

    path = settings.brands_file or settings.data_dir / "brands.yaml"
    return BrandDirectory.from_file(path).policies if settings.brands_file or path.exists() else {}


# --- reading the figures --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsQuery:
    """What ``rapport metrics`` asks: a range ``[start, end)`` of whole UTC hours (None: unbounded), brands and
    platforms (empty: all), a grouping."""

    start: datetime | None = None
    end: datetime | None = None
    brands: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    by: Grouping = "brand"
    policies: Mapping[str, CarePolicy] = field(default_factory=dict)

    def policy(self, brand: str) -> CarePolicy:
        return self.policies.get(brand, DEFAULT_POLICY)

    def windows(self, brands: Iterable[str]) -> list[int]:
        return sorted({w for b in brands for w in self.policy(b).sla_windows} | set(DEFAULT_POLICY.sla_windows))

    def where(self, time_column: str) -> str:
        parts = ["1"]
        if self.start is not None:
            parts.append(f"{time_column} >= {int(self.start.timestamp())}")
        if self.end is not None:
            parts.append(f"{time_column} < {int(self.end.timestamp())}")
        if self.brands:
            parts.append(f"brand IN {in_list(self.brands)}")
        if self.platforms:
            parts.append(f"platform IN {in_list(self.platforms)}")
        return " AND ".join(parts)


def _keys(by: Grouping, hour: str) -> list[tuple[str, str]]:
    """(output name, SQL expression) of the group keys; ``hour`` is the expression of the message's hour. (A tier
    grouping's tier is a column of ``engagement_hourly``, added by :mod:`.engagement`.)"""
    keys = [("brand", "brand")]
    if by in ("brand,platform", "brand,platform,tier"):
        keys.append(("platform", "platform"))
    elif by == "brand,day":
        keys.append(("day", f"toUnixTimestamp(toStartOfDay({hour}))"))
    elif by == "brand,hour":
        keys.append(("hour", f"toUnixTimestamp({hour})"))
    return keys


def figures_sql(query: MetricsQuery, windows: Sequence[int]) -> str:
    """The figures' raw parts per group, read from ``care_hourly`` (never from the rows)."""
    keys = _keys(query.by, "hour")
    within = "".join(f", sum(arrayCount(x -> x <= {w}, response_seconds))" for w in windows)
    return f"""
SELECT {", ".join(f"{expr} AS k_{name}" for name, expr in keys)},
       sum(inbound_messages), sum(answered_messages), sum(needs_reply_messages), sum(needs_reply_answered),
       quantilesExactInclusiveArray(0.5, 0.9)(response_seconds),
       quantileExactInclusiveArray(0.5)(response_business_seconds), sum(length(response_business_seconds)),
       uniqExactArray(conversation_hashes), uniqExactArray(answered_conversation_hashes),
       sumMap(sla_breaches){within}
FROM care_hourly FINAL
WHERE {query.where("hour")}
GROUP BY {", ".join(f"k_{name}" for name, _ in keys)}
HAVING sum(inbound_messages) > 0
ORDER BY {", ".join(f"k_{name}" for name, _ in keys)}"""


def direct_sql(query: MetricsQuery, windows: Sequence[int]) -> str:
    """The same parts as :func:`figures_sql`, computed from ``interactions FINAL``, ``responses FINAL`` and
    ``sla_breaches FINAL`` row by row: the reference that the aggregate must equal."""
    keys = _keys(query.by, "toStartOfHour(created_at)")
    within = "".join(f", countIf(answered = 1 AND response_seconds <= {w})" for w in windows)
    facts = facts_sql(query.where("created_at"), "1", "1")
    return f"""
SELECT {", ".join(f"{expr} AS k_{name}" for name, expr in keys)},
       count(), countIf(answered = 1), countIf(needs_reply = 1), countIf(needs_reply = 1 AND answered = 1),
       quantilesExactInclusiveIf(0.5, 0.9)(response_seconds, answered = 1),
       quantileExactInclusiveIf(0.5)(assumeNotNull(response_business_seconds),
                                     answered = 1 AND response_business_seconds IS NOT NULL),
       countIf(answered = 1 AND response_business_seconds IS NOT NULL),
       uniqExact(conversation_id), uniqExactIf(conversation_id, answered = 1),
       sumMap(mapFromArrays(breach_windows, arrayMap(w -> toUInt64(1), breach_windows))){within}
FROM ({facts})
GROUP BY {", ".join(f"k_{name}" for name, _ in keys)}
ORDER BY {", ".join(f"k_{name}" for name, _ in keys)}"""


def _key_value(name: str, value: Any) -> Any:
    if name == "day":
        return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%d")
    if name == "hour":
        return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:00:00Z")
    return str(value)


def by_tier(by: Grouping) -> bool:
    return by.endswith(",tier")


FigureSet = Literal["all", "care", "engagement", "headline"]
FIGURE_SETS: tuple[FigureSet, ...] = ("all", "care", "engagement", "headline")


def column_names(by: Grouping, windows: Sequence[int], figure_set: FigureSet = "all") -> list[str]:
    """The group keys and the figures, as ``json`` and ``csv`` name them (``figure_set``: all of them, the care
    or the engagement figures, or the short engagement-versus-reach table)."""
    keys = [name for name, _ in _keys(by, "hour")]
    if by_tier(by):
        return [*keys, "tier", *engagement.TIER_FIGURES]
    chosen = {
        "all": figure_names(windows) + list(engagement.FIGURES),
        "care": figure_names(windows),
        "engagement": list(engagement.FIGURES),
        "headline": list(engagement.HEADLINE),
    }[figure_set]
    return keys + chosen


def select(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """``rows`` with only ``columns``, in that order."""
    return [{name: row.get(name) for name in columns} for row in rows]


def figure_names(windows: Sequence[int]) -> list[str]:
    """The figures, in output order, for SLA windows ``windows`` (the defaults give the issue's names)."""
    labels = [window_label(w) for w in windows]
    return [
        "inbound_messages",
        "answered_messages",
        "reply_rate",
        "first_response_median_s",
        "first_response_p90_s",
        *[f"answered_within_{label}" for label in labels],
        *[f"answered_within_{label}_rate" for label in labels],
        "first_response_business_median_s",
        "needs_reply_messages",
        "needs_reply_answered",
        "needs_reply_rate",
        "conversations",
        "conversations_answered",
        "conversation_reply_rate",
        "unanswered_messages",
        "needs_reply_unanswered",
        *[f"sla_breaches_{label}" for label in labels],
    ]


def to_figures(rows: Sequence[Sequence[Any]], query: MetricsQuery, windows: Sequence[int]) -> list[dict[str, Any]]:
    """Rows of :func:`figures_sql` or :func:`direct_sql` → one dict per group: keys, then the figures. A window
    that is not one of the group's brand's SLA windows is NULL for it."""
    keys = [name for name, _ in _keys(query.by, "hour")]
    out = []
    for row in rows:
        group = {name: _key_value(name, value) for name, value in zip(keys, row, strict=False)}
        (inbound, answered, needs, needs_answered, quantiles, business_median, business_answered, convs, convs_answered,
         breaches, *within) = row[len(keys):]  # fmt: skip
        inbound, answered, needs, needs_answered = int(inbound), int(answered), int(needs), int(needs_answered)
        convs, convs_answered = int(convs), int(convs_answered)
        breach_counts = {int(w): int(n) for w, n in dict(breaches or {}).items()}
        brand_windows = set(query.policy(group["brand"]).sla_windows)
        has_business = query.policy(group["brand"]).business_hours is not None
        figures: dict[str, Any] = {
            "inbound_messages": inbound,
            "answered_messages": answered,
            "reply_rate": rate(answered, inbound),
            "first_response_median_s": seconds(quantiles[0]) if answered else None,
            "first_response_p90_s": seconds(quantiles[1]) if answered else None,
        }
        for w, count in zip(windows, within, strict=True):
            figures[f"answered_within_{window_label(w)}"] = int(count) if w in brand_windows else None
        for w, count in zip(windows, within, strict=True):
            within_rate = rate(int(count), inbound) if w in brand_windows else None
            figures[f"answered_within_{window_label(w)}_rate"] = within_rate
        figures["first_response_business_median_s"] = (
            seconds(business_median) if has_business and int(business_answered) else None
        )
        figures |= {
            "needs_reply_messages": needs,
            "needs_reply_answered": needs_answered,
            "needs_reply_rate": rate(needs_answered, needs),
            "conversations": convs,
            "conversations_answered": convs_answered,
            "conversation_reply_rate": rate(convs_answered, convs),
            "unanswered_messages": inbound - answered,
            "needs_reply_unanswered": needs - needs_answered,
        }
        for w in windows:
            figures[f"sla_breaches_{window_label(w)}"] = breach_counts.get(w, 0) if w in brand_windows else None
        out.append(group | figures)
    return out


def brands_in(warehouse: Warehouse, query: MetricsQuery) -> list[str]:
    if query.brands:
        return list(query.brands)
    return [
        str(b)
        for (b,) in warehouse.rows(
            "SELECT DISTINCT brand FROM care_hourly UNION DISTINCT SELECT DISTINCT brand FROM reach_hourly ORDER BY 1"
        )
    ]


def metrics(warehouse: Warehouse, query: MetricsQuery, direct: bool = False) -> list[dict[str, Any]]:
    """The care and engagement figures per group, from the aggregates (or, ``direct``, from the rows: the
    reference). Hours still waiting for their recomputation are read as they stand (at most
    ``RAPPORT_AGGREGATE_SECONDS`` behind, when a worker runs); ``refresh_pending`` first makes them current.
    A tier grouping (``brand,tier``, ``brand,platform,tier``) gives the equity figures per follower tier."""

    def keys_of(hour: str) -> list[tuple[str, str]]:
        return _keys(query.by, hour)

    names = [name for name, _ in _keys(query.by, "hour")]

    def group(key: Sequence[Any]) -> dict[str, Any]:
        return {name: _key_value(name, value) for name, value in zip(names, key, strict=True)}

    if by_tier(query.by):
        return [group(key) | {"tier": tier} | figures for key, tier, figures in engagement.tier_rows(
            warehouse, query, keys_of, direct)]  # fmt: skip
    windows = query.windows(brands_in(warehouse, query))
    sql = direct_sql(query, windows) if direct else figures_sql(query, windows)
    care_rows = warehouse.rows(sql)
    more = engagement.figures(warehouse, query, keys_of, direct)
    found = {tuple(row[: len(names)]) for row in care_rows}
    quiet = [(*key, *_NO_MESSAGES, *[0] * len(windows)) for key in more if key not in found]  # outbound only
    rows = sorted([*care_rows, *quiet], key=lambda row: tuple(str(v) for v in row[: len(names)]))
    by_key = {tuple(str(v) for v in key): figures for key, figures in more.items()}
    empty = dict.fromkeys(engagement.FIGURES)
    return [
        figures | by_key.get(tuple(str(v) for v in row[: len(names)]), empty)
        for row, figures in zip(rows, to_figures(rows, query, windows), strict=True)
    ]


#: The parts of a care row for a group without inbound messages (before the per-window counts).
_NO_MESSAGES: tuple[Any, ...] = (0, 0, 0, 0, [float("nan"), float("nan")], float("nan"), 0, 0, 0, {})
