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
    warehouse.command(
        "INSERT INTO interactions (event_id, platform, brand, author_id, direction, kind, text, created_at, "
        "conversation_id, customer_id, deleted, needs_reply, ingested_at, _version) "
        f"SELECT concat('x:', toString(i)), 'x', concat('brand_', toString(i % {brands})), "
        f"concat('c', toString(cityHash64(i, 4) % 1000000)), 'inbound', 'mention', 'where is my order?', {at}, "
        f"concat('x:', toString(intDiv(i, {3 * brands}) * {3 * brands} + i % {brands})), "
        "concat('c', toString(cityHash64(i, 4) % 1000000)), 0, toUInt8(cityHash64(i, 5) % 10 < 7), now(), 1 "
        f"FROM (SELECT number AS i FROM numbers({inbound}))"
    )
    warehouse.command(
        "INSERT INTO interactions (event_id, platform, brand, author_id, direction, kind, text, created_at, "
        "parent_id, conversation_id, customer_id, deleted, needs_reply, ingested_at, _version) "
        f"SELECT concat('x:r', toString(i)), 'x', concat('brand_', toString(i % {brands})), "
        f"concat('brand_', toString(i % {brands})), 'outbound', 'reply', 'sorry, DM us', "
        f"toDateTime(toUInt32({at}) + {delay}, 'UTC'), concat('x:', toString(i)), "
        f"concat('x:', toString(intDiv(i, {3 * brands}) * {3 * brands} + i % {brands})), "
        "concat('c', toString(cityHash64(i, 4) % 1000000)), 0, 0, now(), 1 "
        f"FROM (SELECT number AS i FROM numbers({replies}))"
    )
    warehouse.command(
        "INSERT INTO responses (inbound_id, reply_id, brand, platform, conversation_id, customer_id, inbound_at, "
        "replied_at, response_seconds, ingested_at, _version) "
        f"SELECT concat('x:', toString(i)), concat('x:r', toString(i)), concat('brand_', toString(i % {brands})), "
        f"'x', concat('x:', toString(intDiv(i, {3 * brands}) * {3 * brands} + i % {brands})), "
        f"concat('c', toString(cityHash64(i, 4) % 1000000)), {at}, toDateTime(toUInt32({at}) + {delay}, 'UTC'), "
        f"{delay}, now(), 1 FROM (SELECT number AS i FROM numbers({replies}))"
    )
    for window in (3600, 86400):
        warehouse.command(
            "INSERT INTO sla_breaches (inbound_id, brand, platform, customer_id, inbound_at, deadline, window_s, "
            "sentiment, breached_at, _version, _retracted) "
            f"SELECT concat('x:', toString(i)), concat('brand_', toString(i % {brands})), 'x', "
            f"concat('c', toString(cityHash64(i, 4) % 1000000)), {at}, toDateTime(toUInt32({at}) + {window}, 'UTC'), "
            f"{window}, NULL, toDateTime(toUInt32({at}) + {window}, 'UTC'), 1, 0 "
            f"FROM (SELECT number AS i FROM numbers({inbound})) "
            f"WHERE cityHash64(i, 5) % 10 < 7 AND (i >= {replies} OR {delay} > {window})"
        )


def timed(fn: Callable[[], Any], runs: int = 5) -> tuple[Any, float, float]:
    """(result, best seconds, median seconds) of ``runs`` calls."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, min(times), statistics.median(times)


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
        warehouse.command("OPTIMIZE TABLE care_hourly FINAL")
        built = time.perf_counter() - started
        rows = warehouse.scalar("SELECT count() FROM care_hourly")
        stored = warehouse.scalar("SELECT count() FROM interactions")
        click.echo(f"{stored:,} interactions, {brands} brands, {days} days on chdb ({directory})")
        click.echo(f"generated in {generated:.1f}s; care_hourly built from FINAL rows in {built:.1f}s: {rows:,} rows")
        week_start = START + timedelta(days=days // 2)
        cases = [
            ("all brands, whole range", care.MetricsQuery(), ALL_TARGET),
            (
                "one brand, one week",
                care.MetricsQuery(start=week_start, end=week_start + timedelta(days=7), brands=("brand_7",)),
                ONE_TARGET,
            ),
        ]
        click.echo(f"{'rapport metrics':<26}{'care_hourly':>14}{'target':>9}{'from FINAL rows':>18}{'ratio':>8}  same")
        for name, query, target in cases:
            aggregated, best, median = timed(partial(care.metrics, warehouse, query))
            direct, direct_best, _ = timed(partial(care.metrics, warehouse, query, direct=True), runs=2)
            ok = "✓" if best <= target else "✗"
            click.echo(
                f"{name:<26}{best:>9.3f}s {ok}  ≤{target:>4}s{direct_best:>15.3f}s {direct_best / best:>7.0f}×  "
                f"{'yes' if aggregated == direct else 'NO'}   (median of 5: {median:.3f}s)"
            )
    finally:
        warehouse.close()
