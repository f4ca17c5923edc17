"""The ClickHouse data contract: every public table and column, its type and its meaning.

This module is the single declarative description of the tables. It drives
- the column order and types of the rows the sink inserts (``streams/sinks/warehouse.py``),
- the data-team documentation (``docs/data-contract.md`` is generated from it: ``python -m schemas.contract``),
- a snapshot test that the SQL migrations in ``schemas/migrations/`` create exactly these columns.

Changing a public column means: a new numbered migration, an update here, a regenerated doc.
Types are kept to what every supported ClickHouse accepts (the same DDL runs on chdb and on a server).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

DATETIME = "DateTime('UTC')"
KIND_ENUM = (
    "Enum8('post' = 1, 'comment' = 2, 'reply' = 3, 'mention' = 4, 'direct_message' = 5, "
    "'reaction' = 6, 'share' = 7, 'follow' = 8)"
)
DIRECTION_ENUM = "Enum8('inbound' = 1, 'outbound' = 2)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str

    @property
    def nullable(self) -> bool:
        return self.type.startswith("Nullable(")

    @property
    def base_type(self) -> str:
        return self.type[len("Nullable(") : -1] if self.nullable else self.type


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    engine: str
    columns: tuple[Column, ...]
    #: The oldest ClickHouse server whose migrations create it: tables built on current features (24.8 LTS) are
    #: absent from older servers, which Rapport only uses in tests (see ``schemas/migrate.py``).
    min_server: tuple[int, int] = (0, 0)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


INTERACTIONS = Table(
    name="interactions",
    doc="One row per social event (customer messages, brand messages, reactions, shares, follows). "
    "Query with FINAL: Kafka redeliveries and replays of the same file leave one row per event_id.",
    engine="ReplacingMergeTree(_version) PARTITION BY toYYYYMM(created_at) ORDER BY (brand, platform, event_id)",
    columns=(
        Column("event_id", "String", "Globally unique id, '<platform>:<native id>' (e.g. 'x:119237')."),
        Column("platform", "String", "Source platform: x, facebook, instagram, youtube, …"),
        Column("brand", "String", "The brand account the event concerns. Kafka key of the pipeline."),
        Column("author_id", "String", "Platform id of the author (a brand handle for brand messages)."),
        Column("author_handle", "Nullable(String)", "Author's handle when the platform gives it."),
        Column("author_followers", "Nullable(UInt64)", "Author's follower count when known, else NULL."),
        Column(
            "direction",
            DIRECTION_ENUM,
            "'inbound': from a customer to the brand; 'outbound': from the brand.",
        ),
        Column(
            "kind",
            KIND_ENUM,
            "post, comment, reply, mention, direct_message (conversation) or reaction, share, follow "
            "(reach signals that never count as conversation).",
        ),
        Column("text", "Nullable(String)", "The message text; NULL for events without text (reactions, follows)."),
        Column("created_at", DATETIME, "When the event happened on the platform, UTC, second precision."),
        Column(
            "parent_id",
            "Nullable(String)",
            "event_id of the message this one directly answers; NULL for roots.",
        ),
        Column(
            "conversation_id",
            "String",
            "event_id of the root of the reply tree (the event itself when it starts a conversation).",
        ),
        Column(
            "customer_id",
            "Nullable(String)",
            "The customer the event concerns: the author of an inbound event, the addressee of an outbound "
            "reply or direct message; NULL for brand broadcasts.",
        ),
        Column(
            "deleted",
            "UInt8",
            "1 when the platform reported the event removed: its text is then NULL (the row stays, so counts of "
            "what happened do not change retroactively; filter with deleted = 0 for what is still visible).",
        ),
        Column(
            "updated_at",
            "Nullable(" + DATETIME + ")",
            "When the platform reported this version (an edit or a removal); NULL for the original.",
        ),
        Column("impressions", "Nullable(UInt64)", "Impressions reported by the platform, NULL when not given."),
        Column("likes", "Nullable(UInt64)", "Like count reported by the platform, NULL when not given."),
        Column("shares", "Nullable(UInt64)", "Share/retweet count reported by the platform, NULL when not given."),
        Column("replies", "Nullable(UInt64)", "Reply count reported by the platform, NULL when not given."),
        Column(
            "sentiment",
            "Nullable(Float32)",
            "VADER compound score of the text, -1 (negative) … 1 (positive); NULL when there is no text.",
        ),
        Column(
            "needs_reply",
            "UInt8",
            "1 when an inbound conversational message needs an answer from the brand (a question, a problem, a "
            "complaint, a request, an answer to a question the brand asked), by the deterministic rules of "
            "streams/processing/needs_reply.py (docs/metrics.md); 0 for thanks, praise, emoji-only, banter, and "
            "for every outbound, deleted or non-conversational event. Added by migration 0002.",
        ),
        Column(
            "customer_first_seen",
            "Nullable(" + DATETIME + ")",
            "Earliest created_at of any event between this customer and this brand known when the row was "
            "computed (this event included); NULL when the event concerns no customer.",
        ),
        Column(
            "customer_prior_inbound",
            "UInt32",
            "Number of earlier inbound messages from this customer to this brand (created_at before this "
            "event's). 0 for a first contact and for events without a customer.",
        ),
        Column(
            "customer_replies_received",
            "UInt32",
            "Number of earlier outbound brand messages addressed to this customer.",
        ),
        Column(
            "customer_last_sentiment",
            "Nullable(Float32)",
            "Sentiment of this customer's latest earlier inbound message with text to this brand; NULL if none.",
        ),
        Column("ingested_at", DATETIME, "When Rapport computed the row (UTC)."),
        Column(
            "_version",
            "UInt64",
            "Internal: row version for deduplication: the platform time of this version in ms (updated_at, else "
            "created_at), so the latest edit or removal wins whatever order deliveries arrive in.",
        ),
    ),
)

RESPONSES = Table(
    name="responses",
    doc="One row per inbound message answered directly by its brand: the brand's first direct reply "
    "(earliest created_at, ties broken by the smaller reply_id). Query with FINAL.",
    engine="ReplacingMergeTree(_version) PARTITION BY toYYYYMM(inbound_at) ORDER BY (brand, platform, inbound_id)",
    columns=(
        Column("inbound_id", "String", "event_id of the customer's inbound message."),
        Column("reply_id", "String", "event_id of the brand's first direct reply to it."),
        Column("brand", "String", "The brand the inbound message was addressed to, which also wrote the reply."),
        Column("platform", "String", "Platform of both messages."),
        Column("conversation_id", "String", "Root of the reply tree both messages belong to."),
        Column("customer_id", "String", "Author of the inbound message."),
        Column("inbound_at", DATETIME, "created_at of the inbound message (UTC)."),
        Column("replied_at", DATETIME, "created_at of the reply (UTC)."),
        Column(
            "response_seconds",
            "UInt32",
            "replied_at - inbound_at in seconds; 0 when platform clocks put the reply first.",
        ),
        Column(
            "response_business_seconds",
            "Nullable(UInt32)",
            "The part of [inbound_at, replied_at) inside the brand's business hours (brands file), in seconds; "
            "NULL when the brand has no business hours. A message received outside hours starts its clock at "
            "the next opening. Added by migration 0002.",
        ),
        Column("ingested_at", DATETIME, "When Rapport computed the row (UTC)."),
        Column(
            "_version",
            "UInt64",
            "Internal: earlier replies have higher versions, so FINAL keeps the first reply.",
        ),
    ),
)

DEAD_LETTERS = Table(
    name="dead_letters",
    doc="Copy of the dead-letter topic for inspection: every input record that could not become an "
    "interaction, with the reason and its original bytes. Query with FINAL: the same bad record "
    "delivered or replayed again is one row (identity: format, brand and the original bytes); the "
    "source_* columns then tell its latest delivery.",
    engine="ReplacingMergeTree(received_at) ORDER BY (format, brand, cityHash64(original))",
    columns=(
        Column("reason", "String", "Why the record was rejected, naming the offending field."),
        Column("format", "String", "Input format of the record: jsonl, twcs, …"),
        Column("original", "String", "The record's original bytes, verbatim."),
        Column("brand", "String", "Kafka key of the raw message ('' when unknown)."),
        Column("source_topic", "String", "Raw topic the record came from."),
        Column("source_partition", "UInt32", "Its partition."),
        Column("source_offset", "UInt64", "Offset of the raw Kafka message that held it."),
        Column("record_index", "UInt32", "Position of the record inside that message (0-based)."),
        Column("received_at", DATETIME, "When Rapport rejected it (UTC)."),
    ),
)

CURRENT = (24, 8)  # the ClickHouse release that production must run at least (an LTS)

SLA_BREACHES = Table(
    name="sla_breaches",
    doc="One row per (inbound message that needs a reply, SLA window) whose deadline passed without a direct "
    "reply from the brand: the worker emits it when the deadline passes on the brand's event time (or on the "
    "wall clock for a live brand gone quiet), also to the Kafka topic RAPPORT_TOPIC_SLA_BREACHES. A reply that "
    "turns up later but was written before the deadline (events out of order) retracts the breach; a reply "
    "written after the deadline leaves it. Query with FINAL (retracted breaches and redelivered copies are "
    "then gone).",
    engine="ReplacingMergeTree(_version, _retracted) PARTITION BY toYYYYMM(inbound_at) "
    "ORDER BY (brand, platform, inbound_id, window_s)",
    min_server=CURRENT,
    columns=(
        Column("inbound_id", "String", "event_id of the customer's message."),
        Column("brand", "String", "The brand it was addressed to."),
        Column("platform", "String", "Platform of the message."),
        Column("customer_id", "String", "Author of the message."),
        Column("inbound_at", DATETIME, "created_at of the message (UTC)."),
        Column("deadline", DATETIME, "inbound_at + window_s: when a reply was due."),
        Column("window_s", "UInt32", "The SLA window in seconds (the brand's windows; defaults 3600 and 86400)."),
        Column("sentiment", "Nullable(Float32)", "VADER compound score of the message; NULL without text."),
        Column(
            "breached_at",
            DATETIME,
            "The time that passed the deadline: the brand's latest event time when the breach was found in the "
            "stream (so a replay finds the same), or the wall clock for a live brand that went quiet.",
        ),
        Column(
            "_version",
            "UInt64",
            "Internal: 2^32 − breached_at, so the first decision wins over a redelivery's; 2^33 for a retraction.",
        ),
        Column("_retracted", "UInt8", "Internal: 1 when a reply written before the deadline turned up later."),
    ),
)

CARE_HOURLY = Table(
    name="care_hourly",
    doc="The care metrics' aggregate, one row per (brand, platform, hour of the inbound message's created_at). "
    "Every row is recomputed from `interactions FINAL`, `responses FINAL` and `sla_breaches FINAL` after an "
    "event of its hour is stored (within RAPPORT_AGGREGATE_SECONDS), so redeliveries, replays, edits and "
    "removals never count twice. Query "
    "with FINAL; sum the counts, merge the states (`uniqExactMerge`) and run quantiles over the arrays "
    "(`quantilesExactInclusiveArray(0.5, 0.9)(response_seconds)`) to get the figures of any range of whole "
    "hours; `rapport metrics` does exactly that (docs/metrics.md).",
    engine="ReplacingMergeTree(_version) PARTITION BY toYYYYMM(hour) ORDER BY (brand, platform, hour)",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("hour", DATETIME, "Start of the UTC hour of the inbound messages' created_at."),
        Column(
            "inbound_messages",
            "UInt64",
            "Inbound conversational messages (post, comment, reply, mention, direct_message), not deleted.",
        ),
        Column("answered_messages", "UInt64", "Of those, the ones with a row in `responses` (answered directly)."),
        Column("needs_reply_messages", "UInt64", "Inbound messages with needs_reply = 1."),
        Column("needs_reply_answered", "UInt64", "Of those, the answered ones."),
        Column(
            "response_seconds",
            "Array(UInt32)",
            "responses.response_seconds of every answered message, ascending (exact quantiles over any range).",
        ),
        Column(
            "response_business_seconds",
            "Array(UInt32)",
            "responses.response_business_seconds of the answered messages that have one, ascending.",
        ),
        Column(
            "conversations",
            "AggregateFunction(uniqExact, UInt64)",
            "State of the distinct sipHash64(conversation_id) of the inbound messages (read with uniqExactMerge; "
            "exact but for 64-bit hash collisions: about 3 in a million for 10 million conversations).",
        ),
        Column(
            "conversations_answered",
            "AggregateFunction(uniqExact, UInt64)",
            "The same for the conversations with at least one answered inbound message.",
        ),
        Column(
            "conversation_hashes",
            "Array(UInt64)",
            "The same distinct sipHash64(conversation_id) as a sorted array (read with uniqExactArray: 3.5× faster "
            "over a year than merging the states; `rapport metrics` reads these).",
        ),
        Column(
            "answered_conversation_hashes",
            "Array(UInt64)",
            "The same for the conversations with at least one answered inbound message.",
        ),
        Column(
            "sla_breaches",
            "Map(UInt32, UInt64)",
            "SLA window in seconds → breaches (sla_breaches FINAL) of the hour's messages (read with sumMap).",
        ),
        Column("_version", "UInt64", "Internal: when the row was recomputed (ns); the latest wins."),
    ),
)

CARE_DIRTY = Table(
    name="care_dirty",
    doc="Internal bookkeeping of `care_hourly`: the hours whose rows changed and wait for their recomputation "
    "(marked before a batch is acknowledged to Kafka, so a crash loses none; cleared once recomputed). "
    "`SELECT count() FROM care_dirty FINAL` is how far behind the aggregate is.",
    engine="ReplacingMergeTree(_version, _done) ORDER BY (brand, platform, hour)",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("hour", DATETIME, "The hour of care_hourly to recompute."),
        Column("_version", "UInt64", "When it was marked or cleared (ns): the latest wins."),
        Column("_done", "UInt8", "1: recomputed (FINAL hides it)."),
    ),
)

CARE_BACKLOG = Table(
    name="care_backlog",
    doc="A view: the messages that need a reply (needs_reply = 1) and have no direct reply yet, not deleted. Sort "
    "by (priority, inbound_at, inbound_id): negative messages first, then the oldest first "
    "(streams/metrics/backlog.py). It reads `interactions FINAL` and `responses FINAL` when queried.",
    engine="View",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand the message is addressed to."),
        Column("platform", "String", "Platform of the message."),
        Column("inbound_id", "String", "event_id of the message."),
        Column("customer_id", "String", "Its author."),
        Column("author_handle", "Nullable(String)", "The author's handle when known."),
        Column("author_followers", "Nullable(UInt64)", "The author's follower count when known."),
        Column("inbound_at", DATETIME, "created_at of the message (UTC)."),
        Column("sentiment", "Nullable(Float32)", "VADER compound score of the message."),
        Column("priority", "UInt8", "0 negative (sentiment ≤ −0.05), 1 neutral or unscored, 2 positive (≥ 0.05)."),
        Column("waited_s", "UInt32", "Seconds since inbound_at, by the wall clock when queried."),
        Column("text", "Nullable(String)", "The message text."),
    ),
)

_RECOMPUTED = (
    "Every row is recomputed from the `FINAL` rows with the care metrics' marks (`care_dirty`, within "
    "RAPPORT_AGGREGATE_SECONDS), so redeliveries, replays, edits and removals never count twice. Query with FINAL "
    'and sum over any range of whole hours; `rapport metrics` does exactly that (docs/metrics.md, "Engagement '
    'versus reach"). '
)
SENTIMENT_UNITS = "Sentiments are counted in ten-thousandths (VADER's compound has 4 decimals), so sums are exact."

ENGAGEMENT_HOURLY = Table(
    name="engagement_hourly",
    doc="The inbound side of engagement, one row per (brand, platform, hour of the inbound message's created_at, "
    "follower tier of its author). " + _RECOMPUTED + SENTIMENT_UNITS,
    engine="ReplacingMergeTree(_version) PARTITION BY toYYYYMM(hour) ORDER BY (brand, platform, hour, tier)",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("hour", DATETIME, "Start of the UTC hour of the inbound message (of a conversation's first one)."),
        Column(
            "tier",
            "LowCardinality(String)",
            "author_followers of the message's author at the time: <100, 100-999, 1k-9999, 10k-99999, 100k+, "
            "unknown (NULL).",
        ),
        Column("inbound_messages", "UInt64", "Inbound conversational messages, not deleted (as in care_hourly)."),
        Column("answered_messages", "UInt64", "Of those, the ones with a row in `responses`."),
        Column("response_seconds", "Array(UInt32)", "responses.response_seconds of the answered ones, ascending."),
        Column("sentiment_messages", "UInt64", "Inbound messages with a sentiment (with text)."),
        Column("sentiment_sum", "Int64", "Sum of their sentiments, in ten-thousandths."),
        Column("negative_messages", "UInt64", "Inbound messages with sentiment ≤ −0.05."),
        Column("negative_answered", "UInt64", "Of those, the answered ones."),
        Column(
            "shift_pairs",
            "UInt64",
            "Answered messages M with a sentiment followed, after the reply, by a later message M′ with a sentiment "
            "of the same customer in the same conversation.",
        ),
        Column("shift_sum", "Int64", "Sum of s(M′) − s(M) over those pairs, in ten-thousandths."),
        Column("shift_improved", "UInt64", "Pairs with s(M′) − s(M) > 0.05."),
        Column(
            "conversations_started",
            "UInt64",
            "Conversations whose first inbound message is in this hour and tier (a conversation = a "
            "conversation_id with at least one inbound message of the brand).",
        ),
        Column(
            "conversation_messages",
            "UInt64",
            "Their conversational messages, not deleted, of both sides (inbound and the brand's), at any time.",
        ),
        Column("multi_turn_conversations", "UInt64", "Of those conversations, the ones where the brand wrote ≥ 2."),
        Column("_version", "UInt64", "Internal: when the row was recomputed (ns); the latest wins."),
    ),
)

REACH_HOURLY = Table(
    name="reach_hourly",
    doc="The outbound side: the brand's messages, posts with their counters, and reach events, one row per "
    "(brand, platform, hour of the event's own created_at). " + _RECOMPUTED,
    engine="ReplacingMergeTree(_version) PARTITION BY toYYYYMM(hour) ORDER BY (brand, platform, hour)",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("hour", DATETIME, "Start of the UTC hour of the event."),
        Column("outbound_messages", "UInt64", "Outbound conversational messages, not deleted."),
        Column("brand_replies", "UInt64", "Of those, the ones addressed to a customer (customer_id not NULL)."),
        Column("broadcasts", "UInt64", "Outbound posts with no parent and no customer, not deleted."),
        Column("canned_replies", "UInt64", "Brand replies that are canned (`reply_canned`)."),
        Column("judged_replies", "UInt64", "Brand replies with at least 3 tokens (the canned rate's denominator)."),
        Column("posts", "UInt64", "Brand posts: outbound, kind post, no parent, not deleted."),
        Column("posts_with_impressions", "UInt64", "Posts whose latest version has impressions."),
        Column("impressions", "UInt64", "Sum of those impressions (latest version of each post)."),
        Column("posts_with_likes", "UInt64", "Posts whose latest version has likes."),
        Column("likes", "UInt64", "Sum of those likes."),
        Column("posts_with_shares", "UInt64", "Posts whose latest version has shares."),
        Column("shares", "UInt64", "Sum of those shares."),
        Column("posts_with_replies", "UInt64", "Posts whose latest version has a replies counter."),
        Column("post_replies", "UInt64", "Sum of those counters."),
        Column(
            "engagement_on_impressions",
            "UInt64",
            "likes + shares + replies over the posts whose four counters (impressions too) are all known.",
        ),
        Column("impressions_with_engagement", "UInt64", "The impressions of those same posts."),
        Column("reaction_events", "UInt64", "Inbound reaction events, not deleted (a removed reaction is deleted)."),
        Column("share_events", "UInt64", "Inbound share events, not deleted."),
        Column("follow_events", "UInt64", "Inbound follow events, not deleted (an unfollow is deleted)."),
        Column("_version", "UInt64", "Internal: when the row was recomputed (ns); the latest wins."),
    ),
)

CUSTOMER_ACTIVITY = Table(
    name="customer_activity",
    doc="One row per (brand, platform, customer): every inbound message of the customer as parallel arrays in "
    "time order, so relationships over any range are exact (`arrayFilter` on message_at). Recomputed from FINAL "
    "rows for every customer with a stored event, with the care metrics' marks. Query with FINAL.",
    engine="ReplacingMergeTree(_version) ORDER BY (brand, platform, customer_id)",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("customer_id", "String", "author_id of the customer's inbound messages."),
        Column("message_at", f"Array({DATETIME})", "created_at of each inbound message, ascending."),
        Column("conversations", "Array(UInt64)", "sipHash64(conversation_id) of each."),
        Column("answered", "Array(UInt8)", "1 when it has a row in `responses`."),
        Column(
            "won_back",
            "Array(UInt8)",
            "1 when it is negative (≤ −0.05), answered, and a later inbound message of the customer written after "
            "that reply is positive (≥ 0.05).",
        ),
        Column("_version", "UInt64", "Internal: when the row was recomputed (ns); the latest wins."),
    ),
)

REPLY_CANNED = Table(
    name="reply_canned",
    doc="Whether each brand reply is canned: Jaccard ≥ 0.8 between its token set and that of an earlier reply of "
    "the brand from the 30 days before it (streams/processing/canned.py, docs/metrics.md). Written by the "
    "recomputation; a reply that is no longer a brand reply keeps a stale row that nothing reads. Query with FINAL.",
    engine="ReplacingMergeTree(_version) PARTITION BY toYYYYMM(created_at) ORDER BY (brand, platform, event_id)",
    min_server=CURRENT,
    columns=(
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("event_id", "String", "The reply."),
        Column("created_at", DATETIME, "Its created_at."),
        Column("judged", "UInt8", "1 when its text has at least 3 tokens."),
        Column("canned", "UInt8", "1 when it is canned."),
        Column("_version", "UInt64", "Internal: when the flag was computed (ns); the latest wins."),
    ),
)

REFRESH_KEYS = Table(
    name="refresh_keys",
    doc="Internal: the (brand, platform, hour) buckets of one recomputation of the engagement aggregates, read by "
    "subquery instead of being written into the SQL. Rows expire after a day (TTL).",
    engine="MergeTree ORDER BY (refresh, brand, platform, hour) TTL toDateTime(intDiv(refresh, 1000000000)) + "
    "toIntervalDay(1)",
    min_server=CURRENT,
    columns=(
        Column("refresh", "UInt64", "The recomputation (nanoseconds of its start, plus a random part)."),
        Column("brand", "String", "The brand."),
        Column("platform", "String", "The platform."),
        Column("hour", "UInt32", "Unix second of the start of the hour."),
    ),
)

TABLES: tuple[Table, ...] = (
    INTERACTIONS,
    RESPONSES,
    DEAD_LETTERS,
    SLA_BREACHES,
    CARE_HOURLY,
    CARE_DIRTY,
    CARE_BACKLOG,
    ENGAGEMENT_HOURLY,
    REACH_HOURLY,
    CUSTOMER_ACTIVITY,
    REPLY_CANNED,
    REFRESH_KEYS,
)
TABLES_BY_NAME = {t.name: t for t in TABLES}


def arrow_type(column: Column, binary: bool = False) -> Any:
    """The Arrow type in which Rapport hands a column's values to ClickHouse: ``DateTime`` as Unix seconds
    (``uint32``), enums by name (``string``); ``binary`` for ``String`` values that may not be UTF-8."""
    import pyarrow as pa

    base = column.base_type
    if base.startswith("DateTime") or base == "UInt32":
        return pa.uint32()
    if base == "UInt64":
        return pa.uint64()
    if base == "UInt8":
        return pa.uint8()
    if base == "Float32":
        return pa.float32()
    return pa.binary() if binary and base == "String" else pa.string()  # String, Enum8 (by name)


def arrow_struct(table: Table) -> Any:
    """A row of ``table`` as an Arrow struct type (the columns in contract order)."""
    import pyarrow as pa

    return pa.struct([pa.field(c.name, arrow_type(c)) for c in table.columns])


def render_markdown() -> str:
    """The data-team documentation of every public table (docs/data-contract.md)."""
    out = [
        "# Rapport's ClickHouse data contract",
        "",
        "<!-- generated by `python -m schemas.contract`; edit schemas/contract.py, not this file -->",
        "",
        "These tables are Rapport's public interface for data teams. Column names and meanings are",
        "stable; a change comes with a new numbered migration (`schemas/migrations/`) and a note here.",
        "",
        "**Always query with `FINAL`** (e.g. `SELECT … FROM interactions FINAL`): Kafka delivers at least",
        "once and files may be replayed; the tables are ReplacingMergeTree keyed by the event, and `FINAL`",
        "returns each event once. Without `FINAL`, duplicates not yet merged in the background can show.",
        "",
        "Times are UTC `DateTime` (second precision). Ids are `'<platform>:<native id>'`.",
        "",
    ]
    for table in TABLES:
        out += [f"## `{table.name}`", "", table.doc, "", f"Engine: `{table.engine}`", ""]
        out += ["| column | type | meaning |", "| --- | --- | --- |"]
        out += [f"| `{c.name}` | `{c.type}` | {c.doc} |" for c in table.columns]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
