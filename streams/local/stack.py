"""The local stack: a tansu broker, the migrated warehouse and a worker process, on loopback.

``rapport up`` and the end-to-end tests both use :class:`WorkerProcess` (a ``rapport worker``
subprocess, talked to over its loopback web server) and :func:`run_up`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr

from schemas.migrate import migrate
from streams.kafka.cluster import TopicSpec, ensure_topics
from streams.local.broker import LocalBroker, free_port
from streams.local.children import die_with_parent
from streams.settings import Settings
from streams.sinks.warehouse import connect
from streams.web.admin_token import ADMIN_TOKEN_FILE, admin_token, bearer

WORKER_FILE = "worker.json"


class StackError(RuntimeError):
    pass


def topic_specs(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(name, settings.topic_partitions, settings.topic_replication)
        for name in (settings.topic_raw, settings.topic_enriched, settings.topic_dead_letter)
    ]


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``RAPPORT_*`` variables that reproduce ``settings`` in a child process."""
    out = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # handed over as the value itself, never as its masked text
            value = value.get_secret_value()
        if value is not None:  # unset optional settings stay unset in the child
            out[f"RAPPORT_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def read_worker_file(data_dir: Path) -> dict[str, Any] | None:
    """The running worker registered for ``data_dir`` (None when none is alive)."""
    try:
        info: dict[str, Any] = json.loads((data_dir / WORKER_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return info


def local_admin(settings: Settings) -> Settings:
    """``settings`` with the admin listener's token and port settled: the configured token, else the one kept
    in (or generated into) ``DATA_DIR/admin-token``; the configured port, else (0) a free one."""
    update: dict[str, Any] = {}
    if not settings.admin_token.get_secret_value().strip():
        update["admin_token"] = SecretStr(admin_token(settings))
    if not settings.admin_port:
        update["admin_port"] = free_port(settings.admin_host)
    return settings.model_copy(update=update) if update else settings


#: How long a worker that is alive but does not answer on its admin listener is waited for.
ANSWER_SECONDS = 10.0
_ERROR_LINE = re.compile(r"error|exception|fatal|traceback|failed|refused|denied|killed", re.IGNORECASE)
#: The progress counters that move while a drain advances (anything else, e.g. error counts, is not progress).
PROGRESS_COUNTERS = (
    "records",
    "replay_records",
    "webhook_messages",
    "interactions_out",
    "dead_letters_out",
    "interactions_stored",
    "responses_stored",
    "dead_letters_stored",
)


class WorkerUnreachable(StackError):
    """The worker's admin listener did not answer (refused, reset, timed out)."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else RuntimeError(str(exc.reason))
    return " ".join((str(exc) or type(exc).__name__).split())


def _exit_code(rc: int) -> str:
    if rc < 0:
        try:
            return f"{rc} (killed by {signal.Signals(-rc).name})"
        except ValueError:
            return str(rc)
    return str(rc)


class WorkerProcess:
    """A ``rapport worker`` subprocess on loopback.

    Webhooks and ``/health/*`` on ``base_url`` (the public listener); progress and SQL on ``admin_url`` with
    the bearer token (``streams/web/admin_token.py``). The process runs in its own session (a terminal's Ctrl-C
    reaches only its parent, which drains, then stops it) and dies with the process that started it, however
    that one dies (``streams.local.children.die_with_parent``).
    """

    def __init__(self, settings: Settings, log_path: Path, module: str = "streams.cli") -> None:
        self.settings = local_admin(settings)
        self.log_path = log_path
        self.module = module  # run as ``python -m MODULE worker``; the benchmark's ceiling uses its own
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # this run's part of the (appended) log

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.settings.admin_host}:{self.settings.admin_port}"

    @property
    def token(self) -> str:
        return self.settings.admin_token.get_secret_value()

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        env = os.environ | settings_env(self.settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_start = self.log_path.stat().st_size
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal Ctrl-C reaches `rapport up`, which drains, then stops us
                preexec_fn=die_with_parent(),  # and when `rapport up` dies without stopping us, we die too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self._ready():
                    return self
            except (OSError, ValueError, KeyError):  # not listening yet (URLError is an OSError)
                pass
            time.sleep(0.3)
        raise StackError(f"the worker is not ready after {timeout:.0f}s{self._last_error(': ')}; see {self.log_path}")

    def _ready(self) -> bool:
        """``GET /health/ready`` answers 200 (503 while its agents start or partitions are unassigned), and
        the admin listener answers too (it starts apart from the public one, and may come a moment later)."""
        try:
            with urllib.request.urlopen(self.base_url + "/health/ready", timeout=5) as response:
                ready = response.status == 200
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code != 404:
                return False
            # a worker without /health/ready (an older build): partitions assigned, or for the edge role
            # (it consumes nothing) an answer at all
            return self.settings.worker_role == "edge" or self.progress()["assigned"] > 0
        return ready and isinstance(self.progress(), dict)

    def exit_error(self) -> StackError | None:
        """Why the worker is gone, when it is."""
        rc = self.proc.poll() if self.proc is not None else None
        if rc is None:
            return None
        detail = self._last_error(": ") if rc > 0 else ""
        return StackError(f"the worker exited with code {_exit_code(rc)}{detail}; see {self.log_path}")

    def check_alive(self) -> None:
        """``StackError`` saying why, when the worker process has exited."""
        error = self.exit_error()
        if error is not None:
            raise error

    def _last_error(self, prefix: str = "") -> str:
        """The last line of this run's log that reads like an error (else its last line), after ``prefix``."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(self._log_start, self.log_path.stat().st_size - 65536))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if _ERROR_LINE.search(line)]
        line = (errors or lines or [""])[-1].removeprefix("rapport: error: ")
        return f"{prefix}{line[:300]}" if line else ""

    def progress(self, timeout: float = 5.0) -> dict[str, Any]:
        request = urllib.request.Request(self.admin_url + "/rapport/progress", headers=bearer(self.token))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def sql(self, query: str, fmt: str = "TSV") -> str:
        """The query's result through the worker; a worker that does not answer is retried briefly, one
        that exited is reported (``StackError``)."""
        deadline = time.monotonic() + ANSWER_SECONDS
        while True:
            self.check_alive()
            try:
                return worker_sql(self.admin_url, query, fmt, self.token)
            except WorkerUnreachable:
                self.check_alive()
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.3)

    def wait_drained(self, records: int, timeout: float, stall: float | None = None) -> dict[str, Any]:
        """Wait until ``records`` replayed records and every accepted webhook were processed, and
        everything produced is stored (in ClickHouse or the dead-letter topic).

        ``StackError`` when the worker exits, when it is not drained after ``timeout`` seconds, or (``stall``)
        when nothing progressed for that long; the message says what is stuck.
        """
        started = time.monotonic()
        deadline = started + timeout
        progress: dict[str, Any] = {}
        marker: tuple[Any, ...] | None = None
        moved = started
        silent_since: float | None = None
        silent_reason = ""
        while True:
            self.check_alive()
            asked = time.monotonic()
            try:
                progress = self.progress(timeout=min(5.0, stall or 5.0))
            except (OSError, ValueError) as exc:  # refused, reset, timed out, a torn answer
                self.check_alive()  # refused because it just exited: say that instead
                silent_since = asked if silent_since is None else silent_since
                silent_reason = _reason(exc)
                if stall is None and time.monotonic() - silent_since >= ANSWER_SECONDS:
                    raise StackError(
                        self._stuck_message(f"no answer for {ANSWER_SECONDS:g}s", progress, records, silent_reason)
                    ) from exc
            else:
                silent_since = None
                if progress.get("replay_records", 0) >= records and progress.get("settled"):
                    return progress
                current = tuple(progress.get(key) for key in PROGRESS_COUNTERS)
                if current != marker:
                    marker, moved = current, time.monotonic()
            now = time.monotonic()
            unanswered = silent_reason if silent_since is not None else None
            if stall is not None and now - moved >= stall:
                raise StackError(
                    self._stuck_message(
                        f"nothing progressed for {stall:g}s while draining", progress, records, unanswered
                    )
                )
            if now >= deadline:
                raise StackError(self._stuck_message(f"not drained after {timeout:g}s", progress, records, unanswered))
            time.sleep(0.2)

    def _stuck_message(self, what: str, progress: dict[str, Any], records: int, unanswered: str | None) -> str:
        """One line: ``what``, then what is stuck: the worker's last Kafka/warehouse error, else what is missing."""
        reasons = []
        if unanswered is not None:
            pid = self.proc.pid if self.proc else "?"
            reasons.append(f"the worker (pid {pid}) does not answer on {self.admin_url}: {unanswered}")
        for key, label in (("failure", "worker"), ("warehouse_last_error", "warehouse"), ("kafka_last_error", "kafka")):
            if progress.get(key):
                reasons.append(f"{label}: {' '.join(str(progress[key]).split())[:300]}")
        if not reasons and progress:
            reasons.append(_missing(progress, records))
        return f"{what}: {'; '.join(reasons) or 'no progress report from the worker yet'}"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: Faust stops its agents, in-flight inserts finish, offsets are committed.
        SIGKILL after ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)  # a stopped worker (SIGSTOP, ^Z) could not act on the SIGTERM
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _missing(progress: dict[str, Any], records: int) -> str:
    """What a drain still waits for, from the worker's progress counters."""
    waits = []
    pairs = (
        ("replay_records", records, "replayed records processed"),
        ("interactions_stored", progress.get("interactions_out", 0), "interactions stored"),
        ("dead_letters_stored", progress.get("dead_letters_out", 0), "dead letters stored"),
        ("webhook_messages", progress.get("edge_messages", 0), "webhook messages processed"),
    )
    for key, wanted, label in pairs:
        have = progress.get(key, 0)
        if have < wanted:
            waits.append(f"{have} of {wanted} {label}")
    return ", ".join(waits) or "the worker does not report itself settled"


def worker_sql(base_url: str, query: str, fmt: str = "TSV", token: str = "") -> str:
    """The query's result from a worker's admin listener at ``base_url`` (``StackError`` with the worker's
    message when it refuses the query; ``WorkerUnreachable`` when nothing answers)."""
    request = urllib.request.Request(
        f"{base_url}/rapport/sql?format={fmt}",
        data=query.encode(),
        method="POST",
        headers=bearer(token) if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        message = exc.read().decode(errors="replace").strip()
        exc.close()
        raise StackError(message or f"the worker answered HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError) as exc:  # URLError (refused, reset), timeouts, a torn answer
        raise WorkerUnreachable(f"the worker does not answer on {base_url}: {_reason(exc)}") from exc


@dataclass
class UpResult:
    replayed: int
    progress: dict[str, Any]
    report: str = ""
    #: distinct events in the warehouse (``interactions FINAL``) once drained; None when not drained
    stored: int | None = None
    #: what went wrong after the drain (the summary is still worth printing): the worker's exit on stop
    #: (``StackError``), a replayed file of which nothing became an interaction (``ReplayError``)
    error: Exception | None = None


def care_report(settings: Settings) -> str:
    """``rapport metrics``' table of every brand, printed by ``rapport up --exit-when-drained`` once the worker has
    stopped (the embedded ClickHouse is then free to open)."""
    from streams.metrics import care
    from streams.metrics.report import render
    from streams.sinks.warehouse import connect

    warehouse = connect(settings.warehouse_url)
    try:
        care.refresh_pending(warehouse)
        query = care.MetricsQuery(policies=care.brand_policies(settings))
        rows = care.metrics(warehouse, query)
        windows = query.windows(care.brands_in(warehouse, query))
        return (
            render(care.select(rows, care.column_names("brand", windows, "care")), "table")
            + "\nEngagement versus reach (`rapport metrics --figures headline`; all figures: --figures engagement):\n"
            + render(care.select(rows, care.column_names("brand", windows, "headline")), "table")
        )
    finally:
        warehouse.close()


class _Stop(Exception):
    pass


SECRETS_FILE = "webhook-secrets.env"
SECRET_SETTINGS = ("x_consumer_secret", "meta_app_secret", "meta_verify_token", "events_token")


def local_webhook_secrets(settings: Settings, data_dir: Path) -> tuple[Settings, Path | None]:
    """Secrets for the local stack's webhooks: the configured ones, else generated once and kept in
    ``DATA_DIR/webhook-secrets.env`` (mode 0600) so a platform or the demo can sign with them."""
    missing = [name for name in SECRET_SETTINGS if not settings.secret_list(name)]
    if not missing:
        return settings, None
    path = data_dir / SECRETS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            stored[key.strip().removeprefix("RAPPORT_").lower()] = value.strip()
    generated = {name: stored.get(name) or secrets.token_urlsafe(24) for name in missing}
    merged = {name: ",".join(settings.secret_list(name)) or generated.get(name, "") for name in SECRET_SETTINGS}
    path.write_text("".join(f"RAPPORT_{name.upper()}={value}\n" for name, value in merged.items()))
    path.chmod(0o600)
    return settings.model_copy(update={name: SecretStr(value) for name, value in generated.items()}), path


def run_up(
    settings: Settings,
    replay_file: Path | None,
    replay_format: str,
    exit_when_drained: bool,
    drain_timeout: float = 600.0,
    out: Any = sys.stdout,
    demo_webhooks: bool = False,
) -> UpResult:
    """Start broker + worker, migrate, replay; then drain and stop, or run until SIGINT/SIGTERM.

    Fails closed: the broker and the worker die with this process however it dies; a worker that exits
    stops the stack with its reason (``StackError``); a drain with no progress for
    ``settings.drain_stall_seconds`` says what is stuck (``StackError``) instead of waiting on.
    """
    from streams.kafka.replay import read_chunks, replay

    chunks = None
    if replay_file is not None:  # fail fast on a bad file, before starting anything (read once)
        chunks = list(read_chunks(replay_file, replay_format, settings.replay_chunk_records))
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if read_worker_file(data_dir):
        raise StackError(f"a Rapport worker is already running on {data_dir}; stop it first")
    settings, secrets_path = local_webhook_secrets(settings, data_dir)
    if secrets_path is not None:
        print(
            f"webhook secrets: {secrets_path} (generated; set RAPPORT_X_CONSUMER_SECRET etc. to use yours)",
            file=out,
            flush=True,
        )
    if settings.brands_file is None:
        from streams.local.demo_webhooks import write_demo_brands

        settings = settings.model_copy(update={"brands_file": write_demo_brands(data_dir / "brands.yaml")})
        print(
            f"brands  {settings.brands_file} (the demo brands; set RAPPORT_BRANDS_FILE for yours)", file=out, flush=True
        )
    token_configured = bool(settings.admin_token.get_secret_value().strip())
    settings = local_admin(settings.model_copy(update={"data_dir": data_dir}))
    warehouse = connect(settings.warehouse_url)
    applied = migrate(warehouse)
    warehouse.close()
    print(f"warehouse {settings.warehouse_url}: {len(applied)} migration(s) applied", file=out, flush=True)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, on_signal) for s in signals}

    def ignore_signals() -> None:  # stopping: a second Ctrl-C must not cut the drain or the stop short
        for s in signals:
            signal.signal(s, signal.SIG_IGN)

    stall = settings.drain_stall_seconds
    replayed = 0
    result = UpResult(0, {})
    try:
        with LocalBroker(data_dir / "broker") as broker:
            print(
                f"broker  tansu on {broker.bootstrap} (pid {broker.pid}, in memory, logs in {data_dir / 'broker'})",
                file=out,
                flush=True,
            )
            settings = settings.model_copy(
                update={"kafka_brokers": broker.bootstrap, "web_port": settings.web_port or free_port()}
            )
            ensure_topics(broker.bootstrap, topic_specs(settings))
            worker = WorkerProcess(settings, data_dir / "logs" / "worker.log")

            def check_stack() -> None:
                worker.check_alive()
                if not broker.is_running:
                    raise StackError(f"the broker (tansu) exited with code {broker.returncode}; see {broker.log_path}")

            try:
                try:
                    worker.start()
                    token_from = "RAPPORT_ADMIN_TOKEN" if token_configured else data_dir / ADMIN_TOKEN_FILE
                    print(
                        f"worker  pid {worker.proc.pid if worker.proc else '?'}, web {worker.base_url}, "
                        f"admin {worker.admin_url} (token: {token_from}), log {worker.log_path}",
                        file=out,
                        flush=True,
                    )
                    if replay_file is not None and chunks is not None:
                        replayed = replay(
                            replay_file,
                            replay_format,
                            settings.broker_list,
                            settings.topic_raw,
                            settings.replay_chunk_records,
                            chunks=chunks,
                        )
                        chunks = None  # sent: let them go
                        print(f"replayed {replayed} events from {replay_file}", file=out, flush=True)
                    if demo_webhooks:
                        from streams.local.demo_webhooks import post_demo_webhooks

                        try:
                            print(post_demo_webhooks(worker.base_url, settings), file=out, flush=True)
                        except (OSError, ValueError) as exc:  # refused, reset, timed out: say why in one line
                            worker.check_alive()
                            raise StackError(f"posting the demo webhooks to {worker.base_url}: {_reason(exc)}") from exc
                    if exit_when_drained:
                        check_stack()
                        progress = worker.wait_drained(replayed, drain_timeout, stall)
                        ignore_signals()
                    else:
                        print("running; Ctrl-C to stop", file=out, flush=True)
                        while True:
                            check_stack()
                            time.sleep(0.5)
                except _Stop:
                    ignore_signals()
                    print("stopping: storing what was received…", file=out, flush=True)
                    check_stack()
                    progress = worker.wait_drained(replayed, drain_timeout, stall)
                result = UpResult(replayed, progress)
                result.stored = int(worker.sql("SELECT count() FROM interactions FINAL").strip() or 0)
                if replay_file is not None:
                    result.error = all_dead_lettered(worker, replay_file, replay_format, replayed, progress)
            except BaseException:
                ignore_signals()
                if worker.proc is not None and worker.proc.poll() is None:
                    print("stopping the worker and the broker…", file=out, flush=True)
                worker.stop(settings.stop_timeout + 10)
                raise
            ignore_signals()
            code = worker.stop(settings.stop_timeout + 10)
            if code != 0:  # drained and counted, but the worker did not stop cleanly: say so after the summary
                result.error = worker.exit_error() or result.error
            elif exit_when_drained:
                result.report = care_report(settings)
    except _Stop:  # a signal before the worker was up
        raise StackError("interrupted while starting the stack") from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return result


def all_dead_lettered(
    worker: WorkerProcess, replay_file: Path, replay_format: str, replayed: int, progress: dict[str, Any]
) -> Exception | None:
    """``ReplayError`` when ``replay_file`` had records and none of them became an interaction: it is most
    likely not a ``replay_format`` file (a CSV or a binary file given as jsonl)."""
    from streams.kafka.replay import ReplayError

    if replayed == 0:
        return None
    produced = progress.get("replay_interactions")
    if produced is None:  # a worker that does not count them apart: only webhooks can blur the figure
        if progress.get("webhook_messages", 0):
            return None
        produced = progress.get("interactions_out", 0)
    if produced:
        return None
    try:
        reason = worker.sql(
            f"SELECT reason FROM dead_letters FINAL WHERE format = '{replay_format}' ORDER BY received_at DESC LIMIT 1"
        ).strip()
    except StackError:
        reason = ""
    example = f" (e.g. {' '.join(reason.split())[:200]})" if reason else ""
    return ReplayError(
        f"{replay_file}: all {replayed} records were dead-lettered{example}; is it a {replay_format} file?"
    )
