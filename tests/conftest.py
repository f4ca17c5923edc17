"""Test tiers, by what a test needs (pick one with ``./dev test -m unit`` or ``-m integration``):

- ``unit`` (tests/unit): pure logic, or one in-process component (the embedded chdb, an aiohttp app on a
  loopback port); seconds in all.
- ``integration`` (tests/integration): real processes: the tansu broker, `rapport worker` / `rapport up`
  subprocesses, a ClickHouse server; minutes.

Shared fixtures (each for one test, cleaned up after it):

- ``broker``: a tansu broker on loopback.
- ``worker``: a factory, ``worker(**settings)`` → a ready `rapport worker` subprocess on ``broker`` (its
  topics created first), a :class:`tests.support.worker.WorkerProcess`; every worker it started is stopped
  after the test.
- ``warehouse``: a migrated chdb warehouse under ``tmp_path``, closed after the test.

Test data: ``tests/support/factories.py``; a ClickHouse server process: ``tests/support/clickhouse_server.py``;
the worker harness itself (HTTP answers, waiting, its log): ``tests/support/worker.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from streams.local.broker import LocalBroker
    from streams.sinks.warehouse import Warehouse
    from tests.support.worker import StartWorker, WorkerProcess

UNIT_DIR = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A tansu broker on loopback for one test: started before it, stopped (and its port freed) after it."""
    from streams.local.broker import LocalBroker

    with LocalBroker(tmp_path / "broker") as started:
        yield started


@pytest.fixture
def worker(tmp_path: Path, broker: LocalBroker) -> Iterator[StartWorker]:
    """``worker(**settings)``: a `rapport worker` subprocess, started once ``/health/ready`` answers.

    ``settings`` override the defaults: ``data_dir`` ``tmp_path/data``, ``kafka_brokers`` the ``broker``
    fixture's, a free web port and a free admin port (its token generated into the data directory unless
    ``admin_token`` is given). ``topics=False``: the worker's topics are not created first (a fresh cluster);
    ``ready=False``: return once launched; ``log``: the log file (``tmp_path/worker.log``, then
    ``worker-2.log``, …). Every worker started is stopped after the test (SIGTERM, then SIGKILL after a
    bounded wait); one that fails to start is killed at once.
    """
    from streams.kafka.cluster import ensure_topics
    from streams.local.broker import free_port
    from streams.local.stack import topic_specs
    from streams.settings import Settings
    from tests.support.worker import TEARDOWN_STOP_SECONDS, WorkerProcess

    started: list[WorkerProcess] = []

    def start(*, log: Path | None = None, ready: bool = True, topics: bool = True, **settings: Any) -> WorkerProcess:
        defaults: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "kafka_brokers": broker.bootstrap,
            "web_port": free_port(),
            "admin_port": 0,  # any free port: two workers never share 6067
        }
        config = Settings(**(defaults | settings))
        if topics:
            ensure_topics(config.kafka_brokers, topic_specs(config))
        numbered = f"worker-{len(started) + 1}.log" if started else "worker.log"
        process = WorkerProcess(config, log or tmp_path / numbered)
        started.append(process)
        return process.start(ready=ready)

    yield start
    for process in started:
        process.stop(TEARDOWN_STOP_SECONDS)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    """A chdb warehouse in ``tmp_path/clickhouse`` with every migration applied, closed after the test.

    chdb opens one data directory per process at a time: a test using this fixture must not hold another chdb
    session (a module-scoped one of its own included). Opening and migrating takes a tenth of a second; a
    module whose tests share one warehouse's rows keeps a module-scoped fixture instead, as
    tests/unit/test_contract_migrations.py and tests/unit/test_readonly_sql.py do.
    """
    from schemas.migrate import migrate
    from streams.sinks.warehouse import connect

    opened = connect(f"chdb://{tmp_path / 'clickhouse'}")
    try:
        migrate(opened)
        yield opened
    finally:
        opened.close()
