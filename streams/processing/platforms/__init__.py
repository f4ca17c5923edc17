"""Platform webhook payloads → canonical ``Interaction``s (pure; no HTTP, no Kafka).

**A platform is one module and one registration.** Its module (``x.py``, ``meta.py``, ``events.py``)
holds its parser, its brand lookup, its signature check and its verification handshake, and hands them
to :func:`register` as one :class:`WebhookPlatform`; the import line at the end of this file loads it.
From that registration the edge serves ``/webhooks/<name>`` (``streams/web/edge.py``), the worker parses
raw messages of that format (``streams/processing/pipeline.py``) and lists it among the webhook formats
(``streams/processing/records.py``). Its secrets are ``RAPPORT_*`` settings (``streams/settings.py``
declares each field; the registration names the ones it reads).

A webhook body is kept verbatim in the raw topic; these parsers run in the worker. Each returns one
:class:`Parsed` per event found in the body: the brand it belongs to (``""`` when the platform account is
not in the brands file) and either an ``Interaction`` or the reason it was rejected, with the event's
own bytes (the event object re-serialised; the whole body when it does not parse at all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schemas.interaction import Interaction
from streams.processing.care import DEFAULT_POLICY, CarePolicy

PLATFORMS = ("x", "facebook", "instagram")


class BrandsFileError(ValueError):
    pass


@dataclass(frozen=True)
class Parsed:
    brand: str
    original: bytes
    result: Interaction | str

    @property
    def ok(self) -> bool:
        return isinstance(self.result, Interaction)


@dataclass(frozen=True)
class BrandDirectory:
    """Which brand each platform account id belongs to, and each brand's care policy (``RAPPORT_BRANDS_FILE``)."""

    accounts: Mapping[str, Mapping[str, frozenset[str]]]  # brand -> platform -> account ids
    policies: Mapping[str, CarePolicy] = field(default_factory=dict)  # brand -> SLA windows, business hours

    def policy(self, brand: str) -> CarePolicy:
        """The brand's care policy (``care:`` in the brands file), else the default (SLA windows 1 h and 24 h)."""
        return self.policies.get(brand, DEFAULT_POLICY)

    def brand_for(self, platform: str, account_id: str | int | None) -> str | None:
        if account_id is None:
            return None
        account = str(account_id)
        for brand, platforms in self.accounts.items():
            if account in platforms.get(platform, ()):
                return brand
        return None

    def is_account_of(self, brand: str, platform: str, account_id: str | int | None) -> bool:
        return account_id is not None and str(account_id) in self.accounts.get(brand, {}).get(platform, ())

    @property
    def brands(self) -> frozenset[str]:
        return frozenset(self.accounts)

    @classmethod
    def from_mapping(cls, data: Any) -> BrandDirectory:
        """``{"brands": {"acme": {"x": ["2244994945"], "facebook": [...], "instagram": [...],
        "care": {"sla": ["1h", "24h"], "business_hours": {"timezone": "Europe/Paris", "days": "mon-fri",
        "hours": "09:00-18:00"}}}}}`` (``care`` is optional: see ``streams/processing/care.py``)."""
        if not isinstance(data, dict) or not isinstance(data.get("brands"), dict):
            raise BrandsFileError('expected {"brands": {BRAND: {PLATFORM: [ACCOUNT_ID, ...]}}}')
        accounts: dict[str, dict[str, frozenset[str]]] = {}
        policies: dict[str, CarePolicy] = {}
        owner: dict[tuple[str, str], str] = {}
        for brand, platforms in data["brands"].items():
            if not isinstance(platforms, dict):
                raise BrandsFileError(f"brands.{brand}: expected a mapping of platform to account ids")
            accounts[str(brand)] = {}
            for platform, ids in platforms.items():
                if platform == "care":
                    try:
                        policies[str(brand)] = CarePolicy.from_mapping(ids)
                    except ValueError as exc:
                        raise BrandsFileError(f"brands.{brand}.care: {exc}") from exc
                    continue
                if platform not in PLATFORMS:
                    raise BrandsFileError(f"brands.{brand}.{platform}: unknown platform (use {', '.join(PLATFORMS)})")
                if not isinstance(ids, list) or not ids:
                    raise BrandsFileError(f"brands.{brand}.{platform}: expected a non-empty list of account ids")
                for account in map(str, ids):
                    if (platform, account) in owner and owner[(platform, account)] != brand:
                        other = owner[(platform, account)]
                        raise BrandsFileError(
                            f"brands.{brand}.{platform}: account {account} already belongs to {other}"
                        )
                    owner[(platform, account)] = str(brand)
                accounts[str(brand)][platform] = frozenset(map(str, ids))
        return cls(accounts, policies)

    @classmethod
    def from_file(cls, path: Path) -> BrandDirectory:
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError as exc:
            raise BrandsFileError(f"brands file {path} not found") from exc
        except yaml.YAMLError as exc:
            raise BrandsFileError(f"brands file {path}: not YAML/JSON: {exc}") from exc
        try:
            return cls.from_mapping(data)
        except BrandsFileError as exc:
            raise BrandsFileError(f"brands file {path}: {exc}") from exc


EMPTY_DIRECTORY = BrandDirectory({})


# --- webhook platforms ------------------------------------------------------------------------------

#: The values of the secret settings, by setting name (``{"x_consumer_secret": ["s1", "s0"], …}``).
Secrets = Mapping[str, Sequence[str]]
#: An HTTP answer of a handshake: the status and a JSON object (a dict) or a plain text (a str).
Answer = tuple[int, dict[str, Any] | str]


@dataclass(frozen=True)
class WebhookPlatform:
    """Everything Rapport knows of one webhook source (see the module's docstring)."""

    name: str  # the raw messages' format and the edge's path, /webhooks/<name>
    parse: Callable[[bytes, BrandDirectory], list[Parsed]]
    brands_in: Callable[[bytes, BrandDirectory], set[str]]
    settings: tuple[str, ...]  # the secret settings it reads (fields of streams.settings.Settings)
    signed: Callable[[Secrets, Mapping[str, str], bytes], bool]  # (secrets, request headers, body) → verified?
    handshake: Callable[[Secrets, Mapping[str, str]], Answer] | None = None  # GET /webhooks/<name>: query → answer


WEBHOOK_PLATFORMS: dict[str, WebhookPlatform] = {}


def register(platform: WebhookPlatform) -> WebhookPlatform:
    if platform.name in WEBHOOK_PLATFORMS:
        raise ValueError(f"webhook platform {platform.name!r} registered twice")
    WEBHOOK_PLATFORMS[platform.name] = platform
    return platform


def secret_settings() -> tuple[str, ...]:
    """Every secret setting a registered platform reads, once each."""
    return tuple(dict.fromkeys(name for p in WEBHOOK_PLATFORMS.values() for name in p.settings))


# the registrations: each module calls register() when it is imported
from streams.processing.platforms import x, meta, events  # noqa: E402, F401, I001 - order = route order
