-- 0001: the core tables of the data contract (see schemas/contract.py and docs/data-contract.md).
-- Every statement is idempotent (IF NOT EXISTS) so a migration interrupted half-way can run again.
-- Kept to types every supported ClickHouse accepts (chdb 26.x and servers back to 18.16).

CREATE TABLE IF NOT EXISTS interactions
(
    event_id String,
    platform String,
    brand String,
    author_id String,
    author_handle Nullable(String),
    author_followers Nullable(UInt64),
    direction Enum8('inbound' = 1, 'outbound' = 2),
    kind Enum8('post' = 1, 'comment' = 2, 'reply' = 3, 'mention' = 4, 'direct_message' = 5, 'reaction' = 6, 'share' = 7, 'follow' = 8),
    text Nullable(String),
    created_at DateTime('UTC'),
    parent_id Nullable(String),
    conversation_id String,
    customer_id Nullable(String),
    deleted UInt8,
    updated_at Nullable(DateTime('UTC')),
    impressions Nullable(UInt64),
    likes Nullable(UInt64),
    shares Nullable(UInt64),
    replies Nullable(UInt64),
    sentiment Nullable(Float32),
    customer_first_seen Nullable(DateTime('UTC')),
    customer_prior_inbound UInt32,
    customer_replies_received UInt32,
    customer_last_sentiment Nullable(Float32),
    ingested_at DateTime('UTC'),
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (brand, platform, event_id);

CREATE TABLE IF NOT EXISTS responses
(
    inbound_id String,
    reply_id String,
    brand String,
    platform String,
    conversation_id String,
    customer_id String,
    inbound_at DateTime('UTC'),
    replied_at DateTime('UTC'),
    response_seconds UInt32,
    ingested_at DateTime('UTC'),
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(inbound_at)
ORDER BY (brand, platform, inbound_id);

CREATE TABLE IF NOT EXISTS dead_letters
(
    reason String,
    format String,
    original String,
    brand String,
    source_topic String,
    source_partition UInt32,
    source_offset UInt64,
    record_index UInt32,
    received_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(received_at)
ORDER BY (format, brand, cityHash64(original));
