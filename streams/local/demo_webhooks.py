"""Signed webhook deliveries for the local demo, as the platforms would send them to the edge.

The demo brands (``streams/local/demo.py``) get platform account ids here (``write_demo_brands``); the
deliveries use the local stack's webhook secrets, so ``rapport up --demo-webhooks`` shows the whole
edge: X and Meta signatures, a canonical batch, an edit and a removal, a delivery with a bad signature
(401, nothing stored) and a correctly signed body that does not parse (200, dead-lettered).

Then the reach signals, the way the platforms send them (``reach_deliveries``, posted after
``demo_deliveries``, which stay ``rapport bench edge``'s workload): for several brands, a post
on X and on its Facebook page, the likes (X ``favorite_events``), retweets (``tweet_create_events`` with a
``retweeted_status``) and follows (``follow_events``) of X users, the reactions and shares of Facebook
users (``feed`` items ``reaction`` and ``share``); the broadcaster gets the most of them. And the grown
counters of some of the replayed demo posts (``demo.post_updates``: the same events with a later
``updated_at``), in a canonical batch as a metrics poller would send them.

Times and ids are fixed, so running the demo again redelivers the same events: they count once.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from streams.local.demo import PERSONAS, POSTS, post_updates
from streams.processing.platforms.signatures import meta_signature, x_signature
from streams.settings import Settings


def demo_accounts() -> dict[str, dict[str, list[str]]]:
    """Platform account ids of the demo brands (made up, stable)."""
    return {
        persona.brand: {
            "x": [str(7_000_000_000 + i)],
            "facebook": [str(104_830_000_000_000 + i)],
            "instagram": [str(17_841_400_000_000_000 + i)],
        }
        for i, persona in enumerate(PERSONAS)
    }


#: The demo brands' care policies (``care:`` in the brands file, docs/metrics.md): SnailTel's desk works office
#: hours, so its response times also exist in business seconds; the others keep the default SLA windows.
DEMO_CARE = {"SnailTel": {"business_hours": {"timezone": "Europe/London", "days": "mon-fri", "hours": "09:00-17:30"}}}


def write_demo_brands(path: Path) -> Path:
    brands: dict[str, dict[str, Any]] = dict(demo_accounts())
    for brand, care in DEMO_CARE.items():
        brands[brand] = {**brands[brand], "care": care}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"brands": brands}, sort_keys=True))
    return path


@dataclass(frozen=True)
class Delivery:
    what: str
    path: str
    body: bytes
    headers: dict[str, str]
    expect: int
    signals: tuple[str, ...] = ()
    """What the body carries for the reach figures, one entry an event: ``reaction``, ``share``, ``follow``,
    ``post update`` (the summary counts them)."""


T0 = 1_768_813_200  # 2026-01-19 09:00:00 UTC: the demo's webhooks come the morning after the replayed fortnight


def _x_time(minute: int) -> str:
    return f"Mon Jan 19 09:{minute:02d}:00 +0000 2026"


def _x_stamp(at: int) -> str:
    """A v1.1 ``created_at`` for Unix seconds ``at``."""
    return datetime.fromtimestamp(at, UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


def _tweet(
    tweet_id: int, user: dict[str, Any], text: str, minute: int, reply_to: tuple[int, str] | None = None
) -> dict[str, Any]:
    return {
        "created_at": _x_time(minute),
        "id": tweet_id,
        "id_str": str(tweet_id),
        "text": text,
        "user": user,
        "in_reply_to_status_id_str": str(reply_to[0]) if reply_to else None,
        "in_reply_to_user_id_str": reply_to[1] if reply_to else None,
        "favorite_count": 0,
        "retweet_count": 0,
        "reply_count": 0,
        "quote_count": 0,
    }


def demo_deliveries(settings: Settings) -> list[Delivery]:
    accounts = demo_accounts()
    brand = PERSONAS[0].brand  # the attentive one answers on every platform
    x_id, page_id, ig_id = accounts[brand]["x"][0], accounts[brand]["facebook"][0], accounts[brand]["instagram"][0]
    x_secret = settings.secret_list("x_consumer_secret")[0]
    meta_secret = settings.secret_list("meta_app_secret")[0]
    token = settings.secret_list("events_token")[0]
    customer = {"id_str": "880001", "screen_name": "dana_k", "followers_count": 312}
    brand_user = {"id_str": x_id, "screen_name": brand, "followers_count": 250_000}
    base = 1_990_000_000_000_000_000

    def x(what: str, payload: dict[str, Any], signed: bool = True) -> Delivery:
        body = orjson.dumps({"for_user_id": x_id, **payload})
        signature = x_signature(x_secret, body) if signed else x_signature("not-the-secret", body)
        return Delivery(what, "/webhooks/x", body, {"x-twitter-webhooks-signature": signature}, 200 if signed else 401)

    def meta(what: str, payload: Any) -> Delivery:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return Delivery(what, "/webhooks/meta", body, {"X-Hub-Signature-256": meta_signature(meta_secret, body)}, 200)

    def page_change(value: dict[str, Any], at: int) -> dict[str, Any]:
        return {
            "object": "page",
            "entry": [{"id": page_id, "time": at, "changes": [{"field": "feed", "value": value}]}],
        }

    t0 = T0
    post_id = f"{page_id}_555001"
    commenter = {"id": "6100000001", "name": "Sam Ortiz"}
    page = {"id": page_id, "name": brand}
    return [
        x(
            "X mention",
            {
                "tweet_create_events": [
                    _tweet(base + 1, customer, f"@{brand} my card got blocked abroad, please help!", 1)
                ]
            },
        ),
        x(
            "X brand reply",
            {
                "tweet_create_events": [
                    _tweet(
                        base + 2,
                        brand_user,
                        "@dana_k Sorry Dana! Unblocked now, safe travels.",
                        6,
                        (base + 1, "880001"),
                    )
                ]
            },
        ),
        x(
            "X like",
            {
                "favorite_events": [
                    {
                        "id": "a1b2c3d4e5",
                        "created_at": _x_time(8),
                        "timestamp_ms": str((t0 + 480) * 1000),
                        "favorited_status": _tweet(
                            base + 2, brand_user, "@dana_k Sorry Dana! Unblocked now, safe travels.", 6
                        ),
                        "user": customer,
                    }
                ]
            },
        ),
        x(
            "X follow",
            {
                "follow_events": [
                    {
                        "type": "follow",
                        "created_timestamp": str((t0 + 540) * 1000),
                        "target": {"id": x_id, "screen_name": brand},
                        "source": {"id": "880001", "screen_name": "dana_k", "followers_count": 312},
                    }
                ]
            },
        ),
        x(
            "X direct message",
            {
                "direct_message_events": [
                    {
                        "type": "message_create",
                        "id": "1990000000000000777",
                        "created_timestamp": str((t0 + 600) * 1000),
                        "message_create": {
                            "target": {"recipient_id": x_id},
                            "sender_id": "880001",
                            "message_data": {"text": "Thanks again, all sorted."},
                        },
                    }
                ],
                "users": {"880001": customer, x_id: brand_user},
            },
        ),
        x(
            "X delivery with a bad signature",
            {"tweet_create_events": [_tweet(base + 3, customer, f"@{brand} forged", 9)]},
            signed=False,
        ),
        meta(
            "Facebook comment",
            page_change(
                {
                    "item": "comment",
                    "verb": "add",
                    "comment_id": f"{post_id}_9001",
                    "post_id": post_id,
                    "parent_id": post_id,
                    "from": commenter,
                    "message": "Is the app down? I can't log in.",
                    "created_time": t0 + 900,
                },
                t0 + 900,
            ),
        ),
        meta(
            "Facebook page reply",
            page_change(
                {
                    "item": "comment",
                    "verb": "add",
                    "comment_id": f"{post_id}_9002",
                    "post_id": post_id,
                    "parent_id": f"{post_id}_9001",
                    "from": page,
                    "message": "Hi Sam, fixed a few minutes ago. Sorry!",
                    "created_time": t0 + 1200,
                },
                t0 + 1200,
            ),
        ),
        meta(
            "Facebook comment edited",
            page_change(
                {
                    "item": "comment",
                    "verb": "edited",
                    "comment_id": f"{post_id}_9001",
                    "post_id": post_id,
                    "parent_id": post_id,
                    "from": commenter,
                    "message": "Is the app down? I can't log in (iOS).",
                    "created_time": t0 + 900,
                },
                t0 + 1500,
            ),
        ),
        meta(
            "Facebook comment removed",
            page_change(
                {
                    "item": "comment",
                    "verb": "add",
                    "comment_id": f"{post_id}_9003",
                    "post_id": post_id,
                    "parent_id": post_id,
                    "from": {"id": "6100000002", "name": "Spam Bot"},
                    "message": "cheap followers!!",
                    "created_time": t0 + 1600,
                },
                t0 + 1600,
            ),
        ),
        meta(
            "Facebook removal",
            page_change(
                {
                    "item": "comment",
                    "verb": "remove",
                    "comment_id": f"{post_id}_9003",
                    "post_id": post_id,
                    "parent_id": post_id,
                    "from": {"id": "6100000002", "name": "Spam Bot"},
                    "created_time": t0 + 1600,
                },
                t0 + 1700,
            ),
        ),
        meta(
            "Instagram comment",
            {
                "object": "instagram",
                "entry": [
                    {
                        "id": ig_id,
                        "time": t0 + 1800,
                        "changes": [
                            {
                                "field": "comments",
                                "value": {
                                    "id": "17900000000000001",
                                    "text": "Love the new card design 😍",
                                    "from": {"id": "17840000000000009", "username": "mia.rt"},
                                    "media": {"id": "17950000000000001", "media_product_type": "FEED"},
                                },
                            }
                        ],
                    }
                ],
            },
        ),
        meta("Meta body that does not parse", b'{"object": "page", "entry": "this is not a list"}'),
        Delivery(
            "canonical batch",
            "/webhooks/events",
            orjson.dumps(
                {
                    "events": [
                        {
                            "event_id": "youtube:Ugx001",
                            "platform": "youtube",
                            "brand": brand,
                            "author_id": "UC-viewer-1",
                            "direction": "inbound",
                            "kind": "comment",
                            "text": "Does the travel card work in Japan?",
                            "created_at": "2026-01-19T10:00:00Z",
                            "parent_id": "youtube:vid42",
                            "conversation_id": "youtube:vid42",
                        },
                        {
                            "event_id": "youtube:Ugx002",
                            "platform": "youtube",
                            "brand": brand,
                            "author_id": brand,
                            "direction": "outbound",
                            "kind": "reply",
                            "text": "It does, everywhere Visa is accepted!",
                            "created_at": "2026-01-19T10:20:00Z",
                            "parent_id": "youtube:Ugx001",
                            "conversation_id": "youtube:vid42",
                            "customer_id": "UC-viewer-1",
                        },
                    ]
                }
            ),
            {"Authorization": f"Bearer {token}"},
            200,
        ),
    ]


#: The brands whose posts get reach signals through the webhooks, and how many of each a post gets:
#: (X likes, X retweets, X follows, Facebook reactions, Facebook shares). The broadcaster gets the most.
REACH: dict[str, tuple[int, int, int, int, int]] = {
    "MegaphoneMotors": (14, 5, 6, 12, 4),
    "VIPGlow": (8, 2, 4, 6, 2),
    "FirefightAir": (5, 1, 3, 4, 1),
    "SwiftBank": (4, 1, 2, 3, 1),
}
REACH_START = T0 + 3600  # 10:00 UTC, after the conversation deliveries above
#: Follower counts of the X users who like, retweet and follow: a heavy tail, most under 1,000.
REACH_FOLLOWERS = (3, 17, 42, 88, 150, 260, 410, 690, 980, 1_700, 4_200, 9_800, 36_000, 185_000)
REACTION_TYPES = ("like", "like", "love", "wow", "haha")


def reach_deliveries(settings: Settings) -> list[Delivery]:
    """The reach signals of the demo (module doc): per brand of ``REACH``, an X post and a Facebook page post
    and what people do with them, then the grown counters of some replayed demo posts. Deterministic."""
    accounts = demo_accounts()
    x_secret = settings.secret_list("x_consumer_secret")[0]
    meta_secret = settings.secret_list("meta_app_secret")[0]
    token = settings.secret_list("events_token")[0]
    personas = {p.brand: p for p in PERSONAS}
    out: list[Delivery] = []

    def x(brand: str, what: str, payload: dict[str, Any], signals: tuple[str, ...]) -> None:
        body = orjson.dumps({"for_user_id": accounts[brand]["x"][0], **payload})
        headers = {"x-twitter-webhooks-signature": x_signature(x_secret, body)}
        out.append(Delivery(f"X {what} ({brand})", "/webhooks/x", body, headers, 200, signals))

    def feed(brand: str, what: str, values: list[dict[str, Any]], at: int, signals: tuple[str, ...]) -> None:
        page_id = accounts[brand]["facebook"][0]
        changes = [{"field": "feed", "value": value} for value in values]
        body = orjson.dumps({"object": "page", "entry": [{"id": page_id, "time": at, "changes": changes}]})
        headers = {"X-Hub-Signature-256": meta_signature(meta_secret, body)}
        out.append(Delivery(f"Facebook {what} ({brand})", "/webhooks/meta", body, headers, 200, signals))

    for index, (brand, (likes, retweets, follows, reactions, shares)) in enumerate(REACH.items()):
        rng = random.Random(f"demo-reach-{brand}")
        persona = personas[brand]
        x_id, page_id = accounts[brand]["x"][0], accounts[brand]["facebook"][0]
        start = REACH_START + 600 * index
        text = rng.choice(POSTS).format(product=rng.choice(persona.products), brand=brand)
        brand_user = {"id_str": x_id, "screen_name": brand, "followers_count": persona.brand_followers}
        tweet_id = 1_990_000_000_000_100_000 + 1_000 * index
        tweet = _tweet(tweet_id, brand_user, text, 0) | {
            "created_at": _x_stamp(start),
            "favorite_count": likes + rng.randrange(40, 400),
            "retweet_count": retweets + rng.randrange(5, 40),
            "reply_count": rng.randrange(0, 12),
        }
        users = [
            {"id_str": str(880_100 + 100 * index + n), "screen_name": f"fan{index}{n:02d}", "followers_count": f}
            for n, f in enumerate(rng.choices(REACH_FOLLOWERS, k=likes + retweets + follows))
        ]
        x(brand, "post", {"tweet_create_events": [tweet]}, ())
        x(
            brand,
            "likes",
            {
                "favorite_events": [
                    {
                        "id": f"{index:02d}fa{n:04d}",
                        "created_at": _x_stamp(start + 30 + 40 * n),
                        "timestamp_ms": str((start + 30 + 40 * n) * 1000),
                        "favorited_status": tweet,
                        "user": user,
                    }
                    for n, user in enumerate(users[:likes])
                ]
            },
            ("reaction",) * likes,
        )
        x(
            brand,
            "retweets",
            {
                "tweet_create_events": [
                    _tweet(tweet_id + 1 + n, user, f"RT @{brand}: {text}", 0)
                    | {"created_at": _x_stamp(start + 90 + 60 * n), "retweeted_status": tweet}
                    for n, user in enumerate(users[likes : likes + retweets])
                ]
            },
            ("share",) * retweets,
        )
        x(
            brand,
            "follows",
            {
                "follow_events": [
                    {
                        "type": "follow",
                        "created_timestamp": str((start + 120 + 50 * n) * 1000),
                        "target": {"id": x_id, "screen_name": brand},
                        "source": {
                            "id": user["id_str"],
                            "screen_name": user["screen_name"],
                            "followers_count": user["followers_count"],
                        },
                    }
                    for n, user in enumerate(users[likes + retweets :])
                ]
            },
            ("follow",) * follows,
        )
        post_id = f"{page_id}_{777_001 + index}"
        page = {"id": page_id, "name": brand}
        status = {"item": "status", "verb": "add", "post_id": post_id, "from": page, "message": text}
        feed(brand, "page post", [status | {"created_time": start}], start, ())
        people = [{"id": str(6_100_100_000 + 1_000 * index + n), "name": f"Fan {index}-{n}"} for n in range(30)]
        feed(
            brand,
            "reactions",
            [
                {
                    "item": "reaction",
                    "verb": "add",
                    "reaction_type": rng.choice(REACTION_TYPES),
                    "post_id": post_id,
                    "from": person,
                    "created_time": start + 45 + 35 * n,
                }
                for n, person in enumerate(people[:reactions])
            ],
            start + 45 + 35 * reactions,
            ("reaction",) * reactions,
        )
        feed(
            brand,
            "shares",
            [
                {
                    "item": "share",
                    "verb": "add",
                    "share_id": f"{post_id}_s{n}",
                    "post_id": post_id,
                    "from": person,
                    **({"message": "Have a look at this"} if n % 2 else {}),
                    "created_time": start + 150 + 70 * n,
                }
                for n, person in enumerate(people[reactions : reactions + shares])
            ],
            start + 150 + 70 * shares,
            ("share",) * shares,
        )
    updates = post_updates()
    out.append(
        Delivery(
            "canonical batch: grown counters of replayed posts",
            "/webhooks/events",
            orjson.dumps({"events": [update.model_dump(mode="json") for update in updates]}),
            {"Authorization": f"Bearer {token}"},
            200,
            ("post update",) * len(updates),
        )
    )
    return out


def post(base_url: str, delivery: Delivery) -> int:
    request = urllib.request.Request(
        base_url + delivery.path,
        data=delivery.body,
        method="POST",
        headers={"Content-Type": "application/json", **delivery.headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def post_demo_webhooks(base_url: str, settings: Settings) -> str:
    """Post every demo delivery; returns a one-line summary. Raises if a status is not the expected one."""
    from streams.local.stack import StackError

    results = [(d, post(base_url, d)) for d in [*demo_deliveries(settings), *reach_deliveries(settings)]]
    wrong = [f"{d.what}: {status} (expected {d.expect})" for d, status in results if status != d.expect]
    if wrong:
        raise StackError("demo webhooks: " + "; ".join(wrong))
    accepted = sum(1 for _, status in results if status == 200)
    signals = Counter(signal for d, _ in results for signal in d.signals)
    return (
        f"webhooks: {accepted} signed deliveries accepted (X, Facebook, Instagram, canonical), "
        f"{len(results) - accepted} with a bad signature refused (401); reach signals: {signals['reaction']} "
        f"reactions, {signals['share']} shares, {signals['follow']} follows, {signals['post update']} post counter "
        "updates — " + json.dumps(sorted({d.path for d, _ in results}))
    )
