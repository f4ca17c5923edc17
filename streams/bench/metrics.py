"""``rapport bench metrics``: ``rapport metrics`` over generated data on chdb, beside the same figures computed
from the rows.

Targets (issue 13): over 10,000,000 interactions of 50 brands in one year, ≤ 0.5 s for all brands over the whole
year and ≤ 0.1 s for one brand over one week, read from ``care_hourly``. The figures are printed, never asserted.

The data is generated inside ClickHouse (``numbers()``), so the benchmark measures the warehouse, not a Python
loop: 60 % of the interactions are inbound messages of brand ``i mod B`` at a random second of the year, three
in a row of a brand share a conversation, 70 % need a reply; the other 40 % are brand replies, each answering
one inbound message after a random delay (mostly minutes, some hours, a few days); a message that needs a reply
and has no reply within a window gets its breach row. The aggregate is then built by the same recomputation
the worker runs (``care.refresh_all``), and both queries are checked to give the same figures.

For the engagement figures (issue 14, same targets with them included) the messages also have a sentiment
(uniform in [−1, 1], 4 decimals) and a follower count (log-scaled, most under 1,000), customers belong to one
brand (20,000 per brand, each writing about 6 times a year: a customer's returns are what "returning" measures;
the first version drew customer ids independently of the brand, which made nearly every (brand, customer) pair
unique), replies come from 40 templates with a varying word, and 1 % of the interactions are brand posts with
impressions, likes, shares and replies.

``rapport bench metrics`` also prints the canned-reply detection's cost per reply for one brand with 100,000
replies in its 30-day window (:func:`canned_cost`): the whole window at once (``rapport metrics --rebuild``) and
the last hour's replies against the window (what a running worker recomputes).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import click

from schemas.migrate import migrate
from streams.metrics import care
from streams.sinks.warehouse import Warehouse, connect

START = datetime(2025, 1, 1, tzinfo=UTC)
ALL_TARGET, ONE_TARGET = 0.5, 0.1


def generate(warehouse: Warehouse, interactions: int, brands: int, days: int) -> None:
    inbound = interactions * 6 // 10
    replies = interactions - inbound
    start = int(START.timestamp())
    span = days * 86400
    delay = (
        "multiIf(cityHash64(i, 2) % 10 < 7, cityHash64(i, 3) % 3600, cityHash64(i, 2) % 10 < 9, "
        "cityHash64(i, 3) % 43200, cityHash64(i, 3) % 259200)"
    )
    at = f"toDateTime({start} + cityHash64(i, 1) % {span}, 'UTC')"
    customer = f"concat('c', toString((cityHash64(i, 4) % 20000) * {brands} + i % {brands}))"
    warehouse.command(
        "INSERT INTO interactions (event_id, platform, brand, author_id, direction, kind, text, created_at, "
        "conversation_id, customer_id, deleted, needs_reply, ingested_at, _version, sentiment, author_followers) "
        f"SELECT concat('x:', toString(i)), 'x', concat('brand_', toString(i % {brands})), "
        f"{customer}, 'inbound', 'mention', 'where is my order?', {at}, "
        f"concat('x:', toString(intDiv(i, {3 * brands}) * {3 * brands} + i % {brands})), "
        f"{customer}, 0, toUInt8(cityHash64(i, 5) % 10 < 7), now(), 1, "
        "toFloat32((toInt32(cityHash64(i, 6) % 20001) - 10000) / 10000), "
        "toUInt64(floor(pow(10, pow((cityHash64(i, 7) % 1000) / 1000, 2) * 6))) "
        f"FROM (SELECT number AS i FROM numbers({inbound}))"
    )
    warehouse.command(
        "INSERT INTO interactions (event_id, platform, brand, author_id, direction, kind, text, created_at, "
        "parent_id, conversation_id, customer_id, deleted, needs_reply, ingested_at, _version) "
        f"SELECT concat('x:r', toString(i)), 'x', concat('brand_', toString(i % {brands})), "
        f"concat('brand_', toString(i % {brands})), 'outbound', 'reply', {TEMPLATE}, "
        f"toDateTime(toUInt32({at}) + {delay}, 'UTC'), concat('x:', toString(i)), "
        f"concat('x:', toString(intDiv(i, {3 * brands}) * {3 * brands} + i % {brands})), "
        f"{customer}, 0, 0, now(), 1 "
        f"FROM (SELECT number AS i FROM numbers({replies}))"
    )
    posts = interactions // 100
    warehouse.command(
        "INSERT INTO interactions (event_id, platform, brand, author_id, direction, kind, text, created_at, "
        "conversation_id, deleted, needs_reply, impressions, likes, shares, replies, ingested_at, _version) "
        f"SELECT concat('x:p', toString(i)), 'x', concat('brand_', toString(i % {brands})), "
        f"concat('brand_', toString(i % {brands})), 'outbound', 'post', 'our new offer is here', {at}, "
        "concat('x:p', toString(i)), 0, 0, cityHash64(i, 8) % 100000, cityHash64(i, 9) % 1000, "
        "cityHash64(i, 10) % 100, cityHash64(i, 11) % 50, now(), 1 "
        f"FROM (SELECT number AS i FROM numbers({posts}))"
    )
    warehouse.command(
        "INSERT INTO responses (inbound_id, reply_id, brand, platform, conversation_id, customer_id, inbound_at, "
        "replied_at, response_seconds, ingested_at, _version) "
        f"SELECT concat('x:', toString(i)), concat('x:r', toString(i)), concat('brand_', toString(i % {brands})), "
        f"'x', concat('x:', toString(intDiv(i, {3 * brands}) * {3 * brands} + i % {brands})), "
        f"{customer}, {at}, toDateTime(toUInt32({at}) + {delay}, 'UTC'), "
        f"{delay}, now(), 1 FROM (SELECT number AS i FROM numbers({replies}))"
    )
    for window in (3600, 86400):
        warehouse.command(
            "INSERT INTO sla_breaches (inbound_id, brand, platform, customer_id, inbound_at, deadline, window_s, "
            "sentiment, breached_at, _version, _retracted) "
            f"SELECT concat('x:', toString(i)), concat('brand_', toString(i % {brands})), 'x', "
            f"{customer}, {at}, toDateTime(toUInt32({at}) + {window}, 'UTC'), "
            f"{window}, NULL, toDateTime(toUInt32({at}) + {window}, 'UTC'), 1, 0 "
            f"FROM (SELECT number AS i FROM numbers({inbound})) "
            f"WHERE cityHash64(i, 5) % 10 < 7 AND (i >= {replies} OR {delay} > {window})"
        )


#: A brand reply: one of 40 templates with one varying word (so canned detection has real work).
TEMPLATE = (
    "concat(['sorry to hear that', 'thanks for reaching out', 'we are looking into it', 'please check your inbox',"
    " 'happy to help with that'][cityHash64(i, 12) % 5 + 1], ' ', ['please', 'kindly', 'could you', 'do',"
    " 'can you', 'would you', 'just', 'now'][cityHash64(i, 13) % 8 + 1], ' DM us your order number ',"
    " toString(cityHash64(i, 14) % 100000))"
)


def timed(fn: Callable[[], Any], runs: int = 5) -> tuple[Any, float, float]:
    """(result, best seconds, median seconds) of ``runs`` calls."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, min(times), statistics.median(times)


def canned_cost(replies: int = 100_000) -> None:
    """Print the canned-reply detection's cost per reply for one brand with ``replies`` replies in one 30-day
    window: texts from templates with varying words, plus personal replies (a realistic mix, ~60 % canned)."""
    import random

    from streams.processing import canned

    rng = random.Random(14)
    openers = ["Sorry to hear that", "Thanks for reaching out", "We're looking into it", "Happy to help"]
    asks = ["please DM us your order number", "could you DM us the details", "send us your account email"]
    words = [f"w{n}" for n in range(5000)]
    texts = []
    for n in range(replies):
        if rng.random() < 0.6:
            texts.append(f"@c{n} {rng.choice(openers)}, {rng.choice(asks)} {rng.choice(words)} https://t.co/{n}")
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))))
    window = canned.WINDOW_S - 3600
    rows = [(f"r{n:07d}", n * window // replies, text) for n, text in enumerate(texts)]
    _, best, _ = timed(lambda: canned.canned_flags(rows), runs=3)
    flags = canned.canned_flags(rows)
    rate = sum(flags.values()) / len(flags)
    click.echo(
        f"canned-reply detection, one brand with {replies:,} replies in its 30-day window ({rate:.0%} canned): "
        f"{best:.2f}s, {1e6 * best / replies:.1f} µs a reply (best of 3: the whole window at once, as after an "
        "edit, a removal or a late reply; a running worker judges new replies alone against its kept window)"
    )


def run(interactions: int, brands: int, days: int, workdir: Path | None) -> None:
    directory = workdir or Path(tempfile.mkdtemp(prefix="rapport-bench-metrics-"))
    warehouse = connect(f"chdb://{directory / 'clickhouse'}")
    try:
        migrate(warehouse)
        started = time.perf_counter()
        generate(warehouse, interactions, brands, days)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        care.refresh_all(warehouse)
        for table in ("care_hourly", "engagement_hourly", "reach_hourly", "customer_activity"):
            warehouse.command(f"OPTIMIZE TABLE {table} FINAL")
        built = time.perf_counter() - started
        rows = warehouse.scalar("SELECT count() FROM care_hourly")
        stored = warehouse.scalar("SELECT count() FROM interactions")
        click.echo(f"{stored:,} interactions, {brands} brands, {days} days on chdb ({directory})")
        click.echo(
            f"generated in {generated:.1f}s; the aggregates built from FINAL rows in {built:.1f}s (care_hourly: "
            f"{rows:,} rows)"
        )
        week_start = START + timedelta(days=days // 2)
        cases = [
            ("all brands, whole range", care.MetricsQuery(), ALL_TARGET),
            (
                "one brand, one week",
                care.MetricsQuery(start=week_start, end=week_start + timedelta(days=7), brands=("brand_7",)),
                ONE_TARGET,
            ),
        ]
        click.echo(f"{'rapport metrics':<26}{'aggregates':>14}{'target':>9}{'from FINAL rows':>18}{'ratio':>8}  same")
        for name, query, target in cases:
            aggregated, best, median = timed(partial(care.metrics, warehouse, query))
            direct, direct_best, _ = timed(partial(care.metrics, warehouse, query, direct=True), runs=1)
            ok = "✓" if best <= target else "✗"
            click.echo(
                f"{name:<26}{best:>9.3f}s {ok}  ≤{target:>4}s{direct_best:>15.3f}s {direct_best / best:>7.0f}×  "
                f"{'yes' if aggregated == direct else 'NO'}   (median of 5: {median:.3f}s)"
            )
    finally:
        warehouse.close()
    canned_cost()
