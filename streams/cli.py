"""``rapport``: the one command-line entry point.

Exit codes (for scripts): 0 success; 1 the run failed (worker crashed, not drained in time);
2 bad usage or configuration (a RAPPORT_* setting, the brands file); 3 bad input file (missing,
wrong format); 4 Kafka broker unreachable; 5 warehouse unreachable or query failed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError

from streams.metrics.care import FIGURE_SETS, GROUPINGS, FigureSet, Grouping
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.sinks.warehouse import Warehouse

EXIT_FAILED, EXIT_INPUT, EXIT_BROKER, EXIT_WAREHOUSE = 1, 3, 4, 5


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"rapport: error: {message}", err=True)
    sys.exit(code)


def clear_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the known failure types into one-line errors with their exit codes."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from streams.kafka.cluster import BrokerError
        from streams.kafka.replay import ReplayError
        from streams.local.stack import StackError
        from streams.processing.platforms import BrandsFileError
        from streams.sinks.warehouse import WarehouseError

        try:
            return fn(*args, **kwargs)
        except ReplayError as exc:
            fail(str(exc), EXIT_INPUT)
        except BrokerError as exc:
            fail(str(exc), EXIT_BROKER)
        except WarehouseError as exc:
            fail(str(exc), EXIT_WAREHOUSE)
        except StackError as exc:
            fail(str(exc), EXIT_FAILED)
        except ValidationError as exc:
            fail(f"bad RAPPORT_* setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", 2)
        except BrandsFileError as exc:
            fail(str(exc), 2)

    return wrapper


def use_fast_event_loop() -> None:
    """uvloop roughly doubles what the web server and the Kafka clients do per CPU second."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # optional: the standard loop works, only slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (``MALLOC_ARENA_MAX``). By default each thread that allocates may get
    its own arena (8 per core), and freed memory stays in the arena that held it; the worker's threads
    (Kafka consumer, warehouse inserts, chdb, RocksDB) then keep much more resident than they use."""
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).mallopt(-8, arenas)  # M_ARENA_MAX


def tune_garbage_collector(young_threshold: int = 50_000) -> None:
    """Move everything allocated so far (modules, the app) out of the collector's sight, and collect the
    youngest generation every ``young_threshold`` allocations instead of 700. The pipeline's objects are
    freed by reference counting; with CPython's defaults the cyclic collector keeps walking the worker's
    many live objects for nothing (docs/performance.md has the measurements)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 100)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Rapport: do brands talk with their customers, or only broadcast at them?"""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the driver logs every refused connection with a traceback; Rapport reports it in one line
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Local state (default .rapport).")
@click.option("--replay", "replay_file", type=click.Path(path_type=Path), help="File to replay once up.")
@click.option("--format", "fmt", type=click.Choice(["twcs", "jsonl"]), default="jsonl", show_default=True)
@click.option("--exit-when-drained", is_flag=True, help="Exit once every replayed event is stored or dead-lettered.")
@click.option("--drain-timeout", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option(
    "--stall-timeout",
    type=float,
    default=None,
    help="Seconds a drain may make no progress before it says what is stuck and exits 1 "
    "[default: RAPPORT_DRAIN_STALL_SECONDS, 60].",
)
@click.option("--web-port", type=int, default=None, help="Worker web server / webhooks port [default: 6066].")
@click.option("--demo-webhooks", is_flag=True, help="Post signed demo webhook deliveries to the edge once up.")
@clear_errors
def up(
    data_dir: Path | None,
    replay_file: Path | None,
    fmt: str,
    exit_when_drained: bool,
    drain_timeout: float,
    stall_timeout: float | None,
    web_port: int | None,
    demo_webhooks: bool,
) -> None:
    """Run the whole pipeline locally: tansu broker, migrations, a worker, an optional replay."""
    from streams.local.stack import run_up

    settings = load_settings(data_dir=data_dir, web_port=web_port, drain_stall_seconds=stall_timeout)
    result = run_up(settings, replay_file, fmt, exit_when_drained, drain_timeout, demo_webhooks=demo_webhooks)
    p = result.progress
    if result.report:
        click.echo("\nCare metrics (`rapport metrics --figures care`; definitions in docs/metrics.md):")
        click.echo(result.report.rstrip())
    inserted = p.get("interactions_stored", 0)
    stored = inserted if result.stored is None else result.stored  # distinct events, not rows inserted
    rows = f" ({inserted} rows inserted this run)" if inserted != stored else ""
    click.echo(
        f"\nsummary: events in {result.replayed}, stored {stored}, dead-lettered {p.get('dead_letters_stored', 0)}"
        f"{rows}"
    )
    click.echo(f'query it: rapport sql --data-dir {settings.data_dir} "SELECT count() FROM interactions FINAL"')
    if result.error is not None:  # after the summary: what was stored is still worth knowing
        raise result.error


@main.command()
@clear_errors
def worker() -> None:
    """Run a production Faust worker, configured from RAPPORT_* environment variables."""
    from streams.worker.runner import run_worker

    sys.exit(run_worker(Settings()))


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--clickhouse", "url", help="Warehouse URL: chdb://PATH or clickhouse://HOST:PORT/DB.")
@clear_errors
def migrate(data_dir: Path | None, url: str | None) -> None:
    """Apply the ClickHouse migrations not applied yet (idempotent)."""
    from schemas.migrate import migrate as run
    from schemas.migrate import missing_tables
    from streams.sinks.warehouse import connect

    settings = load_settings(data_dir=data_dir, clickhouse_url=url)
    warehouse = connect(settings.warehouse_url)
    try:
        missing = missing_tables(warehouse)
        applied = run(warehouse)
    finally:
        warehouse.close()
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    click.echo(f"{settings.warehouse_url}: applied {names}")
    if missing and not applied:
        click.echo(f"recreated missing tables: {', '.join(missing)}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["twcs", "jsonl"]), required=True)
@click.option("--brokers", help="Bootstrap servers (default RAPPORT_KAFKA_BROKERS).")
@click.option("--no-progress", is_flag=True)
@clear_errors
def replay(file: Path, fmt: str, brokers: str | None, no_progress: bool) -> None:
    """Publish a file to the raw topic, keyed by brand, with a progress bar."""
    from streams.kafka.cluster import wait_reachable
    from streams.kafka.replay import read_chunks
    from streams.kafka.replay import replay as run

    settings = load_settings(kafka_brokers=brokers)
    next(iter(read_chunks(file, fmt, settings.replay_chunk_records)), None)  # bad file → exit 3 first
    wait_reachable(settings.kafka_brokers, timeout=settings.kafka_connect_timeout)
    sent = run(
        file,
        fmt,
        settings.broker_list,
        settings.topic_raw,
        settings.replay_chunk_records,
        progress=not no_progress,
    )
    click.echo(f"replayed {sent} events from {file} to {settings.topic_raw}")


@main.command()
@click.argument("query")
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--clickhouse", "url", help="Warehouse URL: chdb://PATH or clickhouse://HOST:PORT/DB.")
@click.option(
    "--format",
    "fmt",
    default="PrettyCompactNoEscapes",
    show_default=True,
    help="ClickHouse output format: JSONEachRow, TSV, TSVWithNames, CSV, CSVWithNames, …",
)
@clear_errors
def sql(query: str, data_dir: Path | None, url: str | None, fmt: str) -> None:
    """Query the warehouse. A running worker's chdb is queried through the worker."""
    from streams.local.stack import read_worker_file, worker_sql
    from streams.sinks.warehouse import WarehouseError, connect

    settings = load_settings(data_dir=data_dir, clickhouse_url=url)
    running = None if url else read_worker_file(settings.data_dir)
    if running is not None:  # the worker owns the chdb directory: ask its admin listener, with its token
        from streams.local.stack import StackError
        from streams.web.admin_token import admin_token

        token = admin_token(settings, create=False)
        if not token or "admin" not in running:
            raise WarehouseError(
                f"a worker holds {settings.data_dir.resolve()}, but its admin token is unknown: "
                "set RAPPORT_ADMIN_TOKEN to the worker's token"
            )
        try:
            text = worker_sql(running["admin"], query, fmt, token)
        except StackError as exc:
            raise WarehouseError(str(exc)) from exc
    else:
        if not url:
            require_local_data(settings)
        warehouse = connect(settings.warehouse_url)
        try:
            text = warehouse.query_text(query, fmt)
        finally:
            warehouse.close()
    click.echo(text, nl=False)


def parse_hour(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time on a whole UTC hour (the aggregates are hourly): ``2026-11-30``, ``2026-11-30T14:00Z``."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-30T14:00Z)", param_hint=option
        ) from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.minute or value.second or value.microsecond:
        raise click.BadParameter(
            f"{text!r} is not on a whole hour: the figures are kept per hour (e.g. {value:%Y-%m-%dT%H}:00Z)",
            param_hint=option,
        )
    return value


def require_local_data(settings: Settings) -> None:
    """The embedded warehouse of ``settings.data_dir`` exists (else a clear error, not an empty new one)."""
    from streams.sinks.warehouse import WarehouseError

    if not (settings.data_dir / "clickhouse").exists():
        raise WarehouseError(f"no Rapport data in {settings.data_dir.resolve()} (run `rapport up` first)")


def open_warehouse(data_dir: Path | None, url: str | None) -> tuple[Settings, Warehouse]:
    """The warehouse of ``--data-dir`` (chdb) or ``--clickhouse``, migrated (so the aggregate tables exist)."""
    from schemas.migrate import migrate
    from streams.local.stack import read_worker_file
    from streams.sinks.warehouse import WarehouseError, connect

    settings = load_settings(data_dir=data_dir, clickhouse_url=url)
    if not url:
        require_local_data(settings)
        if read_worker_file(settings.data_dir) is not None:
            raise WarehouseError(
                f"a worker holds {settings.data_dir.resolve()}: stop it first, or store into a ClickHouse server "
                "and use --clickhouse (chdb lets one process at a time open its data)"
            )
    warehouse = connect(settings.warehouse_url)
    migrate(warehouse)
    return settings, warehouse


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Local state (default .rapport).")
@click.option("--clickhouse", "url", help="Warehouse URL: chdb://PATH or clickhouse://HOST:PORT/DB.")
@click.option("--from", "start", help="Start of the range, inclusive (ISO 8601, whole UTC hour).")
@click.option("--to", "end", help="End of the range, exclusive (ISO 8601, whole UTC hour).")
@click.option("--brand", "brands", multiple=True, help="Only this brand (repeatable).")
@click.option("--platform", "platforms", multiple=True, help="Only this platform (repeatable).")
@click.option("--by", type=click.Choice(list(GROUPINGS)), default="brand", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option(
    "--figures",
    "figure_set",
    type=click.Choice(list(FIGURE_SETS)),
    default="all",
    show_default=True,
    help="Which figures: the care metrics, engagement versus reach, both, or the short headline table.",
)
@click.option("--rebuild", is_flag=True, help="First recompute the aggregates from every stored row.")
@clear_errors
def metrics(
    data_dir: Path | None,
    url: str | None,
    start: str | None,
    end: str | None,
    brands: tuple[str, ...],
    platforms: tuple[str, ...],
    by: Grouping,
    fmt: str,
    figure_set: FigureSet,
    rebuild: bool,
) -> None:
    """The care and engagement figures per group: who is answered, how fast, within which SLA; who is answered by
    follower tier, conversation or broadcast, canned or personal, what it changes, beside reach (docs/metrics.md).
    ``--by brand,tier`` gives the equity figures per follower tier."""
    from streams.metrics import care
    from streams.metrics.report import render

    query = care.MetricsQuery(
        start=parse_hour(start, "--from"),
        end=parse_hour(end, "--to"),
        brands=brands,
        platforms=platforms,
        by=by,
        policies=care.brand_policies(load_settings(data_dir=data_dir, clickhouse_url=url)),
    )
    if query.start and query.end and query.start >= query.end:
        raise click.BadParameter("--from must be before --to", param_hint="--from")
    _, warehouse = open_warehouse(data_dir, url)
    try:
        if rebuild:
            care.refresh_all(warehouse)
        else:
            care.refresh_pending(warehouse)  # hours a stopped or crashed worker left to recompute
        rows = care.metrics(warehouse, query)
        if not rows:
            known = sorted(care.brands_in(warehouse, care.MetricsQuery()))
            click.echo(f"rapport: no data for this selection (brands: {', '.join(known) or 'none'})", err=True)
        windows = query.windows(query.brands or care.brands_in(warehouse, query))
        columns = care.column_names(by, windows, figure_set)
        click.echo(render(care.select(rows, columns), fmt, columns), nl=False)
    finally:
        warehouse.close()


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Local state (default .rapport).")
@click.option("--clickhouse", "url", help="Warehouse URL: chdb://PATH or clickhouse://HOST:PORT/DB.")
@click.option("--brand", "brands", multiple=True, help="Only this brand (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@clear_errors
def backlog(data_dir: Path | None, url: str | None, brands: tuple[str, ...], limit: int, fmt: str) -> None:
    """Messages that need a reply and are still unanswered: negative ones first, oldest first within each."""
    from streams.metrics import backlog as queue

    _, warehouse = open_warehouse(data_dir, url)
    try:
        click.echo(queue.render(queue.backlog(warehouse, brands, limit), fmt), nl=False)
    finally:
        warehouse.close()


@main.command("demo-data")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSON-lines file to write (replay it with --format jsonl).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same bytes.")
@click.option("--customers", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=14, show_default=True)
def demo_data(out: Path, seed: int, customers: int, days: int) -> None:
    """Write a deterministic synthetic demo file (brands with different answering habits)."""
    from streams.local.demo import write_demo_file

    try:
        count = write_demo_file(out, seed=seed, customers=customers, days=days)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_FAILED)
    click.echo(f"wrote {count} events to {out}")


@main.group()
def bench() -> None:
    """Benchmarks: print figures measured on this machine (never part of the test run)."""


@bench.command("pipeline")
@click.option("--customers", type=int, default=3000, show_default=True, help="Size of the generated data set.")
@click.option("--days", type=int, default=14, show_default=True)
@click.option("--latency-rate", type=int, default=5000, show_default=True, help="Events/s of the latency phase.")
@click.option("--latency-seconds", type=float, default=20.0, show_default=True)
@clear_errors
def bench_pipeline(customers: int, days: int, latency_rate: int, latency_seconds: float) -> None:
    """Each stage alone, end to end through broker + worker + chdb, latency, memory, with baselines."""
    from streams.bench.pipeline import bench_pipeline as run

    run(customers, days, latency_rate, latency_seconds)


@bench.command("memory")
@click.option("--customers", type=int, default=100_000, show_default=True)
@click.option("--store", "stores", multiple=True, default=("memory://", "rocksdb://"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), help="Default: a new temporary directory.")
@click.option("--reply-fraction", type=float, default=0.1, show_default=True, help="Customers a brand answers.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the results here.")
@clear_errors
def bench_memory(
    customers: int, stores: tuple[str, ...], workdir: Path | None, reply_fraction: float, json_path: Path | None
) -> None:
    """Resident memory of a worker holding the history of N customers (target: 1M under 1 GiB)."""
    from streams.bench.memory import run_memory_bench

    run_memory_bench(customers, stores, workdir, reply_fraction, json_path)


@bench.command("metrics")
@click.option("--interactions", type=int, default=10_000_000, show_default=True)
@click.option("--brands", type=int, default=50, show_default=True)
@click.option("--days", type=int, default=365, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), help="Default: a new temporary directory.")
@clear_errors
def bench_metrics(interactions: int, brands: int, days: int, workdir: Path | None) -> None:
    """`rapport metrics` on generated data (chdb), beside the same figures computed from the rows."""
    from streams.bench.metrics import run

    run(interactions, brands, days, workdir)


def _register_needs_reply() -> None:
    from streams.bench.needs_reply import needs_reply_command

    bench.add_command(needs_reply_command)


_register_needs_reply()


@bench.command("baseline-agent", hidden=True)
@click.argument("mode", type=click.Choice(["forward", "floor", "unopened"]))
@click.argument("bootstrap")
@click.argument("in_topic")
@click.argument("out_topic")
@click.argument("messages", type=int)
@click.argument("web_port", type=int)
@click.argument("datadir")
def bench_baseline_agent(
    mode: str, bootstrap: str, in_topic: str, out_topic: str, messages: int, web_port: int, datadir: str
) -> None:
    """One baseline Faust agent of `rapport bench pipeline` (run by it as a child process)."""
    from streams.bench.faust_baseline import main as run

    run(mode, bootstrap, in_topic, out_topic, messages, web_port, datadir)


@bench.command("edge")
@click.option("--seconds", type=float, default=10.0, show_default=True)
@click.option("--connections", type=int, default=64, show_default=True)
@click.option(
    "--role", "roles", multiple=True, type=click.Choice(["edge", "all"]), default=("edge", "all"), show_default=True
)
@clear_errors
def bench_edge(seconds: float, connections: int, roles: tuple[str, ...]) -> None:
    """Signed webhook requests/s and p99 latency at the edge, over loopback, Kafka-acknowledged."""
    from streams.bench.pipeline import EDGE_TARGET_RPS
    from streams.bench.pipeline import bench_edge as run

    click.echo(
        f"webhook edge: {connections} keep-alive connections for {seconds:.0f} s, signed X/Meta/canonical "
        "deliveries, a 200 = acknowledged by the local tansu broker"
    )
    import shutil

    click.echo(
        "load generator: " + ("wrk" if shutil.which("wrk") else "Python asyncio client (apt-get install wrk: lighter)")
    )
    results = run(seconds, connections, roles)
    if "edge" in results:
        rps = results["edge"].rps
        verdict = "met" if rps >= EDGE_TARGET_RPS else "NOT met"
        click.echo(f"target ≥ {EDGE_TARGET_RPS} signed requests/s per edge process: {verdict} ({rps:.0f})")
    if "edge" in results and "all" in results:
        click.echo(f"all-in-one worker / edge-only worker: {results['all'].rps / results['edge'].rps:.2f}")


if __name__ == "__main__":
    main()
