"""A platform is one module and one registration (streams/processing/platforms/__init__.py): a made-up
platform registered here, with nothing else changed, is served by the edge at /webhooks/<name> (handshake
and signed deliveries, over real HTTP) and parsed by the worker's pipeline."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import orjson
import pytest

from schemas.interaction import Interaction
from streams.processing import platforms
from streams.processing.pipeline import DictState, Options, process_message
from streams.processing.platforms import (
    WEBHOOK_PLATFORMS,
    Answer,
    BrandDirectory,
    Parsed,
    Secrets,
    WebhookPlatform,
    register,
    secret_settings,
)
from streams.processing.records import HEADER_FORMAT, RawMessage, is_webhook_format
from streams.web.edge import Edge, build_app
from tests.support.aiohttp_server import request, serve

SECRET = "chat-secret"


# --- the whole platform module: parser, brand lookup, signature, handshake, registration -----------------


def parse(body: bytes, brands: BrandDirectory) -> list[Parsed]:
    data = orjson.loads(body)
    event = Interaction(
        event_id=f"chat:{data['id']}",
        platform="chat",
        brand=data["brand"],
        author_id=data["from"],
        direction="inbound",
        kind="direct_message",
        text=data["text"],
        created_at="2026-01-05T10:00:00Z",
    )
    return [Parsed(data["brand"], body, event)]


def brands_in(body: bytes, brands: BrandDirectory) -> set[str]:
    return {orjson.loads(body)["brand"]}


def signed(secrets: Secrets, headers: Mapping[str, str], body: bytes) -> bool:
    return headers.get("x-chat-token") in secrets.get("chat_secret", ())


def ping(secrets: Secrets, query: Mapping[str, str]) -> Answer:
    return 200, query.get("challenge", "")


# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def chat() -> Iterator[WebhookPlatform]:
    platform = register(WebhookPlatform("chat", parse, brands_in, ("chat_secret",), signed, ping))
    try:
        yield platform
    finally:
        del WEBHOOK_PLATFORMS["chat"]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes, dict[str, bytes]]] = []

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((key, value, dict(headers)))


def test_a_registered_platform_is_served_verified_and_parsed(chat: WebhookPlatform) -> None:
    assert "chat_secret" in secret_settings() and is_webhook_format("chat")
    recorder = Recorder()
    edge = Edge({"chat_secret": (SECRET,)}, platforms.EMPTY_DIRECTORY, recorder.publish)
    body = orjson.dumps({"id": 7, "brand": "acme", "from": "c1", "text": "is my order lost?"})
    json = {"Content-Type": "application/json"}
    with serve(build_app(edge)) as port:
        assert request(port, "GET", "/webhooks/chat?challenge=abc") == (200, b"abc")
        assert request(port, "POST", "/webhooks/chat", body, json)[0] == 401  # unsigned
        assert request(port, "POST", "/webhooks/chat", body, json | {"x-chat-token": "wrong"})[0] == 401
        assert recorder.sent == []
        assert request(port, "POST", "/webhooks/chat", body, json | {"x-chat-token": SECRET})[0] == 200
    [(key, value, headers)] = recorder.sent
    assert (key, value, headers[HEADER_FORMAT]) == (b"acme", body, b"chat")

    result = process_message(RawMessage(value, "chat", "acme"), DictState(), lambda text: 0.0, 0.0, Options())
    assert [(row["event_id"], row["brand"], row["kind"]) for row in result.interactions] == [
        ("chat:7", "acme", "direct_message")
    ]
    assert result.dead_letters == []


def test_the_three_platforms_are_registered_once_each() -> None:
    assert list(WEBHOOK_PLATFORMS) == ["x", "meta", "events"]
    assert secret_settings() == ("x_consumer_secret", "meta_app_secret", "meta_verify_token", "events_token")
    with pytest.raises(ValueError, match="registered twice"):
        register(WEBHOOK_PLATFORMS["x"])
