"""Baselines for ``rapport bench``, each a Faust agent on the same raw messages, machine and broker:

- ``forward``: forwards every message to another topic and does nothing else (the framework's own cost
  per message);
- ``floor``: the least a worker that looks at every event can do: parse each JSON line with orjson and
  insert seven of its fields into a plain chdb table (no validation, state, sentiment or second topic),
  in batches of 64 messages in a worker thread, as Rapport does. It shows how much of the budget the
  parsing and storing of the events alone take on this machine.

Run as ``python -m streams.bench_faust_baseline MODE BOOTSTRAP IN_TOPIC OUT_TOPIC MESSAGES WEB_PORT DATADIR``
(MODE ``forward`` or ``floor``; OUT_TOPIC is unused by ``floor``); prints one JSON line
``{"messages": N, "seconds": S}`` (first message received → last one handled) and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

FLOOR_COLUMNS = ("event_id", "brand", "author_id", "text", "created_at", "kind", "direction")


def _floor_store(datadir: str) -> Any:
    """A function that inserts parsed events into a plain MergeTree table of a fresh chdb directory."""
    import pyarrow as pa
    from chdb import session

    db = session.Session(os.path.join(datadir, "chdb"))
    columns = ", ".join(f"{c} Nullable(String)" for c in FLOOR_COLUMNS)
    db.query(f"CREATE TABLE floor ({columns}) ENGINE = MergeTree ORDER BY tuple()")

    def store(rows: list[dict[str, Any]]) -> None:
        arrow = pa.table(  # noqa: F841 - read by the Python() table function
            {
                c: pa.array([r.get(c) if isinstance(r.get(c), str) else None for r in rows], pa.string())
                for c in FLOOR_COLUMNS
            }
        )
        db.query("INSERT INTO floor SELECT * FROM Python(arrow)")

    return store


def main(argv: list[str]) -> None:
    import faust
    import orjson

    mode, bootstrap, in_topic, out_topic = argv[0], argv[1], argv[2], argv[3]
    expected, port, datadir = int(argv[4]), argv[5], argv[6]
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

    def done(count: int) -> None:
        elapsed = time.perf_counter() - state["start"]
        print(json.dumps({"messages": count, "seconds": elapsed}), flush=True)
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

    elif mode == "floor":
        store = _floor_store(datadir)
        executor = ThreadPoolExecutor(max_workers=1)

        def parse(line: bytes) -> Any:
            try:
                return orjson.loads(line)
            except orjson.JSONDecodeError:
                return None

        @app.agent(source)
        async def floor(stream: Any) -> Any:
            loop = asyncio.get_running_loop()
            async for events in stream.take_events(64, within=0.05):
                if state["start"] is None:
                    state["start"] = time.perf_counter()
                rows = [row for e in events for line in e.value.split(b"\n") if isinstance(row := parse(line), dict)]
                await loop.run_in_executor(executor, store, rows)
                state["count"] += len(events)
                if state["count"] >= expected:
                    done(state["count"])
                yield None

    else:
        raise SystemExit(f"unknown mode {mode!r} (expected forward or floor)")

    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
