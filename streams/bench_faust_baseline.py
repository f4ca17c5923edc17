"""Baseline for ``rapport bench``: a Faust agent that forwards the same raw messages to another topic and
does nothing else (the framework's own cost per message, measured on the same machine and broker).

Run as ``python -m streams.bench_faust_baseline BOOTSTRAP IN_TOPIC OUT_TOPIC MESSAGES WEB_PORT DATADIR``;
prints one JSON line ``{"messages": N, "seconds": S}`` (first message received → last one acknowledged)
and exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def main(argv: list[str]) -> None:
    import faust

    bootstrap, in_topic, out_topic, expected, port, datadir = argv[0], argv[1], argv[2], int(argv[3]), argv[4], argv[5]
    app = faust.App(
        f"rapport-bench-forward-{os.getpid()}",
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

    @app.agent(source)
    async def forward(stream: Any) -> Any:
        async for event in stream.events():
            if state["start"] is None:
                state["start"] = time.perf_counter()
            await sink.send(key=event.key, value=event.value)
            state["count"] += 1
            if state["count"] >= expected:
                await app.producer.flush()
                elapsed = time.perf_counter() - state["start"]
                print(json.dumps({"messages": state["count"], "seconds": elapsed}), flush=True)
                os._exit(0)  # a benchmark process: nothing left to commit that matters
            yield None

    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
