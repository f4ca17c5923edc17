"""Replaying a file into the raw topic.

:func:`read_chunks` (pure, no Kafka) reads a ``jsonl`` or ``twcs`` file and yields chunks: up to
``chunk_records`` consecutive records of one brand, as their original bytes, with what the worker
needs to parse them. :func:`replay` sends the chunks to Kafka, keyed by brand, and waits until the
broker has acknowledged every one.

Records whose brand cannot be read here still go to the raw topic (key ``""``): the worker rejects
them with a reason into the dead-letter topic, so every record of the file is accounted for.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streams.processing import twcs
from streams.processing.records import FORMATS, HEADER_CONTEXT, HEADER_FORMAT, group_csv_records


class ReplayError(RuntimeError):
    """A file that cannot be replayed at all (missing, wrong format); one-line message."""


@dataclass
class Chunk:
    key: str
    format: str
    records: list[bytes] = field(default_factory=list)
    context: list[Any] | None = None

    @property
    def payload(self) -> bytes:
        if self.format == "jsonl":
            return b"\n".join(self.records) + b"\n"
        return b"".join(r if r.endswith(b"\n") else r + b"\n" for r in self.records)

    def headers(self) -> list[tuple[str, bytes]]:
        out = [(HEADER_FORMAT, self.format.encode())]
        if self.context is not None:
            out.append((HEADER_CONTEXT, orjson.dumps(self.context)))
        return out


#: A record of a file: (brand key, time to replay it in order, original bytes, context for the worker).
SourceRecord = tuple[str, float, bytes, Any]
UNKNOWN_TIME = float("inf")  # records without a readable time are sent after the others


def _jsonl_records(data: bytes) -> Iterator[SourceRecord]:
    for line in data.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        brand, at = None, UNKNOWN_TIME
        try:
            obj = orjson.loads(line)
            brand = obj.get("brand")
            at = datetime.fromisoformat(obj["created_at"]).timestamp()
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            pass
        yield (brand if isinstance(brand, str) else ""), at, line, None


def _twcs_records(data: bytes, path: Path) -> Iterator[SourceRecord]:
    records = list(group_csv_records(data.splitlines(keepends=True)))
    if not records:
        raise ReplayError(f"{path}: empty file")
    header = next(csv.reader(io.StringIO(records[0].decode("utf-8", errors="replace"))), [])
    if tuple(h.strip() for h in header) != twcs.COLUMNS:
        raise ReplayError(
            f"{path}: not a twcs file: the header must be {','.join(twcs.COLUMNS)} (got {','.join(header)[:200]!r})"
        )
    check_quotes_closed(data, records[-1], path)
    rows: list[tuple[bytes, dict[str, str] | None]] = []
    for record in records[1:]:
        try:
            rows.append((record, twcs.parse_fields(record)))
        except twcs.RecordError:
            rows.append((record, None))
    contexts = twcs.resolve_context([f for _, f in rows if f is not None])
    for record, fields in rows:
        context = contexts.get(fields["tweet_id"]) if fields is not None else None
        brand = (context.brand if context else None) or ""
        try:
            at = datetime.strptime(fields["created_at"], twcs.TIME_FORMAT).timestamp() if fields else UNKNOWN_TIME
        except ValueError:
            at = UNKNOWN_TIME
        yield brand, at, record, (context.to_json() if context else None)


def check_quotes_closed(data: bytes, last_record: bytes, path: Path) -> None:
    """``ReplayError`` naming the line where a quoted field opens that is never closed.

    Records end at a line end outside quotes (``group_csv_records``), so a quote left open swallows every
    line after it into one record: the rest of the file would become one dead letter. Only the file's last
    record can be open (every other one ended outside quotes), and it is the file's tail byte for byte.
    """
    if last_record.count(b'"') % 2 == 0:
        return
    start = len(data) - len(last_record)
    line = len(data[:start].splitlines()) + 1
    raise ReplayError(
        f"{path}: line {line}: unterminated quote (the quoted field starting there runs to the end of the file)"
    )


def read_chunks(path: Path, fmt: str, chunk_records: int) -> Iterator[Chunk]:
    """Chunks of up to ``chunk_records`` records of one brand.

    A replay re-enacts history: records are sent in ``created_at`` order (file order among equal
    times; records without a readable time last), as a live platform would have delivered them. So
    the customer history computed on the first replay is complete, and a second replay of the same
    file recomputes exactly the same values.

    Sorting reads the whole file before the first chunk is yielded, so a file that cannot be replayed at
    all (``ReplayError``: not a twcs header, a quote never closed) fails on the first ``next()``, before
    anything is sent.
    """
    if fmt not in FORMATS:
        raise ReplayError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ReplayError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ReplayError(f"{path}: is a directory, not a file") from exc
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from exc
    source = _jsonl_records(data) if fmt == "jsonl" else _twcs_records(data, path)
    open_chunks: dict[str, Chunk] = {}
    for brand, _, record, context in sorted(source, key=lambda r: r[1]):
        chunk = open_chunks.setdefault(brand, Chunk(key=brand, format=fmt, context=[] if fmt == "twcs" else None))
        chunk.records.append(record)
        if chunk.context is not None:
            chunk.context.append(context)
        if len(chunk.records) >= chunk_records:
            yield open_chunks.pop(brand)
    yield from open_chunks.values()


async def send_chunks(
    bootstrap: list[str],
    topic: str,
    chunks: Iterator[Chunk],
    on_sent: Callable[[int], None] = lambda n: None,
    max_in_flight: int = 200,
) -> int:
    """Produce every chunk keyed by brand; return the number of records acknowledged by the broker."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=16 * 1024 * 1024,
        request_timeout_ms=30_000,
    )
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise ReplayError(f"Kafka broker {','.join(bootstrap)} is unreachable: {exc}") from exc
    sent = 0
    pending: list[tuple[asyncio.Future[Any], int]] = []

    async def settle() -> None:
        nonlocal sent
        for future, n in pending:
            await future
            sent += n
            on_sent(n)
        pending.clear()

    try:
        for chunk in chunks:
            future = await producer.send(topic, chunk.payload, key=chunk.key.encode(), headers=chunk.headers())
            pending.append((future, len(chunk.records)))
            if len(pending) >= max_in_flight:
                await settle()
        await settle()
    finally:
        await producer.stop()
    return sent


def replay(
    path: Path,
    fmt: str,
    bootstrap: list[str],
    topic: str,
    chunk_records: int,
    progress: bool = True,
    chunks: list[Chunk] | None = None,
) -> int:
    """Replay a file into the raw topic; returns the number of records sent. Shows a progress bar.

    ``chunks``: the file's ``read_chunks`` when the caller already read them (to fail fast before it
    started anything), so the file is not read twice."""
    from tqdm import tqdm

    if chunks is None:
        chunks = list(read_chunks(path, fmt, chunk_records))
    total = sum(len(c.records) for c in chunks)
    with tqdm(total=total, unit="event", desc=f"replay {path.name}", disable=not progress) as bar:
        return asyncio.run(send_chunks(bootstrap, topic, iter(chunks), on_sent=bar.update))
