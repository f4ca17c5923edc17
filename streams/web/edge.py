"""The ingestion edge: platform webhooks on the worker's web server, feeding the raw topic.

Endpoints (aiohttp handlers; ``streams/worker/app.py`` mounts them on Faust's web server):

- ``GET  /webhooks/x?crc_token=T``  → ``{"response_token": "sha256=" + base64(HMAC-SHA256(secret, T))}``,
  only for a ``T`` of 1 to 128 characters of ``A-Z a-z 0-9 _ - = + / .`` (else 400, nothing signed)
- ``POST /webhooks/x``              header ``x-twitter-webhooks-signature: sha256=<base64 HMAC of the body>``
- ``GET  /webhooks/meta?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C`` → ``C`` when V matches, else 403
- ``POST /webhooks/meta``           header ``X-Hub-Signature-256: sha256=<hex HMAC of the body>``
- ``POST /webhooks/events``         header ``Authorization: Bearer <token>``: a JSON batch of canonical events

What a platform can rely on:

- ``200`` only after the raw body is acknowledged by Kafka (``acks=all``): a 200 means it cannot be lost.
  The body is stored verbatim; parsing happens in the worker, so a parser bug can be fixed and the raw
  topic replayed. A correctly signed body that does not parse still gets 200 (the platform stops
  retrying) and reaches the dead-letter topic with the reason and the original bytes.
- Missing/wrong signature → 401, nothing produced. Body over ``RAPPORT_WEBHOOK_MAX_BYTES`` → 413.
  Content type other than JSON → 415. Kafka unavailable → 503 (the platform retries later). A body not
  received within ``read_timeout`` seconds of the headers (``RAPPORT_WEBHOOK_READ_TIMEOUT``) → 408 and
  the connection is closed at once, nothing produced: a client trickling its body holds no connection.
- Signatures are compared in constant time (``hmac.compare_digest``) against every configured secret,
  so secrets can be rotated (old and new accepted at once). A header that is not UTF-8 (aiohttp hands it
  over as lone surrogates) compares as unequal like any other wrong value: 401/403, never a 500.
- The X CRC answer is the very HMAC that signs X deliveries, so it is a signing oracle for whatever it is
  given. X documents ``crc_token`` only as an opaque challenge string, so the edge signs only short
  opaque tokens (``CRC_TOKEN``: 1 to 128 characters of ``A-Z a-z 0-9 _ - = + / .``: the base64 and
  base64url alphabets, plus ``.``). A JSON object or array starts with ``{`` or ``[``, so no delivery
  body can ever be signed through it; any other token gets 400 without a signature.
- A body whose events belong to several brands (a Meta batch for several pages) is produced once per
  brand, keyed by that brand, with header ``rapport-brand``: each copy is verbatim, and the worker
  owning that brand's partition parses only that brand's events. Unknown accounts go with key ``""``
  and are dead-lettered by the worker ("… is not in the brands file").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from streams.processing.platforms import WEBHOOK_PLATFORMS, BrandDirectory, Secrets, WebhookPlatform
from streams.processing.records import HEADER_BRAND, HEADER_FORMAT, HEADER_RECEIVED_AT

log = logging.getLogger("rapport.edge")

#: publish(key, value, headers) returns once the broker acknowledged the message.
Publish = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


# --- the edge ---------------------------------------------------------------------------------------


@dataclass
class EdgeCounters:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    messages: int = 0  # raw messages produced (one per brand of an accepted body)


@dataclass
class Edge:
    """The webhook routes of every registered platform (``streams.processing.platforms.WEBHOOK_PLATFORMS``):
    ``GET /webhooks/<name>`` for its handshake, ``POST /webhooks/<name>`` for its deliveries."""

    secrets: Secrets  # the values of each platform's secret settings, by setting name
    brands: BrandDirectory
    publish: Publish
    max_bytes: int = 1024 * 1024
    read_timeout: float = 10.0  # seconds to receive a request's body, from the end of its headers (408 after)
    counters: EdgeCounters = field(default_factory=EdgeCounters)

    def routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        out: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []
        for platform in WEBHOOK_PLATFORMS.values():
            path = f"/webhooks/{platform.name}"
            if platform.handshake is not None:
                out.append(("GET", path, self._handshake_handler(platform)))
            out.append(("POST", path, self._delivery_handler(platform)))
        return out

    def _handshake_handler(self, platform: WebhookPlatform) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handshake(request: web.Request) -> web.StreamResponse:
            assert platform.handshake is not None
            status, answer = platform.handshake(self.secrets, request.query)
            if isinstance(answer, dict):
                return web.json_response(answer, status=status)
            return web.Response(text=answer, status=status, content_type="text/plain")

        return handshake

    def _delivery_handler(self, platform: WebhookPlatform) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def deliver(request: web.Request) -> web.StreamResponse:
            return await self._deliver(request, platform)

        return deliver

    async def _deliver(self, request: web.Request, platform: WebhookPlatform) -> web.StreamResponse:
        self.counters.requests += 1
        response = await self._check_and_read(request)
        if isinstance(response, web.StreamResponse):
            self.counters.rejected += 1
            return response
        body = response
        if not platform.signed(self.secrets, request.headers, body):
            self.counters.rejected += 1
            return _error(401, "missing or invalid signature")
        keys: set[str] = platform.brands_in(body, self.brands)
        received = str(int(time.time() * 1000)).encode()
        try:
            for brand in sorted(keys) or [""]:
                headers = [
                    (HEADER_FORMAT, platform.name.encode()),
                    (HEADER_BRAND, brand.encode()),
                    (HEADER_RECEIVED_AT, received),
                ]
                await self.publish(brand.encode(), body, headers)
                self.counters.messages += 1
        except Exception as exc:  # the platform will retry: nothing was acknowledged to it
            log.error("could not store a %s webhook in Kafka: %s", platform.name, exc)
            return _error(503, "temporarily unable to store the event; retry later")
        self.counters.accepted += 1
        return web.json_response({"accepted": True})

    async def _check_and_read(self, request: web.Request) -> bytes | web.StreamResponse:
        """The body, or the error response (already sent, connection closed, when it is 408)."""
        if request.content_length is not None and request.content_length > self.max_bytes:
            return _error(413, f"body over {self.max_bytes} bytes")
        if request.content_type not in ("application/json", "text/json") and not request.content_type.endswith("+json"):
            return _error(415, "content type must be application/json")
        try:
            async with asyncio.timeout(self.read_timeout):  # the whole body, however slowly it trickles in
                return await self._read_body(request)
        except TimeoutError:  # 408, and the connection closed: its remaining bytes are not waited for
            return await _answer_and_close(
                request, _error(408, f"the body was not received within {self.read_timeout:g} s")
            )

    async def _read_body(self, request: web.Request) -> bytes | web.StreamResponse:
        try:
            body = await request.content.read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                return _error(413, f"body over {self.max_bytes} bytes")
            # drain what a lying Content-Length left unread, bounded by the limit above
            while len(body) <= self.max_bytes and not request.content.at_eof():
                chunk = await request.content.read(self.max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            if len(body) > self.max_bytes:
                return _error(413, f"body over {self.max_bytes} bytes")
        except (web.HTTPException, ConnectionError, ValueError) as exc:
            return _error(400, f"could not read the body: {type(exc).__name__}")
        return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send ``response``, then close the connection at once.

    Returned normally, a response to a request whose body is unread makes aiohttp keep reading ("lingering
    close", up to ``lingering_time``, 10 s) before it closes: a client that trickles its body would hold the
    connection that much longer. Closing the protocol after the response is written ends it now.
    """
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:  # the client is gone already: nothing to answer
        pass
    request.protocol.force_close()
    return response


def build_app(edge: Edge) -> web.Application:
    """A standalone aiohttp application with the edge's routes (tests, benchmarks)."""
    app = web.Application(client_max_size=edge.max_bytes * 2)
    for method, path, handler in edge.routes():
        app.router.add_route(method, path, handler)
    return app
