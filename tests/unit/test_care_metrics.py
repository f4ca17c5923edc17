"""The care metrics on small crafted conversations, with figures computed by hand (docs/metrics.md).

The events go through the worker's own pipeline (``process_message``: needs-reply, reply matching, SLA deadlines)
into the embedded ClickHouse, the sink's aggregate refresh runs after each insert, and ``rapport metrics``'s
query reads ``care_hourly``; every figure is also checked against the computation from ``FINAL`` rows.
chdb allows one open data directory per process at a time: the module shares one (module-scoped).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.migrate import migrate
from streams.metrics import care, engagement
from streams.metrics.backlog import backlog
from streams.processing.needs_reply import needs_reply
from streams.processing.pipeline import DictState, Options
from streams.processing.platforms import BrandDirectory
from streams.processing.records import ProcessResult
from streams.sinks.warehouse import Warehouse, connect
from tests.support import pipeline
from tests.support.factories import brand_post, brand_reply, inbound
from tests.support.pipeline import store

DAY1 = "2026-01-05T"  # a Monday
DAY2 = "2026-01-06T"
BRANDS = BrandDirectory.from_mapping(
    {
        "brands": {
            "acme": {"x": ["100"]},
            "other": {"x": ["200"]},
            "bizco": {
                "x": ["300"],
                "care": {
                    "sla": ["30m", "4h"],
                    "business_hours": {"timezone": "UTC", "days": "mon-fri", "hours": "09:00-18:00"},
                },
            },
        }
    }
)


def msg(event_id: str, at: str, author: str, text: str | None, **fields: Any) -> dict[str, Any]:
    return inbound(event_id, author_id=author, text=text, created_at=DAY1 + at, **fields)


def reply(event_id: str, parent: str, customer: str, at: str, day: str = DAY1, **fields: Any) -> dict[str, Any]:
    return brand_reply(event_id, parent, customer, created_at=day + at, **fields)


#: The stream, in the order it arrives. Hand-computed figures of acme are in test_acme_figures_by_hand.
STREAM: list[dict[str, Any]] = [
    msg("x:1", "10:00:00Z", "c1", "where is my order?"),
    reply("x:101", "x:1", "c1", "10:02:30Z"),  # m1 answered after 150 s
    msg("x:2", "10:10:00Z", "c2", "my card was charged twice, please help"),
    msg("x:12", "10:15:00Z", "c8", "can you help me reset my password?"),
    msg("x:3", "10:20:00Z", "c3", "thanks so much, you are great!"),  # needs no reply, never answered
    msg("x:11", "10:30:00Z", "other", "do you ship to Canada?"),  # a customer who is a brand elsewhere
    reply("x:102", "x:1", "c1", "10:30:00Z"),  # m1 answered twice: the first reply counts
    msg("x:4", "10:40:00Z", "c1", "still nothing arrived, can you check?", kind="reply", parent_id="x:101"),
    reply("x:104", "x:4", "c1", "10:50:00Z"),  # m4 (a reply to the brand's reply) answered after 600 s
    reply("x:105", "x:101", "c1", "10:51:00Z"),  # the brand replying to its own reply: answers nothing
    brand_reply("x:201", "x:1", "c1", brand="other", author_id="other", created_at=DAY1 + "10:52:00Z"),
    msg("x:6", "10:55:00Z", "c9", "I need help now, can anyone answer?"),
    msg("x:6", "10:55:00Z", "c9", None, deleted=True, updated_at=DAY1 + "10:58:00Z"),  # removed: never counts
    reply("x:111", "x:11", "other", "11:00:00Z"),  # m11 answered after 1,800 s
    msg("x:7", "11:05:00Z", "c4", "great stuff, love it"),
    msg("x:7", "11:05:00Z", "c4", "actually it broke, can you help?", updated_at=DAY1 + "11:06:00Z"),  # edited
    reply("x:108", "x:8", "c5", "11:20:00Z"),  # a reply that arrives before its message
    msg("x:8", "11:15:00Z", "c5", "is the app down?"),  # answered after 300 s
    msg("x:10", "12:00:00Z", "c7", "hello? anyone there?"),  # exactly on an hour: the range boundary
    reply("x:102b", "x:2", "c2", "12:10:00Z"),  # m2 answered after 7,200 s: the 1 h window is breached
    reply("x:112", "x:12", "c8", "10:45:00Z"),  # written within m12's hour, arrives after it passed: retracts
    msg("x:9", "10:05:00Z", "c6", "where is my refund?"),  # a late event for a closed hour, never answered
    # the next day: the brand's clock passes every 24 h deadline
    brand_post("x:500", created_at=DAY2 + "12:00:00Z"),
    # bizco: business hours Mon-Fri 09-18 UTC, SLA windows 30 min and 4 h
    inbound("x:30", brand="bizco", author_id="d1", text="is my booking confirmed?", created_at="2026-01-09T20:00:00Z"),
    brand_reply("x:330", "x:30", "d1", brand="bizco", author_id="bizco", created_at="2026-01-12T09:30:00Z"),
]


def process(events: Sequence[dict[str, Any]], state: DictState, per_message: int = 3) -> list[ProcessResult]:
    return pipeline.process(events, state, per_message, Options(brands=BRANDS))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    opened = connect(f"chdb://{tmp_path_factory.mktemp('care') / 'ch'}")
    migrate(opened)
    store(opened, process(STREAM, DictState()))
    yield opened
    opened.close()


def query(**kwargs: Any) -> care.MetricsQuery:
    return care.MetricsQuery(policies=BRANDS.policies, **kwargs)


def figures(warehouse: Warehouse, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """The figures per group from the aggregate, after checking they equal the computation from the rows."""
    q = query(**kwargs)
    aggregated, direct = care.metrics(warehouse, q), care.metrics(warehouse, q, direct=True)
    assert aggregated == direct
    return {  # the care figures (the engagement figures of the same rows are checked in test_engagement_metrics.py)
        " ".join(str(v) for k, v in row.items() if k in ("brand", "platform", "day", "hour")): {
            k: v for k, v in row.items() if k not in engagement.FIGURES
        }
        for row in aggregated
    }


def hour(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_texts_are_classified_as_the_hand_computation_assumes() -> None:
    needing = [e["text"] for e in STREAM if e["direction"] == "inbound" and e.get("text") and e["event_id"] != "x:3"]
    assert all(needs_reply(t) for t in needing if t != "great stuff, love it")
    assert not needs_reply("thanks so much, you are great!")
    assert not needs_reply("great stuff, love it")


def test_acme_figures_by_hand(warehouse: Warehouse) -> None:
    acme = figures(warehouse)["acme"]
    # inbound: x:1 2 3 4 7 8 9 10 11 12 (x:6 removed); answered: x:1 (150 s), x:2 (7,200), x:4 (600), x:8 (300),
    # x:11 (1,800), x:12 (1,800); sorted 150 300 600 1800 1800 7200
    assert acme == {
        "brand": "acme",
        "inbound_messages": 10,
        "answered_messages": 6,
        "reply_rate": 0.6,
        "first_response_median_s": 1200.0,  # (600 + 1800) / 2
        "first_response_p90_s": 4500.0,  # rank 0.9 × 5 = 4.5: 1800 + 0.5 × (7200 − 1800)
        "answered_within_30m": None,  # not one of acme's windows
        "answered_within_1h": 5,
        "answered_within_4h": None,
        "answered_within_24h": 6,
        "answered_within_30m_rate": None,
        "answered_within_1h_rate": 0.5,
        "answered_within_4h_rate": None,
        "answered_within_24h_rate": 0.6,
        "first_response_business_median_s": None,  # acme has no business hours
        "needs_reply_messages": 9,  # all but the thank-you (x:7 counts as edited)
        "needs_reply_answered": 6,
        "needs_reply_rate": 6 / 9,
        "conversations": 9,  # x:4 belongs to x:1's conversation
        "conversations_answered": 5,
        "conversation_reply_rate": 5 / 9,
        "unanswered_messages": 4,  # x:3, x:7, x:9, x:10
        "needs_reply_unanswered": 3,  # x:7, x:9, x:10
        "sla_breaches_30m": None,
        "sla_breaches_1h": 4,  # x:2 (answered after 2 h), x:7, x:9, x:10; x:12's breach was retracted
        "sla_breaches_4h": None,
        "sla_breaches_24h": 3,  # x:7, x:9, x:10
    }


def test_bizco_business_hours_and_its_own_windows(warehouse: Warehouse) -> None:
    bizco = figures(warehouse, brands=("bizco",))["bizco"]
    # Friday 20:00 → Monday 09:30 with Mon-Fri 09:00-18:00: the clock starts Monday 09:00 (1,800 s)
    assert bizco["first_response_business_median_s"] == 1800.0
    assert bizco["first_response_median_s"] == 61.5 * 3600  # Friday 20:00 → Monday 09:30
    assert bizco["answered_within_30m"] == 0 and bizco["answered_within_4h"] == 0
    assert bizco["answered_within_1h"] is None and bizco["sla_breaches_24h"] is None
    assert bizco["sla_breaches_30m"] == 1 and bizco["sla_breaches_4h"] == 1  # on wall-clock windows


def test_range_boundary_exactly_at_a_message(warehouse: Warehouse) -> None:
    after = figures(warehouse, start=hour("2026-01-05T12:00:00"), brands=("acme",))["acme"]
    assert (after["inbound_messages"], after["answered_messages"], after["sla_breaches_1h"]) == (1, 0, 1)  # x:10
    assert after["first_response_median_s"] is None and after["reply_rate"] == 0.0
    before = figures(warehouse, end=hour("2026-01-05T12:00:00"), brands=("acme",))["acme"]
    assert before["inbound_messages"] == 9


def test_by_hour_day_and_platform(warehouse: Warehouse) -> None:
    hours = figures(warehouse, by="brand,hour", brands=("acme",))
    assert {k: v["inbound_messages"] for k, v in hours.items()} == {
        "acme 2026-01-05T10:00:00Z": 7,  # x:1 2 3 4 9 11 12 (x:9 arrived late)
        "acme 2026-01-05T11:00:00Z": 2,  # x:7, x:8
        "acme 2026-01-05T12:00:00Z": 1,
        "acme 2026-01-06T12:00:00Z": 0,  # only a brand post: a group of the outbound figures
    }
    assert hours["acme 2026-01-05T10:00:00Z"]["conversations"] == 6  # x:1 (with x:4), 2, 3, 9, 11, 12
    days = figures(warehouse, by="brand,day")
    assert set(days) == {
        "acme 2026-01-05",
        "acme 2026-01-06",
        "bizco 2026-01-09",
        "bizco 2026-01-12",
        "other 2026-01-05",
    }
    assert [d for d, v in days.items() if v["inbound_messages"] == 0] == [
        "acme 2026-01-06",
        "bizco 2026-01-12",
        "other 2026-01-05",
    ]
    assert set(figures(warehouse, by="brand,platform")) == {"acme x", "bizco x", "other x"}


def test_breach_rows_in_the_table(warehouse: Warehouse) -> None:
    rows = warehouse.rows("SELECT inbound_id, window_s FROM sla_breaches FINAL WHERE brand = 'acme' ORDER BY 1, 2")
    # x:6 was removed after it arrived: it still breached (it was waiting), but its figures do not count it
    assert rows == [
        ("x:10", 3600), ("x:10", 86400), ("x:2", 3600), ("x:6", 3600), ("x:6", 86400),
        ("x:7", 3600), ("x:7", 86400), ("x:9", 3600), ("x:9", 86400),
    ]  # fmt: skip
    retracted = warehouse.rows("SELECT count() FROM sla_breaches WHERE inbound_id = 'x:12' AND _retracted = 1")
    assert retracted == [(1,)]


def test_backlog_order_negative_first_then_oldest(warehouse: Warehouse) -> None:
    waiting = backlog(warehouse, ["acme"], 10)
    assert {w["inbound_id"] for w in waiting} == {"x:7", "x:9", "x:10"}
    keys = [(w["priority"], w["inbound_at"], w["inbound_id"]) for w in waiting]
    assert keys == sorted(keys)
    assert all(w["waited_s"] > 0 for w in waiting)


def test_redelivery_replay_and_a_crash_between_insert_and_refresh_change_nothing(warehouse: Warehouse) -> None:
    before = figures(warehouse, by="brand,hour")
    breaches = warehouse.rows("SELECT * FROM sla_breaches FINAL ORDER BY inbound_id, window_s")
    state = DictState()
    results = process(STREAM, state, per_message=5)  # the same file replayed, cut into other messages
    store(warehouse, results[:3], refresh=False)  # a worker killed after the marks, before its timer ran…
    assert warehouse.scalar("SELECT count() FROM care_dirty FINAL") > 0  # …leaves the marks…
    store(warehouse, results)  # …and the next run recomputes them with its own batches
    assert warehouse.scalar("SELECT count() FROM care_dirty FINAL") == 0
    store(warehouse, process(STREAM[:8], state))  # Kafka redelivers a batch to the worker that has the state
    assert figures(warehouse, by="brand,hour") == before
    assert warehouse.rows("SELECT * FROM sla_breaches FINAL ORDER BY inbound_id, window_s") == breaches
    care.refresh_all(warehouse)  # `rapport metrics --rebuild` recomputes the same
    assert figures(warehouse, by="brand,hour") == before


def test_every_figure_name_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for name in [*care.figure_names([3600, 86400]), *engagement.FIGURES, *engagement.TIER_FIGURES]:
        assert f"`{name}`" in doc, name
