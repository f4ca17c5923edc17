"""Memory benchmark: the resident memory of a worker holding the history of N customers.

Target (the performance issue): a worker holding the history of 1,000,000 customers stays under 1 GiB
resident, with its state on disk where it must be. The figures are printed, never asserted by the tests.

``rapport bench memory --customers 100000 --store memory:// --store rocksdb://``:

1. writes a JSON-lines file of canonical interactions: one inbound mention from each of N distinct
   customers spread over 20 brands, plus a brand reply to a fraction of them (so ``reply_threads``
   and the replies' ``conversation_roots`` fill as well);
2. starts a local tansu broker and a ``rapport worker`` subprocess with the given table store;
3. replays the file and waits until every event is stored, sampling the worker's resident memory
   (``/proc/<pid>/status``: ``VmRSS``, and ``VmHWM`` for the kernel's own peak) every second, plus the
   memory of the worker's child processes, if any;
4. prints and returns: events, seconds, events/s, the idle worker's RSS, the peak and final RSS, the
   per-customer cost above idle, and the size on disk of the worker's data directory.

Each customer costs two table keys (``customer_history``, ``reply_threads``; a message that starts a
conversation needs no ``conversation_roots`` key); a reply adds one ``conversation_roots`` key and
updates the two others.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import orjson

TARGET_BYTES = 1024**3  # 1 GiB resident
TARGET_CUSTOMERS = 1_000_000
MIB = 1024 * 1024
BASE_TIME = 1767571200  # 2026-01-05T00:00:00Z
TEXTS = (
    "where is my order? it was due on monday",
    "love the new app, checkout is so much faster",
    "still waiting for my refund, this is terrible",
    "thanks for the quick help yesterday",
    "is the store on main street open on sunday?",
    "my card was charged twice, please fix",
    "great service at the airport counter",
    "the update broke login on my phone",
)
REPLY_TEXT = "sorry about that, please DM us your order number"

# --- the events ----------------------------------------------------------------------------------


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def generate_lines(customers: int, brands: int = 20, reply_fraction: float = 0.1) -> Iterator[bytes]:
    """JSON lines (no newline) of canonical interactions: one inbound mention per customer ``c<n>`` to
    ``brand<n % brands>``, two seconds apart, and for ``int(customers * reply_fraction)`` of them (evenly
    spread) a brand reply five minutes later."""
    if customers < 0 or brands < 1 or not 0.0 <= reply_fraction <= 1.0:
        raise ValueError("customers >= 0, brands >= 1 and 0 <= reply_fraction <= 1")
    dumps = orjson.dumps
    for n in range(customers):
        brand = f"brand{n % brands}"
        at = BASE_TIME + 2 * n
        yield dumps(
            {
                "event_id": f"x:{n}",
                "platform": "x",
                "brand": brand,
                "author_id": f"c{n}",
                "direction": "inbound",
                "kind": "mention",
                "text": TEXTS[n % len(TEXTS)],
                "created_at": _iso(at),
            }
        )
        if int((n + 1) * reply_fraction) > int(n * reply_fraction):
            yield dumps(
                {
                    "event_id": f"x:r{n}",
                    "platform": "x",
                    "brand": brand,
                    "author_id": brand,
                    "direction": "outbound",
                    "kind": "reply",
                    "text": REPLY_TEXT,
                    "created_at": _iso(at + 300),
                    "parent_id": f"x:{n}",
                    "customer_id": f"c{n}",
                }
            )


def write_interactions(path: Path, customers: int, brands: int = 20, reply_fraction: float = 0.1) -> int:
    """Write :func:`generate_lines` to ``path`` (streaming); returns the number of events written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb", buffering=1024 * 1024) as f:
        for line in generate_lines(customers, brands, reply_fraction):
            f.write(line + b"\n")
            count += 1
    return count


# --- /proc ---------------------------------------------------------------------------------------


def parse_status(text: str) -> dict[str, int]:
    """The ``kB`` fields of a ``/proc/<pid>/status`` text, in bytes (``{"VmRSS": ..., "VmHWM": ...}``)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[name.strip()] = int(parts[0]) * 1024
    return out


def parse_ppid(stat: str) -> int:
    """The parent pid from a ``/proc/<pid>/stat`` line (the command name may hold spaces and parens)."""
    return int(stat.rpartition(")")[2].split()[1])


def descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren…)."""
    parents: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = parse_ppid((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        out += children
        todo += children
    return out


@dataclass(frozen=True)
class MemorySample:
    """One reading, in bytes: the process's own figures and the sum over its descendants."""

    at: float
    rss: int
    hwm: int
    anon: int
    file: int
    children_rss: int = 0
    children_hwm: int = 0
    processed: int | None = None  # records the worker had processed (see MemorySampler.probe)

    @property
    def total_rss(self) -> int:
        return self.rss + self.children_rss

    @property
    def total_hwm(self) -> int:
        return self.hwm + self.children_hwm


def read_memory(pid: int, children: bool = True) -> MemorySample:
    fields = parse_status(Path(f"/proc/{pid}/status").read_text())
    children_rss = children_hwm = 0
    if children:
        for child in descendants(pid):
            try:
                child_fields = parse_status(Path(f"/proc/{child}/status").read_text())
            except OSError:
                continue
            children_rss += child_fields.get("VmRSS", 0)
            children_hwm += child_fields.get("VmHWM", 0)
    return MemorySample(
        at=time.monotonic(),
        rss=fields.get("VmRSS", 0),
        hwm=fields.get("VmHWM", 0),
        anon=fields.get("RssAnon", 0),
        file=fields.get("RssFile", 0),
        children_rss=children_rss,
        children_hwm=children_hwm,
    )


@dataclass
class MemorySampler:
    """Samples a process's memory every ``interval`` seconds in a background thread."""

    pid: int
    interval: float = 1.0
    probe: Callable[[], int] | None = None  # how many records the worker has processed
    samples: list[MemorySample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _sample(self) -> None:
        with contextlib.suppress(OSError):  # the process is gone
            sample = read_memory(self.pid)
            if self.probe is not None:
                # a slow or busy web server: the memory reading still counts
                with contextlib.suppress(Exception):
                    sample = replace(sample, processed=self.probe())
            self.samples.append(sample)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @property
    def peak_rss(self) -> int:
        return max((s.total_rss for s in self.samples), default=0)

    def marginal_bytes_per_record(self, start_fraction: float = 0.2) -> float | None:
        """Growth of the resident memory per processed record, from the first sample past
        ``start_fraction`` of the records to the last one (leaves the one-off warm-up out)."""
        known = [s for s in self.samples if s.processed is not None]
        if len(known) < 2:
            return None
        last = known[-1]
        assert last.processed is not None
        first = next((s for s in known if (s.processed or 0) >= start_fraction * last.processed), None)
        if first is None or first.processed is None or last.processed <= first.processed:
            return None
        return (last.total_rss - first.total_rss) / (last.processed - first.processed)


def dir_size(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (like ``du``; sparse and preallocated files count as stored)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


# --- the benchmark -------------------------------------------------------------------------------


def bench_memory(
    customers: int,
    store: str,
    workdir: Path,
    out: TextIO = sys.stdout,
    *,
    brands: int = 20,
    reply_fraction: float = 0.1,
    drain_timeout: float | None = None,
    idle_seconds: float = 5.0,
) -> dict[str, Any]:
    """Run the worker with ``store`` on ``customers`` customers' events; print and return the figures."""
    from streams.kafka.cluster import ensure_topics
    from streams.kafka.replay import replay
    from streams.local.broker import LocalBroker, free_port
    from streams.local.stack import WorkerProcess, topic_specs
    from streams.settings import Settings

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    events_file = workdir / "events.jsonl"
    started = time.monotonic()
    events = write_interactions(events_file, customers, brands, reply_fraction)
    generate_seconds = time.monotonic() - started
    print(
        f"memory benchmark: {customers} customers, {events} events ({events_file.stat().st_size / MIB:.0f} MiB, "
        f"written in {generate_seconds:.1f} s), table store {store}",
        file=out,
        flush=True,
    )
    data_dir = workdir / "data"
    if data_dir.exists() and any(data_dir.iterdir()):
        raise RuntimeError(f"{data_dir} holds a previous run's state: use a new workdir")
    timeout = drain_timeout if drain_timeout is not None else max(600.0, events / 300)
    with LocalBroker(workdir / "broker") as broker:
        settings = Settings(
            data_dir=data_dir,
            kafka_brokers=broker.bootstrap,
            web_port=free_port(),
            admin_port=0,
            table_store=store,
        )
        ensure_topics(broker.bootstrap, topic_specs(settings))
        worker = WorkerProcess(settings, workdir / "worker.log")
        try:
            worker.start(timeout=120)
            assert worker.proc is not None
            pid = worker.proc.pid
            time.sleep(idle_seconds)  # let start-up allocations settle
            idle = read_memory(pid)
            print(
                f"  idle worker (pid {pid}): RSS {idle.rss / MIB:.0f} MiB "
                f"(anon {idle.anon / MIB:.0f}, file-backed {idle.file / MIB:.0f}), "
                f"children {idle.children_rss / MIB:.0f} MiB",
                file=out,
                flush=True,
            )
            with MemorySampler(pid, probe=lambda: int(worker.progress()["records"])) as sampler:
                t0 = time.monotonic()
                sent = replay(
                    events_file,
                    "jsonl",
                    settings.broker_list,
                    settings.topic_raw,
                    settings.replay_chunk_records,
                    progress=False,
                )
                replay_seconds = time.monotonic() - t0
                progress = worker.wait_drained(sent, timeout=timeout)
                seconds = time.monotonic() - t0
            end = read_memory(pid)
            chdb_tracked = _chdb_memory_tracking(worker)
            stored = progress.get("interactions_stored", 0)
            dead = progress.get("dead_letters_stored", 0)
        finally:
            stopping = time.monotonic()
            exit_code = worker.stop(timeout=300)  # Faust flushes its producer buffer (changelog backlog) first
            stop_seconds = time.monotonic() - stopping
    faust_bytes = dir_size(data_dir / "faust")
    clickhouse_bytes = dir_size(data_dir / "clickhouse")
    peak = max(end.total_hwm, sampler.peak_rss)
    per_customer = max(end.total_rss - idle.total_rss, 0) / customers if customers else 0.0
    peak_per_customer = max(peak - idle.total_rss, 0) / customers if customers else 0.0
    per_record = sampler.marginal_bytes_per_record()
    marginal = per_record * events / customers if per_record is not None and customers else None
    # a 1M-customer worker: today's peak, plus the marginal growth for the customers not measured
    projected = peak + (marginal or peak_per_customer) * max(TARGET_CUSTOMERS - customers, 0)
    result: dict[str, Any] = {
        "customers": customers,
        "events": events,
        "stored": stored,
        "dead_lettered": dead,
        "seconds": round(seconds, 1),
        "replay_seconds": round(replay_seconds, 1),
        "events_per_s": round(events / seconds, 1) if seconds else 0.0,
        "table_store": store,
        "idle_rss_mib": round(idle.total_rss / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "peak_rss_sampled_mib": round(sampler.peak_rss / MIB, 1),
        "end_rss_mib": round(end.total_rss / MIB, 1),
        "end_anon_mib": round(end.anon / MIB, 1),
        "end_file_mib": round(end.file / MIB, 1),
        "chdb_tracked_end_mib": round(chdb_tracked / MIB, 1) if chdb_tracked is not None else None,
        "children_peak_mib": round(max((s.children_rss for s in sampler.samples), default=0) / MIB, 1),
        "bytes_per_customer_end": round(per_customer),
        "bytes_per_customer_peak": round(peak_per_customer),
        "bytes_per_customer_marginal": round(marginal) if marginal is not None else None,
        "projected_peak_1m_mib": round(projected / MIB),
        "disk_mib": round((faust_bytes + clickhouse_bytes) / MIB, 1),
        "disk_tables_mib": round(faust_bytes / MIB, 1),
        "disk_clickhouse_mib": round(clickhouse_bytes / MIB, 1),
        "stop_seconds": round(stop_seconds, 1),
        "exit_code": exit_code,
        "samples": len(sampler.samples),
        "target_met": peak < TARGET_BYTES if customers >= TARGET_CUSTOMERS else None,
        "projected_target_met": projected < TARGET_BYTES,
    }
    timeline = workdir / "memory.tsv"
    timeline.write_text(
        "seconds\tprocessed\trss_mib\thwm_mib\tanon_mib\tfile_mib\tchildren_rss_mib\n"
        + "".join(
            f"{s.at - t0:.1f}\t{'' if s.processed is None else s.processed}\t{s.rss / MIB:.1f}\t"
            f"{s.hwm / MIB:.1f}\t{s.anon / MIB:.1f}\t{s.file / MIB:.1f}\t{s.children_rss / MIB:.1f}\n"
            for s in sampler.samples
        )
    )
    print(format_result(result), file=out, flush=True)
    print(f"  memory over time: {timeline}", file=out, flush=True)
    return result


def _chdb_memory_tracking(worker: Any) -> int | None:
    """Bytes the embedded ClickHouse (chdb, inside the worker) accounts for itself; None if unknown."""
    try:
        return int(worker.sql("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'").strip())
    except Exception:  # a ClickHouse server warehouse, or a busy worker: the figure is optional
        return None


def format_result(r: dict[str, Any]) -> str:
    target = f"< {TARGET_BYTES // MIB} MiB resident"
    if r["target_met"] is None:
        verdict = (
            f"target ({target} at {TARGET_CUSTOMERS:,} customers): not measured here; extrapolated peak "
            f"{r['projected_peak_1m_mib']} MiB → {'would be met' if r['projected_target_met'] else 'would NOT be met'}"
        )
    else:
        verdict = f"target ({target}): {'met' if r['target_met'] else 'NOT met'} (peak {r['peak_rss_mib']:.0f} MiB)"
    return "\n".join(
        [
            f"  customers {r['customers']:,}, events {r['events']:,} (stored {r['stored']:,}, "
            f"dead-lettered {r['dead_lettered']:,}), table store {r['table_store']}",
            f"  {r['seconds']:.1f} s (replay {r['replay_seconds']:.1f} s), {r['events_per_s']:.0f} events/s; "
            f"the worker then took {r['stop_seconds']:.1f} s to stop (exit code {r['exit_code']})",
            f"  RSS idle {r['idle_rss_mib']:.0f} MiB, peak (VmHWM) {r['peak_rss_mib']:.0f} MiB, "
            f"end {r['end_rss_mib']:.0f} MiB (anon {r['end_anon_mib']:.0f}, file-backed {r['end_file_mib']:.0f}), "
            f"children peak {r['children_peak_mib']:.0f} MiB; chdb's own MemoryTracking at the end: "
            f"{r['chdb_tracked_end_mib']} MiB",
            f"  above idle: {r['bytes_per_customer_end']} B/customer at the end, "
            f"{r['bytes_per_customer_peak']} B/customer at the peak, "
            f"{r['bytes_per_customer_marginal']} B/customer marginal (past the first 20% of the events)",
            f"  on disk: {r['disk_mib']:.0f} MiB (tables {r['disk_tables_mib']:.0f}, "
            f"ClickHouse {r['disk_clickhouse_mib']:.0f})",
            f"  {verdict}",
        ]
    )


def run_memory_bench(
    customers: int,
    stores: Sequence[str],
    workdir: Path | None = None,
    reply_fraction: float = 0.1,
    json_path: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """``rapport bench memory``: one run per table store; the results, also written to ``json_path``."""
    import tempfile

    workdir = workdir or Path(tempfile.mkdtemp(prefix="rapport-bench-memory-"))
    results = {}
    for store in stores:
        name = store.replace(":", "").replace("/", "")
        results[store] = bench_memory(customers, store, workdir / name, reply_fraction=reply_fraction)
    if json_path is not None:
        json_path.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return results
