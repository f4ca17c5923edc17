"""The worker's Kafka transport (streams/kafka/transport.py). Its repositioning after a restart is covered end
to end by tests/integration/test_end_to_end.py (the kill/restart tests, on a real broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.kafka.transport import Transport
from streams.settings import Settings
from streams.worker.app import Rapport


def test_the_consumer_faust_builds_waits_at_most_the_configured_fetch_wait(tmp_path: Path) -> None:
    async def build() -> tuple[object, int]:
        rapport = Rapport(Settings(data_dir=tmp_path, fetch_max_wait_ms=123))
        consumer = rapport.app.consumer._thread._create_worker_consumer(rapport.app.transport)
        return rapport.app.transport, consumer._fetch_max_wait_ms

    transport, wait = asyncio.run(build())
    assert isinstance(transport, Transport)
    assert wait == 123  # Faust itself fixes 1,500 ms


def test_a_gap_of_unacknowledged_records_is_found_where_the_commits_would_stop() -> None:
    from streams.kafka.transport import unacknowledged_gaps

    acked = {
        ("raw", 0): [7, 8, 9],  # in order from the committed offset 7: nothing missing
        ("raw", 1): [96, 97],  # committed 3, so 3..95 were never acknowledged
        ("raw", 2): [5, 6],  # no commit yet, started at 0: 0..4 missing
        ("raw", 3): [],  # nothing acknowledged since the last commit
        ("raw", 4): [0, 1],  # no commit and no known start: nothing to compare with
    }
    committed = {("raw", 0): 7, ("raw", 1): 3, ("raw", 2): None, ("raw", 3): 12}
    starts = {("raw", 2): 0}
    assert unacknowledged_gaps(acked, committed, starts) == {("raw", 1): 3, ("raw", 2): 0}
