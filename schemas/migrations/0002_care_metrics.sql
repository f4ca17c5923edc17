-- 0002: the care metrics (docs/metrics.md): the needs_reply classification of every message, response times
-- in business hours, SLA breaches, and the hourly aggregate that `rapport metrics` and the dashboards read.
-- requires: 24.8
-- Uses current ClickHouse features (ADD COLUMN IF NOT EXISTS, ReplacingMergeTree's is_deleted column, Map):
-- production runs ClickHouse 24.8 LTS or newer; older servers (the 18.16 that tests use for the wire
-- protocol) skip this migration and keep the core tables only.

ALTER TABLE interactions ADD COLUMN IF NOT EXISTS needs_reply UInt8 DEFAULT 0 AFTER sentiment;

ALTER TABLE responses ADD COLUMN IF NOT EXISTS response_business_seconds Nullable(UInt32) AFTER response_seconds;

CREATE TABLE IF NOT EXISTS sla_breaches
(
    inbound_id String,
    brand String,
    platform String,
    customer_id String,
    inbound_at DateTime('UTC'),
    deadline DateTime('UTC'),
    window_s UInt32,
    sentiment Nullable(Float32),
    breached_at DateTime('UTC'),
    _version UInt64,
    _retracted UInt8
)
ENGINE = ReplacingMergeTree(_version, _retracted)
PARTITION BY toYYYYMM(inbound_at)
ORDER BY (brand, platform, inbound_id, window_s);

CREATE TABLE IF NOT EXISTS care_hourly
(
    brand String,
    platform String,
    hour DateTime('UTC'),
    inbound_messages UInt64,
    answered_messages UInt64,
    needs_reply_messages UInt64,
    needs_reply_answered UInt64,
    response_seconds Array(UInt32),
    response_business_seconds Array(UInt32),
    conversations AggregateFunction(uniqExact, UInt64),
    conversations_answered AggregateFunction(uniqExact, UInt64),
    sla_breaches Map(UInt32, UInt64),
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(hour)
ORDER BY (brand, platform, hour);

-- The hours of care_hourly waiting for their recomputation (streams/metrics/care.py): marked before a batch is
-- acknowledged, cleared (a row with _done = 1 and a later _version) once recomputed.
CREATE TABLE IF NOT EXISTS care_dirty
(
    brand String,
    platform String,
    hour DateTime('UTC'),
    _version UInt64,
    _done UInt8
)
ENGINE = ReplacingMergeTree(_version, _done)
ORDER BY (brand, platform, hour);

-- The backlog (streams/metrics/backlog.py): messages that need a reply and are still unanswered. Sort by
-- (priority, inbound_at, inbound_id): negative first, then oldest first.
CREATE VIEW IF NOT EXISTS care_backlog AS
SELECT i.brand AS brand, i.platform AS platform, i.event_id AS inbound_id, assumeNotNull(i.customer_id) AS customer_id,
       i.author_handle AS author_handle, i.author_followers AS author_followers, i.created_at AS inbound_at,
       i.sentiment AS sentiment,
       toUInt8(multiIf(i.sentiment <= -0.05, 0, i.sentiment >= 0.05, 2, 1)) AS priority,
       toUInt32(greatest(0, toInt64(now()) - toInt64(i.created_at))) AS waited_s,
       i.text AS text
FROM interactions AS i FINAL
WHERE i.direction = 'inbound' AND i.kind IN ('post', 'comment', 'reply', 'mention', 'direct_message')
  AND i.deleted = 0 AND i.needs_reply = 1
  AND (i.brand, i.event_id) NOT IN (SELECT brand, inbound_id FROM responses FINAL);
