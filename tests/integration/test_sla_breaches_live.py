"""SLA breaches on a real broker and worker (streams/processing/sla.py, docs/metrics.md "SLA breaches").

A live brand that goes quiet breaches on the wall clock (the worker's ticks), and the breach is both stored
(``sla_breaches``) and sent to the topic ``rapport.sla-breaches``; a replay of old data is never live, so its
deadlines pass only on event time; a reply written before the deadline but arriving after the breach retracts
it, from the table and from ``care_hourly``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import factories
from tests.support.worker import StartWorker, WorkerProcess

pytestmark = pytest.mark.integration

TOKEN = "events-token"
BRAND, BRAND_X_ID = "acme", "2244994945"
CUSTOMER = "1510523958923497472"
TOPIC = "rapport.sla-breaches"
NEEDS_REPLY_TEXT = "where is my refund? nobody answers"
T2020 = int(datetime(2020, 3, 12, 14, 3, 11, tzinfo=UTC).timestamp())


def start(worker: StartWorker, tmp_path: Path) -> WorkerProcess:
    brands = tmp_path / "brands.yaml"
    brands.write_text(f'brands:\n  {BRAND}:\n    x: ["{BRAND_X_ID}"]\n    care:\n      sla: ["5s", "1h"]\n')
    return worker(brands_file=brands, events_token=TOKEN, sla_tick_seconds=1)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def inbound(native_id: str, created_at: int, text: str = NEEDS_REPLY_TEXT) -> dict[str, Any]:
    return factories.inbound(
        f"x:{native_id}",
        brand=BRAND,
        author_id=CUSTOMER,
        author_handle="jordan_kp",
        text=f"@{BRAND} {text}",
        created_at=iso(created_at),
        customer_id=CUSTOMER,
    )


def broadcast(native_id: str, created_at: int) -> dict[str, Any]:
    """A brand post to everyone (no parent): it answers nobody, it only moves the brand's event time."""
    return factories.brand_post(
        f"x:{native_id}",
        brand=BRAND,
        author_id=BRAND_X_ID,
        author_handle=BRAND,
        text="Spring sale starts today.",
        created_at=iso(created_at),
    )


def reply(native_id: str, parent: str, created_at: int) -> dict[str, Any]:
    return factories.brand_reply(
        f"x:{native_id}",
        parent,
        CUSTOMER,
        brand=BRAND,
        author_id=BRAND_X_ID,
        author_handle=BRAND,
        text="@jordan_kp Sorry Jordan, your refund went out this morning.",
        created_at=iso(created_at),
        conversation_id=parent,
    )


def post(running: WorkerProcess, *events: dict[str, Any]) -> None:
    assert running.post_events(orjson.dumps(list(events))) == 200


def rows(running: WorkerProcess, sql: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in running.sql(sql, "JSONEachRow").splitlines()]


BREACHES = (
    "SELECT inbound_id, window_s, toUnixTimestamp(inbound_at) AS inbound_at, toUnixTimestamp(deadline) AS deadline, "
    "toUnixTimestamp(breached_at) AS breached_at FROM sla_breaches FINAL ORDER BY inbound_id, window_s"
)


def breaches(running: WorkerProcess) -> list[dict[str, Any]]:
    return rows(running, BREACHES)


def hourly_breaches(running: WorkerProcess) -> dict[str, int]:
    """``sumMap(sla_breaches)`` over ``care_hourly FINAL``: window (seconds, as text) → breaches."""
    [row] = rows(running, "SELECT sumMap(sla_breaches) AS m FROM care_hourly FINAL")
    return {str(k): int(v) for k, v in row["m"].items()}


def stored(running: WorkerProcess, event_id: str) -> bool:
    return running.sql(f"SELECT count() FROM interactions FINAL WHERE event_id = '{event_id}'").strip() == "1"


async def consume(bootstrap: str, topic: str, want: int, timeout: float) -> list[Any]:
    """The first ``want`` messages of ``topic`` (every partition, from the start), or what came in ``timeout``."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
        return got
    finally:
        await consumer.stop()


def test_a_live_brand_that_goes_quiet_breaches_on_the_wall_clock(worker, broker, tmp_path):
    running = start(worker, tmp_path)
    created = int(time.time())
    post(running, inbound("1900000000000000001", created))
    inbound_id = "x:1900000000000000001"

    running.wait(lambda: breaches(running), timeout=20, what="a breach of the live brand's 5 s window")
    seen_at = time.time()
    [breach] = breaches(running)
    assert (breach["inbound_id"], breach["window_s"]) == (inbound_id, 5)
    assert (breach["inbound_at"], breach["deadline"]) == (created, created + 5)
    # passed by a tick (wall clock), not by an event: nothing after the message moved the brand's event time
    assert created + 5 <= breach["breached_at"] <= seen_at
    assert breach["breached_at"] - (created + 5) <= 5, breach  # ticks every second: on time, not late
    assert running.sql("SELECT needs_reply FROM interactions FINAL").strip() == "1"

    # the alerting topic carries the same decision, keyed by the brand
    [message] = asyncio.run(consume(broker.bootstrap, TOPIC, want=1, timeout=15))
    assert message.key == BRAND.encode()
    sent = orjson.loads(message.value)
    assert sent["inbound_id"] == inbound_id and sent["brand"] == BRAND and sent["platform"] == "x"
    assert (sent["window_s"], sent["deadline"], sent["inbound_at"]) == (5, created + 5, created)
    assert sent["breached_at"] == breach["breached_at"] and sent["_retracted"] == 0
    assert sent["customer_id"] == CUSTOMER

    # a few more ticks: the 1 h window is far off, and the 5 s breach is not decided again
    time.sleep(3)
    assert [(b["inbound_id"], b["window_s"]) for b in breaches(running)] == [(inbound_id, 5)]
    assert len(asyncio.run(consume(broker.bootstrap, TOPIC, want=2, timeout=3))) == 1
    assert running.error_lines() == []


def test_a_replay_of_old_data_breaches_on_event_time_only(worker, tmp_path):
    running = start(worker, tmp_path)
    inbound_id = "x:1200000000000000001"
    post(running, inbound(inbound_id.removeprefix("x:"), T2020))
    running.wait(lambda: stored(running, inbound_id), timeout=20, what="the 2020 message stored")

    # ten ticks' worth of wall clock: the brand's event time stays at the message, and 2020 is not live
    time.sleep(10)
    assert breaches(running) == []
    assert hourly_breaches(running) == {}

    # a later 2020 event of the brand passes the deadline: the breach, at that event's time exactly
    post(running, broadcast("1200000000000000002", T2020 + 60))
    running.wait(lambda: breaches(running), timeout=20, what="the breach passed by event time")
    assert breaches(running) == [
        {
            "inbound_id": inbound_id,
            "window_s": 5,
            "inbound_at": T2020,
            "deadline": T2020 + 5,
            "breached_at": T2020 + 60,
        }
    ]
    running.wait(lambda: hourly_breaches(running) == {"5": 1}, timeout=10, what="care_hourly counting the breach")
    assert running.error_lines() == []


def test_a_reply_written_before_the_deadline_retracts_the_breach(worker, tmp_path):
    running = start(worker, tmp_path)
    inbound_id = "x:1300000000000000001"
    post(running, inbound(inbound_id.removeprefix("x:"), T2020), broadcast("1300000000000000002", T2020 + 60))
    running.wait(lambda: breaches(running), timeout=20, what="the breach passed by event time")
    assert [(b["inbound_id"], b["window_s"], b["breached_at"]) for b in breaches(running)] == [
        (inbound_id, 5, T2020 + 60)
    ]
    running.wait(lambda: hourly_breaches(running) == {"5": 1}, timeout=10, what="care_hourly counting the breach")

    # the brand's reply, written 3 s after the message (within 5 s), arrives late: the breach is taken back
    reply_id = "x:1300000000000000003"
    post(running, reply(reply_id.removeprefix("x:"), inbound_id, T2020 + 3))
    running.wait(lambda: stored(running, reply_id), timeout=20, what="the late reply stored")
    running.wait(lambda: not breaches(running), timeout=10, what="the breach retracted")
    [response] = rows(running, "SELECT inbound_id, reply_id, response_seconds FROM responses FINAL")
    assert response == {"inbound_id": inbound_id, "reply_id": reply_id, "response_seconds": 3}
    running.wait(
        lambda: sum(hourly_breaches(running).values()) == 0, timeout=10, what="care_hourly no longer counting it"
    )
    # the retraction row is there, hidden by FINAL
    assert running.sql(f"SELECT max(_retracted) FROM sla_breaches WHERE inbound_id = '{inbound_id}'").strip() == "1"
    assert running.error_lines() == []
