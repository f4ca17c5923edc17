"""Canonical interactions for tests: one inbound message and one brand reply, each overridable by field.

A canonical event (README "Input formats", ``schemas/interaction.py``) as a dict; ``line`` and ``jsonl``
turn them into the bytes a replay or ``/webhooks/events`` takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

CREATED_AT = "2026-01-05T10:00:00Z"


def inbound(event_id: str, brand: str = "acme", author_id: str = "c1", **fields: Any) -> dict[str, Any]:
    """A customer's mention of ``brand`` (override any field, e.g. ``kind``, ``text``, ``created_at``)."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "platform": "x",
        "brand": brand,
        "author_id": author_id,
        "direction": "inbound",
        "kind": "mention",
        "text": "where is my order?",
        "created_at": CREATED_AT,
    }
    return event | fields


def brand_reply(event_id: str, parent_id: str, customer_id: str, brand: str = "acme", **fields: Any) -> dict[str, Any]:
    """``brand``'s direct reply to ``parent_id``, a message of ``customer_id``."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "platform": "x",
        "brand": brand,
        "author_id": brand,
        "direction": "outbound",
        "kind": "reply",
        "text": "sorry! DM us",
        "parent_id": parent_id,
        "customer_id": customer_id,
        "created_at": "2026-01-05T10:02:30Z",
    }
    return event | fields


def brand_post(event_id: str, brand: str = "acme", **fields: Any) -> dict[str, Any]:
    """``brand``'s post to everyone: no parent, no customer (a broadcast; it moves the brand's event time)."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "platform": "x",
        "brand": brand,
        "author_id": brand,
        "direction": "outbound",
        "kind": "post",
        "text": "New opening hours from Monday!",
        "created_at": CREATED_AT,
    }
    return event | fields


def line(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def jsonl(events: Iterable[dict[str, Any]]) -> bytes:
    """JSON lines, one event a line, ending with a newline."""
    return b"".join(orjson.dumps(event) + b"\n" for event in events)
