"""The Faust application: topics, tables, agents and web views, built from one ``Settings``.

Data flow (one topic hop on the hot path; every Kafka message carries many records)::

    raw topic ──process──▶ enriched topic ──sink──▶ ClickHouse interactions, responses, sla_breaches
       (key = brand)   ├──▶ dead-letter topic ──dead_letter_sink──▶ ClickHouse dead_letters
                       └──▶ sla-breaches topic (for alerting consumers)

- ``process``: parse, then the per-event steps of ``streams.processing.pipeline.STEPS`` (pure): conversation,
  customer, sentiment, needs reply, customer history, reply matching, SLA deadlines.
  It waits for the broker's acknowledgement of what it produced before its input offset can be
  committed (at-least-once; the ClickHouse tables deduplicate).
- ``sink`` / ``dead_letter_sink``: batched inserts bounded by size and time, through ``WarehouseSink``
  (``streams/worker/sink.py``): a worker thread, retries with back-off, nothing acknowledged before it
  is stored and its hours marked for the aggregate; a timer recomputes the marked hours of ``care_hourly``.
- Timers: the Kafka reachability check, wall-clock SLA ticks to live brands, the aggregate recomputation.

The parts: ``WarehouseSink`` (inserts), ``Progress``/``Freshness`` (``progress.py``), the Kafka message
conversions (``messages.py``), ``Health`` (``health.py``), ``Producer`` (``streams/kafka``), the ``Edge``
and the admin listener (``streams/web``); ``Rapport`` wires them into one Faust app.

Kafka key = brand everywhere, so one brand's events and state live on one partition: the customer
history and reply threads of a brand are local to the worker that owns that partition, with no
cross-worker lookups, and per-brand order is preserved.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, cast

import faust
import mode
import orjson
from faust.web.base import BlueprintManager

from schemas.contract import DEAD_LETTERS, Table
from streams.kafka.cluster import BrokerError, TopicSpec, ensure_topics, wait_reachable
from streams.kafka.producer import Producer, with_offsets
from streams.kafka.transport import Transport
from streams.processing import sla
from streams.processing.pipeline import (
    STATE_TABLES,
    TICK,
    Options,
    encode_enriched,
    process_message,
    tick_payload,
)
from streams.processing.platforms import EMPTY_DIRECTORY, BrandDirectory, secret_settings
from streams.processing.records import (
    HEADER_FORMAT,
    ProcessResult,
    RawMessage,
    failed_message_result,
    is_webhook_format,
)
from streams.processing.sentiment import SentimentScorer
from streams.settings import Settings
from streams.sinks.warehouse import ChdbWarehouse, Rows, Warehouse, WarehouseError
from streams.web.admin import AdminServer, health_routes
from streams.web.admin_token import admin_token
from streams.web.edge import Edge
from streams.web.readonly_sql import Limits, QueryRefused, run_read_only
from streams.worker.health import Health
from streams.worker.messages import dead_letter_from_message, message_timestamp, raw_message
from streams.worker.progress import Freshness, Progress
from streams.worker.sink import WarehouseSink
from streams.worker.state import BatchState, TableStore

log = logging.getLogger("rapport.worker")

Batches = Sequence[tuple[Table, Rows]]

#: How often the worker checks that a Kafka broker answers (and how a dead broker is noticed while idle).
KAFKA_CHECK_SECONDS = 5.0
#: Longest idle keep-alive, and so the longest a client may take to send a request's headers.
KEEPALIVE_SECONDS = 30.0

# RocksDB table stores (RAPPORT_TABLE_STORE=rocksdb://): Faust's defaults keep up to 3 × 64 MiB write
# buffers, a 2 GiB block cache and a 500 MiB compressed cache per partition database, i.e. all state in RAM;
# these keep a worker with millions of customers under 1 GiB resident (`rapport bench memory`), state on disk.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 << 20,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 << 20,
    "block_cache_compressed_size": 8 << 20,
}


class Rapport:
    """Builds the Faust app for ``settings``; attributes are the app's topics, tables and agents."""

    def __init__(self, settings: Settings, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.progress = Progress()
        self.freshness = Freshness()
        self.scorer = SentimentScorer()
        self.brands = BrandDirectory.from_file(settings.brands_file) if settings.brands_file else EMPTY_DIRECTORY
        self.options = Options(history_max_events=settings.history_max_events, brands=self.brands)
        # operators' queries wait for chdb's lock in their own thread, never in the sink's queue
        self._admin_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapport-admin-sql")
        self.health = Health()
        self.sink = WarehouseSink(settings, self.health, self.progress, warehouse)
        self.admin_listening = False  # the admin listener starts with the app's services, after recovery
        #: called once with the reason when the worker cannot go on; `rapport worker` stops on it (exit 1)
        self.on_fatal: Callable[[str], None] = lambda reason: None
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
            # an agent's input buffer, in messages: small enough that a sink falling behind the process agent
            # leaves its backlog of enriched messages in the broker, not in the worker's memory; much smaller
            # costs throughput (the measurements are in docs/performance.md, "Memory")
            stream_buffer_maxsize=8 * s.process_batch_messages,
            producer_acks=-1,
            web_enabled=True,
            # the public listener serves the webhooks and /health/* only: none of Faust's own pages (its
            # /table/… views would show the customers' state to anyone who can reach the webhooks)
            web_router_enabled=False,
            web_tables_enabled=False,
            web_stats_enabled=False,
            web_graph_enabled=False,
            web_metrics_enabled=False,
            # aiohttp has no header-read timeout: its keep-alive timer (armed when a connection opens, not
            # pushed back by incoming bytes) is what bounds a client that sends its headers slowly. The body
            # is bounded by the edge itself (RAPPORT_WEBHOOK_READ_TIMEOUT)
            web_application_options={"handler_args": {"keepalive_timeout": KEEPALIVE_SECONDS}},
            web_bind=s.web_host,
            web_host=s.web_host,
            web_port=s.web_port,
            autodiscover=False,
        )
        self.app.transport = Transport(  # see streams/kafka/transport.py
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
            # raw bytes in and out: Rapport (de)serialises with orjson and writes them itself (streams/worker/state.py)
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
            self.process_agent = self.app.agent(self.raw_topic, name="process")(self._guarded("process", self._process))
            self.sink_agent = self.app.agent(self.enriched_topic, name="sink")(self._guarded("sink", self._sink))
            self.dead_letter_agent = self.app.agent(self.dead_letter_topic, name="dead_letter_sink")(
                self._guarded("dead_letter_sink", self._dead_letter_sink)
            )
        self.producer = Producer(
            settings,
            on_error=self.health.kafka.failed,
            on_success=self.health.kafka.ok,
            stopping=lambda: self.health.stopping,
        )
        self.edge = Edge(
            secrets={name: s.secret_list(name) for name in secret_settings()},
            brands=self.brands,
            publish=self.producer.publish,
            max_bytes=s.webhook_max_bytes,
            read_timeout=s.webhook_read_timeout,
        )
        rapport = self

        @self.app.service
        class _ProducerLifecycle(mode.Service):
            async def on_stop(self) -> None:
                await rapport.producer.stop()

        @self.app.service
        class _AdminListener(mode.Service):
            async def on_start(self) -> None:
                self.server = AdminServer(rapport, s.admin_host, s.admin_port, admin_token(s))
                await self.server.start()
                rapport.admin_listening = True

            async def on_stop(self) -> None:
                await self.server.stop()

        @self.app.timer(KAFKA_CHECK_SECONDS)
        async def _check_kafka() -> None:
            await rapport.check_kafka()

        if self.tables:

            @self.app.service
            class _SlaBreachTopic(mode.Service):
                async def on_start(self) -> None:  # only produced to, so Faust does not create it
                    spec = TopicSpec(s.topic_sla_breaches, s.topic_partitions, s.topic_replication)
                    await asyncio.get_running_loop().run_in_executor(None, ensure_topics, s.kafka_brokers, [spec])

            @self.app.timer(s.sla_tick_seconds)
            async def _sla_ticks() -> None:
                await rapport.send_sla_ticks()

            @self.app.timer(s.aggregate_seconds)
            async def _refresh_aggregates() -> None:
                await rapport.sink.refresh_aggregates()

        self._register_web()

    # --- failure and health --------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """The worker cannot go on: record why, log it, and exit 1 at once (``on_fatal``).

        At once, not through Faust's graceful stop: leaving an agent's ``take()`` loop acknowledges the
        batch in hand (Faust acks it in the loop's ``finally``), and the stop then commits those offsets,
        so a batch that failed would be lost. Exiting before the event loop runs again commits nothing:
        the restarted worker reads the uncommitted input again, and the tables deduplicate."""
        if self.health.fail(reason):
            log.critical("rapport: error: %s; stopping the worker", reason)
            self.on_fatal(reason)

    def _guarded(self, name: str, agent: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``agent`` whose error stops the worker: Faust would log "Crashed" and go on without it, so the
        edge would keep answering 200 for data that nothing processes (and would have acked the batch)."""

        async def guarded(stream: Any) -> Any:
            try:
                async for value in agent(stream):
                    yield value
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("agent %s stopped on an error", name, exc_info=exc)
                self.fail(f"agent {name} stopped: {type(exc).__name__}: {exc}")
                raise

        guarded.__name__ = guarded.__qualname__ = name
        return guarded

    async def check_kafka(self) -> None:
        """A metadata request to the bootstrap servers; failing for longer than RAPPORT_KAFKA_RETRY_SECONDS
        stops the worker (an idle worker would otherwise wait for a dead broker forever)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, wait_reachable, self.settings.kafka_brokers, KAFKA_CHECK_SECONDS / 2)
        except BrokerError as exc:
            self.health.broker.failed(str(exc))
            if self.health.broker.seconds() >= self.settings.kafka_retry_seconds:
                self.fail(f"Kafka unreachable for {self.health.broker.seconds():.0f}s: {exc}")
            return
        self.health.broker.ok()

    async def send_sla_ticks(self) -> None:
        """A wall-clock tick to every live brand whose state this worker holds (streams/processing/sla.py): a
        raw message keyed by the brand, so it reaches the brand's partition and goes through the process agent
        like any event; the agent passes the deadlines only if the brand is still live when it gets there."""
        now = time.time()
        acks = []
        for brand, clock in self.table_store.items(sla.CLOCK):
            if isinstance(clock, dict) and clock.get("wm", 0) >= now - sla.LIVE_SECONDS:
                headers = [(HEADER_FORMAT, TICK.encode())]
                acks.append(
                    await self.producer.send(self.settings.topic_raw, tick_payload(now), brand.encode(), None, headers)
                )
        await asyncio.gather(*acks)

    def agents_not_running(self) -> list[str]:
        if self.settings.worker_role == "edge":
            return []
        down = []
        for agent in (self.process_agent, self.sink_agent, self.dead_letter_agent):
            actors = list(getattr(agent, "_actors", ()))
            if not actors or any(actor.crashed or actor.should_stop for actor in actors):
                down.append(agent.name.rsplit(".", 1)[-1])
        return down

    def assigned_partitions(self) -> int:
        try:
            return len(self.app.consumer.assignment())
        except Exception:  # consumer not started yet
            return 0

    def liveness(self) -> tuple[bool, list[str]]:
        """Live unless the worker failed: a supervisor restarts a worker that is not live."""
        return (False, [self.health.failure]) if self.health.failure else (True, [])

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready when live, not stopping, every agent runs and partitions are assigned (process roles)."""
        reasons = [self.health.failure] if self.health.failure else []
        if self.health.stopping and not self.health.failure:
            reasons.append("stopping")
        down = self.agents_not_running()
        if down:
            reasons.append(f"agents not running: {', '.join(down)}")
        if self.settings.worker_role != "edge" and not self.assigned_partitions():
            reasons.append("no partitions assigned yet")
        if not self.admin_listening:
            reasons.append("admin listener not started yet")
        return not reasons, reasons

    def progress_report(self) -> dict[str, Any]:
        """The counters, with an honest ``settled``: also requires a healthy worker that owns partitions
        and no recent Kafka error (with the broker gone nothing is "settled", whatever the counters say)."""
        edge = self.edge.counters
        progress = self.progress
        progress.edge_messages, progress.edge_requests = edge.messages, edge.requests
        progress.edge_rejected = edge.rejected
        assigned = self.assigned_partitions()
        settled = (
            progress.settled
            and self.health.failure is None
            and self.health.warehouse.text is None
            and self.health.kafka.text is None  # cleared by the next acknowledged send
            and self.health.broker.text is None  # cleared by the next answered check
            and (assigned > 0 or self.settings.worker_role == "edge")
        )
        return (
            asdict(progress)
            | {
                "settled": settled,
                "assigned": assigned,
                "failure": self.health.failure,
                "stopping": self.health.stopping,
                "kafka_last_error": self.health.kafka.text or self.health.broker.text,
                "warehouse_last_error": self.health.warehouse.text,
            }
            | self.freshness.summary()
        )

    async def admin_query(self, sql: str, fmt: str) -> tuple[int, str]:
        """A read-only query on the worker's chdb (``streams/web/readonly_sql.py``): (HTTP status, text)."""
        warehouse = self.warehouse
        if not isinstance(warehouse, ChdbWarehouse):
            return 400, "this worker stores into a ClickHouse server: query it directly (rapport sql --clickhouse)\n"
        s = self.settings
        limits = Limits(s.admin_query_seconds, s.admin_query_max_bytes, s.admin_result_max_bytes)
        loop = asyncio.get_running_loop()
        try:
            text = await loop.run_in_executor(self._admin_executor, run_read_only, warehouse, sql, fmt, limits)
        except QueryRefused as exc:
            return 400, f"refused: {exc}\n"
        except WarehouseError as exc:
            return 400, f"{exc}\n"
        return 200, text

    # --- agents --------------------------------------------------------------------------------

    async def _process(self, stream: Any) -> Any:
        s = self.settings
        async for events in stream.take_events(s.process_batch_messages, within=s.process_batch_seconds):
            yield await self.process_batch([(raw_message(event), message_timestamp(event)) for event in events])

    async def process_batch(self, messages: Sequence[tuple[RawMessage, float | None]]) -> int:
        """Process raw messages (with their Kafka timestamps) and return once everything they produce
        (enriched rows, dead letters, changelog records) is acknowledged by the broker and the state
        is applied: only then may their offsets be committed. Returns the number of records."""
        s = self.settings
        state = BatchState(self.table_store)
        now = time.time()
        acks: list[asyncio.Future[Any]] = []
        results: list[tuple[RawMessage, ProcessResult]] = []
        # the breach topic has the raw topic's partition count and key (the brand): a breach goes to the partition
        # of the raw message that decided it
        breaches: dict[int, list[tuple[bytes, bytes]]] = {}
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
            if result.interactions or result.responses or result.breaches:
                value = encode_enriched(result, produced_at)
                acks.append(await self.producer.send(s.topic_enriched, value, key=key))
            if result.breaches:  # for alerting consumers (the sink stores them from the enriched topic)
                breaches.setdefault(message.partition, []).extend((key, orjson.dumps(b)) for b in result.breaches)
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
            # let the other agents run between messages: a batch is long work, and the sink can only hand its
            # next insert to the warehouse thread when it gets a turn of the event loop
            await asyncio.sleep(0)

        for partition, records in breaches.items():  # packed into record batches, like the changelogs
            sent = await self.producer.send_records(s.topic_sla_breaches, partition, records)
            acks.extend(future for _, future in sent)
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
            if is_webhook_format(message.format):
                self.progress.webhook_messages += 1
            else:
                self.progress.replay_records += result.records
                self.progress.replay_interactions += len(result.interactions)
            self.progress.interactions_out += len(result.interactions)
            self.progress.dead_letters_out += len(result.dead_letters)
        return sum(result.records for _, result in results)

    async def _sink(self, stream: Any) -> Any:
        async for values in stream.take(self.settings.sink_batch_messages, within=self.settings.sink_batch_seconds):
            batch = await self.sink.store_enriched(values)
            stored_at = time.time()
            for produced_at, count in zip(batch.produced_at, batch.interaction_counts, strict=True):
                if produced_at is not None and count:
                    self.freshness.add(stored_at - produced_at, count)
            self.progress.interactions_stored += batch.interactions.num_rows
            self.progress.responses_stored += batch.responses.num_rows
            yield batch.interactions.num_rows

    async def _dead_letter_sink(self, stream: Any) -> Any:
        async for events in stream.take_events(
            self.settings.sink_batch_messages, within=self.settings.sink_batch_seconds
        ):
            rows = [dead_letter_from_message(e.message).row() for e in events]
            await self.sink.store([(DEAD_LETTERS, rows)])
            self.progress.dead_letters_stored += len(rows)
            yield len(rows)

    # --- web -----------------------------------------------------------------------------------

    def _register_web(self) -> None:
        # straight onto the aiohttp router of Faust's web server: Faust's view dispatch (sensors, wrappers)
        # adds work per request that these handlers do not need
        web = cast(Any, self.app.web)
        web.blueprints = BlueprintManager([])  # not even Faust's "/" index: webhooks and health only
        router = web.web_app.router  # the aiohttp driver's Application
        for path, handler in health_routes(self):
            router.add_get(path, handler)  # GET and HEAD
        if self.settings.worker_role in ("all", "edge"):
            for method, path, handler in self.edge.routes():
                router.add_route(method, path, handler)

    @property
    def warehouse(self) -> Warehouse:
        return self.sink.warehouse

    def close(self) -> None:
        self._admin_executor.shutdown(wait=True)
        self.sink.close()
