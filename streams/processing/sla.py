"""SLA breaches, found in the stream: a message that needs a reply breaches window W when no direct reply of its
brand exists at ``inbound_at + W`` (the deadline).

Clocks. Deadlines pass on **event time**: the brand's latest ``created_at`` seen (its watermark), so a replay of
old data finds the same breaches every time, whatever the wall clock says. A brand whose watermark is within the
last hour of the wall clock is **live**; for a live brand the worker also sends a *tick* now and then (a raw
message of format ``tick`` keyed by the brand), which passes deadlines on the wall clock, so a brand that goes
quiet still breaches on time. A replay of old data is never live (its watermark is old).

Decisions. When the clock passes a deadline, the message breaches unless its reply thread
(``streams/processing/replies.py``) holds a reply with ``created_at ≤ deadline``. A message that arrives after its
deadline has passed is decided at once. A reply that arrives after the deadline passed but was *written* before
it (events out of order) retracts the breach (a row with ``_retracted = 1`` and a higher ``_version``, which
``FINAL`` hides; among breach rows of one (message, window) the earliest ``breached_at`` wins, so a message
redelivered after its deadline keeps its first decision); a reply written after the deadline leaves the breach in
place. ``breached_at`` is the clock
that passed the deadline: the watermark (deterministic) or the tick's wall-clock time.

State (Faust tables, keyed by brand, so on the brand's partition):

- ``sla_clock``  ``brand`` → ``{"wm": watermark, "done": deadlines up to here are decided, "due": [slot, …]}``
  (``due``: the sorted slots, ``deadline // SLOT_SECONDS``, that have pending deadlines);
- ``sla_due``    ``brand \\x1f slot`` → ``[[deadline, window_s, inbound_id, customer_id, sentiment], …]``.

One key per 10-minute slot keeps every value small (a value is rewritten whole when it changes) and the changelog
short (one record per slot a batch touched), and the clock's list of slots means an idle stretch of event time
costs nothing. The decisions are idempotent: a redelivered message
schedules nothing new (an entry is known by (inbound_id, window)), and a breach emitted twice is one row in
``sla_breaches`` (ReplacingMergeTree on (brand, platform, inbound_id, window_s)).

Edge cases: the classification (``needs_reply``) of the version first seen decides; a message deleted after it
arrived still breaches (it was waiting); messages without ``needs_reply`` never breach.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Any, Protocol

#: How recent (wall clock) a brand's latest event must be for the brand to count as live.
LIVE_SECONDS = 3600
CLOCK, DUE = "sla_clock", "sla_due"
SLOT_SECONDS = 600
#: _version of a breach row: 2**32 − breached_at, so the earliest decision wins (a redelivered message decided
#: again later keeps its first breached_at); a retraction's is above every breach's.
VERSION_BASE, RETRACTION = 2**32, 2**33


class State(Protocol):
    def get(self, table: str, key: str) -> Any: ...
    def set(self, table: str, key: str, value: Any) -> None: ...


#: A message's reply thread (``streams/processing/replies.py``) by its inbound id, or None.
Threads = Callable[[str], dict[str, Any] | None]


def _due_key(brand: str, slot: int) -> str:
    return f"{brand}\x1f{slot}"


def _clock(state: State, brand: str) -> dict[str, Any]:
    return state.get(CLOCK, brand) or {"wm": 0, "done": 0, "due": []}


def breach_row(brand: str, entry: Sequence[Any], breached_at: int, retracted: bool = False) -> dict[str, Any]:
    deadline, window, inbound_id, customer, sentiment = entry
    return {
        "inbound_id": inbound_id,
        "brand": brand,
        "platform": inbound_id.split(":", 1)[0],
        "customer_id": customer,
        "inbound_at": deadline - window,
        "deadline": deadline,
        "window_s": window,
        "sentiment": sentiment,
        "breached_at": breached_at,
        "_version": RETRACTION if retracted else VERSION_BASE - breached_at,
        "_retracted": int(retracted),
    }


def replied_by(thread: dict[str, Any] | None, deadline: int) -> bool:
    """Whether the reply thread of a message holds a reply written at or before ``deadline``."""
    return bool(thread and thread.get("r") and thread["r"][0] <= deadline)


def schedule(
    state: State,
    brand: str,
    inbound_id: str,
    customer: str,
    inbound_at: int,
    sentiment: float | None,
    windows: Sequence[int],
    thread: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Schedule the deadlines of a message that needs a reply; returns the breaches decided at once (deadlines
    the brand's clock has already passed)."""
    clock = _clock(state, brand)
    breaches = []
    due = clock["due"]
    for window in windows:
        deadline = inbound_at + window
        entry = [deadline, window, inbound_id, customer, sentiment]
        if deadline <= clock["done"]:
            if not replied_by(thread, deadline):
                breaches.append(breach_row(brand, entry, clock["done"]))
            continue
        slot = deadline // SLOT_SECONDS
        key = _due_key(brand, slot)
        pending = state.get(DUE, key) or []
        if any(e[1] == window and e[2] == inbound_id for e in pending):
            continue  # redelivered
        state.set(DUE, key, [*pending, entry])
        at = bisect_left(due, slot)
        if at == len(due) or due[at] != slot:
            due = list(due)
            due.insert(at, slot)
    if due is not clock["due"]:
        state.set(CLOCK, brand, clock | {"due": due})
    return breaches


def retractions(state: State, brand: str, response: dict[str, Any], windows: Sequence[int]) -> list[dict[str, Any]]:
    """For a new first reply: the breaches it takes back (deadlines already decided that the reply met)."""
    done = _clock(state, brand)["done"]
    out = []
    for window in windows:
        deadline = response["inbound_at"] + window
        if deadline <= done and response["replied_at"] <= deadline:
            entry = [deadline, window, response["inbound_id"], response["customer_id"], None]
            out.append(breach_row(brand, entry, done, retracted=True))
    return out


def _advance(state: State, brand: str, clock: dict[str, Any], to: int, threads: Threads) -> list[dict[str, Any]]:
    """Move ``clock`` to ``to`` and decide every deadline it passes; writes the clock once. Returns the breaches."""
    breaches: list[dict[str, Any]] = []
    due = clock["due"]
    passed = bisect_right(due, to // SLOT_SECONDS)  # the slots the clock reaches (``due`` is sorted)
    kept = []
    for slot in due[:passed]:
        key = _due_key(brand, slot)
        keep = []
        for entry in state.get(DUE, key) or []:
            if entry[0] > to:
                keep.append(entry)
            elif not replied_by(threads(entry[2]), entry[0]):
                breaches.append(breach_row(brand, entry, to))
        state.set(DUE, key, keep or None)
        if keep:
            kept.append(slot)
    remaining = kept + due[passed:] if passed else due
    state.set(CLOCK, brand, {"wm": clock["wm"], "done": to, "due": remaining})
    return breaches


def observe(state: State, brand: str, created_at: int, threads: Threads) -> list[dict[str, Any]]:
    """An event of the brand at ``created_at``: its watermark moves forward, and so does the clock."""
    clock = _clock(state, brand)
    if created_at <= clock["wm"]:
        return []
    return _advance(state, brand, clock | {"wm": created_at}, max(created_at, clock["done"]), threads)


def tick(state: State, brand: str, now: int, threads: Threads) -> list[dict[str, Any]]:
    """Wall-clock time ``now`` for a brand: passes deadlines only when the brand is live."""
    clock = state.get(CLOCK, brand)
    if not clock or clock["wm"] < now - LIVE_SECONDS or now <= clock["done"]:
        return []
    return _advance(state, brand, clock, now, threads)
