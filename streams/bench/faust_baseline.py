"""Baselines for ``rapport bench``, each a Faust agent on the same raw messages, machine and broker:

- ``forward``: forwards every message to another topic and does nothing else (the framework's own cost
  per message);
- ``floor``: the least a worker that looks at every event in Python can do: parse each JSON line with
  orjson and insert seven of its fields into a plain chdb table (no validation, state, sentiment or second
  topic), in batches of raw messages in a worker thread, as Rapport takes them (``RAPPORT_PROCESS_BATCH_*``);
- ``unopened``: the same batches and table, but the messages are never opened in Python: chdb's own JSON
  reader parses them. It shows what consuming and storing the events cost when no Python runs per event.

Run as ``rapport bench baseline-agent MODE BOOTSTRAP IN_TOPIC OUT_TOPIC MESSAGES WEB_PORT DATADIR``
(MODE ``forward``, ``floor`` or ``unopened``; OUT_TOPIC is used by ``forward`` only); prints one JSON line
``{"messages": N, "seconds": S, "rows": R}`` (first message received → last one handled; R the rows in
the table, null for ``forward``) and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

FLOOR_COLUMNS = ("event_id", "brand", "author_id", "text", "created_at", "kind", "direction")


def _floor_table(datadir: str) -> Any:
    """A chdb session on a fresh directory with a plain MergeTree table of the seven floor columns."""
    from chdb import session

    db = session.Session(os.path.join(datadir, "chdb"))
    columns = ", ".join(f"{c} Nullable(String)" for c in FLOOR_COLUMNS)
    db.query(f"CREATE TABLE floor ({columns}) ENGINE = MergeTree ORDER BY tuple()")
    return db


def _store_parsed(db: Any) -> Callable[[list[bytes]], None]:
    """``floor``: every line parsed with orjson in Python, seven fields inserted through Arrow."""
    import orjson
    import pyarrow as pa

    def parse(line: bytes) -> Any:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            return None

    def store(messages: list[bytes]) -> None:
        rows = [row for m in messages for line in m.split(b"\n") if isinstance(row := parse(line), dict)]
        arrow = pa.table(  # noqa: F841 - read by the Python() table function
            {
                c: pa.array([r.get(c) if isinstance(r.get(c), str) else None for r in rows], pa.string())
                for c in FLOOR_COLUMNS
            }
        )
        db.query("INSERT INTO floor SELECT * FROM Python(arrow)")

    return store


def _store_unopened(db: Any, datadir: str) -> Callable[[list[bytes]], None]:
    """``unopened``: the messages written as they are to a file that chdb reads line by line and parses with
    its own JSON functions. Lines that are not JSON objects are skipped, as ``floor`` skips them. (A file,
    because chdb reads ``{...}`` in a query's text as a parameter; lines, because the JSONEachRow reader
    that skips bad input also skips the valid line after an unterminated object.)"""
    spool = os.path.join(datadir, "batch.jsonl")
    structure = ", ".join(f"{c} Nullable(String)" for c in FLOOR_COLUMNS)

    def store(messages: list[bytes]) -> None:
        with open(spool, "wb") as f:
            f.write(b"\n".join(messages))
        db.query(
            f"INSERT INTO floor SELECT untuple(JSONExtract(line, 'Tuple({structure})')) "
            f"FROM file('{spool}', LineAsString, 'line String') "
            "WHERE isValidJSON(line) AND startsWith(trimLeft(line), '{')"
        )

    return store


def main(mode: str, bootstrap: str, in_topic: str, out_topic: str, expected: int, port: int, datadir: str) -> None:
    import faust

    app = faust.App(
        f"rapport-bench-{mode}-{os.getpid()}",
        broker=f"kafka://{bootstrap}",
        datadir=datadir,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=int(port),
        broker_session_timeout=6,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    source = app.topic(in_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    sink = app.topic(out_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    state: dict[str, Any] = {"count": 0, "start": None}

    def done(count: int, rows: int | None = None) -> None:
        elapsed = time.perf_counter() - state["start"]
        print(json.dumps({"messages": count, "seconds": elapsed, "rows": rows}), flush=True)
        os._exit(0)  # a benchmark process: nothing left to commit that matters

    if mode == "forward":

        @app.agent(source)
        async def forward(stream: Any) -> Any:
            async for event in stream.events():
                if state["start"] is None:
                    state["start"] = time.perf_counter()
                await sink.send(key=event.key, value=event.value)
                state["count"] += 1
                if state["count"] >= expected:
                    await app.producer.flush()
                    done(state["count"])
                yield None

    elif mode in ("floor", "unopened"):
        from streams.settings import Settings

        batch = Settings()  # batches of raw messages as the worker takes them (RAPPORT_PROCESS_BATCH_*)
        db = _floor_table(datadir)
        store = _store_parsed(db) if mode == "floor" else _store_unopened(db, datadir)
        executor = ThreadPoolExecutor(max_workers=1)

        @app.agent(source)
        async def floor(stream: Any) -> Any:
            loop = asyncio.get_running_loop()
            async for events in stream.take_events(batch.process_batch_messages, within=batch.process_batch_seconds):
                if state["start"] is None:
                    state["start"] = time.perf_counter()
                await loop.run_in_executor(executor, store, [e.value for e in events])
                state["count"] += len(events)
                if state["count"] >= expected:
                    rows = int(db.query("SELECT count() FROM floor", "CSV").bytes())
                    done(state["count"], rows)
                yield None

    else:
        raise SystemExit(f"unknown mode {mode!r} (expected forward, floor or unopened)")

    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()
