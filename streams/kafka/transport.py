"""Faust's Kafka transport with one fix: a restarted worker must not skip raw messages.

The defect (Faust 0.15.3 with aiokafka 0.14), in two halves:

1. When a worker starts, ``Recovery.on_recovery_completed`` resumes the input partitions, *then* seeks them
   to their committed offsets, *then* resumes flow, which clears the agents' queues. Records fetched
   between the resume and the seek are dropped from the queues and must be fetched again from the
   committed offset. But aiokafka's ``seek_to_committed`` only seeks a partition whose committed offset is
   a positive number: a partition with no commit yet (the previous worker died before its first commit)
   or committed at 0 kept the position the early fetch had reached, and the dropped records were never
   fetched again.
2. A batch fetched *before* the seek can still be delivered *after* it, and a message whose delivery was
   under way during the seek records its offset as read when it ends. Either moves Faust's read offset of
   the partition past the records that the seek fetches again, and Faust then drops those as already read.

Measured before the fix, with a worker SIGKILLed after ~100 of 1,033 raw messages and restarted: 3,663 of
5,000 records stored (half 1); with half 1 fixed alone, offsets 55–278 of a partition lost in about one
restart of three (half 2). Either way the commits stopped at the first lost offset.

The fix, in the consumer thread where aiokafka runs:

- every partition is positioned in one step, with no await in between: at its committed offset, or, for a
  partition with no commit or a commit at 0, where Kafka's own rule puts a fresh consumer
  (``consumer_auto_offset_reset``: the beginning, for Rapport). Changelog partitions with no commit are
  left alone, as before: Faust reads them itself during recovery. A counter of seeks is bumped in the
  same step;
- each fetched batch is stamped with that counter when aiokafka hands it over, and the main loop stops
  delivering a batch as soon as a seek happened after its stamp. Records drained after a seek come from
  the new positions (aiokafka checks positions when it hands records over), so only stale records are
  cut, and those are fetched again. The read offsets the seek set are applied again before the next
  delivery;
- a safety net: a gap of records fetched but never acknowledged that is still there five seconds later
  sends every input partition back to its committed offset (:func:`unacknowledged_gaps`).

Records read twice are harmless: the warehouse deduplicates and the state functions are idempotent per
event id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import Service

log = logging.getLogger("rapport.transport")
GAP_CHECK_SECONDS = 5.0


def unacknowledged_gaps(
    acked: Mapping[Any, Iterable[int]], committed: Mapping[Any, int | None], starts: Mapping[Any, int]
) -> dict[Any, int]:
    """Partitions where a record was skipped: ``{tp: first offset never acknowledged}``.

    Records of a partition are processed and acknowledged in order, so when the lowest acknowledged
    offset lies above the next offset to commit (the committed offset, or where a partition with no
    commit started), the records in between were fetched and lost on the way to the agent; Faust's
    commits then stop there for good."""
    gaps = {}
    for tp, offsets in acked.items():
        lowest = min(offsets, default=None)
        expected = committed.get(tp)
        expected = starts.get(tp) if expected is None else expected
        if lowest is not None and expected is not None and lowest > expected:
            gaps[tp] = expected
    return gaps


class _Consumer(faust_aiokafka.Consumer):
    seeks = 0  # bumped by the consumer thread in the same step as it repositions the partitions
    batch_seeks = 0  # the value of ``seeks`` when the batch being delivered was handed over by aiokafka
    starts: dict[Any, int]  # where input partitions with no committed offset were positioned
    _gaps_seen: dict[Any, int]
    _read_offsets_after_seek: dict[Any, int | None] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.starts, self._gaps_seen = {}, {}

    @Service.timer(GAP_CHECK_SECONDS)
    async def _refetch_skipped(self) -> None:
        """The safety net under the fix above: a gap of unacknowledged records that is still there at the
        next check makes every input partition go back to its committed offset. What was processed
        after the gap comes again, and the warehouse and the state functions absorb it."""
        acked = {tp: offsets for tp, offsets in self._acked.items() if not self._is_changelog_tp(tp)}
        gaps = unacknowledged_gaps(acked, self._committed_offset, self.starts)
        stuck = {tp: offset for tp, offset in gaps.items() if self._gaps_seen.get(tp) == offset}
        self._gaps_seen = {tp: offset for tp, offset in gaps.items() if tp not in stuck}
        if stuck:
            log.warning("records fetched but never processed at %s: reading again from the committed offsets",
                        _by_tp(stuck, stuck))  # fmt: skip
            await self.perform_seek()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # A message that was being delivered during the seek records its offset as read when its delivery
        # ends, after the seek reset the read offsets; re-apply them before the next delivery.
        self._read_offsets_after_seek = dict(self._read_offset)

    def _reapply_read_offsets(self) -> None:
        if self._read_offsets_after_seek is not None:
            self._read_offset.update(self._read_offsets_after_seek)
            self._read_offsets_after_seek = None

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's batch, cut short as soon as the partitions were repositioned after it was fetched."""
        self._reapply_read_offsets()
        async for tp, message in super().getmany(timeout):
            if self.seeks != self.batch_seeks:
                return
            self._reapply_read_offsets()
            yield tp, message


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    consumer: _Consumer

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        aiokafka = self._ensure_consumer()
        partitions = aiokafka.assignment()
        committed: dict[Any, int | None] = {tp: await aiokafka.committed(tp) for tp in partitions}
        inputs = {tp for tp in partitions if not self.consumer._is_changelog_tp(tp)}  # Faust reads those
        targets = {tp: offset for tp, offset in committed.items() if offset or (offset == 0 and tp in inputs)}
        fresh = [tp for tp in inputs if committed[tp] is None]
        targets |= await _fresh_positions(aiokafka, fresh, self.app.conf.consumer_auto_offset_reset)
        for tp, offset in targets.items():  # no await from here on: nothing is fetched in between
            aiokafka.seek(tp, offset)
        self.consumer.seeks += 1
        self.consumer.starts.update({tp: targets[tp] for tp in fresh})
        log.info("inputs positioned: committed %s; fresh %s", _by_tp(committed, inputs), _by_tp(targets, fresh))
        return committed  # type: ignore[return-value]  # Faust's perform_seek expects None for "no commit"

    async def _fetch_records(
        self,
        consumer: AIOKafkaConsumer,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        self.consumer.batch_seeks = self.consumer.seeks  # same step as aiokafka's hand-over
        return records


def _by_tp(offsets: Mapping[Any, int | None], partitions: Iterable[Any]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}={offsets.get(tp)}" for tp in sorted(partitions)) or "none"


async def _fresh_positions(aiokafka: AIOKafkaConsumer, partitions: list[Any], reset: str) -> dict[Any, int]:
    """Where a consumer with no committed offset starts: the log start, or its end for ``latest``."""
    if not partitions:
        return {}
    offsets = await (aiokafka.end_offsets(partitions) if reset == "latest" else aiokafka.beginning_offsets(partitions))
    return dict(offsets)


class Transport(faust_aiokafka.Transport):
    """``faust.transport.drivers.aiokafka.Transport`` whose consumer repositions as described above, and
    whose fetches wait at most ``fetch_max_wait_ms`` for data (Faust fixes 1,500 ms).

    Why the wait matters: tansu answers a fetch over several partitions only when the wait is over, not
    when data arrives (docs/performance.md has the measured delays), so every topic hop pays it. A Kafka
    broker answers as soon as data is there, so there a short wait only costs a few empty fetches per
    second while idle."""

    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 1500, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
