"""Splitting raw payloads into records, byte for byte."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.processing.records import (
    DeadLetter,
    ProcessResult,
    RawMessage,
    failed_message_result,
    group_csv_records,
    message_records,
    split_csv_records,
    split_lines,
    whole_message_dead_letter,
)


def without_blank_lines(payload: bytes) -> bytes:
    return b"".join(line for line in payload.splitlines(keepends=True) if line.strip())


def test_plain_records_keep_their_bytes_and_line_ends() -> None:
    payload = b"1,a,b\n2,c,d\n\n3,e,f"
    records = split_csv_records(payload)
    assert records == [b"1,a,b\n", b"2,c,d\n", b"3,e,f"]
    assert b"".join(records) == without_blank_lines(payload)


def test_quoted_field_with_embedded_newlines_and_doubled_quotes() -> None:
    payload = b'1,"line one\nline ""two""\n\nline four",x\n2,"plain ""q""",y\n'
    records = split_csv_records(payload)
    assert records == [b'1,"line one\nline ""two""\n\nline four",x\n', b'2,"plain ""q""",y\n']
    # the blank line inside the quoted field is part of the record, not dropped
    assert b"".join(records) == payload
    assert next(csv.reader(io.StringIO(records[0].decode(), newline=""))) == [
        "1",
        'line one\nline "two"\n\nline four',
        "x",
    ]


def test_crlf_line_ends_are_kept() -> None:
    payload = b'1,"a\r\nb",c\r\n\r\n2,d,e\r\n'
    records = split_csv_records(payload)
    assert records == [b'1,"a\r\nb",c\r\n', b"2,d,e\r\n"]
    assert b"".join(records) == without_blank_lines(payload)


def test_unterminated_trailing_quote_is_yielded_as_is() -> None:
    payload = b'1,a,b\n2,"never closed\nmore text\n'
    records = split_csv_records(payload)
    assert records == [b"1,a,b\n", b'2,"never closed\nmore text\n']


def test_group_csv_records_accepts_any_iterable_of_lines() -> None:
    lines = iter([b'1,"x\n', b'y",z\n', b"   \n", b"2,q,r\n"])
    assert list(group_csv_records(lines)) == [b'1,"x\ny",z\n', b"2,q,r\n"]


def test_split_lines_drops_blank_lines_and_line_ends() -> None:
    assert split_lines(b'{"a":1}\r\n\n  \n{"b":2}') == [b'{"a":1}', b'{"b":2}']
    assert split_lines(b"") == []


def test_dead_letter_headers_and_row() -> None:
    letter = DeadLetter(
        reason="created_at: bad",
        format="twcs",
        original=b"\xff raw",
        brand="sprintcare",
        source_topic="rapport.raw",
        source_partition=2,
        source_offset=41,
        record_index=7,
        received_at=1_700_000_000,
    )
    headers = dict(letter.headers())
    assert headers["rapport-reason"] == b"created_at: bad"
    assert headers["rapport-source"] == b"rapport.raw/2/41/7"
    assert headers["rapport-format"] == b"twcs"
    assert letter.row()["original"] == b"\xff raw"
    assert letter.row()["record_index"] == 7


def test_whole_message_dead_letter_keeps_the_payload() -> None:
    message = RawMessage(payload=b"a\nb\n", format="jsonl", key="k", topic="t", partition=1, offset=9)
    letter = whole_message_dead_letter(message, KeyError("boom"), 12.7)
    assert letter.original == b"a\nb\n"
    assert letter.reason.startswith("processing failed: KeyError")
    assert (letter.brand, letter.source_offset, letter.received_at) == ("k", 9, 12)
    assert ProcessResult(dead_letters=[letter]).records == 1


@pytest.mark.parametrize(
    ("payload", "fmt", "records"),
    [
        (b'{"a": 1}\n\n{"b": 2}\r\nnot json\n', "jsonl", 3),  # blank lines are not records
        (b'1,"a\nb",c\n2,x,y\n', "twcs", 2),  # a quoted line end stays inside its record
        (b'{"for_user_id": "1", "tweet_create_events": [{}, {}]}', "x", 1),  # a webhook body
    ],
)
def test_a_failed_message_accounts_for_all_its_records(payload: bytes, fmt: str, records: int) -> None:
    message = RawMessage(payload=payload, format=fmt, key="k")
    result = failed_message_result(message, ValueError("bug"), 1.0)
    assert [letter.original for letter in result.dead_letters] == [payload]
    assert result.records == records == message_records(message)
    assert not result.interactions and not result.responses


# --- property: csv.writer output splits into exactly its rows -----------------------------------

_field = st.text(
    alphabet=st.one_of(
        st.sampled_from([",", '"', "\n", "\r", " ", "é", "😀", "\u2028", "a", "1"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(_field, min_size=2, max_size=7), min_size=1, max_size=8),
)
def test_csv_writer_rows_split_into_one_record_each(rows: list[list[str]]) -> None:
    # csv.writer's default dialect (excel: "\r\n" line ends, quotes around fields with "\r"/"\n")
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    payload = buffer.getvalue().encode("utf-8")

    records = split_csv_records(payload)

    assert len(records) == len(rows)
    assert b"".join(records) == payload
    for record, row in zip(records, rows, strict=True):
        assert list(csv.reader(io.StringIO(record.decode("utf-8"), newline=""))) == [row]
