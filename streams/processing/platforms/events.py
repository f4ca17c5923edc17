"""The ``events`` platform (``POST /webhooks/events``): canonical ``Interaction`` objects as JSON, for any
source without a platform module of its own (pollers, exports). One name for it everywhere: the format
``events``, this module, its route.

Format
------
A body is either a JSON array of canonical interactions or ``{"events": [...]}``; each element must
validate as :class:`schemas.interaction.Interaction` (same field names, ``extra="forbid"``). When the
brands file names any brand, an event whose ``brand`` is not one of them is rejected
(``events[0].brand: 'zeta' is not in the brands file``) and keyed to ``""``; with an empty brands file
every brand is accepted. A rejected element keeps the brand it claims when that brand is acceptable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from schemas.interaction import Interaction, describe_validation_error
from streams.processing.platforms import BrandDirectory, Parsed, Secrets, WebhookPlatform, register
from streams.processing.platforms.common import Convert, FieldError, Pending, brands_with, load_json, parse_with, shown
from streams.processing.platforms.signatures import token_matches

# --- canonical format ------------------------------------------------------------------------------


def parse(body: bytes, brands: BrandDirectory) -> list[Parsed]:
    """A JSON array (or ``{"events": [...]}``) of canonical interactions → one ``Parsed`` per element."""
    return parse_with(_split, body, brands)


def brands_in(body: bytes, brands: BrandDirectory) -> set[str]:
    """The brands :func:`parse` would key this body's events to, without validating them."""
    return brands_with(_split, body, brands)


def _split(body: bytes, brands: BrandDirectory) -> list[Pending]:
    data = load_json(body)
    if isinstance(data, list):
        events, prefix = data, ""
    elif isinstance(data, dict) and "events" in data:
        events, prefix = data["events"], "events"
        if not isinstance(events, list):
            raise FieldError(f"events: expected an array, got {shown(events)}")
    else:
        raise FieldError('body: expected a JSON array of interactions or {"events": [...]}')
    pending = []
    for index, item in enumerate(events):
        path = f"{prefix}[{index}]"
        pending.append(Pending(_claimed_brand(item, brands), item, _validator(item, path, brands)))
    return pending


def _claimed_brand(item: Any, brands: BrandDirectory) -> str:
    brand = item.get("brand") if isinstance(item, dict) else None
    if not isinstance(brand, str) or not 1 <= len(brand) <= 256:
        return ""
    return brand if not brands.brands or brand in brands.brands else ""


def _validator(item: Any, path: str, brands: BrandDirectory) -> Convert:
    def convert() -> Interaction:
        if not isinstance(item, dict):
            raise FieldError(f"{path}: expected an interaction object, got {shown(item)}")
        try:
            event = Interaction.model_validate(item)
        except ValidationError as exc:
            raise FieldError(f"{path}: {describe_validation_error(exc)}") from None
        if brands.brands and event.brand not in brands.brands:
            raise FieldError(f"{path}.brand: {event.brand!r} is not in the brands file")
        return event

    return convert


# --- the webhook: bearer token ----------------------------------------------------------------------


def signed(secrets: Secrets, headers: Mapping[str, str], body: bytes) -> bool:
    """``Authorization: Bearer <token>`` with a configured ``RAPPORT_EVENTS_TOKEN``."""
    auth = headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return token_matches(secrets.get("events_token", ()), bearer)


WEBHOOK = register(WebhookPlatform("events", parse, brands_in, ("events_token",), signed))
