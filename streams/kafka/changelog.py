"""Make Faust's table recovery complete on brokers whose end offsets are wrong (tansu).

tansu reports the end offset of a partition as *the start of its last record batch + 1*. Faust reads a
changelog up to that end offset when it recovers its tables, so with batched produces the recovery stops
early and the tables come back stale. The error only exists when the last batch holds several records.

So before the worker starts, :func:`fence_changelogs` appends one *fence* record, alone in its batch, to
every partition of every changelog topic: a tombstone for a reserved key that no table uses. The
reported end offset then lies just past the fence, and recovery reads every real record. The producer can
batch normally the rest of the time (one message per batch would limit its throughput). On a real
Kafka cluster the fence is one harmless tombstone per partition and start.

Limit: the fence covers what was written before it. A worker that takes over partitions while their
previous owner still flushes changelog batches (during a rebalance) could still see a short tail missed;
the state functions are idempotent per event id, so reprocessing the uncommitted input repairs most of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from streams.kafka.cluster import BrokerError, topic_partitions

FENCE_KEY = json.dumps("__rapport_fence__").encode()  # Faust tables serialise str keys as JSON


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def fence_changelogs(bootstrap: str, topics: Sequence[str]) -> int:
    """Append a lone tombstone to every partition of the existing ``topics``; returns how many."""
    partitions: list[tuple[str, int]] = []
    for topic in topics:
        try:
            partitions += [(topic, p) for p in range(topic_partitions(bootstrap, topic))]
        except BrokerError:
            continue  # not created yet: nothing to recover
    if partitions:
        asyncio.run(_fence(bootstrap, partitions))
    return len(partitions)


async def _fence(bootstrap: str, partitions: list[tuple[str, int]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=0)
    await producer.start()
    try:
        for topic, partition in partitions:  # one at a time: each fence is a batch of its own
            await producer.send_and_wait(topic, None, key=FENCE_KEY, partition=partition)
    finally:
        await producer.stop()
