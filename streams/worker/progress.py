"""What a worker has done since it started: its counters (``Progress``) and how fresh its stored data is
(``Freshness``). Read by ``rapport up`` and operators through the admin listener's ``/rapport/progress``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class Progress:
    """Counters since the worker started (for `rapport up --exit-when-drained` and operators)."""

    raw_messages: int = 0
    records: int = 0
    replay_records: int = 0  # records of replayed files (jsonl, twcs)
    replay_interactions: int = 0  # interactions made from those records (the rest were dead-lettered)
    webhook_messages: int = 0  # raw messages of the webhook formats processed
    edge_messages: int = 0  # raw messages the webhook edge produced (see streams/web/edge.py)
    edge_requests: int = 0
    edge_rejected: int = 0
    interactions_out: int = 0
    dead_letters_out: int = 0
    interactions_stored: int = 0
    responses_stored: int = 0
    dead_letters_stored: int = 0
    warehouse_errors: int = 0

    @property
    def settled(self) -> bool:
        """Everything produced is stored, and every raw message the edge produced was processed (the
        counters alone; :meth:`Rapport.progress_report` also requires a healthy worker)."""
        return (
            self.interactions_stored >= self.interactions_out
            and self.dead_letters_stored >= self.dead_letters_out
            and self.webhook_messages >= self.edge_messages
        )


class Freshness:
    """Produce-to-queryable latency of recent events: from the raw message's Kafka timestamp to the
    moment its rows were inserted into ClickHouse. Kept for the last ``window`` stored messages, each
    weighted by its number of events."""

    def __init__(self, window: int = 20_000) -> None:
        self.samples: deque[tuple[float, int]] = deque(maxlen=window)

    def add(self, seconds: float, events: int) -> None:
        self.samples.append((max(0.0, seconds), events))

    def clear(self) -> None:
        self.samples.clear()

    def percentile(self, q: float) -> float | None:
        """The smallest latency that at least ``q`` of the events did not exceed."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        total = sum(n for _, n in ordered)
        seen = 0
        for seconds, n in ordered:
            seen += n
            if seen >= q * total:
                return seconds
        return ordered[-1][0]

    def summary(self) -> dict[str, float | None]:
        p50, p99 = self.percentile(0.5), self.percentile(0.99)
        return {
            "freshness_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "freshness_p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "freshness_events": sum(n for _, n in self.samples),
        }
