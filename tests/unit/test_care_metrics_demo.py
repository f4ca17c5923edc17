"""The care aggregate against the computation from FINAL rows on the whole demo data set, and the demo brands'
habits as the figures show them.

The demo file goes through the worker's pipeline into the embedded ClickHouse in enriched-message-sized pieces,
with the sink's recomputation after each, as ``rapport up`` does; then every grouping of ``rapport metrics`` must
give the same figures from ``care_hourly`` as from the rows. chdb: one data directory per module (module-scoped).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from schemas.contract import INTERACTIONS, RESPONSES, SLA_BREACHES
from schemas.migrate import migrate
from streams.local.demo import generate
from streams.metrics import care
from streams.processing.pipeline import DictState, process_message
from streams.processing.records import RawMessage
from streams.processing.sentiment import SentimentScorer
from streams.sinks.warehouse import Warehouse, connect
from streams.worker.sink import aggregate_buckets


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    opened = connect(f"chdb://{tmp_path_factory.mktemp('care-demo') / 'ch'}")
    migrate(opened)
    lines, state, score = list(generate()), DictState(), SentimentScorer().score
    for start in range(0, len(lines), 1000):
        result = process_message(
            RawMessage(b"\n".join(lines[start : start + 1000]), "jsonl", "demo"), state, score, time.time()
        )
        batches = [(INTERACTIONS, result.interactions), (RESPONSES, result.responses), (SLA_BREACHES, result.breaches)]
        for table, rows in batches:
            opened.insert(table, rows)
        care.mark_dirty(opened, aggregate_buckets(batches))  # as the sink does
        care.refresh_pending(opened)
    yield opened
    opened.close()


@pytest.mark.parametrize("by", care.GROUPINGS)
def test_the_aggregate_equals_the_rows_for_every_grouping(warehouse: Warehouse, by: care.Grouping) -> None:
    query = care.MetricsQuery(by=by)
    aggregated = care.metrics(warehouse, query)
    assert len(aggregated) >= 6
    assert aggregated == care.metrics(warehouse, query, direct=True)


def test_a_range_of_days_and_one_brand_equals_the_rows(warehouse: Warehouse) -> None:
    from datetime import UTC, datetime

    query = care.MetricsQuery(
        start=datetime(2026, 1, 8, tzinfo=UTC), end=datetime(2026, 1, 13, tzinfo=UTC), brands=("BlackoutEnergy",)
    )
    aggregated = care.metrics(warehouse, query)
    assert [row["brand"] for row in aggregated] == ["BlackoutEnergy"]
    assert aggregated == care.metrics(warehouse, query, direct=True)


def test_the_demo_habits_show_in_the_figures(warehouse: Warehouse) -> None:
    by_brand = {row["brand"]: row for row in care.metrics(warehouse, care.MetricsQuery())}
    fast, vip, outage = by_brand["SwiftBank"], by_brand["VIPGlow"], by_brand["BlackoutEnergy"]
    assert fast["needs_reply_rate"] > 0.85 and fast["first_response_median_s"] < 15 * 60
    assert vip["reply_rate"] < 0.35
    # the outage: BlackoutEnergy's 1 h breaches on its dark day outnumber those of any other day
    days = [r for r in care.metrics(warehouse, care.MetricsQuery(by="brand,day", brands=("BlackoutEnergy",)))]
    worst = max(days, key=lambda r: r["sla_breaches_1h"])
    others = sorted(r["sla_breaches_1h"] for r in days if r is not worst)
    assert worst["sla_breaches_1h"] > 2 * others[len(others) // 2]
    assert outage["sla_breaches_1h"] > fast["sla_breaches_1h"]
