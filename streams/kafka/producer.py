"""The worker's own Kafka producer: one aiokafka producer for everything Rapport writes.

Faust's ``topic.send`` does much Python work per message and its changelog path queues table
writes in an unbounded buffer that is not tied to the input's acknowledgement. Rapport's hot path
instead writes through this thin wrapper:

- ``send``: one message, returns a future resolved on the broker's acknowledgement (``acks=all``);
- ``send_records``: many records to one partition packed into as few record batches as the
  producer's batch size allows (aiokafka's ``BatchBuilder``): one future per batch, resolved with the
  batch's base offset, so the caller knows every record's offset (``base + index``).

The edge (``streams/web/edge.py``) publishes raw webhook bodies with ``publish``; the process agent
sends enriched rows, dead letters and its tables' changelog records, and waits for all of them
before its input can be committed.

Errors a Kafka cluster returns during normal operation (a leader election, a topic just created, a
rolling restart: ``NotLeaderForPartition``, ``LeaderNotAvailable``, ``UnknownTopicOrPartition``,
request time-outs, broken connections) are retried with capped, jittered exponential back-off
(``tenacity``), re-sending the same records, for at most ``RAPPORT_KAFKA_RETRY_SECONDS`` (the edge: at
most ``EDGE_RETRY_SECONDS``, then it answers 503 and the platform retries). aiokafka already retries
such errors inside one request's time-out; this covers what outlasts it. Re-sending can only duplicate
records, never lose them: the tables downstream deduplicate, and a changelog batch holds each key
once. Any other error, or a retriable one that outlasts the bound, raises to the caller: the worker
then stops (exit 1) and its input is processed again after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import errors as kafka_errors
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from streams.settings import Settings

log = logging.getLogger("rapport.producer")

Headers = Sequence[tuple[str, bytes]]
MAX_BATCH_BYTES = 1024 * 1024
#: The edge's bound on retries: a platform waits for the answer, so after this it gets a 503 and retries.
EDGE_RETRY_SECONDS = 5.0
#: Back-off between attempts: 0.1 s doubling up to 5 s, with up to 0.5 s of jitter.
BACKOFF = wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.5)


def retriable(exc: BaseException) -> bool:
    """Kafka errors worth another attempt: Kafka's own retriable ones plus client-side time-outs."""
    if isinstance(exc, kafka_errors.KafkaTimeoutError | kafka_errors.BrokerNotAvailableError):
        return True
    return isinstance(exc, kafka_errors.KafkaError) and bool(getattr(exc, "retriable", False))


class stop_when(stop_base):
    """Stop retrying as soon as ``condition()`` holds (e.g. the worker is stopping)."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        self.condition = condition

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.condition()


class KafkaGaveUp(RuntimeError):
    """A Kafka send failed for good: a non-retriable error, or retriable ones for longer than allowed."""


class Producer:
    """Started lazily on first use (so building the app needs no broker), stopped with the worker.

    ``on_error(text)`` is told of every failed attempt and ``on_success()`` of every acknowledged send (the
    worker's health figures); ``stopping()`` ends the retries early when the worker is stopping."""

    def __init__(
        self,
        settings: Settings,
        on_error: Callable[[str], None] = lambda text: None,
        on_success: Callable[[], None] = lambda: None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._on_error = on_error
        self._on_success = on_success
        self._stopping = stopping

    async def _with_retries(self, what: str, attempt: Callable[[], Awaitable[Any]], seconds: float) -> Any:
        """Run ``attempt`` (a send and the wait for its acknowledgement) until it succeeds, retrying
        retriable errors for at most ``seconds``; then raise :class:`KafkaGaveUp` with the last error."""
        started = time.monotonic()
        try:
            async for retry in AsyncRetrying(
                retry=retry_if_exception(retriable),
                wait=BACKOFF,
                stop=stop_after_delay(seconds) | stop_when(self._stopping),
                reraise=True,
                before_sleep=lambda state: self._report(what, state.outcome.exception() if state.outcome else None),
            ):
                with retry:
                    result = await attempt()
        except Exception as exc:
            self._report(what, exc)
            waited = time.monotonic() - started
            reason = "not retriable" if not retriable(exc) else f"still failing after {waited:.0f}s"
            raise KafkaGaveUp(f"Kafka: {what} failed ({reason}): {type(exc).__name__}: {exc}") from exc
        self._on_success()
        return result

    def _report(self, what: str, exc: BaseException | None) -> None:
        text = f"{what}: {type(exc).__name__}: {exc}"
        self._on_error(text)
        log.warning("Kafka %s; retrying", text)

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
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None = None,
        headers: Headers = (),
        retry_seconds: float | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one message; the returned future resolves with its metadata once acknowledged (the
        message is sent again on retriable errors), or fails with :class:`KafkaGaveUp`."""
        producer = await self.started()
        first: asyncio.Future[Any] | None = await self._queue(producer, topic, value, key, partition, headers)

        async def attempt() -> Any:
            nonlocal first
            future, first = first, None  # the first attempt waits for the message queued above
            if future is None:
                future = await producer.send(topic, value, key=key, partition=partition, headers=list(headers))
            return await future

        seconds = self.settings.kafka_retry_seconds if retry_seconds is None else retry_seconds
        return asyncio.ensure_future(self._with_retries(f"send to {topic}", attempt, seconds))

    @staticmethod
    async def _queue(
        producer: Any, topic: str, value: bytes | None, key: bytes | None, partition: int | None, headers: Headers
    ) -> asyncio.Future[Any] | None:
        """Queue now, so messages keep their order and batching; None when queueing itself failed
        retriably (the retry loop then sends it again)."""
        try:
            future: asyncio.Future[Any] = await producer.send(
                topic, value, key=key, partition=partition, headers=list(headers)
            )
            return future
        except Exception as exc:
            if not retriable(exc):
                raise
            return None

    async def send_records(
        self, topic: str, partition: int, records: Sequence[tuple[bytes, bytes | None]]
    ) -> list[tuple[int, asyncio.Future[Any]]]:
        """Queue (key, value) records to one partition in as few batches as fit; returns, per batch,
        the index of its first record and the future of its metadata (``.offset`` = base offset).
        A batch that fails retriably is built again from the same records and re-sent."""
        producer = await self.started()
        out: list[tuple[int, asyncio.Future[Any]]] = []
        for first, end in self._batch_bounds(producer, records):
            chunk = records[first:end]

            async def attempt(chunk: Sequence[tuple[bytes, bytes | None]] = chunk) -> Any:
                batch = producer.create_batch()
                for key, value in chunk:
                    if batch.append(key=key, value=value, timestamp=None) is None:  # pragma: no cover - sized above
                        raise ValueError("a changelog batch no longer fits its records")
                return await (await producer.send_batch(batch, topic, partition=partition))

            what = f"send of {len(chunk)} records to {topic}[{partition}]"
            out.append(
                (first, asyncio.ensure_future(self._with_retries(what, attempt, self.settings.kafka_retry_seconds)))
            )
        return out

    @staticmethod
    def _batch_bounds(producer: Any, records: Sequence[tuple[bytes, bytes | None]]) -> list[tuple[int, int]]:
        """Split ``records`` into runs that each fit one record batch: [(first, end), …]."""
        bounds: list[tuple[int, int]] = []
        batch, first = producer.create_batch(), 0
        for index, (key, value) in enumerate(records):
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: close the run, start another
                bounds.append((first, index))
                batch, first = producer.create_batch(), index
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(key) + len(value or b'')} bytes exceeds the batch size")
        if first < len(records):
            bounds.append((first, len(records)))
        return bounds

    async def publish(self, key: bytes, value: bytes, headers: Headers) -> None:
        """The edge's publish: a raw webhook body to the raw topic, returns once acknowledged."""
        topic = self.settings.topic_raw
        try:
            # bounded as a whole: queueing alone may wait for metadata as long as the request time-out (15 s)
            async with asyncio.timeout(EDGE_RETRY_SECONDS):
                await (await self.send(topic, value, key=key, headers=headers, retry_seconds=EDGE_RETRY_SECONDS))
        except TimeoutError as exc:
            self._on_error(f"send to {topic}: no acknowledgement within {EDGE_RETRY_SECONDS:g}s")
            raise KafkaGaveUp(f"Kafka: no acknowledgement of a send to {topic} within {EDGE_RETRY_SECONDS:g}s") from exc

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
