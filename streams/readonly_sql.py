"""Read-only SQL for operators: the admin listener's ``POST /rapport/sql`` against the worker's own chdb.

The worker's chdb is the same ClickHouse that stores every event, inside the worker's process, with the
worker's rights on the host. A query sent to it must not write a table, read or write a host file, reach
another server or start a process, and must not hold the warehouse for long: the sink waits for it.
The checks are made by ClickHouse's own parser and settings, not by looking at how the text starts:

1. **One statement.** ClickHouse parses the text as a string literal (``formatQuerySingleLine``), which
   refuses multi-statements (``SELECT 1; DROP TABLE …``) and gives the canonical text (comments gone).
   Only that canonical text is ever executed.
2. **A reading statement.** ``EXPLAIN AST`` of the canonical text (parsing only, nothing runs) must have a
   reading root: ``SELECT`` (with ``WITH``, ``UNION``, ``INTERSECT``, ``EXCEPT``), ``SHOW …``, ``DESCRIBE``,
   ``EXISTS``. No ``INTO OUTFILE``, ``FORMAT`` or ``SETTINGS`` clause anywhere (the output format is the
   request's ``format`` parameter; the settings are Rapport's).
3. **No functions that leave the database**, wherever they stand (table function or scalar): ``file``,
   ``url``, ``s3``, ``hdfs``, ``remote``, ``executable``, ``mysql``, ``postgresql``, chdb's ``Python`` …
   (``DENIED_FUNCTION_PREFIXES``). ClickHouse's read-only mode already refuses the table functions that need
   a source grant (``file``, ``url``, ``remote`` …), but not the scalar ``file(path)``: hence this list.
4. **Run read-only with limits.** A ``SELECT`` runs as ``SELECT * FROM (<query>) SETTINGS readonly = 1,
   max_execution_time = …, max_memory_usage = …, max_result_bytes = …``: the settings of the outer query
   bind the whole query (a ``SETTINGS readonly = 0`` inside could not lift them, and step 2 refuses it
   anyway). ``readonly = 1`` also forbids changing any setting from inside the query.

A refused query raises :class:`QueryRefused` (the listener answers 400 with its message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

#: Roots of ``EXPLAIN AST`` that only read.
READING_ROOTS = frozenset(
    {
        "SelectWithUnionQuery",
        "ShowTables",
        "ShowColumns",
        "ShowCreateTableQuery",
        "ShowCreateDatabaseQuery",
        "ShowCreateViewQuery",
        "DescribeQuery",
        "ExistsTableQuery",
        "ExistsDatabaseQuery",
        "ExistsViewQuery",
    }
)

#: Functions (table or scalar, compared lower-case) that read or write outside the database: files, other
#: servers, object stores, processes, the embedding Python process. A prefix also covers the ``…Cluster``
#: variants (``s3Cluster``, ``fileCluster`` …).
DENIED_FUNCTION_PREFIXES = (
    "file",
    "url",
    "s3",
    "gcs",
    "oss",
    "cosn",
    "hdfs",
    "azureblobstorage",
    "remote",
    "cluster",
    "executable",
    "mysql",
    "postgresql",
    "odbc",
    "jdbc",
    "mongodb",
    "redis",
    "sqlite",
    "input",
    "python",
    "deltalake",
    "iceberg",
    "hudi",
    "paimon",
    "arrowflight",
    "ytsaurus",
    "hascolumnintable",  # its six-argument form connects to another server
    "catboostevaluate",  # loads a model file
    "naivebayesclassifier",  # loads a model file
    "dictionary",
    "dictget",  # dictionaries may have file, HTTP or executable sources
    "dicthas",
    "dictisin",
    "dictgethierarchy",
)

MAX_QUERY_CHARS = 64 * 1024

#: Output formats a client may ask for (text formats; the name is passed to chdb, never put in the SQL).
OUTPUT_FORMATS = frozenset(
    {
        "TSV",
        "TabSeparated",
        "TSVWithNames",
        "TSVWithNamesAndTypes",
        "CSV",
        "CSVWithNames",
        "JSON",
        "JSONEachRow",
        "JSONCompact",
        "JSONCompactEachRow",
        "Pretty",
        "PrettyCompact",
        "PrettyCompactNoEscapes",
        "PrettyNoEscapes",
        "Vertical",
        "Markdown",
        "Values",
    }
)


class QueryRefused(ValueError):
    """The query is not a single reading statement, or uses something that leaves the database."""


class _Engine(Protocol):
    def rows(self, sql: str) -> list[tuple[object, ...]]: ...
    def query_text(self, sql: str, fmt: str = "TSV") -> str: ...


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0
    memory_bytes: int = 1 << 30
    result_bytes: int = 64 << 20
    #: chdb does not enforce ``max_result_bytes`` on every result (measured: a 30 MB result passed a 1 MiB
    #: limit), so rows are bounded too
    result_rows: int = 1_000_000

    def settings_clause(self) -> str:
        return (
            f"SETTINGS readonly = 1, max_execution_time = {self.seconds:g}, timeout_overflow_mode = 'throw', "
            f"max_memory_usage = {int(self.memory_bytes)}, max_result_bytes = {int(self.result_bytes)}, "
            f"max_result_rows = {int(self.result_rows)}, result_overflow_mode = 'throw', "
            "allow_introspection_functions = 0"
        )


def string_literal(text: str) -> str:
    """``text`` as a ClickHouse string literal (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class AstNode:
    depth: int
    name: str
    rest: str


def parse_ast(text: str) -> list[AstNode]:
    """The lines of ``EXPLAIN AST`` output: one node per line, indented one space per level."""
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stripped = line.lstrip(" ")
        name, _, rest = stripped.partition(" ")
        nodes.append(AstNode(len(line) - len(stripped), name, rest))
    return nodes


_CHILDREN = re.compile(r"\(children (\d+)\)")


def check_ast(nodes: list[AstNode]) -> None:
    """Refuse what a reading statement must not contain (pure: tested on ClickHouse's own output)."""
    if not nodes:
        raise QueryRefused("empty query")
    root = nodes[0]
    if root.name not in READING_ROOTS:
        raise QueryRefused(f"only reading statements (SELECT, SHOW, DESCRIBE, EXISTS) are allowed, not {root.name}")
    if root.name == "SelectWithUnionQuery":
        children = _CHILDREN.search(root.rest)
        if children and int(children.group(1)) > 1:  # the union's extra children: INTO OUTFILE, FORMAT, SETTINGS
            raise QueryRefused("INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed (use the format parameter)")
    for node in nodes:
        if node.name == "Set":
            raise QueryRefused("SETTINGS clauses are not allowed")
        if node.name in ("Function", "TableFunction"):
            function = node.rest.split(" ", 1)[0].lower()
            if function.startswith(DENIED_FUNCTION_PREFIXES):
                raise QueryRefused(f"function {function}() reaches outside the database and is not allowed")


def run_read_only(engine: _Engine, sql: str, fmt: str, limits: Limits) -> str:
    """Check ``sql`` with ClickHouse's parser and run it read-only within ``limits``; the text in ``fmt``.

    Raises :class:`QueryRefused` for a refused query; the engine's own errors (syntax, unknown table, time or
    memory limit exceeded) pass through as the engine raises them."""
    if fmt not in OUTPUT_FORMATS:
        raise QueryRefused(f"unsupported output format {fmt!r}; use one of {', '.join(sorted(OUTPUT_FORMATS))}")
    if not sql.strip():
        raise QueryRefused("empty query")
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryRefused(f"query over {MAX_QUERY_CHARS} characters")
    if "\0" in sql:
        raise QueryRefused("NUL byte in the query")
    # 1. parsed by ClickHouse as data: a second statement is a syntax error, and nothing is executed
    try:
        canonical = engine.rows(f"SELECT formatQuerySingleLine({string_literal(sql)})")[0][0]
    except Exception as exc:  # the engine's parser refused it: a syntax error or a second statement
        raise QueryRefused(f"not one valid statement: {exc}") from exc
    if not isinstance(canonical, str) or not canonical.strip():
        raise QueryRefused("empty query")
    # 2 and 3. the statement's tree, parsed again from the canonical text (EXPLAIN AST runs nothing)
    nodes = parse_ast(engine.query_text(f"EXPLAIN AST {canonical}", "TSVRaw"))
    check_ast(nodes)
    # 4. the outer query's settings bind everything inside it
    if nodes[0].name == "SelectWithUnionQuery":
        statement = f"SELECT * FROM ({canonical}) {limits.settings_clause()}"
    else:
        statement = f"{canonical} {limits.settings_clause()}"
    return engine.query_text(statement, fmt)
