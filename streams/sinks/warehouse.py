"""Thin I/O to ClickHouse: one interface, two implementations chosen by URL.

- ``chdb://PATH``: embedded ClickHouse (chdb) owning the data directory PATH. One process at a time
  can own a path; other processes reach a running worker's data through its SQL endpoint.
- ``clickhouse://HOST:PORT/DB[?http_port=N]``: a ClickHouse server. Statements, inserts and rows go over
  the native protocol (clickhouse-driver, PORT, default 9000); :meth:`Warehouse.query_text` asks the
  server's HTTP interface (``http_port``, default 8123) so the server renders its own output formats.

Rows handed to :meth:`Warehouse.insert` are mappings keyed by the contract's column names, with
``DateTime`` columns as integer Unix seconds (UTC), or an Arrow table of the same columns. The same
DDL (``schemas/migrations``) runs on both.
"""

from __future__ import annotations

import http.client
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import orjson

from schemas.contract import Column, Table, arrow_type

#: ClickHouse error codes that retrying cannot mend: the schema or the rights are wrong (a table dropped by
#: hand, a column missing, a read-only user). The sink stops the worker on them instead of retrying forever;
#: the restarted worker migrates first, which recreates missing tables (schemas/migrate.py).
PERMANENT_ERROR_CODES = frozenset(
    {
        16,  # NO_SUCH_COLUMN_IN_TABLE
        47,  # UNKNOWN_IDENTIFIER
        53,  # TYPE_MISMATCH
        60,  # UNKNOWN_TABLE
        62,  # SYNTAX_ERROR
        81,  # UNKNOWN_DATABASE
        164,  # READONLY
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
    }
)
_CODE = re.compile(r"\bCode: (\d+)")
#: An output format's name: letters and digits only, so nothing else can ride along in the request.
_FORMAT_NAME = re.compile(r"[A-Za-z0-9]+")
DEFAULT_HTTP_PORT = 8123


class WarehouseError(RuntimeError):
    """A warehouse that cannot be opened or reached, or a query that fails (one-line message)."""

    @property
    def code(self) -> int | None:
        """ClickHouse's error code when the message carries one (``Code: 60. DB::Exception: …``)."""
        match = _CODE.search(str(self))
        return int(match.group(1)) if match else None

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_ERROR_CODES


class ResultTooLarge(WarehouseError):
    """A query's answer is larger than the caller accepts."""


Row = Mapping[str, Any]
#: Rows to insert: mappings by column name, or an Arrow table with the contract's column names and
#: ``schemas.contract.arrow_type`` types (the sink decodes enriched messages straight into Arrow).
Rows = Sequence[Row] | Any


class Warehouse(ABC):
    url: str

    @abstractmethod
    def command(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL, INSERT … SELECT)."""

    @abstractmethod
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query and return its rows as Python values."""

    @abstractmethod
    def query_text(self, sql: str, fmt: str = "TSV", max_bytes: int | None = None) -> str:
        """Run a query and return its result rendered in a ClickHouse output format (at most ``max_bytes``,
        else :class:`ResultTooLarge`)."""

    @abstractmethod
    def insert(self, table: Table, rows: Rows) -> None:
        """Insert rows (mappings by column name, or an Arrow table) in one batch."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection or the embedded engine."""

    def scalar(self, sql: str) -> Any:
        result = self.rows(sql)
        return result[0][0] if result and result[0] else None


# ---------------------------------------------------------------------------------------------
# chdb
# ---------------------------------------------------------------------------------------------


def _arrow_table(table: Table, rows: Rows) -> Any:
    """``rows`` as an Arrow table with ``table``'s columns (rows given as mappings are converted)."""
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return rows
    columns = {}
    for c in table.columns:
        values = [r.get(c.name) for r in rows]
        binary = any(isinstance(v, bytes) for v in values)  # dead_letters.original: any bytes
        columns[c.name] = pa.array(values, arrow_type(c, binary))
    return pa.table(columns)


class ChdbWarehouse(Warehouse):
    def __init__(self, path: Path) -> None:
        from chdb import session

        self.url = f"chdb://{path}"
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._session = session.Session(str(path))
        except Exception as exc:  # chdb raises a bare RuntimeError/ChdbError
            raise WarehouseError(
                f"cannot open chdb data directory {path}: {_first_line(exc)} "
                "(is another Rapport process using it? query a running worker with `rapport sql --worker`)"
            ) from exc
        self._lock = threading.Lock()

    def _query(self, sql: str, fmt: str = "CSV") -> Any:
        with self._lock:
            try:
                return self._session.query(sql, fmt)
            except Exception as exc:
                self._resync()
                raise WarehouseError(_first_line(exc)) from exc

    def _resync(self) -> None:
        """After a failed query chdb may hand the output it had produced so far to the *next* query of the
        session (measured: a query stopped by a result limit; the next one returned its rows). Run a
        marker query until its own answer comes back, so no query ever reads another's output."""
        for _ in range(5):
            marker = secrets.token_hex(8)
            try:
                if self._session.query(f"SELECT '{marker}'", "TSVRaw").bytes() == f"{marker}\n".encode():
                    return
            except Exception:  # a failed marker query: try another
                continue
        raise WarehouseError("the embedded ClickHouse session did not recover after a failed query")

    def command(self, sql: str) -> None:
        self._query(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        out = self._query(sql, "JSONCompactEachRow").bytes()
        # String columns may hold arbitrary bytes (dead_letters.original): decode leniently
        return [tuple(orjson.loads(line.decode("utf-8", errors="replace"))) for line in out.splitlines() if line]

    def query_text(self, sql: str, fmt: str = "TSV", max_bytes: int | None = None) -> str:
        result = self._query(sql, fmt)
        if max_bytes is not None and result.size() > max_bytes:  # before any copy of it in Python
            raise ResultTooLarge(f"result over {max_bytes} bytes; narrow the query or add a LIMIT")
        return str(result.bytes().decode("utf-8", errors="replace"))

    def insert(self, table: Table, rows: Rows) -> None:
        if not len(rows):
            return
        arrow = _arrow_table(table, rows)  # noqa: F841 - read by name by the Python() table function below
        cols = ", ".join(table.column_names)
        with self._lock:
            try:
                self._session.query(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM Python(arrow)")
            except Exception as exc:
                self._resync()
                raise WarehouseError(f"insert into {table.name} failed: {_first_line(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            self._session.close()


# ---------------------------------------------------------------------------------------------
# ClickHouse server (native protocol; HTTP for text output)
# ---------------------------------------------------------------------------------------------


def _to_python(column_type: str, value: Any) -> Any:
    """A contract value as clickhouse-driver takes it for a column of ``column_type``."""
    if value is not None and "DateTime" in column_type and isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    # bytes go through untouched: the driver writes them verbatim into String columns, so any byte
    # sequence (not only UTF-8) round-trips; a str is encoded as UTF-8 by the driver.
    return value


def _quiet_driver_logging() -> None:
    # clickhouse-driver logs every failed connection attempt as a WARNING with a traceback; with no
    # logging configured, Python prints that to stderr next to our one-line WarehouseError. A NullHandler
    # on its logger stops that fallback output and still lets an application's own handlers see it.
    import logging

    logger = logging.getLogger("clickhouse_driver")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


class ServerWarehouse(Warehouse):
    def __init__(
        self,
        host: str,
        port: int,
        database: str,
        connect_timeout: float = 5.0,
        send_receive_timeout: float = 120.0,
        http_port: int = DEFAULT_HTTP_PORT,
    ) -> None:
        from clickhouse_driver import Client

        _quiet_driver_logging()
        self.url = f"clickhouse://{host}:{port}/{database}?http_port={http_port}"
        self._database = database
        self._host = host
        self._http_port = http_port
        self._connect_timeout = connect_timeout
        self._send_receive_timeout = send_receive_timeout
        self._lock = threading.Lock()
        self._columns: dict[str, list[Column]] = {}
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "connect_timeout": connect_timeout,
            "send_receive_timeout": send_receive_timeout,
            "sync_request_timeout": connect_timeout,
            "settings": {"use_client_time_zone": False},
        }
        # The database may not exist yet: create it over a connection to `default`, then work in it.
        self._client = Client(database="default", **options)
        try:
            self._execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        except WarehouseError as exc:
            raise WarehouseError(f"ClickHouse server {host}:{port} is unreachable: {exc}") from exc
        finally:
            self._client.disconnect()
        self._client = Client(database=database, **options)

    def _execute(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return self._client.execute(sql, params, **kwargs)
            except Exception as exc:
                # A failed query can leave the connection mid-protocol: start the next one afresh.
                self._client.disconnect()
                raise WarehouseError(_first_line(exc)) from exc

    def command(self, sql: str) -> None:
        self._execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._execute(sql)]

    def query_text(self, sql: str, fmt: str = "TSV", max_bytes: int | None = None) -> str:
        """The server renders the result itself: the query goes to its HTTP interface (the SQL untouched
        as the request body, the format as ``default_format``, so a query's own ``FORMAT`` clause wins).
        ``wait_end_of_query=1`` makes the server finish the query before it answers, so an error met
        halfway through comes back as an HTTP error rather than appended to rows already sent."""
        if not _FORMAT_NAME.fullmatch(fmt):  # before running the query
            raise WarehouseError(f"bad output format name {fmt!r}: letters and digits only")
        params = urlencode({"database": self._database, "default_format": fmt, "wait_end_of_query": "1"})
        address = f"{self._host}:{self._http_port}"
        connection = http.client.HTTPConnection(self._host, self._http_port, timeout=self._connect_timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:
                raise WarehouseError(f"ClickHouse server {address} (HTTP) is unreachable: {_first_line(exc)}") from exc
            assert connection.sock is not None
            connection.sock.settimeout(self._send_receive_timeout)
            try:
                connection.request("POST", f"/?{params}", body=sql.encode(), headers={"Content-Type": "text/plain"})
                response = connection.getresponse()
                if response.status != 200:
                    detail = _first_line_of(response.read(64 << 10))
                    raise WarehouseError(detail or f"ClickHouse server {address} answered HTTP {response.status}")
                body = _read_at_most(response, max_bytes)
            except (OSError, http.client.HTTPException) as exc:
                raise WarehouseError(f"ClickHouse server {address} (HTTP) failed: {_first_line(exc)}") from exc
        finally:
            connection.close()
        return body.decode("utf-8", errors="replace")  # String columns may hold any bytes: decode leniently

    def _present_columns(self, table: Table) -> list[Column]:
        """The contract columns that the server's table has. On a current server that is all of them; an old
        server (tests only: see ``schemas/migrate.py``) lacks the columns of migrations it cannot run."""
        if table.name not in self._columns:
            names = {
                str(name)
                for (name,) in self.rows(
                    f"SELECT name FROM system.columns WHERE database = '{self._database}' AND table = '{table.name}'"
                )
            }
            self._columns[table.name] = [c for c in table.columns if c.name in names] or list(table.columns)
        return self._columns[table.name]

    def insert(self, table: Table, rows: Rows) -> None:
        if not len(rows):
            return
        if not isinstance(rows, Sequence):  # an Arrow table
            rows = rows.to_pylist()
        try:
            columns = self._present_columns(table)
            values = [tuple(_to_python(c.type, r.get(c.name)) for c in columns) for r in rows]
            cols = ", ".join(c.name for c in columns)
            # The rows travel as native columnar data: `INSERT … VALUES` with no inline values.
            self._execute(f"INSERT INTO {table.name} ({cols}) VALUES", values)
        except WarehouseError as exc:
            self._columns.pop(table.name, None)  # a table dropped or migrated meanwhile: look again next time
            raise WarehouseError(f"insert into {table.name} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()


# ---------------------------------------------------------------------------------------------


def connect(url: str) -> Warehouse:
    """Open the warehouse named by ``url`` (``chdb://PATH`` or ``clickhouse://HOST:PORT/DB``)."""
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        path = url[len("chdb://") :]
        if not path:
            raise WarehouseError(f"bad warehouse URL {url!r}: chdb://PATH needs a path")
        return ChdbWarehouse(Path(path))
    if parsed.scheme == "clickhouse":
        database = parsed.path.strip("/") or "default"
        if not database.replace("_", "").isalnum():
            raise WarehouseError(f"bad database name {database!r} in {url!r}")
        params = parse_qs(parsed.query, keep_blank_values=True)
        unknown = sorted(set(params) - {"http_port"})
        if unknown:
            raise WarehouseError(f"bad warehouse URL {url!r}: unknown parameter {unknown[0]!r} (known: http_port)")
        http_port = params.get("http_port", [str(DEFAULT_HTTP_PORT)])[-1]
        if not http_port.isdigit() or not 0 < int(http_port) < 65536:
            raise WarehouseError(f"bad warehouse URL {url!r}: http_port must be a port number")
        try:
            port = parsed.port or 9000
        except ValueError as exc:
            raise WarehouseError(f"bad warehouse URL {url!r}: {exc}") from exc
        return ServerWarehouse(parsed.hostname or "127.0.0.1", port, database, http_port=int(http_port))
    raise WarehouseError(f"bad warehouse URL {url!r}: expected chdb://PATH or clickhouse://HOST:PORT/DB")


def string_literal(text: str) -> str:
    """``text`` as a ClickHouse string literal (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def in_list(values: Iterable[str]) -> str:
    """``('a', 'b')``: the distinct values as a ClickHouse list of string literals (for ``IN``)."""
    return "(" + ", ".join(string_literal(v) for v in sorted(set(values))) + ")"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def _first_line_of(body: bytes) -> str:
    """The first line of a server's error answer (``Code: 60. DB::Exception: …``), or ''."""
    text = body.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0][:500] if text else ""


def _read_at_most(response: http.client.HTTPResponse, max_bytes: int | None) -> bytes:
    """The whole body, reading at most ``max_bytes + 1`` bytes of it (else :class:`ResultTooLarge`)."""
    if max_bytes is None:
        return response.read()
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = response.read(min(1 << 20, max_bytes + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise ResultTooLarge(f"result over {max_bytes} bytes; narrow the query or add a LIMIT")
