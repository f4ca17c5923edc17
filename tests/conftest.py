"""Test tiers, by what a test needs (pick one with ``./dev test -m unit`` or ``-m integration``):

- ``unit`` (tests/unit): pure logic, or one in-process component (the embedded chdb, an aiohttp app on a
  loopback port); seconds in all.
- ``integration`` (tests/integration): real processes: the tansu broker, `rapport worker` / `rapport up`
  subprocesses, a ClickHouse server; minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT_DIR = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.unit)
