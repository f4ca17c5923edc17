"""The ceiling of ``rapport bench pipeline``: Rapport's own worker with its per-event processing made free.

The worker is the production one (``rapport worker``: same agents, batches, state store, changelogs,
enriched topic, sink and dead-letter sink), but ``process_message`` and ``encode_enriched`` are replaced
by a lookup. On a first pass over the raw messages the real functions run and their results are kept
(the rows, the dead letters, the state writes, the encoded enriched message). On a second pass over the
same messages the lookup returns those results, writes the same state and sends the same bytes, with no
parsing, validation, sentiment, history or reply matching. The rate of that second pass is what any
implementation of the per-event work, however fast, could reach inside this worker on this machine.

For the benchmark only. Run as ``python -m streams.bench.ceiling worker`` with the worker's ``RAPPORT_*``
environment (what :class:`streams.local.stack.WorkerProcess` does with ``module="streams.bench.ceiling"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.processing.pipeline import State
from streams.processing.records import ProcessResult, RawMessage

Process = Callable[..., ProcessResult]
Encode = Callable[..., bytes]


class _Recording:
    """A ``State`` that passes through to the batch state and keeps every write."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.writes: list[tuple[str, str, Any]] = []

    def get(self, table: str, key: str) -> Any:
        return self.state.get(table, key)

    def set(self, table: str, key: str, value: Any) -> None:
        self.writes.append((table, key, value))
        self.state.set(table, key, value)


class Precomputed:
    """``process`` and ``encode`` with the signatures of the pipeline's functions: computed once per
    distinct (key, payload), then replayed."""

    def __init__(self, process: Process, encode: Encode) -> None:
        self._process, self._encode = process, encode
        self._results: dict[tuple[str, bytes], tuple[ProcessResult, list[tuple[str, str, Any]]]] = {}
        self._encoded: dict[int, bytes] = {}
        self.computed = self.replayed = 0

    def process(self, message: RawMessage, state: State, *args: Any, **kwargs: Any) -> ProcessResult:
        key = (message.key, message.payload)
        known = self._results.get(key)
        if known is None:
            recording = _Recording(state)
            result = self._process(message, recording, *args, **kwargs)
            self._results[key] = (result, recording.writes)
            self._encoded[id(result)] = self._encode(result, None)
            self.computed += 1
            return result
        result, writes = known
        for table, name, value in writes:
            state.set(table, name, value)
        self.replayed += 1
        return result

    def encode(self, result: ProcessResult, produced_at: float | None = None) -> bytes:
        return self._encoded[id(result)]


def install() -> Precomputed:
    """Replace the worker's processing functions (``streams.worker.app`` imports them by name)."""
    import streams.worker.app as app

    precomputed = Precomputed(app.process_message, app.encode_enriched)
    app.process_message = precomputed.process
    app.encode_enriched = precomputed.encode
    return precomputed


if __name__ == "__main__":
    from streams.cli import main

    install()
    main()  # argv: worker
