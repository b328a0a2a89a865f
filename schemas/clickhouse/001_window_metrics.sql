-- Window metrics (metrics.md §4), one row per emission of a window.
-- ReplacingMergeTree keeps the highest `version` per window: re-emitted and
-- replayed windows replace earlier rows instead of adding to them.
-- version = revision * 2 + final, so the final row of a revision wins.
-- Read with FINAL (or argMax by version). Runs on ClickHouse 18.16 and current.
CREATE TABLE IF NOT EXISTS window_metrics
(
    practice String,
    window String,
    `start` DateTime('UTC'),
    `end` DateTime('UTC'),
    revision UInt64,
    final UInt8,
    version UInt64,
    offered UInt64,
    answered UInt64,
    callback_requested UInt64,
    abandoned UInt64,
    missed UInt64,
    ivr_ended UInt64,
    diverted_111 UInt64,
    diverted_111_core UInt64,
    callbacks_made UInt64,
    unique_callers UInt64,
    peak_waiting UInt64,
    wait_count UInt64,
    wait_ms_sum UInt64,
    wait_ms_max UInt64,
    wait_hist Array(UInt64),
    abandon_count UInt64,
    abandon_ms_sum UInt64,
    abandon_ms_max UInt64,
    abandon_hist Array(UInt64),
    talk_count UInt64,
    talk_ms_sum UInt64,
    talk_ms_max UInt64,
    talk_hist Array(UInt64),
    callback_delay_count UInt64,
    callback_delay_ms_sum UInt64,
    dq_duplicates UInt64,
    dq_conflicts UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(`start`)
ORDER BY (window, practice, `start`);
