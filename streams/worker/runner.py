"""``rapport worker``: one worker process, started, supervised and stopped so that it fails closed.

- It never goes on without one of its agents: an agent that stops on an error, Kafka failing for longer
  than ``RAPPORT_KAFKA_RETRY_SECONDS``, a warehouse error that retrying cannot mend, a warehouse still
  failing when a stop was asked for: the worker exits 1 at once, with one ``rapport: error: …`` line and
  without committing anything more (``Rapport.fail`` says why at once). A supervisor (systemd,
  Kubernetes, ``rapport up``) restarts it, and the uncommitted input is processed again.
- A stop (SIGTERM or Ctrl-C) is graceful: agents finish their batch, offsets are committed. It is
  bounded by ``RAPPORT_STOP_TIMEOUT``: past it, the worker says in one line what it was waiting for and
  exits 1 (what was not stored is still in Kafka). A second signal stops it at once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from typing import Any

import faust

from streams.local.stack import WORKER_FILE
from streams.settings import Settings
from streams.worker.app import Rapport

log = logging.getLogger("rapport.worker")

#: One log line per (logger, message template) per this many seconds: with the broker gone, the Kafka
#: client logs the same few errors ~100 times a second, which drowns the line that says what happened.
REPEAT_SECONDS = 10.0


class RepeatFilter(logging.Filter):
    """Let a message through once per ``REPEAT_SECONDS`` for each (logger, template); the next one that
    passes says how many were held back. Rapport's own ``rapport.*`` records always pass."""

    def __init__(self, seconds: float = REPEAT_SECONDS) -> None:
        super().__init__()
        self.seconds = seconds
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("rapport"):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, held = self._seen.get(key, (-self.seconds, 0))
        if now - last < self.seconds:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f}s)"
        return True


def say_error(reason: str) -> None:
    """``rapport: error: …`` as one line on the real stderr (Faust redirects ``sys.stderr`` to its log)."""
    os.write(2, f"rapport: error: {reason}\n".encode())


class RapportWorker(faust.Worker):
    """Faust's worker with Rapport's stop rules (see the module's docstring)."""

    def __init__(self, rapport: Rapport, **kwargs: Any) -> None:
        super().__init__(rapport.app, **kwargs)
        self.rapport = rapport
        self._stop_started = False
        rapport.on_fatal = self._exit_now  # see Rapport.fail: a failed batch must not be acknowledged

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        for handler in logger.handlers:
            handler.addFilter(RepeatFilter())

    def _on_sigint(self) -> None:
        self._on_stop_signal(signal.SIGINT)

    def _on_sigterm(self) -> None:
        self._on_stop_signal(signal.SIGTERM)

    def _on_stop_signal(self, signum: signal.Signals) -> None:
        if self._stop_started:
            self._exit_now(f"second {signum.name}: stopping at once (what was not stored stays in Kafka)")
        self.request_stop(signum.name)

    def request_stop(self, why: str) -> None:
        """Start the graceful stop once, with a deadline."""
        if self._stop_started:
            return
        self._stop_started = True
        self.rapport.health.stopping = True
        timeout = self.rapport.settings.stop_timeout

        def too_slow() -> None:
            self._exit_now(f"the worker did not stop within {timeout:g}s: {self.stuck_reason()}")

        timer = threading.Timer(timeout, too_slow)
        timer.daemon = True
        timer.start()
        self._schedule_shutdown(signal.SIGTERM)

    def stuck_reason(self) -> str:
        """What the stop waits for: the errors on record, else a quick look at the broker."""
        from streams.kafka.cluster import BrokerError, wait_reachable

        health = self.rapport.health
        if health.kafka.text is None and health.broker.text is None:
            try:
                wait_reachable(self.rapport.settings.kafka_brokers, timeout=1.0)
            except BrokerError as exc:
                health.broker.failed(str(exc))
        return health.stuck_reason()

    def _exit_now(self, reason: str) -> None:
        say_error(reason)
        _unregister(self.rapport.settings)
        os._exit(1)


def _unregister(settings: Settings) -> None:
    (settings.data_dir / WORKER_FILE).unlink(missing_ok=True)


def run_worker(settings: Settings) -> int:
    """Run a worker until it is stopped; the exit code (0 after a clean stop, 1 after a failure)."""
    from schemas.migrate import migrate
    from streams.cli import limit_malloc_arenas, tune_garbage_collector, use_fast_event_loop
    from streams.kafka.changelog import changelog_topic, fence_changelogs
    from streams.kafka.cluster import wait_reachable
    from streams.sinks.warehouse import connect
    from streams.web.admin_token import admin_token

    use_fast_event_loop()
    limit_malloc_arenas()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = ",".join(settings.broker_list)
    wait_reachable(bootstrap, timeout=settings.kafka_connect_timeout)
    warehouse = connect(settings.warehouse_url)
    migrate(warehouse)  # also recreates contract tables dropped by hand
    admin_token(settings)  # generated now (when not configured), so a client can read it as soon as we run
    rapport = Rapport(settings, warehouse)
    tune_garbage_collector()
    # complete table recovery even where the broker misreports end offsets (streams/kafka/changelog.py)
    fence_changelogs(bootstrap, [changelog_topic(settings.app_id, t) for t in rapport.tables])
    registration = settings.data_dir / WORKER_FILE
    registration.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "web": f"http://{settings.web_host}:{settings.web_port}",
                "admin": f"http://{settings.admin_host}:{settings.admin_port}",
            }
        )
    )
    try:
        worker = RapportWorker(rapport, loglevel="warn", quiet=True)
        # Faust's terminal spinner sets the root logger to DEBUG so it can spin on every record: every
        # library debug call (aiokafka logs each send) would then build a LogRecord. No spinner here.
        worker.spinner = None
        code: int | str | None = 0
        try:
            worker.execute_from_commandline()  # always ends with SystemExit (1 when Faust itself crashed)
        except SystemExit as exc:
            code = exc.code
    finally:
        registration.unlink(missing_ok=True)
        rapport.close()
    if rapport.health.failure:
        say_error(rapport.health.failure)
        return 1
    return 0 if code in (0, None) else 1
