"""Thin I/O to ClickHouse: one interface, two implementations chosen by URL.

- ``chdb://PATH``: embedded ClickHouse (chdb) owning the data directory PATH. One process at a time
  can own a path; other processes reach a running worker's data through its SQL endpoint.
- ``clickhouse://HOST:PORT/DB``: a ClickHouse server over the native protocol (clickhouse-driver).

Rows handed to :meth:`Warehouse.insert` are mappings keyed by the contract's column names, with
``DateTime`` columns as integer Unix seconds (UTC), or an Arrow table of the same columns. The same
DDL (``schemas/migrations``) runs on both.
"""

from __future__ import annotations

import math
import re
import secrets
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from schemas.contract import Table, arrow_type

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
# ClickHouse server (native protocol)
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
    ) -> None:
        from clickhouse_driver import Client

        _quiet_driver_logging()
        self.url = f"clickhouse://{host}:{port}/{database}"
        self._database = database
        self._lock = threading.Lock()
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
        if fmt not in SUPPORTED_TEXT_FORMATS:  # before running the query
            raise WarehouseError(f"unsupported output format {fmt!r} for a server; use one of {SUPPORTED_TEXT_FORMATS}")
        result, columns = self._execute(sql, with_column_types=True)
        text = render_rows([c[0] for c in columns], result, fmt, [c[1] for c in columns])
        if max_bytes is not None and len(text.encode()) > max_bytes:
            raise ResultTooLarge(f"result over {max_bytes} bytes; narrow the query or add a LIMIT")
        return text

    def insert(self, table: Table, rows: Rows) -> None:
        if not len(rows):
            return
        if not isinstance(rows, Sequence):  # an Arrow table
            rows = rows.to_pylist()
        values = [tuple(_to_python(c.type, r.get(c.name)) for c in table.columns) for r in rows]
        cols = ", ".join(table.column_names)
        try:
            # The rows travel as native columnar data: `INSERT … VALUES` with no inline values.
            self._execute(f"INSERT INTO {table.name} ({cols}) VALUES", values)
        except WarehouseError as exc:
            raise WarehouseError(f"insert into {table.name} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()


SUPPORTED_TEXT_FORMATS = (
    "TSV",
    "TabSeparated",
    "TSVWithNames",
    "CSV",
    "CSVWithNames",
    "JSONEachRow",
    "Pretty",
)

_TSV_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f", "'": "\\'"}
)


def _float_text(value: float, float32: bool = False) -> str:
    """A float as ClickHouse prints it: the shortest digits that round-trip (in Float32 precision for
    Float32 columns), in plain notation for 1e-7 < |x| < 1e21 and as ``1e21``/``2.5e-10`` beyond."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(value)
    if float32 and abs(value) <= 3.4028234663852886e38:
        target = struct.unpack("f", struct.pack("f", value))[0]
        for precision in range(9):
            candidate = f"{target:.{precision}e}"
            if struct.unpack("f", struct.pack("f", float(candidate)))[0] == target:
                text = candidate
                break
    sign, digit_tuple, exponent = Decimal(text).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    point = len(digit_tuple) + exponent  # value = 0.DIGITS x 10**point
    if len(digits) <= point <= 21:
        body = digits + "0" * (point - len(digits))
    elif 0 < point <= 21:
        body = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        body = "0." + "0" * -point + digits
    else:
        mantissa = digits if len(digits) == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{point - 1}"
    return ("-" if sign else "") + body


def _plain_text(value: Any) -> str:
    """A non-NULL scalar as ClickHouse writes it before any format-specific quoting or escaping."""
    if isinstance(value, bytes):  # String values that are not UTF-8 (the driver hands them over as bytes)
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number_text(value: Any, float32: bool) -> str:
    return _float_text(value, float32) if isinstance(value, float) else _plain_text(value)


def _quoted_text(value: Any, float32: bool) -> str:
    """An element inside an Array/Tuple in TSV/CSV: ClickHouse's quoted form (``['a','b\\'c']``)."""
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple):
        inner = ",".join(_quoted_text(v, float32) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if _is_number(value) or isinstance(value, bool):
        return _number_text(value, float32)
    return "'" + _plain_text(value).translate(_TSV_ESCAPES) + "'"


def _tsv_text(value: Any, float32: bool) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, list | tuple):
        return _quoted_text(value, float32).translate(_TSV_ESCAPES)
    if _is_number(value):
        return _number_text(value, float32)
    return _plain_text(value).translate(_TSV_ESCAPES)


def _csv_text(value: Any, float32: bool) -> str:
    if value is None:
        return "\\N"
    if _is_number(value) or isinstance(value, bool):
        return _number_text(value, float32)
    text = _quoted_text(value, float32) if isinstance(value, list | tuple) else _plain_text(value)
    return '"' + text.replace('"', '""') + '"'


def _json_text(value: Any, float32: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value, float32) if math.isfinite(value) else "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v, float32) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_json_text(str(k), False)}:{_json_text(v, float32)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    return orjson.dumps(_plain_text(value)).decode().replace("/", "\\/")


def render_rows(names: list[str], rows: Sequence[Sequence[Any]], fmt: str, types: Sequence[str] | None = None) -> str:
    """Render rows in a few ClickHouse output formats (for servers reached over the native protocol).

    For scalar columns (strings, numbers, dates, enums, NULL) the output matches what ClickHouse itself
    (chdb 26.x) prints for these formats; composite values (arrays, tuples), decimals and the Pretty
    family are rendered more simply (Pretty: plain aligned columns). TSV escaping,
    CSV quoting of strings and dates, shortest float digits (``types``, the ClickHouse column types,
    tells Float32 columns apart), ``\\N``/``null`` for NULL. String values that are not valid UTF-8 are
    decoded with U+FFFD replacements, as ``ChdbWarehouse.query_text`` does.
    """
    float32 = [("Float32" in t) for t in types] if types is not None else [False] * len(names)
    if fmt == "JSONEachRow":
        keys = [_json_text(name, False) for name in names]
        return "".join(
            "{" + ",".join(f"{k}:{_json_text(v, f)}" for k, v, f in zip(keys, r, float32, strict=True)) + "}\n"
            for r in rows
        )
    if fmt in ("TSV", "TabSeparated", "TSVWithNames"):
        lines = ["\t".join(n.translate(_TSV_ESCAPES) for n in names)] if fmt == "TSVWithNames" else []
        lines += ["\t".join(_tsv_text(v, f) for v, f in zip(r, float32, strict=True)) for r in rows]
        return "".join(line + "\n" for line in lines)
    if fmt in ("CSV", "CSVWithNames"):
        lines = [",".join(_csv_text(n, False) for n in names)] if fmt == "CSVWithNames" else []
        lines += [",".join(_csv_text(v, f) for v, f in zip(r, float32, strict=True)) for r in rows]
        return "".join(line + "\n" for line in lines)
    if fmt == "Pretty":
        cells = [names] + [
            ["NULL" if v is None else _tsv_text(v, f) for v, f in zip(r, float32, strict=True)] for r in rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
        return "".join(" ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in cells)
    raise WarehouseError(f"unsupported output format {fmt!r} for a server; use one of {SUPPORTED_TEXT_FORMATS}")


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
        return ServerWarehouse(parsed.hostname or "127.0.0.1", parsed.port or 9000, database)
    raise WarehouseError(f"bad warehouse URL {url!r}: expected chdb://PATH or clickhouse://HOST:PORT/DB")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
