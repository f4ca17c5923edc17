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
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType

from aiohttp import web

from streams.processing.platforms import BrandDirectory
from streams.processing.records import HEADER_BRAND, HEADER_FORMAT, HEADER_RECEIVED_AT

log = logging.getLogger("rapport.edge")

#: publish(key, value, headers) returns once the broker acknowledged the message.
Publish = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


# --- signatures (pure) ------------------------------------------------------------------------------

#: The only CRC tokens signed. X's CRC answer is the same HMAC as its delivery signature, so signing any
#: text would sign forged deliveries; an opaque token of this alphabet can never be a JSON object or
#: array (no ``{``, ``[``, ``"``, ``:``, ``,`` or whitespace), so its signature never verifies an event.
CRC_TOKEN = re.compile(r"[A-Za-z0-9_\-=+/.]{1,128}")


def crc_token_allowed(token: str) -> bool:
    """True for a token the CRC answer may sign: 1 to 128 characters of ``A-Z a-z 0-9 _ - = + / .``."""
    return CRC_TOKEN.fullmatch(token) is not None


def x_signature(secret: str, payload: bytes) -> str:
    """X's signature of a body or CRC token: ``sha256=`` + base64(HMAC-SHA256(consumer secret, payload))."""
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def meta_signature(secret: str, payload: bytes) -> str:
    """Meta's ``X-Hub-Signature-256``: ``sha256=`` + hex(HMAC-SHA256(app secret, body))."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signature_matches(
    sign: Callable[[str, bytes], str], secrets: Sequence[str], header: str | None, body: bytes
) -> bool:
    """True when ``header`` is the signature of ``body`` under any of ``secrets`` (constant time per secret)."""
    if not header or not secrets:
        return False
    given = _comparable(header.strip())
    matched = False
    for secret in secrets:  # no early exit: the time does not tell which secret matched
        matched |= hmac.compare_digest(_comparable(sign(secret, body)), given)
    return matched


def token_matches(tokens: Sequence[str], given: str | None) -> bool:
    """True when ``given`` equals one of ``tokens`` (constant time per token; any text, even undecodable)."""
    if not given or not tokens:
        return False
    wanted = _comparable(given)
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(_comparable(token), wanted)
    return matched


def _comparable(text: str) -> bytes:
    """``text`` as bytes for ``hmac.compare_digest``, whatever it holds.

    aiohttp decodes header bytes that are not UTF-8 into lone surrogates (``surrogateescape``), on which
    a plain ``.encode()`` raises (a 500 with a traceback, instead of a 401). ``surrogatepass``
    encodes every str, and two strs give the same bytes only when they are equal: the comparison stays
    exact, and ``compare_digest`` on bytes takes any byte (on str it refuses non-ASCII).
    """
    return text.encode("utf-8", "surrogatepass")


# --- the edge ---------------------------------------------------------------------------------------


@dataclass
class EdgeCounters:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    messages: int = 0  # raw messages produced (one per brand of an accepted body)


@dataclass
class Edge:
    x_secrets: Sequence[str]
    meta_secrets: Sequence[str]
    meta_verify_tokens: Sequence[str]
    events_tokens: Sequence[str]
    brands: BrandDirectory
    publish: Publish
    max_bytes: int = 1024 * 1024
    read_timeout: float = 10.0  # seconds to receive a request's body, from the end of its headers (408 after)
    counters: EdgeCounters = field(default_factory=EdgeCounters)

    def routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        return [
            ("GET", "/webhooks/x", self.x_crc),
            ("POST", "/webhooks/x", self.x_post),
            ("GET", "/webhooks/meta", self.meta_verify),
            ("POST", "/webhooks/meta", self.meta_post),
            ("POST", "/webhooks/events", self.events_post),
        ]

    # --- verification handshakes ---

    async def x_crc(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("crc_token")
        if not token:
            return _error(400, "crc_token is required")
        if not crc_token_allowed(token):  # never sign what could be a delivery body: see CRC_TOKEN
            return _error(400, "crc_token must be 1 to 128 characters of A-Z a-z 0-9 _ - = + / .")
        if not self.x_secrets:
            return _error(503, "X webhooks are not configured (RAPPORT_X_CONSUMER_SECRET)")
        # the CRC is answered with the current (first) secret
        return web.json_response({"response_token": x_signature(self.x_secrets[0], token.encode())})

    async def meta_verify(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("hub.mode") != "subscribe" or not token_matches(
            self.meta_verify_tokens, request.query.get("hub.verify_token")
        ):
            return _error(403, "verification failed")
        return web.Response(text=request.query.get("hub.challenge", ""), content_type="text/plain")

    # --- deliveries ---

    async def x_post(self, request: web.Request) -> web.StreamResponse:
        from streams.processing.platforms import x

        return await self._deliver(
            request,
            "x",
            x,
            # X delivers JSON objects. Anything else is refused before the signature is looked at: a CRC
            # token (which the CRC answer signs) can be a bare JSON scalar such as 123, never an object
            lambda body: (
                body.lstrip()[:1] == b"{"
                and signature_matches(
                    x_signature, self.x_secrets, request.headers.get("x-twitter-webhooks-signature"), body
                )
            ),
        )

    async def meta_post(self, request: web.Request) -> web.StreamResponse:
        from streams.processing.platforms import meta

        return await self._deliver(
            request,
            "meta",
            meta,
            lambda body: signature_matches(
                meta_signature, self.meta_secrets, request.headers.get("x-hub-signature-256"), body
            ),
        )

    async def events_post(self, request: web.Request) -> web.StreamResponse:
        from streams.processing.platforms import canonical

        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        return await self._deliver(request, "events", canonical, lambda body: token_matches(self.events_tokens, bearer))

    async def _deliver(
        self, request: web.Request, fmt: str, parser: ModuleType, verified: Callable[[bytes], bool]
    ) -> web.StreamResponse:
        self.counters.requests += 1
        response = await self._check_and_read(request)
        if isinstance(response, web.StreamResponse):
            self.counters.rejected += 1
            return response
        body = response
        if not verified(body):
            self.counters.rejected += 1
            return _error(401, "missing or invalid signature")
        keys: set[str] = parser.brands_in(body, self.brands)
        received = str(int(time.time() * 1000)).encode()
        try:
            for brand in sorted(keys) or [""]:
                headers = [
                    (HEADER_FORMAT, fmt.encode()),
                    (HEADER_BRAND, brand.encode()),
                    (HEADER_RECEIVED_AT, received),
                ]
                await self.publish(brand.encode(), body, headers)
                self.counters.messages += 1
        except Exception as exc:  # the platform will retry: nothing was acknowledged to it
            log.error("could not store a %s webhook in Kafka: %s", fmt, exc)
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
