"""The customer's history with a brand, kept per (brand, customer), and the columns it gives each event.

State (JSON-serialisable, stored in a Faust table keyed ``brand \\x1f customer``)::

    {"first": <unix s, earliest event seen>,
     "ev": {event_id: [created_at unix s, 0 = inbound | 1 = outbound, sentiment or null]},
     "n": [inbound messages in ev, outbound messages in ev],
     "top": [created_at, event_id] of the latest event in ev, or null,
     "last": [created_at, event_id, sentiment] of the latest inbound message in ev with a sentiment, or null}

``ev`` holds the customer's conversational events (messages, not reactions), capped to the most
recent ``max_events``. Columns, computed against the events *before* this one (by created_at, then
event_id), so they do not depend on the order events arrive in as long as the earlier ones arrived:

- ``customer_first_seen``: earliest created_at of any event between them (this one included);
- ``customer_prior_inbound``: earlier inbound messages from the customer to the brand;
- ``customer_replies_received``: earlier outbound brand messages addressed to the customer;
- ``customer_last_sentiment``: sentiment of the latest earlier inbound message that has text (None if none).

``n``, ``top`` and ``last`` summarise ``ev``: an event later than every remembered one (the usual
case) takes its columns from them without reading ``ev``; an event that arrives late is compared with
each remembered event. States written before these fields existed are summarised when read.

Idempotent: an event is remembered by its id, so a redelivered event changes no count.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from schemas.interaction import Interaction

INBOUND, OUTBOUND = 0, 1


class HistoryColumns(NamedTuple):  # one per event: a tuple is the cheapest immutable value to build
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


def _summary(events: dict[str, list[Any]]) -> dict[str, Any]:
    """``n``, ``top`` and ``last`` of a state's ``ev``."""
    counts = [0, 0]
    top: tuple[int, str] | None = None
    last: tuple[int, str, float] | None = None
    for event_id, (at, direction, score) in events.items():
        counts[direction] += 1
        if top is None or (at, event_id) > top:
            top = (at, event_id)
        if direction == INBOUND and score is not None and (last is None or (at, event_id) > last[:2]):
            last = (at, event_id, score)
    return {"n": counts, "top": list(top) if top else None, "last": list(last) if last else None}


def apply_event(
    state: dict[str, Any] | None, event: Interaction, sentiment: float | None, max_events: int
) -> tuple[HistoryColumns, dict[str, Any]]:
    """Columns for ``event`` and the customer's new state. Pure: ``state`` is not modified."""
    ts = int(event.created_at.timestamp())
    first = ts if state is None else min(int(state["first"]), ts)
    events: dict[str, list[Any]] = state["ev"] if state else {}
    summary = state if state and "n" in state else _summary(events)
    counts, top, last = summary["n"], summary["top"], summary["last"]

    me = (ts, event.event_id)
    if top is None or me > tuple(top):  # later than everything remembered: the summary is the answer
        columns = HistoryColumns(first, counts[INBOUND], counts[OUTBOUND], last[2] if last else None)
    else:
        prior_inbound = replies = 0
        latest: tuple[tuple[int, str], float] | None = None
        for event_id, (at, direction, score) in events.items():
            if (at, event_id) >= me:
                continue
            if direction == INBOUND:
                prior_inbound += 1
                if score is not None and (latest is None or (at, event_id) > latest[0]):
                    latest = ((at, event_id), score)
            else:
                replies += 1
        columns = HistoryColumns(first, prior_inbound, replies, latest[1] if latest else None)

    if not event.is_conversational or event.event_id in events:
        return columns, {"first": first, "ev": events, "n": counts, "top": top, "last": last}
    direction = INBOUND if event.direction == "inbound" else OUTBOUND
    events = {**events, event.event_id: [ts, direction, sentiment]}
    if len(events) > max_events:
        keep = sorted(events.items(), key=lambda kv: (kv[1][0], kv[0]))[-max_events:]
        events = dict(keep)
        return columns, {"first": first, "ev": events, **_summary(events)}
    counts = [counts[0] + (direction == INBOUND), counts[1] + (direction == OUTBOUND)]
    if top is None or me > tuple(top):
        top = [ts, event.event_id]
    if direction == INBOUND and sentiment is not None and (last is None or me > tuple(last[:2])):
        last = [ts, event.event_id, sentiment]
    return columns, {"first": first, "ev": events, "n": counts, "top": top, "last": last}
