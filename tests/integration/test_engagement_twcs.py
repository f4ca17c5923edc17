"""The engagement figures 2-7 of issue 14 end to end on the real twcs sample: tansu broker + `rapport worker` + chdb.

As for the care metrics (tests/integration/test_care_metrics_twcs.py): the 5,000-row sample is replayed through a
real broker into a real worker; once it has settled and stopped, ``care.metrics(..., MetricsQuery(by="brand"))`` is
read from the aggregate and directly from the ``FINAL`` rows, and both must equal, brand by brand and figure by
figure, the independent computation of tests/support/engagement_reference.py, made straight from the CSV with
``csv.DictReader`` and the issue's definitions: counts exactly, rates and means within 1e-6.

Sentiment: the reference scores each text itself (the product's VADER scorer, stored as Float32), and this test
checks first that the warehouse holds, for every event, the brand, direction, kind, parent, conversation, customer
and sentiment the reference read, so a difference in a figure is a difference in the figure, not in the rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy
import pytest

from streams.metrics import care
from streams.metrics.care import MetricsQuery
from streams.sinks.warehouse import connect
from tests.support import TWCS_DIR
from tests.support.engagement_reference import ENGAGEMENT_FIGURES, engagement_of, read_sample

if TYPE_CHECKING:
    from tests.support.worker import StartWorker

pytestmark = pytest.mark.integration

TWCS = TWCS_DIR / "twcs_head5000.csv"
needs_twcs = pytest.mark.skipif(not TWCS.exists(), reason=f"real sample data not found at {TWCS}")

TOLERANCE = 1e-6  # absolute, for the rates and means


def as_float32(event: tuple[Any, ...]) -> tuple[Any, ...]:
    """An event's columns with its sentiment (the last) as the Float32 it is: chdb hands a Float32 back as the
    shortest decimal of it (0.6369), the reference as its exact value (0.636900007724762); the same Float32."""
    *columns, sentiment = event
    return (*columns, None if sentiment is None else numpy.float32(sentiment))


def agrees(expected: Any, got: Any) -> bool:
    """Counts exactly; rates and means within ``TOLERANCE``; NULL (None) only for NULL."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, int):
        return got == expected
    return math.isclose(got, expected, rel_tol=0.0, abs_tol=TOLERANCE)


def differences(expected: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """Every (brand, figure) where ``rows`` (``care.metrics``' dicts) differ from ``expected``; a figure missing for
    every brand is named once."""
    by_brand = {row["brand"]: row for row in rows}
    missing = [name for name in ENGAGEMENT_FIGURES if all(name not in row for row in rows)]
    out = [f"{name}: missing from every brand's figures" for name in missing]
    for brand, figures in expected.items():
        row = by_brand.get(brand, {})
        for name, want in figures.items():
            if name in missing:
                continue
            if name not in row:
                out.append(f"{brand} {name}: missing")
            elif not agrees(want, row[name]):
                out.append(f"{brand} {name}: expected {want!r}, got {row[name]!r}")
    return out


@needs_twcs
def test_engagement_figures_per_brand_match_an_independent_computation_from_the_csv(worker: StartWorker) -> None:
    sample = read_sample(TWCS)
    expected = engagement_of(sample)
    warehouse = connect(worker().replay_and_stop(TWCS, "twcs", 5000))
    try:
        stored = {
            str(row[0]): tuple(row[1:])
            for row in warehouse.rows(
                "SELECT event_id, brand, direction, kind, parent_id, conversation_id, customer_id, sentiment "
                "FROM interactions FINAL WHERE deleted = 0"
            )
        }
        query = MetricsQuery(by="brand")
        aggregated = care.metrics(warehouse, query)
        direct = care.metrics(warehouse, query, direct=True)
    finally:
        warehouse.close()

    # the warehouse holds the events the reference read, as it read them (dead-lettered rows are in neither)
    read = {
        e.event_id: (
            e.brand,
            "inbound" if e.inbound else "outbound",
            e.kind,
            e.parent,
            e.conversation,
            e.customer,
            e.sentiment,
        )
        for e in sample.events
    }
    assert sorted(stored) == sorted(read)
    otherwise = [(e, stored[e], read[e]) for e in read if as_float32(stored[e]) != as_float32(read[e])]
    assert not otherwise, f"{len(otherwise)} events stored (left) otherwise than read (right): {otherwise[:5]}"

    for source, rows in (("aggregate", aggregated), ("direct", direct)):
        assert sorted(row["brand"] for row in rows) == sorted(expected), source
        found = differences(expected, rows)
        assert not found, f"{source}: {len(found)} differences\n" + "\n".join(found[:60])

    # the comparison covers the real data: many brands, conversations and broadcasts, sentiment pairs, canned
    # replies, returning and won-back customers
    assert len(expected) > 50
    totals = {name: sum(f[name] or 0 for f in expected.values()) for name in ENGAGEMENT_FIGURES}
    assert totals["brand_replies"] > 2000 and totals["broadcasts"] > 10
    assert totals["outbound_messages"] > totals["brand_replies"] + totals["broadcasts"]  # replies to no customer
    assert totals["multi_turn_conversations"] > 300 and totals["negative_unanswered"] > 50
    assert totals["sentiment_shift_pairs"] > 500 and totals["canned_replies"] > 50
    assert totals["returning_customers"] > 10 and totals["two_way_customers"] > 10
    assert totals["won_back_customers"] > 100
