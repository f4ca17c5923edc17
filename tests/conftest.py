"""Test tiers, by what a test needs (pick one with ``./dev test -m unit`` or ``-m integration``):

- ``unit`` (tests/unit): pure logic, or one in-process component (the embedded chdb, an aiohttp app on a
  loopback port); seconds in all.
- ``integration`` (tests/integration): real processes: the tansu broker, `rapport worker` / `rapport up`
  subprocesses, a ClickHouse server; minutes.

Shared fixtures: ``broker`` (a tansu broker for one test). Test data: ``tests/support/factories.py``; a
ClickHouse server process: ``tests/support/clickhouse_server.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from streams.local.broker import LocalBroker

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
