"""The ClickHouse side of the worker: inserts in one warehouse thread, retried until stored.

- Inserts run in a thread of their own (chdb releases the GIL), shielded so a batch in flight finishes
  when the worker stops; nothing is acknowledged to Kafka before it is stored.
- A failing warehouse is retried with capped exponential back-off (``tenacity``); an error that retrying
  cannot mend (a missing table) or a stop requested meanwhile ends the retries with the reason, and the
  worker then exits without acknowledging the batch (``Rapport.fail``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from schemas.contract import CARE_HOURLY, INTERACTIONS, RESPONSES, SLA_BREACHES, Table
from schemas.migrate import migrate, server_version
from streams.metrics import care, engagement
from streams.processing.pipeline import EnrichedBatch, decode_enriched_batch
from streams.settings import Settings
from streams.sinks.warehouse import Rows, Warehouse, WarehouseError, connect
from streams.worker.health import Health
from streams.worker.progress import Progress

log = logging.getLogger("rapport.worker")

Batches = Sequence[tuple[Table, Rows]]


#: The tables whose rows feed ``care_hourly``, and the column that places a row in its hour.
AGGREGATED = {INTERACTIONS.name: "created_at", RESPONSES.name: "inbound_at", SLA_BREACHES.name: "inbound_at"}


def aggregate_buckets(batches: Batches) -> set[care.Bucket]:
    """The (brand, platform, hour) buckets of ``care_hourly`` that the rows of ``batches`` fall in."""
    found: set[care.Bucket] = set()
    for table, rows in batches:
        if table.name in AGGREGATED and len(rows):
            found |= care.buckets_of(rows, AGGREGATED[table.name])
    return found


class WarehouseSink:
    """Stores batches of rows into the warehouse of ``settings`` (opened and migrated on first use)."""

    def __init__(self, settings: Settings, health: Health, progress: Progress, warehouse: Warehouse | None) -> None:
        self.settings = settings
        self.health = health
        self.progress = progress
        self._warehouse = warehouse
        self._aggregates: bool | None = None
        self.canned = engagement.CannedCache()  # the brands' canned-reply windows between recomputations
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapport-warehouse")

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = connect(self.settings.warehouse_url)
            migrate(self._warehouse)
        return self._warehouse

    @property
    def aggregates(self) -> bool:
        """Whether the warehouse has the aggregate tables (every current ClickHouse; not the old server that
        tests use for the wire protocol, which gets the core tables only: ``schemas/migrate.py``)."""
        if self._aggregates is None:
            self._aggregates = server_version(self.warehouse) >= CARE_HOURLY.min_server
        return self._aggregates

    async def in_thread(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._executor, fn, *args))

    async def store(self, batches: Batches | Callable[[], Batches]) -> None:
        """Insert the batches and mark the aggregate's hours they touch (``care_dirty``), retrying both until the
        warehouse accepts them (nothing is acked before); ``refresh_aggregates`` recomputes the marked hours.

        ``batches`` may be a function that makes them: it runs once, in the warehouse thread, so the
        decoding of a batch and its insert are one step with no await in between."""
        made: list[Batches] = []

        def insert_all() -> None:
            if not made:
                made.append(batches() if callable(batches) else batches)
            for table, rows in made[0]:
                for start in range(0, len(rows), self.settings.sink_batch_size):
                    self.warehouse.insert(table, rows[start : start + self.settings.sink_batch_size])
            if self.aggregates:
                # marked before the ack, recomputed by ``refresh_aggregates`` (streams/metrics/care.py): a crash
                # after the mark leaves it for the next run, one before it redelivers the batch
                care.mark_dirty(self.warehouse, aggregate_buckets(made[0]))

        def failed(exc: BaseException) -> bool:  # worth another attempt?
            if not isinstance(exc, WarehouseError):
                return False
            self.progress.warehouse_errors += 1
            self.health.warehouse.failed(str(exc))
            return not exc.permanent and not self.health.stopping

        s = self.settings
        try:
            # the server client reconnects by itself; rows already stored by a half-done batch are stored
            # again, and the ReplacingMergeTree tables drop the copies
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(failed),
                wait=wait_exponential(multiplier=s.sink_retry_seconds, max=max(s.sink_retry_seconds, 10.0)),
                sleep=self.sleep_unless_stopping,
                reraise=True,
                before_sleep=lambda state: log.error(
                    "warehouse insert failed, retrying in %.1fs: %s",
                    state.upcoming_sleep,
                    state.outcome.exception() if state.outcome else "",
                ),
            ):
                with attempt:
                    await self.in_thread(insert_all)
        except WarehouseError as exc:
            if exc.permanent:  # e.g. a table dropped by hand: retrying cannot help; a restart migrates
                raise WarehouseError(f"warehouse: {exc} (`rapport migrate` recreates missing tables)") from exc
            # stopping: nothing is acknowledged, the batch stays in Kafka for the next run
            raise WarehouseError(f"stopped before the warehouse accepted a batch: {exc}") from exc
        self.health.warehouse.ok()

    async def refresh_aggregates(self) -> int:
        """Recompute the aggregate's dirty hours from FINAL rows (the worker's timer, every
        RAPPORT_AGGREGATE_SECONDS, and once more when it stops). A failure is left for the next round: the marks
        stay until a recomputation succeeds."""
        if self._warehouse is None or not self.aggregates:
            return 0
        try:
            return int(await self.in_thread(care.refresh_pending, self.warehouse, self.canned))
        except WarehouseError as exc:
            self.health.warehouse.failed(f"aggregate recomputation: {exc}")
            log.error("recomputing the aggregate failed (retried in %.1fs): %s", self.settings.aggregate_seconds, exc)
            return 0

    async def sleep_unless_stopping(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.health.stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    async def store_enriched(self, values: list[bytes]) -> EnrichedBatch:
        """Decode enriched messages and store their rows, as one step in the warehouse thread (Arrow's
        JSON reader runs without the GIL, and there is no await between decoding and inserting)."""
        decoded: list[EnrichedBatch] = []

        def decode() -> Batches:
            decoded.append(decode_enriched_batch(values))
            batch = decoded[0]
            return [(INTERACTIONS, batch.interactions), (RESPONSES, batch.responses), (SLA_BREACHES, batch.breaches)]

        await self.store(decode)
        return decoded[0]

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._warehouse is not None:
            if self.health.failure is None and self.aggregates:  # what was stored is also in the aggregate
                try:
                    care.refresh_pending(self._warehouse)
                except WarehouseError as exc:  # the marks stay: the next run recomputes them
                    log.error("recomputing the aggregate at stop failed: %s", exc)
            self._warehouse.close()
