"""The worker's Kafka transport (streams/transport.py). Its repositioning after a restart is covered end
to end by tests/integration/test_end_to_end.py (the kill/restart tests, on a real broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.app import Rapport
from streams.settings import Settings
from streams.transport import Transport


def test_the_consumer_faust_builds_waits_at_most_the_configured_fetch_wait(tmp_path: Path) -> None:
    async def build() -> tuple[object, int]:
        rapport = Rapport(Settings(data_dir=tmp_path, fetch_max_wait_ms=123))
        consumer = rapport.app.consumer._thread._create_worker_consumer(rapport.app.transport)
        return rapport.app.transport, consumer._fetch_max_wait_ms

    transport, wait = asyncio.run(build())
    assert isinstance(transport, Transport)
    assert wait == 123  # Faust itself fixes 1,500 ms
