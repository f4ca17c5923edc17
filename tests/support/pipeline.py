"""The worker's processing and its sink, in process, for tests that build a warehouse from crafted events:
``process`` runs the process agent's own ``process_message`` over events sent as jsonl raw messages, ``store``
does what the sink and its timer do with the results (insert, mark the touched hours, recompute them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from schemas.contract import INTERACTIONS, RESPONSES, SLA_BREACHES
from streams.metrics import care, engagement
from streams.processing.pipeline import DictState, Options, process_message
from streams.processing.records import ProcessResult, RawMessage
from streams.processing.sentiment import SentimentScorer
from streams.sinks.warehouse import Warehouse
from streams.worker.sink import aggregate_buckets
from tests.support.factories import jsonl


def process(
    events: Sequence[dict[str, Any]],
    state: DictState,
    per_message: int = 3,
    options: Options | None = None,
    score: Callable[[str | None], float | None] | None = None,
) -> list[ProcessResult]:
    """``events`` through ``process_message``, ``per_message`` of them in each raw message (VADER scores unless
    ``score`` is given)."""
    score = score or SentimentScorer().score
    options = options or Options()
    return [
        process_message(RawMessage(jsonl(events[start : start + per_message]), "jsonl", "test"), state, score,
                        time.time(), options)
        for start in range(0, len(events), per_message)
    ]  # fmt: skip


def store(
    warehouse: Warehouse,
    results: Sequence[ProcessResult],
    refresh: bool = True,
    canned: engagement.CannedCache | None = None,
) -> None:
    """What the sink does with each enriched message: insert, mark the touched hours (before the ack); then what
    its timer does: recompute the marked hours (``refresh=False``: a worker killed before its timer ran; ``canned``:
    the worker's canned-reply windows)."""
    for result in results:
        batches = [(INTERACTIONS, result.interactions), (RESPONSES, result.responses), (SLA_BREACHES, result.breaches)]
        for table, rows in batches:
            warehouse.insert(table, rows)
        care.mark_dirty(warehouse, aggregate_buckets(batches))
    if refresh:
        care.refresh_pending(warehouse, canned)
