"""The Faust agents of ``streams.worker.app.Rapport``, run with Faust's agent test context: no broker.

``agent.test_context()`` feeds messages to the agent through an in-memory channel and records what
it yields. The Faust tables work there (the agent iterates a stream, so there is a current event;
their changelog writes only go to the unstarted producer's buffer). What the agents *produce* is
captured by replacing the topics' ``send`` with fakes that return an already-resolved future, like an
acknowledged broker send; the warehouse is a fake ``Warehouse`` that records its inserts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

import streams.worker.app
import streams.worker.sink
from schemas.contract import Table
from streams.processing.history import remembered
from streams.processing.pipeline import DictState, decode_enriched, encode_enriched, process_message
from streams.processing.records import HEADER_FORMAT, RawMessage
from streams.settings import Settings
from streams.sinks.warehouse import Rows, Warehouse, WarehouseError
from streams.worker.app import Rapport
from tests.support.factories import inbound, line

T = TypeVar("T")
BRAND = b"acme"
JSONL = [(HEADER_FORMAT, b"jsonl")]


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def event(event_id: str, **fields: Any) -> bytes:
    return line(inbound(event_id, author_id="cust1", text="@acme my order is late again, awful service") | fields)


def reply_to(parent: str, event_id: str, at: str = "2026-01-05T10:05:00Z") -> bytes:
    return event(
        event_id,
        author_id="acme",
        direction="outbound",
        kind="reply",
        text="So sorry! Please DM us your order number.",
        parent_id=parent,
        customer_id="cust1",
        created_at=at,
    )


class RecordingWarehouse(Warehouse):
    """Records the rows of every successful insert; the first ``failures`` inserts raise."""

    url = "memory://recording"

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts = 0
        self.inserts: list[tuple[str, list[dict[str, Any]]]] = []
        self.closed = False

    def command(self, sql: str) -> None:
        pass

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return []

    def query_text(self, sql: str, fmt: str = "TSV") -> str:
        return ""

    def insert(self, table: Table, rows: Rows) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise WarehouseError("connection refused (fake)")
        if not isinstance(rows, Sequence):  # an Arrow table (the enriched sink decodes into Arrow)
            rows = rows.to_pylist()
        self.inserts.append((table.name, [dict(r) for r in rows]))

    def close(self) -> None:
        self.closed = True

    def table(self, name: str) -> list[dict[str, Any]]:
        return [row for table, rows in self.inserts if table == name for row in rows]


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


@dataclass
class Acked:
    offset: int


class FakeProducer:
    """Stands in for ``streams.kafka.producer.Producer``: records every message and acknowledges it at once,
    with per-partition offsets like a broker's."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.changelog: list[tuple[str, int, bytes, bytes | None, int]] = []
        self._next: dict[tuple[str, int], int] = {}

    def _acked(self, topic: str, partition: int, count: int) -> asyncio.Future[Acked]:
        base = self._next.get((topic, partition), 0)
        self._next[(topic, partition)] = base + count
        future: asyncio.Future[Acked] = asyncio.get_running_loop().create_future()
        future.set_result(Acked(base))
        return future

    async def send(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None = None, headers: Any = ()
    ) -> asyncio.Future[Acked]:
        name = {"rapport.enriched": "enriched", "rapport.dead-letter": "dead-letter"}.get(topic, topic)
        self.sent.append(Sent(name, key, value, dict(headers or [])))
        return self._acked(topic, partition or 0, 1)

    async def send_records(
        self, topic: str, partition: int, records: Sequence[tuple[bytes, bytes | None]]
    ) -> list[tuple[int, asyncio.Future[Acked]]]:
        base = self._next.get((topic, partition), 0)
        self.changelog += [(topic, partition, k, v, base + i) for i, (k, v) in enumerate(records)]
        # two batches when there are several records, to exercise the offsets of later batches
        split = max(1, len(records) // 2)
        return [(0, self._acked(topic, partition, split))] + (
            [(split, self._acked(topic, partition, len(records) - split))] if len(records) > split else []
        )

    async def stop(self) -> None:
        pass


def capture_sends(rapport: Rapport) -> list[Sent]:
    """Replace the worker's producer by a fake acknowledged at once; returns what gets sent."""
    producer = FakeProducer()
    rapport.producer = producer  # type: ignore[assignment]
    return producer.sent


@asynccontextmanager
async def rapport_app(tmp_path: Path, warehouse: Warehouse, **settings: Any) -> AsyncIterator[Rapport]:
    """A ``Rapport`` built inside the running loop (Faust binds to it), closed afterwards."""
    rapport = Rapport(Settings(data_dir=tmp_path, **settings), warehouse=warehouse)
    try:
        yield rapport
    finally:
        rapport.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def enriched_value(*lines: bytes) -> bytes:
    """What the process agent would send to the enriched topic for these jsonl lines."""
    message = RawMessage(payload=b"\n".join(lines), format="jsonl", key="acme")
    return encode_enriched(process_message(message, DictState(), lambda text: None, time.time()))


# --- process --------------------------------------------------------------------------------------


def test_process_sends_valid_rows_enriched_and_each_invalid_record_to_the_dead_letters(
    tmp_path: Path,
) -> None:
    bad_json = b'{"event_id": "x:3", "platform"'
    no_brand = orjson.dumps({k: v for k, v in orjson.loads(event("x:4")).items() if k != "brand"})
    payload = b"\n".join([event("x:1"), bad_json, event("x:2", author_id="cust2"), no_brand]) + b"\n"

    async def scenario() -> None:
        async with rapport_app(tmp_path, RecordingWarehouse()) as rapport:
            sent = capture_sends(rapport)
            async with rapport.process_agent.test_context() as agent:
                await agent.put(payload, key=BRAND, headers=JSONL)
                assert agent.results[0] == 4  # records handled

            enriched = [s for s in sent if s.topic == "enriched"]
            assert len(enriched) == 1
            assert enriched[0].key == BRAND
            interactions, responses = decode_enriched(enriched[0].value)
            assert [row["event_id"] for row in interactions] == ["x:1", "x:2"]
            assert all(row["brand"] == "acme" and row["conversation_id"] == row["event_id"] for row in interactions)
            assert interactions[0]["sentiment"] is not None and interactions[0]["sentiment"] < 0
            assert responses == []

            letters = [s for s in sent if s.topic == "dead-letter"]
            assert [s.value for s in letters] == [bad_json, no_brand]  # original bytes, verbatim
            assert all(s.key == BRAND for s in letters)
            assert letters[0].headers["rapport-reason"].startswith(b"Invalid JSON")
            assert letters[1].headers["rapport-reason"] == b"brand: Field required"
            assert letters[0].headers[HEADER_FORMAT] == b"jsonl"
            assert letters[0].headers["rapport-brand"] == b"acme"
            assert letters[0].headers["rapport-source"] == b"rapport.raw/0/0/1"
            assert letters[1].headers["rapport-source"] == b"rapport.raw/0/0/3"

            p = rapport.progress
            assert (p.raw_messages, p.records, p.interactions_out, p.dead_letters_out) == (1, 4, 2, 2)

    run(scenario())


def test_process_keeps_thread_state_in_faust_tables_across_messages(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rapport_app(tmp_path, RecordingWarehouse()) as rapport:
            sent = capture_sends(rapport)
            async with rapport.process_agent.test_context() as agent:
                await agent.put(event("x:10") + b"\n", key=BRAND, headers=JSONL)
                await agent.put(reply_to("x:10", "x:11") + b"\n", key=BRAND, headers=JSONL)
                await agent.put(event("x:10") + b"\n", key=BRAND, headers=JSONL)  # redelivered

            assert rapport.table_store.value("reply_threads", "acme\x1fx:10") == {
                "in": [1767607200, "cust1", "x:10"],
                "r": [1767607500, "x:11"],
            }
            assert rapport.table_store.value("conversation_roots", "acme\x1fx:11") == "x:10"
            history = rapport.table_store.value("customer_history", "acme\x1fcust1")
            assert sorted(remembered(history)) == ["x:10", "x:11"]

            decoded = [decode_enriched(s.value) for s in sent if s.topic == "enriched"]
            assert len(decoded) == 3
            (first, _), (second, responses), (again, no_responses) = decoded
            assert responses == [
                responses[0]
                | {
                    "inbound_id": "x:10",
                    "reply_id": "x:11",
                    "brand": "acme",
                    "conversation_id": "x:10",
                    "customer_id": "cust1",
                    "response_seconds": 300,
                }
            ]
            assert second[0]["conversation_id"] == "x:10"
            assert second[0]["customer_prior_inbound"] == 1
            assert no_responses == []  # the redelivery changes nothing
            assert again[0]["customer_prior_inbound"] == first[0]["customer_prior_inbound"] == 0

    run(scenario())


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_batch_writes_each_changed_key_once_to_its_changelog_and_the_store_holds_the_same(
    tmp_path: Path, store: str
) -> None:
    def raw(payload: bytes, offset: int, partition: int = 0) -> tuple[RawMessage, float | None]:
        return RawMessage(payload, "jsonl", "acme", partition=partition, offset=offset), None

    batch = [
        raw(event("x:20") + b"\n" + event("x:21", author_id="cust2") + b"\n", 0),
        raw(reply_to("x:20", "x:22") + b"\n", 1),  # touches cust1's history and x:20's thread again
        raw(event("x:20") + b"\n", 2),  # redelivered
    ]

    async def scenario() -> None:
        async with rapport_app(tmp_path, RecordingWarehouse(), table_store=store) as rapport:
            producer = FakeProducer()
            rapport.producer = producer  # type: ignore[assignment]
            assert await rapport.process_batch(batch) == 4
            records = producer.changelog
            keys = [(topic, key) for topic, _, key, _, _ in records]
            assert len(keys) == len(set(keys))  # one record per key per batch
            assert sorted(keys) == sorted(
                [
                    ("rapport-customer_history-changelog", b"acme\x1fcust1"),
                    ("rapport-customer_history-changelog", b"acme\x1fcust2"),
                    ("rapport-reply_threads-changelog", b"acme\x1fx:20"),
                    ("rapport-reply_threads-changelog", b"acme\x1fx:21"),
                    ("rapport-conversation_roots-changelog", b"acme\x1fx:22"),  # roots x:20, x:21 need none
                    ("rapport-brand_questions-changelog", b"acme\x1fx:22"),  # "Please DM us your order number."
                    # the complaints need a reply: their SLA deadlines at 11:00 (1 h) and 10:00 the next day (24 h)
                    ("rapport-sla_clock-changelog", b"acme"),
                    ("rapport-sla_due-changelog", f"acme\x1f{(1767607200 + 3600) // 600}".encode()),
                    ("rapport-sla_due-changelog", f"acme\x1f{(1767607200 + 86400) // 600}".encode()),
                ]
            )
            for topic, _, key, value, _ in records:  # the store holds exactly what the changelog says
                table = topic.removeprefix("rapport-").removesuffix("-changelog")
                assert value is not None
                assert rapport.table_store.value(table, key.decode()) == orjson.loads(value)
            # the SLA tick timer walks the brands' clocks in whichever store holds them
            clocks = dict(rapport.table_store.items("sla_clock"))
            assert list(clocks) == ["acme"] and clocks["acme"]["wm"] == 1767607500
            assert rapport.table_store.value("reply_threads", "acme\x1fx:20") == {
                "in": [1767607200, "cust1", "x:20"],
                "r": [1767607500, "x:22"],
            }
            if store.startswith("rocksdb"):  # recovery after a restart resumes after the last applied offset
                from faust.types import TP

                for table in ("customer_history", "conversation_roots"):
                    topic = f"rapport-{table}-changelog"
                    last = max(offset for t, _, _, _, offset in records if t == topic)
                    assert rapport.tables[table].data.persisted_offset(TP(topic, 0)) == last

    run(scenario())


def test_process_dead_letters_a_message_of_unknown_format(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rapport_app(tmp_path, RecordingWarehouse()) as rapport:
            sent = capture_sends(rapport)
            async with rapport.process_agent.test_context() as agent:
                await agent.put(event("x:1"), key=BRAND, headers=[(HEADER_FORMAT, b"xml")])
            assert [s.topic for s in sent] == ["dead-letter"]
            assert sent[0].value == event("x:1")
            assert sent[0].headers["rapport-reason"].startswith(b"format: unknown input format 'xml'")

    run(scenario())


def test_a_processing_failure_dead_letters_the_whole_message_and_the_agent_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = streams.worker.app.process_message
    calls = 0

    def flaky(message: RawMessage, state: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = real(message, state, *args, **kwargs)  # writes (buffered) state, then fails
        if calls == 1:
            raise KeyError("boom")
        return result

    monkeypatch.setattr(streams.worker.app, "process_message", flaky)
    first = b"\n".join([event("x:1"), event("x:2")]) + b"\n"

    async def scenario() -> None:
        async with rapport_app(tmp_path, RecordingWarehouse()) as rapport:
            sent = capture_sends(rapport)
            async with rapport.process_agent.test_context() as agent:
                await agent.put(first, key=BRAND, headers=JSONL)
                assert [s.topic for s in sent] == ["dead-letter"]
                letter = sent[0]
                assert letter.value == first  # the whole raw message
                assert letter.key == BRAND
                assert letter.headers["rapport-reason"].startswith(b"processing failed")
                assert letter.headers["rapport-reason"] == b"processing failed: KeyError: 'boom'"
                assert letter.headers["rapport-source"] == b"rapport.raw/0/0/0"
                # the failed message's state is dropped
                assert rapport.table_store.value("customer_history", "acme\x1fcust1") is None

                await agent.put(event("x:3") + b"\n", key=BRAND, headers=JSONL)
                assert [s.topic for s in sent] == ["dead-letter", "enriched"]
                rows, _ = decode_enriched(sent[1].value)
                assert [row["event_id"] for row in rows] == ["x:3"]
                assert agent.results == {0: 2, 1: 1}  # the failed message's two records are handled
            p = rapport.progress
            assert (p.raw_messages, p.interactions_out, p.dead_letters_out) == (2, 1, 1)
            assert p.replay_records == 3  # so a replay of these records drains

    run(scenario())


# --- sinks ----------------------------------------------------------------------------------------


def test_sink_inserts_enriched_rows_into_interactions_and_responses(tmp_path: Path) -> None:
    warehouse = RecordingWarehouse()
    values = [
        enriched_value(event("x:1"), event("x:2", author_id="cust2")),
        enriched_value(event("x:3"), reply_to("x:3", "x:4")),
        enriched_value(event("x:5")),
    ]
    expected_interactions = [row for value in values for row in decode_enriched(value)[0]]
    expected_responses = [row for value in values for row in decode_enriched(value)[1]]
    assert len(expected_responses) == 1

    async def scenario() -> None:
        # batches of up to two enriched messages (sink_batch_size / replay_chunk_records) or 50 ms;
        # sink_batch_size also caps the rows per insert (2)
        async with rapport_app(
            tmp_path, warehouse, sink_batch_size=2, replay_chunk_records=1, sink_batch_seconds=0.05
        ) as rapport:
            async with rapport.sink_agent.test_context() as agent:
                for value in values:
                    await agent.put(value, key=BRAND, wait=False)
                await eventually(lambda: len(warehouse.table("interactions")) == 5)
                await asyncio.sleep(0.1)  # nothing more arrives
            assert warehouse.table("interactions") == expected_interactions
            assert warehouse.table("responses") == expected_responses
            assert sum(agent.results.values()) == 5  # rows stored, per batch
            assert (rapport.progress.interactions_stored, rapport.progress.responses_stored) == (5, 1)
            assert rapport.progress.warehouse_errors == 0

    run(scenario())


def test_sink_retries_a_failing_warehouse_and_inserts_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = RecordingWarehouse(failures=2)
    # the retries must reach the same warehouse: no reconnect from settings.warehouse_url
    connects: list[str] = []

    def connect(url: str) -> Warehouse:
        connects.append(url)
        return warehouse

    monkeypatch.setattr(streams.worker.sink, "connect", connect)
    value = enriched_value(event("x:1"), reply_to("x:1", "x:2"))

    async def scenario() -> None:
        async with rapport_app(
            tmp_path, warehouse, sink_batch_size=1, replay_chunk_records=1, sink_retry_seconds=0.01
        ) as rapport:
            async with rapport.sink_agent.test_context() as agent:
                await agent.put(value, key=BRAND)  # returns once the batch is stored
            assert warehouse.attempts == 2 + 3  # two failures, then interactions ×2 and responses
            assert [table for table, _ in warehouse.inserts] == ["interactions", "interactions", "responses"]
            assert [r["event_id"] for r in warehouse.table("interactions")] == ["x:1", "x:2"]
            assert [r["reply_id"] for r in warehouse.table("responses")] == ["x:2"]
            assert rapport.progress.warehouse_errors == 2
            assert rapport.progress.interactions_stored == 2
            assert connects == []  # retried on the warehouse it was given

    run(scenario())


def test_dead_letters_from_process_reach_the_dead_letter_table(tmp_path: Path) -> None:
    warehouse = RecordingWarehouse()
    bad = [b"not json at all", event("x:2", kind="story_view")]

    async def scenario() -> None:
        async with rapport_app(
            tmp_path, warehouse, sink_batch_size=2, replay_chunk_records=1, sink_batch_seconds=0.05
        ) as rapport:
            sent = capture_sends(rapport)
            async with rapport.process_agent.test_context() as agent:
                await agent.put(b"\n".join([event("x:1"), *bad]), key=BRAND, headers=JSONL)
            letters = [s for s in sent if s.topic == "dead-letter"]
            async with rapport.dead_letter_agent.test_context() as sink:
                for letter in letters:
                    await sink.put(letter.value, key=letter.key, headers=list(letter.headers.items()), wait=False)
                await eventually(lambda: len(warehouse.table("dead_letters")) == 2)
            rows = warehouse.table("dead_letters")
            assert [row["original"] for row in rows] == bad
            assert rows[0]["reason"].startswith("Invalid JSON")
            assert rows[1]["reason"].startswith("kind:")
            assert {row["brand"] for row in rows} == {"acme"}
            assert {row["format"] for row in rows} == {"jsonl"}
            assert [
                (r["source_topic"], r["source_partition"], r["source_offset"], r["record_index"]) for r in rows
            ] == [
                ("rapport.raw", 0, 0, 1),
                ("rapport.raw", 0, 0, 2),
            ]
            assert all(row["received_at"] > 1_700_000_000 for row in rows)
            assert rapport.progress.dead_letters_stored == 2

    run(scenario())


def test_the_broker_check_clears_its_own_error_and_fails_only_on_a_run_of_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One unanswered check must not stay on record (progress never "settled" again) nor start a clock that
    a later, single failure reads as a long outage; only failures in a row for RAPPORT_KAFKA_RETRY_SECONDS
    stop the worker. The metadata request is replaced at its boundary (the integration tests kill a real
    broker)."""
    from streams.kafka.cluster import BrokerUnreachable

    answers: list[bool] = []

    def reachable(bootstrap: str, timeout: float) -> None:
        if not answers.pop(0):
            raise BrokerUnreachable("Kafka broker 127.0.0.1:1 is unreachable after 2.5s: refused")

    monkeypatch.setattr(streams.worker.app, "wait_reachable", reachable)
    failures: list[str] = []

    async def scenario() -> None:
        async with rapport_app(tmp_path, RecordingWarehouse(), kafka_retry_seconds=0.2) as rapport:
            rapport.on_fatal = failures.append
            answers.extend([False, True])
            await rapport.check_kafka()
            assert rapport.progress_report()["kafka_last_error"] is not None
            await rapport.check_kafka()
            assert rapport.health.broker.text is None and rapport.progress_report()["kafka_last_error"] is None
            await asyncio.sleep(0.3)  # longer than the bound since the first failure, but the run was broken
            answers.extend([False])
            await rapport.check_kafka()
            assert failures == []
            await asyncio.sleep(0.3)
            answers.extend([False])
            await rapport.check_kafka()  # failing for longer than the bound, in a row
            assert len(failures) == 1 and "Kafka unreachable" in failures[0]

    run(scenario())
