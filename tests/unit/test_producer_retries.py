"""The producer's retries (streams/kafka/producer.py): errors a Kafka cluster returns during leader elections,
topic creation and restarts are retried by re-sending; others, and retriable ones that outlast the bound,
fail with KafkaGaveUp. The Kafka client is replaced at its boundary by a fake that answers with the
aiokafka error classes a broker's answers become (the integration tests run the real broker)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import errors
from aiokafka.producer.message_accumulator import BatchBuilder

from streams.kafka.producer import KafkaGaveUp, Producer, retriable, with_offsets
from streams.settings import Settings


class Metadata:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class FakeKafka:
    """Answers each send with the next scripted outcome: an exception class, or success."""

    def __init__(self, outcomes: list[type[BaseException] | None], fail_on_queue: bool = False) -> None:
        self.outcomes = list(outcomes)
        self.fail_on_queue = fail_on_queue
        self.sent: list[Any] = []
        self.offset = 0

    def _answer(self, records: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is None:
            future.set_result(Metadata(self.offset))
            self.offset += records
        else:
            future.set_exception(outcome())
        return future

    async def send(self, topic: str, value: bytes | None, **kwargs: Any) -> asyncio.Future[Any]:
        if self.fail_on_queue and self.outcomes and self.outcomes[0] is not None:
            raise self.outcomes.pop(0)()
        self.sent.append((topic, value))
        return self._answer(1)

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(200, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, partition: int) -> asyncio.Future[Any]:
        count = batch.record_count()
        self.sent.append((topic, partition, count))
        return self._answer(count)

    async def stop(self) -> None:
        pass


def producer(fake: FakeKafka, seconds: float = 5.0, **kwargs: Any) -> Producer:
    p = Producer(Settings(kafka_retry_seconds=seconds), **kwargs)
    p._producer = fake
    return p


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_leader_elections_and_new_topics_are_retried_by_sending_again() -> None:
    errors_seen: list[str] = []
    fake = FakeKafka([errors.NotLeaderForPartitionError, errors.LeaderNotAvailableError, None])
    p = producer(fake, on_error=errors_seen.append)

    async def go() -> Any:
        return await (await p.send("rapport.enriched", b"v", key=b"acme"))

    assert run(go()).offset == 0
    assert len(fake.sent) == 3  # the same message sent three times
    assert [e.split(":")[1].strip() for e in errors_seen] == ["NotLeaderForPartitionError", "LeaderNotAvailableError"]


def test_a_send_that_fails_while_queueing_is_retried_too() -> None:
    fake = FakeKafka([errors.KafkaTimeoutError, None], fail_on_queue=True)
    p = producer(fake)

    async def go() -> Any:
        return await (await p.send("rapport.raw", b"v", key=b"acme"))

    assert run(go()).offset == 0
    assert fake.sent == [("rapport.raw", b"v")]


def test_a_non_retriable_error_fails_at_once() -> None:
    fake = FakeKafka([errors.MessageSizeTooLargeError, None])
    p = producer(fake)

    async def go() -> Any:
        return await (await p.send("rapport.enriched", b"v", key=b"acme"))

    with pytest.raises(KafkaGaveUp, match=r"not retriable.*MessageSizeTooLargeError"):
        run(go())
    assert len(fake.sent) == 1


def test_retriable_errors_that_outlast_the_bound_give_up() -> None:
    fake = FakeKafka([errors.NotLeaderForPartitionError] * 1000)
    p = producer(fake, seconds=0.5)

    async def go() -> Any:
        return await (await p.send("rapport.enriched", b"v", key=b"acme"))

    with pytest.raises(KafkaGaveUp, match="still failing after"):
        run(go())
    assert 2 <= len(fake.sent) < 20  # retried with back-off, not in a tight loop


def test_a_stopping_worker_ends_the_retries() -> None:
    stopping = False
    fake = FakeKafka([errors.RequestTimedOutError] * 1000)
    p = producer(fake, seconds=60, stopping=lambda: stopping)

    async def go() -> Any:
        nonlocal stopping
        future = await p.send("rapport.enriched", b"v", key=b"acme")
        await asyncio.sleep(0.3)
        stopping = True
        return await future

    with pytest.raises(KafkaGaveUp):
        run(go())


def test_changelog_batches_are_rebuilt_and_resent_with_correct_offsets() -> None:
    # 40 records of ~20 bytes in 200-byte batches: several batches; the second fails twice
    records = [(f"k{i:02d}".encode(), f"value-{i:04d}".encode()) for i in range(40)]
    fake = FakeKafka([None, errors.NotLeaderForPartitionError, errors.NotLeaderForPartitionError] + [None] * 50)
    p = producer(fake)

    async def go() -> list[tuple[bytes, bytes | None, int]]:
        batches = await p.send_records("rapport-history-changelog", 2, records)
        await asyncio.gather(*(future for _, future in batches))
        return with_offsets(records, batches)

    placed = run(go())
    assert [(k, v) for k, v, _ in placed] == records
    offsets = [offset for *_, offset in placed]
    assert len(set(offsets)) == len(records)  # every record has its own offset
    sizes = [count for *_, count in fake.sent]
    assert sum(sizes) == len(records) + 2 * sizes[1]  # the failed batch was sent three times, whole


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.NotLeaderForPartitionError(), True),
        (errors.LeaderNotAvailableError(), True),
        (errors.UnknownTopicOrPartitionError(), True),
        (errors.RequestTimedOutError(), True),
        (errors.KafkaTimeoutError(), True),
        (errors.KafkaConnectionError(), True),
        (errors.MessageSizeTooLargeError(), False),
        (errors.TopicAuthorizationFailedError(), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_errors_are_retriable(error: BaseException, expected: bool) -> None:
    assert retriable(error) is expected
