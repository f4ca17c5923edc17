"""Engagement versus reach: who gets answered, conversation or broadcast, canned or personal, what it changes.

The figures (issue 14), defined with worked examples in docs/metrics.md ("Engagement versus reach"); terms as in
the care metrics (:mod:`streams.metrics.care`): an **inbound message** is inbound, conversational and not deleted;
it is **answered** when ``responses`` has a row for it. A **brand reply** is an outbound conversational message,
not deleted, with ``customer_id`` not NULL; a **broadcast** an outbound post with no parent and no customer.
Sentiments are VADER compound scores (4 decimals) and are computed in integer ten-thousandths (``s``), so every sum
is exact: negative ⇔ ``s ≤ −500``, positive ⇔ ``s ≥ 500``.

1. Equity by follower tier (the inbound message's ``author_followers``): ``<100``, ``100-999``, ``1k-9999``,
   ``10k-99999``, ``100k+``, ``unknown``. ``--by brand,tier``: inbound, answered, reply rate and median first
   response per tier. ``equity_index`` = reply rate of the lowest tier with ≥ 20 inbound messages ÷ that of the
   highest such tier (``unknown`` never counts; NULL with fewer than two such tiers or a highest rate of 0).
2. Conversation versus broadcast (the outbound message's own time): ``outbound_messages``, ``brand_replies``,
   ``broadcasts``, ``conversation_share`` = replies ÷ outbound, ``broadcasts_per_reply``.
3. Depth (a conversation = a ``conversation_id`` with ≥ 1 inbound message of the brand, at its first inbound
   message's time): ``conversations_started``, ``conversation_messages_avg`` (conversational messages, not
   deleted, of both sides), ``multi_turn_conversations`` (the brand wrote ≥ 2), ``multi_turn_rate``.
4. Sentiment: ``inbound_sentiment_avg``, ``negative_messages``, ``negative_unanswered``, ``negative_reply_rate``.
5. Shift after a reply (M's time): M answered with a sentiment, M′ = the same customer's first later inbound
   message with a sentiment in the same conversation created after the reply: ``sentiment_shift_pairs``,
   ``sentiment_shift_avg``, ``improved_after_reply_rate`` (shift > 0.05).
6. Canned replies (the reply's time; :mod:`streams.processing.canned`): ``canned_replies``, ``canned_reply_rate``.
7. Relationships (over the group's range): ``customers``, ``returning_customers``, ``two_way_customers``,
   ``won_back_customers``.
8. Reach (the post's or event's own time; counters of the latest version): ``posts``, ``impressions``, ``likes``,
   ``shares``, ``post_replies``, ``reaction_events``, ``share_events``, ``follow_events``,
   ``vanity_engagement_rate``, ``answered_per_1k_impressions``.

A figure without the data it needs (no follower count, no impressions, no text) is NULL or ``unknown``, never 0.

Where the numbers come from: ``engagement_hourly`` (per brand, platform, hour, tier: figures 1, 3, 4, 5),
``reach_hourly`` (per brand, platform, hour: 2, 6, 8), ``customer_activity`` (per customer: 7) and
``reply_canned`` (per reply: 6). They are recomputed from ``FINAL`` rows with the care metrics' marks
(:func:`refresh`), so the same guarantees hold: a redelivery, a replay, an edit or a removal leaves them equal to a
computation from the rows (:func:`figures` with ``direct=True``). Some figures of an hour depend on events of other
hours (a conversation's later messages, a customer's later positive message, the replies of the next 30 days):
:func:`affected` widens the marked hours to every hour such an event can change before they are recomputed.

What a recomputation costs: its buckets go to ``refresh_keys`` and each aggregate is one statement over them;
canned replies are judged by :func:`refresh_canned`, which in a running worker keeps each brand's window
(:class:`CannedCache`) and judges only the new replies.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from schemas.contract import REFRESH_KEYS, REPLY_CANNED
from streams.metrics.shared import CONVERSATIONAL_SQL, rate, seconds
from streams.processing import canned
from streams.processing.platforms.meta import UNKNOWN_AUTHOR
from streams.sinks.warehouse import Warehouse, in_list, string_literal

if TYPE_CHECKING:
    from streams.metrics.care import Bucket, MetricsQuery


INBOUND_SQL = f"direction = 'inbound' AND kind IN {CONVERSATIONAL_SQL} AND deleted = 0"
TIERS = ("<100", "100-999", "1k-9999", "10k-99999", "100k+", "unknown")


def tier_sql(followers: str) -> str:
    """The follower tier of a follower count (NULL: ``unknown``)."""
    return (
        f"multiIf({followers} IS NULL, 'unknown', {followers} < 100, '<100', {followers} < 1000, '100-999', "
        f"{followers} < 10000, '1k-9999', {followers} < 100000, '10k-99999', '100k+')"
    )


#: A sentiment in ten-thousandths (NULL without text): VADER's compound has 4 decimals, stored as Float32.
S_SQL = "CAST(round(toFloat64(sentiment) * 10000), 'Nullable(Int32)')"
NEGATIVE, POSITIVE, IMPROVED = -500, 500, 500  # ≤ −0.05, ≥ 0.05, > 0.05 in ten-thousandths
EQUITY_MIN_MESSAGES = 20
HOUR_KEY = "(brand, platform, toUnixTimestamp(toStartOfHour(created_at)))"
#: A message whose author the platform does not name (Instagram mentions: ``author_id = 'unknown'``) has no
#: customer: it is not one of the ``customers`` (they would all be one person) and forms no shift pair.
KNOWN_AUTHOR_SQL = f"author_id != {string_literal(UNKNOWN_AUTHOR)}"


@dataclass(frozen=True)
class Keys:
    """A set of (brand, platform, hour) buckets stored in ``refresh_keys`` under ``id`` for one recomputation, so
    a statement reads them with a subquery instead of carrying them as literals (thousands of hours parse slowly
    and past ``max_query_size``), with the brands and the time span that prune the scans."""

    id: int
    brands: str
    start: int
    end: int

    @property
    def subquery(self) -> str:
        return f"(SELECT brand, platform, hour FROM refresh_keys WHERE refresh = {self.id})"

    def where(self) -> str:
        """A WHERE clause on ``brand``, ``platform``, ``created_at``: the row's hour is one of the buckets."""
        return (
            f"brand IN {self.brands} AND created_at >= {self.start} AND created_at < {self.end} "
            f"AND {HOUR_KEY} IN {self.subquery}"
        )

    def hours(self) -> str:
        """The same on an aggregate's ``hour`` column."""
        return f"brand IN {self.brands} AND (brand, platform, toUnixTimestamp(hour)) IN {self.subquery}"


def store_keys(warehouse: Warehouse, buckets: Sequence[Bucket]) -> Keys:
    """Write ``buckets`` to ``refresh_keys`` under a new id (rows expire after a day, TTL)."""
    key = time.time_ns() + secrets.randbelow(1000)
    warehouse.insert(REFRESH_KEYS, [{"refresh": key, "brand": b, "platform": p, "hour": h} for b, p, h in buckets])
    return Keys(
        key,
        in_list(b for b, _, _ in buckets),
        min(h for _, _, h in buckets),
        max(h for _, _, h in buckets) + 3600,
    )


# --- facts: one row per inbound message, conversation, outbound event, customer message ---------------------


def with_tier(rows: str, columns: Sequence[str], where: str) -> str:
    """``rows`` (a SELECT of ``columns``, with brand, platform and event_id) and the ``tier`` of each inbound
    event's author at the time of the message: the follower count of the event's earliest version that reports one
    (a later edit, or a version without the count, does not move a message to another tier; outbound rows get
    ``unknown``, which nothing reads). ``where`` selects at least the rows' events, every version."""
    return f"""
SELECT {", ".join(f"r.{c} AS {c}" for c in columns)}, {tier_sql("f.followers")} AS tier
FROM ({rows}) AS r
LEFT JOIN (SELECT brand, platform, event_id,
                  if(countIf(author_followers IS NOT NULL) = 0, NULL,
                     argMinIf(author_followers, _version, author_followers IS NOT NULL)) AS followers
           FROM interactions WHERE direction = 'inbound' AND {where} GROUP BY brand, platform, event_id) AS f
    ON f.brand = r.brand AND f.platform = r.platform AND f.event_id = r.event_id"""


MESSAGE_COLUMNS = ("brand", "platform", "event_id", "author_id", "conversation_id", "created_at", "s")


def message_facts_sql(where: str) -> str:
    """One row per inbound message matching ``where``: its brand, platform, time, tier, whether it was answered
    and how fast, its sentiment ``s`` and, when it forms a shift pair, ``shift`` = s(M′) − s(M) (else NULL)."""
    inbound = f"SELECT {', '.join(MESSAGE_COLUMNS[:-1])}, {S_SQL} AS s FROM interactions FINAL WHERE {INBOUND_SQL}"
    responses = "SELECT brand, inbound_id, response_seconds, replied_at, toUInt8(1) AS matched FROM responses FINAL"
    return f"""
SELECT m.brand AS brand, m.platform AS platform, m.created_at AS created_at, m.tier AS tier, r.matched AS answered,
       r.response_seconds AS seconds, m.s AS s,
       if(n.matched = 1 AND m.s IS NOT NULL, n.s_next - m.s, NULL) AS shift
FROM ({with_tier(f"{inbound} AND {where}", MESSAGE_COLUMNS, where)}) AS m
LEFT JOIN ({responses}) AS r ON r.brand = m.brand AND r.inbound_id = m.event_id
LEFT JOIN (
    SELECT a.brand AS brand, a.event_id AS event_id, argMin(p.s, (p.created_at, p.event_id)) AS s_next,
           toUInt8(1) AS matched
    FROM (SELECT m.brand AS brand, m.platform AS platform, m.event_id AS event_id, m.author_id AS author_id,
                 m.conversation_id AS conversation_id, m.created_at AS created_at, r.replied_at AS replied_at
          FROM ({inbound} AND s IS NOT NULL AND {KNOWN_AUTHOR_SQL} AND {where}) AS m
          INNER JOIN ({responses}) AS r ON r.brand = m.brand AND r.inbound_id = m.event_id) AS a
    INNER JOIN ({inbound} AND sentiment IS NOT NULL AND (brand, platform, conversation_id) IN
                (SELECT brand, platform, conversation_id FROM interactions WHERE {INBOUND_SQL} AND {where})) AS p
        ON p.brand = a.brand AND p.platform = a.platform AND p.conversation_id = a.conversation_id
           AND p.author_id = a.author_id
    WHERE p.created_at > a.replied_at AND (p.created_at, p.event_id) > (a.created_at, a.event_id)
    GROUP BY a.brand, a.event_id
) AS n ON n.brand = m.brand AND n.event_id = m.event_id
SETTINGS join_use_nulls = 0"""


def conversation_facts_sql(where: str) -> str:
    """One row per conversation of a brand (a ``conversation_id`` with an inbound message) whose first inbound
    message matches ``where`` (on brand, platform, created_at): the first message's time and tier, and the
    conversation's conversational messages (not deleted) of both sides and of the brand. Only conversations with
    an inbound row matching ``where`` (any version) are looked at: the first inbound message is one of them."""
    members = (
        f"kind IN {CONVERSATIONAL_SQL} AND (brand, platform, conversation_id) IN "
        f"(SELECT brand, platform, conversation_id FROM interactions WHERE {INBOUND_SQL} AND {where})"
    )
    rows = (
        "SELECT brand, platform, conversation_id, event_id, created_at, direction = 'inbound' AS inbound "
        f"FROM interactions FINAL WHERE deleted = 0 AND {members}"
    )
    columns = ("brand", "platform", "conversation_id", "event_id", "created_at", "inbound")
    return f"""
SELECT brand, platform, first.1 AS created_at, first.2 AS tier, messages, brand_messages FROM (
    SELECT brand, platform, conversation_id,
           argMinIf((created_at, tier), (created_at, event_id), inbound) AS first,
           count() AS messages, countIf(NOT inbound) AS brand_messages, countIf(inbound) AS inbound_messages
    FROM ({with_tier(rows, columns, members)})
    GROUP BY brand, platform, conversation_id
    HAVING inbound_messages > 0
) WHERE {where}"""


def outbound_facts_sql(where: str, canned_join: bool) -> str:
    """One row per outbound message or inbound reach event matching ``where``, not deleted, with what figures 2, 6
    and 8 need of it (``canned``/``judged`` from ``reply_canned`` when ``canned_join``, else 0)."""
    flags = (
        "LEFT JOIN (SELECT brand, platform, event_id, canned, judged FROM reply_canned FINAL) AS c "
        "ON c.brand = e.brand AND c.platform = e.platform AND c.event_id = e.event_id"
        if canned_join
        else ""
    )
    canned_cols = "c.canned * e.brand_reply, c.judged * e.brand_reply" if canned_join else "toUInt8(0), toUInt8(0)"
    return f"""
SELECT e.*, {canned_cols.split(", ")[0]} AS canned, {canned_cols.split(", ")[1]} AS judged FROM (
    SELECT brand, platform, event_id, created_at,
           toUInt8(direction = 'outbound' AND kind IN {CONVERSATIONAL_SQL}) AS outbound,
           toUInt8(outbound AND customer_id IS NOT NULL) AS brand_reply,
           toUInt8(direction = 'outbound' AND kind = 'post' AND parent_id IS NULL) AS post,
           toUInt8(post AND customer_id IS NULL) AS broadcast,
           impressions AS post_impressions, likes AS post_likes, shares AS post_shares,
           replies AS post_reply_count,
           toUInt8(direction = 'inbound' AND kind = 'reaction') AS reaction,
           toUInt8(direction = 'inbound' AND kind = 'share') AS share,
           toUInt8(direction = 'inbound' AND kind = 'follow') AS follow
    FROM interactions FINAL
    WHERE deleted = 0 AND (direction = 'outbound' OR kind IN ('reaction', 'share', 'follow')) AND {where}
) AS e
{flags}
SETTINGS join_use_nulls = 0"""


def customer_facts_sql(customers: str) -> str:
    """One row per inbound message of the customers (``(brand, platform, author_id)``) that ``customers`` selects
    among inbound rows: time, conversation hash, answered, won back."""
    inbound = (
        f"SELECT brand, platform, event_id, author_id, conversation_id, created_at, {S_SQL} AS s "
        f"FROM interactions FINAL WHERE {INBOUND_SQL} AND {KNOWN_AUTHOR_SQL} AND (brand, platform, author_id) IN "
        f"(SELECT brand, platform, author_id FROM interactions WHERE direction = 'inbound' AND {customers})"
    )
    return f"""
SELECT m.brand AS brand, m.platform AS platform, m.author_id AS customer_id, m.created_at AS created_at,
       sipHash64(m.conversation_id) AS conversation, r.matched AS answered,
       toUInt8(r.matched = 1 AND ifNull(m.s <= {NEGATIVE}, 0) AND arrayExists(
           q -> q.1 > r.replied_at AND (q.1, q.2) > (m.created_at, m.event_id), p.positives)) AS won_back
FROM ({inbound}) AS m
LEFT JOIN (SELECT brand, inbound_id, replied_at, toUInt8(1) AS matched FROM responses FINAL) AS r
    ON r.brand = m.brand AND r.inbound_id = m.event_id
LEFT JOIN (SELECT brand, platform, author_id, groupArray((created_at, event_id)) AS positives
           FROM ({inbound}) WHERE s >= {POSITIVE} GROUP BY brand, platform, author_id) AS p
    ON p.brand = m.brand AND p.platform = m.platform AND p.author_id = m.author_id
SETTINGS join_use_nulls = 0"""


# --- the aggregates' recomputation ------------------------------------------------------------------------------

ENGAGEMENT_SUMS = f"""
       countIf(row_type = 1) AS inbound_messages,
       countIf(row_type = 1 AND answered = 1) AS answered_messages,
       arraySort(groupArrayIf(seconds, row_type = 1 AND answered = 1)) AS response_seconds,
       countIf(row_type = 1 AND s IS NOT NULL) AS sentiment_messages,
       sumIf(toInt64(assumeNotNull(s)), row_type = 1 AND s IS NOT NULL) AS sentiment_sum,
       countIf(row_type = 1 AND ifNull(s <= {NEGATIVE}, 0)) AS negative_messages,
       countIf(row_type = 1 AND ifNull(s <= {NEGATIVE}, 0) AND answered = 1) AS negative_answered,
       countIf(row_type = 1 AND shift IS NOT NULL) AS shift_pairs,
       sumIf(toInt64(assumeNotNull(shift)), row_type = 1 AND shift IS NOT NULL) AS shift_sum,
       countIf(row_type = 1 AND ifNull(shift > {IMPROVED}, 0)) AS shift_improved,
       countIf(row_type = 2) AS conversations_started,
       sumIf(messages, row_type = 2) AS conversation_messages,
       countIf(row_type = 2 AND brand_messages >= 2) AS multi_turn_conversations"""


def engagement_rows_sql(where: str) -> str:
    """The inbound messages (``row_type`` 1) and the conversations started (``row_type`` 2) that ``where`` selects
    (on brand, platform, created_at) as one relation that ``ENGAGEMENT_SUMS`` reads."""
    return f"""
SELECT brand, platform, created_at, tier, toUInt8(1) AS row_type, answered, seconds, s, shift,
       toUInt64(0) AS messages, toUInt64(0) AS brand_messages
FROM ({message_facts_sql(where)})
UNION ALL
SELECT brand, platform, created_at, tier, toUInt8(2), toUInt8(0), toUInt32(0), CAST(NULL, 'Nullable(Int32)'),
       CAST(NULL, 'Nullable(Int32)'), messages, brand_messages
FROM ({conversation_facts_sql(where)})"""


def _empty(warehouse: Warehouse, table: str, keys: str, where: str, version: int) -> None:
    """An empty row (zeros and empty arrays: the columns' defaults) for each key of ``table`` matching ``where``,
    one version before the recomputation's: a key the recomputation leaves without facts is emptied, one it
    writes again is replaced."""
    warehouse.command(
        f"INSERT INTO {table} ({keys}, _version) SELECT DISTINCT {keys}, {version - 1} FROM {table} WHERE {where}"
    )


def recompute_engagement_sql(where: str, version: int) -> str:
    """``engagement_hourly``'s rows of the messages and conversations ``where`` selects."""
    return f"""
INSERT INTO engagement_hourly
SELECT brand, platform, hour, tier, {ENGAGEMENT_SUMS}, {version}
FROM (SELECT toStartOfHour(created_at) AS hour, * FROM ({engagement_rows_sql(where)}))
GROUP BY brand, platform, hour, tier"""


#: A post whose vanity engagement is known: every counter of it reported (a missing one is unknown, not 0).
COUNTED = (
    "post_impressions IS NOT NULL AND post_likes IS NOT NULL AND post_shares IS NOT NULL "
    "AND post_reply_count IS NOT NULL"
)
REACH_SUMS = f"""
       sum(outbound) AS outbound_messages, sum(brand_reply) AS brand_replies, sum(broadcast) AS broadcasts,
       sum(canned) AS canned_replies, sum(judged) AS judged_replies, sum(post) AS posts,
       countIf(post = 1 AND post_impressions IS NOT NULL) AS posts_with_impressions,
       sumIf(assumeNotNull(post_impressions), post = 1) AS impressions,
       countIf(post = 1 AND post_likes IS NOT NULL) AS posts_with_likes,
       sumIf(assumeNotNull(post_likes), post = 1) AS likes,
       countIf(post = 1 AND post_shares IS NOT NULL) AS posts_with_shares,
       sumIf(assumeNotNull(post_shares), post = 1) AS shares,
       countIf(post = 1 AND post_reply_count IS NOT NULL) AS posts_with_replies,
       sumIf(assumeNotNull(post_reply_count), post = 1) AS post_replies,
       sumIf(assumeNotNull(post_likes) + assumeNotNull(post_shares) + assumeNotNull(post_reply_count),
             post = 1 AND {COUNTED}) AS engagement_on_impressions,
       sumIf(assumeNotNull(post_impressions), post = 1 AND {COUNTED}) AS impressions_with_engagement,
       sum(reaction) AS reaction_events, sum(share) AS share_events, sum(follow) AS follow_events"""


def recompute_reach_sql(where: str, version: int) -> str:
    """``reach_hourly``'s rows of the outbound messages and reach events ``where`` selects."""
    return f"""
INSERT INTO reach_hourly
SELECT brand, platform, toStartOfHour(created_at) AS hour, {REACH_SUMS}, {version}
FROM ({outbound_facts_sql(where, canned_join=True)})
GROUP BY brand, platform, hour"""


def recompute_customers_sql(where: str, version: int) -> str:
    """``customer_activity``'s rows of every customer with an inbound row that ``where`` selects."""
    return f"""
INSERT INTO customer_activity
SELECT brand, platform, customer_id, arrayMap(x -> x.1, facts), arrayMap(x -> x.2, facts),
       arrayMap(x -> x.3, facts), arrayMap(x -> x.4, facts), {version}
FROM (SELECT brand, platform, customer_id,
             arraySort(groupArray((created_at, conversation, answered, won_back))) AS facts
      FROM ({customer_facts_sql(where)}) GROUP BY brand, platform, customer_id)"""


ENGAGEMENT_KEYS, REACH_KEYS, CUSTOMER_KEYS = (
    "brand, platform, hour, tier",
    "brand, platform, hour",
    "brand, platform, customer_id",
)


# --- which hours a change touches --------------------------------------------------------------------------------


def affected(warehouse: Warehouse, buckets: Keys) -> tuple[list[Bucket], dict[str, tuple[int, int]]]:
    """The hours of ``engagement_hourly`` that changed rows in ``buckets`` can change, and per brand the span of
    reply times whose canned flag they can change.

    - a conversation's figures sit at its first inbound message's hour, and a shift pair at M's hour: every hour
      with an inbound message of a conversation that has a row in ``buckets``;
    - a reply's canned flag depends on the replies of the 30 days before it: a brand with an outbound row in
      ``buckets`` has the flags of its replies from its first such hour to 30 days after its last recomputed.
    (Rows of every version are read: a superset is harmless, a miss is not.)"""
    where = buckets.where()
    rows = warehouse.rows(f"""
SELECT DISTINCT brand, platform, toUnixTimestamp(toStartOfHour(created_at)) FROM interactions
WHERE direction = 'inbound' AND kind IN {CONVERSATIONAL_SQL} AND brand IN {buckets.brands}
  AND (brand, platform, conversation_id) IN
      (SELECT brand, platform, conversation_id FROM interactions WHERE {where})""")
    hours = {(str(b), str(p), int(h)) for b, p, h in rows}
    spans: dict[str, tuple[int, int]] = {}
    for brand, first, last in warehouse.rows(f"""
SELECT brand, toUnixTimestamp(toStartOfHour(min(created_at))), toUnixTimestamp(toStartOfHour(max(created_at)))
FROM interactions WHERE direction = 'outbound' AND {where} GROUP BY brand"""):
        spans[str(brand)] = (int(first), int(last) + 3600 + canned.WINDOW_S)
    return sorted(hours), spans


REPLIES_SQL = (
    "direction = 'outbound' AND kind IN " + CONVERSATIONAL_SQL + " AND deleted = 0 AND customer_id IS NOT NULL"
)


@dataclass
class _Window:
    """A brand's canned-reply detector and the brand replies of its window, judged or too short to be:
    event_id → (created_at, hash of the text), to tell whether the stored replies are still the ones it saw."""

    detector: canned.Detector
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class CannedCache:
    """What a running worker keeps between recomputations so that new replies are judged alone, against the
    window it already indexed, instead of judging the brand's last 30 days again (2.3 s for 100,000 replies).

    It is only a shortcut: before using it, :func:`refresh_canned` checks that the stored replies of the window
    are exactly the ones it saw (same ids, times and texts) and that every new reply is later than the last one
    judged; an edit, a removal or a late reply makes it judge the span from the rows again, as without a cache."""

    windows: dict[str, _Window] = field(default_factory=dict)


def _reply_rows(
    warehouse: Warehouse, brand: str, since: int, until: int | None = None, texts_from: int | None = None
) -> list[Any]:
    """(platform, event_id, created_at, cityHash64 of the text, text) of the brand replies in [since, until);
    with ``texts_from``, the text only of the replies from then on (NULL before: the window knows them)."""
    upper = "" if until is None else f" AND created_at < {until}"
    text = "text" if texts_from is None else f"if(created_at >= {texts_from}, text, NULL)"
    return warehouse.rows(f"""
SELECT platform, event_id, toUnixTimestamp(created_at), cityHash64(ifNull(text, '')), {text} FROM interactions FINAL
WHERE brand = {string_literal(brand)} AND {REPLIES_SQL} AND created_at >= {since}{upper}
ORDER BY created_at, event_id""")


def _canned_rows(brand: str, judged: Iterable[tuple[Any, Any, int, bool | None]], version: int) -> list[dict[str, Any]]:
    return [
        {
            "brand": brand,
            "platform": platform,
            "event_id": event_id,
            "created_at": at,
            "judged": int(flag is not None),
            "canned": int(bool(flag)),
            "_version": version,
        }
        for platform, event_id, at, flag in judged
    ]


def _incremental(
    warehouse: Warehouse, brand: str, window: _Window, start: int
) -> list[tuple[Any, Any, int, bool | None]] | None:
    """The new replies of ``brand`` judged against the cached window, or None when it cannot tell: a change from
    ``start`` on that is older than the window (a late, edited or removed reply the window no longer holds), a
    window without any judged reply, or stored replies of the window that are no longer the ones it saw. Then the
    span is judged again from the rows."""
    if window.detector.last is None:
        return None
    last_at, last_id = window.detector.last
    horizon = last_at - canned.WINDOW_S
    if start < horizon:
        return None
    rows = _reply_rows(warehouse, brand, horizon, texts_from=last_at)
    seen = {event_id: known for event_id, known in window.seen.items() if known[0] >= horizon}
    new = []
    for platform, event_id, at, digest, text in rows:
        known = seen.pop(str(event_id), None)
        if known is not None:
            if known != (int(at), int(digest)):
                return None  # edited
        elif (int(at), str(event_id)) > (last_at, last_id):
            new.append((platform, str(event_id), int(at), int(digest), text))
        else:
            return None  # a late reply inside the window
    if seen:
        return None  # removed (or no longer a brand reply)
    judged = []
    for platform, event_id, at, digest, text in new:
        judged.append((platform, event_id, at, window.detector.judge(event_id, at, text)))
        window.seen[event_id] = (at, digest)
    horizon = (window.detector.last or (0, ""))[0] - canned.WINDOW_S
    window.seen = {event_id: known for event_id, known in window.seen.items() if known[0] >= horizon}
    return judged


def refresh_canned(
    warehouse: Warehouse, spans: Mapping[str, tuple[int, int]], version: int, cache: CannedCache | None = None
) -> set[Bucket]:
    """Recompute ``reply_canned`` for the brand replies of each brand in ``[start, end)`` (reading the 30 days
    before ``start`` too), or, with a valid ``cache``, for its new replies only. Returns the hours of the replies
    whose rows were written (their reach rows change)."""
    touched: set[Bucket] = set()
    for brand, (start, end) in sorted(spans.items()):
        window = cache.windows.get(brand) if cache is not None else None
        judged = _incremental(warehouse, brand, window, start) if window is not None else None
        if judged is None:
            rows = _reply_rows(warehouse, brand, start - canned.WINDOW_S, end)
            flags = canned.canned_flags((str(e), int(at), t) for _, e, at, _, t in rows)
            judged = [(p, e, int(at), flags.get(str(e))) for p, e, at, _, _ in rows if int(at) >= start]
            if cache is not None and rows:
                # index the last 30 days again for the next recomputation (in time order, as the rows come)
                fresh = _Window(canned.Detector())
                newest = int(rows[-1][2])
                for _, event_id, at, digest, text in rows:
                    if int(at) >= newest - canned.WINDOW_S:
                        fresh.detector.judge(str(event_id), int(at), text)
                        fresh.seen[str(event_id)] = (int(at), int(digest))
                cache.windows[brand] = fresh
        touched |= {(brand, str(platform), at // 3600 * 3600) for platform, _, at, _ in judged}
        if judged:
            warehouse.insert(REPLY_CANNED, _canned_rows(brand, judged, version))
    return touched


def refresh(warehouse: Warehouse, buckets: Iterable[Bucket], cache: CannedCache | None = None) -> int:
    """Recompute every engagement aggregate that the changed ``buckets`` can touch (module doc). Returns how many
    hours the changes reached beyond their own (the widening of :func:`affected`)."""
    ordered = sorted(set(buckets))
    if not ordered:
        return 0
    version = time.time_ns()
    changed = store_keys(warehouse, ordered)
    hours, spans = affected(warehouse, changed)
    touched = store_keys(warehouse, sorted(set(hours) | set(ordered)))
    reach = store_keys(warehouse, sorted(set(ordered) | refresh_canned(warehouse, spans, version, cache)))
    customers = (
        f"(brand, platform, customer_id) IN (SELECT brand, platform, author_id FROM interactions "
        f"WHERE direction = 'inbound' AND {changed.where()})"
    )
    _empty(warehouse, "engagement_hourly", ENGAGEMENT_KEYS, touched.hours(), version)
    warehouse.command(recompute_engagement_sql(touched.where(), version))
    _empty(warehouse, "reach_hourly", REACH_KEYS, reach.hours(), version)
    warehouse.command(recompute_reach_sql(reach.where(), version))
    _empty(warehouse, "customer_activity", CUSTOMER_KEYS, customers, version)
    warehouse.command(recompute_customers_sql(changed.where(), version))
    return len(hours)


def refresh_all(warehouse: Warehouse) -> None:
    """Recompute everything from the rows (``rapport metrics --rebuild``): every key the aggregates hold is emptied
    and every key with rows written again, as :func:`refresh` does for some."""
    version = time.time_ns()
    spans = {
        str(brand): (int(first), int(last))
        for brand, first, last in warehouse.rows(
            "SELECT brand, toUnixTimestamp(min(created_at)), toUnixTimestamp(max(created_at)) + 1 FROM interactions "
            "WHERE direction = 'outbound' GROUP BY brand"
        )
    }
    refresh_canned(warehouse, spans, version)
    for table, keys, recompute in (
        ("engagement_hourly", ENGAGEMENT_KEYS, recompute_engagement_sql),
        ("reach_hourly", REACH_KEYS, recompute_reach_sql),
        ("customer_activity", CUSTOMER_KEYS, recompute_customers_sql),
    ):
        _empty(warehouse, table, keys, "1", version)
        warehouse.command(recompute("1", version))


# --- reading the figures -------------------------------------------------------------------------------------

#: The figures of a grouping without tier, in output order (after the care figures).
FIGURES = (
    "equity_index",
    "outbound_messages",
    "brand_replies",
    "broadcasts",
    "conversation_share",
    "broadcasts_per_reply",
    "conversations_started",
    "conversation_messages_avg",
    "multi_turn_conversations",
    "multi_turn_rate",
    "inbound_sentiment_avg",
    "negative_messages",
    "negative_unanswered",
    "negative_reply_rate",
    "sentiment_shift_pairs",
    "sentiment_shift_avg",
    "improved_after_reply_rate",
    "canned_replies",
    "canned_reply_rate",
    "customers",
    "returning_customers",
    "two_way_customers",
    "won_back_customers",
    "posts",
    "impressions",
    "likes",
    "shares",
    "post_replies",
    "reaction_events",
    "share_events",
    "follow_events",
    "vanity_engagement_rate",
    "answered_per_1k_impressions",
)
#: The short "engagement versus reach" table (``rapport metrics --figures headline``, the end of ``rapport up``).
HEADLINE = (
    "inbound_messages",
    "reply_rate",
    "equity_index",
    "conversation_share",
    "multi_turn_rate",
    "canned_reply_rate",
    "improved_after_reply_rate",
    "won_back_customers",
    "impressions",
    "vanity_engagement_rate",
    "answered_per_1k_impressions",
)
#: The figures of a tier grouping (``--by brand,tier``), after the keys.
TIER_FIGURES = ("inbound_messages", "answered_messages", "reply_rate", "first_response_median_s", "equity_index")
ENGAGEMENT_PARTS = (
    "inbound_messages",
    "answered_messages",
    "sentiment_messages",
    "sentiment_sum",
    "negative_messages",
    "negative_answered",
    "shift_pairs",
    "shift_sum",
    "shift_improved",
    "conversations_started",
    "conversation_messages",
    "multi_turn_conversations",
)
REACH_PARTS = (
    "outbound_messages",
    "brand_replies",
    "broadcasts",
    "canned_replies",
    "judged_replies",
    "posts",
    "posts_with_impressions",
    "impressions",
    "posts_with_likes",
    "likes",
    "posts_with_shares",
    "shares",
    "posts_with_replies",
    "post_replies",
    "engagement_on_impressions",
    "impressions_with_engagement",
    "reaction_events",
    "share_events",
    "follow_events",
)
RELATIONSHIP_PARTS = ("customers", "returning_customers", "two_way_customers", "won_back_customers")

GroupKey = tuple[Any, ...]


def _select_keys(keys: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(``expr AS k_name, …``, ``k_name, …``) of the group keys."""
    return ", ".join(f"{expr} AS k_{name}" for name, expr in keys), ", ".join(f"k_{name}" for name, _ in keys)


def engagement_parts_sql(keys_of: Any, query: MetricsQuery, direct: bool, median: bool = True) -> str:
    """Per group and tier: ``ENGAGEMENT_PARTS`` and, when ``median``, the median first response (from
    ``engagement_hourly``, or ``direct``ly from the rows). Without it the response-time arrays are not read."""
    if direct:
        select, group = _select_keys(keys_of("toStartOfHour(created_at)"))
        where = query.where("created_at")
        quantile = "arrayReduce('quantileExactInclusive(0.5)', response_seconds)" if median else "nan"
        return f"""
SELECT {group}, tier, {", ".join(ENGAGEMENT_PARTS)}, {quantile}
FROM (SELECT {select}, tier, {ENGAGEMENT_SUMS} FROM ({engagement_rows_sql(where)})
      GROUP BY {group}, tier)"""
    select, group = _select_keys(keys_of("hour"))
    quantile = "quantileExactInclusiveArray(0.5)(response_seconds)" if median else "nan"
    return f"""
SELECT {select}, tier, {", ".join(f"sum({p})" for p in ENGAGEMENT_PARTS)}, {quantile}
FROM engagement_hourly FINAL WHERE {query.where("hour")}
GROUP BY {group}, tier"""


def reach_parts_sql(keys_of: Any, query: MetricsQuery, direct: bool) -> str:
    if direct:
        select, group = _select_keys(keys_of("toStartOfHour(created_at)"))
        facts = outbound_facts_sql(query.where("created_at"), canned_join=False)
        return f"SELECT {select}, {REACH_SUMS} FROM ({facts}) GROUP BY {group}"
    select, group = _select_keys(keys_of("hour"))
    return (
        f"SELECT {select}, {', '.join(f'sum({p})' for p in REACH_PARTS)} FROM reach_hourly FINAL "
        f"WHERE {query.where('hour')} GROUP BY {group}"
    )


def relationship_parts_sql(keys_of: Any, query: MetricsQuery, direct: bool) -> str:
    """Per group: customers, returning, two-way, won back (each customer judged over the group's own range). A
    customer is an account: (platform, author_id); the same id on two platforms is two people.

    Three ways, one answer: ``direct`` counts from the rows (the reference); a grouping by day or hour splits
    each customer's messages by their time (``ARRAY JOIN``, then per group and customer); a grouping by brand
    (and platform) needs no split, so each ``customer_activity`` row — one customer — is judged alone with an
    ``arrayFilter`` on the range, which is what keeps the year query within its 0.5 s."""
    outer = ", ".join(f"k_{name}" for name, _ in keys_of("t"))
    counts = "count(), countIf(n >= 2), countIf(na >= 2), countIf(wb = 1)"
    timed = any(name not in ("brand", "platform") for name, _ in keys_of("t"))
    if direct or timed:
        if direct:
            source = f"(SELECT *, created_at AS t FROM ({customer_facts_sql(query.where('created_at'))}))"
            answered, won_back = "answered", "won_back"
        else:
            source = (
                "customer_activity FINAL ARRAY JOIN message_at AS t, conversations AS conversation, "
                "answered AS answered_one, won_back AS won_back_one"
            )
            answered, won_back = "answered_one", "won_back_one"
        select, group = _select_keys(keys_of("toStartOfHour(t)"))
        return f"""
SELECT {outer}, {counts} FROM (
    SELECT {select}, platform, customer_id, uniqExact(conversation) AS n,
           uniqExactIf(conversation, {answered} = 1) AS na, max({won_back}) AS wb
    FROM {source} WHERE {query.where("t")} GROUP BY {group}, platform, customer_id)
GROUP BY {outer}"""
    # one row per customer: no grouping of customers, one arrayFilter each
    lo = "1" if query.start is None else f"t >= {int(query.start.timestamp())}"
    hi = "1" if query.end is None else f"t < {int(query.end.timestamp())}"
    in_range = f"({lo} AND {hi})"
    select, _ = _select_keys(keys_of("t"))
    return f"""
SELECT {outer}, {counts} FROM (
    SELECT {select},
           length(arrayDistinct(arrayFilter((c, t) -> {in_range}, conversations, message_at))) AS n,
           length(arrayDistinct(arrayFilter((c, t, a) -> a = 1 AND {in_range}, conversations, message_at, answered)))
               AS na,
           arrayExists((w, t) -> w = 1 AND {in_range}, won_back, message_at) AS wb
    FROM customer_activity FINAL WHERE {_scope(query)})
WHERE n > 0
GROUP BY {outer}"""


def _scope(query: MetricsQuery) -> str:
    """The brand and platform part of a query's WHERE (``customer_activity`` has no time column)."""
    parts = ["1"]
    if query.brands:
        parts.append(f"brand IN {in_list(query.brands)}")
    if query.platforms:
        parts.append(f"platform IN {in_list(query.platforms)}")
    return " AND ".join(parts)


def direct_canned(warehouse: Warehouse, keys_of: Any, query: MetricsQuery) -> dict[GroupKey, tuple[int, int]]:
    """(canned, judged) per group computed here from the rows with the detector (the reference for the
    ``reply_canned`` flags the aggregate reads)."""
    select, _ = _select_keys(keys_of("toStartOfHour(created_at)"))
    scope = f"brand IN {in_list(query.brands)}" if query.brands else "1"  # every platform: replies compare across
    rows = warehouse.rows(f"""
SELECT brand, event_id, toUnixTimestamp(created_at), text, {query.where("created_at")} AS selected, {select}
FROM interactions FINAL
WHERE {REPLIES_SQL} AND {scope}""")
    flags = canned.canned_flags_by_brand((str(b), str(e), int(at), t) for b, e, at, t, *_ in rows)
    out: dict[GroupKey, tuple[int, int]] = {}
    for _, event_id, _, _, selected, *key in rows:
        flag = flags.get(str(event_id))
        if int(selected) and flag is not None:
            was = out.get(tuple(key), (0, 0))
            out[tuple(key)] = (was[0] + int(flag), was[1] + 1)
    return out


def equity_index(tiers: Mapping[str, tuple[int, int]]) -> float | None:
    """Reply rate of the lowest tier with ≥ 20 inbound messages ÷ that of the highest such tier (``unknown``
    never counts); None with fewer than two such tiers or a highest-tier rate of 0. ``tiers``: tier →
    (inbound, answered)."""
    counted = [tiers[t] for t in TIERS[:-1] if t in tiers and tiers[t][0] >= EQUITY_MIN_MESSAGES]
    if len(counted) < 2:
        return None
    (low_in, low_answered), (high_in, high_answered) = counted[0], counted[-1]
    if high_answered == 0:
        return None
    return (low_answered / low_in) / (high_answered / high_in)


def figures(
    warehouse: Warehouse, query: MetricsQuery, keys_of: Any, direct: bool = False
) -> dict[GroupKey, dict[str, Any]]:
    """The engagement figures per group (raw key values as the SQL returns them) for a grouping without tier, and
    ``tier_rows`` for one with. ``keys_of(hour_expr)`` gives the grouping's (name, expr) keys."""
    tiers: dict[GroupKey, dict[str, tuple[int, int]]] = defaultdict(dict)
    sums: dict[GroupKey, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ENGAGEMENT_PARTS, 0))
    width = len(keys_of("hour"))
    for row in warehouse.rows(engagement_parts_sql(keys_of, query, direct, median=False)):
        key, tier, parts = tuple(row[:width]), str(row[width]), row[width + 1 : width + 1 + len(ENGAGEMENT_PARTS)]
        group = sums[key]
        for name, value in zip(ENGAGEMENT_PARTS, parts, strict=True):
            group[name] += int(value)
        tiers[key][tier] = (int(parts[0]), int(parts[1]))
    reach = {tuple(r[:width]): dict(zip(REACH_PARTS, map(int, r[width:]), strict=True))
             for r in warehouse.rows(reach_parts_sql(keys_of, query, direct))}  # fmt: skip
    if direct:
        for key, (canned_count, judged) in direct_canned(warehouse, keys_of, query).items():
            reach.setdefault(key, dict.fromkeys(REACH_PARTS, 0))
            reach[key]["canned_replies"], reach[key]["judged_replies"] = canned_count, judged
    people = {tuple(r[:width]): dict(zip(RELATIONSHIP_PARTS, map(int, r[width:]), strict=True))
              for r in warehouse.rows(relationship_parts_sql(keys_of, query, direct))}  # fmt: skip
    out: dict[GroupKey, dict[str, Any]] = {}
    for key in sorted(set(sums) | set(reach) | set(people)):
        e = sums.get(key, dict.fromkeys(ENGAGEMENT_PARTS, 0))
        r = reach.get(key, dict.fromkeys(REACH_PARTS, 0))
        p = people.get(key, dict.fromkeys(RELATIONSHIP_PARTS, 0))
        impressions = r["impressions"] if r["posts_with_impressions"] else None
        out[key] = {
            "equity_index": equity_index(tiers.get(key, {})),
            "outbound_messages": r["outbound_messages"],
            "brand_replies": r["brand_replies"],
            "broadcasts": r["broadcasts"],
            "conversation_share": rate(r["brand_replies"], r["outbound_messages"]),
            "broadcasts_per_reply": rate(r["broadcasts"], r["brand_replies"]),
            "conversations_started": e["conversations_started"],
            "conversation_messages_avg": rate(e["conversation_messages"], e["conversations_started"]),
            "multi_turn_conversations": e["multi_turn_conversations"],
            "multi_turn_rate": rate(e["multi_turn_conversations"], e["conversations_started"]),
            "inbound_sentiment_avg": rate(e["sentiment_sum"], e["sentiment_messages"] * 10000),
            "negative_messages": e["negative_messages"],
            "negative_unanswered": e["negative_messages"] - e["negative_answered"],
            "negative_reply_rate": rate(e["negative_answered"], e["negative_messages"]),
            "sentiment_shift_pairs": e["shift_pairs"],
            "sentiment_shift_avg": rate(e["shift_sum"], e["shift_pairs"] * 10000),
            "improved_after_reply_rate": rate(e["shift_improved"], e["shift_pairs"]),
            "canned_replies": r["canned_replies"],
            "canned_reply_rate": rate(r["canned_replies"], r["judged_replies"]),
            **p,
            "posts": r["posts"],
            "impressions": impressions,
            "likes": r["likes"] if r["posts_with_likes"] else None,
            "shares": r["shares"] if r["posts_with_shares"] else None,
            "post_replies": r["post_replies"] if r["posts_with_replies"] else None,
            "reaction_events": r["reaction_events"],
            "share_events": r["share_events"],
            "follow_events": r["follow_events"],
            "vanity_engagement_rate": rate(r["engagement_on_impressions"], r["impressions_with_engagement"]),
            "answered_per_1k_impressions": rate(1000 * e["answered_messages"], impressions or 0),
        }
    return out


def tier_rows(
    warehouse: Warehouse, query: MetricsQuery, keys_of: Any, direct: bool = False
) -> list[tuple[GroupKey, str, dict[str, Any]]]:
    """(group key, tier, figures) per tier with inbound messages, tiers in order, for ``--by …,tier``."""
    width = len(keys_of("hour"))
    found: dict[GroupKey, dict[str, tuple[int, int, Any]]] = defaultdict(dict)
    for row in warehouse.rows(engagement_parts_sql(keys_of, query, direct)):
        if int(row[width + 1]):
            found[tuple(row[:width])][str(row[width])] = (int(row[width + 1]), int(row[width + 2]), row[-1])
    out = []
    for key in sorted(found):
        by_tier = found[key]
        equity = equity_index({t: (n, a) for t, (n, a, _) in by_tier.items()})
        for tier in TIERS:
            if tier in by_tier:
                inbound, answered, median = by_tier[tier]
                out.append(
                    (
                        key,
                        tier,
                        {
                            "inbound_messages": inbound,
                            "answered_messages": answered,
                            "reply_rate": rate(answered, inbound),
                            "first_response_median_s": seconds(median) if answered else None,
                            "equity_index": equity,
                        },
                    )
                )
    return out
