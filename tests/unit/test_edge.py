"""The webhook edge over real HTTP (an aiohttp server on loopback).

Kafka is replaced by a recording publisher here; tests/integration/test_webhooks_end_to_end.py runs the
same edge inside a real worker with a real broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.processing.platforms import BrandDirectory
from streams.processing.platforms.signatures import meta_signature, x_signature
from streams.web.edge import Edge, build_app
from tests.support.aiohttp_server import request, serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
X_SECRETS = ("current-x-secret", "previous-x-secret")
META_SECRETS = ("meta-app-secret",)
TOKENS = ("events-token-1",)
BRANDS = BrandDirectory.from_mapping(
    {
        "brands": {
            "acme": {"x": ["2244994945"], "facebook": ["104830000000001"], "instagram": ["17841400000000001"]},
            "globex": {"facebook": ["104830000000002"]},
        }
    }
)


@dataclass
class Recorder:
    sent: list[tuple[bytes, bytes, dict[str, bytes]]] = field(default_factory=list)
    fail: bool = False

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((key, value, dict(headers)))


@dataclass
class Server:
    port: int
    recorder: Recorder

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
        return request(self.port, method, path, body, headers)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    recorder = Recorder()
    secrets = {
        "x_consumer_secret": X_SECRETS,
        "meta_app_secret": META_SECRETS,
        "meta_verify_token": ("verify-me",),
        "events_token": TOKENS,
    }
    edge = Edge(secrets, BRANDS, recorder.publish, max_bytes=64 * 1024)
    with serve(build_app(edge)) as port:
        yield Server(port, recorder)


@pytest.fixture(autouse=True)
def clean(server: Server) -> None:
    server.recorder.sent.clear()
    server.recorder.fail = False


def independent_x_signature(secret: str, payload: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


JSON = {"Content-Type": "application/json"}


def x_headers(body: bytes, secret: str = X_SECRETS[0]) -> dict[str, str]:
    return JSON | {"x-twitter-webhooks-signature": independent_x_signature(secret, body)}


def meta_headers(body: bytes) -> dict[str, str]:
    signature = "sha256=" + hmac.new(META_SECRETS[0].encode(), body, hashlib.sha256).hexdigest()
    return JSON | {"X-Hub-Signature-256": signature}


# --- handshakes ---------------------------------------------------------------------------------------


def test_x_crc_answers_with_the_hmac_of_the_token(server: Server) -> None:
    status, body = server.request("GET", "/webhooks/x?crc_token=challenge-123")
    assert status == 200
    assert json.loads(body) == {"response_token": independent_x_signature(X_SECRETS[0], b"challenge-123")}
    assert server.request("GET", "/webhooks/x")[0] == 400


def test_meta_verification_echoes_the_challenge_only_for_the_right_token(server: Server) -> None:
    ok = server.request("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    assert ok == (200, b"1158201444")
    assert server.request("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")[0] == 403
    assert server.request("GET", "/webhooks/meta?hub.mode=unsubscribe&hub.verify_token=verify-me")[0] == 403


def test_signature_helpers_match_an_independent_computation() -> None:
    assert x_signature("k", b"body") == independent_x_signature("k", b"body")
    assert meta_signature("k", b"body") == "sha256=" + hmac.new(b"k", b"body", hashlib.sha256).hexdigest()


# --- deliveries ---------------------------------------------------------------------------------------


def test_signed_x_delivery_is_stored_verbatim_keyed_by_brand(server: Server) -> None:
    body = (FIXTURES / "x" / "tweet_mention.json").read_bytes()
    status, _ = server.request("POST", "/webhooks/x", body, x_headers(body))
    assert status == 200
    [(key, value, headers)] = server.recorder.sent
    assert (key, value) == (b"acme", body)
    assert headers["rapport-format"] == b"x" and headers["rapport-brand"] == b"acme"


def test_rotated_secret_is_accepted_and_wrong_or_missing_signatures_are_401(server: Server) -> None:
    body = (FIXTURES / "x" / "tweet_mention.json").read_bytes()
    assert server.request("POST", "/webhooks/x", body, x_headers(body, X_SECRETS[1]))[0] == 200
    assert server.request("POST", "/webhooks/x", body, x_headers(body, "someone-else"))[0] == 401
    assert server.request("POST", "/webhooks/x", body, JSON)[0] == 401
    assert server.request("POST", "/webhooks/x", body + b" ", x_headers(body))[0] == 401  # body changed
    assert len(server.recorder.sent) == 1


def test_meta_signature_is_hex_and_a_multi_brand_batch_is_stored_once_per_brand(server: Server) -> None:
    one = json.loads((FIXTURES / "meta" / "page_feed_comment.json").read_text())
    other = json.loads(json.dumps(one))
    for entry in other["entry"]:
        entry["id"] = "104830000000002"
    body = json.dumps({"object": "page", "entry": one["entry"] + other["entry"]}).encode()
    assert server.request("POST", "/webhooks/meta", body, meta_headers(body))[0] == 200
    assert sorted((key, headers["rapport-brand"]) for key, _, headers in server.recorder.sent) == [
        (b"acme", b"acme"),
        (b"globex", b"globex"),
    ]
    assert all(value == body for _, value, _ in server.recorder.sent)  # each copy verbatim
    wrong = JSON | {"X-Hub-Signature-256": independent_x_signature(META_SECRETS[0], body)}  # base64, not hex
    assert server.request("POST", "/webhooks/meta", body, wrong)[0] == 401


def test_signed_body_that_does_not_parse_is_accepted_for_the_dead_letter_topic(server: Server) -> None:
    body = b'{"for_user_id": "2244994945", "tweet_create_events": "not a list"'
    assert server.request("POST", "/webhooks/x", body, x_headers(body))[0] == 200
    [(key, value, headers)] = server.recorder.sent
    assert (key, value, headers["rapport-brand"]) == (b"", body, b"")


def test_canonical_endpoint_needs_the_bearer_token(server: Server) -> None:
    body = (FIXTURES / "events" / "interactions.json").read_bytes()
    assert server.request("POST", "/webhooks/events", body, JSON | {"Authorization": "Bearer events-token-1"})[0] == 200
    assert server.request("POST", "/webhooks/events", body, JSON | {"Authorization": "Bearer nope"})[0] == 401
    assert server.request("POST", "/webhooks/events", body, JSON)[0] == 401
    assert len(server.recorder.sent) >= 1
    assert all(headers["rapport-format"] == b"events" for _, _, headers in server.recorder.sent)


def test_limits_413_and_415_produce_nothing(server: Server) -> None:
    big = b'{"x": "' + b"a" * 70_000 + b'"}'
    assert server.request("POST", "/webhooks/x", big, x_headers(big))[0] == 413
    body = (FIXTURES / "x" / "tweet_mention.json").read_bytes()
    assert server.request("POST", "/webhooks/x", body, x_headers(body) | {"Content-Type": "text/plain"})[0] == 415
    assert server.recorder.sent == []


def test_kafka_down_gives_503_so_the_platform_retries(server: Server) -> None:
    server.recorder.fail = True
    body = (FIXTURES / "x" / "tweet_mention.json").read_bytes()
    assert server.request("POST", "/webhooks/x", body, x_headers(body))[0] == 503


# --- properties ---------------------------------------------------------------------------------------

ENDPOINTS = ("/webhooks/x", "/webhooks/meta", "/webhooks/events")
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(ENDPOINTS),
    body=st.one_of(st.binary(max_size=2048), st.binary(min_size=65_000, max_size=70_000)),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
    signature=header_values,
    authorization=header_values,
)
def test_any_request_never_5xx_and_never_produces_without_a_valid_signature(
    server: Server, path: str, body: bytes, content_type: str, signature: str, authorization: str
) -> None:
    server.recorder.sent.clear()
    headers = {
        "Content-Type": content_type,
        "x-twitter-webhooks-signature": signature,
        "X-Hub-Signature-256": signature,
        "Authorization": authorization,
    }
    status, _ = server.request("POST", path, body, headers)
    assert status < 500
    assert server.recorder.sent == [], "an unsigned request produced an event"
    assert status in (401, 413, 415)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=4096), path=st.sampled_from(ENDPOINTS))
def test_any_correctly_signed_body_is_accepted_and_stored_verbatim(server: Server, body: bytes, path: str) -> None:
    server.recorder.sent.clear()
    headers = {
        "/webhooks/x": x_headers(body),
        "/webhooks/meta": meta_headers(body),
        "/webhooks/events": JSON | {"Authorization": f"Bearer {TOKENS[0]}"},
    }[path]
    status, _ = server.request("POST", path, body, headers)
    if path == "/webhooks/x" and body.lstrip()[:1] != b"{":
        # X delivers JSON objects only: a signed non-object could only come from the CRC answer (a forgery)
        assert status == 401 and server.recorder.sent == []
        return
    assert status == 200
    assert server.recorder.sent and all(value == body for _, value, _ in server.recorder.sent)


def test_a_crc_token_that_is_a_json_scalar_cannot_be_posted_as_a_delivery(server: Server) -> None:
    for token in ("123", "-1", "1e5"):
        status, answer = server.request("GET", f"/webhooks/x?crc_token={token}")
        assert status == 200
        signature = json.loads(answer)["response_token"]
        headers = JSON | {"x-twitter-webhooks-signature": signature}
        assert server.request("POST", "/webhooks/x", token.encode(), headers)[0] == 401
    assert server.recorder.sent == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/webhooks/x", "/webhooks/meta"]),
    query=st.dictionaries(
        st.sampled_from(["crc_token", "hub.mode", "hub.verify_token", "hub.challenge", "x"]),
        st.text(max_size=200),
        max_size=4,
    ),
)
def test_verification_endpoints_never_5xx_nor_produce(server: Server, path: str, query: dict[str, str]) -> None:
    from urllib.parse import urlencode

    server.recorder.sent.clear()
    status, _ = server.request("GET", f"{path}?{urlencode(query)}")
    assert status < 500 and server.recorder.sent == []
    if path == "/webhooks/meta" and status == 200:  # only the right token opens the subscription
        assert query.get("hub.verify_token") == "verify-me" and query.get("hub.mode") == "subscribe"
    if path == "/webhooks/x" and status == 200:  # the CRC answer signs only short opaque tokens
        assert re.fullmatch(r"[A-Za-z0-9_\-=+/.]{1,128}", query["crc_token"])
