-- 0003: the engagement-versus-reach figures (docs/metrics.md, "Engagement versus reach"): three aggregates
-- recomputed from FINAL rows with the care metrics' marks (care_dirty), and the canned-reply flags they read.
-- requires: 24.8
-- The last statement marks every stored hour for recomputation, so an existing warehouse gets these tables (and
-- care_hourly's new columns) filled by the worker's next recomputation or by `rapport metrics`.

-- The conversations of care_hourly as sorted arrays of sipHash64(conversation_id): `uniqExactArray` over them is
-- ~3.5x faster than merging the uniqExact states (the states stay, with the same numbers).
ALTER TABLE care_hourly ADD COLUMN IF NOT EXISTS conversation_hashes Array(UInt64) AFTER conversations_answered;
ALTER TABLE care_hourly ADD COLUMN IF NOT EXISTS answered_conversation_hashes Array(UInt64) AFTER conversation_hashes;

-- Inbound-message figures per (brand, platform, hour of the message, follower tier of its author).
CREATE TABLE IF NOT EXISTS engagement_hourly
(
    brand String,
    platform String,
    hour DateTime('UTC'),
    tier LowCardinality(String),
    inbound_messages UInt64,
    answered_messages UInt64,
    response_seconds Array(UInt32),
    sentiment_messages UInt64,
    sentiment_sum Int64,
    negative_messages UInt64,
    negative_answered UInt64,
    shift_pairs UInt64,
    shift_sum Int64,
    shift_improved UInt64,
    conversations_started UInt64,
    conversation_messages UInt64,
    multi_turn_conversations UInt64,
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(hour)
ORDER BY (brand, platform, hour, tier);

-- Outbound and reach figures per (brand, platform, hour of the outbound message or reach event).
CREATE TABLE IF NOT EXISTS reach_hourly
(
    brand String,
    platform String,
    hour DateTime('UTC'),
    outbound_messages UInt64,
    brand_replies UInt64,
    broadcasts UInt64,
    canned_replies UInt64,
    judged_replies UInt64,
    posts UInt64,
    posts_with_impressions UInt64,
    impressions UInt64,
    posts_with_likes UInt64,
    likes UInt64,
    posts_with_shares UInt64,
    shares UInt64,
    posts_with_replies UInt64,
    post_replies UInt64,
    engagement_on_impressions UInt64,
    impressions_with_engagement UInt64,
    reaction_events UInt64,
    share_events UInt64,
    follow_events UInt64,
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(hour)
ORDER BY (brand, platform, hour);

-- Every inbound message of a customer, as parallel arrays in time order (relationships over any range).
CREATE TABLE IF NOT EXISTS customer_activity
(
    brand String,
    platform String,
    customer_id String,
    message_at Array(DateTime('UTC')),
    conversations Array(UInt64),
    answered Array(UInt8),
    won_back Array(UInt8),
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (brand, platform, customer_id);

-- Whether each brand reply is canned (streams/processing/canned.py), written by the recomputation.
CREATE TABLE IF NOT EXISTS reply_canned
(
    brand String,
    platform String,
    event_id String,
    created_at DateTime('UTC'),
    judged UInt8,
    canned UInt8,
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (brand, platform, event_id);

-- The buckets of one recomputation (streams/metrics/engagement.py, Keys): read by subquery, gone after a day.
CREATE TABLE IF NOT EXISTS refresh_keys
(
    refresh UInt64,
    brand String,
    platform String,
    hour UInt32
)
ENGINE = MergeTree
ORDER BY (refresh, brand, platform, hour)
TTL toDateTime(intDiv(refresh, 1000000000)) + INTERVAL 1 DAY;

INSERT INTO care_dirty (brand, platform, hour, _version, _done)
SELECT DISTINCT brand, platform, toStartOfHour(created_at), toUInt64(toUnixTimestamp64Nano(now64(9))), 0
FROM interactions;
