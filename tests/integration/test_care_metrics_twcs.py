"""The care metrics end to end on the real twcs sample: tansu broker + a `rapport worker` process + chdb.

The 5,000-row sample is replayed through a real broker into a real worker; once it has settled and stopped, the
figures of ``rapport metrics --by brand`` are read twice from its warehouse — from the ``care_hourly`` aggregate and
directly from the ``FINAL`` rows — and both must equal, brand by brand, a computation made here straight from the
CSV with ``csv.DictReader`` and the definitions of docs/metrics.md ("Care metrics"), written again plainly below
without the product's code. The only thing taken from the product is the ``needs_reply`` label of each message
(the issue: "SLA breaches from the stored needs_reply labels"): the classifier has its own tests.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from streams.metrics import care
from streams.metrics.care import MetricsQuery
from streams.sinks.warehouse import connect
from tests.support.engagement_reference import read_sample

if TYPE_CHECKING:
    from tests.support.worker import StartWorker

pytestmark = pytest.mark.integration

TWCS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "twcs" / "twcs_head5000.csv"
needs_twcs = pytest.mark.skipif(not TWCS.exists(), reason=f"real sample data not found at {TWCS}")

HOUR, DAY = 3600, 86400  # the default SLA windows (no brands file: every brand has 1h and 24h)


# --- the independent computation ----------------------------------------------------------------


@dataclass
class Message:
    """An inbound message of a brand, as the CSV tells it."""

    tweet_id: str
    brand: str
    at: int  # created_at, Unix seconds
    conversation: str
    first_reply: int | None  # created_at of the brand's earliest direct reply


def read_messages(path: Path) -> tuple[list[Message], dict[str, int]]:
    """The inbound messages of the file with their brand, and per brand the latest created_at of its events.

    Brands: every brand of docs/metrics.md "Brand of an event" is compared, the anonymised numeric ones included:
    the file is read by ``tests/support/engagement_reference.py`` (plain ``csv``, the rules of twcs.py written
    again), which applies them in full; rows without a brand are dead-lettered by the worker and left out here.
    """
    sample = read_sample(path, sentiment=lambda _: None)
    latest: dict[str, int] = {}
    for e in sample.events:
        latest[e.brand] = max(latest.get(e.brand, 0), e.at)
    messages = []
    for e in sample.events:
        if e.inbound:
            reply = sample.first_reply.get(e.event_id)
            messages.append(
                Message(e.event_id.removeprefix("x:"), e.brand, e.at, e.conversation, reply.at if reply else None)
            )
    return messages, latest


def p90(data: list[int]) -> float:
    # statistics.quantiles needs two points (Python 3.11); one point is its own quantile
    return float(data[0]) if len(data) == 1 else statistics.quantiles(data, n=10, method="inclusive")[8]


def expected_figures(
    messages: list[Message], latest: dict[str, int], needs_reply: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per brand, the figures of docs/metrics.md "Care metrics" (default windows 1h and 24h)."""
    out = {}
    for b in sorted({m.brand for m in messages}):
        mine = [m for m in messages if m.brand == b]
        answered = [m for m in mine if m.first_reply is not None]
        delays = sorted(max(0, m.first_reply - m.at) for m in answered if m.first_reply is not None)
        needing = [m for m in mine if needs_reply[m.tweet_id]]

        def breaches(window: int, needing: list[Message] = needing, b: str = b) -> int:
            # no direct reply by the deadline, and the deadline passed on the brand's event time
            return sum(
                1
                for m in needing
                if (m.first_reply is None or m.first_reply > m.at + window) and m.at + window <= latest[b]
            )

        out[b] = {
            "inbound_messages": len(mine),
            "answered_messages": len(answered),
            "reply_rate": len(answered) / len(mine),
            "first_response_median_s": float(statistics.median(delays)) if delays else None,
            "first_response_p90_s": p90(delays) if delays else None,
            "answered_within_1h": sum(1 for d in delays if d <= HOUR),
            "answered_within_24h": sum(1 for d in delays if d <= DAY),
            "conversations": len({m.conversation for m in mine}),
            "conversations_answered": len({m.conversation for m in answered}),
            "unanswered_messages": len(mine) - len(answered),
            "needs_reply_messages": len(needing),
            "needs_reply_answered": sum(1 for m in needing if m.first_reply is not None),
            "sla_breaches_1h": breaches(HOUR),
            "sla_breaches_24h": breaches(DAY),
        }
    return out


# --- the test -------------------------------------------------------------------------------------


@needs_twcs
def test_care_metrics_per_brand_match_an_independent_computation_from_the_csv(worker: StartWorker) -> None:
    messages, latest = read_messages(TWCS)
    warehouse = connect(worker().replay_and_stop(TWCS, "twcs", 5000))
    try:
        labels = {
            str(event_id).removeprefix("x:"): int(flag)
            for event_id, flag in warehouse.rows("SELECT event_id, needs_reply FROM interactions FINAL")
        }
        query = MetricsQuery(by="brand")
        aggregated = care.metrics(warehouse, query)
        direct = care.metrics(warehouse, query, direct=True)
    finally:
        warehouse.close()

    assert all(m.tweet_id in labels for m in messages), "every inbound message of a brand is stored"
    expected = expected_figures(messages, latest, labels)

    # the aggregate equals the computation from FINAL rows, figure by figure (the rates and the business median
    # included, which the CSV has nothing independent to say about)
    by_brand = {row["brand"]: row for row in aggregated}
    direct_by_brand = {row["brand"]: row for row in direct}
    assert sorted(by_brand) == sorted(direct_by_brand)
    for brand, row in by_brand.items():
        assert row == pytest.approx(direct_by_brand[brand]), brand
    assert sorted(by_brand) == sorted(expected)
    for brand, figures in expected.items():
        for source in (by_brand[brand], direct_by_brand[brand]):
            got = {name: source[name] for name in figures}
            assert got == pytest.approx(figures), brand

    # the comparison covers the real data: most rows, many brands, answers, and breaches of both windows
    totals = {name: sum(f[name] for f in expected.values()) for name in ("inbound_messages", "answered_messages")}
    assert totals["inbound_messages"] > 2500 and totals["answered_messages"] > 1000
    assert len(expected) > 50
    assert sum(f["sla_breaches_1h"] for f in expected.values()) > sum(f["sla_breaches_24h"] for f in expected.values())
    assert sum(f["sla_breaches_24h"] for f in expected.values()) > 0
