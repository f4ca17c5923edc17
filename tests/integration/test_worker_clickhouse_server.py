"""The worker against a real ClickHouse server process (clickhouse://, native protocol): the same
pipeline and DDL as chdb, and a server that dies and comes back while events flow."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.kafka.cluster import ensure_topics
from streams.kafka.replay import replay
from streams.local.broker import free_port
from streams.local.stack import WorkerProcess, topic_specs
from streams.settings import Settings
from streams.sinks.warehouse import connect
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server_available
from tests.support.factories import brand_reply, inbound, jsonl

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(clickhouse_server_available() is not None, reason=str(clickhouse_server_available())),
]


def conversation_file(path: Path, start: int, n: int) -> Path:
    events = []
    for i in range(start, start + n):
        events += [inbound(f"x:{i}", author_id=f"c{i % 5}"), brand_reply(f"x:{i + 500_000}", f"x:{i}", f"c{i % 5}")]
    path.write_bytes(jsonl(events))
    return path


def server_counts(url: str) -> tuple[int, int, int]:
    warehouse = connect(url)
    try:
        return (
            warehouse.scalar("SELECT count() FROM interactions FINAL"),
            warehouse.scalar("SELECT count() FROM responses FINAL"),
            warehouse.scalar("SELECT sum(response_seconds) FROM responses FINAL"),
        )
    finally:
        warehouse.close()


def test_worker_writes_to_a_clickhouse_server_and_survives_its_restart(tmp_path, broker):
    with ClickHouseServer(tmp_path / "ch") as server:
        url = server.url("rapport")
        settings = Settings(
            data_dir=tmp_path / "data",
            kafka_brokers=broker.bootstrap,
            clickhouse_url=url,
            web_port=free_port(),
            admin_port=0,  # any free port: two stacks never share 6067
            sink_retry_seconds=0.5,
        )
        ensure_topics(broker.bootstrap, topic_specs(settings))
        worker = WorkerProcess(settings, tmp_path / "worker.log").start()
        try:
            send = lambda f: replay(f, "jsonl", settings.broker_list, settings.topic_raw, 50, progress=False)  # noqa: E731
            assert send(conversation_file(tmp_path / "a.jsonl", 1, 100)) == 200
            worker.wait_drained(200, timeout=60)
            assert server_counts(url) == (200, 100, 100 * 150)

            server.kill()  # the warehouse dies; events keep coming
            assert send(conversation_file(tmp_path / "b.jsonl", 1001, 100)) == 200
            deadline = time.monotonic() + 30
            while worker.progress()["warehouse_errors"] == 0:
                assert time.monotonic() < deadline, "the sink never tried the dead server"
                time.sleep(0.2)
            assert not worker.progress()["settled"]  # nothing acknowledged as stored

            server.start()  # back on the same data dir: the sink's retry stores everything
            worker.wait_drained(400, timeout=90)
            assert server_counts(url) == (400, 200, 200 * 150)
        finally:
            assert worker.stop() == 0
