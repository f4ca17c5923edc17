"""Kafka cluster administration the worker and the tools need: is a broker answering, how many partitions
has a topic, create the topics Rapport uses. Works with any Kafka cluster (and the local tansu broker).

Everything here is synchronous: it is called from the CLI, from a worker thread and from test fixtures,
before (or outside) any event loop. Reachability and topic listings send a Kafka ``Metadata`` v4 request,
built and decoded by aiokafka's protocol classes, over a plain blocking socket (no event loop, and it never
auto-creates topics, which tansu does for aiokafka's ``describe_topics``); topic creation uses aiokafka's
admin client inside a private event loop.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["BrokerError", "BrokerUnreachable", "TopicSpec", "ensure_topics", "topic_partitions", "wait_reachable"]

_CLIENT_ID = "rapport-localbroker"
_TOPIC_ALREADY_EXISTS = 36
_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_T = TypeVar("_T")

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """A Kafka broker could not be found, started, stopped or used. Messages are one line."""


class BrokerUnreachable(BrokerError):
    """No Kafka broker answered at the given bootstrap address in time."""


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


def metadata_from(host: str, port: int, timeout: float) -> dict[str, int]:
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
    """``metadata_from`` the first address in ``bootstrap`` that answers; raises the last error."""
    last: Exception | None = None
    for host, port in _split_bootstrap(bootstrap):
        try:
            return metadata_from(host, port, timeout)
        except (OSError, BrokerError) as exc:
            last = exc
    assert last is not None
    raise last


def one_line(exc: BaseException) -> str:
    """An exception as one line of text (its message, else its type)."""
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
            reason = one_line(exc)
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
        raise BrokerUnreachable(f"Kafka broker {bootstrap} is unreachable: {one_line(exc)}") from exc


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
        raise BrokerError(f"cannot create topics on {bootstrap}: {one_line(exc)}") from exc
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
