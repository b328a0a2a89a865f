-- Alert deliveries (docs/alerts.md): one row per attempt to deliver one
-- alert state to one recipient, written by `callpulse alerter`. A message
-- holding several alerts (grouping) gives one row per alert per attempt,
-- all with the same message_key.
-- status: `delivered`; `retry` (this attempt failed, another follows);
-- `failed` (the last attempt failed: the alert was also published to the
-- undeliverable topic); recipient '' with status `failed`: nobody to send it to.
-- http_status 0: not HTTP (email) or no response. reply: the start of the
-- HTTP response body or the SMTP server's reply.
-- attempted_at_ms: epoch milliseconds (no DateTime64 on 18.16).
-- Append-only MergeTree: an audit keeps every row. Runs on ClickHouse 18.16 and current.
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id String,
    revision UInt64,
    kind String,
    state String,
    practice String,
    pcn String,
    icb String,
    recipient String,
    channel String,
    message_key String,
    group_size UInt32,
    attempt UInt32,
    status String,
    http_status UInt16,
    reply String,
    error String,
    attempted_at DateTime('UTC'),
    attempted_at_ms UInt64,
    duration_ms UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (alert_id, revision, recipient, attempted_at_ms, attempt);
