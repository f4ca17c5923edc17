"""The building blocks every platform parser shares (:mod:`.x`, :mod:`.meta`, :mod:`.canonical`).

Every parser works in two steps, so that :func:`brands_in` (the HTTP edge's cheap key lookup) and
:func:`parse` cannot disagree:

1. a *splitter* turns the body into :class:`Pending` events: the brand each belongs to, the event
   object (re-serialised with ``orjson`` as ``Parsed.original``) and a ``convert`` thunk. Splitting
   only looks at envelopes and account ids.
2. ``parse`` runs each thunk. A thunk raises :class:`FieldError` (message = ``path: problem``) for
   data it cannot use; that message becomes the event's rejection reason.

Neither step ever raises: a body that does not split becomes one rejection of the whole body (brand
``""``), and an unexpected exception inside a thunk becomes ``internal error: …`` for that event only
(a bug in a parser must dead-letter an event, not stop the stream).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import orjson
from pydantic import ValidationError

from schemas.interaction import EARLIEST, LATEST, Interaction, describe_validation_error
from streams.processing.platforms import BrandDirectory, Parsed

# --- shared building blocks -----------------------------------------------------------------------


class FieldError(ValueError):
    """Data a parser cannot use; the message is the rejection reason and starts with the field path."""


Convert = Callable[[], Interaction]


@dataclass(frozen=True)
class Pending:
    """One event found in a body: its brand is known, its conversion has not run yet.

    ``event`` is the event's JSON value; it is re-serialised (``Parsed.original``) only when parsed, so
    :func:`brands_with` costs no serialisation. ``raw`` replaces it for a body that does not split.
    """

    brand: str
    event: Any
    convert: Convert
    raw: bytes | None = None

    @property
    def original(self) -> bytes:
        return self.raw if self.raw is not None else dumps(self.event)

    def parsed(self) -> Parsed:
        result: Interaction | str
        try:
            result = self.convert()
        except FieldError as exc:
            result = one_line(str(exc))
        except Exception as exc:  # a parser bug dead-letters this event instead of stopping the stream
            result = one_line(f"internal error: {type(exc).__name__}: {exc}")
        return Parsed(self.brand, self.original, result)


def rejected(brand: str, event: Any, reason: str, *, raw: bytes | None = None) -> Pending:
    """An event that is rejected whatever its content (unknown account, unsupported type, …)."""
    return Pending(brand, event, failing(reason), raw)


def failing(reason: str) -> Convert:
    """A conversion that always rejects with ``reason``."""

    def convert() -> Interaction:
        raise FieldError(reason)

    return convert


Splitter = Callable[[bytes, BrandDirectory], list[Pending]]


@dataclass(frozen=True)
class Subscription:
    """The brand account an event was delivered for (X's ``for_user_id``, a Meta ``entry.id``), and why
    it cannot be used (``problem``): events of an unusable account are rejected with that reason."""

    platform: str
    id: str
    brand: str
    brands: BrandDirectory
    problem: str | None

    @classmethod
    def resolve(cls, platform: str, value: Any, path: str, brands: BrandDirectory) -> Subscription:
        if value is None:
            return cls(platform, "", "", brands, f"{path}: missing")
        if isinstance(value, bool) or not isinstance(value, str | int):
            return cls(platform, "", "", brands, f"{path}: expected an account id, got {shown(value)}")
        account = str(value)
        brand = brands.brand_for(platform, account) or ""
        problem = None if brand else f"{path}: account {shown_id(account)} is not in the brands file"
        return cls(platform, account, brand, brands, problem)

    def is_brand(self, user_id: str | None) -> bool:
        """The subscribed account or another account of the same brand on this platform."""
        return user_id is not None and (
            user_id == self.id or self.brands.is_account_of(self.brand, self.platform, user_id)
        )

    def addressee(self, user_id: str | None) -> str | None:
        """The customer an outbound event is addressed to: None when it is the brand itself."""
        return None if self.is_brand(user_id) else user_id

    def event(self, event: Any, convert: Convert) -> Pending:
        """``event`` of this account: rejected with the account's problem, if any, whatever its content."""
        if self.problem:
            return rejected("", event, self.problem)
        return Pending(self.brand, event, convert)


def split_safely(split: Splitter, body: bytes, brands: BrandDirectory) -> list[Pending]:
    try:
        return split(body, brands)
    except FieldError as exc:
        return [rejected("", None, str(exc), raw=bytes(body))]
    except Exception as exc:  # never raise: the whole body is dead-lettered with the reason
        return [rejected("", None, f"internal error: {type(exc).__name__}: {exc}", raw=bytes(body))]


def parse_with(split: Splitter, body: bytes, brands: BrandDirectory) -> list[Parsed]:
    return [event.parsed() for event in split_safely(split, body, brands)]


def brands_with(split: Splitter, body: bytes, brands: BrandDirectory) -> set[str]:
    return {event.brand for event in split_safely(split, body, brands)}


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FieldError(f"body: not JSON ({exc})") from None


TOO_DEEP = b'"(event nested too deeply to re-serialise)"'


def dumps(value: Any) -> bytes:
    """An event object's bytes, as kept with its ``Parsed``: compact JSON, keys in their original order.

    orjson refuses nesting deeper than 254 levels (its parser accepts 1024): the standard library takes
    over, and past Python's recursion limit a placeholder is kept instead of the event.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        pass
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    except (RecursionError, TypeError, ValueError):
        return TOO_DEEP


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


_PLAIN = re.compile(r"^[\w.:-]{1,64}$")


def shown_id(value: str) -> str:
    """An account id for a message: as it is when plain (``123``), else quoted and shortened."""
    return value if _PLAIN.match(value) else shown(value)


def shown(value: Any) -> str:
    """A value for a message: quoted and shortened (``'yesterday'``, ``12.5``, ``an object``)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build(path: str, **fields: Any) -> Interaction:
    """The ``Interaction`` a parser mapped, or :class:`FieldError` naming the event and the field."""
    try:
        return Interaction(**fields)
    except ValidationError as exc:
        raise FieldError(f"{path}: {describe_validation_error(exc)}") from None


class Node:
    """A JSON object being read, with its path for messages (``entry[0].changes[1].value``).

    Readers raise :class:`FieldError` (``path.key: problem``) when a field is missing or of the wrong
    type. Ids are accepted as strings or integers (X sends both) and always returned as strings.
    """

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise FieldError(f"{path}: expected an object, got {shown(data)}")
        self.data: dict[str, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise FieldError(f"{self.at(key)}: {problem}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def node(self, key: str) -> Node:
        if self.data.get(key) is None:
            self.fail(key, "missing")
        return Node(self.data[key], self.at(key))

    def opt_node(self, key: str) -> Node | None:
        return self.node(key) if self.has(key) else None

    def opt_id(self, *keys: str) -> str | None:
        """The first of ``keys`` present (e.g. ``"id_str", "id"``), as a string."""
        for key in keys:
            value = self.data.get(key)
            if value is None:
                continue
            if isinstance(value, str) and value.strip() and len(value) <= 200:
                return value
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return str(value)
            self.fail(key, f"expected an id, got {shown(value)}")
        return None

    def id(self, *keys: str) -> str:
        value = self.opt_id(*keys)
        if value is None:
            self.fail(keys[0], "missing")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        self.fail(key, f"expected a string, got {shown(value)}")

    def text(self, key: str) -> str:
        value = self.opt_text(key)
        if value is None:
            self.fail(key, "missing")
        return value

    def opt_count(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"\d{1,19}", value):  # counts sent as digit strings
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
            return value
        self.fail(key, f"expected a count (integer >= 0), got {shown(value)}")


def lookup(data: Any, *keys: str | int) -> Any:
    """``data[k1][k2]…`` or None when any step is missing or of the wrong type (for optional enrichment)."""
    for key in keys:
        if isinstance(key, str) and isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(key, int) and isinstance(data, list) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


# --- times -----------------------------------------------------------------------------------------


def in_range(value: datetime, path: str) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise FieldError(f"{path}: {value.isoformat()} is out of range ({EARLIEST:%Y}–{LATEST:%Y})")
    return value


def from_unix(value: Any, path: str, *, unit: float) -> datetime:
    """Unix time in seconds (``unit=1``) or milliseconds (``unit=1000``), as a number or a digit string."""
    number = value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value):
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise FieldError(f"{path}: expected a Unix time, got {shown(value)}")
    try:
        moment = datetime.fromtimestamp(number / unit, UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldError(f"{path}: {shown(value)} is out of range") from None
    return in_range(moment, path)


def from_iso(value: Any, path: str) -> datetime:
    """ISO 8601 with an offset: ``2024-01-01T12:00:00+0000``, ``2026-07-24T21:05:48.000Z``."""
    if not isinstance(value, str):
        raise FieldError(f"{path}: expected an ISO 8601 date, got {shown(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(f"{path}: expected an ISO 8601 date, got {shown(value)}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise FieldError(f"{path}: {shown(value)} has no timezone offset")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise FieldError(f"{path}: {shown(value)} is out of range") from None
    return in_range(moment, path)
