"""The engagement-versus-reach figures (issue 14) on small crafted conversations, computed by hand.

Modelled on test_care_metrics.py: the events go through the worker's own pipeline (``process_message``) into the
embedded ClickHouse, the sink's marks and aggregate refresh run after each insert, and ``rapport metrics``'s query
(``care.metrics``) reads the aggregates; every figure is also computed from ``FINAL`` rows (``direct=True``), which
must give the same answer. Each figure family has its own brand, so each hand computation only counts that brand's
events. The expected values below are counted and computed by hand from the events; the comments show how.

Sentiments are VADER compound scores of the texts (``TEXTS``; checked in the first test). Float figures are
compared with ``pytest.approx`` of the hand arithmetic (the product divides integers in ten-thousandths).
chdb allows one open data directory per process at a time: the module shares one (module-scoped).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.migrate import migrate
from streams.metrics import care, engagement
from streams.processing.pipeline import DictState
from streams.processing.records import ProcessResult
from streams.processing.sentiment import SentimentScorer
from streams.sinks.warehouse import Warehouse, connect
from streams.web.readonly_sql import Limits, run_read_only
from tests.support import pipeline
from tests.support.factories import brand_post, brand_reply, inbound
from tests.support.pipeline import store

DAY = "2026-02-02T"  # a Monday
DAY2 = "2026-02-03T"

#: The texts the hand computations use, with their VADER compound score (computed once with SentimentScorer and
#: vaderSentiment 3.3.2; the first test checks them). Negative ≤ −0.05, positive ≥ 0.05.
NEUTRAL = "where is my order?"  # 0.0 (the factories' default inbound text)
TERRIBLE = "this is terrible, my order is broken"  # −0.7351
HATE = "i hate this, worst service ever"  # −0.8616
BAD = "that is bad"  # −0.5423
GREAT_THANKS = "thanks so much, you are great!"  # 0.807
SORRY = "sorry"  # −0.0772 (negative: ≤ −0.05)
LOVE = "great stuff, love it"  # 0.8519
ANGRY = "my order is late and i am angry"  # −0.5106
OK_THANKS = "ok thanks"  # 0.6249
GREAT = "great"  # 0.6249
TERRIBLE_SORRY = "terrible and sorry"  # −0.5267
JUST_TERRIBLE = "terrible"  # −0.4767: exactly 0.05 above TERRIBLE_SORRY
TEXTS = {
    NEUTRAL: 0.0,
    TERRIBLE: -0.7351,
    HATE: -0.8616,
    BAD: -0.5423,
    GREAT_THANKS: 0.807,
    SORRY: -0.0772,
    LOVE: 0.8519,
    ANGRY: -0.5106,
    OK_THANKS: 0.6249,
    GREAT: 0.6249,
    TERRIBLE_SORRY: -0.5267,
    JUST_TERRIBLE: -0.4767,
}


def msg(brand: str, event_id: str, at: str, author: str, text: str | None = NEUTRAL, **fields: Any) -> dict[str, Any]:
    """An inbound message of ``author`` to ``brand`` at ``at`` (a full ISO time)."""
    return inbound(event_id, brand=brand, author_id=author, text=text, created_at=at, **fields)


def answer(brand: str, event_id: str, parent: str, customer: str, at: str, **fields: Any) -> dict[str, Any]:
    """``brand``'s reply to ``parent`` (a message of ``customer``) at ``at``."""
    return brand_reply(event_id, parent, customer, brand=brand, created_at=at, **fields)


def removed(event: dict[str, Any], at: str) -> dict[str, Any]:
    """The platform's report that ``event`` was removed at ``at`` (same event_id, no text, a later version)."""
    return event | {"text": None, "deleted": True, "updated_at": at}


def post(brand: str, event_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return brand_post(event_id, brand=brand, created_at=at, **fields)


def signal(brand: str, event_id: str, kind: str, author: str, at: str, **fields: Any) -> dict[str, Any]:
    """An inbound reach event (reaction, share, follow): no text."""
    return inbound(event_id, brand=brand, author_id=author, kind=kind, text=None, created_at=at, **fields)


# --- 1. follower tiers ----------------------------------------------------------------------------------------

#: tierco: one message per tier boundary. (inbound, answered, response seconds) per tier, by hand:
#:   <100      99 (t1, 60 s)                       → 1 in, 1 answered, median 60
#:   100-999   100 (t2, 120 s), 999 (t3, —)        → 2 in, 1 answered, median 120
#:   1k-9999   1,000 (t4, 300 s), 9,999 (t5, 500 s) → 2 in, 2 answered, median (300 + 500) / 2 = 400
#:   10k-99999 10,000 (t6, —), 99,999 (t7, —)      → 2 in, 0 answered, median NULL
#:   100k+     100,000 (t8, 30 s)                  → 1 in, 1 answered, median 30
#:   unknown   no follower count (t9, 90 s)        → 1 in, 1 answered, median 90
#: t1 and t2 are the same author, who gained a follower in between: the tier is the message's own count.
TIERS_STREAM: list[dict[str, Any]] = [
    msg("tierco", "x:t1", DAY + "09:00:00Z", "grower", author_followers=99),
    answer("tierco", "x:t1r", "x:t1", "grower", DAY + "09:01:00Z"),
    msg("tierco", "x:t2", DAY + "09:10:00Z", "grower", author_followers=100),
    answer("tierco", "x:t2r", "x:t2", "grower", DAY + "09:12:00Z"),
    msg("tierco", "x:t3", DAY + "09:20:00Z", "tc3", author_followers=999),
    msg("tierco", "x:t4", DAY + "09:30:00Z", "tc4", author_followers=1000),
    answer("tierco", "x:t4r", "x:t4", "tc4", DAY + "09:35:00Z"),
    msg("tierco", "x:t5", DAY + "09:40:00Z", "tc5", author_followers=9999),
    answer("tierco", "x:t5r", "x:t5", "tc5", DAY + "09:48:20Z"),
    msg("tierco", "x:t6", DAY + "09:50:00Z", "tc6", author_followers=10000),
    msg("tierco", "x:t7", DAY + "10:00:00Z", "tc7", author_followers=99999),
    msg("tierco", "x:t8", DAY + "10:10:00Z", "tc8", author_followers=100000),
    answer("tierco", "x:t8r", "x:t8", "tc8", DAY + "10:10:30Z"),
    msg("tierco", "x:t9", DAY + "10:20:00Z", "tc9"),  # no author_followers: unknown
    answer("tierco", "x:t9r", "x:t9", "tc9", DAY + "10:21:30Z"),
]


def crowd(brand: str, hour: int, followers: int | None, messages: int, answered: int) -> list[dict[str, Any]]:
    """``messages`` inbound messages to ``brand`` from distinct authors with ``followers`` followers each, one a
    minute from ``hour``:00 on DAY; the first ``answered`` of them answered 30 s later."""
    events = []
    for i in range(messages):
        author = f"{brand}-{hour}-{i}"
        at = f"{DAY}{hour:02d}:{i:02d}:"
        events.append(msg(brand, f"x:{author}", at + "00Z", author, author_followers=followers))
        if i < answered:
            events.append(answer(brand, f"x:{author}-r", f"x:{author}", author, at + "30Z"))
    return events


#: Equity brands: (tier: inbound, answered, reply rate) by counting the crowds.
EQUITY_STREAM: list[dict[str, Any]] = [
    # eq19: <100 20/10 (0.5), 1k-9999 20/16 (0.8), 100k+ 19/19 (1.0, 19 < 20: not counted), unknown 25/5 (never)
    *crowd("eq19", 9, 50, 20, 10),
    *crowd("eq19", 10, 5000, 20, 16),
    *crowd("eq19", 11, 250_000, 19, 19),
    *crowd("eq19", 12, None, 25, 5),
    # eq20: the same with a 20th message in 100k+: 20/20 (1.0, counted)
    *crowd("eq20", 9, 50, 20, 10),
    *crowd("eq20", 10, 5000, 20, 16),
    *crowd("eq20", 11, 250_000, 20, 20),
    *crowd("eq20", 12, None, 25, 5),
    # eqone: <100 30/15 is the only counted tier (100-999 has 19, unknown never counts)
    *crowd("eqone", 9, 50, 30, 15),
    *crowd("eqone", 10, 500, 19, 19),
    *crowd("eqone", 11, None, 40, 40),
    # eqzero: the highest counted tier 1k-9999 answers nobody (unknown 20/20 would be higher, never counts)
    *crowd("eqzero", 9, 50, 20, 10),
    *crowd("eqzero", 10, 5000, 20, 0),
    *crowd("eqzero", 11, None, 20, 20),
    # eqlow: the lowest counted tier answers nobody: a ratio of 0, not NULL
    *crowd("eqlow", 9, 50, 20, 0),
    *crowd("eqlow", 10, 250_000, 20, 20),
]

# --- 2. conversation versus broadcast ---------------------------------------------------------------------------

_CONV_R2 = answer("convco", "x:kr2", "x:k2", "cc2", DAY + "09:20:00Z")
_CONV_B3 = post("convco", "x:kb3", DAY + "10:30:00Z")
CONVERSATION_STREAM: list[dict[str, Any]] = [
    msg("convco", "x:k1", DAY + "09:00:00Z", "cc1"),
    msg("convco", "x:k2", DAY + "09:05:00Z", "cc2"),
    answer("convco", "x:kr1", "x:k1", "cc1", DAY + "09:10:00Z"),  # 09: brand reply
    _CONV_R2,  # 09: a brand reply, removed at 09:50: not counted (k2 stays answered in the care metrics)
    post("convco", "x:kb1", DAY + "09:30:00Z"),  # 09: broadcast
    # 09: the brand likes k1: outbound but a reaction, not a conversational message
    answer("convco", "x:kx1", "x:k1", "cc1", DAY + "09:40:00Z", kind="reaction", text=None),
    removed(_CONV_R2, DAY + "09:50:00Z"),
    answer("convco", "x:kr3", "x:k1", "cc1", DAY + "10:05:00Z"),  # 10: brand reply (k1's second)
    # 10: a direct message to a customer, no parent: a brand reply (customer_id not NULL)
    answer("convco", "x:kd1", "x:k1", "cc2", DAY + "10:06:00Z", kind="direct_message") | {"parent_id": None},
    post("convco", "x:kb2", DAY + "10:10:00Z"),  # 10: broadcast
    # 10: the brand comments under its own post: outbound conversational, no customer, has a parent: neither
    answer("convco", "x:kc1", "x:kb2", "-", DAY + "10:20:00Z", kind="comment") | {"customer_id": None},
    _CONV_B3,  # 10: a broadcast removed at 10:40: not counted
    removed(_CONV_B3, DAY + "10:40:00Z"),
]

# --- 3. conversation depth --------------------------------------------------------------------------------------

_DEEP_RB2 = answer("deepco", "x:drb2", "x:db2", "dc2", DAY + "11:10:00Z")
_DEEP_B3 = msg("deepco", "x:db3", DAY + "11:20:00Z", "dc2", kind="reply", parent_id="x:drb1")
_DEEP_D1 = msg("deepco", "x:dd1", DAY + "11:30:00Z", "dc4")
_DEEP_E1 = msg("deepco", "x:de1", DAY + "09:15:00Z", "dc6")
#: Conversations of deepco (conversational messages not deleted, of which the brand's; first inbound message):
#:   A  root: the brand's post dp; dp, da1, dra1, da2, dra2 → 5 messages, the brand's 3 (dp, dra1, dra2): multi-turn;
#:      first inbound da1 at 09:30 (the root is the brand's, 09:00, and not inbound)
#:   B  db1, drb1, db2 → 3 (drb2 and db3 were removed), the brand's 1: not multi-turn; first inbound 09:50
#:   C  dc1, drc1, drc2 → 3, the brand's 2: multi-turn; first inbound 10:30 (the brand's messages are at 11)
#:   D  dd1 (removed), dd2 → 1, the brand's 0; first inbound that is a message: dd2 at 12:10 (dd1 removed)
#:   E  de1 (removed), dre1: no inbound message, not a conversation; dp2 alone: not a conversation
DEPTH_STREAM: list[dict[str, Any]] = [
    post("deepco", "x:dp", DAY + "09:00:00Z"),
    post("deepco", "x:dp2", DAY + "09:05:00Z"),
    _DEEP_E1,
    answer("deepco", "x:dre1", "x:de1", "dc6", DAY + "09:18:00Z"),
    removed(_DEEP_E1, DAY + "09:20:00Z"),
    msg("deepco", "x:da1", DAY + "09:30:00Z", "dc1", kind="comment", parent_id="x:dp"),
    answer("deepco", "x:dra1", "x:da1", "dc1", DAY + "09:40:00Z"),
    msg("deepco", "x:db1", DAY + "09:50:00Z", "dc2"),
    msg("deepco", "x:da2", DAY + "10:10:00Z", "dc1", kind="reply", parent_id="x:dra1"),
    answer("deepco", "x:dra2", "x:da2", "dc1", DAY + "10:20:00Z"),
    answer("deepco", "x:drb1", "x:db1", "dc2", DAY + "10:30:00Z"),
    msg("deepco", "x:dc1", DAY + "10:30:00Z", "dc3"),
    msg("deepco", "x:db2", DAY + "11:00:00Z", "dc2", kind="reply", parent_id="x:drb1"),
    answer("deepco", "x:drc1", "x:dc1", "dc3", DAY + "11:05:00Z"),
    answer("deepco", "x:drc2", "x:drc1", "dc3", DAY + "11:06:00Z"),  # the brand following up its own reply
    _DEEP_RB2,
    removed(_DEEP_RB2, DAY + "11:15:00Z"),
    _DEEP_B3,
    removed(_DEEP_B3, DAY + "11:25:00Z"),
    _DEEP_D1,
    removed(_DEEP_D1, DAY + "11:40:00Z"),
    msg("deepco", "x:dd2", DAY + "12:10:00Z", "dc5", kind="reply", parent_id="x:dd1"),
]

# --- 4. sentiment -----------------------------------------------------------------------------------------------

_MOOD_S8 = msg("moodco", "x:s8", DAY + "10:10:00Z", "mc8", BAD)
SENTIMENT_STREAM: list[dict[str, Any]] = [
    msg("moodco", "x:s1", DAY + "09:00:00Z", "mc1", TERRIBLE),  # −0.7351, answered
    answer("moodco", "x:sr1", "x:s1", "mc1", DAY + "09:05:00Z"),
    msg("moodco", "x:s2", DAY + "09:10:00Z", "mc2", HATE),  # −0.8616, unanswered
    msg("moodco", "x:s3", DAY + "09:20:00Z", "mc3", BAD),  # −0.5423, answered
    answer("moodco", "x:sr3", "x:s3", "mc3", DAY + "09:25:00Z"),
    msg("moodco", "x:s4", DAY + "09:30:00Z", "mc4", GREAT_THANKS),  # 0.807
    msg("moodco", "x:s5", DAY + "09:40:00Z", "mc5", NEUTRAL),  # 0.0, answered
    answer("moodco", "x:sr5", "x:s5", "mc5", DAY + "09:45:00Z"),
    msg("moodco", "x:s6", DAY + "09:50:00Z", "mc6", None, kind="direct_message"),  # no text: no sentiment
    msg("moodco", "x:s7", DAY + "10:00:00Z", "mc7", SORRY),  # −0.0772, unanswered
    _MOOD_S8,  # −0.5423 but removed: not an inbound message
    removed(_MOOD_S8, DAY + "10:15:00Z"),
]

# --- 5. sentiment shift after a reply --------------------------------------------------------------------------


def shift_msg(
    event_id: str, at: str, author: str, text: str | None, conversation: str, **fields: Any
) -> dict[str, Any]:
    return msg("shiftco", event_id, DAY + at, author, text, conversation_id=conversation, **fields)


def shift_answer(event_id: str, parent: str, customer: str, at: str, conversation: str) -> dict[str, Any]:
    return answer("shiftco", event_id, parent, customer, DAY + at, conversation_id=conversation)


#: The conversations name their root (``conversation_id``), as twcs and Meta do, so arrival order cannot move them.
#: Pairs (M, M′), by hand:
#:   h1 (u1, −0.7351), answered 09:10. Later messages of the conversation: h1a (u1, 09:05: before the reply),
#:      h1n (u1, 09:12, no text), h1o (u2, 09:15: another customer), h1b (u1, 09:20, 0.807: M′), h1c (u1, 09:30:
#:      not the first). Shift 0.807 − (−0.7351) = 1.5421 > 0.05: improved.
#:   h2 (u3, 10:05, −0.5106), answered by a reply written at 10:00, before it. h2x (u3, 10:03, 0.8519) is after
#:      the reply but before h2: not M′; h2y (u3, 10:20, 0.6249) is. Shift 0.6249 − (−0.5106) = 1.1355: improved.
#:   h3 (u4, 11:00, −0.5423), answered; u4's next message h3z starts another conversation: no pair.
#:   h4 (u5, 12:00, no text), answered; u5 writes 0.6249 after the reply: M has no sentiment, no pair.
#:   h5 (u6, 13:00, −0.5267), answered 13:10; h5b (u6, 14:30, −0.4767): shift exactly 0.05, not improved;
#:      the pair belongs to h5's hour, 13:00.
#:   h6 (u7, 15:00, −0.5423), never answered; u7 writes 0.6249 later: no pair.
SHIFT_STREAM: list[dict[str, Any]] = [
    shift_msg("x:h1", "09:00:00Z", "u1", TERRIBLE, "x:h1"),
    shift_msg("x:h1a", "09:05:00Z", "u1", BAD, "x:h1", kind="reply", parent_id="x:h1"),
    shift_answer("x:hr1", "x:h1", "u1", "09:10:00Z", "x:h1"),
    shift_msg("x:h1n", "09:12:00Z", "u1", None, "x:h1", kind="reply", parent_id="x:hr1"),
    shift_msg("x:h1o", "09:15:00Z", "u2", LOVE, "x:h1", kind="comment", parent_id="x:h1"),
    shift_msg("x:h1b", "09:20:00Z", "u1", GREAT_THANKS, "x:h1", kind="reply", parent_id="x:hr1"),
    shift_msg("x:h1c", "09:30:00Z", "u1", HATE, "x:h1", kind="reply", parent_id="x:hr1"),
    post("shiftco", "x:hq", DAY + "09:50:00Z"),
    shift_msg("x:h2x", "10:03:00Z", "u3", LOVE, "x:hq", kind="comment", parent_id="x:hq"),
    shift_answer("x:hr2", "x:h2", "u3", "10:00:00Z", "x:hq"),  # arrives, and was written, before its message
    shift_msg("x:h2", "10:05:00Z", "u3", ANGRY, "x:hq", kind="comment", parent_id="x:hq"),
    shift_msg("x:h2y", "10:20:00Z", "u3", OK_THANKS, "x:hq", kind="reply", parent_id="x:hr2"),
    shift_msg("x:h3", "11:00:00Z", "u4", BAD, "x:h3"),
    shift_answer("x:hr3", "x:h3", "u4", "11:10:00Z", "x:h3"),
    shift_msg("x:h3z", "11:20:00Z", "u4", GREAT, "x:h3z"),
    shift_msg("x:h4", "12:00:00Z", "u5", None, "x:h4"),
    shift_answer("x:hr4", "x:h4", "u5", "12:10:00Z", "x:h4"),
    shift_msg("x:h4b", "12:20:00Z", "u5", GREAT, "x:h4", kind="reply", parent_id="x:hr4"),
    shift_msg("x:h5", "13:00:00Z", "u6", TERRIBLE_SORRY, "x:h5"),
    shift_answer("x:hr5", "x:h5", "u6", "13:10:00Z", "x:h5"),
    shift_msg("x:h5b", "14:30:00Z", "u6", JUST_TERRIBLE, "x:h5", kind="reply", parent_id="x:hr5"),
    shift_msg("x:h6", "15:00:00Z", "u7", BAD, "x:h6"),
    shift_msg("x:h6b", "15:20:00Z", "u7", GREAT, "x:h6", kind="reply", parent_id="x:h6"),
]

# --- 6. canned replies ------------------------------------------------------------------------------------------

C0 = "2026-03-02T"  # cannedco's first day
C30 = "2026-04-01T"  # 30 days later (March has 31 days)
T1 = "@amy Sorry to hear that! Please DM us your order number https://t.co/a"
# tokens(T1) = {sorry, to, hear, that, please, dm, us, your, order, number}: 10 (the handle and the URL removed)
T2 = "Thanks for reaching out, we will fix this today"  # {thanks, for, reaching, out, we, will, fix, this, today}: 9
T3 = "We are looking into it for you now"  # {we, are, looking, into, it, for, you, now}: 8


def canned_reply(brand: str, event_id: str, at: str, text: str) -> dict[str, Any]:
    customer = "k-" + event_id.split(":")[1]
    return brand_reply(event_id, event_id + "m", customer, brand=brand, text=text, created_at=at)


#: cannedco's replies (platform x unless said), sorted by (created_at, event_id); judged = ≥ 3 tokens:
#:   x:k01    C0 10:00:00  T1                       judged, first of its template           not canned
#:   x:k02    C0 11:00:00  T2                       judged, first                           not canned
#:   facebook:k9 C0 12:00:00 T3                     judged; "facebook:k9" < "x:k1": earlier not canned
#:   x:k1     C0 12:00:00  T3                       judged; same time, larger event_id       canned (Jaccard 1)
#:   x:k03    C0 13:00:00  "@bob Thanks!"           1 token: not judged
#:   x:k04    C0 13:30:00  "@cat thanks!"           1 token: not judged (nor a reference)
#:   x:k05    C0 14:00:00  "DM us please"           3 tokens: judged, first                 not canned
#:   x:k06    C0 14:30:00  "please DM us"           judged, = k05's tokens                  canned
#:   x:k07    C30 10:00:00 T1's words, other handle judged; k01 exactly 30 days before     canned
#:   x:k08    C30 11:00:01 T2                       judged; k02 30 days and 1 s before: out  not canned
#:   x:k09    C30 12:00:00 T1 without "order number" 8 tokens ⊂ k07's 10: Jaccard 8/10 = 0.8 canned
#: Totals: judged 9, canned 4 (x:k1, k06, k07, k09); from C30 on: judged 3 (k07, k08, k09), canned 2.
#: By platform: facebook judged 1, canned 0; x judged 8, canned 4.
#: otherco writes T1 before k01 and T3 after cannedco's T3 replies: another brand's replies are not compared, so
#: k01 stays uncanned, and otherco has judged 2, canned 0.
#: k01 and facebook:k9 arrive last, in a later batch (CANNED_LATE): the flags of x:k1 and of k07, 30 days later,
#: must be recomputed.
CANNED_STREAM: list[dict[str, Any]] = [
    canned_reply("otherco", "x:o01", C0 + "09:00:00Z", T1),
    canned_reply("cannedco", "x:k02", C0 + "11:00:00Z", T2),
    canned_reply("cannedco", "x:k1", C0 + "12:00:00Z", T3),
    canned_reply("cannedco", "x:k03", C0 + "13:00:00Z", "@bob Thanks!"),
    canned_reply("cannedco", "x:k04", C0 + "13:30:00Z", "@cat thanks!"),
    canned_reply("cannedco", "x:k05", C0 + "14:00:00Z", "DM us please"),
    canned_reply("cannedco", "x:k06", C0 + "14:30:00Z", "please DM us"),
    canned_reply("otherco", "x:o02", "2026-03-03T09:00:00Z", T3),
    canned_reply("cannedco", "x:k07", C30 + "10:00:00Z", "@dan sorry to hear that, please DM us your order number"),
    canned_reply("cannedco", "x:k08", C30 + "11:00:01Z", T2),
    canned_reply("cannedco", "x:k09", C30 + "12:00:00Z", "Sorry to hear that, please DM us your"),
]
CANNED_LATE: list[dict[str, Any]] = [
    canned_reply("cannedco", "x:k01", C0 + "10:00:00Z", T1),
    canned_reply("cannedco", "facebook:k9", C0 + "12:00:00Z", T3) | {"platform": "facebook"},
]

# --- 7. relationships -------------------------------------------------------------------------------------------

_LOYAL_L9 = msg("loyalco", "x:l9a", DAY + "18:00:00Z", "p9")
#: loyalco's customers (conversations of their inbound messages; answered ones; won back?), by hand:
#:   p1  l1a (DAY), l1b (DAY2): 2 conversations, both answered: returning, two-way
#:   p2  l2a and its follow-up l2b: 1 conversation, both answered: neither
#:   p3  l3a answered, l3b another conversation, unanswered: returning, not two-way
#:   p4  l4a (−0.7351) answered 13:10; l4b (0.807) on DAY2, after the reply: won back
#:   p5  l5a (−0.5423) answered 14:30; l5b (0.4404) at 14:10, before the reply: not won back
#:   p6  l6a (−0.8616) never answered; l6b (0.6249) later: not won back
#:   p7  l7a (−0.5423) answered; l7b (0.0) after: not positive, not won back
#:   p8  l8a (−0.5423) answered 17:05; l8b (0.6249) at 17:30 in another conversation: won back; returning
#:   p9  only a removed message: not a customer
RELATIONSHIP_STREAM: list[dict[str, Any]] = [
    msg("loyalco", "x:l1a", DAY + "09:00:00Z", "p1"),
    answer("loyalco", "x:lr1a", "x:l1a", "p1", DAY + "09:10:00Z"),
    msg("loyalco", "x:l2a", DAY + "10:00:00Z", "p2"),
    answer("loyalco", "x:lr2a", "x:l2a", "p2", DAY + "10:05:00Z"),
    msg("loyalco", "x:l2b", DAY + "10:20:00Z", "p2", kind="reply", parent_id="x:lr2a"),
    answer("loyalco", "x:lr2b", "x:l2b", "p2", DAY + "10:25:00Z"),
    msg("loyalco", "x:l3a", DAY + "11:00:00Z", "p3"),
    answer("loyalco", "x:lr3a", "x:l3a", "p3", DAY + "11:05:00Z"),
    msg("loyalco", "x:l3b", DAY + "12:00:00Z", "p3"),
    msg("loyalco", "x:l4a", DAY + "13:00:00Z", "p4", TERRIBLE),
    answer("loyalco", "x:lr4a", "x:l4a", "p4", DAY + "13:10:00Z"),
    msg("loyalco", "x:l5a", DAY + "14:00:00Z", "p5", BAD),
    msg("loyalco", "x:l5b", DAY + "14:10:00Z", "p5", "thanks", kind="reply", parent_id="x:l5a"),  # 0.4404
    answer("loyalco", "x:lr5a", "x:l5a", "p5", DAY + "14:30:00Z"),
    msg("loyalco", "x:l6a", DAY + "15:00:00Z", "p6", HATE),
    msg("loyalco", "x:l6b", DAY + "15:30:00Z", "p6", GREAT, kind="reply", parent_id="x:l6a"),
    msg("loyalco", "x:l7a", DAY + "16:00:00Z", "p7", BAD),
    answer("loyalco", "x:lr7a", "x:l7a", "p7", DAY + "16:05:00Z"),
    msg("loyalco", "x:l7b", DAY + "16:30:00Z", "p7", NEUTRAL, kind="reply", parent_id="x:lr7a"),
    msg("loyalco", "x:l8a", DAY + "17:00:00Z", "p8", BAD),
    answer("loyalco", "x:lr8a", "x:l8a", "p8", DAY + "17:05:00Z"),
    msg("loyalco", "x:l8b", DAY + "17:30:00Z", "p8", GREAT),
    _LOYAL_L9,
    removed(_LOYAL_L9, DAY + "18:05:00Z"),
    msg("loyalco", "x:l1b", DAY2 + "09:00:00Z", "p1"),
    answer("loyalco", "x:lr1b", "x:l1b", "p1", DAY2 + "09:10:00Z"),
    msg("loyalco", "x:l4b", DAY2 + "08:00:00Z", "p4", GREAT_THANKS, kind="reply", parent_id="x:lr4a"),
]

# --- 8. reach ---------------------------------------------------------------------------------------------------

_REACH_P1 = post("reachco", "x:rp1", DAY + "09:30:00Z", impressions=1000, likes=10, shares=2, replies=3)
_REACH_P5 = post("reachco", "x:rp5", DAY + "10:30:00Z", impressions=9999, likes=99, shares=9, replies=9)
_REACH_F2 = signal("reachco", "x:rf2", "follow", "f7", DAY + "11:11:00Z")
#: reachco, by hand (posts = outbound, kind post, no parent, not removed; latest version of the counters):
#:   hour 09  rp1: first 1,000/10/2/3, edited later (REACH_LATE) to impressions 5,000, likes 40, shares 5,
#:            replies 7; rp2: 2,000/15/1/0. Not a post: the brand reply rr1 (100 impressions). Inbound ri1
#:            (answered), ri2 (answered), ri3: 2 answered.
#:   hour 10  rp3: impressions unknown, likes 5, shares 0, replies 1. Not posts: rp4 (has a parent, 300
#:            impressions), rp5 (removed).
#:   hour 11  reactions re1-re3, shares rs1-rs2, follows rf1-rf3 (rf2 unfollowed: removed), the brand's own reaction.
REACH_STREAM: list[dict[str, Any]] = [
    msg("reachco", "x:ri1", DAY + "09:00:00Z", "rc1"),
    answer("reachco", "x:rr1", "x:ri1", "rc1", DAY + "09:05:00Z", impressions=100, likes=1),
    msg("reachco", "x:ri2", DAY + "09:10:00Z", "rc2"),
    answer("reachco", "x:rr2", "x:ri2", "rc2", DAY + "09:20:00Z"),
    msg("reachco", "x:ri3", DAY + "09:20:00Z", "rc3"),
    _REACH_P1,
    post("reachco", "x:rp2", DAY + "09:45:00Z", impressions=2000, likes=15, shares=1, replies=0),
    post("reachco", "x:rp3", DAY + "10:00:00Z", likes=5, shares=0, replies=1),
    post("reachco", "x:rp4", DAY + "10:15:00Z", parent_id="x:rp1", impressions=300, likes=3, shares=0, replies=0),
    _REACH_P5,
    removed(_REACH_P5, DAY + "10:45:00Z") | {"impressions": None, "likes": None, "shares": None, "replies": None},
    signal("reachco", "x:re1", "reaction", "f1", DAY + "11:00:00Z", parent_id="x:rp1"),
    signal("reachco", "x:re2", "reaction", "f2", DAY + "11:01:00Z", parent_id="x:rp1"),
    signal("reachco", "x:re3", "reaction", "f3", DAY + "11:02:00Z", parent_id="x:rp2"),
    signal("reachco", "x:rs1", "share", "f4", DAY + "11:05:00Z", parent_id="x:rp1"),
    signal("reachco", "x:rs2", "share", "f5", DAY + "11:06:00Z", parent_id="x:rp2"),
    signal("reachco", "x:rf1", "follow", "f6", DAY + "11:10:00Z"),
    _REACH_F2,
    signal("reachco", "x:rf3", "follow", "f8", DAY + "11:12:00Z"),
    # the brand likes a customer's message: an outbound reaction is no reach signal (those are inbound)
    answer("reachco", "x:rx1", "x:ri3", "rc3", DAY + "11:20:00Z", kind="reaction", text=None),
    removed(_REACH_F2, DAY + "11:50:00Z"),  # the unfollow
]
#: rp1's later version: the platform reports grown counters (same event_id, later updated_at).
REACH_LATE: list[dict[str, Any]] = [
    _REACH_P1 | {"updated_at": DAY + "12:00:00Z", "impressions": 5000, "likes": 40, "shares": 5, "replies": 7},
]

#: Each section is stored (inserted, marked, refreshed) in turn, as the worker's batches; the late ones last.
SECTIONS: list[tuple[list[dict[str, Any]], int]] = [
    (TIERS_STREAM, 3),
    (EQUITY_STREAM, 60),
    (CONVERSATION_STREAM, 3),
    (DEPTH_STREAM, 3),
    (SENTIMENT_STREAM, 3),
    (SHIFT_STREAM, 3),
    (CANNED_STREAM, 3),
    (RELATIONSHIP_STREAM, 3),
    (REACH_STREAM, 3),
    (CANNED_LATE, 1),
    (REACH_LATE, 1),
]
STREAM: list[dict[str, Any]] = [event for events, _ in SECTIONS for event in events]


def process(events: Sequence[dict[str, Any]], state: DictState, per_message: int = 3) -> list[ProcessResult]:
    results = pipeline.process(events, state, per_message)
    for result in results:
        assert not result.dead_letters, result.dead_letters
    return results


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    opened = connect(f"chdb://{tmp_path_factory.mktemp('engagement') / 'ch'}")
    migrate(opened)
    state = DictState()  # one worker: the state carries over from one section to the next
    for events, per_message in SECTIONS:
        store(opened, process(events, state, per_message))
    yield opened
    opened.close()


KEYS = ("brand", "platform", "day", "hour", "tier")


def figures(warehouse: Warehouse, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """The figures per group (keyed "brand [platform|day|hour] [tier]") from the aggregates, after checking they
    equal the computation from the rows."""
    query = care.MetricsQuery(**kwargs)
    aggregated, direct = care.metrics(warehouse, query), care.metrics(warehouse, query, direct=True)
    assert aggregated == direct
    return {
        " ".join(str(row[k]) for k in KEYS if k in row): {k: v for k, v in row.items() if k not in KEYS}
        for row in aggregated
    }


def pick(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: row[name] for name in names}


def hour(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


approx = pytest.approx


def test_the_texts_have_the_sentiments_the_hand_computation_assumes() -> None:
    score = SentimentScorer().score
    assert {text: score(text) for text in TEXTS} == TEXTS
    assert score("thanks") == 0.4404
    assert SentimentScorer.reference_score(JUST_TERRIBLE) == -0.4767  # vaderSentiment itself agrees


def test_the_engagement_figures_follow_the_care_figures(warehouse: Warehouse) -> None:
    row = care.metrics(warehouse, care.MetricsQuery(brands=("tierco",)))[0]
    assert tuple(row)[-len(engagement.FIGURES) :] == engagement.FIGURES
    tier_row = care.metrics(warehouse, care.MetricsQuery(brands=("tierco",), by="brand,tier"))[0]
    assert tuple(tier_row) == ("brand", "tier", *engagement.TIER_FIGURES)


# --- 1. response equity by follower tier -------------------------------------------------------------------------


def test_tier_boundaries_99_100_999_1000_9999_10000_99999_100000_and_unknown(warehouse: Warehouse) -> None:
    tiers = figures(warehouse, by="brand,tier", brands=("tierco",))
    names = ("inbound_messages", "answered_messages", "reply_rate", "first_response_median_s")
    assert {k: pick(v, *names) for k, v in tiers.items()} == {
        "tierco <100": dict(zip(names, (1, 1, 1.0, 60.0), strict=True)),  # 99 followers
        "tierco 100-999": dict(zip(names, (2, 1, 0.5, 120.0), strict=True)),  # 100 (answered), 999
        "tierco 1k-9999": dict(zip(names, (2, 2, 1.0, 400.0), strict=True)),  # 1,000 and 9,999: (300 + 500) / 2
        "tierco 10k-99999": dict(zip(names, (2, 0, 0.0, None), strict=True)),  # 10,000 and 99,999, unanswered
        "tierco 100k+": dict(zip(names, (1, 1, 1.0, 30.0), strict=True)),  # 100,000
        "tierco unknown": dict(zip(names, (1, 1, 1.0, 90.0), strict=True)),  # no follower count
    }
    assert {v["equity_index"] for v in tiers.values()} == {None}  # no tier has 20 messages
    with_platform = figures(warehouse, by="brand,platform,tier", brands=("tierco",))
    assert with_platform == {k.replace("tierco ", "tierco x "): v for k, v in tiers.items()}
    # the same messages without tiers: 9 in, 6 answered (60, 120, 300, 500, 30, 90 s)
    whole = figures(warehouse, brands=("tierco",))["tierco"]
    assert pick(whole, "inbound_messages", "answered_messages", "equity_index") == {
        "inbound_messages": 9,
        "answered_messages": 6,
        "equity_index": None,
    }


def test_equity_a_tier_with_19_messages_does_not_count_one_with_20_does(warehouse: Warehouse) -> None:
    brands = figures(warehouse, brands=("eq19", "eq20"))
    # eq19: lowest counted <100 (10/20 = 0.5), highest counted 1k-9999 (16/20 = 0.8); 100k+ has 19 messages
    assert brands["eq19"]["equity_index"] == approx(0.5 / 0.8)  # 0.625
    # eq20: 100k+ has 20 messages, all answered, and becomes the highest counted tier: 0.5 / 1.0
    assert brands["eq20"]["equity_index"] == approx(0.5 / 1.0)
    tiers = figures(warehouse, by="brand,tier", brands=("eq19",))
    assert {k: (v["inbound_messages"], v["answered_messages"]) for k, v in tiers.items()} == {
        "eq19 <100": (20, 10),
        "eq19 1k-9999": (20, 16),
        "eq19 100k+": (19, 19),
        "eq19 unknown": (25, 5),
    }
    assert [v["equity_index"] for v in tiers.values()] == [approx(0.625)] * 4  # the brand's index on each tier row
    assert tiers["eq19 100k+"]["reply_rate"] == 1.0
    assert tiers["eq19 100k+"]["first_response_median_s"] == 30.0  # every reply 30 s after its message


def test_equity_null_with_fewer_than_two_counted_tiers_and_unknown_never_counts(warehouse: Warehouse) -> None:
    # eqone: <100 has 30 messages (counted), 100-999 19 (not), unknown 40 (never): one counted tier
    assert figures(warehouse, brands=("eqone",))["eqone"]["equity_index"] is None
    # eq19: unknown (25 messages, 5/25 = 0.2) comes after 100k+; counted, it would be the highest: 0.5 / 0.2 = 2.5
    assert figures(warehouse, brands=("eq19",))["eq19"]["equity_index"] == approx(0.5 / 0.8)


def test_equity_null_when_the_highest_counted_tier_rate_is_0(warehouse: Warehouse) -> None:
    both = figures(warehouse, brands=("eqzero", "eqlow"))
    # eqzero: <100 10/20, 1k-9999 0/20 (highest counted, rate 0) → NULL; unknown 20/20 never counts
    assert both["eqzero"]["equity_index"] is None
    # eqlow: <100 0/20 (lowest), 100k+ 20/20 (highest): 0 / 1 = 0.0, a figure, not NULL
    assert both["eqlow"]["equity_index"] == 0.0


# --- 2. conversation versus broadcast ---------------------------------------------------------------------------


def test_conversation_versus_broadcast_and_a_deleted_reply(warehouse: Warehouse) -> None:
    names = ("outbound_messages", "brand_replies", "broadcasts", "conversation_share", "broadcasts_per_reply")
    whole = figures(warehouse, brands=("convco",))["convco"]
    # outbound conversational, not removed: kr1, kr3, kd1, kb1, kb2, kc1 = 6 (kr2 and kb3 removed, kx1 a reaction);
    # brand replies (customer set): kr1, kr3, kd1 = 3; broadcasts: kb1, kb2 = 2
    assert pick(whole, *names) == {
        "outbound_messages": 6,
        "brand_replies": 3,
        "broadcasts": 2,
        "conversation_share": 3 / 6,
        "broadcasts_per_reply": 2 / 3,
    }
    assert whole["posts"] == 2  # kb1, kb2
    assert whole["answered_messages"] == 2  # k2's reply was removed, but it was given (care metrics)
    hours = figures(warehouse, by="brand,hour", brands=("convco",))
    # attributed to the outbound message's own time: 09 kr1, kb1; 10 kr3, kd1, kb2, kc1
    assert {k: pick(v, *names) for k, v in hours.items()} == {
        "convco 2026-02-02T09:00:00Z": dict(zip(names, (2, 1, 1, 1 / 2, 1 / 1), strict=True)),
        "convco 2026-02-02T10:00:00Z": dict(zip(names, (4, 2, 1, 2 / 4, 1 / 2), strict=True)),
    }


# --- 3. conversation depth --------------------------------------------------------------------------------------

DEPTH = ("conversations_started", "conversation_messages_avg", "multi_turn_conversations", "multi_turn_rate")


def test_conversation_depth_and_deleted_messages(warehouse: Warehouse) -> None:
    deep = figures(warehouse, brands=("deepco",))["deepco"]
    # A, B, C, D: 4 conversations; messages 5 + 3 + 3 + 1 = 12; multi-turn A and C
    assert pick(deep, *DEPTH) == dict(zip(DEPTH, (4, 12 / 4, 2, 2 / 4), strict=True))


def test_a_conversation_is_attributed_to_its_first_inbound_message_hour(warehouse: Warehouse) -> None:
    hours = figures(warehouse, by="brand,hour", brands=("deepco",))
    assert {k: pick(v, *DEPTH) for k, v in hours.items()} == {
        # A (first inbound da1 09:30, though its root is the brand's post) and B: (5 + 3) / 2, A multi-turn
        "deepco 2026-02-02T09:00:00Z": dict(zip(DEPTH, (2, 8 / 2, 1, 1 / 2), strict=True)),
        # C (dc1 10:30; its brand messages are at 11); A's and B's later messages are not conversations here
        "deepco 2026-02-02T10:00:00Z": dict(zip(DEPTH, (1, 3 / 1, 1, 1 / 1), strict=True)),
        # only later messages of A-C and the removed dd1: no conversation starts
        "deepco 2026-02-02T11:00:00Z": dict(zip(DEPTH, (0, None, 0, None), strict=True)),
        # D: its first inbound message that is still one, dd2 at 12:10
        "deepco 2026-02-02T12:00:00Z": dict(zip(DEPTH, (1, 1 / 1, 0, 0 / 1), strict=True)),
    }
    # a range of whole hours: [10:00, 12:00) holds C only, with all its messages (those of hour 11 too)
    ranged = figures(warehouse, brands=("deepco",), start=hour("2026-02-02T10:00"), end=hour("2026-02-02T12:00"))
    assert pick(ranged["deepco"], *DEPTH) == dict(zip(DEPTH, (1, 3.0, 1, 1.0), strict=True))
    # [09:00, 10:00): A and B with their messages of hours 10 and 11
    ranged = figures(warehouse, brands=("deepco",), start=hour("2026-02-02T09:00"), end=hour("2026-02-02T10:00"))
    assert pick(ranged["deepco"], *DEPTH) == dict(zip(DEPTH, (2, 4.0, 1, 0.5), strict=True))


# --- 4. sentiment -----------------------------------------------------------------------------------------------


def test_sentiment_and_messages_without_text(warehouse: Warehouse) -> None:
    mood = figures(warehouse, brands=("moodco",))["moodco"]
    # inbound: s1-s7 (s8 removed); with text: s1-s5, s7 (s6 has none)
    assert mood["inbound_messages"] == 7
    assert mood["inbound_sentiment_avg"] == approx((-0.7351 - 0.8616 - 0.5423 + 0.807 + 0.0 - 0.0772) / 6)
    # negative (≤ −0.05): s1, s2, s3, s7; answered: s1, s3
    assert pick(mood, "negative_messages", "negative_unanswered", "negative_reply_rate") == {
        "negative_messages": 4,
        "negative_unanswered": 2,
        "negative_reply_rate": 2 / 4,
    }
    # the brand's own replies ("sorry! DM us", −0.1511) are outbound: in none of these
    early = figures(warehouse, brands=("moodco",), start=hour("2026-02-02T10:00"))["moodco"]
    assert early["inbound_sentiment_avg"] == approx(-0.0772)  # s7 alone (s8 removed)
    assert (early["negative_messages"], early["negative_unanswered"], early["negative_reply_rate"]) == (1, 1, 0.0)


def test_sentiment_without_any_text_is_null_not_zero(warehouse: Warehouse) -> None:
    # reachco's hour 11 has reach events (no text) and no message: no average, no rate, not 0
    hours = figures(warehouse, by="brand,hour", brands=("reachco",))
    assert hours["reachco 2026-02-02T11:00:00Z"]["inbound_sentiment_avg"] is None
    assert hours["reachco 2026-02-02T11:00:00Z"]["negative_reply_rate"] is None


# --- 5. sentiment shift after a reply ---------------------------------------------------------------------------

SHIFT = ("sentiment_shift_pairs", "sentiment_shift_avg", "improved_after_reply_rate")


def test_sentiment_shift_pairs(warehouse: Warehouse) -> None:
    shift = figures(warehouse, brands=("shiftco",))["shiftco"]
    # pairs (h1, h1b) 1.5421, (h2, h2y) 1.1355, (h5, h5b) 0.05; improved: the first two
    assert pick(shift, *SHIFT) == {
        "sentiment_shift_pairs": 3,
        "sentiment_shift_avg": approx((1.5421 + 1.1355 + 0.05) / 3),
        "improved_after_reply_rate": 2 / 3,
    }
    hours = figures(warehouse, by="brand,hour", brands=("shiftco",))
    assert {k: v["sentiment_shift_pairs"] for k, v in hours.items()} == {
        "shiftco 2026-02-02T09:00:00Z": 1,  # h1's M′ is h1b: not h1a (before the reply), h1n (no text), h1o (u2)
        "shiftco 2026-02-02T10:00:00Z": 1,  # h2's reply came first; M′ is h2y, not h2x (before h2)
        "shiftco 2026-02-02T11:00:00Z": 0,  # h3's follow-up is in another conversation
        "shiftco 2026-02-02T12:00:00Z": 0,  # h4 has no text
        "shiftco 2026-02-02T13:00:00Z": 1,  # h5
        "shiftco 2026-02-02T14:00:00Z": 0,  # h5b is M′, the pair is h5's
        "shiftco 2026-02-02T15:00:00Z": 0,  # h6 never answered
    }
    # h1: 0.807 − (−0.7351); had h1o (u2, 0.8519) or h1c (−0.8616) been taken, the shift would differ
    assert hours["shiftco 2026-02-02T09:00:00Z"]["sentiment_shift_avg"] == approx(0.807 + 0.7351)
    # h2: 0.6249 − (−0.5106) with h2y; with h2x (10:03: after the 10:00 reply, before h2) it would be 0.8519 + 0.5106
    assert hours["shiftco 2026-02-02T10:00:00Z"]["sentiment_shift_avg"] == approx(0.6249 + 0.5106)


def test_a_shift_of_exactly_0_05_is_not_improved_and_belongs_to_m(warehouse: Warehouse) -> None:
    h5 = figures(warehouse, brands=("shiftco",), start=hour("2026-02-02T13:00"), end=hour("2026-02-02T14:00"))
    # −0.4767 − (−0.5267) = 0.05: a pair, not > 0.05
    assert pick(h5["shiftco"], *SHIFT) == {
        "sentiment_shift_pairs": 1,
        "sentiment_shift_avg": approx(0.05),
        "improved_after_reply_rate": 0.0,
    }
    later = figures(warehouse, brands=("shiftco",), start=hour("2026-02-02T14:00"))
    assert pick(later["shiftco"], *SHIFT) == dict(zip(SHIFT, (0, None, None), strict=True))


# --- 6. canned replies ------------------------------------------------------------------------------------------


def test_canned_replies_ties_the_30_day_window_and_short_replies(warehouse: Warehouse) -> None:
    canned = figures(warehouse, brands=("cannedco",))["cannedco"]
    assert pick(canned, "brand_replies", "canned_replies", "canned_reply_rate") == {
        "brand_replies": 11,  # every reply, judged or not (k03, k04 have one token)
        "canned_replies": 4,  # x:k1, k06, k07, k09
        "canned_reply_rate": 4 / 9,
    }
    platforms = figures(warehouse, by="brand,platform", brands=("cannedco",))
    # the tie: facebook:k9 is the earlier (smaller event_id), x:k1 the canned one
    assert pick(platforms["cannedco facebook"], "canned_replies", "canned_reply_rate") == {
        "canned_replies": 0,
        "canned_reply_rate": 0 / 1,
    }
    assert pick(platforms["cannedco x"], "canned_replies", "canned_reply_rate") == {
        "canned_replies": 4,
        "canned_reply_rate": 4 / 8,
    }
    # attributed to the reply's time: from C30 on, k07 (exactly 30 days after k01: canned), k08 (30 days and 1 s
    # after k02: not canned), k09 (Jaccard 0.8 with k07: canned)
    later = figures(warehouse, brands=("cannedco",), start=hour("2026-04-01T00:00"))["cannedco"]
    assert pick(later, "canned_replies", "canned_reply_rate") == {"canned_replies": 2, "canned_reply_rate": 2 / 3}
    hours = figures(warehouse, by="brand,hour", brands=("cannedco",), start=hour("2026-04-01T00:00"))
    assert {k: v["canned_replies"] for k, v in hours.items()} == {
        "cannedco 2026-04-01T10:00:00Z": 1,  # k07
        "cannedco 2026-04-01T11:00:00Z": 0,  # k08
        "cannedco 2026-04-01T12:00:00Z": 1,  # k09
    }
    # replies with fewer than 3 tokens are not judged: hour 13 of C0 holds only k03 and k04
    short = figures(warehouse, by="brand,hour", brands=("cannedco",), start=hour("2026-03-02T13:00"))
    assert pick(short["cannedco 2026-03-02T13:00:00Z"], "brand_replies", "canned_replies", "canned_reply_rate") == {
        "brand_replies": 2,
        "canned_replies": 0,
        "canned_reply_rate": None,
    }


def test_canned_replies_of_another_brand_are_not_compared(warehouse: Warehouse) -> None:
    brands = figures(warehouse, brands=("cannedco", "otherco"))
    # otherco: o01 (T1, before cannedco's k01) and o02 (T3, after cannedco's T3 replies): both judged, not canned
    assert pick(brands["otherco"], "canned_replies", "canned_reply_rate") == {
        "canned_replies": 0,
        "canned_reply_rate": 0 / 2,
    }
    # cannedco's first hour holds k01 alone: not canned, though otherco wrote the same text an hour before
    first = figures(warehouse, brands=("cannedco",), start=hour("2026-03-02T10:00"), end=hour("2026-03-02T11:00"))
    assert pick(first["cannedco"], "canned_replies", "canned_reply_rate") == {
        "canned_replies": 0,
        "canned_reply_rate": 0 / 1,
    }


# --- 7. relationships -------------------------------------------------------------------------------------------

PEOPLE = ("customers", "returning_customers", "two_way_customers", "won_back_customers")


def test_relationships(warehouse: Warehouse) -> None:
    loyal = figures(warehouse, brands=("loyalco",))["loyalco"]
    # customers p1-p8 (p9's only message was removed); returning p1, p3, p8; two-way p1; won back p4, p8
    assert pick(loyal, *PEOPLE) == dict(zip(PEOPLE, (8, 3, 1, 2), strict=True))
    # reach events are not messages: reachco's 8 reacting, sharing, following people are not customers
    assert figures(warehouse, brands=("reachco",))["reachco"]["customers"] == 3


def test_relationships_over_a_range_that_cuts_a_customers_conversations(warehouse: Warehouse) -> None:
    # DAY: p1-p8 wrote; p1 has one conversation in it (l1a): not returning, not two-way; returning p3, p8;
    # won back: p8, and p4, whose negative l4a (DAY) was answered and whose positive l4b came on DAY2
    # (attributed to the negative message's time, as figure 5 is to M's)
    day1 = figures(warehouse, brands=("loyalco",), start=hour("2026-02-02T00:00"), end=hour("2026-02-03T00:00"))
    day1 = day1["loyalco"]
    assert pick(day1, *PEOPLE) == dict(zip(PEOPLE, (8, 2, 0, 2), strict=True))
    # DAY2: p1 (l1b) and p4 (l4b); one conversation each; p4's negative message is not in the range
    day2 = figures(warehouse, brands=("loyalco",), start=hour("2026-02-03T00:00"))["loyalco"]
    assert pick(day2, *PEOPLE) == dict(zip(PEOPLE, (2, 0, 0, 0), strict=True))
    # the same per day (each customer judged within the day)
    days = figures(warehouse, by="brand,day", brands=("loyalco",))
    assert {k: pick(v, *PEOPLE) for k, v in days.items()} == {
        "loyalco 2026-02-02": dict(zip(PEOPLE, (8, 2, 0, 2), strict=True)),
        "loyalco 2026-02-03": dict(zip(PEOPLE, (2, 0, 0, 0), strict=True)),
    }


# --- 8. reach ---------------------------------------------------------------------------------------------------

REACH = ("posts", "impressions", "likes", "shares", "post_replies")


def test_reach_counts_the_latest_version_of_each_post(warehouse: Warehouse) -> None:
    reach = figures(warehouse, brands=("reachco",))["reachco"]
    # posts rp1 (edited), rp2, rp3; impressions 5,000 + 2,000 (rp3 unknown); likes 40 + 15 + 5; shares 5 + 1 + 0;
    # replies 7 + 0 + 1
    assert pick(reach, *REACH) == dict(zip(REACH, (3, 7000, 60, 6, 8), strict=True))
    # over the posts with impressions (rp1, rp2): (40 + 5 + 7) + (15 + 1 + 0) = 68 engagements on 7,000
    assert reach["vanity_engagement_rate"] == approx(68 / 7000)
    # ri1 and ri2 answered, ri3 not
    assert reach["answered_messages"] == 2
    assert reach["answered_per_1k_impressions"] == approx(2 / 7000 * 1000)


def test_a_post_without_impressions_leaves_them_null_never_zero(warehouse: Warehouse) -> None:
    hours = figures(warehouse, by="brand,hour", brands=("reachco",))
    nine, ten = hours["reachco 2026-02-02T09:00:00Z"], hours["reachco 2026-02-02T10:00:00Z"]
    assert pick(nine, *REACH) == dict(zip(REACH, (2, 7000, 55, 6, 7), strict=True))
    assert nine["vanity_engagement_rate"] == approx(68 / 7000)
    assert nine["answered_per_1k_impressions"] == approx(2 / 7000 * 1000)
    # hour 10: rp3 alone is a post, without impressions (rp4's 300 are a threaded post's, rp5 was removed)
    assert pick(ten, *REACH) == dict(zip(REACH, (1, None, 5, 0, 1), strict=True))
    assert (ten["vanity_engagement_rate"], ten["answered_per_1k_impressions"]) == (None, None)


def test_reach_signal_events_and_an_unfollow(warehouse: Warehouse) -> None:
    names = ("reaction_events", "share_events", "follow_events")
    reach = figures(warehouse, brands=("reachco",))["reachco"]
    # reactions re1-re3 (not the brand's own), shares rs1-rs2, follows rf1, rf3 (rf2 unfollowed)
    assert pick(reach, *names) == dict(zip(names, (3, 2, 2), strict=True))
    assert reach["inbound_messages"] == 3  # reach events are not messages
    # outbound conversational, not removed: rr1, rr2, rp1-rp4 (rp5 removed, rx1 a reaction); broadcasts rp1-rp3
    assert pick(reach, "outbound_messages", "brand_replies", "broadcasts") == {
        "outbound_messages": 6,
        "brand_replies": 2,
        "broadcasts": 3,
    }
    hours = figures(warehouse, by="brand,hour", brands=("reachco",))
    assert pick(hours["reachco 2026-02-02T11:00:00Z"], *names) == dict(zip(names, (3, 2, 2), strict=True))
    assert pick(hours["reachco 2026-02-02T09:00:00Z"], *names) == dict(zip(names, (0, 0, 0), strict=True))


# --- replays ----------------------------------------------------------------------------------------------------


def test_redelivery_replay_and_a_crash_between_insert_and_refresh_change_no_figure(warehouse: Warehouse) -> None:
    groupings = ("brand,hour", "brand,tier", "brand,platform")
    before = {by: figures(warehouse, by=by) for by in groupings}
    state = DictState()
    results = process(STREAM, state, per_message=25)  # the whole stream replayed, cut into other messages
    store(warehouse, results[:3], refresh=False)  # a worker killed after the marks, before its timer ran…
    store(warehouse, results)  # …and the next run recomputes them with its own batches
    store(warehouse, process(STREAM[:40], state, per_message=7))  # Kafka redelivers batches to the same worker
    assert {by: figures(warehouse, by=by) for by in groupings} == before
    care.refresh_all(warehouse)  # `rapport metrics --rebuild` recomputes the same
    assert {by: figures(warehouse, by=by) for by in groupings} == before


def test_the_data_team_sql_of_the_docs_gives_the_same_figures(warehouse: Warehouse) -> None:
    """The two queries docs/metrics.md gives data teams ("Engagement versus reach"), run on this warehouse over
    the week of the crafted data, equal ``rapport metrics`` over the same range."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    section = doc[doc.index("## Engagement versus reach") :]
    blocks = section.split("```sql\n")[1].split("```")[0].split(";")
    week = ("2026-02-02 00:00:00", "2026-02-09 00:00:00")
    by_tier, people = (
        block.replace("2026-01-05 00:00:00", week[0]).replace("2026-01-12 00:00:00", week[1]) for block in blocks[:2]
    )
    start, end = hour("2026-02-02T00:00:00"), hour("2026-02-09T00:00:00")
    tiers = care.metrics(warehouse, care.MetricsQuery(start=start, end=end, by="brand,tier"))
    expected_tiers = {
        (r["brand"], r["tier"]): (r["inbound_messages"], r["answered_messages"], r["first_response_median_s"])
        for r in tiers
    }
    got_tiers = {
        (str(b), str(t)): (int(n), int(a), round(float(median), 3) if int(a) else None)
        for b, t, n, a, median, *_ in warehouse.rows(by_tier)
        if int(n)
    }
    assert got_tiers == expected_tiers
    brands = {r["brand"]: r for r in care.metrics(warehouse, care.MetricsQuery(start=start, end=end))}
    found = {str(b): (int(c), int(r), int(t), int(w)) for b, c, r, t, w in warehouse.rows(people)}
    for sql in (by_tier, people):  # and both pass the admin listener's read-only guard (`rapport sql`)
        assert run_read_only(warehouse, sql, "TSV", Limits()).strip()
    assert found == {
        b: (r["customers"], r["returning_customers"], r["two_way_customers"], r["won_back_customers"])
        for b, r in brands.items()
        if r["customers"]
    }
