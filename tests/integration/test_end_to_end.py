"""End to end on real components: tansu broker + a `rapport worker` process + chdb.

The expected figures are computed here, independently of the product code, straight from the CSV
with csv.DictReader and the brand rules of the issue (written again, plainly, below).
"""

from __future__ import annotations

import asyncio
import csv
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from streams.kafka.replay import replay
from streams.settings import Settings
from tests.support import TWCS_DIR
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

TWCS = TWCS_DIR / "twcs_head5000.csv"
needs_twcs = pytest.mark.skipif(not TWCS.exists(), reason=f"real sample data not found at {TWCS}")


# --- the independent computation ----------------------------------------------------------------


def expected_figures(path: Path) -> dict[str, tuple[int, int, float | None]]:
    """Per brand: (inbound messages, answered directly by that brand, median first response s)."""
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    by_id = {r["tweet_id"]: r for r in rows}
    brands = {r["author_id"] for r in rows if r["inbound"] == "False"}
    lower = {b.lower(): b for b in brands}
    when = {r["tweet_id"]: datetime.strptime(r["created_at"], "%a %b %d %H:%M:%S %z %Y") for r in rows}
    children = defaultdict(list)
    for r in rows:
        if r["in_response_to_tweet_id"]:
            children[r["in_response_to_tweet_id"]].append(r)

    def brand(tweet_id: str, depth: int = 0) -> str | None:
        r = by_id[tweet_id]
        if r["inbound"] == "False":
            return r["author_id"]
        parent = r["in_response_to_tweet_id"]
        if parent in by_id and depth < 500:
            b = brand(parent, depth + 1)
            if b is not None:
                return b
        for handle in re.findall(r"@(\w+)", r["text"]):
            if handle.lower() in lower:
                return lower[handle.lower()]
        answers = sorted((when[c["tweet_id"]], c["author_id"]) for c in children[tweet_id] if c["inbound"] == "False")
        return answers[0][1] if answers else None

    inbound: dict[str, int] = defaultdict(int)
    delays: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["inbound"] != "True":
            continue
        b = brand(r["tweet_id"])
        if b is None:
            continue
        inbound[b] += 1
        replies = [
            when[c["tweet_id"]] for c in children[r["tweet_id"]] if c["inbound"] == "False" and c["author_id"] == b
        ]
        if replies:
            delays[b].append(max(0.0, (min(replies) - when[r["tweet_id"]]).total_seconds()))
    return {b: (inbound[b], len(delays[b]), statistics.median(delays[b]) if delays[b] else None) for b in inbound}


FIGURES_SQL = """
SELECT i.brand, i.inbound, ifNull(r.answered, 0), r.median
FROM (SELECT brand, count() AS inbound FROM interactions FINAL WHERE direction = 'inbound' GROUP BY brand) AS i
LEFT JOIN (SELECT brand, count() AS answered, quantileExactInclusive(0.5)(response_seconds) AS median
           FROM responses FINAL GROUP BY brand) AS r ON r.brand = i.brand
"""


def figures(worker: WorkerProcess) -> dict[str, tuple[int, int, float | None]]:
    out = {}
    for line in worker.sql(FIGURES_SQL, "JSONCompactEachRow").splitlines():
        brand, inbound, answered, median = orjson.loads(line)
        out[brand] = (int(inbound), int(answered), None if answered == 0 else float(median))
    return out


def count(worker: WorkerProcess, sql: str) -> int:
    return int(worker.sql(sql).strip())


# --- helpers ---------------------------------------------------------------------------------------


def send(settings: Settings, path: Path, fmt: str) -> int:
    return replay(path, fmt, settings.broker_list, settings.topic_raw, settings.replay_chunk_records, progress=False)


def wait_for(predicate, timeout: float, what: str | Callable[[], str], poll: float = 0.5) -> None:
    """``what`` may be a function, to describe the state at the time of the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")


# --- tests ----------------------------------------------------------------------------------------


@needs_twcs
def test_twcs_figures_match_independent_computation_and_replay_is_idempotent(worker):
    expected = expected_figures(TWCS)
    running = worker()
    settings = running.settings
    try:
        assert send(settings, TWCS, "twcs") == 5000
        progress = running.wait_drained(5000, timeout=240)
        assert progress["interactions_stored"] + progress["dead_letters_stored"] == 5000

        first = figures(running)
        assert first == expected
        assert sum(v[0] for v in first.values()) > 2500  # the computation covers the real data
        stored = count(running, "SELECT count() FROM interactions FINAL")
        dead = count(running, "SELECT count() FROM dead_letters FINAL")
        assert stored + dead == 5000
        assert count(running, "SELECT count() FROM responses FINAL") == sum(v[1] for v in expected.values())
        history = running.sql(
            "SELECT sum(customer_prior_inbound), sum(customer_replies_received) FROM interactions FINAL"
        )

        # the same file again: every figure, count and history column stays the same
        assert send(settings, TWCS, "twcs") == 5000
        running.wait_drained(10000, timeout=240)
        assert figures(running) == expected
        assert count(running, "SELECT count() FROM interactions FINAL") == stored
        assert count(running, "SELECT count() FROM dead_letters FINAL") == dead
        assert (
            running.sql("SELECT sum(customer_prior_inbound), sum(customer_replies_received) FROM interactions FINAL")
            == history
        )
        # without FINAL the raw rows really are there twice: FINAL is what deduplicates
        assert count(running, "SELECT count() FROM interactions") >= stored
    finally:
        assert running.stop() == 0


async def committed_and_last_offsets(settings: Settings) -> dict[int, tuple[int | None, int]]:
    """Per raw partition: the worker group's committed offset, and the offset just past the last message
    (counted by reading: tansu's reported end offsets are wrong, see docs/local-broker.md)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    partitions = [TopicPartition(settings.topic_raw, p) for p in range(settings.topic_partitions)]
    group = AIOKafkaConsumer(bootstrap_servers=settings.broker_list, group_id=settings.app_id)
    reader = AIOKafkaConsumer(bootstrap_servers=settings.broker_list, group_id=None, auto_offset_reset="earliest")
    await group.start()
    await reader.start()
    try:
        committed = {tp.partition: await group.committed(tp) for tp in partitions}
        reader.assign(partitions)
        past_last = {tp.partition: 0 for tp in partitions}
        while batch := await reader.getmany(timeout_ms=1500):
            for tp, records in batch.items():
                past_last[tp.partition] = records[-1].offset + 1
    finally:
        await group.stop()
        await reader.stop()
    return {p: (committed[p], past_last[p]) for p in past_last}


@needs_twcs
@pytest.mark.parametrize(
    ("store", "chunk"),
    [("memory://", 200), ("rocksdb://", 200), pytest.param("memory://", 5, id="memory-backlog-of-1000-messages")],
)
def test_worker_killed_mid_replay_ends_with_the_same_figures(worker, store, chunk):
    """The backlog variant covers the restart defect fixed in streams/kafka/transport.py: the first worker usually
    dies before its first commit, and the second must then read every raw message from the start."""
    expected = expected_figures(TWCS)
    # one raw message per batch, so that the kill lands mid-replay (a batch takes milliseconds)
    overrides = {"table_store": store, "replay_chunk_records": chunk, "process_batch_messages": 1}
    first = worker(**overrides)
    settings = first.settings
    try:
        send(settings, TWCS, "twcs")
        wait_for(lambda: first.progress()["records"] > 500, 120, "the worker to be mid-replay", poll=0.02)
        records_before_kill = first.progress()["records"]
    finally:
        first.kill()  # SIGKILL: no clean shutdown, uncommitted offsets are redelivered
    assert records_before_kill < 5000, "the kill must happen in the middle of the replay"

    second = worker(**overrides)  # the same topics, consumer group and data directory
    try:
        valid = sum(v[0] for v in expected.values())  # not the exact row count: outbound rows count too
        wait_for(
            lambda: (
                count(second, "SELECT count() FROM interactions FINAL")
                + count(second, "SELECT count() FROM dead_letters FINAL")
                == 5000
                and second.progress()["settled"]
            ),
            240 if chunk >= 200 else 90,
            "every record to be stored after the restart",
        )
        assert valid > 0
        assert figures(second) == expected
        # and the input is committed to the end: a message fetched but never processed would pin it
        offsets: dict[int, tuple[int | None, int]] = {}

        def committed_to_the_end() -> bool:
            offsets.update(asyncio.run(committed_and_last_offsets(settings)))
            return all(committed == past_last for committed, past_last in offsets.values())

        wait_for(committed_to_the_end, 30, lambda: f"the raw offsets to be committed to the end (now {offsets})")
    finally:
        assert second.stop() == 0


BAD_ROWS = (
    b"900001,111,True,Not a date,@AcmeCare hello,,\n",
    b"abc,111,True,Tue Oct 31 22:10:47 +0000 2017,@AcmeCare hi,,\n",
    b"900003,111,Maybe,Tue Oct 31 22:10:47 +0000 2017,@AcmeCare hey,,\n",
    b"900004,111,True\n",
    b"900005,111,True,Tue Oct 31 22:10:47 +0000 2017,\xff\xfe broken bytes @AcmeCare,,\n",
    b"900006,222,True,Tue Oct 31 22:11:47 +0000 2017,nobody addressed,,\n",
)


def test_bad_rows_are_dead_lettered_with_reason_and_bytes_and_the_worker_keeps_running(worker, tmp_path):
    header = b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
    good = (
        b'800001,333,True,Tue Oct 31 22:00:00 +0000 2017,"@AcmeCare my order, please",800002,\n'
        b"800002,AcmeCare,False,Tue Oct 31 22:05:00 +0000 2017,@333 on it!,,800001\n"
    )
    path = tmp_path / "mixed.csv"
    path.write_bytes(header + good + b"".join(BAD_ROWS))
    running = worker()
    settings = running.settings
    try:
        assert send(settings, path, "twcs") == 8
        progress = running.wait_drained(8, timeout=120)
        assert (progress["interactions_stored"], progress["dead_letters_stored"]) == (2, 6)
        assert running.sql("SELECT response_seconds FROM responses FINAL").strip() == "300"

        letters = [
            orjson.loads(x)
            for x in running.sql(
                "SELECT reason, hex(original) AS original FROM dead_letters FINAL", "JSONEachRow"
            ).splitlines()
        ]
        by_original = {bytes.fromhex(x["original"]): x["reason"] for x in letters}
        assert set(by_original) == set(BAD_ROWS)
        assert by_original[BAD_ROWS[0]].startswith("created_at:")
        assert by_original[BAD_ROWS[1]].startswith("tweet_id:")
        assert by_original[BAD_ROWS[2]].startswith("inbound:")
        assert "columns" in by_original[BAD_ROWS[3]]
        assert "UTF-8" in by_original[BAD_ROWS[4]]
        assert by_original[BAD_ROWS[5]].startswith("brand:")

        # the dead-letter topic itself holds the original bytes and the reason
        topic_letters = asyncio.run(read_topic(settings.broker_list, settings.topic_dead_letter, 6))
        assert {value for value, _ in topic_letters} == set(BAD_ROWS)
        assert all(headers["rapport-reason"] for _, headers in topic_letters)

        # the worker is still alive and processes the next input
        jsonl = tmp_path / "next.jsonl"
        jsonl.write_text(
            orjson.dumps(
                {
                    "event_id": "x:700001",
                    "platform": "x",
                    "brand": "AcmeCare",
                    "author_id": "444",
                    "direction": "inbound",
                    "kind": "mention",
                    "text": "thanks!",
                    "created_at": "2017-11-01T10:00:00Z",
                }
            ).decode()
            + "\n"
            + '{"event_id": "x:1", "brand": "AcmeCare"}\n'
        )
        assert send(settings, jsonl, "jsonl") == 2
        progress = running.wait_drained(10, timeout=60)
        assert (progress["interactions_stored"], progress["dead_letters_stored"]) == (3, 7)
    finally:
        assert running.stop() == 0


async def read_topic(brokers: list[str], topic: str, n: int) -> list[tuple[bytes, dict[str, bytes]]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=brokers, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    out: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out += [(r.value, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return out
