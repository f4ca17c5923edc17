"""Reply matching: which inbound messages did their brand answer directly, and how fast.

Definition. An inbound conversational message M (addressed to brand B) is *answered directly* when
B wrote a conversational message whose ``parent_id`` is M. Its response is B's *first* such reply:
the earliest ``created_at``, ties broken by the smaller reply event_id. ``response_seconds`` =
reply.created_at − M.created_at, clamped at 0 when platform clocks put the reply first. Replies to
replies, replies by another brand, reactions and shares are not responses.

Events may arrive in any order (a replayed file is not sorted by time), so the state of a thread is
kept per inbound id, ``brand \\x1f inbound_id``::

    {"in": [created_at, customer_id, conversation_id] or null,   # the inbound message, once seen
     "r": [created_at, reply_id] or null}                        # the best reply seen so far

A response is emitted when both are known and whenever a better (earlier) reply shows up; the
``responses`` table keeps the earliest (its ``_version`` decreases with ``replied_at``). Redelivered
events change nothing.
"""

from __future__ import annotations

from typing import Any

from schemas.interaction import Interaction

VERSION_BASE = 2**32  # replied_at (unix s) < 2**32 until 2106


def thread_key(brand: str, inbound_id: str) -> str:
    return f"{brand}\x1f{inbound_id}"


def thread_id_for(event: Interaction) -> str | None:
    """The inbound id whose thread state ``event`` touches, if any."""
    if not event.is_conversational:
        return None
    if event.direction == "inbound":
        return event.event_id
    return event.parent_id


def apply_event(
    state: dict[str, Any] | None, event: Interaction, ingested_at: int
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(response row to emit or None, new thread state) for an event with a ``thread_id_for``."""
    state = dict(state) if state else {"in": None, "r": None}
    ts = int(event.created_at.timestamp())
    changed = False
    if event.direction == "inbound":
        if state["in"] is None:
            state["in"] = [ts, event.author_id, event.conversation_id or event.event_id]
            changed = True
    else:
        candidate = [ts, event.event_id]
        if state["r"] is None or tuple(candidate) < tuple(state["r"]):
            state["r"] = candidate
            changed = True
    if not (changed and state["in"] is not None and state["r"] is not None):
        return None, state
    inbound_at, customer, conversation = state["in"]
    replied_at, reply_id = state["r"]
    inbound_id = event.event_id if event.direction == "inbound" else event.parent_id
    response = {
        "inbound_id": inbound_id,
        "reply_id": reply_id,
        "brand": event.brand,
        "platform": event.platform,
        "conversation_id": conversation,
        "customer_id": customer,
        "inbound_at": inbound_at,
        "replied_at": replied_at,
        "response_seconds": max(0, replied_at - inbound_at),
        "response_business_seconds": None,  # filled in with the brand's business hours, if it has any (pipeline)
        "ingested_at": ingested_at,
        "_version": VERSION_BASE - replied_at,
    }
    return response, state
