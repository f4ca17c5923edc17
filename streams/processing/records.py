"""Raw messages and the records inside them.

A raw Kafka message carries the verbatim bytes of one delivery from a source: a chunk of lines of a
replayed file (several records of one brand), later a webhook body. Its headers say how to read it:

- ``rapport-format``: ``jsonl`` (one canonical ``Interaction`` JSON per line) or ``twcs`` (CSV rows of
  the Customer Support on Twitter data set, without the header line);
- ``rapport-context`` (twcs only): JSON list, one entry per record, of what only the whole file can
  tell (the brand, the conversation root, the customer); see ``streams/processing/twcs.py``;
- ``rapport-brand`` (webhooks: ``x``, ``meta``, ``events``): the body is stored verbatim once per brand
  it concerns; this copy carries only the events of that brand (see ``streams/web/edge.py``).

Packing many records per message is what lets one worker go past Faust's per-message cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.processing.platforms import WEBHOOK_PLATFORMS

FORMATS = ("jsonl", "twcs")  # files that can be replayed


def is_webhook_format(fmt: str) -> bool:
    """A body stored verbatim by the webhook edge: the format of a registered platform."""
    return fmt in WEBHOOK_PLATFORMS


HEADER_FORMAT = "rapport-format"
HEADER_CONTEXT = "rapport-context"
HEADER_BRAND = "rapport-brand"  # webhook copies: only this brand's events are parsed from the body
HEADER_RECEIVED_AT = "rapport-received-at"


@dataclass(frozen=True)
class RawMessage:
    """One message of the raw topic, as the processing functions see it (no Kafka types)."""

    payload: bytes
    format: str
    key: str = ""
    context: list[Any] | None = None
    brand_filter: str | None = None
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not become an interaction: the reason and its original bytes."""

    reason: str
    format: str
    original: bytes
    brand: str = ""
    source_topic: str = ""
    source_partition: int = 0
    source_offset: int = 0
    record_index: int = 0
    received_at: int = 0

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers of the dead-letter message (its value is the original bytes)."""
        source = f"{self.source_topic}/{self.source_partition}/{self.source_offset}/{self.record_index}"
        return [
            ("rapport-reason", self.reason.encode()),
            (HEADER_FORMAT, self.format.encode()),
            ("rapport-brand", self.brand.encode()),
            ("rapport-source", source.encode()),
            (HEADER_RECEIVED_AT, str(self.received_at).encode()),
        ]

    def row(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "format": self.format,
            "original": self.original,
            "brand": self.brand,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "record_index": self.record_index,
            "received_at": self.received_at,
        }


@dataclass
class ProcessResult:
    """What one raw message turns into: rows for ClickHouse (by the contract) and dead letters."""

    interactions: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)  # sla_breaches rows (streams/processing/sla.py)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: set when processing failed and the whole message became one dead letter: the records it holds
    whole_message_records: int | None = None

    @property
    def records(self) -> int:
        """Input records handled: each became a row or a dead letter (or is inside the whole message's)."""
        if self.whole_message_records is not None:
            return self.whole_message_records
        return len(self.interactions) + len(self.dead_letters)


def split_lines(payload: bytes) -> list[bytes]:
    """Non-blank lines of a JSON-lines payload, without their line ends."""
    return [line.rstrip(b"\r") for line in payload.split(b"\n") if line.strip()]


def group_csv_records(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Group physical lines (with their line ends) into CSV records, byte for byte.

    A record ends at a line end outside quotes. In RFC 4180 CSV an escaped quote is doubled, so
    "outside quotes" is "an even number of quote characters so far". A trailing unterminated
    record is yielded as it is (the parser then rejects it with a reason).
    """
    pending: list[bytes] = []
    quotes = 0
    for line in lines:
        pending.append(line)
        quotes += line.count(b'"')
        if quotes % 2 == 0:
            record = b"".join(pending)
            pending, quotes = [], 0
            if record.strip():
                yield record
    if pending and b"".join(pending).strip():
        yield b"".join(pending)


def split_csv_records(payload: bytes) -> list[bytes]:
    return list(group_csv_records(payload.splitlines(keepends=True)))


def message_records(message: RawMessage) -> int:
    """The records a raw message holds, as the replay counts them (a webhook body counts as one)."""
    if message.format == "jsonl":
        return len(split_lines(message.payload))
    if message.format == "twcs":
        return len(split_csv_records(message.payload))
    return 1


def failed_message_result(message: RawMessage, error: Exception, now: float) -> ProcessResult:
    """The result of a raw message whose processing failed unexpectedly (a bug, not bad input): the whole
    message is one dead letter, and it still accounts for all its records, so a replay can drain."""
    return ProcessResult(
        dead_letters=[whole_message_dead_letter(message, error, now)], whole_message_records=message_records(message)
    )


def dead_letter(message: RawMessage, index: int, original: bytes, reason: str, received_at: int) -> DeadLetter:
    """Record ``index`` of ``message`` (its ``original`` bytes) rejected for ``reason``."""
    return DeadLetter(
        reason=reason,
        format=message.format,
        original=original,
        brand=message.key,
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        record_index=index,
        received_at=received_at,
    )


def whole_message_dead_letter(message: RawMessage, error: Exception, now: float) -> DeadLetter:
    """Dead letter for a raw message whose processing failed unexpectedly (a bug, not bad input)."""
    reason = f"processing failed: {type(error).__name__}: {error}"
    return dead_letter(message, 0, message.payload, reason, int(now))
