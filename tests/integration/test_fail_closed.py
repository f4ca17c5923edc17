"""A worker fails closed, tried on real components (tansu, a `rapport worker` process, chdb or a real
ClickHouse server) the way an attacker and an operator would meet it:

- the public port serves the webhooks and /health/* only; the admin listener wants its token, refuses
  browser pages, and runs operators' SQL read-only in the engine, within a time limit that keeps the
  pipeline flowing;
- deliveries posted the moment the edge answers, on a broker whose topics do not exist yet, are stored;
- a broker that disappears, a table dropped on the server, a warehouse down during a stop: the worker
  exits 1 with one `rapport: error:` line within its bounds, and never says "settled" meanwhile.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.contract import TABLES
from streams.local.broker import LocalBroker
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server_available
from tests.support.factories import inbound
from tests.support.worker import StartWorker, WorkerProcess, bearer, http

pytestmark = pytest.mark.integration

TOKEN = "admin-token-for-tests"
EVENTS_TOKEN = "events-token-for-tests"
#: The secrets every worker of this module runs with: the tests send them, or look for them where they must not be.
SECRETS: dict[str, Any] = {"admin_token": TOKEN, "events_token": EVENTS_TOKEN, "x_consumer_secret": "x-secret"}
ROOT = Path(__file__).resolve().parents[2]


def admin_headers(token: str = TOKEN) -> dict[str, str]:
    return bearer(token)


def events_body(start: int, n: int, brand: str = "acme") -> bytes:
    return orjson.dumps([inbound(f"x:{i}", brand, f"c{i % 3}") for i in range(start, start + n)])


# --- the listeners --------------------------------------------------------------------------------


ADMIN_PATHS = ["/rapport/progress", "/rapport/sql", "/metrics", "/table/", "/router/", "/stats/", "/graph/", "/"]


def test_public_port_serves_webhooks_and_health_only_and_admin_wants_its_token(worker: StartWorker) -> None:
    with worker(**SECRETS) as running:
        assert http(running.base_url + "/health/live")[0] == 200
        ready = http(running.base_url + "/health/ready")
        assert ready[0] == 200 and orjson.loads(ready[1])["ready"] is True
        for path in ADMIN_PATHS:
            assert http(running.base_url + path)[0] == 404, path
            assert http(running.base_url + path, b"SELECT 1", admin_headers())[0] in (404, 405), path
        # the admin listener: no token, wrong token, a token of another scheme, non-UTF-8 bytes → 401
        for headers in ({}, admin_headers("wrong"), {"Authorization": f"Basic {TOKEN}"}, admin_headers(TOKEN + "x")):
            assert http(running.admin_url + "/rapport/progress", headers=headers)[0] == 401
            assert http(running.admin_url + "/rapport/sql", b"SELECT 1", headers)[0] == 401
        assert raw_status(running.settings.admin_port, b"Authorization: Bearer \xff\xfe\r\n") == 401
        # a web page's request (any Origin, text/plain, even with the token) is refused
        page = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
        assert http(running.admin_url + "/rapport/sql", b"SELECT 1", page)[0] in (401, 403)
        assert http(running.admin_url + "/rapport/sql", b"SELECT 1", page | admin_headers())[0] == 403
        assert running.sql_answer("SELECT 1") == (200, "1\n")
        assert running.progress()["assigned"] > 0
        # a query whose body arrives in two parts runs whole, never its first part alone
        assert slow_admin_query(running, b"SELECT 1", b"23") == "123\n"
        for path in ("/health/live", "/health/ready"):
            head = urllib.request.Request(running.base_url + path, method="HEAD")
            with urllib.request.urlopen(head, timeout=5) as response:
                assert response.status == 200
        status, metrics = http(running.admin_url + "/metrics", headers=admin_headers())
        assert status == 200 and "rapport_interactions_stored " in metrics
        # the admin listener is on loopback, the token file is private
        assert running.settings.admin_host == "127.0.0.1"


def slow_admin_query(worker: WorkerProcess, first: bytes, rest: bytes) -> str:
    import socket

    length = len(first) + len(rest)
    head = (
        f"POST /rapport/sql?format=TSV HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", worker.settings.admin_port), timeout=15) as sock:
        sock.sendall(head + first)
        time.sleep(1.0)
        sock.sendall(rest)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, _, body = answer.partition(b"\r\n\r\n")
    assert b" 200 " in status.split(b"\r\n")[0], answer
    return body.decode()


def raw_status(port: int, header: bytes) -> int:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /rapport/progress HTTP/1.1\r\nHost: x\r\n" + header + b"Connection: close\r\n\r\n")
        answer = sock.recv(1024)
    return int(answer.split(b" ", 2)[1])


SQL_ATTACKS = [
    "SELECT 1; DROP TABLE interactions",
    "/* c */ DROP TABLE interactions",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM file('{data}/webhook-secrets.env', 'LineAsString')",
    "SELECT file('{data}/admin-token')",
    "SELECT 1 INTO OUTFILE '{outfile}'",
    "SELECT 'import os' INTO OUTFILE '{pth}' FORMAT TSVRaw",
    "WITH x AS (SELECT 1) SELECT * FROM x SETTINGS readonly = 0",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM executable('id', 'TSV', 'x String')",
    "SYSTEM FLUSH LOGS",
    "INSERT INTO interactions (event_id) VALUES ('x:forged')",
    # an attacker's pass found these: what EXPLAIN AST hides, what read-only mode lets through
    "SHOW COLUMNS FROM interactions WHERE throwIf(1, file('{data}/admin-token')) = 0",
    "DESCRIBE (SELECT 1 AS `import os`) INTO OUTFILE '{pth}' FORMAT TSVRaw",
    "SELECT * APPLY(file) FROM (SELECT '{data}/webhook-secrets.env' AS p)",
    "SELECT * FROM bigquery('p', 'd', 't', access_token = 'tok', base_url = 'http://127.0.0.1:9')",
]


def test_sql_attacks_over_http_are_refused_and_a_heavy_query_does_not_stall_the_pipeline(
    tmp_path: Path, worker: StartWorker
) -> None:
    with worker(**SECRETS, admin_query_seconds=2.0) as running:
        assert running.post_events(events_body(1, 10)) == 200
        running.wait(
            lambda: running.sql_answer("SELECT count() FROM interactions FINAL") == (200, "10\n"), 60, "10 stored"
        )
        (running.settings.data_dir / "webhook-secrets.env").write_text("RAPPORT_X_CONSUMER_SECRET=hush-hush\n")
        site = Path(next(p for p in sys.path if p.endswith("site-packages")))
        outfile, pth = tmp_path / "written.txt", site / "rapport-attack-http.pth"
        for attack in SQL_ATTACKS:
            query = attack.format(data=running.settings.data_dir, outfile=outfile, pth=pth)
            status, text = running.sql_answer(query)
            assert 400 <= status < 500, (query, status, text)
            assert "hush-hush" not in text and TOKEN not in text and "root:" not in text
        assert not outfile.exists() and not pth.exists()
        tables = "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
        # no attack dropped, renamed or added a table: exactly the contract's tables and the migrations' ledger
        assert running.sql_answer(tables)[1].split() == sorted([t.name for t in TABLES] + ["schema_migrations"])
        assert running.sql_answer("SELECT count() FROM interactions FINAL") == (200, "10\n")

        # a heavy query holds chdb for at most admin_query_seconds; a delivery meanwhile is stored soon after
        import threading

        heavy: list[tuple[int, str]] = []
        started = time.monotonic()
        thread = threading.Thread(
            target=lambda: heavy.append(running.sql_answer("SELECT sum(sipHash64(number)) FROM numbers(2500000000)"))
        )
        thread.start()
        time.sleep(0.5)
        assert running.post_events(events_body(100, 5)) == 200
        running.wait(
            lambda: running.sql_answer("SELECT count() FROM interactions FINAL") == (200, "15\n"), 30, "stored"
        )
        stored_after = time.monotonic() - started
        thread.join(30)
        assert heavy and heavy[0][0] == 400 and "TIMEOUT_EXCEEDED" in heavy[0][1]
        assert stored_after < 2.0 + 8.0  # the query's limit plus the sink's own batching and a margin


# --- Kafka ----------------------------------------------------------------------------------------


def test_deliveries_posted_the_moment_the_edge_answers_on_fresh_topics_are_all_stored(
    worker: StartWorker,
) -> None:
    """No topic exists when the worker starts (a fresh cluster): the first deliveries race the topics'
    creation and the leader elections that follow it."""
    running = worker(**SECRETS, topics=False, ready=False)
    try:
        crc = running.base_url + "/webhooks/x?crc_token=abc"
        running.wait(lambda: http(crc, timeout=2)[0] == 200, 90, "the edge answering")
        statuses = [running.post_events(events_body(1000 + 20 * i, 20, brand=f"b{i % 4}")) for i in range(10)]
        assert statuses == [200] * 10
        running.wait(running.ready, 60, "ready")
        count = "SELECT count() FROM interactions FINAL"
        running.wait(lambda: running.sql_answer(count) == (200, "200\n"), 60, "all 200 events stored")
        assert running.process.poll() is None
    finally:
        assert running.stop() == 0


def test_a_worker_whose_broker_disappears_exits_1_saying_why(broker: LocalBroker, worker: StartWorker) -> None:
    try:
        running = worker(**SECRETS, kafka_retry_seconds=6.0, stop_timeout=10.0)
        assert running.post_events(events_body(1, 5)) == 200
        running.wait(lambda: running.progress()["settled"] and running.progress()["interactions_stored"] == 5, 60, "5")
    finally:
        broker.stop()
    started = time.monotonic()
    # a delivery now cannot be acknowledged: 503 once the edge's retries (5 s) run out, and the progress
    # says why instead of "settled"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {EVENTS_TOKEN}"}
    assert http(running.base_url + "/webhooks/events", events_body(50, 1), headers, timeout=15)[0] == 503
    progress = running.progress()
    assert progress["settled"] is False and progress["kafka_last_error"], progress
    while running.process.poll() is None and time.monotonic() - started < 60:
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    running.stop()
    assert running.process.returncode == 1, running.log_text()[-3000:]
    assert elapsed < 6.0 + 5.0 + 10.0  # retry bound + check interval + margin
    lines = running.error_lines()
    assert lines and "Kafka" in lines[-1], running.log_text()[-3000:]
    assert "Traceback" not in lines[-1]


# --- the warehouse (a real ClickHouse server process) ------------------------------------------------

needs_server = pytest.mark.skipif(clickhouse_server_available() is not None, reason=str(clickhouse_server_available()))


@needs_server
def test_a_table_dropped_on_the_server_stops_the_worker_and_migrate_recreates_it(
    tmp_path: Path, worker: StartWorker
) -> None:
    from streams.sinks.warehouse import connect

    with ClickHouseServer(tmp_path / "ch") as server:
        url = server.url("rapport")
        with worker(**SECRETS, clickhouse_url=url) as running:
            assert running.post_events(events_body(1, 3)) == 200
            running.wait(lambda: running.progress()["interactions_stored"] == 3, 60, "3 stored")
            warehouse = connect(url)
            warehouse.command("DROP TABLE interactions")
            warehouse.close()
            assert running.post_events(events_body(10, 3)) == 200
            deadline = time.monotonic() + 60
            while running.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert running.process.returncode == 1
            line = running.error_lines()[-1]
            assert "interactions" in line and "rapport migrate" in line, line
        migrate = subprocess.run(
            [sys.executable, "-m", "streams.cli", "migrate", "--clickhouse", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr
        assert "recreated missing tables: interactions" in migrate.stdout
        # restarted, the worker processes the raw topic again: the events of the failed batch are stored
        with worker(**SECRETS, clickhouse_url=url):
            warehouse = connect(url)
            try:
                deadline = time.monotonic() + 60
                while warehouse.scalar("SELECT count() FROM interactions FINAL") < 3:
                    assert time.monotonic() < deadline
                    time.sleep(0.3)
                assert warehouse.scalar("SELECT count() FROM interactions FINAL WHERE event_id = 'x:10'") == 1
            finally:
                warehouse.close()


@needs_server
def test_a_stop_with_the_warehouse_down_is_prompt_and_loses_nothing(tmp_path: Path, worker: StartWorker) -> None:
    from streams.sinks.warehouse import connect

    with ClickHouseServer(tmp_path / "ch") as server:
        url = server.url("rapport")
        with worker(**SECRETS, clickhouse_url=url, stop_timeout=20.0) as running:
            assert running.post_events(events_body(100, 3)) == 200
            running.wait(lambda: running.progress()["interactions_stored"] == 3, 60, "3 stored")
            server.kill()
            assert running.post_events(events_body(200, 4)) == 200
            running.wait(lambda: running.progress()["warehouse_errors"] > 0, 30, "the sink failing")
            progress = running.progress()
            assert progress["settled"] is False and progress["warehouse_last_error"]
            started = time.monotonic()
            running.process.send_signal(signal.SIGTERM)
            running.process.wait(60)
            elapsed = time.monotonic() - started
            assert running.process.returncode == 1
            line = running.error_lines()[-1]
            assert "warehouse" in line, line
            assert elapsed < 10.0, elapsed  # prompt: far below the stop timeout, since nothing can progress
        server.start()
        # nothing of the unstored batch was acknowledged: a new worker stores it
        with worker(**SECRETS, clickhouse_url=url):
            warehouse = connect(url)
            try:
                deadline = time.monotonic() + 60
                while warehouse.scalar("SELECT count() FROM interactions FINAL") < 7:
                    assert time.monotonic() < deadline, warehouse.scalar("SELECT count() FROM interactions FINAL")
                    time.sleep(0.3)
            finally:
                warehouse.close()


def test_a_stop_that_hangs_is_bounded_and_a_second_signal_is_immediate(tmp_path: Path, worker: StartWorker) -> None:
    """With the broker gone, Faust's graceful stop cannot commit and waits: the stop timeout ends it with
    the reason, and a second signal ends it at once."""
    for second_signal in (False, True):
        workdir = tmp_path / ("second" if second_signal else "first")
        workdir.mkdir()
        broker = LocalBroker(workdir / "broker").start()
        try:
            running = worker(
                **SECRETS,
                data_dir=workdir / "data",
                kafka_brokers=broker.bootstrap,
                stop_timeout=6.0,
                kafka_retry_seconds=120.0,
            )
        finally:
            broker.stop()
        time.sleep(1.0)
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        if second_signal:
            time.sleep(0.5)
            running.process.send_signal(signal.SIGTERM)
        running.process.wait(60)
        elapsed = time.monotonic() - started
        assert running.process.returncode == 1, running.log_text()[-2000:]
        line = running.error_lines()[-1]
        if second_signal:
            assert elapsed < 3.0 and "second SIGTERM" in line, (elapsed, line)
        else:
            assert 5.0 < elapsed < 6.0 + 5.0, elapsed
            assert "did not stop within 6s" in line and "Kafka" in line, line
