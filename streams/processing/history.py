"""The customer's history with a brand, kept per (brand, customer), and the columns it gives each event.

State (JSON-serialisable, stored in a Faust table keyed ``brand \\x1f customer``)::

    {"first": <unix s, earliest event seen>,
     "ev": {event_id: [created_at unix s, 0 = inbound | 1 = outbound, sentiment or null]}}

``ev`` holds the customer's conversational events (messages, not reactions), capped to the most
recent ``max_events``. Columns, computed against the events *before* this one (by created_at, then
event_id), so they do not depend on the order events arrive in as long as the earlier ones arrived:

- ``customer_first_seen``: earliest created_at of any event between them (this one included);
- ``customer_prior_inbound``: earlier inbound messages from the customer to the brand;
- ``customer_replies_received``: earlier outbound brand messages addressed to the customer;
- ``customer_last_sentiment``: sentiment of the latest earlier inbound message that has text (None if none).

Idempotent: an event is remembered by its id, so a redelivered event changes no count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.interaction import Interaction

INBOUND, OUTBOUND = 0, 1


@dataclass(frozen=True)
class HistoryColumns:
    customer_first_seen: int | None = None
    customer_prior_inbound: int = 0
    customer_replies_received: int = 0
    customer_last_sentiment: float | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "customer_first_seen": self.customer_first_seen,
            "customer_prior_inbound": self.customer_prior_inbound,
            "customer_replies_received": self.customer_replies_received,
            "customer_last_sentiment": self.customer_last_sentiment,
        }


def history_key(brand: str, customer: str) -> str:
    return f"{brand}\x1f{customer}"


def apply_event(
    state: dict[str, Any] | None, event: Interaction, sentiment: float | None, max_events: int
) -> tuple[HistoryColumns, dict[str, Any]]:
    """Columns for ``event`` and the customer's new state. Pure: ``state`` is not modified."""
    ts = int(event.created_at.timestamp())
    first = ts if state is None else min(int(state["first"]), ts)
    events: dict[str, list[Any]] = dict(state["ev"]) if state else {}

    me = (ts, event.event_id)
    prior_inbound = replies = 0
    last: tuple[tuple[int, str], float] | None = None
    for event_id, (at, direction, score) in events.items():
        if (at, event_id) >= me:
            continue
        if direction == INBOUND:
            prior_inbound += 1
            if score is not None and (last is None or (at, event_id) > last[0]):
                last = ((at, event_id), score)
        else:
            replies += 1
    columns = HistoryColumns(first, prior_inbound, replies, last[1] if last else None)

    if event.is_conversational and event.event_id not in events:
        events[event.event_id] = [ts, INBOUND if event.direction == "inbound" else OUTBOUND, sentiment]
        if len(events) > max_events:
            keep = sorted(events.items(), key=lambda kv: (kv[1][0], kv[0]))[-max_events:]
            events = dict(keep)
    return columns, {"first": first, "ev": events}
