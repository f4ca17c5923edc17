"""The worker against a real ClickHouse server process (clickhouse://, native protocol): the same
pipeline and DDL as chdb, and a server that dies and comes back while events flow."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.kafka.replay import replay
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


def test_worker_writes_to_a_clickhouse_server_and_survives_its_restart(tmp_path, worker):
    with ClickHouseServer(tmp_path / "ch") as server:
        url = server.url("rapport")
        running = worker(clickhouse_url=url, sink_retry_seconds=0.5)
        settings = running.settings
        try:
            send = lambda f: replay(f, "jsonl", settings.broker_list, settings.topic_raw, 50, progress=False)  # noqa: E731
            assert send(conversation_file(tmp_path / "a.jsonl", 1, 100)) == 200
            running.wait_drained(200, timeout=60)
            assert server_counts(url) == (200, 100, 100 * 150)

            server.kill()  # the warehouse dies; events keep coming
            assert send(conversation_file(tmp_path / "b.jsonl", 1001, 100)) == 200
            deadline = time.monotonic() + 30
            while running.progress()["warehouse_errors"] == 0:
                assert time.monotonic() < deadline, "the sink never tried the dead server"
                time.sleep(0.2)
            assert not running.progress()["settled"]  # nothing acknowledged as stored

            server.start()  # back on the same data dir: the sink's retry stores everything
            running.wait_drained(400, timeout=90)
            assert server_counts(url) == (400, 200, 200 * 150)
        finally:
            assert running.stop() == 0
