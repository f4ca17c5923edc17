"""parse → the per-event steps → rows, for one raw message. Pure: no Kafka, no Faust, no ClickHouse.

``process_message`` takes a raw message and the keyed state of its partition (three tables: customer
history, reply threads, conversation roots) and returns the ClickHouse rows and the dead letters.
The Faust agent (``streams/worker/app.py``) is a thin loop around it; tests call it directly.

Every valid event goes through ``STEPS``, in order: each step reads and fills one ``Enriching`` (the
event and what has been computed about it) and may use the partition's keyed state. A new per-event
measure is one step function added to ``STEPS`` (plus its contract columns, a migration and its row
field in ``interaction_row``); ``rapport bench pipeline`` times each step of the same list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from schemas.contract import INTERACTIONS, RESPONSES, SLA_BREACHES, arrow_struct
from schemas.interaction import Interaction, describe_validation_error
from streams.processing import history, needs_reply, replies, sla, twcs
from streams.processing.platforms import EMPTY_DIRECTORY, WEBHOOK_PLATFORMS, BrandDirectory
from streams.processing.records import (
    FORMATS,
    ProcessResult,
    RawMessage,
    dead_letter,
    split_csv_records,
    split_lines,
)

HISTORY, THREADS, CONVERSATIONS = "customer_history", "reply_threads", "conversation_roots"
QUESTIONS = "brand_questions"  # brand \x1f event_id of a brand message that asks the customer something → 1
STATE_TABLES = (HISTORY, THREADS, CONVERSATIONS, QUESTIONS, sla.CLOCK, sla.DUE)


class State(Protocol):
    """Keyed state of one partition; Faust tables in the worker, dicts in tests."""

    def get(self, table: str, key: str) -> Any: ...
    def set(self, table: str, key: str, value: Any) -> None: ...


class DictState:
    """In-memory ``State`` (tests, benchmarks)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in STATE_TABLES}

    def get(self, table: str, key: str) -> Any:
        return self.tables[table].get(key)

    def set(self, table: str, key: str, value: Any) -> None:
        self.tables[table][key] = value


@dataclass(frozen=True)
class Options:
    history_max_events: int = 500
    brands: BrandDirectory = EMPTY_DIRECTORY


# --- normalize ------------------------------------------------------------------------------------


def parse_records(
    message: RawMessage, brands: BrandDirectory = EMPTY_DIRECTORY
) -> Iterator[tuple[int, bytes, Interaction | str]]:
    """(index, original bytes, interaction or rejection reason) for every record of a raw message."""
    if message.format == "jsonl":
        for index, line in enumerate(split_lines(message.payload)):
            try:
                yield index, line, Interaction.model_validate_json(line)
            except ValidationError as exc:
                yield index, line, describe_validation_error(exc)
    elif message.format == "twcs":
        records = split_csv_records(message.payload)
        contexts = message.context if isinstance(message.context, list) else []
        for index, record in enumerate(records):
            try:
                fields = twcs.parse_fields(record)  # the row's own faults are the first reason
                context = twcs.Context.from_json(contexts[index] if index < len(contexts) else None)
                yield index, record, twcs.to_interaction(fields, context)
            except twcs.RecordError as exc:
                yield index, record, str(exc)
    elif message.format in WEBHOOK_PLATFORMS:
        for index, parsed in enumerate(WEBHOOK_PLATFORMS[message.format].parse(message.payload, brands)):
            if message.brand_filter is None or parsed.brand == message.brand_filter:
                yield index, parsed.original, parsed.result
    else:
        known = ", ".join(FORMATS + tuple(WEBHOOK_PLATFORMS))
        yield 0, message.payload, f"format: unknown input format {message.format!r} (expected one of {known})"


def with_conversation(event: Interaction, state: State) -> Interaction:
    """Fill in ``conversation_id`` when the source did not give it (the root of the reply tree).

    ``conversation_roots`` maps an event to its root only when the root is another event: a lookup
    that finds nothing means "the event is its own root", so roots (every post, most customer
    messages) cost no state and no changelog record."""
    if event.conversation_id is not None:
        return event
    if event.parent_id is None:
        root = event.event_id
    else:
        root = state.get(CONVERSATIONS, f"{event.brand}\x1f{event.parent_id}") or event.parent_id
        state.set(CONVERSATIONS, f"{event.brand}\x1f{event.event_id}", root)
    return event.model_copy(update={"conversation_id": root})


def with_customer(event: Interaction, state: State) -> Interaction:
    """A brand reply that does not name its customer (Meta's page replies) answers the author of the
    inbound message it replies to, when that message was seen."""
    if event.direction != "outbound" or event.customer_id is not None or event.parent_id is None:
        return event
    thread = state.get(THREADS, replies.thread_key(event.brand, event.parent_id))
    if not thread or not thread.get("in"):
        return event
    return event.model_copy(update={"customer_id": thread["in"][1]})


# --- the per-event steps ----------------------------------------------------------------------------


@dataclass
class Enriching:
    """One event on its way through ``STEPS``: the event (steps may replace it with a completed copy) and
    what the steps computed about it."""

    event: Interaction
    sentiment: float | None = None
    needs_reply: bool = False
    history: history.HistoryColumns = field(default_factory=history.HistoryColumns)
    response: dict[str, Any] | None = None  # the ``responses`` row when this event is a brand's first reply
    breaches: list[dict[str, Any]] = field(default_factory=list)  # ``sla_breaches`` rows this event decided


@dataclass(frozen=True)
class StepContext:
    """What every step may use besides the event and the state."""

    score: Callable[[str | None], float | None]
    now: int  # Unix seconds of this processing
    options: Options


Step = Callable[[Enriching, State, StepContext], None]


def conversation_step(item: Enriching, state: State, ctx: StepContext) -> None:
    item.event = with_conversation(item.event, state)


def customer_step(item: Enriching, state: State, ctx: StepContext) -> None:
    item.event = with_customer(item.event, state)


def sentiment_step(item: Enriching, state: State, ctx: StepContext) -> None:
    item.sentiment = ctx.score(item.event.text)


def needs_reply_step(item: Enriching, state: State, ctx: StepContext) -> None:
    """Whether an inbound message needs an answer (``streams/processing/needs_reply.py``). A brand message that
    asks the customer something is remembered, so the customer's answer to it counts as keeping the case open
    (when the question arrived first: a replay is sent in time order)."""
    event = item.event
    if not event.is_conversational or event.deleted:
        return
    if event.direction == "outbound":
        if needs_reply.brand_asks(event.text):
            state.set(QUESTIONS, f"{event.brand}\x1f{event.event_id}", 1)
        return
    asked = event.parent_id is not None and bool(state.get(QUESTIONS, f"{event.brand}\x1f{event.parent_id}"))
    item.needs_reply = needs_reply.needs_reply(event.text, answers_brand_question=asked)


def history_step(item: Enriching, state: State, ctx: StepContext) -> None:
    """The customer's history with the brand before this event (``streams/processing/history.py``)."""
    event = item.event
    customer = event.customer
    if customer is None:
        return
    key = history.history_key(event.brand, customer)
    item.history, new_state = history.apply_event(
        state.get(HISTORY, key), event, item.sentiment, ctx.options.history_max_events
    )
    state.set(HISTORY, key, new_state)


def reply_step(item: Enriching, state: State, ctx: StepContext) -> None:
    """Match brand replies to the inbound messages they answer (``streams/processing/replies.py``)."""
    thread = replies.thread_id_for(item.event)
    if thread is None:
        return
    key = replies.thread_key(item.event.brand, thread)
    item.response, thread_state = replies.apply_event(state.get(THREADS, key), item.event, ctx.now)
    state.set(THREADS, key, thread_state)
    if item.response is not None:
        policy = ctx.options.brands.policy(item.event.brand)
        response = item.response
        response["response_business_seconds"] = (
            None if policy.business_hours is None else policy.elapsed(response["inbound_at"], response["replied_at"])
        )


def reply_threads(state: State, brand: str) -> sla.Threads:
    """The reply thread of an inbound message of ``brand`` (``replies.py``), by its id: how SLA deadlines are met."""
    return lambda inbound_id: state.get(THREADS, replies.thread_key(brand, inbound_id))


def sla_step(item: Enriching, state: State, ctx: StepContext) -> None:
    """Schedule the SLA deadlines of a message that needs a reply, take back breaches a late-arriving reply met,
    and move the brand's event-time clock past the deadlines this event passes (``streams/processing/sla.py``)."""
    event = item.event
    brand = event.brand
    windows = ctx.options.brands.policy(brand).sla_windows
    created_at = int(event.created_at.timestamp())
    thread = reply_threads(state, brand)
    if item.needs_reply:
        item.breaches += sla.schedule(
            state, brand, event.event_id, event.author_id, created_at, item.sentiment, windows, thread(event.event_id)
        )
    if item.response is not None:
        item.breaches += sla.retractions(state, brand, item.response, windows)
    item.breaches += sla.observe(state, brand, created_at, thread)


#: The per-event steps, in order (names as ``rapport bench pipeline`` prints them). Order matters: the
#: customer of a Meta page reply is found through its thread, history needs the sentiment and the customer.
STEPS: tuple[tuple[str, Step], ...] = (
    ("conversation", conversation_step),
    ("customer", customer_step),
    ("sentiment", sentiment_step),
    ("needs reply", needs_reply_step),
    ("customer history", history_step),
    ("reply matching", reply_step),
    ("sla deadlines", sla_step),
)


def enrich(event: Interaction, state: State, ctx: StepContext) -> Enriching:
    """``event`` through every step of ``STEPS``."""
    item = Enriching(event)
    for _, step in STEPS:
        step(item, state, ctx)
    return item


def interaction_row(item: Enriching, now: int) -> dict[str, Any]:
    """The ``interactions`` row of an event that went through ``STEPS``."""
    event = item.event
    row = dict(event.__dict__)  # the fields' values, as model_dump(mode="python") gives them, without its cost
    row["customer_id"] = event.customer
    row["created_at"] = int(event.created_at.timestamp())
    row["updated_at"] = int(event.updated_at.timestamp()) if event.updated_at else None
    row["deleted"] = int(event.deleted)
    row["sentiment"] = item.sentiment
    row["needs_reply"] = int(item.needs_reply)
    row.update(item.history.as_row())
    row["ingested_at"] = now
    row["_version"] = int(event.version_time.timestamp() * 1000)
    return row


TICK = "tick"  # a raw message that only carries the wall clock to a live brand (streams/processing/sla.py)


def tick_payload(now: float) -> bytes:
    return orjson.dumps({"now": int(now)})


def process_tick(message: RawMessage, state: State, received_at: int) -> ProcessResult:
    """A wall-clock tick for the brand ``message.key``: passes its SLA deadlines when the brand is live."""
    result = ProcessResult()
    try:
        now = orjson.loads(message.payload)["now"]
        if not isinstance(now, int) or isinstance(now, bool):
            raise TypeError("now: expected Unix seconds")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        reason = f'tick: expected {{"now": <unix seconds>}} ({exc})'
        result.dead_letters.append(dead_letter(message, 0, message.payload, reason, received_at))
        return result
    result.breaches = sla.tick(state, message.key, now, reply_threads(state, message.key))
    return result


def process_message(
    message: RawMessage,
    state: State,
    score: Callable[[str | None], float | None],
    now: float,
    options: Options = Options(),
) -> ProcessResult:
    if message.format == TICK:
        return process_tick(message, state, int(now))
    result = ProcessResult()
    ctx = StepContext(score, int(now), options)
    for index, original, parsed in parse_records(message, options.brands):
        if isinstance(parsed, str):
            result.dead_letters.append(dead_letter(message, index, original, parsed, ctx.now))
            continue
        item = enrich(parsed, state, ctx)
        result.interactions.append(interaction_row(item, ctx.now))
        if item.response is not None:
            result.responses.append(item.response)
        result.breaches += item.breaches
    return result


# --- the enriched topic's message ------------------------------------------------------------------


def encode_enriched(result: ProcessResult, produced_at: float | None = None) -> bytes:
    """The enriched-topic message for a processed raw message: ClickHouse-ready rows, and when the raw
    message was produced (its Kafka timestamp), so the sink can tell how fresh the data is."""
    return orjson.dumps(
        {
            "interactions": result.interactions,
            "responses": result.responses,
            "sla_breaches": result.breaches,
            "produced_at": produced_at,
        }
    )


def decode_enriched(value: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of one enriched message (the sink decodes many at once: ``decode_enriched_batch``)."""
    data = orjson.loads(value)
    return data["interactions"], data["responses"]


@dataclass(frozen=True)
class EnrichedBatch:
    """Enriched messages decoded together, for the sink: the rows as Arrow tables (contract columns),
    and for each message when it was produced and how many interactions it carried."""

    interactions: Any  # pyarrow.Table
    responses: Any  # pyarrow.Table
    breaches: Any  # pyarrow.Table
    produced_at: list[float | None]
    interaction_counts: list[int]


@cache
def _enriched_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("interactions", pa.list_(arrow_struct(INTERACTIONS))),
            pa.field("responses", pa.list_(arrow_struct(RESPONSES))),
            pa.field("sla_breaches", pa.list_(arrow_struct(SLA_BREACHES))),
            pa.field("produced_at", pa.float64()),
        ]
    )


def decode_enriched_batch(values: Sequence[bytes]) -> EnrichedBatch:
    """Decode enriched messages straight into Arrow columns with Arrow's JSON reader.

    Same rows as ``decode_enriched`` of each message, but no Python object per row: the reader is C++
    and runs without the GIL, so the sink's decoding no longer competes with the process agent for
    the interpreter."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pajson

    data = b"\n".join(values)
    table = pajson.read_json(
        pa.BufferReader(data),
        # one block for the whole batch: a message larger than a block would fail to parse
        read_options=pajson.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1)),
        parse_options=pajson.ParseOptions(explicit_schema=_enriched_schema(), unexpected_field_behavior="ignore"),
    )

    def rows(name: str) -> Any:
        column = table.column(name)
        if column.null_count == len(column):  # no message carries any (absent field): an empty table
            return pa.Table.from_struct_array(pa.array([], column.type.value_type))
        return pa.Table.from_struct_array(pc.list_flatten(column).combine_chunks())

    counts = pc.list_value_length(table.column("interactions")).fill_null(0)
    return EnrichedBatch(
        interactions=rows("interactions"),
        responses=rows("responses"),
        breaches=rows("sla_breaches"),
        produced_at=table.column("produced_at").to_pylist(),
        interaction_counts=counts.to_pylist(),
    )
