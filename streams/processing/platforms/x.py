"""X webhooks → ``Interaction``s: the Account Activity API (v1.1 payloads) and the X Activity API.

Account Activity API (AAA)
--------------------------
Body ``{"for_user_id": ACCOUNT, "<type>_events": [...], "users": {...}}``. ``for_user_id`` is the
subscribed (brand) account: brand = ``brands.brand_for("x", for_user_id)``. When it is not in the brands
file, every event of the body becomes ``Parsed("", event, "for_user_id: account 123 is not in the brands
file")``. "The brand" below means ``for_user_id`` or any other X account of the same brand.

``tweet_create_events[i]`` (v1.1 Tweet object) → event_id ``x:<id_str>``:

============================  ===================================================================
Tweet field                   Interaction field
============================  ===================================================================
``user.id_str``               ``author_id``; direction outbound when it is the brand, else inbound
``user.screen_name``          ``author_handle``
``user.followers_count``      ``author_followers``
``retweeted_status``          kind ``share``, no text, ``parent_id`` = the retweeted tweet
``in_reply_to_status_id_str`` kind ``reply``, ``parent_id = "x:" + in_reply_to_status_id_str``
(neither)                     kind ``mention`` (inbound; a quote tweet too) or ``post`` (outbound)
``extended_tweet.full_text``  ``text`` (else ``full_text``, else ``text``)
``created_at``                ``created_at`` ("Wed Oct 10 20:19:24 +0000 2018")
``favorite_count``            ``likes``
``retweet_count``             ``shares`` (``quote_count`` is not a share and is not counted)
``reply_count``               ``replies``
============================  ===================================================================

``customer_id``: inbound → the author; outbound reply → ``in_reply_to_user_id_str`` (None when the
brand answers itself, e.g. a thread); outbound retweet → the retweeted author; outbound post → None.
v1.1 has no conversation id: ``conversation_id`` is left to the pipeline.

``favorite_events[i]`` ``{id, created_at, timestamp_ms, favorited_status, user}`` → kind ``reaction``,
event_id ``x:favorite:<id>``, ``parent_id`` = the liked tweet, author = the liker (``user``), inbound
unless the liker is the brand; customer = the liker (inbound) or the liked tweet's author (outbound).
``created_at`` from ``timestamp_ms`` (else ``created_at``). No text.

``follow_events[i]`` ``{type: follow|unfollow, created_timestamp, source, target}`` → kind ``follow``,
event_id ``x:follow:<source>:<target>``: a follow, unfollow and refollow are versions of one event.
Author = ``source``; inbound when ``target`` is the brand; customer = source (inbound) or target
(outbound). ``unfollow`` → ``deleted=True`` with ``updated_at`` = ``created_timestamp``; a later
refollow is newer by its ``created_at`` and wins again.

``direct_message_events[i]`` (``type == "message_create"``) → kind ``direct_message``, event_id
``x:dm:<id>``, author = ``message_create.sender_id``, inbound unless the sender is the brand, customer =
the other party, text = ``message_data.text``, created_at = ``created_timestamp`` (ms). Handles and
follower counts come from the body's ``users`` map when present.

``tweet_delete_events[i]`` → rejected: "deletions of tweets are not supported yet". A removal replaces
the stored event, and ``{status: {id, user_id}, timestamp_ms}`` lacks what that row needs (kind,
direction, parent, original ``created_at``); rebuilding it would need the pipeline's state.

Ignored (not content): ``direct_message_indicate_typing_events``, ``direct_message_mark_read_events``,
``block_events``, ``mute_events`` (and un-), ``user_event`` (revokes), ``users``/``apps`` maps. Any other
``*_events`` array is rejected per element as an unknown event type, so new content is never dropped
silently. A body with none of these keys is rejected whole.

X Activity API (XAA)
--------------------
Found in X's published docs (docs.x.com "X Activity API event payload examples", source
``xdevplatform/docs`` ``x-api/activity/event-payloads.mdx``): every delivery, stream or webhook, is one
envelope ``{"data": {"event_uuid", "filter": {"user_id"}, "event_type", "tag", "payload", "includes"}}``.
``filter.user_id`` is the subscribed account → brand (``data.filter.user_id: account … is not in the
brands file`` when unknown).

- ``post.create`` (the filtered user posted) and ``post.mention.create`` (someone @mentioned them): the
  payload is a v2 Post: ``id``, ``text`` (``note_tweet.text`` for long posts), ``author_id``,
  ``created_at`` (ISO), ``conversation_id`` → ``conversation_id = "x:" + id``, ``referenced_tweets``
  (``retweeted`` → share, ``replied_to`` → reply with that parent, ``quoted`` → no effect),
  ``in_reply_to_user_id`` (the addressee of an outbound reply), ``public_metrics``
  (``like_count`` → likes, ``retweet_count`` → shares, ``reply_count`` → replies, ``impression_count``
  → impressions). Direction, kind and customer follow the AAA rules above; the author's handle and
  followers come from ``includes.users``.
- ``dm.sent`` / ``dm.received``: the payload carries AAA-style ``direct_message_events`` and a ``users``
  map (``{id: {"data": {username, public_metrics}}}``): mapped as AAA direct messages.
- ``post.delete``: rejected like ``tweet_delete_events``.
- ``like.create``: rejected (not supported yet: for an inbound like the payload does not name who liked).
- ``follow.follow`` / ``follow.unfollow``: rejected (the payload carries no timestamp).
- ``chat.*`` (end-to-end encrypted XChat): rejected (text not readable).
- ``profile.*``, ``news.new``, ``spaces.*``, ``dm.read``, ``dm.indicate_typing``, ``mute.*``, ``block.*``,
  ``oauth.revoke``: ignored (not content). Any other event type is rejected.

Assumed: the webhook body is exactly one such envelope (the docs show no batching). ``original`` for an
XAA post is the whole envelope (``includes`` is needed to re-read it).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    in_range,
    load_json,
    lookup,
    parse_with,
    rejected,
    shown,
)
from streams.processing.platforms.signatures import crc_token_allowed, signature_matches, x_signature

PLATFORM = "x"
TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # v1.1 created_at: "Wed Oct 10 20:19:24 +0000 2018"

#: AAA arrays that are not content: skipped without a trace.
IGNORED_ARRAYS = frozenset(
    {
        "direct_message_indicate_typing_events",
        "direct_message_mark_read_events",
        "block_events",
        "unblock_events",
        "mute_events",
        "unmute_events",
    }
)
#: AAA keys that mark a body as an Account Activity payload even without events.
AAA_KEYS = frozenset({"for_user_id", "user_event", "users", "apps"})

#: XAA event types that are not content.
IGNORED_ACTIVITY_PREFIXES = ("profile.", "news.", "spaces.", "mute.", "block.", "oauth.")
IGNORED_ACTIVITIES = frozenset({"dm.read", "dm.indicate_typing"})


def parse(body: bytes, brands: BrandDirectory) -> list[Parsed]:
    """An X webhook body (Account Activity or X Activity API) → one ``Parsed`` per event in it."""
    return parse_with(_split, body, brands)


def brands_in(body: bytes, brands: BrandDirectory) -> set[str]:
    """The brands :func:`parse` would key this body's events to (``""`` for unknown accounts)."""
    return brands_with(_split, body, brands)


# --- the subscribed account ------------------------------------------------------------------------


#: The account a body was delivered for (``for_user_id`` / ``filter.user_id``); see ``Subscription``.
Account = Subscription


def _split(body: bytes, brands: BrandDirectory) -> list[Pending]:
    data = load_json(body)
    if not isinstance(data, dict):
        raise FieldError(f"body: expected an X webhook object, got {shown(data)}")
    if "for_user_id" not in data and isinstance(data.get("data"), dict):
        return _split_activity(data, brands)
    if not (AAA_KEYS & data.keys() or any(key.endswith("_events") for key in data)):
        raise FieldError(
            "body: not an X webhook (expected for_user_id with *_events arrays, or an X Activity API "
            '{"data": {"event_type": …}} envelope)'
        )
    return _split_account_activity(data, brands)


# --- Account Activity API --------------------------------------------------------------------------


def _split_account_activity(data: dict[str, Any], brands: BrandDirectory) -> list[Pending]:
    account = Account.resolve(PLATFORM, data.get("for_user_id"), "for_user_id", brands)
    users = data.get("users")
    pending: list[Pending] = []
    for key, events in data.items():
        if not key.endswith("_events") or key in IGNORED_ARRAYS:
            continue
        if not isinstance(events, list):
            pending.append(account.event(events, failing(f"{key}: expected an array, got {shown(events)}")))
            continue
        for index, event in enumerate(events):
            path = f"{key}[{index}]"
            pending.append(account.event(event, _account_activity_converter(key, event, path, account, users)))
    return pending


def _account_activity_converter(key: str, event: Any, path: str, account: Account, users: Any) -> Convert:
    def convert() -> Interaction:
        node = Node(event, path)
        if key == "tweet_create_events":
            return tweet(node, account)
        if key == "favorite_events":
            return favorite(node, account)
        if key == "follow_events":
            return follow(node, account)
        if key == "direct_message_events":
            return direct_message(node, account, users)
        if key == "tweet_delete_events":
            status = node.node("status").id("id_str", "id")
            raise FieldError(f"{path}: deletions of tweets are not supported yet (x:{status} was deleted)")
        raise FieldError(f"{path}: unknown Account Activity event type {key!r}")

    return convert


def tweet(node: Node, account: Account) -> Interaction:
    """A v1.1 Tweet object from ``tweet_create_events``."""
    user = node.node("user")
    author = user.id("id_str", "id")
    outbound = account.is_brand(author)
    retweeted = node.opt_node("retweeted_status")
    in_reply_to = node.opt_id("in_reply_to_status_id_str", "in_reply_to_status_id")
    text: str | None = _full_text(node)
    parent: str | None = None
    addressee: str | None = None
    if retweeted is not None:
        kind, text = "share", None
        parent = retweeted.id("id_str", "id")
        addressee = retweeted.node("user").id("id_str", "id")
    elif in_reply_to is not None:
        kind, parent = "reply", in_reply_to
        addressee = node.opt_id("in_reply_to_user_id_str", "in_reply_to_user_id")
    else:
        kind = "post" if outbound else "mention"
    return build(
        node.path,
        event_id=f"x:{node.id('id_str', 'id')}",
        platform=PLATFORM,
        brand=account.brand,
        author_id=author,
        author_handle=user.opt_text("screen_name"),
        author_followers=user.opt_count("followers_count"),
        direction="outbound" if outbound else "inbound",
        kind=kind,
        text=text,
        created_at=_v1_time(node, "created_at"),
        parent_id=f"x:{parent}" if parent else None,
        customer_id=account.addressee(addressee) if outbound else author,
        likes=node.opt_count("favorite_count"),
        shares=node.opt_count("retweet_count"),
        replies=node.opt_count("reply_count"),
    )


def _full_text(node: Node) -> str | None:
    extended = node.opt_node("extended_tweet")
    if extended is not None and extended.has("full_text"):
        return extended.text("full_text")
    return node.opt_text("full_text") if node.has("full_text") else node.opt_text("text")


def favorite(node: Node, account: Account) -> Interaction:
    liker = node.node("user")
    liker_id = liker.id("id_str", "id")
    liked = node.node("favorited_status")
    liked_author = liked.node("user").id("id_str", "id")
    outbound = account.is_brand(liker_id)
    if node.has("timestamp_ms"):
        created_at = from_unix(node.data["timestamp_ms"], node.at("timestamp_ms"), unit=1000)
    else:
        created_at = _v1_time(node, "created_at")
    return build(
        node.path,
        event_id=f"x:favorite:{node.id('id')}",
        platform=PLATFORM,
        brand=account.brand,
        author_id=liker_id,
        author_handle=liker.opt_text("screen_name"),
        author_followers=liker.opt_count("followers_count"),
        direction="outbound" if outbound else "inbound",
        kind="reaction",
        created_at=created_at,
        parent_id=f"x:{liked.id('id_str', 'id')}",
        customer_id=account.addressee(liked_author) if outbound else liker_id,
    )


def follow(node: Node, account: Account) -> Interaction:
    kind = node.text("type")
    if kind not in ("follow", "unfollow"):
        node.fail("type", f"expected 'follow' or 'unfollow', got {shown(kind)}")
    source = node.node("source")
    source_id = source.id("id_str", "id")
    target_id = node.node("target").id("id_str", "id")
    when = from_unix(node.data.get("created_timestamp"), node.at("created_timestamp"), unit=1000)
    inbound = account.is_brand(target_id)
    unfollow = kind == "unfollow"
    return build(
        node.path,
        event_id=f"x:follow:{source_id}:{target_id}",
        platform=PLATFORM,
        brand=account.brand,
        author_id=source_id,
        author_handle=source.opt_text("screen_name"),
        author_followers=source.opt_count("followers_count"),
        direction="inbound" if inbound else "outbound",
        kind="follow",
        created_at=when,
        customer_id=source_id if inbound else account.addressee(target_id),
        deleted=unfollow,
        updated_at=when if unfollow else None,
    )


def direct_message(node: Node, account: Account, users: Any) -> Interaction:
    kind = node.text("type")
    if kind != "message_create":
        node.fail("type", f"{shown(kind)} is not supported (only message_create)")
    create = node.node("message_create")
    sender = create.id("sender_id")
    recipient = create.node("target").id("recipient_id")
    data = create.opt_node("message_data")
    outbound = account.is_brand(sender)
    handle, followers = _user_profile(users, sender)
    return build(
        node.path,
        event_id=f"x:dm:{node.id('id')}",
        platform=PLATFORM,
        brand=account.brand,
        author_id=sender,
        author_handle=handle,
        author_followers=followers,
        direction="outbound" if outbound else "inbound",
        kind="direct_message",
        text=data.opt_text("text") if data is not None else None,
        created_at=from_unix(node.data.get("created_timestamp"), node.at("created_timestamp"), unit=1000),
        customer_id=account.addressee(recipient) if outbound else sender,
    )


def _user_profile(users: Any, user_id: str) -> tuple[str | None, int | None]:
    """Handle and followers from a ``users`` map: v1.1 ``{screen_name, followers_count}`` or XAA
    ``{"data": {username, public_metrics: {followers_count}}}``. Optional enrichment: bad values are ignored."""
    user = lookup(users, user_id)
    if isinstance(lookup(user, "data"), dict):
        handle, followers = lookup(user, "data", "username"), lookup(user, "data", "public_metrics", "followers_count")
    else:
        handle, followers = lookup(user, "screen_name"), lookup(user, "followers_count")
    return _profile(handle, followers)


def _profile(handle: Any, followers: Any) -> tuple[str | None, int | None]:
    """A handle and follower count from a lookup table, or None for values of the wrong type."""
    valid_count = isinstance(followers, int) and not isinstance(followers, bool) and 0 <= followers < 2**63
    return (handle if isinstance(handle, str) else None, followers if valid_count else None)


def _v1_time(node: Node, key: str) -> datetime:
    value = node.data.get(key)
    if value is None:
        node.fail(key, "missing")
    try:
        moment = datetime.strptime(value, TIME_FORMAT)
    except (TypeError, ValueError):
        node.fail(key, f"expected a date like 'Wed Oct 10 20:19:24 +0000 2018', got {shown(value)}")
    return in_range(moment, node.at(key))


# --- X Activity API --------------------------------------------------------------------------------


def _split_activity(body: dict[str, Any], brands: BrandDirectory) -> list[Pending]:
    envelope = body["data"]
    original = body  # one event per envelope; includes are needed to re-read it
    event_type = envelope.get("event_type")
    if not isinstance(event_type, str):
        return [rejected("", original, f"data.event_type: expected an event type, got {shown(event_type)}")]
    if event_type in IGNORED_ACTIVITIES or event_type.startswith(IGNORED_ACTIVITY_PREFIXES):
        return []
    account = Account.resolve(PLATFORM, lookup(envelope, "filter", "user_id"), "data.filter.user_id", brands)
    payload = envelope.get("payload")
    if event_type in ("dm.sent", "dm.received"):
        events = lookup(payload, "direct_message_events")
        if not isinstance(events, list):
            return [account.event(original, failing("data.payload.direct_message_events: expected an array"))]
        users = lookup(payload, "users")
        return [
            account.event(event, _activity_dm(event, f"data.payload.direct_message_events[{i}]", account, users))
            for i, event in enumerate(events)
        ]
    return [account.event(original, _activity_converter(event_type, envelope, account))]


def _activity_converter(event_type: str, envelope: dict[str, Any], account: Account) -> Convert:
    def convert() -> Interaction:
        data = Node(envelope, "data")
        if event_type in ("post.create", "post.mention.create"):
            return post(data, account)
        if event_type == "post.delete":
            deleted = data.node("payload").id("id")
            raise FieldError(f"data.payload: deletions of tweets are not supported yet (x:{deleted} was deleted)")
        if event_type == "like.create":
            raise FieldError("data.event_type: like.create is not supported yet (the payload does not name the liker)")
        if event_type in ("follow.follow", "follow.unfollow"):
            raise FieldError(f"data.event_type: {event_type} is not supported (the payload carries no timestamp)")
        if event_type.startswith("chat."):
            raise FieldError(f"data.event_type: {event_type} is not supported (encrypted XChat messages)")
        raise FieldError(f"data.event_type: {shown(event_type)} is not supported")

    return convert


def _activity_dm(event: Any, path: str, account: Account, users: Any) -> Convert:
    def convert() -> Interaction:
        return direct_message(Node(event, path), account, users)

    return convert


def post(data: Node, account: Account) -> Interaction:
    """A v2 Post from an XAA ``post.create`` / ``post.mention.create`` envelope (``data``)."""
    payload = data.node("payload")
    author = payload.id("author_id")
    outbound = account.is_brand(author)
    references = _references(payload)
    includes = data.data.get("includes")
    text: str | None = _v2_text(payload)
    parent: str | None = None
    addressee: str | None = None
    if "retweeted" in references:
        kind, text, parent = "share", None, references["retweeted"]
        addressee = _included_author(includes, parent)
    elif "replied_to" in references:
        kind, parent = "reply", references["replied_to"]
        addressee = payload.opt_id("in_reply_to_user_id") or _included_author(includes, parent)
    else:
        kind = "post" if outbound else "mention"
    metrics = payload.opt_node("public_metrics")
    conversation = payload.opt_id("conversation_id")
    handle, followers = _included_profile(includes, author)
    return build(
        data.path,
        event_id=f"x:{payload.id('id')}",
        platform=PLATFORM,
        brand=account.brand,
        author_id=author,
        author_handle=handle,
        author_followers=followers,
        direction="outbound" if outbound else "inbound",
        kind=kind,
        text=text,
        created_at=from_iso(payload.data.get("created_at"), payload.at("created_at")),
        parent_id=f"x:{parent}" if parent else None,
        conversation_id=f"x:{conversation}" if conversation else None,
        customer_id=account.addressee(addressee) if outbound else author,
        impressions=metrics.opt_count("impression_count") if metrics else None,
        likes=metrics.opt_count("like_count") if metrics else None,
        shares=metrics.opt_count("retweet_count") if metrics else None,
        replies=metrics.opt_count("reply_count") if metrics else None,
    )


def _references(payload: Node) -> dict[str, str]:
    """``referenced_tweets: [{type, id}]`` → ``{type: id}`` (``replied_to``, ``quoted``, ``retweeted``)."""
    refs = payload.data.get("referenced_tweets")
    if refs is None:
        return {}
    if not isinstance(refs, list):
        payload.fail("referenced_tweets", f"expected an array, got {shown(refs)}")
    found: dict[str, str] = {}
    for index, ref in enumerate(refs):
        item = Node(ref, payload.at(f"referenced_tweets[{index}]"))
        found.setdefault(item.text("type"), item.id("id"))
    return found


def _v2_text(payload: Node) -> str | None:
    note = payload.opt_node("note_tweet")  # posts longer than 280 characters
    if note is not None and note.has("text"):
        return note.text("text")
    return payload.opt_text("text")


def _included_profile(includes: Any, user_id: str) -> tuple[str | None, int | None]:
    users = lookup(includes, "users")
    for user in users if isinstance(users, list) else []:
        if lookup(user, "id") == user_id:
            return _profile(lookup(user, "username"), lookup(user, "public_metrics", "followers_count"))
    return None, None


def _included_author(includes: Any, post_id: str) -> str | None:
    tweets = lookup(includes, "tweets")
    for item in tweets if isinstance(tweets, list) else []:
        author = lookup(item, "author_id")
        if lookup(item, "id") == post_id and isinstance(author, str) and author:
            return author
    return None


# --- the webhook: signature and CRC check -----------------------------------------------------------


def signed(secrets: Secrets, headers: Mapping[str, str], body: bytes) -> bool:
    """``x-twitter-webhooks-signature`` is the body's HMAC under a consumer secret. X delivers JSON objects:
    anything else is refused before the signature is looked at, since a CRC token (which the CRC answer
    signs) can be a bare JSON scalar such as ``123``, never an object."""
    header = headers.get("x-twitter-webhooks-signature")
    return body.lstrip()[:1] == b"{" and signature_matches(
        x_signature, secrets.get("x_consumer_secret", ()), header, body
    )


def crc(secrets: Secrets, query: Mapping[str, str]) -> Answer:
    """``GET /webhooks/x?crc_token=T`` → ``{"response_token": "sha256=" + base64(HMAC(secret, T))}``, signed
    with the current (first) secret, for short opaque tokens only (see ``signatures.CRC_TOKEN``)."""
    token = query.get("crc_token")
    if not token:
        return 400, {"error": "crc_token is required"}
    if not crc_token_allowed(token):  # never sign what could be a delivery body
        return 400, {"error": "crc_token must be 1 to 128 characters of A-Z a-z 0-9 _ - = + / ."}
    current = secrets.get("x_consumer_secret", ())
    if not current:
        return 503, {"error": "X webhooks are not configured (RAPPORT_X_CONSUMER_SECRET)"}
    return 200, {"response_token": x_signature(current[0], token.encode())}


WEBHOOK = register(WebhookPlatform("x", parse, brands_in, ("x_consumer_secret",), signed, crc))
