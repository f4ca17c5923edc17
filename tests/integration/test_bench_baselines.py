"""The Faust baselines of ``rapport bench pipeline`` on the real tansu broker and chdb: they must do the work
their figures claim, or the ratios printed against them mean nothing. (No timing is asserted.)"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from streams.bench.pipeline import _faust_baseline, _started_worker, _timed_replay
from streams.kafka.cluster import TopicSpec, ensure_topics
from streams.kafka.replay import Chunk, send_chunks
from streams.local.broker import LocalBroker
from streams.local.demo import generate
from streams.settings import Settings

pytestmark = pytest.mark.integration


def _json_objects(messages: list[Chunk]) -> int:
    """Lines that are JSON objects: an independent count of what a baseline that stores events must store."""
    count = 0
    for chunk in messages:
        for line in chunk.payload.split(b"\n"):
            with contextlib.suppress(orjson.JSONDecodeError):
                count += isinstance(orjson.loads(line), dict)
    return count


async def _count_messages(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        seen = 0
        while batch := await consumer.getmany(timeout_ms=2000):
            seen += sum(len(records) for records in batch.values())
        return seen
    finally:
        await consumer.stop()


def test_baselines_store_every_event_and_forward_every_message(tmp_path: Path, broker: LocalBroker) -> None:
    lines = list(generate(customers=40, days=2))
    lines[3:3] = [b"not json", b"[1, 2]", b'"a string"', b"{broken"]  # stored by neither baseline
    messages = [Chunk("brand", "jsonl", lines[i : i + 50]) for i in range(0, len(lines), 50)]
    expected_rows = _json_objects(messages)
    assert 100 < expected_rows <= len(lines) - 4  # the demo data has bad lines of its own too

    ensure_topics(broker.bootstrap, [TopicSpec("raw", partitions=2), TopicSpec("bench.forward", partitions=2)])
    asyncio.run(send_chunks([broker.bootstrap], "raw", iter(messages)))

    seconds, rows = _faust_baseline("forward", broker.bootstrap, "raw", len(messages), tmp_path)
    assert seconds > 0 and rows is None
    assert asyncio.run(_count_messages(broker.bootstrap, "bench.forward")) == len(messages)

    for mode in ("floor", "unopened"):
        seconds, rows = _faust_baseline(mode, broker.bootstrap, "raw", len(messages), tmp_path)
        assert seconds > 0 and rows == expected_rows, mode


def test_ceiling_worker_stores_the_second_pass_again_from_its_lookup(tmp_path: Path, broker: LocalBroker) -> None:
    lines = list(generate(customers=40, days=2))
    messages = [Chunk(f"brand{i % 3}", "jsonl", lines[i : i + 50]) for i in range(0, len(lines), 50)]

    settings = Settings(data_dir=tmp_path / "data", kafka_brokers=broker.bootstrap, admin_port=0)  # any free
    worker = _started_worker(settings, "ceiling", tmp_path, module="streams.bench.ceiling")
    try:
        _timed_replay(worker, messages, len(lines))
        first = worker.progress()
        _timed_replay(worker, messages, 2 * len(lines))
        second = worker.progress()
        stored = worker.sql("SELECT count(), uniqExact(event_id) FROM interactions FINAL")
    finally:
        worker.stop()
    # every row was sent and inserted again on the replayed pass; the table still holds each event once
    assert first["interactions_stored"] > 0
    assert second["interactions_stored"] == 2 * first["interactions_stored"]
    assert second["dead_letters_stored"] == 2 * first["dead_letters_stored"] > 0
    assert stored.split() == [str(first["interactions_stored"])] * 2
    # the enriched messages came from the lookup, which encodes them without a produce time (a worker's own
    # encoding carries it, and the sink then counts the rows' freshness)
    assert second["freshness_events"] == 0
