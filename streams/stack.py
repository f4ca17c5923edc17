"""The local stack: a tansu broker, the migrated warehouse and a worker process, on loopback.

``rapport up`` and the end-to-end tests both use :class:`WorkerProcess` (a ``rapport worker``
subprocess, talked to over its loopback web server) and :func:`run_up`.
"""

from __future__ import annotations

import json
import os
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
from streams.localbroker import LocalBroker, TopicSpec, ensure_topics, free_port
from streams.settings import Settings
from streams.warehouse import connect

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


class WorkerProcess:
    """A ``rapport worker`` subprocess on loopback."""

    def __init__(self, settings: Settings, log_path: Path, module: str = "streams.cli") -> None:
        self.settings = settings
        self.log_path = log_path
        self.module = module  # run as ``python -m MODULE worker``; the benchmark's ceiling uses its own
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        env = os.environ | settings_env(self.settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal Ctrl-C reaches `rapport up`, which drains, then stops us
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                # the edge role consumes nothing: it is ready once its web server answers
                if self.progress()["assigned"] > 0 or self.settings.worker_role == "edge":
                    return self
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.3)
        raise StackError(f"worker not ready after {timeout:.0f}s; see {self.log_path}")

    def progress(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base_url + "/rapport/progress", timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def sql(self, query: str, fmt: str = "TSV") -> str:
        return worker_sql(self.base_url, query, fmt)

    def wait_drained(self, records: int, timeout: float) -> dict[str, Any]:
        """Wait until ``records`` replayed records and every accepted webhook were processed, and
        everything produced is stored (in ClickHouse or the dead-letter topic)."""
        deadline = time.monotonic() + timeout
        progress: dict[str, Any] = {}
        while time.monotonic() < deadline:
            progress = self.progress()
            if progress["replay_records"] >= records and progress["settled"]:
                return progress
            time.sleep(0.2)
        raise StackError(f"not drained after {timeout:.0f}s: {progress}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: Faust stops its agents, in-flight inserts finish, offsets are committed."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def worker_sql(base_url: str, query: str, fmt: str = "TSV") -> str:
    request = urllib.request.Request(f"{base_url}/rapport/sql?format={fmt}", data=query.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise StackError(exc.read().decode().strip()) from exc


@dataclass
class UpResult:
    replayed: int
    progress: dict[str, Any]
    report: str = ""


#: Printed by `rapport up --exit-when-drained`: the brands with the most inbound messages.
REPORT_SQL = """
SELECT i.brand AS brand, i.inbound AS inbound, ifNull(r.answered, 0) AS answered,
       round(100 * ifNull(r.answered, 0) / i.inbound, 1) AS answered_pct,
       r.median_first_response_s AS median_first_response_s
FROM (SELECT brand, count() AS inbound FROM interactions FINAL
      WHERE direction = 'inbound' AND kind IN ('post', 'comment', 'reply', 'mention', 'direct_message')
      GROUP BY brand) AS i
LEFT JOIN (SELECT brand, count() AS answered,
                  quantileExactInclusive(0.5)(response_seconds) AS median_first_response_s
           FROM responses FINAL GROUP BY brand) AS r ON r.brand = i.brand
ORDER BY inbound DESC, brand LIMIT 15
"""


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
    """Start broker + worker, migrate, replay; then drain and stop, or run until SIGINT/SIGTERM."""
    from streams.replay import read_chunks, replay

    if replay_file is not None:  # fail fast on a bad file, before starting anything
        next(iter(read_chunks(replay_file, replay_format, settings.replay_chunk_records)), None)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if read_worker_file(data_dir):
        raise StackError(f"a Rapport worker is already running on {data_dir}; stop it first")
    settings, secrets_path = local_webhook_secrets(settings, data_dir)
    if secrets_path is not None:
        print(f"webhook secrets: {secrets_path} (generated; set RAPPORT_X_CONSUMER_SECRET etc. to use yours)", file=out)
    if settings.brands_file is None:
        from streams.demo_webhooks import write_demo_brands

        settings = settings.model_copy(update={"brands_file": write_demo_brands(data_dir / "brands.yaml")})
        print(f"brands  {settings.brands_file} (the demo brands; set RAPPORT_BRANDS_FILE for yours)", file=out)
    warehouse = connect(settings.warehouse_url)
    applied = migrate(warehouse)
    warehouse.close()
    print(f"warehouse {settings.warehouse_url}: {len(applied)} migration(s) applied", file=out)

    stop_requested = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True
        raise _Stop

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    replayed = 0
    progress: dict[str, Any] = {}
    report = ""
    try:
        with LocalBroker(data_dir / "broker") as broker:
            print(f"broker  tansu on {broker.bootstrap} (in memory, logs in {data_dir / 'broker'})", file=out)
            settings = settings.model_copy(
                update={
                    "kafka_brokers": broker.bootstrap,
                    "data_dir": data_dir,
                    "web_port": settings.web_port or free_port(),
                }
            )
            ensure_topics(broker.bootstrap, topic_specs(settings))
            worker = WorkerProcess(settings, data_dir / "logs" / "worker.log")
            try:
                worker.start()
                print(
                    f"worker  pid {worker.proc.pid if worker.proc else '?'}, web {worker.base_url}, "
                    f"log {worker.log_path}",
                    file=out,
                )
                if replay_file is not None:
                    replayed = replay(
                        replay_file,
                        replay_format,
                        settings.broker_list,
                        settings.topic_raw,
                        settings.replay_chunk_records,
                    )
                    print(f"replayed {replayed} events from {replay_file}", file=out)
                if demo_webhooks:
                    from streams.demo_webhooks import post_demo_webhooks

                    print(post_demo_webhooks(worker.base_url, settings), file=out)
                if exit_when_drained:
                    progress = worker.wait_drained(replayed, drain_timeout)
                    report = worker.sql(REPORT_SQL, "PrettyCompactNoEscapes")
                else:
                    print("running; Ctrl-C to stop", file=out)
                    while True:
                        time.sleep(3600)
            except _Stop:
                print("stopping: storing what was received…", file=out)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                progress = worker.wait_drained(replayed, drain_timeout)
            finally:
                worker.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return UpResult(replayed, progress, report)
