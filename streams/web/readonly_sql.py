"""Read-only SQL for operators: the admin listener's ``POST /rapport/sql`` against the worker's own chdb.

The worker's chdb is the same ClickHouse that stores every event, inside the worker's process, with the
worker's rights on the host. A query sent to it must not write a table, read or write a host file, reach
another server or start a process, and must not hold the warehouse for long: the sink waits for it.
The checks are made by ClickHouse's own parser and settings, not by looking at how the text starts, and
they allow what is known to be safe rather than refuse what is known to be dangerous:

1. **One statement.** ClickHouse parses the text as a string literal (``formatQuerySingleLine``), which
   refuses multi-statements (``SELECT 1; DROP TABLE …``) and gives the canonical text (comments gone).
   Only that canonical text is ever executed. Each answer of chdb is tied to its own query by a random
   marker: chdb can hand a failed query's partial output to the next query (see ``ChdbWarehouse._resync``).
2. **A SELECT and nothing else.** ``EXPLAIN AST`` of the canonical text (parsing only, nothing runs) must be
   a ``SELECT`` (with ``WITH``, ``UNION``, ``INTERSECT``, ``EXCEPT``, joins, subqueries, window functions)
   built only of the node types in ``ALLOWED_NODES``. Not ``SHOW``/``DESCRIBE``/``EXISTS`` (their ``WHERE``,
   ``LIMIT`` and ``INTO OUTFILE`` do not show in the tree; query ``system.tables``/``system.columns``
   instead), no ``INTO OUTFILE``, ``FORMAT`` or ``SETTINGS`` clause, no ``* APPLY(…)`` column transformers
   (they name a function without a ``Function`` node).
3. **No functions that leave the database.** In ``FROM``, only the table functions of
   ``ALLOWED_TABLE_FUNCTIONS`` (``numbers``, ``values``, ``view`` …). Elsewhere, no function named like any
   table function chdb has (``file``, ``url``, ``s3``, ``python`` …: read from ``system.table_functions``,
   so new ones are refused too) and none of ``DENIED_FUNCTION_PREFIXES`` (``dictGet``, ``joinGet``,
   ``catboostEvaluate`` …).
4. **Run read-only with limits.** It runs as ``SELECT * FROM (<query>) SETTINGS readonly = 1,
   max_execution_time = …, max_memory_usage = …, max_result_rows = …``: the settings of the outer query
   bind the whole query. The text of the answer is refused when it is over ``result_bytes``.

A refused query raises :class:`QueryRefused` (the listener answers 400 with its message).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from streams.sinks.warehouse import ResultTooLarge, string_literal

#: The node types (as ``EXPLAIN AST`` names them) a SELECT may be built of: every construct an analyst
#: needs, nothing that hides an expression from the checks below. Anything else is refused by name.
ALLOWED_NODES = frozenset(
    {
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "SelectQuery",
        "ExpressionList",
        "Function",
        "Identifier",
        "Literal",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsTransformerList",
        "ColumnsExceptTransformer",  # * EXCEPT (col, …): names only
        "OrderByElement",
        "Subquery",
        "WithElement",
        "TableExpression",
        "TableIdentifier",
        "TableJoin",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "ArrayJoin",
        "SampleRatio",
        "WindowDefinition",
        "WindowListElement",
    }
)

#: Table functions allowed in FROM: they make rows from their arguments or read tables of this database.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "primes", "values", "view"}
)

#: Scalar functions that share a name with a table function but only compute (``format('{} {}', a, b)``).
SCALARS_NAMED_LIKE_TABLE_FUNCTIONS = frozenset({"format"})

#: Scalar functions (compared lower-case, by prefix) that read outside the database (dictionaries may have
#: file, HTTP or executable sources; join tables, model files, other servers, AI services, Keeper), or whose
#: one call costs the square of its input: ClickHouse checks the time limit between blocks, so one such
#: call ran 33 s against a 2 s limit while the sink waited for the warehouse.
DENIED_FUNCTION_PREFIXES = (
    "file",
    "dict",
    "joinget",
    "catboost",
    "naivebayes",
    "hascolumnintable",
    "executable",
    "evalmlmethod",
    "getclienthttpheader",
    "ai",
    "generateserialid",
    "getserversetting",
    "editdistance",
    "levenshteindistance",
    "damerauleven",
    "arraylevenshtein",
    "arraysimilarity",
)

#: Databases a query may read: the current one (chdb's ``default``) and the metadata schemas. chdb's
#: ``default`` database also takes a file path as a table name (``SELECT * FROM `/etc/shadow` `` answers
#: "read-only" for an existing file and "unknown table" otherwise): table names must be plain identifiers.
ALLOWED_DATABASES = frozenset({"default", "system", "information_schema", "INFORMATION_SCHEMA"})
#: The ``system`` tables operators need; the others (stack traces, server paths, users …) are refused.
ALLOWED_SYSTEM_TABLES = frozenset(
    {
        "one",
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "tables",
        "columns",
        "databases",
        "parts",
        "parts_columns",
        "settings",
        "functions",
        "table_functions",
        "formats",
        "data_type_families",
        "time_zones",
        "merges",
        "mutations",
        "events",
        "metrics",
        "asynchronous_metrics",
        "processes",
        "build_options",
    }
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

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
    """The query is not a single SELECT built of allowed parts, or uses something that leaves the database."""


class _Engine(Protocol):
    def rows(self, sql: str) -> list[tuple[object, ...]]: ...
    def query_text(self, sql: str, fmt: str = "TSV", max_bytes: int | None = None) -> str: ...


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0
    memory_bytes: int = 1 << 30
    result_bytes: int = 64 << 20
    result_rows: int = 1_000_000

    def settings_clause(self) -> str:
        # chdb does not enforce max_result_bytes on every result: rows are bounded here and the answer's
        # size is checked after it (run_read_only)
        return (
            f"SETTINGS readonly = 1, max_execution_time = {self.seconds:g}, timeout_overflow_mode = 'throw', "
            f"max_memory_usage = {int(self.memory_bytes)}, max_result_bytes = {int(self.result_bytes)}, "
            f"max_result_rows = {int(self.result_rows)}, result_overflow_mode = 'throw', "
            # small blocks: the time limit is checked between blocks, so a costly function is cut off sooner
            "max_block_size = 1024, allow_introspection_functions = 0"
        )


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


def check_ast(nodes: list[AstNode], table_functions: frozenset[str] = frozenset()) -> None:
    """Refuse what a reading SELECT must not contain (pure: tested on ClickHouse's own output).

    ``table_functions``: the lower-case names of every table function the engine has."""
    if not nodes:
        raise QueryRefused("empty query")
    if nodes[0].name != "SelectWithUnionQuery":
        raise QueryRefused(
            f"only SELECT queries are allowed, not {nodes[0].name} "
            "(for tables and columns, query system.tables and system.columns)"
        )
    parents: list[AstNode] = []
    for node in nodes:
        del parents[node.depth :]
        parent = parents[-1] if parents else None
        parents.append(node)
        if node.name not in ALLOWED_NODES:
            what = "SETTINGS clauses" if node.name == "Set" else f"{node.name} nodes"
            raise QueryRefused(f"{what} are not allowed in an admin query")
        if node.name == "SelectWithUnionQuery":
            children = _CHILDREN.search(node.rest)
            if children and int(children.group(1)) > 1:  # the union's extra children: INTO OUTFILE, FORMAT, …
                raise QueryRefused(
                    "INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed (use the format parameter)"
                )
        if node.name == "TableIdentifier":
            check_table(node.rest.split(" ", 1)[0])
        if node.name == "Function":
            function = node.rest.split(" ", 1)[0].lower()
            if parent is not None and parent.name == "TableExpression":
                if function not in ALLOWED_TABLE_FUNCTIONS:
                    raise QueryRefused(f"table function {function}() is not allowed (allowed: numbers, values, view …)")
            elif function.startswith(DENIED_FUNCTION_PREFIXES) or (
                function in table_functions and function not in SCALARS_NAMED_LIKE_TABLE_FUNCTIONS
            ):
                raise QueryRefused(f"function {function}() reaches outside the database and is not allowed")


def check_table(name: str) -> None:
    """A table of the current database or an allowed ``system`` table, named by plain identifiers."""
    database, _, table = name.rpartition(".")
    if not _IDENTIFIER.fullmatch(table) or (database and not _IDENTIFIER.fullmatch(database)):
        raise QueryRefused(f"table name {name!r} is not a plain identifier")
    if database and database not in ALLOWED_DATABASES:
        raise QueryRefused(f"database {database!r} is not readable here")
    if database == "system" and table not in ALLOWED_SYSTEM_TABLES:
        raise QueryRefused(f"system.{table} is not readable here (allowed: {', '.join(sorted(ALLOWED_SYSTEM_TABLES))})")


def _marked_rows(engine: _Engine, marker: str, sql_after_marker: str) -> list[tuple[object, ...]]:
    """``SELECT '<marker>', …``: the rows, once the marker shows they answer this very query."""
    rows = engine.rows(f"SELECT {string_literal(marker)}, {sql_after_marker}")
    if not rows or any(row[0] != marker for row in rows):
        raise QueryRefused("the warehouse answered another query; try again")
    return rows


def run_read_only(engine: _Engine, sql: str, fmt: str, limits: Limits) -> str:
    """Check ``sql`` with ClickHouse's parser and run it read-only within ``limits``; the text in ``fmt``.

    Raises :class:`QueryRefused` for a refused query; the engine's own errors (unknown table, time or
    memory limit exceeded) pass through as the engine raises them."""
    if fmt not in OUTPUT_FORMATS:
        raise QueryRefused(f"unsupported output format {fmt!r}; use one of {', '.join(sorted(OUTPUT_FORMATS))}")
    if not sql.strip():
        raise QueryRefused("empty query")
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryRefused(f"query over {MAX_QUERY_CHARS} characters")
    if "\0" in sql:
        raise QueryRefused("NUL byte in the query")
    marker = secrets.token_hex(16)
    # 1. parsed by ClickHouse as data: a second statement is a syntax error, and nothing is executed
    try:
        rows = _marked_rows(engine, marker, f"formatQuerySingleLine({string_literal(sql)})")
    except QueryRefused:
        raise
    except Exception as exc:  # the engine's parser refused it: a syntax error or a second statement
        raise QueryRefused(f"not one valid statement: {exc}") from exc
    canonical = rows[0][1] if len(rows) == 1 and len(rows[0]) == 2 else None
    if not isinstance(canonical, str) or not canonical.strip():
        raise QueryRefused("empty query")
    # 2 and 3. the tree of the statement as it will run, with the marker, parsed again (EXPLAIN AST runs
    # nothing; the canonical text is one statement, so no second one can ride along)
    try:
        tree = engine.query_text(f"EXPLAIN AST SELECT {string_literal(marker)} FROM ({canonical})", "TSVRaw")
    except Exception as exc:  # not a query that can stand in FROM (…): DROP, SHOW, INSERT, SET, SYSTEM …
        raise QueryRefused(f"only SELECT queries are allowed: {exc}") from exc
    if tree.count(f"Literal \\'{marker}\\'") + tree.count(f"Literal '{marker}'") != 1:
        raise QueryRefused("the warehouse answered another query; try again")
    check_ast(parse_ast(tree), table_function_names(engine))
    # 4. the outer query's settings bind everything inside it
    try:
        return engine.query_text(f"SELECT * FROM ({canonical}) {limits.settings_clause()}", fmt, limits.result_bytes)
    except ResultTooLarge as exc:
        raise QueryRefused(str(exc)) from exc


_TABLE_FUNCTIONS: dict[int, frozenset[str]] = {}


def table_function_names(engine: _Engine) -> frozenset[str]:
    """The lower-case names of the engine's table functions (asked once per engine)."""
    key = id(engine)
    if key not in _TABLE_FUNCTIONS:
        _TABLE_FUNCTIONS[key] = frozenset(
            str(n).lower() for (n,) in engine.rows("SELECT name FROM system.table_functions")
        )
    return _TABLE_FUNCTIONS[key]
