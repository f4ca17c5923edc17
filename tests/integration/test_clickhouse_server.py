"""The warehouse against a real ClickHouse server (Debian's clickhouse-server 18.16): the native protocol
for statements, inserts and rows, the server's HTTP interface for text in its own output formats.

Each test works in its own database of one server process started for this module (its own config,
free ports on 127.0.0.1, data under pytest's tmp dir; see tests/support/clickhouse_server.py). That
server runs in a non-UTC time zone, so a DateTime('UTC') mistake would show. The kill/restart test
starts a server of its own. Without a clickhouse-server binary the module is skipped
(scripts/install-clickhouse-server.sh installs one).
"""

from __future__ import annotations

import itertools
import re
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import DEAD_LETTERS, INTERACTIONS, RESPONSES, TABLES, Column, Table
from schemas.migrate import migrate
from streams.sinks.warehouse import ResultTooLarge, ServerWarehouse, Warehouse, WarehouseError, connect
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server_available, free_port

pytestmark = pytest.mark.integration

_UNAVAILABLE = clickhouse_server_available()
if _UNAVAILABLE is not None:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
_DATABASE_NUMBERS = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    with ClickHouseServer(tmp_path_factory.mktemp("clickhouse"), timezone="Asia/Tokyo") as running:
        yield running


@pytest.fixture
def warehouse(server: ClickHouseServer, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)
    database = f"t{next(_DATABASE_NUMBERS)}_{name[:50]}"
    opened = connect(server.url(database))
    migrate(opened)
    yield opened
    opened.close()


# ---------------------------------------------------------------------------------------------
# rows


def interaction(event_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": event_id,
        "platform": "x",
        "brand": "acme",
        "author_id": "u1",
        "author_handle": "@u1",
        "author_followers": 18_446_744_073_709_551_615,  # UInt64 max
        "direction": "inbound",
        "kind": "direct_message",
        "text": 'tab\there "quoted", new\nline \\ back, ünïcödé',
        "created_at": T0,
        "parent_id": "x:0",
        "conversation_id": "x:0",
        "customer_id": "u1",
        "deleted": 0,
        "updated_at": T0 + 60,
        "impressions": 0,
        "likes": 7,
        "shares": 3,
        "replies": 1,
        "sentiment": 0.4404,
        "customer_first_seen": T0 - 86_400,
        "customer_prior_inbound": 2,
        "customer_replies_received": 1,
        "customer_last_sentiment": -0.4767,
        "ingested_at": T0 + 5,
        "_version": 1_700_000_005_000,
    }
    row.update(overrides)
    return row


NULLS = {
    "author_handle": None,
    "author_followers": None,
    "text": None,
    "parent_id": None,
    "customer_id": None,
    "updated_at": None,
    "impressions": None,
    "likes": None,
    "shares": None,
    "replies": None,
    "sentiment": None,
    "customer_first_seen": None,
    "customer_last_sentiment": None,
}

INTERACTION_ROWS = [
    interaction("x:1"),
    interaction("x:2", direction="outbound", kind="follow", author_id="acme", **NULLS),
    interaction("x:3", kind="reaction", sentiment=1.0, customer_last_sentiment=0.0, created_at=T0 + 3_000_000),
]

RESPONSE_ROWS = [
    {
        "inbound_id": "x:1",
        "reply_id": "x:9",
        "brand": "acme",
        "platform": "x",
        "conversation_id": "x:0",
        "customer_id": "u1",
        "inbound_at": T0,
        "replied_at": T0 + 125,
        "response_seconds": 125,
        "ingested_at": T0 + 200,
        "_version": 2**63,
    },
    {
        "inbound_id": "fb:7",
        "reply_id": "fb:8",
        "brand": "acme",
        "platform": "facebook",
        "conversation_id": "fb:7",
        "customer_id": "c7",
        "inbound_at": T0 + 10,
        "replied_at": T0 + 5,
        "response_seconds": 0,
        "ingested_at": T0 + 200,
        "_version": 1,
    },
]

ORIGINAL_BYTES = [
    b'{"text": "caf\xe9 \xff\xfe"}',
    "ünïcödé, valid UTF-8".encode(),
    b"",
    b"nul\x00byte\n\ttab",
]
DEAD_LETTER_ROWS = [
    {
        "reason": f"bad field #{index}",
        "format": "jsonl",
        "original": original,
        "brand": "" if index % 2 else "acme",
        "source_topic": "raw.jsonl",
        "source_partition": 3,
        "source_offset": 2**40 + index,
        "record_index": index,
        "received_at": T0 + index,
    }
    for index, original in enumerate(ORIGINAL_BYTES)
]


def float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def expected_value(column_type: str, value: Any) -> Any:
    """What the server hands back for a contract value (as clickhouse-driver decodes it)."""
    if value is None:
        return None
    if "DateTime" in column_type:
        return datetime.fromtimestamp(value, UTC)
    if "Float32" in column_type:
        return float32(value)
    if isinstance(value, bytes):  # valid UTF-8 comes back as str, anything else as the raw bytes
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


#: Columns of migration 0002, which needs ClickHouse 24.8: the 18.16 server here has the core columns only
#: (schemas/migrate.py), and the warehouse inserts the columns a table has.
LATER = {"interactions": {"needs_reply"}, "responses": {"response_business_seconds"}}


def core_columns(table: Table) -> list[Column]:
    return [c for c in table.columns if c.name not in LATER.get(table.name, set())]


def read_back(warehouse: Warehouse, table: Table, order_by: str) -> list[dict[str, Any]]:
    names = [c.name for c in core_columns(table)]
    result = warehouse.rows(f"SELECT {', '.join(names)} FROM {table.name} FINAL ORDER BY {order_by}")
    return [dict(zip(names, row, strict=True)) for row in result]


# ---------------------------------------------------------------------------------------------
# migrations


def test_migrate_twice_second_is_noop_and_columns_match_contract(server: ClickHouseServer) -> None:
    warehouse = connect(server.url("migrations"))
    try:
        # 18.16 runs the migrations up to the first that requires a current ClickHouse (0002: 24.8)
        first = migrate(warehouse)
        assert [m.name for m in first] == ["core_tables"]
        assert migrate(warehouse) == []
        assert warehouse.rows("SELECT version, name FROM schema_migrations FINAL") == [(1, "core_tables")]
        for table in TABLES:
            columns = warehouse.rows(  # in table order (18.16's system.columns has no `position`)
                f"SELECT name, type FROM system.columns WHERE database = 'migrations' AND table = '{table.name}'"
            )
            if table.min_server > (18, 16):  # created by 0002: absent here
                assert columns == [], table.name
                continue
            assert columns == [(c.name, c.type) for c in core_columns(table)], table.name
    finally:
        warehouse.close()
    # a fresh connection to the same database still sees everything applied
    again = connect(server.url("migrations"))
    try:
        assert migrate(again) == []
    finally:
        again.close()


# ---------------------------------------------------------------------------------------------
# inserts and reads


@pytest.mark.parametrize("as_arrow", [False, True], ids=["mappings", "arrow"])
def test_interactions_round_trip(warehouse: Warehouse, as_arrow: bool) -> None:
    """Rows as mappings, or as the Arrow table the sink decodes enriched messages into."""
    if as_arrow:
        import pyarrow as pa

        from schemas.contract import arrow_struct

        warehouse.insert(
            INTERACTIONS, pa.Table.from_pylist(INTERACTION_ROWS, pa.schema(list(arrow_struct(INTERACTIONS))))
        )
    else:
        warehouse.insert(INTERACTIONS, INTERACTION_ROWS)
    got = read_back(warehouse, INTERACTIONS, "event_id")
    want = [{c.name: expected_value(c.type, r[c.name]) for c in core_columns(INTERACTIONS)} for r in INTERACTION_ROWS]
    assert got == want
    # DateTime('UTC') stores exactly the Unix seconds given, whatever the server's own time zone
    assert warehouse.rows(
        "SELECT event_id, toUnixTimestamp(created_at), toUnixTimestamp(customer_first_seen), "
        "toString(created_at) FROM interactions FINAL ORDER BY event_id"
    ) == [
        ("x:1", T0, T0 - 86_400, "2023-11-14 22:13:20"),
        ("x:2", T0, None, "2023-11-14 22:13:20"),
        ("x:3", T0 + 3_000_000, T0 - 86_400, "2023-12-19 15:33:20"),
    ]
    # Enum8 values given as strings are stored as the enum's codes
    assert warehouse.rows("SELECT toInt8(direction), toInt8(kind) FROM interactions FINAL ORDER BY event_id") == [
        (1, 5),
        (2, 8),
        (1, 6),
    ]


def test_responses_round_trip(warehouse: Warehouse) -> None:
    warehouse.insert(RESPONSES, RESPONSE_ROWS)
    got = read_back(warehouse, RESPONSES, "inbound_id")
    want = [{c.name: expected_value(c.type, r[c.name]) for c in core_columns(RESPONSES)} for r in RESPONSE_ROWS]
    assert got == sorted(want, key=lambda r: str(r["inbound_id"]))


def test_dead_letters_keep_original_bytes(warehouse: Warehouse) -> None:
    warehouse.insert(DEAD_LETTERS, DEAD_LETTER_ROWS)
    got = read_back(warehouse, DEAD_LETTERS, "record_index")
    want = [{c.name: expected_value(c.type, r[c.name]) for c in DEAD_LETTERS.columns} for r in DEAD_LETTER_ROWS]
    assert got == want
    # byte for byte, including bytes that are not UTF-8
    hexes = warehouse.rows("SELECT hex(original), length(original) FROM dead_letters FINAL ORDER BY record_index")
    assert hexes == [(o.hex().upper(), len(o)) for o in ORIGINAL_BYTES]


def test_insert_of_nothing_is_a_noop(warehouse: Warehouse) -> None:
    warehouse.insert(INTERACTIONS, [])
    assert warehouse.scalar("SELECT count() FROM interactions") == 0


def test_insert_with_a_bad_enum_value_fails_with_warehouse_error(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="insert into interactions failed"):
        warehouse.insert(INTERACTIONS, [interaction("x:bad", kind="not_a_kind")])
    # the connection is still usable afterwards
    warehouse.insert(INTERACTIONS, [interaction("x:good")])
    assert warehouse.rows("SELECT event_id FROM interactions FINAL") == [("x:good",)]


def test_final_deduplicates(warehouse: Warehouse) -> None:
    first = interaction("x:1", text="first delivery", _version=1)
    warehouse.insert(INTERACTIONS, [first, interaction("x:2")])
    warehouse.insert(INTERACTIONS, [interaction("x:1", text="redelivered", _version=2), interaction("x:2")])
    warehouse.insert(INTERACTIONS, [first])  # a late, older copy: the higher _version still wins
    assert warehouse.scalar("SELECT count() FROM interactions FINAL") == 2
    assert warehouse.rows("SELECT event_id, text, _version FROM interactions FINAL ORDER BY event_id") == [
        ("x:1", "redelivered", 2),
        ("x:2", INTERACTION_ROWS[0]["text"], INTERACTION_ROWS[0]["_version"]),
    ]
    # dead_letters (ReplacingMergeTree without a version): one row per source record
    warehouse.insert(DEAD_LETTERS, DEAD_LETTER_ROWS[:2])
    warehouse.insert(DEAD_LETTERS, DEAD_LETTER_ROWS[:2])
    assert warehouse.scalar("SELECT count() FROM dead_letters FINAL") == 2


# ---------------------------------------------------------------------------------------------
# text output: the server renders its own formats (over its HTTP interface)

TEXT_QUERY = (
    "SELECT event_id, author_handle, author_followers, kind, text, created_at, sentiment, "
    "customer_last_sentiment, _version FROM interactions FINAL ORDER BY event_id"
)
TEXT_ROWS = [
    interaction("x:1", author_handle=None, text='tab\there "q", new\nline \\ back, ünï / it\'s'),
    interaction("x:2", author_handle="a,b", author_followers=None, text=None, sentiment=1.0),
]


def json_each_row(quote_64bit: bool) -> str:
    """What JSONEachRow prints: 18.16 quotes 64-bit integers, current servers (24.x) do not by default."""
    big, version = (
        ('"18446744073709551615"', '"1700000005000"') if quote_64bit else ("18446744073709551615", "1700000005000")
    )
    return (
        f'{{"event_id":"x:1","author_handle":null,"author_followers":{big},'
        '"kind":"direct_message","text":"tab\\there \\"q\\", new\\nline \\\\ back, ünï \\/ it\'s",'
        '"created_at":"2023-11-14 22:13:20","sentiment":0.4404,"customer_last_sentiment":-0.4767,'
        f'"_version":{version}}}\n'
        '{"event_id":"x:2","author_handle":"a,b","author_followers":null,"kind":"direct_message",'
        '"text":null,"created_at":"2023-11-14 22:13:20","sentiment":1,"customer_last_sentiment":-0.4767,'
        f'"_version":{version}}}\n'
    )


TSV_BODY = (
    "x:1\t\\N\t18446744073709551615\tdirect_message\t"
    'tab\\there "q", new\\nline \\\\ back, ünï / it\\\'s\t'
    "2023-11-14 22:13:20\t0.4404\t-0.4767\t1700000005000\n"
    "x:2\ta,b\t\\N\tdirect_message\t\\N\t2023-11-14 22:13:20\t1\t-0.4767\t1700000005000\n"
)
EXPECTED_TEXT = {  # escapes, NULLs, Float32 digits, DateTime('UTC') in a Tokyo server, UInt64 max
    "TSV": {TSV_BODY},
    "TSVWithNames": {
        "event_id\tauthor_handle\tauthor_followers\tkind\ttext\tcreated_at\tsentiment\t"
        "customer_last_sentiment\t_version\n" + TSV_BODY
    },
    "CSV": {
        '"x:1",\\N,18446744073709551615,"direct_message",'
        '"tab\there ""q"", new\nline \\ back, ünï / it\'s",'
        '"2023-11-14 22:13:20",0.4404,-0.4767,1700000005000\n'
        '"x:2","a,b",\\N,"direct_message",\\N,"2023-11-14 22:13:20",1,-0.4767,1700000005000\n'
    },
    "JSONEachRow": {json_each_row(quote_64bit=True), json_each_row(quote_64bit=False)},
}


@pytest.mark.parametrize("fmt", sorted(EXPECTED_TEXT))
def test_query_text_is_rendered_by_the_server(warehouse: Warehouse, fmt: str) -> None:
    warehouse.insert(INTERACTIONS, TEXT_ROWS)
    assert warehouse.query_text(TEXT_QUERY, fmt) in EXPECTED_TEXT[fmt]


def test_query_text_pretty(warehouse: Warehouse) -> None:
    warehouse.insert(INTERACTIONS, TEXT_ROWS)
    text = re.sub(r"\x1b\[[0-9;]*m", "", warehouse.query_text(TEXT_QUERY, "Pretty"))  # 18.16 bolds the header
    lines = text.splitlines()
    assert lines[0].startswith("┏") and lines[-1].startswith("└")
    header = [cell.strip() for cell in lines[1].split("┃")[1:-1]]
    assert header == TEXT_QUERY.split("SELECT ")[1].split(" FROM")[0].split(", ")
    (second,) = [line for line in lines if "x:2" in line]
    assert [cell.strip() for cell in second.split("│")[1:-1]] == [
        "x:2",
        "a,b",
        "ᴺᵁᴸᴸ",
        "direct_message",
        "ᴺᵁᴸᴸ",
        "2023-11-14 22:13:20",
        "1",
        "-0.4767",
        "1700000005000",
    ]


def test_query_text_of_bytes_that_are_not_utf8(warehouse: Warehouse) -> None:
    warehouse.insert(DEAD_LETTERS, DEAD_LETTER_ROWS)
    sql = "SELECT record_index, original FROM dead_letters FINAL ORDER BY record_index"
    # the server sends the bytes as they are; they are decoded with U+FFFD replacements
    assert warehouse.query_text(sql, "TSV") == (
        '0\t{"text": "caf\ufffd \ufffd\ufffd"}\n1\tünïcödé, valid UTF-8\n2\t\n3\tnul\\0byte\\n\\ttab\n'
    )
    assert warehouse.query_text(sql, "CSV") == (
        '0,"{""text"": ""caf\ufffd \ufffd\ufffd""}"\n1,"ünïcödé, valid UTF-8"\n2,""\n3,"nul\x00byte\n\ttab"\n'
    )
    assert warehouse.query_text(sql, "JSONEachRow") == (
        '{"record_index":0,"original":"{\\"text\\": \\"caf\ufffd \ufffd\ufffd\\"}"}\n'
        '{"record_index":1,"original":"ünïcödé, valid UTF-8"}\n'
        '{"record_index":2,"original":""}\n'
        '{"record_index":3,"original":"nul\\u0000byte\\n\\ttab"}\n'
    )
    assert '{"text": "caf\ufffd \ufffd\ufffd"}' in warehouse.query_text(sql, "Pretty")


def test_query_text_with_any_format_the_server_knows(warehouse: Warehouse) -> None:
    assert warehouse.query_text("SELECT 1 AS a, 'x' AS b", "TSKV") == "a=1\tb=x\n"
    assert warehouse.query_text("SELECT 'a\\tb'", "TSVRaw") == "a\tb\n"
    assert (
        warehouse.query_text("SELECT currentDatabase()", "TSV") == warehouse.scalar("SELECT currentDatabase()") + "\n"
    )
    with pytest.raises(WarehouseError) as caught:
        warehouse.query_text("SELECT 1", "NoSuchFormat")
    assert caught.value.code == 73  # UNKNOWN_FORMAT, from the server
    assert "NoSuchFormat" in str(caught.value)


@pytest.mark.parametrize("fmt", ["TSV FORMAT CSV", "TSV&readonly=0", "", "JSON\nEachRow"])
def test_query_text_refuses_a_format_that_is_not_a_plain_name(warehouse: Warehouse, fmt: str) -> None:
    with pytest.raises(WarehouseError, match="bad output format name"):
        warehouse.query_text("SELECT 1", fmt)


def test_query_text_error_is_the_servers_one_line_message(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError) as caught:
        warehouse.query_text("SELECT no_such_column FROM interactions", "TSV")
    assert "\n" not in str(caught.value)
    assert "no_such_column" in str(caught.value)
    assert caught.value.code == 47 and caught.value.permanent  # UNKNOWN_IDENTIFIER
    with pytest.raises(WarehouseError) as caught:
        warehouse.query_text("SELEC 1", "TSV")
    assert caught.value.code == 62  # SYNTAX_ERROR


def test_query_text_error_after_rows_were_produced_is_an_error_not_partial_rows(warehouse: Warehouse) -> None:
    # megabytes of rows before the failure: more than the server's HTTP buffer, so without
    # wait_end_of_query it would already have answered 200 and appended the error to the rows
    with pytest.raises(WarehouseError) as caught:
        warehouse.query_text("SELECT throwIf(number = 2000000) FROM system.numbers LIMIT 3000000", "TSV")
    assert caught.value.code == 395  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    assert "\n" not in str(caught.value)


def test_query_text_over_max_bytes(warehouse: Warehouse) -> None:
    assert warehouse.query_text("SELECT 'abc'", "TSV", max_bytes=4) == "abc\n"
    with pytest.raises(ResultTooLarge, match="result over 3 bytes"):
        warehouse.query_text("SELECT 'abc'", "TSV", max_bytes=3)
    with pytest.raises(ResultTooLarge, match="result over 1000 bytes"):
        warehouse.query_text("SELECT number FROM system.numbers LIMIT 1000000", "TSV", max_bytes=1000)
    assert warehouse.query_text("SELECT 1", "TSV", max_bytes=2) == "1\n"  # still usable


# ---------------------------------------------------------------------------------------------
# failures


def test_wrong_port_fails_fast_with_one_line_naming_the_address(server: ClickHouseServer) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(WarehouseError) as caught:
        connect(f"clickhouse://127.0.0.1:{port}/rapport")
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message


def test_wrong_http_port_fails_query_text_fast_naming_the_address(server: ClickHouseServer) -> None:
    port = free_port()
    warehouse = connect(f"clickhouse://{server.host}:{server.port}/default?http_port={port}")
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseError) as caught:
            warehouse.query_text("SELECT 1")
        assert time.monotonic() - started < 10
        assert str(caught.value).startswith(f"ClickHouse server 127.0.0.1:{port} (HTTP) is unreachable: ")
        assert "\n" not in str(caught.value)
        assert warehouse.scalar("SELECT 1") == 1  # the native side is unaffected
    finally:
        warehouse.close()


def test_query_error_is_one_line_warehouse_error(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError) as caught:
        warehouse.rows("SELECT no_such_column FROM interactions")
    assert "\n" not in str(caught.value)
    assert warehouse.scalar("SELECT 1") == 1


def test_kill_restart_keeps_data_and_insert_while_down_fails_fast(tmp_path: Path) -> None:
    server = ClickHouseServer(tmp_path / "clickhouse")
    server.start()
    try:
        url = server.url("rapport")
        before = connect(url)
        assert isinstance(before, ServerWarehouse)
        migrate(before)
        before.insert(INTERACTIONS, INTERACTION_ROWS)
        before.insert(DEAD_LETTERS, DEAD_LETTER_ROWS)

        server.kill()  # SIGKILL: no clean shutdown
        assert not server.is_running()

        started = time.monotonic()
        with pytest.raises(WarehouseError) as caught:
            before.insert(RESPONSES, RESPONSE_ROWS)
        assert time.monotonic() - started < 10
        assert "insert into responses failed" in str(caught.value)
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        with pytest.raises(WarehouseError):
            connect(url)
        started = time.monotonic()
        with pytest.raises(WarehouseError, match=f"127.0.0.1:{server.http_port} \\(HTTP\\) is unreachable"):
            before.query_text("SELECT count() FROM interactions FINAL")
        assert time.monotonic() - started < 10

        server.start()  # same ports, same data directory
        after = connect(url)
        try:
            assert migrate(after) == []
            assert read_back(after, INTERACTIONS, "event_id") == read_back_expected(INTERACTIONS, INTERACTION_ROWS)
            assert after.scalar("SELECT count() FROM dead_letters FINAL") == len(DEAD_LETTER_ROWS)
            after.insert(RESPONSES, RESPONSE_ROWS)
            assert after.scalar("SELECT count() FROM responses FINAL") == len(RESPONSE_ROWS)
        finally:
            after.close()
        # the warehouse opened before the crash reconnects by itself too
        assert before.scalar("SELECT count() FROM responses FINAL") == len(RESPONSE_ROWS)
        assert before.query_text("SELECT count() FROM responses FINAL") == f"{len(RESPONSE_ROWS)}\n"
        before.close()
    finally:
        server.stop()


def read_back_expected(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    key = table.column_names[0]
    want = [{c.name: expected_value(c.type, r[c.name]) for c in core_columns(table)} for r in rows]
    return sorted(want, key=lambda r: str(r[key]))
