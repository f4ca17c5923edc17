"""The Faust application: topics, tables, agents and web views, built from one ``Settings``.

Data flow (one topic hop on the hot path; every Kafka message carries many records)::

    raw topic ──process──▶ enriched topic ──sink──▶ ClickHouse interactions, responses
       (key = brand)   └──▶ dead-letter topic ──dead_letter_sink──▶ ClickHouse dead_letters

- ``process``: normalize → enrich → match replies, all in ``streams.processing.pipeline`` (pure).
  It waits for the broker's acknowledgement of what it produced before its input offset can be
  committed (at-least-once; the ClickHouse tables deduplicate).
- ``sink`` / ``dead_letter_sink``: batched inserts bounded by size and time, run in a worker thread
  (chdb releases the GIL), shielded so a batch in flight finishes when the worker stops. A failing
  warehouse is retried with back-off; nothing is acknowledged before it is stored.

Kafka key = brand everywhere, so one brand's events and state live on one partition: the customer
history and reply threads of a brand are local to the worker that owns that partition, with no
cross-worker lookups, and per-brand order is preserved.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, cast

import faust
import mode
import orjson
from faust.web import Request, Response, View

from schemas.contract import DEAD_LETTERS, INTERACTIONS, RESPONSES, Table
from schemas.migrate import migrate
from streams.edge import Edge
from streams.processing.pipeline import (
    STATE_TABLES,
    EnrichedBatch,
    Options,
    decode_enriched_batch,
    encode_enriched,
    process_message,
)
from streams.processing.platforms import EMPTY_DIRECTORY, BrandDirectory
from streams.processing.records import (
    HEADER_BRAND,
    HEADER_CONTEXT,
    HEADER_FORMAT,
    WEBHOOK_FORMATS,
    DeadLetter,
    ProcessResult,
    RawMessage,
    failed_message_result,
)
from streams.processing.sentiment import SentimentScorer
from streams.producer import Producer, with_offsets
from streams.settings import Settings
from streams.state import BatchState, TableStore
from streams.transport import Transport
from streams.warehouse import Rows, Warehouse, WarehouseError, connect

log = logging.getLogger("rapport.worker")

Batches = Sequence[tuple[Table, Rows]]

READ_ONLY_PREFIXES = ("select", "with", "show", "describe", "desc", "explain", "exists")

# RocksDB table stores (RAPPORT_TABLE_STORE=rocksdb://): Faust's defaults keep up to 3 × 64 MiB write
# buffers, a 2 GiB block cache and a 500 MiB compressed cache per partition database, i.e. all state in RAM;
# these keep a worker with millions of customers under 1 GiB resident (`rapport bench memory`), state on disk.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 << 20,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 << 20,
    "block_cache_compressed_size": 8 << 20,
}


@dataclass
class Progress:
    """Counters since the worker started (for `rapport up --exit-when-drained` and operators)."""

    raw_messages: int = 0
    records: int = 0
    replay_records: int = 0  # records of replayed files (jsonl, twcs)
    webhook_messages: int = 0  # raw messages of the webhook formats processed
    edge_messages: int = 0  # raw messages the webhook edge produced (see streams/edge.py)
    edge_requests: int = 0
    edge_rejected: int = 0
    interactions_out: int = 0
    dead_letters_out: int = 0
    interactions_stored: int = 0
    responses_stored: int = 0
    dead_letters_stored: int = 0
    warehouse_errors: int = 0

    @property
    def settled(self) -> bool:
        """Everything produced is stored, and every raw message the edge produced was processed."""
        return (
            self.interactions_stored >= self.interactions_out
            and self.dead_letters_stored >= self.dead_letters_out
            and self.webhook_messages >= self.edge_messages
        )


class Freshness:
    """Produce-to-queryable latency of recent events: from the raw message's Kafka timestamp to the
    moment its rows were inserted into ClickHouse. Kept for the last ``window`` stored messages, each
    weighted by its number of events."""

    def __init__(self, window: int = 20_000) -> None:
        self.samples: deque[tuple[float, int]] = deque(maxlen=window)

    def add(self, seconds: float, events: int) -> None:
        self.samples.append((max(0.0, seconds), events))

    def clear(self) -> None:
        self.samples.clear()

    def percentile(self, q: float) -> float | None:
        """The smallest latency that at least ``q`` of the events did not exceed."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        total = sum(n for _, n in ordered)
        seen = 0
        for seconds, n in ordered:
            seen += n
            if seen >= q * total:
                return seconds
        return ordered[-1][0]

    def summary(self) -> dict[str, float | None]:
        p50, p99 = self.percentile(0.5), self.percentile(0.99)
        return {
            "freshness_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "freshness_p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "freshness_events": sum(n for _, n in self.samples),
        }


def _headers(message: Any) -> dict[str, bytes]:
    headers = message.headers or {}
    items = headers.items() if isinstance(headers, dict) else headers
    return {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in items}


def raw_message(event: Any) -> RawMessage:
    message = event.message
    headers = _headers(message)
    context = None
    if HEADER_CONTEXT in headers:
        try:
            context = orjson.loads(headers[HEADER_CONTEXT])
        except orjson.JSONDecodeError:
            context = None  # every record is then rejected with "context: missing or malformed"
    key = message.key.decode("utf-8", errors="replace") if isinstance(message.key, bytes) else ""
    brand_filter = headers[HEADER_BRAND].decode("utf-8", errors="replace") if HEADER_BRAND in headers else None
    return RawMessage(
        payload=message.value if isinstance(message.value, bytes) else b"",
        format=headers.get(HEADER_FORMAT, b"").decode("utf-8", errors="replace"),
        key=key,
        context=context,
        brand_filter=brand_filter,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )


def _timestamp(event: Any) -> float | None:
    """The Kafka CreateTime of the event's message in seconds (None when the message has none)."""
    stamp = event.message.timestamp
    return stamp if isinstance(stamp, int | float) else None


def dead_letter_from_message(message: Any) -> DeadLetter:
    headers = _headers(message)
    topic, partition, offset, index = ([*headers.get("rapport-source", b"///").decode().split("/"), "", "", ""])[:4]
    return DeadLetter(
        reason=headers.get("rapport-reason", b"").decode("utf-8", errors="replace"),
        format=headers.get(HEADER_FORMAT, b"").decode("utf-8", errors="replace"),
        original=message.value or b"",
        brand=headers.get("rapport-brand", b"").decode("utf-8", errors="replace"),
        source_topic=topic,
        source_partition=int(partition or 0),
        source_offset=int(offset or 0),
        record_index=int(index or 0),
        received_at=int(headers.get("rapport-received-at", b"0") or 0),
    )


class Rapport:
    """Builds the Faust app for ``settings``; attributes are the app's topics, tables and agents."""

    def __init__(self, settings: Settings, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.progress = Progress()
        self.freshness = Freshness()
        self.scorer = SentimentScorer()
        self.brands = BrandDirectory.from_file(settings.brands_file) if settings.brands_file else EMPTY_DIRECTORY
        self.options = Options(history_max_events=settings.history_max_events, brands=self.brands)
        self._warehouse = warehouse
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapport-warehouse")
        s = settings
        self.app = faust.App(
            s.app_id,
            broker=[f"kafka://{b}" for b in s.broker_list],
            store=s.table_store,
            datadir=str(s.data_dir / "faust"),
            topic_partitions=s.topic_partitions,
            topic_replication_factor=s.topic_replication,
            broker_session_timeout=s.broker_session_timeout,
            broker_heartbeat_interval=1.0,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            producer_max_request_size=16 * 1024 * 1024,
            # an agent's input buffer, in messages. Faust's default, 4,096, let the sink's backlog of enriched
            # messages (~120 KB each) sit in the worker's memory whenever it fell behind the process agent:
            # the 1M-customer memory run peaked at 1,127 MiB. With 512 the consumer waits instead and the
            # backlog stays in the broker (838 MiB); 128 also bounded it but cost ~10% of the throughput.
            stream_buffer_maxsize=8 * s.process_batch_messages,
            producer_acks=-1,
            web_enabled=True,
            web_bind=s.web_host,
            web_host=s.web_host,
            web_port=s.web_port,
            autodiscover=False,
        )
        self.app.transport = Transport(  # see streams/transport.py
            self.app.conf.broker_consumer, self.app, fetch_max_wait_ms=s.fetch_max_wait_ms
        )
        topic_args: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
            "partitions": s.topic_partitions,
            "replicas": s.topic_replication,
        }
        self.raw_topic = self.app.topic(s.topic_raw, **topic_args)
        self.enriched_topic = self.app.topic(s.topic_enriched, **topic_args)
        self.dead_letter_topic = self.app.topic(s.topic_dead_letter, **topic_args)
        self.tables: dict[str, Any] = {}
        if s.worker_role in ("all", "process"):  # the edge role runs no agent: it only feeds the raw topic
            # raw bytes in and out: Rapport (de)serialises with orjson and writes them itself (streams/state.py)
            self.tables = {
                name: self.app.Table(
                    name,
                    default=None,
                    partitions=s.topic_partitions,
                    key_type=bytes,  # bytes ⇒ Faust's "raw" serializer
                    value_type=bytes,
                    options=dict(ROCKSDB_OPTIONS) if s.table_store.startswith("rocksdb") else None,
                )
                for name in STATE_TABLES
            }
            self.table_store = TableStore(self.tables)
            self.process_agent = self.app.agent(self.raw_topic, name="process")(self._process)
            self.sink_agent = self.app.agent(self.enriched_topic, name="sink")(self._sink)
            self.dead_letter_agent = self.app.agent(self.dead_letter_topic, name="dead_letter_sink")(
                self._dead_letter_sink
            )
        self.producer = Producer(settings)
        self.edge = Edge(
            x_secrets=s.secret_list("x_consumer_secret"),
            meta_secrets=s.secret_list("meta_app_secret"),
            meta_verify_tokens=s.secret_list("meta_verify_token"),
            events_tokens=s.secret_list("events_token"),
            brands=self.brands,
            publish=self.producer.publish,
            max_bytes=s.webhook_max_bytes,
        )
        producer = self.producer

        @self.app.service
        class _ProducerLifecycle(mode.Service):
            async def on_stop(self) -> None:
                await producer.stop()

        self._register_web()

    # --- warehouse -----------------------------------------------------------------------------

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = connect(self.settings.warehouse_url)
            migrate(self._warehouse)
        return self._warehouse

    async def _in_warehouse_thread(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._executor, fn, *args))

    async def store(self, batches: Batches | Callable[[], Batches]) -> None:
        """Insert the batches, retrying until the warehouse accepts them (nothing is acked before).

        ``batches`` may be a function that makes them: it runs once, in the warehouse thread, so the
        decoding of a batch and its insert are one step with no await in between."""
        made: list[Batches] = []

        def insert_all() -> None:
            if not made:
                made.append(batches() if callable(batches) else batches)
            for table, rows in made[0]:
                for start in range(0, len(rows), self.settings.sink_batch_size):
                    self.warehouse.insert(table, rows[start : start + self.settings.sink_batch_size])

        while True:
            try:
                await self._in_warehouse_thread(insert_all)
                return
            except WarehouseError as exc:
                self.progress.warehouse_errors += 1
                # the server client reconnects by itself; rows already stored by a half-done batch are
                # stored again, and the ReplacingMergeTree tables drop the copies
                log.error("warehouse insert failed, retrying in %ss: %s", self.settings.sink_retry_seconds, exc)
                await asyncio.sleep(self.settings.sink_retry_seconds)

    # --- agents --------------------------------------------------------------------------------

    async def _process(self, stream: Any) -> Any:
        s = self.settings
        async for events in stream.take_events(s.process_batch_messages, within=s.process_batch_seconds):
            yield await self.process_batch([(raw_message(event), _timestamp(event)) for event in events])

    async def process_batch(self, messages: Sequence[tuple[RawMessage, float | None]]) -> int:
        """Process raw messages (with their Kafka timestamps) and return once everything they produce
        (enriched rows, dead letters, changelog records) is acknowledged by the broker and the state
        is applied: only then may their offsets be committed. Returns the number of records."""
        s = self.settings
        state = BatchState(self.table_store)
        now = time.time()
        acks: list[asyncio.Future[Any]] = []
        results: list[tuple[RawMessage, ProcessResult]] = []
        for message, produced_at in messages:
            state.begin(message.partition)
            try:
                result = process_message(message, state, self.scorer.score, now, self.options)
                state.commit()
            except Exception as exc:  # a bug must not stop the agent nor lose the input
                state.rollback()  # the failed message leaves no state behind
                log.exception("processing failed; dead-lettering the whole message")
                result = failed_message_result(message, exc, now)
            key = message.key.encode()
            if result.interactions or result.responses:
                value = encode_enriched(result, produced_at)
                acks.append(await self.producer.send(s.topic_enriched, value, key=key))
            for letter in result.dead_letters:
                log.warning(
                    "dead letter (%s/%s/%s#%s): %s",
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    letter.record_index,
                    letter.reason,
                )
                acks.append(
                    await self.producer.send(s.topic_dead_letter, letter.original, key=key, headers=letter.headers())
                )
            results.append((message, result))
            # let the other agents run between messages: a batch is ~0.5 s of work, and the sink can only hand
            # its next insert to the warehouse thread when it gets a turn of the event loop. Measured on the
            # 1M-customer memory run: rows not yet stored when processing ended, 608k without, 364k with
            await asyncio.sleep(0)

        changelog = []
        for (table, partition), records in state.changes().items():
            topic = self.table_store.changelog_topic(table)
            changelog.append((table, partition, records, await self.producer.send_records(topic, partition, records)))
        await asyncio.gather(*acks, *(future for *_, batches in changelog for _, future in batches))
        for table, partition, records, batches in changelog:
            self.table_store.apply(table, partition, with_offsets(records, batches))

        for message, result in results:
            self.progress.raw_messages += 1
            self.progress.records += result.records
            if message.format in WEBHOOK_FORMATS:
                self.progress.webhook_messages += 1
            else:
                self.progress.replay_records += result.records
            self.progress.interactions_out += len(result.interactions)
            self.progress.dead_letters_out += len(result.dead_letters)
        return sum(result.records for _, result in results)

    async def _sink(self, stream: Any) -> Any:
        async for values in stream.take(self.settings.sink_batch_messages, within=self.settings.sink_batch_seconds):
            batch = await self._store_enriched(values)
            stored_at = time.time()
            for produced_at, count in zip(batch.produced_at, batch.interaction_counts, strict=True):
                if produced_at is not None and count:
                    self.freshness.add(stored_at - produced_at, count)
            self.progress.interactions_stored += batch.interactions.num_rows
            self.progress.responses_stored += batch.responses.num_rows
            yield batch.interactions.num_rows

    async def _store_enriched(self, values: list[bytes]) -> EnrichedBatch:
        decoded: list[EnrichedBatch] = []

        def decode() -> Batches:  # in the warehouse thread: Arrow's JSON reader runs without the GIL
            decoded.append(decode_enriched_batch(values))
            return [(INTERACTIONS, decoded[0].interactions), (RESPONSES, decoded[0].responses)]

        await self.store(decode)
        return decoded[0]

    async def _dead_letter_sink(self, stream: Any) -> Any:
        async for events in stream.take_events(
            self.settings.sink_batch_messages, within=self.settings.sink_batch_seconds
        ):
            rows = [dead_letter_from_message(e.message).row() for e in events]
            await self.store([(DEAD_LETTERS, rows)])
            self.progress.dead_letters_stored += len(rows)
            yield len(rows)

    # --- web -----------------------------------------------------------------------------------

    def _register_web(self) -> None:
        rapport = self

        @self.app.page("/rapport/progress")
        class ProgressView(View):
            async def get(self, request: Request) -> Response:
                try:
                    assigned = len(rapport.app.consumer.assignment())
                except Exception:  # consumer not started yet
                    assigned = 0
                edge = rapport.edge.counters
                progress = rapport.progress
                progress.edge_messages, progress.edge_requests = edge.messages, edge.requests
                progress.edge_rejected = edge.rejected
                return self.json(
                    asdict(progress) | {"settled": progress.settled, "assigned": assigned} | rapport.freshness.summary()
                )

        @self.app.page("/rapport/sql")
        class SqlView(View):
            async def post(self, request: Request) -> Response:
                sql = (await request.text()).strip()
                fmt = request.query.get("format", "TSV")
                if not sql.lower().startswith(READ_ONLY_PREFIXES):
                    return self.text("only read-only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)\n", status=400)
                try:
                    text = await rapport._in_warehouse_thread(rapport.warehouse.query_text, sql, fmt)
                except WarehouseError as exc:
                    return self.text(f"{exc}\n", status=400)
                return self.text(text)

        if self.settings.worker_role in ("all", "edge"):
            # straight onto the aiohttp router of Faust's web server: Faust's view dispatch (sensors,
            # wrappers) would cost ~20% of the edge's throughput and adds nothing to these handlers
            router = cast(Any, self.app.web).web_app.router  # the aiohttp driver's Application
            for method, path, handler in self.edge.routes():
                router.add_route(method, path, handler)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._warehouse is not None:
            self._warehouse.close()
