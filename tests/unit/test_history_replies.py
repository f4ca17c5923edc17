"""Customer history columns and reply matching, checked against hand computations."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from itertools import permutations
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.interaction import Interaction
from streams.processing import history, replies
from streams.processing.history import HistoryColumns

BRAND, CUSTOMER = "sprintcare", "alice"


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(1_500_000_000 + seconds, UTC)


def ts(seconds: int) -> int:
    return 1_500_000_000 + seconds


def inbound(event_id: str, seconds: int, kind: str = "mention", parent: str | None = None, **kw: Any) -> Interaction:
    return Interaction(
        event_id=event_id,
        platform="x",
        brand=BRAND,
        author_id=kw.pop("author", CUSTOMER),
        direction="inbound",
        kind=kind,
        text=kw.pop("text", "hi"),
        created_at=at(seconds),
        parent_id=parent,
        **kw,
    )


def outbound(event_id: str, seconds: int, parent: str | None, kind: str = "reply", **kw: Any) -> Interaction:
    return Interaction(
        event_id=event_id,
        platform="x",
        brand=kw.pop("brand", BRAND),
        author_id=kw.pop("author", BRAND),
        direction="outbound",
        kind=kind,
        text="hello",
        created_at=at(seconds),
        parent_id=parent,
        customer_id=CUSTOMER,
        **kw,
    )


# --- history -----------------------------------------------------------------------------------------

# (event, its sentiment); x:3 and x:4 share a created_at, so x:3 (smaller id) is "before" x:4
E1 = (inbound("x:1", 100), 0.5)
E2 = (outbound("x:2", 200, parent="x:1"), None)
E3 = (inbound("x:3", 300), -0.25)
E4 = (inbound("x:4", 300, text=None), None)
EVENTS = [E1, E2, E3, E4]

# hand computation: columns of each event once all four are known
EXPECTED = {
    "x:1": HistoryColumns(ts(100), 0, 0, None),
    "x:2": HistoryColumns(ts(100), 1, 0, 0.5),
    "x:3": HistoryColumns(ts(100), 1, 1, 0.5),
    "x:4": HistoryColumns(ts(100), 2, 1, -0.25),
}


def run(
    events: list[tuple[Interaction, float | None]], state: dict[str, Any] | None = None, max_events: int = 50
) -> tuple[list[HistoryColumns], dict[str, Any] | None]:
    out = []
    for event, sentiment in events:
        columns, state = history.apply_event(state, event, sentiment, max_events)
        out.append(columns)
    return out, state


@pytest.mark.parametrize("order", list(permutations(range(4))))
def test_columns_do_not_depend_on_arrival_order(order: tuple[int, ...]) -> None:
    events = [EVENTS[i] for i in order]
    columns, state = run(events)
    last_event = events[-1][0]
    assert columns[-1] == EXPECTED[last_event.event_id]
    assert state is not None
    assert state["first"] == ts(100)
    assert sorted(history.remembered(state)) == ["x:1", "x:2", "x:3", "x:4"]


def test_columns_only_count_earlier_events_that_arrived() -> None:
    # x:4 arrives first: nothing known yet; then x:1 → its own first contact
    columns, _ = run([E4, E1, E3])
    assert columns[0] == HistoryColumns(ts(300), 0, 0, None)
    assert columns[1] == HistoryColumns(ts(100), 0, 0, None)
    assert columns[2] == HistoryColumns(ts(100), 1, 0, 0.5)  # x:2 (the reply) has not arrived


def test_redelivery_changes_no_count_and_no_state() -> None:
    _, state = run(EVENTS)
    again, state_again = run([E3, E1, E4, E2], state)
    assert again == [EXPECTED["x:3"], EXPECTED["x:1"], EXPECTED["x:4"], EXPECTED["x:2"]]
    assert state_again == state


def test_apply_event_does_not_modify_the_given_state() -> None:
    _, state = run([E1, E2])
    assert state is not None
    snapshot = copy.deepcopy(state)
    history.apply_event(state, E3[0], E3[1], 50)
    history.apply_event(state, inbound("x:0", 10), 0.1, 2)  # late, and over the cap
    assert state == snapshot


def test_cap_keeps_the_most_recent_events() -> None:
    _, state = run([E3, E2, E1], max_events=2)  # the oldest (x:1) arrives last and is dropped
    assert state is not None
    assert sorted(history.remembered(state)) == ["x:2", "x:3"]
    columns, state = run([E4], state, max_events=2)
    # only x:2 and x:3 are remembered: one earlier inbound, one reply
    assert columns == [HistoryColumns(ts(100), 1, 1, -0.25)]
    assert sorted(history.remembered(state)) == ["x:3", "x:4"]
    assert state["first"] == ts(100)  # first-seen survives the cap


def reference_apply(
    state: dict[str, Any] | None, event: Interaction, sentiment: float | None, max_events: int
) -> tuple[HistoryColumns, dict[str, Any]]:
    """The definition, computed the slow way: compare the event with every remembered one."""
    ts_ = int(event.created_at.timestamp())
    first = ts_ if state is None else min(state["first"], ts_)
    events = dict(state["ev"]) if state else {}
    earlier = [(at, i, d, s) for i, (at, d, s) in events.items() if (at, i) < (ts_, event.event_id)]
    inbound_ = [(at, i, s) for at, i, d, s in earlier if d == history.INBOUND]
    scored = max(((at, i, s) for at, i, s in inbound_ if s is not None), default=None)
    columns = HistoryColumns(first, len(inbound_), len(earlier) - len(inbound_), scored[2] if scored else None)
    if event.is_conversational and event.event_id not in events:
        events[event.event_id] = [ts_, 0 if event.direction == "inbound" else 1, sentiment]
        events = dict(sorted(events.items(), key=lambda kv: (kv[1][0], kv[0]))[-max_events:])
    return columns, {"first": first, "ev": events}


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 12),  # event number (a repeat is a redelivery)
            st.integers(0, 6),  # created_at
            st.sampled_from(["mention", "reply", "reaction"]),
            st.booleans(),  # inbound
            st.one_of(st.none(), st.sampled_from([-0.5, 0.0, 0.25, 0.9])),
            st.booleans(),  # store the state without its summary (as written before it existed)
        ),
        max_size=40,
    ),
    max_events=st.integers(1, 6),
)
def test_summary_fast_path_gives_the_definition(steps: list[tuple[Any, ...]], max_events: int) -> None:
    """Any arrival order, redeliveries, the cap, and states without a summary: the same columns and
    remembered events as the slow definition."""
    state: dict[str, Any] | None = None
    expected_state: dict[str, Any] | None = None
    for number, seconds, kind, is_inbound, sentiment, strip in steps:
        event_id = f"x:{number}"
        event = (
            inbound(event_id, seconds, kind=kind, text=None)
            if is_inbound
            else outbound(event_id, seconds, parent=None, kind=kind)
        )
        columns, state = history.apply_event(state, event, sentiment, max_events)
        expected, expected_state = reference_apply(expected_state, event, sentiment, max_events)
        assert columns == expected
        assert {"first": state["first"], "ev": history.remembered(state)} == expected_state
        assert {k: state[k] for k in ("n", "top", "last")} == history._summary(history.remembered(state))
        assert orjson.loads(orjson.dumps(state)) == state  # it is stored as JSON
        if strip:  # as written before the summary existed
            state = {"first": state["first"], "ev": history.remembered(state)}


ID_CHARS = st.sampled_from(['"', ",", "\\", ":", "{", "}", "[", "1", "x", "é", "\u2028"])


@example(known=['x:"x:1', 'x:2,"x:3'], probe="x:1")  # a stored key that ends with the probe's quoted form
@example(known=['x:2,"x:3'], probe="x:3")
@settings(max_examples=300, deadline=None)
@given(
    known=st.lists(st.text(ID_CHARS, min_size=1, max_size=6).map(lambda t: "x:" + t), max_size=6),
    probe=st.text(ID_CHARS, min_size=1, max_size=6).map(lambda t: "x:" + t),
)
def test_packed_membership_is_exact_for_ids_with_quotes_and_commas(known: list[str], probe: str) -> None:
    events = {event_id: [1, 0, None] for event_id in known}
    packed = history._pack(events)
    assert history._packed_has(packed, probe) == (probe in events)
    for event_id in known:
        assert history._packed_has(packed, event_id)


def test_reactions_are_not_messages_but_count_for_first_seen() -> None:
    like = inbound("x:50", 50, kind="reaction", text=None)
    share = inbound("x:150", 150, kind="share", text=None)
    columns, state = run([E1, (like, None), (share, None), E3])
    assert state is not None
    assert sorted(history.remembered(state)) == ["x:1", "x:3"]
    assert columns[1] == HistoryColumns(ts(50), 0, 0, None)  # the like (t=50) comes before x:1 (t=100)
    assert columns[2] == HistoryColumns(ts(50), 1, 0, 0.5)  # the share (t=150) sees x:1
    assert columns[3] == HistoryColumns(ts(50), 1, 0, 0.5)  # x:3: x:1 only; reactions/shares not counted


def test_history_key_separates_brand_and_customer() -> None:
    assert history.history_key("a", "b") != history.history_key("a\x1fb", "")
    assert history.history_key("sprintcare", "alice") == "sprintcare\x1falice"


# --- replies -----------------------------------------------------------------------------------------

INBOUND = inbound("x:10", 1000, conversation_id="x:5", parent="x:5")
REPLY = outbound("x:11", 1060, parent="x:10")
EARLIER_REPLY = outbound("x:12", 1030, parent="x:10")
LATER_REPLY = outbound("x:13", 1100, parent="x:10")


def feed(
    events: list[Interaction], state: dict[str, Any] | None = None, now: int = 7
) -> tuple[list[dict[str, Any] | None], dict[str, Any] | None]:
    out = []
    for event in events:
        assert replies.thread_id_for(event) == "x:10"
        response, state = replies.apply_event(state, event, now)
        out.append(response)
    return out, state


def expected_response(reply_id: str, replied: int, seconds: int) -> dict[str, Any]:
    return {
        "inbound_id": "x:10",
        "reply_id": reply_id,
        "brand": BRAND,
        "platform": "x",
        "conversation_id": "x:5",
        "customer_id": CUSTOMER,
        "inbound_at": ts(1000),
        "replied_at": ts(replied),
        "response_seconds": seconds,
        "response_business_seconds": None,  # the brand has no business hours
        "ingested_at": 7,
        "_version": replies.VERSION_BASE - ts(replied),
    }


@pytest.mark.parametrize("order", [[INBOUND, REPLY], [REPLY, INBOUND]])
def test_response_once_both_are_known_in_either_order(order: list[Interaction]) -> None:
    out, _ = feed(order)
    assert out == [None, expected_response("x:11", 1060, 60)]


def test_an_earlier_reply_arriving_later_supersedes_with_a_higher_version() -> None:
    out, state = feed([INBOUND, REPLY, EARLIER_REPLY, LATER_REPLY])
    first, better = out[1], out[2]
    assert first is not None and better is not None
    assert better == expected_response("x:12", 1030, 30)
    assert better["response_seconds"] < first["response_seconds"]
    assert better["_version"] > first["_version"]
    assert out[3] is None  # a later reply changes nothing
    again, state_again = feed([INBOUND, REPLY, EARLIER_REPLY, LATER_REPLY], state)
    assert again == [None, None, None, None]  # redelivery emits nothing
    assert state_again == state


def test_reply_before_inbound_in_time_gives_zero_seconds() -> None:
    early = outbound("x:14", 990, parent="x:10")
    out, _ = feed([early, INBOUND])
    assert out[1] == expected_response("x:14", 990, 0)


@pytest.mark.parametrize("order", [["x:21", "x:20"], ["x:20", "x:21"]])
def test_tie_on_time_the_smaller_reply_id_wins(order: list[str]) -> None:
    tied = [outbound(event_id, 1200, parent="x:10") for event_id in order]
    out, state = feed([INBOUND, *tied])
    emitted = [r for r in out if r is not None]
    assert emitted[-1]["reply_id"] == "x:20"
    assert state is not None and state["r"] == [ts(1200), "x:20"]
    assert len(emitted) == (2 if order[0] == "x:21" else 1)


def test_thread_ids() -> None:
    assert replies.thread_id_for(INBOUND) == "x:10"
    assert replies.thread_id_for(REPLY) == "x:10"
    assert replies.thread_id_for(inbound("x:30", 1, kind="reaction", text=None, parent="x:10")) is None
    assert replies.thread_id_for(outbound("x:31", 1, parent=None, kind="post")) is None
    assert replies.thread_key("b", "x:1") == "b\x1fx:1"


def test_inbound_without_conversation_uses_itself_as_conversation() -> None:
    start = inbound("x:40", 0)
    _, state = replies.apply_event(None, start, 1)
    response, _ = replies.apply_event(state, outbound("x:41", 5, parent="x:40"), 1)
    assert response is not None
    assert response["conversation_id"] == "x:40"
    assert response["response_seconds"] == 5
