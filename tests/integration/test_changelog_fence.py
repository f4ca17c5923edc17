"""The changelog fence on the real broker: batched writes make tansu's end offset wrong; after the fence
it points past every record, which is what Faust's table recovery reads up to."""

from __future__ import annotations

import asyncio

import pytest

from streams.kafka.changelog import FENCE_KEY, fence_changelogs
from streams.kafka.cluster import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


async def produce_batched(bootstrap: str, topic: str, n: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        futures = [await producer.send(topic, b"v", key=f"k{i}".encode(), partition=0) for i in range(n)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def end_offset_and_last(bootstrap: str, topic: str) -> tuple[int, tuple[bytes | None, bytes | None]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list = []
        deadline = asyncio.get_running_loop().time() + 15
        while len(records) < end and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            records += batch.get(tp, [])
        return end, (records[-1].key, records[-1].value) if records else (None, None)
    finally:
        await consumer.stop()


def test_fence_makes_the_end_offset_cover_every_record(broker):
    ensure_topics(broker.bootstrap, [TopicSpec("app-table-changelog", 1)])
    asyncio.run(produce_batched(broker.bootstrap, "app-table-changelog", 50))
    end, _ = asyncio.run(end_offset_and_last(broker.bootstrap, "app-table-changelog"))
    assert end < 50, "tansu's end offset is expected to be wrong for a batched partition"

    assert fence_changelogs(broker.bootstrap, ["app-table-changelog", "missing-changelog"]) == 1
    end, last = asyncio.run(end_offset_and_last(broker.bootstrap, "app-table-changelog"))
    assert end == 51  # 50 records + the fence: recovery now reads all of them
    assert last == (FENCE_KEY, None)  # a tombstone for a key no table uses
