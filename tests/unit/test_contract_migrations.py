"""Migrations, the data-contract snapshot against real chdb tables, the generated doc, and warehouse URLs.

chdb allows one open session per process at a time, so every chdb test of this module shares one
module-scoped data directory (opened once, closed at the end of the module).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import DEAD_LETTERS, INTERACTIONS, RESPONSES, TABLES, render_markdown
from schemas.migrate import LEDGER_DDL, Migration, MigrationError, load_migrations, migrate
from streams.processing.pipeline import DictState, process_message
from streams.processing.records import RawMessage
from streams.sinks.warehouse import Warehouse, WarehouseError, connect

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "data-contract.md"


# --- migration files -----------------------------------------------------------------------------------


def test_migrations_load_in_order_and_are_idempotent_ddl() -> None:
    migrations = load_migrations()
    assert migrations, "no migration found in schemas/migrations"
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    assert migrations[0].name == "core_tables"
    for migration in migrations:
        for statement in migration.statements():
            assert not statement.lstrip().startswith("--")
            if re.match(r"(?i)^\s*CREATE\b", statement):
                assert re.search(r"(?i)\bIF NOT EXISTS\b", statement), f"{migration.name}: {statement[:80]}"
            if re.match(r"(?i)^\s*DROP\b", statement):
                assert re.search(r"(?i)\bIF EXISTS\b", statement), f"{migration.name}: {statement[:80]}"


def test_load_migrations_rejects_bad_names_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0002_b.sql").write_text("SELECT 2")
    assert [(m.version, m.name) for m in load_migrations(tmp_path)] == [(1, "a"), (2, "b")]
    (tmp_path / "0002_c.sql").write_text("SELECT 3")
    with pytest.raises(MigrationError, match="duplicate"):
        load_migrations(tmp_path)
    (tmp_path / "0002_c.sql").unlink()
    (tmp_path / "3_Bad-Name.sql").write_text("SELECT 4")
    with pytest.raises(MigrationError, match=re.escape("3_Bad-Name.sql")):
        load_migrations(tmp_path)


def test_statements_split_on_semicolons_without_comments() -> None:
    migration = Migration(
        7,
        "x",
        "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS a (x UInt8) "
        "ENGINE = Memory;\n\n  -- another\nDROP TABLE IF EXISTS b;\n",
    )
    assert migration.statements() == [
        "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory",
        "DROP TABLE IF EXISTS b",
    ]
    assert Migration(7, "x", "SELECT 1").checksum != Migration(7, "x", "SELECT 2").checksum


@dataclass
class FakeWarehouse:
    """An executor recording statements, with a schema_migrations ledger read back from the INSERTs."""

    commands: list[str] = field(default_factory=list)
    ledger: dict[int, str] = field(default_factory=dict)
    fail_on: str | None = None

    def command(self, sql: str) -> None:
        if self.fail_on is not None and self.fail_on in sql:
            raise RuntimeError("interrupted")
        self.commands.append(sql)
        match = re.match(r"INSERT INTO schema_migrations .* SELECT (\d+), '[^']*', '([0-9a-f]+)'", sql)
        if match:
            self.ledger[int(match.group(1))] = match.group(2)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        if "version()" in sql:
            return [("26.9.2.1",)]
        if "system.tables" in sql:  # the contract tables all exist (see the chdb test for a missing one)
            return [(t.name,) for t in TABLES]
        return [(v, c) for v, c in self.ledger.items()]


def test_migrate_logic_order_checksum_and_interrupted_run() -> None:
    one = Migration(1, "one", "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory")
    two = Migration(
        2,
        "two",
        "CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory;\n"
        "CREATE TABLE IF NOT EXISTS c (x UInt8) ENGINE = Memory",
    )
    fake = FakeWarehouse(fail_on="TABLE IF NOT EXISTS c")
    with pytest.raises(RuntimeError):
        migrate(fake, [one, two])  # interrupted half-way through 0002
    assert fake.commands[0] == LEDGER_DDL
    assert set(fake.ledger) == {1}
    fake.fail_on = None
    assert migrate(fake, [one, two]) == [two]  # runs 0002 again from its start
    assert fake.commands[-3:-1] == two.statements()
    assert migrate(fake, [one, two]) == []
    with pytest.raises(MigrationError, match="0002_two changed after it was applied"):
        migrate(fake, [one, Migration(2, "two", two.sql + ";")])


# --- chdb: a fresh data directory for the whole module --------------------------------------------------


@dataclass
class Migrated:
    warehouse: Warehouse
    first: list[Migration]
    second: list[Migration]


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    path = tmp_path_factory.mktemp("chdb") / "clickhouse"
    warehouse = connect(f"chdb://{path}")
    try:
        first = migrate(warehouse)
        second = migrate(warehouse)
        yield Migrated(warehouse, first, second)
    finally:
        warehouse.close()


def test_fresh_directory_applies_every_migration_once(chdb: Migrated) -> None:
    assert [m.version for m in chdb.first] == [m.version for m in load_migrations()]
    assert chdb.first[0].version == 1
    assert chdb.second == []
    ledger = chdb.warehouse.rows("SELECT version, name, checksum FROM schema_migrations FINAL ORDER BY version")
    assert ledger == [(m.version, m.name, m.checksum) for m in load_migrations()]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_schema_snapshot_tables_equal_the_contract(chdb: Migrated, table: Any) -> None:
    columns = chdb.warehouse.rows(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        f"AND table = '{table.name}' ORDER BY position"
    )
    assert columns == [(c.name, c.type) for c in table.columns]
    engine = chdb.warehouse.scalar(
        f"SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = '{table.name}'"
    )
    if table.engine == "View":  # a view has no engine_full; its engine is "View"
        engine = chdb.warehouse.scalar(
            f"SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = '{table.name}'"
        )
    assert str(engine).startswith(table.engine), f"{table.name}: {engine} does not start with {table.engine}"


def test_editing_an_applied_migration_is_an_error(chdb: Migrated) -> None:
    applied = load_migrations()[0]
    edited = Migration(applied.version, applied.name, applied.sql + "\n-- an edit\n")
    with pytest.raises(MigrationError, match=r"0001_core_tables changed after it was applied"):
        migrate(chdb.warehouse, [edited])


def test_pipeline_rows_fit_the_tables(chdb: Migrated) -> None:
    payload = b"\n".join(
        [
            b'{"event_id":"x:1","platform":"x","brand":"b","author_id":"c","direction":"inbound",'
            b'"kind":"mention","text":"hi","created_at":"2017-10-31T22:10:47Z","likes":3}',
            b'{"event_id":"x:2","platform":"x","brand":"b","author_id":"b","direction":"outbound",'
            b'"kind":"reply","text":"hello","created_at":"2017-10-31T22:11:47Z","parent_id":"x:1",'
            b'"customer_id":"c"}',
            b"not json \xff",
        ]
    )
    result = process_message(
        RawMessage(payload=payload, format="jsonl", key="b", topic="t"),
        DictState(),
        lambda text: 0.25 if text else None,
        1_700_000_000.0,
    )
    assert (len(result.interactions), len(result.responses), len(result.dead_letters)) == (2, 1, 1)
    chdb.warehouse.insert(INTERACTIONS, result.interactions)
    chdb.warehouse.insert(RESPONSES, result.responses)
    chdb.warehouse.insert(DEAD_LETTERS, [d.row() for d in result.dead_letters])
    assert chdb.warehouse.rows(
        "SELECT event_id, kind, direction, toUnixTimestamp(created_at), likes, conversation_id, "
        "customer_prior_inbound, customer_replies_received, customer_last_sentiment "
        "FROM interactions FINAL ORDER BY event_id"
    ) == [
        ("x:1", "mention", "inbound", 1509487847, 3, "x:1", 0, 0, None),
        ("x:2", "reply", "outbound", 1509487907, None, "x:1", 1, 0, 0.25),
    ]
    assert chdb.warehouse.rows("SELECT inbound_id, reply_id, response_seconds FROM responses FINAL") == [
        ("x:1", "x:2", 60)
    ]
    assert chdb.warehouse.scalar("SELECT hex(original) FROM dead_letters") == b"not json \xff".hex().upper()


# --- the generated documentation -------------------------------------------------------------------------


def test_data_contract_doc_is_generated_from_the_contract() -> None:
    if not DOC.exists():
        pytest.fail(f"{DOC.relative_to(REPO)} is missing: run `python -m schemas.contract > docs/data-contract.md`")
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data-contract.md is stale: run `python -m schemas.contract > docs/data-contract.md`"
    )


def test_rendered_markdown_lists_every_column() -> None:
    text = render_markdown()
    for table in TABLES:
        assert f"## `{table.name}`" in text
        for column in table.columns:
            assert f"| `{column.name}` | `{column.type}` |" in text


# --- connect() URL errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://x", "bad warehouse URL 'foo://x': expected chdb://PATH or clickhouse://HOST:PORT/DB"),
        ("chdb://", "chdb://PATH needs a path"),
        ("/just/a/path", "bad warehouse URL"),
        ("clickhouse://127.0.0.1:1/bad-name;", "bad database name 'bad-name;'"),
        ("clickhouse://127.0.0.1:1/db?http_port=x", "http_port must be a port number"),
        ("clickhouse://127.0.0.1:1/db?http_port=70000", "http_port must be a port number"),
        ("clickhouse://127.0.0.1:1/db?http_prot=8123", "unknown parameter 'http_prot' (known: http_port)"),
        ("clickhouse://127.0.0.1:99999/db", "bad warehouse URL"),
    ],
)
def test_connect_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(WarehouseError, match=re.escape(message)):
        connect(url)


def test_migrate_recreates_a_contract_table_dropped_by_hand(chdb: Migrated) -> None:
    """The ledger says 0001 ran; the table is gone all the same. `migrate` must not answer "up to date"."""
    from schemas.migrate import missing_tables

    warehouse = chdb.warehouse
    warehouse.command("DROP TABLE responses")
    assert missing_tables(warehouse) == ["responses"]
    assert migrate(warehouse) == []  # nothing new to apply …
    assert missing_tables(warehouse) == []  # … and the table is back, with the contract's columns
    columns = [name for (name,) in warehouse.rows("SELECT name FROM system.columns WHERE table = 'responses'")]
    assert columns == list(RESPONSES.column_names)
