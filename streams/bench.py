"""Benchmarks (``rapport bench …``): figures printed, never asserted by the test suite.

``rapport bench edge`` measures the webhook edge on loopback: a worker process (Faust's web server)
with a real Kafka publisher to a local tansu broker, so every ``200`` was acknowledged by the broker.
Load comes from a separate process keeping N keep-alive connections busy with a mix of correctly signed
X, Meta and canonical deliveries (the demo's payloads): ``wrk`` (Debian package) when installed, as it
leaves the 2 cores to the edge and the broker, else a lean asyncio HTTP/1.1 client (heavier: it competes
with the edge for CPU, so its figures are lower). Printed: requests/s,
p50 and p99 latency (send → full response), the status codes, for the edge role and, for comparison,
the all-in-one worker that also processes every delivery on the same event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.settings import Settings

EDGE_TARGET_RPS = 5000


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    codes: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def raw_requests(settings: Settings) -> list[bytes]:
    """The demo's correctly signed deliveries as raw HTTP/1.1 requests (keep-alive)."""
    from streams.demo_webhooks import demo_deliveries

    out = []
    for delivery in demo_deliveries(settings):
        if delivery.expect != 200:
            continue
        headers = {"Host": "127.0.0.1", "Content-Type": "application/json", **delivery.headers}
        head = f"POST {delivery.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append((head + f"Content-Length: {len(delivery.body)}\r\n\r\n").encode() + delivery.body)
    return out


async def _load(port: int, requests: list[bytes], connections: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    codes: dict[str, int] = {}

    async def connection(offset: int, deadline: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < deadline:
            request = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            code = head[9:12].decode()
            codes[code] = codes.get(code, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(n, start + seconds) for n in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        len(latencies),
        elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        codes,
    )


def client_main(argv: list[str]) -> None:
    """``python -m streams.bench client PORT CONNECTIONS SECONDS REQUESTS_FILE``: prints a JSON result."""
    port, connections, seconds, path = int(argv[0]), int(argv[1]), float(argv[2]), Path(argv[3])
    requests = [base64.b64decode(r) for r in json.loads(path.read_text())]
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    result = asyncio.run(_load(port, requests, connections, seconds))
    print(json.dumps(result.__dict__))


def run_load(port: int, requests: list[bytes], connections: int, seconds: float, workdir: Path) -> LoadResult:
    """Load from ``wrk`` (C, light on the CPU the edge needs) when installed, else the asyncio client."""
    if shutil.which("wrk"):
        return run_wrk(port, requests, connections, seconds, workdir)
    path = workdir / "requests.json"
    path.write_text(json.dumps([base64.b64encode(r).decode() for r in requests]))
    done = subprocess.run(
        [sys.executable, "-m", "streams.bench", "client", str(port), str(connections), str(seconds), str(path)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(**data)


def _lua_string(data: bytes) -> str:
    level = "=" * next(n for n in range(1, 20) if b"]" + b"=" * n + b"]" not in data)
    return f"[{level}[{data.decode('utf-8')}]{level}]"


def wrk_script(requests: list[bytes]) -> str:
    """A wrk Lua script that cycles through the raw requests (headers and body as they are)."""
    items = []
    for raw in requests:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        headers = dict(line.split(": ", 1) for line in lines[1:] if not line.lower().startswith("content-length"))
        lua_headers = ", ".join(
            f"[ {_lua_string(k.encode())} ] = {_lua_string(v.encode())}" for k, v in headers.items()
        )
        items.append(f'wrk.format("POST", {_lua_string(path.encode())}, {{{lua_headers}}}, {_lua_string(body)})')
    return (
        "local requests = {}\nlocal i = 0\n"
        "init = function(args)\n"
        + "".join(f"  requests[#requests + 1] = {item}\n" for item in items)
        + "end\nrequest = function()\n  i = i + 1\n  return requests[(i % #requests) + 1]\nend\n"
    )


def _wrk_ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[re.sub(r"^[0-9.]+", "", text)]


def run_wrk(port: int, requests: list[bytes], connections: int, seconds: float, workdir: Path) -> LoadResult:
    script = workdir / "requests.lua"
    script.write_text(wrk_script(requests))
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    out = done.stdout
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore[union-attr]
    elapsed = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(errors.group(1)) if errors else 0
    codes = {"2xx": total - bad} | ({"other": bad} if bad else {})
    return LoadResult(total, elapsed, _wrk_ms(percentiles["50"]), _wrk_ms(percentiles["99"]), codes)


def bench_edge(
    seconds: float, connections: int, roles: tuple[str, ...], out: Any = sys.stdout
) -> dict[str, LoadResult]:
    from streams.demo_webhooks import write_demo_brands
    from streams.localbroker import LocalBroker, ensure_topics, free_port
    from streams.stack import WorkerProcess, topic_specs

    results: dict[str, LoadResult] = {}
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        workdir = Path(tmp)
        with LocalBroker(workdir / "broker") as broker:
            for role in roles:
                settings = Settings(
                    data_dir=workdir / role,
                    kafka_brokers=broker.bootstrap,
                    app_id=f"rapport-bench-{role}",
                    web_port=free_port(),
                    worker_role=role,  # type: ignore[arg-type]
                    brands_file=write_demo_brands(workdir / "brands.yaml"),
                    x_consumer_secret="bench-x-secret",
                    meta_app_secret="bench-meta-secret",
                    meta_verify_token="bench-verify",
                    events_token="bench-events-token",
                )
                ensure_topics(broker.bootstrap, topic_specs(settings))
                worker = WorkerProcess(settings, workdir / f"worker-{role}.log").start()
                try:
                    run_load(settings.web_port, raw_requests(settings), connections, 1.0, workdir)  # warm-up
                    before = worker.progress()
                    results[role] = result = run_load(
                        settings.web_port, raw_requests(settings), connections, seconds, workdir
                    )
                    after = worker.progress()
                finally:
                    worker.stop()
                # the edge's own counters are the truth: a rate the server did not see is not reported
                seen = after["edge_requests"] - before["edge_requests"]
                accepted = seen - (after["edge_rejected"] - before["edge_rejected"])
                if seen < result.requests or accepted < result.requests:
                    raise RuntimeError(
                        f"the load generator counted {result.requests} requests but the edge saw {seen} and "
                        f"accepted {accepted}: the figures would be wrong"
                    )
                produced = after["edge_messages"] - before["edge_messages"]
                print(
                    f"  worker role {role:<5} {result.rps:8.0f} requests/s   p50 {result.p50_ms:6.2f} ms   "
                    f"p99 {result.p99_ms:6.2f} ms   edge accepted {accepted} of {seen}, "
                    f"{produced} raw messages acknowledged by Kafka",
                    file=out,
                )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m streams.bench client PORT CONNECTIONS SECONDS REQUESTS_FILE")
