"""Signatures and tokens of webhook deliveries (pure): each platform's HMAC, compared in constant time
against every configured secret, so secrets can be rotated (old and new accepted at once)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence

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
