"""Meta Graph API webhooks (Facebook Pages, Instagram) → ``Interaction``s.

A body is ``{"object": "page" | "instagram", "entry": [...]}`` (a JSON array of such notifications is
accepted too: Meta's Instagram examples show one). Each ``entry`` is one account: ``entry.id`` is the
Page id (platform ``facebook``) or the Instagram professional account id (platform ``instagram``) →
brand via ``brands.brand_for(platform, entry.id)``; ``entry.time`` is when Meta sent it (Unix seconds;
values of 10^11 and more are taken as milliseconds, which Meta uses for messaging entries). Each
``entry.changes[j]`` ``{field, value}`` is one event; its ``original`` is that change object. Instagram
Login delivers ``field``/``value`` directly on the entry (no ``changes``): read as one change.

An entry whose account is not in the brands file → ``Parsed("", change, "entry[0].id: account … is not
in the brands file")`` for each of its events. ``entry.messaging`` items (Messenger and Instagram
direct messages) → "unsupported field". Any other field → "unsupported field".

"The brand" below means ``entry.id`` or any other account of the same brand on that platform.

Facebook Page ``feed`` (``value``)
---------------------------------
=========================  ==============================================================================
value field                Interaction field
=========================  ==============================================================================
``from.id``                ``author_id`` (older payloads: ``sender_id``); outbound when it is the brand
``from.name``              ``author_handle`` (``sender_name``)
``item``                   ``comment`` → kind ``comment`` when ``parent_id`` is the post (or absent),
                           else ``reply``; ``status``/``post``/``photo``/``video`` → ``post``;
                           ``reaction``/``like`` → ``reaction``; ``share`` → ``share``
``comment_id``             comment: ``event_id = "facebook:" + comment_id``
``post_id``                post: ``event_id = "facebook:" + post_id``; ``conversation_id`` of all but shares
``parent_id``              comment: ``parent_id = "facebook:" + (parent_id or post_id)``
``message``                ``text`` (None for reactions)
``created_time``           ``created_at``: Unix seconds or ISO 8601 (``2024-01-01T12:00:00+0000``);
                           ``entry.time`` when absent
``verb``                   ``add`` → the original; ``edited``/``edit``/``unhide`` → same event_id, new
                           text, ``updated_at = entry.time``; ``remove``/``delete``/``hide`` →
                           ``deleted=True``, no text, ``updated_at = entry.time``; others rejected
=========================  ==============================================================================

Reactions: ``event_id = facebook:reaction:<comment_id or post_id>:<from.id>`` (one reaction per person
and object, so a changed or removed reaction is a new version of it; Meta's parallel ``like`` item for
the same click lands on the same id), ``parent_id`` = the reacted object. Shares: ``event_id =
facebook:share:<share_id or post_id>:<from.id>`` and no parent (the payload does not say unambiguously
which post was shared), text = ``message``. ``customer_id``: inbound → the author; outbound → None (the
addressee of a Page's reply is not in the payload; the pipeline has no way to tell either).

Instagram
---------
``comments`` / ``live_comments`` (value ``{id, text, from{id, username}, media{id, media_product_type},
parent_id?}``) → kind ``comment`` (``reply`` when ``parent_id``), ``event_id = "instagram:" + id``,
``parent_id = "instagram:" + (parent_id or media.id)``, ``conversation_id = "instagram:" + media.id``,
``created_at = entry.time`` (the value has no timestamp). Comments are never edited on Instagram and
their removal is not notified.

``mentions`` (value ``{media_id, comment_id?}``: someone @mentioned the account in a comment or a
caption) → kind ``mention``, inbound, ``event_id = "instagram:" + (comment_id or media_id)``, parent =
the media for a comment mention, ``created_at = entry.time``. The payload names neither the author nor
the text: ``author_id`` (and so the customer) is ``"unknown"`` and ``text`` None; fetching them needs
the Graph API (``GET /{ig-user-id}?fields=mentioned_comment…``), which a pure parser cannot call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.interaction import Interaction
from streams.processing.platforms import Answer, BrandDirectory, Parsed, Secrets, WebhookPlatform, register
from streams.processing.platforms.common import (
    Convert,
    FieldError,
    Node,
    Pending,
    Subscription,
    brands_with,
    build,
    failing,
    from_iso,
    from_unix,
    load_json,
    parse_with,
    rejected,
    shown,
)
from streams.processing.platforms.signatures import meta_signature, signature_matches, token_matches

#: ``object`` of the notification → Rapport platform.
PLATFORMS = {"page": "facebook", "instagram": "instagram"}
POST_ITEMS = frozenset({"status", "post", "photo", "video"})
REACTION_ITEMS = frozenset({"reaction", "like"})
ORIGINAL_VERBS = frozenset({"add"})
EDIT_VERBS = frozenset({"edited", "edit", "unhide"})
REMOVAL_VERBS = frozenset({"remove", "delete", "hide"})
UNKNOWN_AUTHOR = "unknown"
MESSAGING = "unsupported field (Messenger / Instagram direct messages are not supported yet)"


def parse(body: bytes, brands: BrandDirectory) -> list[Parsed]:
    """A Meta webhook body → one ``Parsed`` per change (event) of every entry."""
    return parse_with(_split, body, brands)


def brands_in(body: bytes, brands: BrandDirectory) -> set[str]:
    """The brands :func:`parse` would key this body's events to (``""`` for unknown accounts)."""
    return brands_with(_split, body, brands)


@dataclass(frozen=True)
class Entry(Subscription):
    """One ``entry``: the account it is for (``entry.id``, see ``Subscription``) and when Meta sent it."""

    time: Any = None
    path: str = ""

    @classmethod
    def of(cls, platform: str, entry: dict[str, Any], path: str, brands: BrandDirectory) -> Entry:
        account = Subscription.resolve(platform, entry.get("id"), f"{path}.id", brands)
        return cls(platform, account.id, account.brand, brands, account.problem, entry.get("time"), path)

    def sent_at(self) -> datetime:
        """``entry.time``: when Meta reported the change."""
        if self.time is None:
            raise FieldError(f"{self.path}.time: missing")
        return meta_time(self.time, f"{self.path}.time")


def _split(body: bytes, brands: BrandDirectory) -> list[Pending]:
    data = load_json(body)
    if not isinstance(data, list):
        return _split_notification(data, "", brands)  # a bad shape rejects the whole body
    pending: list[Pending] = []
    for index, notification in enumerate(data):
        try:
            pending.extend(_split_notification(notification, f"[{index}].", brands))
        except FieldError as exc:
            pending.append(rejected("", notification, str(exc)))
    return pending


def _split_notification(notification: Any, prefix: str, brands: BrandDirectory) -> list[Pending]:
    if not isinstance(notification, dict):
        where = prefix.rstrip(".") or "body"
        expected = '{"object": …, "entry": [...]}'
        raise FieldError(f"{where}: expected a Meta notification {expected}, got {shown(notification)}")
    kind = notification.get("object")
    platform = PLATFORMS.get(kind) if isinstance(kind, str) else None
    if platform is None:
        raise FieldError(f"{prefix}object: expected 'page' or 'instagram', got {shown(kind)}")
    entries = notification.get("entry")
    if not isinstance(entries, list):
        raise FieldError(f"{prefix}entry: expected an array, got {shown(entries)}")
    pending: list[Pending] = []
    for index, raw in enumerate(entries):
        path = f"{prefix}entry[{index}]"
        if not isinstance(raw, dict):
            pending.append(rejected("", raw, f"{path}: expected an object, got {shown(raw)}"))
            continue
        entry = Entry.of(platform, raw, path, brands)
        changes = raw.get("changes")
        if changes is None and "field" in raw:  # Instagram Login: field/value directly on the entry
            pending.append(entry.event(raw, _converter(raw, path, entry)))
        elif isinstance(changes, list):
            for number, change in enumerate(changes):
                pending.append(entry.event(change, _converter(change, f"{path}.changes[{number}]", entry)))
        elif changes is not None:
            pending.append(entry.event(changes, failing(f"{path}.changes: expected an array")))
        messaging = raw.get("messaging")
        for number, message in enumerate(messaging if isinstance(messaging, list) else []):
            pending.append(entry.event(message, failing(f"{path}.messaging[{number}]: {MESSAGING}")))
    return pending


def _converter(change: Any, path: str, entry: Entry) -> Convert:
    def convert() -> Interaction:
        node = Node(change, path)
        field = node.text("field")
        if entry.platform == "facebook" and field == "feed":
            return feed(node.node("value"), entry)
        if entry.platform == "instagram" and field in ("comments", "live_comments"):
            return instagram_comment(node.node("value"), entry)
        if entry.platform == "instagram" and field == "mentions":
            return instagram_mention(node.node("value"), entry)
        node.fail("field", f"unsupported field {shown(field)}")

    return convert


# --- Facebook Page feed ----------------------------------------------------------------------------


def feed(value: Node, entry: Entry) -> Interaction:
    item = value.text("item")
    verb = value.text("verb")
    if verb not in ORIGINAL_VERBS | EDIT_VERBS | REMOVAL_VERBS:
        value.fail("verb", f"{shown(verb)} is not supported")
    sender = value.opt_node("from")
    author = (sender.opt_id("id") if sender else None) or value.opt_id("sender_id")
    if author is None:
        value.fail("from", "missing")
    handle = sender.opt_text("name") if sender and sender.has("name") else value.opt_text("sender_name")
    post_id = value.id("post_id")
    removed = verb in REMOVAL_VERBS
    outbound = entry.is_brand(author)
    if value.has("created_time"):
        created_at = meta_time(value.data["created_time"], value.at("created_time"))
    else:
        created_at = entry.sent_at()
    common: dict[str, Any] = {
        "platform": "facebook",
        "brand": entry.brand,
        "author_id": author,
        "author_handle": handle,
        "direction": "outbound" if outbound else "inbound",
        "created_at": created_at,
        "customer_id": None if outbound else author,
        "deleted": removed,
        "updated_at": None if verb in ORIGINAL_VERBS else entry.sent_at(),
    }
    text = None if removed else value.opt_text("message")
    conversation = f"facebook:{post_id}"
    if item == "comment":
        parent = value.opt_id("parent_id") or post_id
        return build(
            value.path,
            event_id=f"facebook:{value.id('comment_id')}",
            kind="comment" if parent == post_id else "reply",
            text=text,
            parent_id=f"facebook:{parent}",
            conversation_id=conversation,
            **common,
        )
    if item in POST_ITEMS:
        return build(value.path, event_id=conversation, kind="post", text=text, conversation_id=conversation, **common)
    if item in REACTION_ITEMS:
        target = value.opt_id("comment_id") or post_id
        return build(
            value.path,
            event_id=f"facebook:reaction:{target}:{author}",
            kind="reaction",
            parent_id=f"facebook:{target}",
            conversation_id=conversation,
            **common,
        )
    if item == "share":
        shared = value.opt_id("share_id") or post_id
        return build(value.path, event_id=f"facebook:share:{shared}:{author}", kind="share", text=text, **common)
    value.fail("item", f"{shown(item)} is not supported")


# --- Instagram -------------------------------------------------------------------------------------


def instagram_comment(value: Node, entry: Entry) -> Interaction:
    sender = value.node("from")
    author = sender.id("id")
    media = value.node("media").id("id")
    parent = value.opt_id("parent_id")
    outbound = entry.is_brand(author)
    return build(
        value.path,
        event_id=f"instagram:{value.id('id')}",
        platform="instagram",
        brand=entry.brand,
        author_id=author,
        author_handle=sender.opt_text("username"),
        direction="outbound" if outbound else "inbound",
        kind="reply" if parent else "comment",
        text=value.opt_text("text"),
        created_at=entry.sent_at(),
        parent_id=f"instagram:{parent or media}",
        conversation_id=f"instagram:{media}",
        customer_id=None if outbound else author,
    )


def instagram_mention(value: Node, entry: Entry) -> Interaction:
    media = value.id("media_id")
    comment = value.opt_id("comment_id")
    return build(
        value.path,
        event_id=f"instagram:{comment or media}",
        platform="instagram",
        brand=entry.brand,
        author_id=UNKNOWN_AUTHOR,
        direction="inbound",
        kind="mention",
        created_at=entry.sent_at(),
        parent_id=f"instagram:{media}" if comment else None,
        conversation_id=f"instagram:{media}",
        customer_id=UNKNOWN_AUTHOR,
    )


# --- times -----------------------------------------------------------------------------------------

_INTEGER = re.compile(r"-?\d{1,20}")


def meta_time(value: Any, path: str) -> datetime:
    """``created_time``/``time``: Unix seconds (ms from 10^11 on), as a number or digits, or ISO 8601."""
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        return from_iso(value, path)
    number = int(value) if isinstance(value, str) else value
    milliseconds = isinstance(number, int | float) and not isinstance(number, bool) and abs(number) >= 1e11
    return from_unix(value, path, unit=1000 if milliseconds else 1)


# --- the webhook: signature and subscription check --------------------------------------------------


def signed(secrets: Secrets, headers: Mapping[str, str], body: bytes) -> bool:
    """``X-Hub-Signature-256`` is the body's hex HMAC under an app secret."""
    header = headers.get("x-hub-signature-256")
    return signature_matches(meta_signature, secrets.get("meta_app_secret", ()), header, body)


def verify_subscription(secrets: Secrets, query: Mapping[str, str]) -> Answer:
    """``GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C`` → ``C`` when V is a
    configured verify token, else 403."""
    token = query.get("hub.verify_token")
    if query.get("hub.mode") != "subscribe" or not token_matches(secrets.get("meta_verify_token", ()), token):
        return 403, {"error": "verification failed"}
    return 200, query.get("hub.challenge", "")


WEBHOOK = register(
    WebhookPlatform("meta", parse, brands_in, ("meta_app_secret", "meta_verify_token"), signed, verify_subscription)
)
