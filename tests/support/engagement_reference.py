"""An independent computation of the engagement figures 2-7 of issue 14, per brand, straight from a twcs CSV.

Plain Python over ``csv.DictReader``: the mapping of a twcs row to an interaction (``streams/processing/twcs.py``:
brand, direction, kind, parent, conversation root, customer) and the care metrics' *answered* (its brand's first
direct reply, ``streams/processing/replies.py``) are written again here without the product's code, and the
figures follow the issue's definitions literally (quoted in each function). Two things come from the product,
each with tests of its own:

- the sentiment of a text: ``streams.processing.sentiment.SentimentScorer().score(text)`` (VADER's compound,
  ``None`` for a blank text), stored as ``numpy.float32`` as ClickHouse's ``Float32`` column holds it, then used
  as a Python float;
- the canned flags of figure 6: ``streams.processing.canned.canned_flags`` (the exact rule, brute-force tested).

The whole file is one range (no ``--from``/``--to``), so the attribution of each figure to a time does not matter
here. Twcs rows are never edited or removed, and every twcs row is conversational (kind ``post``, ``reply`` or
``mention``): "not deleted" and "conversational kinds" hold for every row.

Decisions where the definitions leave a choice (see also each function):

- event ids are compared as strings, as the warehouse does (``"x:<tweet_id>"``), for every "ties: the smaller
  event_id";
- figure 5's M′ and figure 7's later positive message must come after the message M itself (by ``created_at``,
  ties the smaller event id) *and* be created strictly after M's reply; they are the same brand's inbound
  messages (the figures are per brand);
- a rate or mean with no denominator is ``None``.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy

from streams.processing.canned import canned_flags
from streams.processing.sentiment import SentimentScorer

NEGATIVE, POSITIVE = -0.05, 0.05  # VADER's thresholds: negative ≤ −0.05, positive ≥ 0.05
IMPROVED = 0.05  # a sentiment shift counts as improved when it is > 0.05

ENGAGEMENT_FIGURES = (
    # 2. conversation versus broadcast
    "outbound_messages",
    "brand_replies",
    "broadcasts",
    "conversation_share",
    "broadcasts_per_reply",
    # 3. conversation depth
    "conversations_started",
    "conversation_messages_avg",
    "multi_turn_conversations",
    "multi_turn_rate",
    # 4. sentiment
    "inbound_sentiment_avg",
    "negative_messages",
    "negative_unanswered",
    "negative_reply_rate",
    # 5. sentiment shift after a reply
    "sentiment_shift_pairs",
    "sentiment_shift_avg",
    "improved_after_reply_rate",
    # 6. canned replies
    "canned_replies",
    "canned_reply_rate",
    # 7. relationships
    "customers",
    "returning_customers",
    "two_way_customers",
    "won_back_customers",
)

_HANDLE = re.compile(r"@(\w{1,50})")  # twcs.py's brand handle (X handles are at most 50 word characters here)


@dataclass(frozen=True)
class Event:
    """One twcs row as the warehouse stores it (only rows with a brand: the others are dead-lettered)."""

    event_id: str  # "x:<tweet_id>"
    brand: str
    author: str
    inbound: bool
    kind: str  # "post" (outbound, no parent), "mention" (inbound, no parent) or "reply"
    at: int  # created_at, Unix seconds
    parent: str | None  # "x:<in_response_to_tweet_id>"
    conversation: str  # "x:<root>"
    customer: str | None  # inbound: the author; outbound: the nearest inbound ancestor's author in the file
    text: str
    sentiment: float | None

    @property
    def order(self) -> tuple[int, str]:
        """Time order: created_at, ties the smaller event_id."""
        return (self.at, self.event_id)


@dataclass
class Sample:
    """The events of a twcs file and, per inbound message, its first direct reply by its brand."""

    events: list[Event]
    first_reply: dict[str, Event]  # inbound event_id → the answering reply (earliest created_at, then event_id)

    def brands(self) -> list[str]:
        return sorted({e.brand for e in self.events})

    def of(self, brand: str) -> list[Event]:
        return [e for e in self.events if e.brand == brand]


def seconds(created_at: str) -> int:
    return int(datetime.strptime(created_at, "%a %b %d %H:%M:%S %z %Y").timestamp())


def stored_sentiment(scorer: SentimentScorer) -> Callable[[str], float | None]:
    """The sentiment as the warehouse's ``Float32`` column holds it, back as a Python float."""

    def score(text: str) -> float | None:
        value = scorer.score(text)
        return None if value is None else float(numpy.float32(value))

    return score


def read_sample(path: Path, sentiment: Callable[[str], float | None] | None = None) -> Sample:
    """The events of the file with their brand, conversation and customer, as ``twcs.py`` documents them:

    - brands: the authors of ``inbound=False`` rows. An outbound row belongs to its author; an inbound row to its
      parent's brand (parent in the file and having one), else to the first ``@handle`` of its text naming a
      brand (case-insensitive), else to the author of its earliest direct brand reply (ties: the smaller author);
      rows without a brand are dead-lettered and left out;
    - kind: ``reply`` with a parent, else ``post`` (outbound) or ``mention`` (inbound);
    - conversation: follow ``in_response_to_tweet_id`` up while the parent is in the file; when the chain leaves
      the file the id it last refers to is the root;
    - customer: an inbound row's author; an outbound row's parent's customer when the parent is in the file
      (so a brand's own post, a reply to it, and a reply to a tweet missing from the file have none).
    """
    score = sentiment or stored_sentiment(SentimentScorer(cache_size=0))
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["tweet_id"]: r for r in rows}
    assert len(by_id) == len(rows), "tweet ids are unique in the file"
    at = {r["tweet_id"]: seconds(r["created_at"]) for r in rows}

    def outbound(r: dict[str, str]) -> bool:
        return r["inbound"] == "False"

    brands = {r["author_id"] for r in rows if outbound(r)}
    by_lower = {b.lower(): b for b in brands}
    direct_brand_replies: dict[str, list[tuple[int, str]]] = defaultdict(list)  # tweet → [(time, brand author)]
    for r in rows:
        if outbound(r) and r["in_response_to_tweet_id"]:
            direct_brand_replies[r["in_response_to_tweet_id"]].append((at[r["tweet_id"]], r["author_id"]))

    brand_of: dict[str, str | None] = {}

    def brand(tweet_id: str) -> str | None:
        if tweet_id not in brand_of:
            r = by_id[tweet_id]
            found: str | None = None
            if outbound(r):
                found = r["author_id"]
            else:
                parent = r["in_response_to_tweet_id"]
                if parent in by_id:
                    found = brand(parent)
                if found is None:
                    named = [by_lower[h.lower()] for h in _HANDLE.findall(r["text"]) if h.lower() in by_lower]
                    if named:
                        found = named[0]
                    elif direct_brand_replies[tweet_id]:
                        found = min(direct_brand_replies[tweet_id])[1]
            brand_of[tweet_id] = found
        return brand_of[tweet_id]

    def root(tweet_id: str) -> str:
        current = tweet_id
        while True:
            parent = by_id[current]["in_response_to_tweet_id"]
            if not parent:
                return current
            if parent not in by_id:
                return parent
            current = parent

    def customer(tweet_id: str) -> str | None:
        r = by_id[tweet_id]
        if not outbound(r):
            return r["author_id"]
        parent = r["in_response_to_tweet_id"]
        return customer(parent) if parent in by_id else None

    events = []
    for r in rows:
        tid = r["tweet_id"]
        b = brand(tid)
        if b is None:
            continue
        parent = r["in_response_to_tweet_id"]
        events.append(
            Event(
                event_id=f"x:{tid}",
                brand=b,
                author=r["author_id"],
                inbound=not outbound(r),
                kind="reply" if parent else ("post" if outbound(r) else "mention"),
                at=at[tid],
                parent=f"x:{parent}" if parent else None,
                conversation=f"x:{root(tid)}",
                customer=customer(tid),
                text=r["text"],
                sentiment=score(r["text"]),
            )
        )

    # answered: the inbound message's brand wrote a message whose parent is it; the first such (time, event_id)
    inbound_ids = {e.event_id: e for e in events if e.inbound}
    first_reply: dict[str, Event] = {}
    for e in events:
        if e.inbound or e.parent not in inbound_ids or inbound_ids[e.parent].brand != e.brand:
            continue
        best = first_reply.get(e.parent)
        if best is None or e.order < best.order:
            first_reply[e.parent] = e
    return Sample(events, first_reply)


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def is_brand_reply(e: Event) -> bool:
    """ "an outbound conversational message addressed to a customer (customer_id not NULL)"."""
    return not e.inbound and e.customer is not None


def conversation_vs_broadcast(sample: Sample, brand: str) -> dict[str, Any]:
    """Figure 2: ``outbound_messages`` (outbound, conversational, not deleted), ``brand_replies`` (those with a
    customer), ``broadcasts`` (outbound posts with no parent and no customer), ``conversation_share`` = brand
    replies ÷ outbound messages, ``broadcasts_per_reply`` = broadcasts ÷ brand replies."""
    outbound = [e for e in sample.of(brand) if not e.inbound]
    replies = [e for e in outbound if is_brand_reply(e)]
    broadcasts = [e for e in outbound if e.kind == "post" and e.parent is None and e.customer is None]
    return {
        "outbound_messages": len(outbound),
        "brand_replies": len(replies),
        "broadcasts": len(broadcasts),
        "conversation_share": _rate(len(replies), len(outbound)),
        "broadcasts_per_reply": _rate(len(broadcasts), len(replies)),
    }


def conversation_depth(sample: Sample, brand: str) -> dict[str, Any]:
    """Figure 3: a conversation = a conversation_id with at least one inbound message of the brand.
    ``conversation_messages_avg``: mean over them of the brand's messages in it of both sides (its inbound messages
    and its own outbound ones); ``multi_turn_conversations``: the brand wrote at least 2 of them; ``multi_turn_rate``
    = multi-turn ÷ conversations."""
    messages: dict[str, int] = defaultdict(int)
    written: dict[str, int] = defaultdict(int)
    started = set()
    for e in sample.of(brand):
        messages[e.conversation] += 1
        if e.inbound:
            started.add(e.conversation)
        else:
            written[e.conversation] += 1
    multi = sum(1 for c in started if written[c] >= 2)
    return {
        "conversations_started": len(started),
        "conversation_messages_avg": _mean([float(messages[c]) for c in started]),
        "multi_turn_conversations": multi,
        "multi_turn_rate": _rate(multi, len(started)),
    }


def sentiment(sample: Sample, brand: str) -> dict[str, Any]:
    """Figure 4: ``inbound_sentiment_avg`` over inbound messages with a sentiment (with text); ``negative_messages``
    (sentiment ≤ −0.05), ``negative_unanswered``, ``negative_reply_rate`` = answered negatives ÷ negatives."""
    inbound = [e for e in sample.of(brand) if e.inbound]
    scores = [e.sentiment for e in inbound if e.sentiment is not None]
    negatives = [e for e in inbound if e.sentiment is not None and e.sentiment <= NEGATIVE]
    answered = sum(1 for e in negatives if e.event_id in sample.first_reply)
    return {
        "inbound_sentiment_avg": _mean(scores),
        "negative_messages": len(negatives),
        "negative_unanswered": len(negatives) - answered,
        "negative_reply_rate": _rate(answered, len(negatives)),
    }


def _first_after(candidates: list[Event], message: Event, reply: Event) -> Event | None:
    """The first (created_at, event_id) of ``candidates`` after ``message`` and created strictly after ``reply``."""
    later = [c for c in candidates if c.order > message.order and c.at > reply.at]
    return min(later, key=lambda c: c.order, default=None)


def sentiment_shift(sample: Sample, brand: str) -> dict[str, Any]:
    """Figure 5: for each answered inbound message M with a sentiment, M′ = the same customer's first later inbound
    message with a sentiment in the same conversation whose created_at is after the reply's (M's first direct
    reply). Pairs (M, M′): ``sentiment_shift_pairs``, ``sentiment_shift_avg`` = mean of s(M′) − s(M),
    ``improved_after_reply_rate`` = share of the pairs with s(M′) − s(M) > 0.05."""
    scored: dict[tuple[str, str], list[Event]] = defaultdict(list)  # (customer, conversation) → its messages
    for e in sample.of(brand):
        if e.inbound and e.sentiment is not None:
            scored[(e.author, e.conversation)].append(e)
    shifts = []
    for messages in scored.values():
        for m in messages:
            reply = sample.first_reply.get(m.event_id)
            if reply is None:
                continue
            after = _first_after(messages, m, reply)
            if after is not None:
                assert after.sentiment is not None and m.sentiment is not None
                shifts.append(after.sentiment - m.sentiment)
    return {
        "sentiment_shift_pairs": len(shifts),
        "sentiment_shift_avg": _mean(shifts),
        "improved_after_reply_rate": _rate(sum(1 for s in shifts if s > IMPROVED), len(shifts)),
    }


def canned(sample: Sample, brand: str) -> dict[str, Any]:
    """Figure 6: ``canned_replies`` among the brand replies (``canned.canned_flags``: the issue's exact rule),
    ``canned_reply_rate`` = canned ÷ brand replies with at least 3 tokens (the replies the flags judge)."""
    flags = canned_flags((e.event_id, e.at, e.text) for e in sample.of(brand) if is_brand_reply(e))
    count = sum(flags.values())
    return {"canned_replies": count, "canned_reply_rate": _rate(count, len(flags))}


def relationships(sample: Sample, brand: str) -> dict[str, Any]:
    """Figure 7: ``customers`` (distinct authors of inbound messages), ``returning_customers`` (inbound messages in
    at least 2 distinct conversations), ``two_way_customers`` (answered inbound messages in at least 2 distinct
    conversations), ``won_back_customers`` (a negative message of theirs was answered, and a later inbound message
    of theirs — any conversation — created strictly after that reply is positive, ≥ 0.05)."""
    inbound: dict[str, list[Event]] = defaultdict(list)
    for e in sample.of(brand):
        if e.inbound:
            inbound[e.author].append(e)
    returning = two_way = won_back = 0
    for messages in inbound.values():
        returning += len({m.conversation for m in messages}) >= 2
        two_way += len({m.conversation for m in messages if m.event_id in sample.first_reply}) >= 2
        positives = [m for m in messages if m.sentiment is not None and m.sentiment >= POSITIVE]
        won_back += any(
            any(p.order > m.order and p.at > sample.first_reply[m.event_id].at for p in positives)
            for m in messages
            if m.sentiment is not None and m.sentiment <= NEGATIVE and m.event_id in sample.first_reply
        )
    return {
        "customers": len(inbound),
        "returning_customers": returning,
        "two_way_customers": two_way,
        "won_back_customers": won_back,
    }


FIGURES = (conversation_vs_broadcast, conversation_depth, sentiment, sentiment_shift, canned, relationships)


def engagement_of(sample: Sample) -> dict[str, dict[str, Any]]:
    """Figures 2-7 per brand of a read sample (every brand with an event)."""
    out = {}
    for brand in sample.brands():
        figures: dict[str, Any] = {}
        for figure in FIGURES:
            figures.update(figure(sample, brand))
        assert tuple(figures) == ENGAGEMENT_FIGURES
        out[brand] = figures
    return out


def engagement_figures(path: Path) -> dict[str, dict[str, Any]]:
    """Figures 2-7 of issue 14 per brand, over the whole twcs file at ``path``: {brand: {figure: value}}."""
    return engagement_of(read_sample(path))
