"""The ``care_hourly`` aggregate survives a worker killed with SIGKILL: it never counts an event twice or misses one.

The aggregate is recomputed from ``FINAL`` rows for the hours marked in ``care_dirty`` (streams/metrics/care.py;
docs/metrics.md "How the aggregate never counts twice"): the sink marks the hours of a batch before acknowledging
it to Kafka, a timer recomputes the marked hours every ``RAPPORT_AGGREGATE_SECONDS``, and a clean stop recomputes
what is left. Tried here on real components (tansu, `rapport worker` subprocesses, chdb) with the demo data:

- a worker killed in the middle of the work, then a new worker on the same data and the same file replayed again:
  after a clean stop nothing is left to recompute, and the aggregate equals the computation from the rows, by
  brand and by brand and hour, and the number of inbound messages counted here from the file itself;
- a worker killed after its batches were stored but before its timer ran: the marks outlive it, the aggregate is
  behind, and ``rapport metrics`` recomputes the marked hours before printing the same figures as the rows give.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka.replay import replay
from streams.local.demo import write_demo_file
from streams.metrics import care
from streams.metrics.care import MetricsQuery
from streams.settings import Settings
from streams.sinks.warehouse import Warehouse, connect
from tests.support import cli
from tests.support.worker import StartWorker, WorkerProcess

pytestmark = pytest.mark.integration

#: Small raw messages, one per process batch and ~10 per sink batch: the ~10k demo lines make ~200 raw messages
#: and ~20 sink batches, so a kill lands between batches rather than after the last one.
CHUNK = 50
BATCHES: dict[str, Any] = {"replay_chunk_records": CHUNK, "process_batch_messages": 1, "sink_batch_size": 10 * CHUNK}
CONVERSATIONAL = {"post", "comment", "reply", "mention", "direct_message"}
KINDS = CONVERSATIONAL | {"reaction", "share", "follow"}
DRAIN_SECONDS = 90.0


# --- what the file holds, counted here without the product's code ---------------------------------------------


def read_demo(path: Path) -> tuple[int, int, Counter[str]]:
    """(valid events, bad lines, inbound messages per brand) of a demo file. A line is valid when it is a JSON
    object with a brand, a known kind and a created_at with its zone (the demo's bad lines break one of these:
    streams/local/demo.py ``bad_line``); an inbound message is a valid inbound, conversational, not deleted event."""
    valid, bad, inbound = 0, 0, Counter[str]()
    for line in path.read_bytes().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            bad += 1
            continue
        created = str(event.get("created_at", ""))
        if not event.get("brand") or event.get("kind") not in KINDS or not created.endswith(("Z", "+00:00")):
            bad += 1
            continue
        valid += 1
        if event["direction"] == "inbound" and event["kind"] in CONVERSATIONAL and not event.get("deleted", False):
            inbound[event["brand"]] += 1
    return valid, bad, inbound


def send(settings: Settings, path: Path) -> int:
    return replay(path, "jsonl", settings.broker_list, settings.topic_raw, CHUNK, progress=False)


def count(worker: WorkerProcess, sql: str) -> int:
    return int(worker.sql(sql).strip())


def open_warehouse(data_dir: Path) -> Warehouse:
    """The stopped (or killed) worker's chdb warehouse, opened in this process (close it before a worker or a
    `rapport` command opens it again: chdb lets one process at a time hold its data)."""
    return connect(f"chdb://{data_dir / 'clickhouse'}")


def dirty(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT count() FROM care_dirty FINAL"))


def inbound_by_brand(figures: list[dict[str, Any]]) -> dict[str, int]:
    return {row["brand"]: row["inbound_messages"] for row in figures}


# --- the tests --------------------------------------------------------------------------------------------------


def test_a_worker_killed_mid_work_never_makes_the_aggregate_count_twice_or_miss(
    tmp_path: Path, worker: StartWorker
) -> None:
    demo = tmp_path / "demo.jsonl"
    lines = write_demo_file(demo)
    valid, bad, inbound = read_demo(demo)
    assert valid + bad == lines and bad > 0 and sum(inbound.values()) > 1000

    first = worker(aggregate_seconds=1.0, **BATCHES)
    settings = first.settings
    try:
        assert send(settings, demo) == lines
        # some batches stored and some hours recomputed by the timer, most of the file still to come
        first.wait(
            lambda: first.progress()["interactions_stored"] >= 1000 and count(first, "SELECT count() FROM care_hourly"),
            DRAIN_SECONDS,
            "1000 events stored and the timer's first recomputation",
        )
        stored_before_kill = first.progress()["interactions_stored"]
    finally:
        first.kill()  # SIGKILL: no clean stop, no last recomputation, unacknowledged batches come again
    assert first.process.returncode == -9
    assert stored_before_kill < valid, "the kill must land in the middle of the work"

    # what the killed worker left: part of the rows, and an aggregate that has part of them
    warehouse = open_warehouse(settings.data_dir)
    try:
        left = int(warehouse.scalar("SELECT count() FROM interactions FINAL"))
        assert 0 < left < valid, left
        counted = sum(inbound_by_brand(care.metrics(warehouse, MetricsQuery())).values())
        assert 0 < counted < sum(inbound.values()), counted
    finally:
        warehouse.close()

    second = worker(aggregate_seconds=1.0, **BATCHES)  # the same data directory, broker, topics and group
    try:
        assert send(settings, demo) == lines  # the same file again: it must not count twice either
        stored = "SELECT count() FROM interactions FINAL"
        dead = "SELECT count() FROM dead_letters FINAL"

        def done() -> bool:
            progress = second.progress()
            return (
                progress["replay_records"] >= lines
                and progress["settled"]
                and count(second, stored) == valid
                and count(second, dead) == bad
            )

        second.wait(done, DRAIN_SECONDS, f"{valid} events and {bad} dead letters stored, settled")
    finally:
        stopped = second.stop()
    assert stopped == 0, second.log_text()[-3000:]

    warehouse = open_warehouse(settings.data_dir)
    try:
        # the clean stop recomputed every marked hour: nothing is pending, and refresh_pending is not called here
        assert dirty(warehouse) == 0
        for by in ("brand,hour", "brand"):
            query = MetricsQuery(by=by)
            aggregate, direct = care.metrics(warehouse, query), care.metrics(warehouse, query, direct=True)
            assert aggregate, by
            assert aggregate == direct, by
        by_brand = inbound_by_brand(care.metrics(warehouse, MetricsQuery(by="brand")))
        rows = warehouse.scalar(
            "SELECT count() FROM interactions FINAL WHERE direction = 'inbound' "
            "AND kind IN ('post', 'comment', 'reply', 'mention', 'direct_message') AND deleted = 0"
        )
        assert sum(by_brand.values()) == rows
        assert by_brand == dict(inbound)  # the file's own count: no message missed, none counted twice
        # and what the worker left is final: recomputing the pending hours finds none
        assert care.refresh_pending(warehouse) == 0
    finally:
        warehouse.close()


def test_marks_outlive_a_kill_before_the_timer_and_rapport_metrics_recomputes_them(
    tmp_path: Path, worker: StartWorker
) -> None:
    demo = tmp_path / "demo.jsonl"
    lines = write_demo_file(demo)
    valid, bad, inbound = read_demo(demo)

    running = worker(aggregate_seconds=3600.0)  # the timer never runs: only the marks record what changed
    settings = running.settings
    try:
        assert send(settings, demo) == lines
        running.wait_drained(lines, timeout=DRAIN_SECONDS)
        assert count(running, "SELECT count() FROM interactions FINAL") == valid
        assert count(running, "SELECT count() FROM dead_letters FINAL") == bad
    finally:
        running.kill()  # stored and acknowledged, never recomputed: nothing will deliver these batches again
    assert running.process.returncode == -9

    query = MetricsQuery(by="brand")
    warehouse = open_warehouse(settings.data_dir)
    try:
        marked = {
            (str(b), str(p), int(h))
            for b, p, h in warehouse.rows("SELECT brand, platform, toUnixTimestamp(hour) FROM care_dirty FINAL")
        }
        hours = {
            (str(b), str(p), int(h))
            for b, p, h in warehouse.rows(
                "SELECT DISTINCT brand, platform, toUnixTimestamp(toStartOfHour(created_at)) FROM interactions FINAL "
                "WHERE direction = 'inbound' AND kind IN ('post', 'comment', 'reply', 'mention', 'direct_message') "
                "AND deleted = 0"
            )
        }
        assert hours and hours <= marked, sorted(hours - marked)[:10]  # every hour with a message is marked
        direct = care.metrics(warehouse, query, direct=True)
        assert inbound_by_brand(direct) == dict(inbound)
        behind = care.metrics(warehouse, query)
        assert sum(inbound_by_brand(behind).values()) < sum(inbound.values())  # the aggregate is behind
        assert behind != direct
    finally:
        warehouse.close()

    answer = cli.rapport(tmp_path, "metrics", "--data-dir", str(settings.data_dir), "--format", "json")
    assert answer.returncode == 0, answer.stderr
    assert orjson.loads(answer.stdout) == direct

    warehouse = open_warehouse(settings.data_dir)
    try:
        assert dirty(warehouse) == 0  # `rapport metrics` recomputed and cleared the marks
        for by in ("brand,hour", "brand"):
            grouped = MetricsQuery(by=by)
            assert care.metrics(warehouse, grouped) == care.metrics(warehouse, grouped, direct=True), by
    finally:
        warehouse.close()
