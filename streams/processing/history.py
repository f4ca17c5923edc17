"""The customer's history with a brand, kept per (brand, customer), and the columns it gives each event.

State (JSON-serialisable, stored in a Faust table keyed ``brand \\x1f customer``)::

    {"first": <unix s, earliest event seen>,
     "ev": '{"<event_id>": [created_at unix s, 0 = inbound | 1 = outbound, sentiment or null], …}',
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
case) takes its columns from them, and is appended to ``ev`` as text. ``ev`` is kept as JSON text
inside the state so that reading and writing a state does not build an object per remembered event
(that was most of the cost of the state); it is decoded only for an event that arrives late, or when
the cap is reached. States written before (``ev`` an object, no summary) are read as well.

Idempotent: an event is remembered by its id, so a redelivered event changes no count.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

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
    """``n``, ``top`` and ``last`` of the remembered events."""
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


def remembered(state: dict[str, Any] | None) -> dict[str, list[Any]]:
    """The remembered events of a state: ``{event_id: [created_at, direction, sentiment]}``."""
    if not state:
        return {}
    events = state["ev"]
    return events if isinstance(events, dict) else orjson.loads(events)


def _pack(events: dict[str, list[Any]]) -> str:
    return orjson.dumps(events).decode()


def _packed_has(packed: str, event_id: str) -> bool:
    """Whether ``event_id`` is a key of the packed events. Keys are the only strings in the text, and
    a quote inside a key is escaped, so an unescaped quote after ``{`` or ``,`` starts a key."""
    key = orjson.dumps(event_id).decode() + ":"
    return packed.startswith("{" + key) or ("," + key) in packed


def apply_event(
    state: dict[str, Any] | None, event: Interaction, sentiment: float | None, max_events: int
) -> tuple[HistoryColumns, dict[str, Any]]:
    """Columns for ``event`` and the customer's new state. Pure: ``state`` is not modified."""
    ts = int(event.created_at.timestamp())
    me = (ts, event.event_id)
    direction = INBOUND if event.direction == "inbound" else OUTBOUND
    remember = event.is_conversational
    first = ts if state is None else min(int(state["first"]), ts)
    if state and "n" in state:
        packed: str = state["ev"]
        counts, top, last = state["n"], state["top"], state["last"]
    else:  # no state yet, or one written before the summary existed
        written = remembered(state)
        packed = _pack(written)
        summary = _summary(written)
        counts, top, last = summary["n"], summary["top"], summary["last"]

    events: dict[str, list[Any]] | None = None  # decoded only when needed
    if top is None or me > tuple(top):
        # later than everything remembered: the summary is the answer
        columns = HistoryColumns(first, counts[INBOUND], counts[OUTBOUND], last[2] if last else None)
        if remember and counts[0] + counts[1] < max_events and not _packed_has(packed, event.event_id):
            item = orjson.dumps({event.event_id: [ts, direction, sentiment]}).decode()
            packed = item if packed == "{}" else packed[:-1] + "," + item[1:]
            counts = [counts[0] + (direction == INBOUND), counts[1] + (direction == OUTBOUND)]
            top = [ts, event.event_id]
            if direction == INBOUND and sentiment is not None:
                last = [ts, event.event_id, sentiment]
            return columns, {"first": first, "ev": packed, "n": counts, "top": top, "last": last}
    else:
        events = orjson.loads(packed)
        prior_inbound = replies = 0
        latest: tuple[tuple[int, str], float] | None = None
        for event_id, (at, earlier_direction, score) in events.items():
            if (at, event_id) >= me:
                continue
            if earlier_direction == INBOUND:
                prior_inbound += 1
                if score is not None and (latest is None or (at, event_id) > latest[0]):
                    latest = ((at, event_id), score)
            else:
                replies += 1
        columns = HistoryColumns(first, prior_inbound, replies, latest[1] if latest else None)

    if remember:
        if events is None:  # in order, but the cap is reached or the id is known with another time
            events = orjson.loads(packed)
        if event.event_id not in events:
            events[event.event_id] = [ts, direction, sentiment]
            if len(events) > max_events:
                events = dict(sorted(events.items(), key=lambda kv: (kv[1][0], kv[0]))[-max_events:])
            return columns, {"first": first, "ev": _pack(events), **_summary(events)}
    return columns, {"first": first, "ev": packed, "n": counts, "top": top, "last": last}
