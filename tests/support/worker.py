"""A `rapport worker` subprocess for integration tests: the one harness every test that starts a worker uses.

It is the product's own :class:`streams.local.stack.WorkerProcess` (what `rapport up` runs: the settings
handed over as ``RAPPORT_*`` variables, ``/health/ready`` waited for, the admin token read or generated,
progress and SQL over the admin listener, SIGTERM then SIGKILL after a bounded wait, and a child that dies
with the test process), plus what tests ask of a worker: a start that does not wait for readiness, a
predicate to wait for while the worker is alive, raw HTTP answers (status and text), and this run's log.

Tests get one from the ``worker`` fixture of tests/conftest.py, which stops every worker it started.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from streams.local import stack

#: How long a worker is given to answer ``/health/ready`` (a cold start imports Faust and opens chdb).
READY_SECONDS = 90.0
#: How long a worker still running at a test's end is given to stop on SIGTERM before it is killed.
TEARDOWN_STOP_SECONDS = 10.0


def http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, str]:
    """One GET (or POST with ``data``) to ``url``: its status and its body as text, error statuses included."""
    request = urllib.request.Request(
        url, data=data, headers=headers or {}, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class WorkerProcess(stack.WorkerProcess):
    """A ``rapport worker`` subprocess on loopback (``base_url``: webhooks and /health; ``admin_url``: progress,
    SQL and metrics with ``token``). A context manager: the block's end stops it."""

    _launch_only = False

    def start(self, timeout: float = READY_SECONDS, *, ready: bool = True) -> WorkerProcess:
        """Launch the worker and (``ready``) wait until ``/health/ready`` and the admin listener answer;
        without ``ready``, return once it is launched (the test decides what "up" means). A worker that exits
        or is not ready in time is killed, and the error says why (``StackError``)."""
        self._launch_only = not ready
        try:
            super().start(timeout)
        except BaseException:
            self.kill()
            raise
        finally:
            self._launch_only = False
        return self

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The subprocess, once started (to signal it, wait for it, read its exit code)."""
        assert self.proc is not None, "the worker was not started"
        return self.proc

    def _ready(self) -> bool:
        return self._launch_only or super()._ready()

    def ready(self) -> bool:
        """``/health/ready`` says 200 and the admin listener answers (OSError while nothing listens yet)."""
        return self._ready()

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> None:
        """Poll ``predicate`` until it is true (an OSError counts as not yet); AssertionError with the log's
        tail when the worker exits meanwhile or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (
                f"worker exited with {self.process.returncode}:\n{self.log_text()[-3000:]}"
            )
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{what} not within {timeout}s:\n{self.log_text()[-3000:]}")

    def replay_and_stop(self, path: Path, fmt: str, records: int, timeout: float = 240) -> str:
        """Replay the file's ``records`` records into this worker, wait until each is stored or dead-lettered, and
        stop the worker cleanly: chdb opens a data directory in one process at a time, so the test can then open
        the warehouse itself. Returns its URL."""
        from streams.kafka.replay import replay

        s = self.settings
        try:
            assert replay(path, fmt, s.broker_list, s.topic_raw, s.replay_chunk_records, False) == records
            self.wait_drained(records, timeout=timeout)
        finally:
            assert self.stop() == 0
        return f"chdb://{s.data_dir}/clickhouse"

    def sql_answer(self, query: str) -> tuple[int, str]:
        """The admin listener's answer to ``query`` (TSV) as it is: status and text, refusals included."""
        return http(self.admin_url + "/rapport/sql?format=TSV", query.encode(), bearer(self.token), timeout=60)

    def post_events(self, body: bytes) -> int:
        """POST ``body`` to /webhooks/events with the first configured events token; the status."""
        token = self.settings.secret_list("events_token")[0]
        headers = {"Content-Type": "application/json"} | bearer(token)
        return http(self.base_url + "/webhooks/events", body, headers)[0]

    def log_text(self) -> str:
        """This run's part of the log (the file is appended to when a test starts a worker again)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def error_lines(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if line.startswith("rapport: error:")]

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class StartWorker(Protocol):
    """The ``worker`` fixture of tests/conftest.py: ``worker(**settings)`` → a started :class:`WorkerProcess`."""

    def __call__(
        self, *, log: Path | None = None, ready: bool = True, topics: bool = True, **settings: Any
    ) -> WorkerProcess: ...
