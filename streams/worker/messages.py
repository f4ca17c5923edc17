"""Kafka messages as the pipeline sees them: a consumed raw message → ``RawMessage``; a dead-letter
message → ``DeadLetter`` (its headers carry the reason and the source)."""

from __future__ import annotations

from typing import Any

import orjson

from streams.processing.records import HEADER_BRAND, HEADER_CONTEXT, HEADER_FORMAT, DeadLetter, RawMessage


def _headers(message: Any) -> dict[str, bytes]:
    headers = message.headers or {}
    items = headers.items() if isinstance(headers, dict) else headers
    return {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in items}


def raw_message(event: Any) -> RawMessage:
    message = event.message
    headers = _headers(message)
    context = None
    if HEADER_CONTEXT in headers:
        try:
            context = orjson.loads(headers[HEADER_CONTEXT])
        except orjson.JSONDecodeError:
            context = None  # every record is then rejected with "context: missing or malformed"
    key = message.key.decode("utf-8", errors="replace") if isinstance(message.key, bytes) else ""
    brand_filter = headers[HEADER_BRAND].decode("utf-8", errors="replace") if HEADER_BRAND in headers else None
    return RawMessage(
        payload=message.value if isinstance(message.value, bytes) else b"",
        format=headers.get(HEADER_FORMAT, b"").decode("utf-8", errors="replace"),
        key=key,
        context=context,
        brand_filter=brand_filter,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )


def message_timestamp(event: Any) -> float | None:
    """The Kafka CreateTime of the event's message in seconds (None when the message has none)."""
    stamp = event.message.timestamp
    return stamp if isinstance(stamp, int | float) else None


def dead_letter_from_message(message: Any) -> DeadLetter:
    headers = _headers(message)
    topic, partition, offset, index = ([*headers.get("rapport-source", b"///").decode().split("/"), "", "", ""])[:4]
    return DeadLetter(
        reason=headers.get("rapport-reason", b"").decode("utf-8", errors="replace"),
        format=headers.get(HEADER_FORMAT, b"").decode("utf-8", errors="replace"),
        original=message.value or b"",
        brand=headers.get("rapport-brand", b"").decode("utf-8", errors="replace"),
        source_topic=topic,
        source_partition=int(partition or 0),
        source_offset=int(offset or 0),
        record_index=int(index or 0),
        received_at=int(headers.get("rapport-received-at", b"0") or 0),
    )
