"""normalize → enrich → match for whole raw messages, with in-memory state."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from schemas.contract import DEAD_LETTERS, INTERACTIONS, RESPONSES
from streams.kafka.replay import read_chunks
from streams.processing import twcs
from streams.processing.pipeline import (
    CONVERSATIONS,
    DictState,
    decode_enriched,
    decode_enriched_batch,
    encode_enriched,
    process_message,
)
from streams.processing.records import ProcessResult, RawMessage
from streams.processing.sentiment import SentimentScorer
from tests.support import TWCS_DIR

TWCS_SAMPLE = TWCS_DIR / "twcs_head5000.csv"
T0 = 1_509_487_847  # 2017-10-31T22:10:47Z


def no_score(text: str | None) -> float | None:
    return None


def fake_score(text: str | None) -> float | None:
    return None if not text else round(len(text) / 100, 2)


def line(**fields: Any) -> bytes:
    base: dict[str, Any] = {"platform": "x", "brand": "sprintcare", "kind": "reply", "text": "hello"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def iso(offset: int) -> str:
    # a +05:30 offset: the rows must carry UTC Unix seconds
    return datetime.fromtimestamp(T0 + offset, timezone(timedelta(hours=5, minutes=30))).isoformat()


START = line(event_id="x:100", author_id="alice", direction="inbound", kind="mention", created_at=iso(0))
BAD_JSON = b'{"event_id": "x:999", '
BAD_KIND = line(event_id="x:998", author_id="alice", direction="inbound", kind="tweet", created_at=iso(1))
SAME_BRAND_REPLY = line(
    event_id="x:101",
    author_id="sprintcare",
    direction="outbound",
    parent_id="x:100",
    customer_id="alice",
    created_at=iso(90),
)
OTHER_BRAND_REPLY = line(
    event_id="x:102",
    brand="AskAmex",
    author_id="AskAmex",
    direction="outbound",
    parent_id="x:100",
    customer_id="alice",
    created_at=iso(30),
)
NOT_AN_OBJECT = b"[1, 2]"
FOLLOW_UP = line(event_id="x:103", author_id="alice", direction="inbound", parent_id="x:101", created_at=iso(120))

PAYLOAD = (
    b"\n".join(
        [
            START,
            BAD_JSON,
            BAD_KIND,
            b"",
            SAME_BRAND_REPLY,
            OTHER_BRAND_REPLY,
            b"   ",
            NOT_AN_OBJECT + b"\r",
            FOLLOW_UP,
        ]
    )
    + b"\n"
)
RECORDS = [START, BAD_JSON, BAD_KIND, SAME_BRAND_REPLY, OTHER_BRAND_REPLY, NOT_AN_OBJECT, FOLLOW_UP]


def process(payload: bytes = PAYLOAD, state: DictState | None = None, fmt: str = "jsonl", **kw: Any) -> ProcessResult:
    message = RawMessage(
        payload=payload,
        format=fmt,
        key=kw.pop("key", "sprintcare"),
        topic="rapport.raw",
        partition=3,
        offset=42,
        **kw,
    )
    return process_message(message, state or DictState(), fake_score, now=1_700_000_000.5)


def test_every_record_is_an_interaction_or_a_dead_letter() -> None:
    result = process()
    assert result.records == len(RECORDS) == 7
    assert len(result.interactions) == 4 and len(result.dead_letters) == 3
    assert [r["event_id"] for r in result.interactions] == ["x:100", "x:101", "x:102", "x:103"]


def test_dead_letters_keep_original_bytes_reason_and_source() -> None:
    letters = process().dead_letters
    assert [d.original for d in letters] == [BAD_JSON, BAD_KIND, NOT_AN_OBJECT]
    assert [d.record_index for d in letters] == [1, 2, 5]  # position among the message's records
    assert letters[0].reason.startswith("Invalid JSON")
    assert letters[1].reason.startswith("kind: ")
    assert letters[2].reason.startswith("(event): ")
    for letter in letters:
        assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("rapport.raw", 3, 42)
        assert (letter.format, letter.brand, letter.received_at) == ("jsonl", "sprintcare", 1_700_000_000)
        assert sorted(letter.row()) == sorted(DEAD_LETTERS.column_names)


def test_reply_by_the_same_brand_is_a_response_and_by_another_brand_is_not() -> None:
    result = process()
    assert len(result.responses) == 1
    response = result.responses[0]
    assert (response["inbound_id"], response["reply_id"], response["brand"]) == (
        "x:100",
        "x:101",
        "sprintcare",
    )
    assert response["response_seconds"] == 90
    assert (response["inbound_at"], response["replied_at"]) == (T0, T0 + 90)
    assert response["customer_id"] == "alice"
    assert response["conversation_id"] == "x:100"


def test_conversation_id_is_filled_from_the_parent_chain() -> None:
    state = DictState()
    rows = {r["event_id"]: r for r in process(state=state).interactions}
    assert rows["x:100"]["conversation_id"] == "x:100"
    assert rows["x:101"]["conversation_id"] == "x:100"
    assert rows["x:103"]["conversation_id"] == "x:100"  # reply to a reply: the root, not the parent
    assert rows["x:102"]["conversation_id"] == "x:100"
    assert state.get(CONVERSATIONS, "sprintcare\x1fx:103") == "x:100"
    # a conversation_id given by the source is kept
    given = line(
        event_id="x:200",
        author_id="bob",
        direction="inbound",
        parent_id="x:150",
        conversation_id="x:7",
        created_at=iso(0),
    )
    assert process(given).interactions[0]["conversation_id"] == "x:7"


def test_interaction_rows_have_the_contract_columns_and_history() -> None:
    result = process()
    for row in result.interactions:
        assert list(row) == list(INTERACTIONS.column_names)
    for row in result.responses:
        assert list(row) == list(RESPONSES.column_names)
    rows = {r["event_id"]: r for r in result.interactions}
    start, reply, follow_up = rows["x:100"], rows["x:101"], rows["x:103"]
    assert start["created_at"] == T0 and isinstance(start["created_at"], int)
    assert start["sentiment"] == fake_score("hello")
    assert (start["ingested_at"], start["_version"]) == (1_700_000_000, T0 * 1000)  # version = platform time
    assert (
        start["customer_first_seen"],
        start["customer_prior_inbound"],
        start["customer_replies_received"],
        start["customer_last_sentiment"],
    ) == (T0, 0, 0, None)
    assert (reply["customer_prior_inbound"], reply["customer_replies_received"]) == (1, 0)
    # x:103 (alice → sprintcare) after x:100 and sprintcare's reply x:101; AskAmex's reply is another brand
    assert (
        follow_up["customer_first_seen"],
        follow_up["customer_prior_inbound"],
        follow_up["customer_replies_received"],
        follow_up["customer_last_sentiment"],
    ) == (T0, 1, 1, 0.05)


def test_enriched_message_round_trips() -> None:
    result = process()
    interactions, responses = decode_enriched(encode_enriched(result))
    assert interactions == orjson.loads(orjson.dumps(result.interactions))
    assert responses == result.responses


def test_enriched_batch_decodes_to_the_same_rows_as_each_message() -> None:
    """The sink's Arrow decoding of many enriched messages gives, column by column, the rows each message
    carries (built independently here with ``Table.from_pylist``); counts and produce times per message."""
    import pyarrow as pa

    from schemas.contract import arrow_struct

    state = DictState()
    unicode_line = line(
        event_id="x:300", author_id="zoë", direction="inbound", kind="mention", created_at=iso(9),
        text='émoji 😀 "quoted" \\ back\nslash', author_followers=2**63 - 1,
    )  # fmt: skip
    results = [process(state=state), process(unicode_line, state=state), ProcessResult(), process(state=state)]
    values = [encode_enriched(r, produced_at=None if i == 1 else 1_700_000_000.25 + i) for i, r in enumerate(results)]
    batch = decode_enriched_batch(values)

    def expected(table: Any, rows: list[dict[str, Any]]) -> Any:
        struct = arrow_struct(table)
        return pa.Table.from_pylist(rows, schema=pa.schema(list(struct)))

    all_interactions = [row for r in results for row in orjson.loads(orjson.dumps(r.interactions))]
    all_responses = [row for r in results for row in r.responses]
    assert all_responses and any(row["sentiment"] is not None for row in all_interactions)
    assert batch.interactions.equals(expected(INTERACTIONS, all_interactions))
    assert batch.responses.equals(expected(RESPONSES, all_responses))
    assert batch.interactions.column("text").to_pylist()[len(results[0].interactions)] == (
        'émoji 😀 "quoted" \\ back\nslash'
    )
    assert batch.interaction_counts == [len(r.interactions) for r in results]
    assert batch.produced_at == [1_700_000_000.25, None, 1_700_000_002.25, 1_700_000_003.25]


def test_enriched_batch_of_messages_without_rows_is_empty_tables_with_the_contract_columns() -> None:
    batch = decode_enriched_batch([encode_enriched(ProcessResult())])
    assert batch.interactions.num_rows == 0 and batch.responses.num_rows == 0
    assert tuple(batch.interactions.column_names) == INTERACTIONS.column_names
    assert tuple(batch.responses.column_names) == RESPONSES.column_names


def test_unknown_format_is_one_dead_letter_with_the_whole_payload() -> None:
    result = process(b"<xml>\n<a/>\n</xml>\n", fmt="xml")
    assert result.interactions == [] and result.responses == []
    assert len(result.dead_letters) == 1
    letter = result.dead_letters[0]
    assert letter.original == b"<xml>\n<a/>\n</xml>\n"
    assert letter.reason.startswith("format: ") and "'xml'" in letter.reason


def test_twcs_records_with_and_without_context() -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["3", "115712", "True", "Tue Oct 31 22:08:27 +0000 2017", "@sprintcare worst,\nsigh", "1", ""])
    writer.writerow(["1", "sprintcare", "False", "Tue Oct 31 22:10:47 +0000 2017", "@115712 sorry", "", "3"])
    writer.writerow(["4", "115712", "True", "not a time", "x", "", ""])
    writer.writerow(["5", "115712", "True", "Tue Oct 31 22:12:47 +0000 2017", "no context", "", ""])
    payload = buffer.getvalue().encode()
    context = [
        ["sprintcare", "x:3", "115712"],
        ["sprintcare", "x:3", "115712"],
        ["sprintcare", "x:4", "115712"],
    ]
    result = process(payload, fmt="twcs", context=context)
    assert [r["event_id"] for r in result.interactions] == ["x:3", "x:1"]
    assert result.interactions[0]["text"] == "@sprintcare worst,\nsigh"
    assert [(r["inbound_id"], r["reply_id"], r["response_seconds"]) for r in result.responses] == [("x:3", "x:1", 140)]
    assert [(d.record_index, d.reason.split(":")[0]) for d in result.dead_letters] == [
        (2, "created_at"),
        (3, "context"),
    ]
    assert [d.original for d in result.dead_letters] == payload.splitlines(keepends=True)[3:]


def test_real_sentiment_scorer() -> None:
    scorer = SentimentScorer()
    assert scorer.score(None) is None
    assert scorer.score("   ") is None
    good, bad = scorer.score("I love this, great service!"), scorer.score("the worst, terrible, I hate it")
    assert good is not None and bad is not None
    assert 0 < good <= 1 and -1 <= bad < 0


@pytest.mark.parametrize("created_at", ["1969-12-31T23:59:59Z", "2107-01-01T00:00:00Z"])
def test_event_outside_the_datetime_range_is_dead_lettered(created_at: str) -> None:
    result = process(
        line(event_id="x:1", author_id="alice", direction="inbound", kind="mention", created_at=created_at)
    )
    assert result.interactions == []
    assert [d.reason.split(":")[0] for d in result.dead_letters] == ["created_at"]


# --- the real twcs sample ------------------------------------------------------------------------------


def final_responses(responses: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """What `responses FINAL` keeps: per (brand, inbound_id) the row with the highest _version (last wins)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in responses:
        key = (row["brand"], row["inbound_id"])
        if key not in best or row["_version"] >= best[key]["_version"]:
            best[key] = row
    return best


def test_real_sample_accounts_for_every_row_and_replays_idempotently() -> None:
    if not TWCS_SAMPLE.exists():
        pytest.skip(f"the twcs sample {TWCS_SAMPLE} is not available")
    chunks = list(read_chunks(TWCS_SAMPLE, "twcs", 200))
    state = DictState()
    scorer = SentimentScorer()

    def run(now: float) -> tuple[dict[str, dict[str, Any]], int, list[dict[str, Any]]]:
        interactions: dict[str, dict[str, Any]] = {}
        dead = 0
        responses: list[dict[str, Any]] = []
        for offset, chunk in enumerate(chunks):
            message = RawMessage(
                payload=chunk.payload,
                format="twcs",
                key=chunk.key,
                context=chunk.context,
                topic="rapport.raw",
                offset=offset,
            )
            result = process_message(message, state, scorer.score, now)
            interactions.update((row["event_id"], row) for row in result.interactions)
            dead += len(result.dead_letters)
            responses += result.responses
        return interactions, dead, responses

    interactions, dead, responses = run(1_700_000_000.0)
    assert len(interactions) + dead == 5000
    assert len(interactions) > 4500
    first = final_responses(responses)

    interactions2, dead2, responses2 = run(1_700_000_100.0)
    assert (len(interactions2), dead2) == (len(interactions), dead)
    both = final_responses(responses + responses2)
    assert Counter(b for b, _ in both) == Counter(b for b, _ in first)
    assert {(r["inbound_id"], r["reply_id"]) for r in both.values()} == {
        (r["inbound_id"], r["reply_id"]) for r in first.values()
    }
    assert responses2 == []  # a replay re-emits nothing: redelivered events change nothing
    # replays go in created_at order, so the second replay recomputes the same history columns
    history_columns = (
        "customer_first_seen",
        "customer_prior_inbound",
        "customer_replies_received",
        "customer_last_sentiment",
        "sentiment",
        "conversation_id",
        "brand",
        "customer_id",
    )
    changed = [e for e in interactions if any(interactions[e][c] != interactions2[e][c] for c in history_columns)]
    assert changed == []

    # the first conversation of the file, by hand. 115712 → sprintcare: 8 (21:45:10), 5 (21:49:35),
    # 3 (22:08:27), 2 (22:11:45); sprintcare → 115712: 6 (21:46:24) answers 8, 4 (21:54:49) answers 5,
    # 1 (22:10:47) answers 3; 2 is not answered in the file.
    answered = {i: (r["reply_id"], r["response_seconds"]) for (b, i), r in first.items() if b == "sprintcare"}
    assert answered["x:8"] == ("x:6", 74)
    assert answered["x:5"] == ("x:4", 314)
    assert answered["x:3"] == ("x:1", 140)
    assert "x:2" not in answered
    first_seen = int(datetime(2017, 10, 31, 21, 45, 10, tzinfo=UTC).timestamp())
    assert [
        (
            interactions[e]["customer_prior_inbound"],
            interactions[e]["customer_replies_received"],
            interactions[e]["customer_first_seen"],
        )
        for e in ("x:8", "x:6", "x:5", "x:3", "x:1", "x:2")
    ] == [
        (0, 0, first_seen),
        (1, 0, first_seen),
        (1, 1, first_seen),
        (2, 2, first_seen),
        (3, 2, first_seen),
        (3, 3, first_seen),
    ]
    assert interactions["x:2"]["customer_last_sentiment"] == interactions["x:3"]["sentiment"]

    # independent computation from the CSV: an inbound row's first direct reply by the brand it belongs to
    rows = list(csv.DictReader(io.StringIO(TWCS_SAMPLE.read_text(encoding="utf-8"), newline="")))
    contexts = twcs.resolve_context(rows)
    by_id = {r["tweet_id"]: r for r in rows}

    def when(r: dict[str, str]) -> int:
        return int(datetime.strptime(r["created_at"], twcs.TIME_FORMAT).timestamp())

    expected: dict[str, tuple[int, str]] = {}
    for r in rows:
        parent = by_id.get(r["in_response_to_tweet_id"])
        if r["inbound"] != "False" or parent is None or parent["inbound"] != "True":
            continue
        if contexts[parent["tweet_id"]].brand != r["author_id"]:
            continue
        candidate = (when(r), "x:" + r["tweet_id"])
        expected[parent["tweet_id"]] = min(expected.get(parent["tweet_id"], candidate), candidate)
    assert {(r["inbound_id"], r["reply_id"]) for r in first.values()} == {
        ("x:" + inbound_id, reply_id) for inbound_id, (_, reply_id) in expected.items()
    }
    for (_, inbound_id), row in first.items():
        replied_at = expected[inbound_id.removeprefix("x:")][0]
        assert row["response_seconds"] == max(0, replied_at - when(by_id[inbound_id.removeprefix("x:")]))

    # independent history counts: earlier (created_at, event_id) messages between the customer and the brand
    messages: dict[tuple[str, str], list[tuple[int, str, bool]]] = {}
    for row in interactions.values():
        if row["customer_id"] is not None:
            messages.setdefault((row["brand"], row["customer_id"]), []).append(
                (row["created_at"], row["event_id"], row["direction"] == "inbound")
            )
    for row in interactions.values():
        if row["customer_id"] is None:
            assert (row["customer_prior_inbound"], row["customer_first_seen"]) == (0, None)
            continue
        mine = (row["created_at"], row["event_id"])
        theirs = messages[(row["brand"], row["customer_id"])]
        earlier = [m for m in theirs if (m[0], m[1]) < mine]
        assert row["customer_prior_inbound"] == sum(1 for m in earlier if m[2]), row["event_id"]
        assert row["customer_replies_received"] == sum(1 for m in earlier if not m[2]), row["event_id"]
        assert row["customer_first_seen"] == min(m[0] for m in theirs), row["event_id"]


def test_a_new_per_event_step_is_one_function_in_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension point the architecture promises: a step added to STEPS runs for every valid event,
    after the steps before it, in process_message (and in the benchmark, which times the same list)."""
    from streams.processing import pipeline

    seen: list[tuple[str, str | None, float | None]] = []

    def shouting_step(item: pipeline.Enriching, state: pipeline.State, ctx: pipeline.StepContext) -> None:
        seen.append((item.event.event_id, item.event.conversation_id, item.sentiment))

    monkeypatch.setattr(pipeline, "STEPS", (*pipeline.STEPS, ("shouting", shouting_step)))
    payload = b"\n".join([START, BAD_JSON, SAME_BRAND_REPLY])
    result = pipeline.process_message(
        RawMessage(payload, "jsonl", "sprintcare"), DictState(), lambda text: 0.5, T0, pipeline.Options()
    )
    assert [event_id for event_id, _, _ in seen] == ["x:100", "x:101"]  # the bad line never reaches a step
    assert all(conversation == "x:100" and sentiment == 0.5 for _, conversation, sentiment in seen)
    assert len(result.interactions) == 2 and len(result.dead_letters) == 1
