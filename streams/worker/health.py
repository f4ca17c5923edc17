"""What a worker knows about its own health: the figures behind ``/health/live``, ``/health/ready``,
the honest ``settled`` of the progress, and the one line that says why a stop is stuck.

- **failure**: set once, when the worker cannot go on (an agent stopped on an error, Kafka failing for
  longer than ``RAPPORT_KAFKA_RETRY_SECONDS``, a warehouse error that retrying cannot mend). From then on
  the worker is neither live nor ready, stops, and exits 1 with this text.
- **stopping**: a stop was requested (a signal or a failure); retry loops end early instead of waiting.
- **kafka / broker / warehouse errors**: the latest error of each and since when they have lasted (cleared
  by the next success of the same kind), so a stuck stop or drain can say what it waits for. ``kafka`` is
  the producer's sends, ``broker`` the periodic reachability check: kept apart so that neither clears
  the other's error, and so the check's run of failures restarts when the broker answers again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Trouble:
    """The latest error of one dependency and since when it has kept failing (None: healthy)."""

    text: str | None = None
    since: float | None = None  # time.monotonic() of the first error of the current run of errors

    def failed(self, text: str) -> None:
        self.text = text
        if self.since is None:
            self.since = time.monotonic()

    def ok(self) -> None:
        self.text, self.since = None, None

    def seconds(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since


@dataclass
class Health:
    failure: str | None = None
    stopping: bool = False
    kafka: Trouble = field(default_factory=Trouble)
    broker: Trouble = field(default_factory=Trouble)
    warehouse: Trouble = field(default_factory=Trouble)

    def fail(self, reason: str) -> bool:
        """Record the first failure; True when this call recorded it (later ones are consequences)."""
        self.stopping = True
        if self.failure is not None:
            return False
        self.failure = reason
        return True

    def stuck_reason(self) -> str:
        """Why nothing progresses, in one line (for a stop or a drain that does not finish)."""
        parts = []
        if self.failure:
            parts.append(self.failure)
        if self.warehouse.text:
            parts.append(f"warehouse failing for {self.warehouse.seconds():.0f}s: {self.warehouse.text}")
        for trouble in (self.kafka, self.broker):
            if trouble.text:
                parts.append(f"Kafka failing for {trouble.seconds():.0f}s: {trouble.text}")
        return "; ".join(parts) or "no error recorded: an agent is still busy"
