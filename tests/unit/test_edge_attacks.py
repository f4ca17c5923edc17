"""The webhook edge attacked over real HTTP (issue 11, "fail closed"): an aiohttp server on loopback.

What an attacker tries here, and what must come back:

- fetch the X signature of a forged delivery through the CRC answer (the same HMAC) → 400, nothing signed;
- send bytes that are not UTF-8 in a signature, ``Authorization`` or ``hub.verify_token`` → 401/403, not 500;
- announce a body and send it slowly, or never → 408 within ``read_timeout``, connection closed;
- send the headers slowly → closed by aiohttp's ``keepalive_timeout`` (``handler_args``), the only bound.

Raw sockets send what HTTP clients refuse to (bytes that are not UTF-8 in headers, a trickled body).
Kafka is a recording publisher here, as in test_edge.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.processing.platforms import BrandDirectory
from streams.processing.platforms.signatures import signature_matches, token_matches, x_signature
from streams.web.edge import Edge, build_app
from tests.support.aiohttp_server import serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
X_SECRET = "current-x-secret"
META_SECRET = "meta-app-secret"
EVENTS_TOKEN = "events-token-1"
VERIFY_TOKEN = "verify-me"
READ_TIMEOUT = 1.0
MARGIN = 1.0  # seconds allowed past READ_TIMEOUT for the 408 (or the close) to arrive
BRANDS = BrandDirectory.from_mapping({"brands": {"acme": {"x": ["2244994945"], "facebook": ["104830000000001"]}}})
CRC_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=+/."


@dataclass
class Recorder:
    sent: list[tuple[bytes, bytes, dict[str, bytes]]] = field(default_factory=list)

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((key, value, dict(headers)))


@dataclass
class Server:
    port: int
    recorder: Recorder
    edge: Edge


def _edge(recorder: Recorder) -> Edge:
    return Edge(
        {
            "x_consumer_secret": (X_SECRET,),
            "meta_app_secret": (META_SECRET,),
            "meta_verify_token": (VERIFY_TOKEN,),
            "events_token": (EVENTS_TOKEN,),
        },
        BRANDS,
        recorder.publish,
        max_bytes=64 * 1024,
        read_timeout=READ_TIMEOUT,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    recorder = Recorder()
    edge = _edge(recorder)
    with serve(build_app(edge)) as port:
        yield Server(port, recorder, edge)


@pytest.fixture(autouse=True)
def clean(server: Server) -> None:
    server.recorder.sent.clear()


# --- raw HTTP -----------------------------------------------------------------------------------------


def independent_x_signature(payload: bytes, secret: str = X_SECRET) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


def independent_meta_signature(payload: bytes) -> str:
    return "sha256=" + hmac.new(META_SECRET.encode(), payload, hashlib.sha256).hexdigest()


def head(method: str, target: bytes, headers: list[bytes], content_length: int | None = None) -> bytes:
    """A request head, raw: header lines are bytes, so they can hold anything. One request a connection."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    if content_length is not None:
        lines += [b"Content-Type: application/json", b"Content-Length: " + str(content_length).encode()]
    return b"\r\n".join([*lines, *headers, b"", b""])


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes, and whether it closed before ``deadline``."""
    data = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def exchange(port: int, request: bytes, wait: float = 10.0) -> tuple[int, bytes]:
    """Sends ``request`` whole, returns (status, body) of the answer (the connection is closed after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(request)  # not half-closed: aiohttp closes at once on EOF, before answering
        data, closed = read_until_closed(sock, time.monotonic() + wait)
    assert closed, f"the server kept the connection open: {data[:200]!r}"
    return parse(data)


def parse(data: bytes) -> tuple[int, bytes]:
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1."), data[:200]
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def crc(server: Server, raw_query_value: str) -> tuple[int, bytes]:
    """GET the X CRC answer; ``raw_query_value`` goes into the URL as given (encode it first if needed)."""
    return exchange(server.port, head("GET", b"/webhooks/x?crc_token=" + raw_query_value.encode(), []))


# --- 1. the CRC answer is not a signing oracle --------------------------------------------------------


def _delivery_bodies() -> list[bytes]:
    mention = (FIXTURES / "x" / "tweet_mention.json").read_bytes()
    reply = (FIXTURES / "x" / "tweet_reply_outbound.json").read_bytes()
    compact = [json.dumps(json.loads(body), separators=(",", ":")).encode() for body in (mention, reply)]
    short = [b"{}", b"[]", b"[1]", b'{"a":1}', b'{"for_user_id":"2244994945"}', b'{"tweet_create_events":[]}']
    return [mention, reply, *compact, *short]


@pytest.mark.parametrize("body", _delivery_bodies(), ids=lambda b: b[:24].decode(errors="replace"))
def test_crc_refuses_a_delivery_body_as_token_so_it_cannot_be_forged(server: Server, body: bytes) -> None:
    # the attack of issue 11: ask the CRC answer for the signature of a forged delivery, then post it
    status, answer = crc(server, quote(body.decode(), safe=""))
    assert status == 400
    assert "response_token" not in json.loads(answer) and "error" in json.loads(answer)
    assert b"sha256=" not in answer
    assert independent_x_signature(body).encode() not in answer
    # what the attacker is left with: no signature, so the forged delivery is refused and nothing stored
    signed_by_nobody = head("POST", b"/webhooks/x", [b"x-twitter-webhooks-signature: sha256="], len(body)) + body
    assert exchange(server.port, signed_by_nobody)[0] == 401
    assert server.recorder.sent == []


def test_a_signature_the_crc_answer_gives_verifies_only_a_body_that_is_no_event(server: Server) -> None:
    # the one thing the CRC answer still signs is a token; posted as a body it is not JSON an event lives in
    token = "Zm9yZ2VkLWV2ZW50"
    status, answer = crc(server, token)
    assert status == 200
    response_token = json.loads(answer)["response_token"]
    assert response_token == independent_x_signature(token.encode())
    for body in _delivery_bodies():
        forged = head("POST", b"/webhooks/x", [b"x-twitter-webhooks-signature: " + response_token.encode()], len(body))
        assert exchange(server.port, forged + body)[0] == 401
    assert server.recorder.sent == []


@pytest.mark.parametrize(
    "raw_value",
    [
        "a" * 129,  # too long
        quote("a" * 128 + "=", safe=""),  # too long by one, in the alphabet
        "",  # empty
        quote("with space", safe=""),
        "with+space",  # an unencoded + is a space in a query string
        quote('quo"te', safe=""),
        quote("{brace}", safe=""),
        quote("[1]", safe=""),
        quote("a:b,c", safe=""),
        quote("new\nline", safe=""),
        quote("tab\tbed", safe=""),
        quote("nul\x00byte", safe=""),
        "%FF%FE%7B",  # percent-encoded bytes that are not UTF-8
        "%C3%A9t%C3%A9",  # percent-encoded UTF-8 outside the alphabet
        "%25%7B%22",  # percent-encoded percent signs
        quote("semi;colon", safe=""),
        quote("<script>", safe=""),
    ],
)
def test_crc_refuses_every_token_outside_the_rule_with_400_and_no_signature(server: Server, raw_value: str) -> None:
    status, answer = crc(server, raw_value)
    assert status == 400
    payload = json.loads(answer)
    assert set(payload) == {"error"}
    assert b"sha256=" not in answer


@pytest.mark.parametrize(
    "token",
    [
        "challenge-123",
        "x",
        "a" * 128,
        "Zm9vYmFyYmF6+/8=",  # base64
        "Zm9vYmFyYmF6_-8=",  # base64url
        "NjRlNGJkN2QtMWIxMS00ZDEyLWJhYzUtNTFjZmI1ZjJkZWVm",  # base64 of a UUID
        "1.2.3",
    ],
)
def test_crc_still_answers_opaque_tokens_with_the_right_hmac(server: Server, token: str) -> None:
    status, answer = crc(server, quote(token, safe=""))
    assert status == 200
    assert json.loads(answer) == {"response_token": independent_x_signature(token.encode())}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=160))
def test_crc_signs_a_token_exactly_when_it_is_short_and_opaque(server: Server, token: str) -> None:
    status, answer = crc(server, quote(token, safe="", errors="surrogatepass"))
    if token and len(token) <= 128 and all(c in CRC_ALPHABET for c in token):
        assert (status, json.loads(answer)) == (200, {"response_token": independent_x_signature(token.encode())})
    else:
        assert status == 400 and b"sha256=" not in answer


# --- 2. bytes that are not UTF-8 in what is compared: 401/403, never 500 --------------------------------

MENTION = (FIXTURES / "x" / "tweet_mention.json").read_bytes()
META_BODY = (FIXTURES / "meta" / "page_feed_comment.json").read_bytes()
EVENTS_BODY = (FIXTURES / "events" / "interactions.json").read_bytes()
JUNK = [b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]  # invalid, surrogate, > U+10FFFF


def _junk_cases() -> list[tuple[str, bytes, bytes, bytes]]:
    cases = []
    for junk in JUNK:
        x_good = independent_x_signature(MENTION).encode()
        meta_good = independent_meta_signature(META_BODY).encode()
        cases += [
            ("/webhooks/x", b"x-twitter-webhooks-signature", b"sha256=" + junk, MENTION),
            ("/webhooks/x", b"x-twitter-webhooks-signature", x_good + junk, MENTION),  # the right one, then junk
            ("/webhooks/meta", b"X-Hub-Signature-256", b"sha256=" + junk, META_BODY),
            ("/webhooks/meta", b"X-Hub-Signature-256", meta_good[:-2] + junk, META_BODY),
            ("/webhooks/events", b"Authorization", b"Bearer " + junk, EVENTS_BODY),
            ("/webhooks/events", b"Authorization", b"Bearer " + EVENTS_TOKEN.encode() + junk, EVENTS_BODY),
            ("/webhooks/events", b"Authorization", junk + b" " + EVENTS_TOKEN.encode(), EVENTS_BODY),
        ]
    return cases


@pytest.mark.parametrize(("path", "name", "value", "body"), _junk_cases())
def test_bytes_that_are_not_utf8_in_a_signature_or_token_header_are_401(
    server: Server, path: str, name: bytes, value: bytes, body: bytes
) -> None:
    rejected = server.edge.counters.rejected
    status, answer = exchange(server.port, head("POST", path.encode(), [name + b": " + value], len(body)) + body)
    assert status == 401, answer
    assert json.loads(answer) == {"error": "missing or invalid signature"}
    assert server.recorder.sent == []
    assert server.edge.counters.rejected == rejected + 1


def test_the_same_requests_with_clean_headers_are_accepted(server: Server) -> None:
    # the control for the test above: only the junk bytes made those requests fail
    for path, name, value, body in [
        ("/webhooks/x", b"x-twitter-webhooks-signature", independent_x_signature(MENTION).encode(), MENTION),
        ("/webhooks/meta", b"X-Hub-Signature-256", independent_meta_signature(META_BODY).encode(), META_BODY),
        ("/webhooks/events", b"Authorization", b"Bearer " + EVENTS_TOKEN.encode(), EVENTS_BODY),
    ]:
        status, _ = exchange(server.port, head("POST", path.encode(), [name + b": " + value], len(body)) + body)
        assert status == 200
    assert len(server.recorder.sent) >= 3


@pytest.mark.parametrize("verify_token", ["%FF%FE", "verify-me%FF", "%ED%A0%80", "%C3%28"])
def test_a_verify_token_that_is_not_utf8_is_403(server: Server, verify_token: str) -> None:
    target = f"/webhooks/meta?hub.mode=subscribe&hub.verify_token={verify_token}&hub.challenge=4242".encode()
    status, answer = exchange(server.port, head("GET", target, []))
    assert status == 403
    assert b"4242" not in answer


def test_raw_bytes_that_are_not_utf8_in_the_query_are_refused_before_the_edge(server: Server) -> None:
    target = b"/webhooks/meta?hub.mode=subscribe&hub.verify_token=\xff\xfe&hub.challenge=4242"
    assert exchange(server.port, head("GET", target, []))[0] == 400  # aiohttp's parser refuses the request line
    status, answer = exchange(server.port, head("GET", b"/webhooks/x?crc_token=\xff", []))
    assert status == 400 and b"sha256=" not in answer


def test_comparisons_take_surrogate_escaped_text_and_stay_exact() -> None:
    body = b'{"for_user_id": "2244994945"}'
    good = x_signature(X_SECRET, body)
    for junk in ("\udcff", "\ud800", "\udfff\ud800", "é\udc80"):
        assert not signature_matches(x_signature, (X_SECRET,), "sha256=" + junk, body)
        assert not signature_matches(x_signature, (X_SECRET,), good + junk, body)
        assert not token_matches((EVENTS_TOKEN,), junk)
        assert not token_matches((EVENTS_TOKEN,), EVENTS_TOKEN + junk)
        assert token_matches((EVENTS_TOKEN, "a" + junk), "a" + junk)  # equal text still matches
    assert signature_matches(x_signature, (X_SECRET,), good, body)
    assert token_matches((EVENTS_TOKEN,), EVENTS_TOKEN)


# --- 3. slow clients: the time to read a request is bounded ---------------------------------------------


def _signed_x_head(body: bytes) -> bytes:
    return head(
        "POST", b"/webhooks/x", [b"x-twitter-webhooks-signature: " + independent_x_signature(body).encode()], len(body)
    )


def _body_of(size: int) -> bytes:
    """A correctly signed X delivery of exactly ``size`` bytes: only the clock can refuse it."""
    body = {"for_user_id": "2244994945", "tweet_create_events": [], "padding": ""}
    body["padding"] = "p" * (size - len(json.dumps(body)))
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


def _expect_408_and_closed(sock: socket.socket, started: float) -> None:
    data, closed = read_until_closed(sock, started + READ_TIMEOUT + MARGIN)
    elapsed = time.monotonic() - started
    assert closed, f"the connection was still open {elapsed:.1f} s after the headers"
    status, answer = parse(data)
    assert status == 408
    assert "error" in json.loads(answer)
    assert READ_TIMEOUT - 0.2 <= elapsed <= READ_TIMEOUT + MARGIN


def test_a_body_trickled_one_byte_a_second_gets_408_and_is_not_stored(server: Server) -> None:
    body = _body_of(1000)
    rejected = server.edge.counters.rejected
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_signed_x_head(body))
        started = time.monotonic()
        sent = 0
        answered = False
        while time.monotonic() - started < READ_TIMEOUT + MARGIN + 2 and sent < len(body):
            # wait half a second after each byte (then a whole second) for an answer, before the next byte
            readable, _, _ = select.select([sock], [], [], 0.5 if sent == 0 else 1.0)
            if readable:
                answered = True
                break
            sock.sendall(body[sent : sent + 1])
            sent += 1
        assert answered, f"no answer after {sent} bytes in {time.monotonic() - started:.1f} s"
        assert sent < len(body)
        _expect_408_and_closed(sock, started)
    assert server.recorder.sent == []
    assert server.edge.counters.rejected == rejected + 1


def test_a_body_that_never_arrives_gets_408(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_signed_x_head(_body_of(1000)))
        _expect_408_and_closed(sock, time.monotonic())
    assert server.recorder.sent == []


def test_a_body_that_stops_halfway_gets_408(server: Server) -> None:
    body = _body_of(1000)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_signed_x_head(body) + body[:500])
        _expect_408_and_closed(sock, time.monotonic())
    assert server.recorder.sent == []


def test_a_chunked_body_that_never_ends_gets_408(server: Server) -> None:
    body = _body_of(1000)
    signature = b"x-twitter-webhooks-signature: " + independent_x_signature(body).encode()
    request_head = head(
        "POST", b"/webhooks/x", [b"Content-Type: application/json", b"Transfer-Encoding: chunked", signature]
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_head + b"%x\r\n" % 100 + body[:100] + b"\r\n")  # one chunk, never the last one
        _expect_408_and_closed(sock, time.monotonic())
    assert server.recorder.sent == []


def test_a_slow_body_that_arrives_within_the_read_timeout_is_accepted(server: Server) -> None:
    body = _body_of(1000)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_signed_x_head(body))
        for start in range(0, len(body), 250):  # 4 pieces over ~0.45 s, within READ_TIMEOUT
            time.sleep(0.15 if start else 0)
            sock.sendall(body[start : start + 250])
        data, _ = read_until_closed(sock, time.monotonic() + 5)
    assert parse(data)[0] == 200
    assert [value for _, value, _ in server.recorder.sent] == [body]


def test_slow_headers_are_bounded_only_by_aiohttps_keepalive_timeout() -> None:
    # the edge's handlers run once the headers are in: headers sent slowly are bounded by aiohttp alone, by
    # RequestHandler's keepalive_timeout (default 3630 s), set through Application(handler_args=...), which
    # is what Faust's web_application_options reaches. It counts from the connection (or the last answer)
    # and is not pushed back by bytes that arrive.
    recorder = Recorder()
    app = web.Application(handler_args={"keepalive_timeout": READ_TIMEOUT})
    for method, path, handler in _edge(recorder).routes():
        app.router.add_route(method, path, handler)
    with serve(app) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /webhooks/x HTTP/1.1\r\n")
        closed = False
        for _ in range(int((READ_TIMEOUT + MARGIN) / 0.2)):
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                closed = read_until_closed(sock, time.monotonic() + 0.5) == (b"", True)
                break
            sock.sendall(b"X-Slow: 1\r\n")  # a header line every 0.2 s: never idle, never done
        assert closed, "slow headers held the connection"
        assert time.monotonic() - started <= READ_TIMEOUT + MARGIN
    assert recorder.sent == []
