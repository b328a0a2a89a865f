-- Calls: one row per call (from callpulse.calls.v1), for call-level
-- analysis. No phone numbers: `caller` is the adapters' keyed pseudonym.
-- The processor re-emits a call's summary as events arrive and once more,
-- final, when it forgets the call; ReplacingMergeTree keeps the highest
-- version = revision * 2 + final. Read with FINAL. Times are epoch
-- milliseconds (no DateTime64 on 18.16) plus a DateTime for partitioning.
-- Runs on ClickHouse 18.16 and current.
CREATE TABLE IF NOT EXISTS calls
(
    practice String,
    vendor String,
    call_id String,
    revision UInt64,
    final UInt8,
    version UInt64,
    caller String,
    offered_at DateTime('UTC'),
    offered_at_ms Nullable(Int64),
    wait_start_at_ms Nullable(Int64),
    outcome String,
    outcome_at_ms Nullable(Int64),
    outcome_in_core_hours UInt8,
    wait_ms Nullable(UInt64),
    abandon_ms Nullable(UInt64),
    talk_ms Nullable(UInt64),
    ended_at_ms Nullable(Int64),
    callback_requested_at_ms Nullable(Int64),
    first_callback_made_at_ms Nullable(Int64),
    callbacks_made UInt64,
    callback_delay_ms Nullable(UInt64),
    conflicting_outcomes UInt64,
    events UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(offered_at)
ORDER BY (practice, vendor, call_id);

-- Alerts: every state of every alert (from callpulse.alerts.v1): firing,
-- its updates, resolved. The key includes the revision, so each state is
-- kept and a state delivered twice counts once. Delivery attempts are in
-- alert_deliveries (written by the alerter); alert_status joins them.
CREATE TABLE IF NOT EXISTS alerts
(
    id String,
    revision UInt64,
    kind String,
    state String,
    practice String,
    pcn String,
    icb String,
    started_at DateTime('UTC'),
    started_at_ms Int64,
    updated_at_ms Int64,
    opened_by String,
    switched_on_at_ms Nullable(Int64),
    diverted_calls UInt64,
    resolved_at_ms Nullable(Int64),
    duration_ms Nullable(UInt64),
    resolution String,
    summary String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (practice, id, revision);

-- Each alert state with where its delivery stands: how many recipients got
-- it, how many attempts failed for good, and the last attempt's time.
CREATE VIEW IF NOT EXISTS alert_status AS
SELECT
    a.id AS id,
    a.revision AS revision,
    a.kind AS kind,
    a.state AS state,
    a.practice AS practice,
    a.pcn AS pcn,
    a.icb AS icb,
    a.diverted_calls AS diverted_calls,
    a.summary AS summary,
    a.started_at_ms AS started_at_ms,
    a.updated_at_ms AS updated_at_ms,
    d.delivered_to AS delivered_to,
    d.failed_for AS failed_for,
    d.last_attempt_ms AS last_attempt_ms
FROM (SELECT * FROM alerts FINAL) AS a
ALL LEFT JOIN
(
    SELECT
        alert_id AS id,
        revision,
        uniqExactIf(recipient, status = 'delivered') AS delivered_to,
        uniqExactIf(recipient, status = 'failed') AS failed_for,
        max(attempted_at_ms) AS last_attempt_ms
    FROM alert_deliveries
    GROUP BY alert_id, revision
) AS d USING (id, revision);
