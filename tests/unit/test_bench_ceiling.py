"""The benchmark ceiling's lookup (streams/bench/ceiling.py): it must replay exactly what the real processing
did, or the ceiling would measure less work than the worker does."""

from __future__ import annotations

from typing import Any

from streams.bench.ceiling import Precomputed
from streams.local.demo import generate
from streams.processing.pipeline import DictState, encode_enriched, process_message
from streams.processing.records import ProcessResult, RawMessage


def test_second_pass_replays_results_state_writes_and_bytes() -> None:
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> ProcessResult:
        calls.append(1)
        return process_message(*args, **kwargs)

    lines = list(generate(customers=30, days=2))
    messages = [RawMessage(payload=b"\n".join(lines[i : i + 40]), format="jsonl", key="k", offset=i)
                for i in range(0, len(lines), 40)]  # fmt: skip
    precomputed = Precomputed(counted, encode_enriched)

    first_state, first = DictState(), []
    for m in messages:
        result = precomputed.process(m, first_state, lambda text: 0.5, 1.7e9)
        first.append((result, precomputed.encode(result, None)))
    assert len(calls) == len(messages) and precomputed.computed == len(messages)
    assert any(r.interactions for r, _ in first) and any(r.dead_letters for r, _ in first)

    second_state = DictState()  # a fresh state gets the same writes, in the same order
    for m, (result, encoded) in zip(messages, first, strict=True):
        again = precomputed.process(m, second_state, lambda text: 0.5, 1.7e9)
        assert again is result
        assert precomputed.encode(again, 1.8e9) == encoded == encode_enriched(result, None)
    assert len(calls) == len(messages) and precomputed.replayed == len(messages)  # nothing computed again
    assert second_state.tables == first_state.tables and any(first_state.tables.values())
