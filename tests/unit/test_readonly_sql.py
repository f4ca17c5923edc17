"""The admin listener's read-only SQL (streams/web/readonly_sql.py) on a real chdb, as an attacker writes it.

Every attack is refused (QueryRefused, or the engine's own error for a syntax error or an exceeded limit),
reads and writes no host file, and leaves every table and row in place. The same engine runs the checks
as in the worker: ClickHouse parses the query, not a string prefix.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.contract import TABLES
from schemas.migrate import migrate
from streams.sinks.warehouse import Warehouse, WarehouseError, connect
from streams.web.readonly_sql import Limits, QueryRefused, check_ast, parse_ast, run_read_only, string_literal

LIMITS = Limits(seconds=1.0, memory_bytes=256 << 20, result_bytes=1 << 20, result_rows=10_000)
SECRET = "webhook-secret-value-that-must-not-leak"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, Path]]:
    root = tmp_path_factory.mktemp("readonly")
    warehouse = connect(f"chdb://{root / 'clickhouse'}")
    try:
        migrate(warehouse)
        warehouse.command(
            "INSERT INTO interactions (event_id, platform, brand, author_id, direction, kind, created_at, "
            "ingested_at) VALUES ('x:1', 'x', 'acme', 'c1', 'inbound', 'mention', now(), now())"
        )
        (root / "webhook-secrets.env").write_text(f"RAPPORT_X_CONSUMER_SECRET={SECRET}\n")
        yield warehouse, root
    finally:
        warehouse.close()


def counts(warehouse: Warehouse) -> dict[str, int]:
    return {t.name: int(warehouse.scalar(f"SELECT count() FROM {t.name}")) for t in TABLES}


def site_packages() -> Path:
    return Path(next(p for p in sys.path if p.endswith("site-packages")))


ATTACKS = [
    "SELECT 1; DROP TABLE interactions",
    "SELECT 1;DROP TABLE interactions;",
    "/* hello */ DROP TABLE interactions",
    "-- a comment\nDROP TABLE interactions",
    "DROP TABLE interactions",
    "TRUNCATE TABLE interactions",
    "ALTER TABLE interactions DELETE WHERE 1",
    "INSERT INTO interactions (event_id) VALUES ('x:2')",
    "INSERT INTO interactions (event_id) SELECT 'x:3'",
    "CREATE TABLE evil (a Int8) ENGINE = Memory",
    "SET readonly = 0",
    "SYSTEM FLUSH LOGS",
    "SYSTEM DROP MARK CACHE",
    "OPTIMIZE TABLE interactions FINAL",
    "KILL QUERY WHERE 1",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM FILE('/etc/passwd', 'LineAsString')",
    "SELECT * FROM `file`('/etc/passwd', 'LineAsString')",
    "SELECT file('/etc/hostname')",
    "SELECT length(file('/etc/hostname')) > 0",
    "SELECT * FROM file('{root}/webhook-secrets.env', 'LineAsString')",
    "WITH (SELECT file('{root}/webhook-secrets.env')) AS s SELECT s",
    "SELECT 1 WHERE 1 IN (SELECT length(file('/etc/passwd')))",
    "SELECT * FROM (SELECT * FROM file('/etc/passwd', 'LineAsString'))",
    "SELECT * FROM fileCluster('default', '/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/x', 'LineAsString')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM executable('id', 'TSV', 'x String')",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')",
    "SELECT * FROM sqlite('/etc/passwd', 't')",
    "SELECT * FROM Python(warehouse)",
    "SELECT * FROM input('a String')",
    "SELECT hasColumnInTable('127.0.0.1:9000', 'default', '', 'system', 'one', 'dummy')",
    "SELECT 1 INTO OUTFILE '{outfile}'",
    "SELECT 'import os' INTO OUTFILE '{pth}' FORMAT TSVRaw",
    "SELECT * FROM interactions INTO OUTFILE '{outfile}' TRUNCATE",
    "SELECT 1 FORMAT JSON",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT * FROM (SELECT 1 SETTINGS readonly = 0)",
    "SELECT 1 UNION ALL SELECT 2 SETTINGS max_execution_time = 1000",
    "WITH x AS (SELECT 1) SELECT * FROM x SETTINGS allow_introspection_functions = 1",
    "EXPLAIN SELECT 1",
    "SELECT 1\x00; DROP TABLE interactions",
    # found by an attacker's pass: parts of SHOW/DESCRIBE and column transformers that EXPLAIN AST hides
    "SHOW TABLES",
    "DESCRIBE TABLE interactions",
    "EXISTS TABLE interactions",
    "SHOW CREATE TABLE interactions",
    "SHOW COLUMNS FROM interactions WHERE throwIf(1, file('/etc/passwd')) = 0",
    "SHOW COLUMNS FROM interactions WHERE field IN (SELECT * FROM python('x'))",
    "DESCRIBE (SELECT 1 AS `import os`) INTO OUTFILE '{pth}' FORMAT TSVRaw",
    "SHOW TABLES INTO OUTFILE '{outfile}' TRUNCATE FORMAT TSVRaw",
    "SELECT * APPLY(file) FROM (SELECT '{root}/webhook-secrets.env' AS p)",
    "SELECT * APPLY(x -> base64Encode(file(x))) FROM (SELECT '/etc/passwd' AS p)",
    "SELECT * REPLACE(file('/etc/passwd') AS p) FROM (SELECT 1 AS p)",
    "SELECT COLUMNS('p') APPLY(file) FROM (SELECT '/etc/passwd' AS p)",
    "SELECT * FROM bigquery('p', 'd', 't', access_token = 'tok', base_url = 'http://127.0.0.1:9')",
    "SELECT * FROM arrowstream('http://127.0.0.1:9')",
    "SELECT * FROM eval('SELECT 1')",
    "SELECT * FROM loop(numbers(3))",
    "SELECT * FROM merge('interactions')",
    "SELECT * FROM filesystem('/etc')",
    "SELECT * FROM generateRandom('a String')",
    "SELECT * FROM view(SELECT * FROM file('/etc/passwd', 'LineAsString'))",
    "SELECT arrayMap(x -> file(x), ['/etc/passwd'])",
    "SELECT joinGet('t', 'a', 1)",
    "SELECT dictGet('d', 'a', 1)",
    # a second attacker's pass: costly single calls that outrun the time limit, file paths as table names,
    # system tables that leak the process
    "SELECT arrayLevenshteinDistance(range(150000), range(1, 150001))",
    "SELECT sum(levenshteinDistance(repeat('a', 65535), repeat(toString(number % 10), 65535))) FROM numbers(20)",
    "SELECT editDistance(repeat('a', 60000), repeat('b', 60000))",
    "SELECT * FROM `/etc/shadow`",
    "SELECT * FROM default.`{root}/webhook-secrets.env`",
    "SELECT * FROM system.stack_trace",
    "SELECT * FROM system.server_settings",
    "SELECT getServerSetting('path')",
    "SELECT * FROM other_db.t",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_are_refused_and_change_nothing(engine: tuple[Warehouse, Path], attack: str) -> None:
    warehouse, root = engine
    outfile = root / "written-by-attack.txt"
    pth = site_packages() / "rapport-attack.pth"
    query = attack.format(root=root, outfile=outfile, pth=pth)
    before = counts(warehouse)
    with pytest.raises((QueryRefused, WarehouseError)) as refused:
        result = run_read_only(warehouse, query, "TSV", LIMITS)
        pytest.fail(f"ran: {result!r}")  # pragma: no cover - only when an attack gets through
    assert SECRET not in str(refused.value)
    assert "root:" not in str(refused.value)
    assert not outfile.exists()
    assert not pth.exists()
    assert counts(warehouse) == before
    assert warehouse.scalar("SELECT count() FROM system.tables WHERE name = 'evil'") == 0


def test_refusals_say_why(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    cases = {
        "SELECT 1; DROP TABLE interactions": "not one valid statement",
        "DROP TABLE interactions": "only SELECT queries",
        "SHOW TABLES": "only SELECT queries",
        "SELECT * APPLY(file) FROM (SELECT 'x' AS p)": "ColumnsApplyTransformer",
        "SELECT * FROM bigquery('p', 'd', 't')": "table function bigquery",
        "SELECT file('/etc/hostname')": "function file()",
        "SELECT 1 INTO OUTFILE '/tmp/x'": "OUTFILE",
        "SELECT 1 SETTINGS readonly = 0": "SETTINGS",
    }
    for query, words in cases.items():
        with pytest.raises(QueryRefused, match=words):
            run_read_only(warehouse, query, "TSV", LIMITS)


def test_a_heavy_query_stops_at_its_time_limit(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    started = time.monotonic()
    with pytest.raises(WarehouseError, match=r"TIMEOUT_EXCEEDED|Timeout exceeded"):
        run_read_only(warehouse, "SELECT sum(sipHash64(number)) FROM numbers(2500000000)", "TSV", LIMITS)
    assert time.monotonic() - started < LIMITS.seconds + 3


def test_a_greedy_query_stops_at_its_memory_limit(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    limits = Limits(seconds=20, memory_bytes=64 << 20, result_bytes=1 << 20, result_rows=10_000)
    with pytest.raises(WarehouseError, match=r"MEMORY_LIMIT_EXCEEDED|memory limit"):
        run_read_only(warehouse, "SELECT groupArray(number) FROM numbers(50000000)", "TSV", limits)


def test_a_huge_result_is_refused(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    with pytest.raises(WarehouseError, match="TOO_MANY_ROWS_OR_BYTES"):
        run_read_only(warehouse, "SELECT repeat('x', 100) FROM numbers(30000)", "TSV", LIMITS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT brand, count() FROM interactions FINAL GROUP BY brand", "acme\t1\n"),
        ("-- comment first\nSELECT count() FROM interactions", "1\n"),
        ("/* c */ WITH b AS (SELECT brand FROM interactions) SELECT count() FROM b", "1\n"),
        ("SELECT 1 INTERSECT SELECT 1", "1\n"),
        ("SELECT count() FROM (SELECT number FROM system.numbers_mt LIMIT 10)", "10\n"),
        ("SELECT * FROM numbers(3)", "0\n1\n2\n"),
        ("SELECT 'a; DROP TABLE interactions'", "a; DROP TABLE interactions\n"),
        ("SELECT name FROM system.tables WHERE name = 'responses'", "responses\n"),
        ("SELECT count() > 5 FROM system.columns WHERE table = 'interactions'", "1\n"),
        ("SELECT * EXCEPT (b) FROM (SELECT 1 AS a, 2 AS b)", "1\n"),
        ("SELECT format('{} {}', 'a', 'b')", "a b\n"),
        ("SELECT arrayMap(x -> x * 2, [1, 2]), sum(number) OVER (ORDER BY number) FROM numbers(1)", "[2,4]\t0\n"),
        ("SELECT a FROM values('a UInt8', 1, 2) ORDER BY a DESC LIMIT 1", "2\n"),
        ("SELECT count() > 0 FROM system.parts WHERE table = 'interactions'", "1\n"),
        ("SELECT count() FROM default.interactions", "1\n"),
    ],
)
def test_reading_queries_still_answer(engine: tuple[Warehouse, Path], query: str, expected: str) -> None:
    warehouse, _ = engine
    assert run_read_only(warehouse, query, "TSV", LIMITS) == expected


def test_union_of_selects_answers(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    text = run_read_only(warehouse, "WITH 2 AS two SELECT two UNION ALL SELECT 3", "TSV", LIMITS)
    assert sorted(text.split()) == ["2", "3"]


def test_no_query_reads_the_output_of_a_failed_one(engine: tuple[Warehouse, Path]) -> None:
    """chdb can hand a failed query's partial output to the next query; the attacker's pair was a query
    over the row limit whose rows spelled a second statement, then any query: the DROP ran."""
    warehouse, _ = engine
    poison = "SELECT '[\"SELECT 1; DROP TABLE interactions\"]' FROM numbers(20000)"
    before = counts(warehouse)
    with pytest.raises(WarehouseError, match="TOO_MANY_ROWS_OR_BYTES"):
        run_read_only(warehouse, poison, "TSV", LIMITS)
    assert run_read_only(warehouse, "SELECT 1", "TSV", LIMITS) == "1\n"
    assert counts(warehouse) == before
    assert warehouse.rows("SELECT 'fresh'") == [("fresh",)]


def test_a_result_over_its_byte_limit_is_refused_before_python_copies_it(engine: tuple[Warehouse, Path]) -> None:
    import resource

    warehouse, _ = engine
    with pytest.raises(QueryRefused, match="result over"):
        run_read_only(warehouse, "SELECT repeat('x', 100000) FROM numbers(20)", "TSV", LIMITS)
    # bytes that are not UTF-8 grow fourfold once decoded: the size is checked on chdb's buffer, before that
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    limits = Limits(seconds=20, memory_bytes=1 << 30, result_bytes=1 << 20, result_rows=10_000)
    with pytest.raises(QueryRefused, match="result over"):
        run_read_only(warehouse, "SELECT concat('😀', repeat(unhex('FF'), 100000)) FROM numbers(1000)", "TSV", limits)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 600 * 1024  # a decoded copy would add ~400 MB on top of chdb's ~100 MB buffer


def test_output_formats_come_from_an_allowlist(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    assert run_read_only(warehouse, "SELECT 1 AS n", "JSONEachRow", LIMITS) == '{"n":1}\n'
    for fmt in ("Native", "TSV INTO OUTFILE '/tmp/x'", "Parquet", ""):
        with pytest.raises(QueryRefused, match="output format"):
            run_read_only(warehouse, "SELECT 1", fmt, LIMITS)


def test_string_literal_round_trips_quotes_and_backslashes(engine: tuple[Warehouse, Path]) -> None:
    warehouse, _ = engine
    for text in ["it's", "back\\slash", "\\'; DROP TABLE interactions; --", "new\nline"]:
        assert warehouse.scalar(f"SELECT {string_literal(text)}") == text


def test_check_ast_on_clickhouse_output_shapes() -> None:
    union_with_outfile = "SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n Literal 'x'\n"
    with pytest.raises(QueryRefused):
        check_ast(parse_ast(union_with_outfile))
    nested_settings = "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery\n   Set\n"
    with pytest.raises(QueryRefused, match="SETTINGS"):
        check_ast(parse_ast(nested_settings))
    check_ast(parse_ast("SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  Function count\n"))
    in_from = "SelectWithUnionQuery (children 1)\n TableExpression (children 1)\n  Function url (children 1)\n"
    with pytest.raises(QueryRefused, match="table function url"):
        check_ast(parse_ast(in_from))
    with pytest.raises(QueryRefused, match="function s3"):  # a table function's name used as a scalar
        check_ast(parse_ast("SelectWithUnionQuery (children 1)\n  Function s3\n"), frozenset({"s3"}))
    with pytest.raises(QueryRefused, match="ColumnsApplyTransformer"):
        check_ast(parse_ast("SelectWithUnionQuery (children 1)\n  ColumnsApplyTransformer\n"))
