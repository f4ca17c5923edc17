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

from pydantic import SecretStr

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
    from streams.local.demo_webhooks import demo_deliveries

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
    """``python -m streams.bench.pipeline client PORT CONNECTIONS SECONDS REQUESTS_FILE``: prints a JSON result."""
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
        [
            sys.executable,
            "-m",
            "streams.bench.pipeline",
            "client",
            str(port),
            str(connections),
            str(seconds),
            str(path),
        ],
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
    from streams.kafka.cluster import ensure_topics
    from streams.local.broker import LocalBroker, free_port
    from streams.local.demo_webhooks import write_demo_brands
    from streams.local.stack import WorkerProcess, topic_specs

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
                    admin_port=0,  # any free port (WorkerProcess picks it)
                    worker_role=role,  # type: ignore[arg-type]
                    brands_file=write_demo_brands(workdir / "brands.yaml"),
                    x_consumer_secret=SecretStr("bench-x-secret"),
                    meta_app_secret=SecretStr("bench-meta-secret"),
                    meta_verify_token=SecretStr("bench-verify"),
                    events_token=SecretStr("bench-events-token"),
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
        raise SystemExit("usage: python -m streams.bench.pipeline client PORT CONNECTIONS SECONDS REQUESTS_FILE")


# --- the pipeline -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str
    per_second: float
    unit: str = "events/s"
    note: str = ""


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def stage_figures(chunks: list[Any], warehouse_dir: Path, settings: Settings) -> tuple[list[Figure], list[str]]:
    """Each stage alone, in this process, on the same chunks; returns the figures and the texts scored."""
    from schemas.contract import INTERACTIONS
    from streams.processing.pipeline import (
        STEPS,
        DictState,
        Enriching,
        Options,
        StepContext,
        decode_enriched_batch,
        encode_enriched,
        interaction_row,
        parse_records,
    )
    from streams.processing.records import ProcessResult, RawMessage
    from streams.processing.sentiment import SentimentScorer
    from streams.sinks.warehouse import connect

    messages = [RawMessage(c.payload, c.format, c.key, c.context) for c in chunks]
    started = time.perf_counter()
    parsed = [p for m in messages for _, _, p in parse_records(m)]
    figures = [Figure("parse and validate", _rate(len(parsed), time.perf_counter() - started))]
    events = [p for p in parsed if not isinstance(p, str)]

    # the worker's own per-event steps (streams/processing/pipeline.STEPS), each timed over every event
    state, ctx = DictState(), StepContext(SentimentScorer().score, 0, Options())
    items = [Enriching(event) for event in events]
    for name, step in STEPS:
        started = time.perf_counter()
        for item in items:
            step(item, state, ctx)
        figures.append(Figure(f"step: {name}", _rate(len(items), time.perf_counter() - started)))

    # the sink as the worker runs it: enriched messages of one raw message's worth of rows, decoded together
    # into Arrow columns and inserted, a sink batch of messages at a time
    rows = [interaction_row(item, 0) for item in items]
    per_message = settings.replay_chunk_records
    values = [
        encode_enriched(ProcessResult(interactions=rows[i : i + per_message])) for i in range(0, len(rows), per_message)
    ]
    per_batch = settings.sink_batch_messages
    warehouse = connect(f"chdb://{warehouse_dir}")
    from schemas.migrate import migrate

    migrate(warehouse)
    warehouse.insert(INTERACTIONS, rows[:100])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(values), per_batch):
        warehouse.insert(INTERACTIONS, decode_enriched_batch(values[start : start + per_batch]).interactions)
    figures.append(
        Figure(
            f"sink (decode + chdb inserts of {settings.sink_batch_size} rows)",
            _rate(len(rows), time.perf_counter() - started),
        )
    )
    warehouse.close()
    return figures, [e.text for e in events if e.text]


def sentiment_figures(texts: list[str]) -> list[Figure]:
    """The reference ``vaderSentiment`` scorer and Rapport's, on the same texts (a baseline pair)."""
    from streams.processing.sentiment import SentimentScorer, reference_score

    sample = texts[:20_000]
    started = time.perf_counter()
    reference = [reference_score(t) for t in sample]
    ref_rate = _rate(len(sample), time.perf_counter() - started)
    scorer = SentimentScorer(cache_size=0)  # the algorithm itself: texts repeat, a cache would flatter it
    started = time.perf_counter()
    ours = [scorer.score(t) for t in sample]
    our_rate = _rate(len(sample), time.perf_counter() - started)
    worst = max((abs((a or 0.0) - (b or 0.0)) for a, b in zip(reference, ours, strict=True)), default=0.0)
    return [
        Figure("baseline: vaderSentiment 3.3.2 (reference)", ref_rate, "texts/s"),
        Figure("sentiment (Rapport)", our_rate, "texts/s", f"{scorer.implementation}; max |difference| {worst:.1e}"),
    ]


async def _consume_all(bootstrap: str, topic: str, messages: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        seen, started = 0, time.perf_counter()
        while seen < messages:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def _faust_baseline(mode: str, bootstrap: str, topic: str, messages: int, workdir: Path) -> tuple[float, int | None]:
    """Seconds a baseline agent (``rapport bench baseline-agent``, streams/bench/faust_baseline.py) took over the
    raw messages, and the rows it stored (None for ``forward``)."""
    from streams.local.broker import free_port

    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "baseline-agent", mode, bootstrap, topic, f"bench.{mode}",
         str(messages), str(free_port()), str(workdir / mode)],
        capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), result["rows"]


def _started_worker(settings: Settings, name: str, workdir: Path, module: str = "streams.cli") -> Any:
    """A started worker (group joined) with its own app id, topics, data directory and port."""
    from streams.kafka.cluster import ensure_topics
    from streams.local.broker import free_port
    from streams.local.stack import WorkerProcess, topic_specs

    isolated = settings.model_copy(update={
        "app_id": f"rapport-{name}", "topic_raw": f"{name}.raw", "topic_enriched": f"{name}.enriched",
        "topic_dead_letter": f"{name}.dead-letter", "data_dir": workdir / name, "web_port": free_port(),
        "admin_port": 0,
    })  # fmt: skip
    ensure_topics(isolated.kafka_brokers, topic_specs(isolated))
    return WorkerProcess(isolated, workdir / f"{name}.log", module=module).start()


def _timed_replay(worker: Any, chunks: list[Any], drained_at: int) -> float:
    """Seconds from the first produce of ``chunks`` until the worker has stored ``drained_at`` records in
    all (the count is the worker's, since it started)."""
    from streams.kafka.replay import send_chunks

    started = time.perf_counter()
    asyncio.run(send_chunks(worker.settings.broker_list, worker.settings.topic_raw, iter(chunks)))
    worker.wait_drained(drained_at, timeout=3600)
    return time.perf_counter() - started


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_pipeline(
    customers: int, days: int, latency_rate: int, latency_seconds: float, out: Any = sys.stdout
) -> dict[str, Any]:
    """Every figure of ``rapport bench`` in one run on this machine; prints them with their ratios."""
    from streams.kafka.cluster import ensure_topics
    from streams.kafka.replay import read_chunks, send_chunks
    from streams.local.broker import LocalBroker, free_port
    from streams.local.demo import write_demo_file
    from streams.local.stack import topic_specs

    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "events.jsonl"
        write_demo_file(data, customers=customers, days=days)
        settings = Settings(data_dir=workdir / "worker")
        chunks = list(read_chunks(data, "jsonl", settings.replay_chunk_records))
        records = sum(len(c.records) for c in chunks)
        print(f"data: {records} generated events in {len(chunks)} raw messages "
              f"(~{records // len(chunks)} events each)", file=out)  # fmt: skip

        stages, texts = stage_figures(chunks, workdir / "stage-chdb", settings)
        sentiment = sentiment_figures(texts)

        with LocalBroker(workdir / "broker") as broker:
            settings = Settings(
                data_dir=workdir / "worker", kafka_brokers=broker.bootstrap, web_port=free_port(), admin_port=0
            )
            ensure_topics(broker.bootstrap, topic_specs(settings))
            asyncio.run(send_chunks(settings.broker_list, settings.topic_raw, iter(chunks)))

            # baseline 1: the Kafka client alone reading the same messages
            raw_seconds = asyncio.run(_consume_all(broker.bootstrap, settings.topic_raw, len(chunks)))
            # baseline 2: a Faust agent forwarding the same messages, doing nothing else; the floor: a Faust
            # agent that only parses each event and stores seven of its fields; and the same without opening
            # the messages in Python (chdb parses them)
            baselines = {
                mode: _faust_baseline(mode, broker.bootstrap, settings.topic_raw, len(chunks), workdir)
                for mode in ("forward", "floor", "unopened")
            }

            # end to end: a started worker (group joined) on fresh topics; time from the first produce
            # until every event is queryable in chdb
            worker = _started_worker(settings, "e2e", workdir)
            e2e_seconds = _timed_replay(worker, chunks, records)
            peak = _peak_rss_mib(worker.proc.pid) if worker.proc else float("nan")
            worker.stop()

            # ceiling: the same worker with its per-event processing precomputed (streams/bench/ceiling.py):
            # an untimed first pass computes the results, the timed second pass replays them
            ceiling_worker = _started_worker(settings, "ceiling", workdir, module="streams.bench.ceiling")
            _timed_replay(ceiling_worker, chunks, records)
            ceiling_seconds = _timed_replay(ceiling_worker, chunks, 2 * records)
            ceiling_worker.stop()

            # latency: events produced at a steady rate to a fresh worker, produce → queryable
            latency_worker = _started_worker(settings, "latency", workdir)
            sent = asyncio.run(_paced(latency_worker.settings, chunks, latency_rate, latency_seconds))
            progress = latency_worker.wait_drained(sent, timeout=600)
            latency_worker.stop()

    e2e = Figure("end to end (broker → worker → chdb, queryable)", _rate(records, e2e_seconds))
    ceiling = Figure("ceiling: the same worker, processing precomputed", _rate(records, ceiling_seconds),
                     note="no per-event work: what a free process_message would reach")  # fmt: skip
    raw = Figure("baseline: Kafka client alone (aiokafka consume)", _rate(records, raw_seconds),
                 note=f"{_rate(len(chunks), raw_seconds):.0f} messages/s")  # fmt: skip
    forward_seconds, _ = baselines["forward"]
    floor_seconds, floor_rows = baselines["floor"]
    unopened_seconds, unopened_rows = baselines["unopened"]
    forward = Figure("baseline: do-nothing Faust agent (forward)", _rate(records, forward_seconds),
                     note=f"{_rate(len(chunks), forward_seconds):.0f} messages/s")  # fmt: skip
    floor = Figure("floor: Faust agent, orjson parse + 7-field insert", _rate(records, floor_seconds),
                   note=f"no validation, state, sentiment or second topic; {floor_rows} rows")  # fmt: skip
    unopened = Figure("unopened: the same, chdb parses the messages", _rate(records, unopened_seconds),
                      note=f"no Python per event; {unopened_rows} rows")  # fmt: skip
    full = Figure("all stages together (in process)", _rate(records, sum(records / f.per_second for f in stages)))
    print("\nfigure                                               rate            vs Kafka   vs Faust", file=out)
    for f in [*stages, full, e2e, ceiling, raw, forward, floor, unopened]:
        vs_raw, vs_forward = f.per_second / raw.per_second, f.per_second / forward.per_second
        line = f"  {f.name:<50} {f.per_second:>9,.0f} {f.unit:<9} {vs_raw:>6.3f}   {vs_forward:>6.3f}  {f.note}"
        print(line, file=out)
    ref, ours = sentiment
    speedup = ours.per_second / ref.per_second
    print(f"  {ref.name:<50} {ref.per_second:>9,.0f} {ref.unit}", file=out)
    line = f"  {ours.name:<50} {ours.per_second:>9,.0f} {ours.unit}  {speedup:.1f}× the reference, {ours.note}"
    print(line, file=out)
    p50, p99 = progress.get("freshness_p50_ms"), progress.get("freshness_p99_ms")
    print(f"\nlatency at {latency_rate} events/s for {latency_seconds:.0f} s ({sent} events): produce → queryable "
          f"p50 {p50} ms, p99 {p99} ms", file=out)  # fmt: skip
    print(f"worker peak memory (VmHWM) during the end-to-end run: {peak:.0f} MiB", file=out)
    targets = [
        ("end to end ≥ 10,000 interactions/s for one worker", e2e.per_second >= 10_000),
        ("end to end ≥ half the do-nothing Faust agent", e2e.per_second >= 0.5 * forward.per_second),
        ("sentiment ≥ 10× vaderSentiment", ours.per_second >= 10 * ref.per_second),
        ("p99 produce → queryable ≤ 2 s at 5,000 events/s", p99 is not None and p99 <= 2000 and latency_rate >= 5000),
    ]
    print("\ntargets:", file=out)
    for name, met in targets:
        print(f"  {'met    ' if met else 'NOT met'}  {name}", file=out)
    return {"e2e": e2e, "ceiling": ceiling, "raw": raw, "forward": forward, "floor": floor, "unopened": unopened,
            "stages": stages, "sentiment": sentiment, "latency": (p50, p99), "peak_mib": peak}  # fmt: skip


async def _paced(settings: Settings, chunks: list[Any], rate: int, seconds: float) -> int:
    """Produce chunks (in order, cycling) at ``rate`` events/s for ``seconds``; returns events sent."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.broker_list, acks="all", linger_ms=1)
    await producer.start()
    sent, futures = 0, []
    started = time.perf_counter()
    try:
        i = 0
        while time.perf_counter() - started < seconds:
            chunk = chunks[i % len(chunks)]
            i += 1
            futures.append(await producer.send(settings.topic_raw, chunk.payload, key=chunk.key.encode(),
                                               headers=chunk.headers()))  # fmt: skip
            sent += len(chunk.records)
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent
