"""The worker's own Kafka producer: one aiokafka producer for everything Rapport writes.

Faust's ``topic.send`` costs ~100 µs of Python per message and its changelog path queues table
writes in an unbounded buffer that is not tied to the input's acknowledgement. Rapport's hot path
instead writes through this thin wrapper:

- ``send``: one message, returns a future resolved on the broker's acknowledgement (``acks=all``);
- ``send_records``: many records to one partition packed into as few record batches as the
  producer's batch size allows (aiokafka's ``BatchBuilder``): one future per batch, resolved with the
  batch's base offset, so the caller knows every record's offset (``base + index``).

The edge (``streams/edge.py``) publishes raw webhook bodies with ``publish``; the process agent
sends enriched rows, dead letters and its tables' changelog records, and waits for all of them
before its input can be committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from streams.settings import Settings

Headers = Sequence[tuple[str, bytes]]
MAX_BATCH_BYTES = 1024 * 1024


class Producer:
    """Started lazily on first use (so building the app needs no broker), stopped with the worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def started(self) -> Any:
        if self._producer is None:
            async with self._lock:
                if self._producer is None:
                    from aiokafka import AIOKafkaProducer

                    producer = AIOKafkaProducer(
                        bootstrap_servers=self.settings.broker_list,
                        acks="all",
                        linger_ms=2,
                        max_batch_size=MAX_BATCH_BYTES,
                        max_request_size=max(2 * self.settings.webhook_max_bytes, 16 * 1024 * 1024),
                        request_timeout_ms=15_000,
                    )
                    await producer.start()
                    self._producer = producer
        return self._producer

    async def send(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int | None = None, headers: Headers = ()
    ) -> asyncio.Future[Any]:
        """Queue one message; the returned future resolves with its metadata once acknowledged."""
        producer = await self.started()
        return await producer.send(topic, value, key=key, partition=partition, headers=list(headers))

    async def send_records(
        self, topic: str, partition: int, records: Sequence[tuple[bytes, bytes | None]]
    ) -> list[tuple[int, asyncio.Future[Any]]]:
        """Queue (key, value) records to one partition in as few batches as fit; returns, per batch,
        the index of its first record and the future of its metadata (``.offset`` = base offset)."""
        producer = await self.started()
        batches: list[tuple[int, asyncio.Future[Any]]] = []
        batch, first = producer.create_batch(), 0
        for index, (key, value) in enumerate(records):
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                batches.append((first, await producer.send_batch(batch, topic, partition=partition)))
                batch, first = producer.create_batch(), index
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(key) + len(value or b'')} bytes exceeds the batch size")
        if batch.record_count():
            batches.append((first, await producer.send_batch(batch, topic, partition=partition)))
        return batches

    async def publish(self, key: bytes, value: bytes, headers: Headers) -> None:
        """The edge's publish: a raw webhook body to the raw topic, returns once acknowledged."""
        await (await self.send(self.settings.topic_raw, value, key=key, headers=headers))

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def with_offsets(
    records: Sequence[tuple[bytes, bytes | None]], batches: Sequence[tuple[int, asyncio.Future[Any]]]
) -> list[tuple[bytes, bytes | None, int]]:
    """(key, value, offset) of records sent with :meth:`Producer.send_records`, once its batches are acked."""
    out = []
    bounds = [first for first, _ in batches[1:]] + [len(records)]
    for (first, future), end in zip(batches, bounds, strict=True):
        base = future.result().offset
        out += [(key, value, base + i - first) for i, (key, value) in enumerate(records[first:end], start=first)]
    return out
