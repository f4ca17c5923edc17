"""The twcs CSV format: whole-file context (brand, conversation root, customer) and row conversion."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.kafka.replay import ReplayError, read_chunks
from streams.processing import twcs
from streams.processing.records import split_csv_records
from streams.processing.twcs import Context, RecordError, parse_fields, resolve_context, to_interaction

ROOT = Path(__file__).resolve().parents[2]

T = "Tue Oct 31 22:{:02d}:00 +0000 2017"  # minute → created_at text


def row(tweet_id: int, author: str, inbound: bool, minute: int, text: str, parent: int | None = None) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(
        [tweet_id, author, "True" if inbound else "False", T.format(minute), text, "", parent or ""]
    )
    return buffer.getvalue()


def contexts(*lines: str) -> dict[str, Context]:
    payload = "".join(lines).encode()
    return resolve_context([parse_fields(r) for r in split_csv_records(payload)])


# --- resolve_context ---------------------------------------------------------------------------------


def test_outbound_belongs_to_its_author_and_replies_to_it_to_that_brand() -> None:
    ctx = contexts(
        row(1, "sprintcare", False, 10, "@115712 I understand", parent=3),
        row(2, "115712", True, 11, "and how do you propose we do that", parent=1),
        row(3, "115712", True, 8, "@sprintcare is the worst"),
    )
    assert ctx["1"] == Context("sprintcare", "x:3", "115712")
    assert ctx["2"] == Context("sprintcare", "x:3", "115712")
    assert ctx["3"] == Context("sprintcare", "x:3", "115712")


def test_inbound_reply_takes_the_brand_of_its_parent_not_its_own_handles() -> None:
    ctx = contexts(
        row(1, "AppleSupport", False, 1, "hello"),
        row(2, "sprintcare", False, 1, "hello"),
        row(3, "cust", True, 2, "@AppleSupport but you, sprint?", parent=2),  # answers a sprintcare tweet
        row(4, "other", True, 3, "@AppleSupport me too", parent=3),  # inbound → inbound: the parent's brand
    )
    assert ctx["3"].brand == "sprintcare"
    assert ctx["4"].brand == "sprintcare"
    assert ctx["4"].conversation_id == "x:2"


def test_conversation_start_uses_the_first_handle_naming_a_brand_case_insensitively() -> None:
    ctx = contexts(
        row(1, "AppleSupport", False, 1, "a post"),
        row(2, "sprintcare", False, 1, "a post"),
        row(3, "cust", True, 2, "@bob @friend @applesupport @sprintcare my phone"),
        row(4, "cust", True, 2, "@SPRINTCARE hi @AppleSupport"),
        row(5, "cust", True, 2, "email@bob.com @nobody hi"),
    )
    assert ctx["3"].brand == "AppleSupport"  # bob/friend are not brands; the brand's own spelling is kept
    assert ctx["4"].brand == "sprintcare"
    assert ctx["5"].brand is None
    assert ctx["3"] == Context("AppleSupport", "x:3", "cust")


def test_fallback_is_the_brand_of_the_earliest_direct_brand_reply() -> None:
    ctx = contexts(
        row(1, "cust", True, 0, "@115714 my bill is wrong"),  # anonymised brand handle
        row(2, "sprintcare", False, 20, "@cust sorry!", parent=1),
        row(3, "AskAmex", False, 9, "@cust we can help", parent=1),  # earlier → wins
        row(4, "cust", True, 30, "thanks", parent=3),
        row(5, "sprintcare", False, 1, "@x reply to reply", parent=4),  # not a direct reply to 1
    )
    assert ctx["1"].brand == "AskAmex"
    assert ctx["4"].brand == "AskAmex"


def test_no_brand_at_all_gives_none() -> None:
    ctx = contexts(
        row(1, "sprintcare", False, 0, "post"),
        row(2, "cust", True, 1, "@someone anyone there?"),
        row(3, "cust2", True, 2, "me too", parent=2),  # its parent has no brand either
    )
    assert ctx["2"] == Context(None, "x:2", "cust")
    assert ctx["3"] == Context(None, "x:2", "cust2")


def test_inbound_whose_parent_has_no_brand_falls_back_to_its_own_handle() -> None:
    ctx = contexts(
        row(1, "sprintcare", False, 0, "post"),
        row(2, "cust", True, 1, "anyone there?"),
        row(3, "cust2", True, 2, "@SprintCare look at this", parent=2),
    )
    assert ctx["2"].brand is None
    assert ctx["3"].brand == "sprintcare"


def test_root_through_a_multi_level_chain_in_any_file_order() -> None:
    lines = [
        row(1, "cust", True, 0, "@sprintcare help"),
        row(2, "sprintcare", False, 1, "@cust dm us", parent=1),
        row(3, "cust", True, 2, "done", parent=2),
        row(4, "sprintcare", False, 3, "@cust thanks", parent=3),
        row(5, "sprintcare", False, 4, "@cust anything else?", parent=4),
    ]
    for order in (lines, list(reversed(lines)), [lines[3], lines[0], lines[4], lines[2], lines[1]]):
        ctx = contexts(*order)
        assert {k: v.conversation_id for k, v in ctx.items()} == {str(i): "x:1" for i in range(1, 6)}
        assert {v.brand for v in ctx.values()} == {"sprintcare"}
        assert {v.customer_id for v in ctx.values()} == {"cust"}


def test_parent_missing_from_the_file_is_the_root() -> None:
    ctx = contexts(
        row(10, "cust", True, 0, "@sprintcare still broken", parent=9),  # 9 is not in the file
        row(11, "sprintcare", False, 1, "@cust sorry", parent=10),
        row(12, "sprintcare", False, 1, "@cust orphan", parent=99),
    )
    assert ctx["10"] == Context("sprintcare", "x:9", "cust")
    assert ctx["11"] == Context("sprintcare", "x:9", "cust")
    assert ctx["12"] == Context("sprintcare", "x:99", None)  # no inbound ancestor in the file


def test_customer_of_outbound_is_the_nearest_inbound_ancestors_author() -> None:
    ctx = contexts(
        row(1, "alice", True, 0, "@sprintcare help"),
        row(2, "sprintcare", False, 1, "@alice on it", parent=1),
        row(3, "sprintcare", False, 2, "@alice (thread) fixed", parent=2),  # brand → brand → alice
        row(4, "bob", True, 3, "@sprintcare me too", parent=3),
        row(5, "sprintcare", False, 4, "@bob ok", parent=4),
        row(6, "sprintcare", False, 5, "a broadcast"),
    )
    assert [ctx[str(i)].customer_id for i in range(1, 7)] == ["alice", "alice", "alice", "bob", "bob", None]
    assert ctx["6"] == Context("sprintcare", "x:6", None)


@pytest.fixture
def alarm() -> Iterator[None]:
    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("resolve_context did not finish: a reply cycle hangs it")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_reply_cycles_do_not_hang(alarm: None) -> None:
    ctx = contexts(
        row(1, "sprintcare", False, 0, "@cust a", parent=2),
        row(2, "cust", True, 1, "@sprintcare b", parent=1),
        row(3, "cust", True, 2, "self", parent=3),
        row(4, "x1", True, 3, "@sprintcare c", parent=6),
        row(5, "sprintcare", False, 4, "d", parent=4),
        row(6, "x1", True, 5, "e", parent=5),
    )
    assert set(ctx) == {"1", "2", "3", "4", "5", "6"}
    assert ctx["1"].brand == "sprintcare" and ctx["2"].brand == "sprintcare"
    assert ctx["5"].brand == "sprintcare"
    assert all(c.conversation_id is not None and c.conversation_id.startswith("x:") for c in ctx.values())


def test_context_json_round_trip_and_malformed_context() -> None:
    context = Context("sprintcare", "x:1", None)
    assert Context.from_json(context.to_json()) == context
    for bad in (None, [], ["a", "b"], {"brand": "x"}):
        with pytest.raises(RecordError, match=r"^context: "):
            Context.from_json(bad)


# --- to_interaction ------------------------------------------------------------------------------------


def fields(*values: str) -> dict[str, str]:
    return dict(zip(twcs.COLUMNS, values, strict=True))


CTX = Context("sprintcare", "x:3", "115712")


def test_kinds_ids_and_times() -> None:
    reply = to_interaction(
        fields("1", "sprintcare", "False", "Tue Oct 31 22:10:47 +0000 2017", "@115712 hi", "2", "3"), CTX
    )
    assert (reply.event_id, reply.parent_id, reply.kind, reply.direction) == (
        "x:1",
        "x:3",
        "reply",
        "outbound",
    )
    assert reply.created_at == datetime(2017, 10, 31, 22, 10, 47, tzinfo=UTC)
    assert (reply.brand, reply.conversation_id, reply.customer_id) == ("sprintcare", "x:3", "115712")
    assert reply.author_handle == "sprintcare" and reply.platform == "x"

    mention = to_interaction(
        fields("3", "115712", "True", "Tue Oct 31 23:08:27 +0100 2017", "@sprintcare worst", "1", ""), CTX
    )
    assert (mention.event_id, mention.parent_id, mention.kind, mention.direction) == (
        "x:3",
        None,
        "mention",
        "inbound",
    )
    assert mention.created_at == datetime(2017, 10, 31, 22, 8, 27, tzinfo=UTC)  # +0100 → UTC
    assert mention.customer_id == "115712" and mention.author_handle is None  # anonymised numeric author

    post = to_interaction(
        fields("7", "sprintcare", "False", "Tue Oct 31 22:10:47 +0000 2017", "news", "", ""),
        Context("sprintcare", "x:7", None),
    )
    assert (post.kind, post.direction, post.customer_id) == ("post", "outbound", None)

    named = to_interaction(fields("8", "alice", "true", "Tue Oct 31 22:10:47 +0000 2017", "hi", "", "7"), CTX)
    assert (named.kind, named.author_handle, named.customer_id) == ("reply", "alice", "alice")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (("1", "a", "True", "2017-10-31 22:10:47", "t", "", ""), "created_at"),
        (("1", "a", "True", "Tue Oct 31 22:10:47 2017", "t", "", ""), "created_at"),
        (("abc", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", "t", "", ""), "tweet_id"),
        (("", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", "t", "", ""), "tweet_id"),
        (("1", "a", "yes", "Tue Oct 31 22:10:47 +0000 2017", "t", "", ""), "inbound"),
        (("1", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", "t", "", "12x"), "in_response_to_tweet_id"),
        (("1", "", "True", "Tue Oct 31 22:10:47 +0000 2017", "t", "", ""), "author_id"),
        (("1", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", "t", "", "1"), "parent_id"),  # answers itself
        (("1", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", "t" * 100_001, "", ""), "text"),
    ],
)
def test_bad_field_raises_record_error_naming_it(values: tuple[str, ...], field: str) -> None:
    with pytest.raises(RecordError) as info:
        to_interaction(fields(*values), CTX)
    assert str(info.value).startswith(f"{field}: "), str(info.value)


def test_missing_brand_is_a_record_error_naming_brand() -> None:
    with pytest.raises(RecordError, match=r"^brand: no brand could be determined"):
        to_interaction(
            fields("1", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", "t", "", ""), Context(None, "x:1", "a")
        )


def test_parse_fields_errors_name_the_record() -> None:
    with pytest.raises(RecordError, match=r"^record: expected 7 columns .* got 6$"):
        parse_fields(b"1,a,True,Tue Oct 31 22:10:47 +0000 2017,t,\n")
    with pytest.raises(RecordError, match=r"^record: expected 7 columns .* got 8$"):
        parse_fields(b"1,a,True,Tue Oct 31 22:10:47 +0000 2017,t,,,\n")
    with pytest.raises(RecordError, match=r"^record: not UTF-8"):
        parse_fields(b"1,a,True,Tue Oct 31 22:10:47 +0000 2017,caf\xe9,,\n")
    with pytest.raises(RecordError, match=r"^record: "):
        parse_fields(b'1,a,True,Tue Oct 31 22:10:47 +0000 2017,"never closed,,\n')


def test_parse_fields_reads_quoted_multiline_text() -> None:
    record = b'5,a,True,Tue Oct 31 22:10:47 +0000 2017,"line 1\r\nline ""2"", with comma",,4\r\n'
    assert parse_fields(record) == fields(
        "5", "a", "True", "Tue Oct 31 22:10:47 +0000 2017", 'line 1\r\nline "2", with comma', "", "4"
    )


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0c"])
def test_parse_fields_keeps_unicode_line_separators_inside_text(separator: str) -> None:
    record = row(1, "cust", True, 0, f"first{separator}second").encode()
    assert len(split_csv_records(record)) == 1
    assert parse_fields(record)["text"] == f"first{separator}second"


# --- a quote never closed ------------------------------------------------------------------------------

HEADER = ",".join(twcs.COLUMNS) + "\n"


def test_a_quote_never_closed_is_reported_with_its_line_before_anything_is_read(tmp_path: Path) -> None:
    path = tmp_path / "open-quote.csv"
    lines = [
        HEADER,
        row(1, "sprintcare", False, 1, "a post"),
        row(2, "cust", True, 2, "two\nlines", parent=1),  # a closed quoted field over lines 3-4
        '3,cust,True,Tue Oct 31 22:03:00 +0000 2017,"never closed, so the rest is swallowed,,\n',  # line 5
        row(4, "cust", True, 4, "swallowed"),
        row(5, "sprintcare", False, 5, "swallowed too"),
    ]
    path.write_text("".join(lines))
    with pytest.raises(ReplayError) as info:
        next(iter(read_chunks(path, "twcs", 200)))
    assert str(info.value) == (
        f"{path}: line 5: unterminated quote (the quoted field starting there runs to the end of the file)"
    )
    unix = "".join(lines).replace("\r\n", "\n")
    path.write_text(unix, newline="")  # \n only, and \r\n only: the same line
    with pytest.raises(ReplayError, match=r": line 5: unterminated quote"):
        next(iter(read_chunks(path, "twcs", 200)))
    path.write_text(unix.replace("\n", "\r\n"), newline="")
    with pytest.raises(ReplayError, match=r": line 5: unterminated quote"):
        next(iter(read_chunks(path, "twcs", 200)))


def test_quotes_closed_on_the_last_line_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(HEADER + row(1, "sprintcare", False, 1, "a post") + row(2, "cust", True, 2, 'last "one"\nends', 1))
    assert sum(len(c.records) for c in read_chunks(path, "twcs", 200)) == 2


def test_rapport_replay_of_a_file_with_a_quote_never_closed_exits_3_before_connecting(tmp_path: Path) -> None:
    path = tmp_path / "open-quote.csv"
    path.write_text(
        HEADER + row(1, "sprintcare", False, 1, "a post") + '2,cust,True,x,"open\n' + row(3, "c", True, 3, "t")
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", str(path), "--format", "twcs", "--brokers", "127.0.0.1:1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip() == (
        f"rapport: error: {path}: line 3: unterminated quote "
        "(the quoted field starting there runs to the end of the file)"
    )
    assert time.monotonic() - started < 9  # it did not wait the 10 s for the (absent) broker first
