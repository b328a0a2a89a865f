-- Rollups of window metrics to practice, PCN, sub-ICB location, ICB, NHS
-- England region and England (docs/queries.md). Views only: they read
-- `window_metrics FINAL` and `organisations FINAL` at query time, so a
-- re-emitted window or a reloaded organisations file shows at once.
-- Runs on ClickHouse 18.16 and current: no CTEs, window functions,
-- DateTime64, LowCardinality or CREATE FUNCTION.
--
-- Layers (each view builds on the one before):
--   window_metrics_org   one row per practice window (latest version) with
--                        its PCN, sub-ICB location, ICB and region
--   window_metrics_periods  the same rows under `period`; each 1d row also
--                        under 1w (London week from Monday) and 1mo (London
--                        calendar month)
--   rollup_sums          counts and histograms summed per level, code,
--                        window (1m, 15m, 1h, 1d, 1w, 1mo) and start
--   rollups              + rates and percentiles: THE place where the
--                        percentile-from-histogram SQL lives
--   rollup_practice, rollup_pcn, rollup_sub_icb, rollup_icb, rollup_region,
--   rollup_england       `rollups` for one level
--
-- A practice missing from `organisations` rolls up under code '' at every
-- level below England; a practice in no PCN under PCN code ''.
CREATE VIEW IF NOT EXISTS window_metrics_org AS
SELECT
    practice,
    `window`,
    `start`,
    `end`,
    revision,
    `final`,
    version,
    offered,
    answered,
    callback_requested,
    abandoned,
    missed,
    ivr_ended,
    diverted_111,
    diverted_111_core,
    callbacks_made,
    unique_callers,
    peak_waiting,
    wait_count,
    wait_ms_sum,
    wait_ms_max,
    wait_hist,
    abandon_count,
    abandon_ms_sum,
    abandon_ms_max,
    abandon_hist,
    talk_count,
    talk_ms_sum,
    talk_ms_max,
    talk_hist,
    callback_delay_count,
    callback_delay_ms_sum,
    dq_duplicates,
    dq_conflicts,
    practice_name,
    pcn_code,
    pcn_name,
    sub_icb_code,
    sub_icb_name,
    icb_code,
    icb_name,
    region_code,
    region_name
FROM window_metrics FINAL
ANY LEFT JOIN
(
    SELECT
        practice_code AS practice,
        practice_name,
        pcn_code,
        pcn_name,
        sub_icb_code,
        sub_icb_name,
        icb_code,
        icb_name,
        region_code,
        region_name
    FROM organisations FINAL
) AS org USING (practice);

-- Every practice window under its own size, and each London day (1d) also
-- under its week (1w, from Monday 00:00 London) and month (1mo, from the
-- 1st 00:00 London). period_start and period_end are UTC instants.
CREATE VIEW IF NOT EXISTS window_metrics_periods AS
SELECT
    *,
    period,
    toDateTime(multiIf(
        period = '1w', toUInt32(toDateTime(toMonday(toDate(`start`, 'Europe/London')), 'Europe/London')),
        period = '1mo', toUInt32(toDateTime(toStartOfMonth(toDate(`start`, 'Europe/London')), 'Europe/London')),
        toUInt32(`start`)), 'UTC') AS period_start,
    toDateTime(multiIf(
        period = '1w', toUInt32(toDateTime(toMonday(toDate(`start`, 'Europe/London')) + 7, 'Europe/London')),
        period = '1mo', toUInt32(toDateTime(addMonths(toStartOfMonth(toDate(`start`, 'Europe/London')), 1), 'Europe/London')),
        toUInt32(`end`)), 'UTC') AS period_end
FROM window_metrics_org
ARRAY JOIN if(`window` = '1d', ['1d', '1w', '1mo'], [`window`]) AS period;

-- Sums per level. `practices` counts distinct practices, `practice_windows`
-- the practice windows summed (for 1w and 1mo: practice days), and
-- `provisional_windows` those not yet final. `icb` and `region`
-- are the ICB and region a practice, PCN or sub-ICB location belongs to
-- ('' above). `unique_callers` and `peak_waiting` are sums over practice
-- windows (a caller of two practices counts twice; peaks need not
-- coincide): upper bounds above one practice window. Maxima are maxima.
-- Histograms add element by element (sumForEach).
CREATE VIEW IF NOT EXISTS rollup_sums AS
SELECT
    level,
    code,
    any(level_name) AS name,
    any(level_icb) AS icb,
    any(level_region) AS region,
    period AS `window`,
    period_start AS `start`,
    max(period_end) AS `end`,
    uniqExact(practice) AS practices,
    count() AS practice_windows,
    countIf(`final` = 0) AS provisional_windows,
    sum(offered) AS offered,
    sum(answered) AS answered,
    sum(callback_requested) AS callback_requested,
    sum(abandoned) AS abandoned,
    sum(missed) AS missed,
    sum(ivr_ended) AS ivr_ended,
    sum(diverted_111) AS diverted_111,
    sum(diverted_111_core) AS diverted_111_core,
    sum(callbacks_made) AS callbacks_made,
    sum(unique_callers) AS unique_callers,
    sum(peak_waiting) AS peak_waiting,
    sum(wait_count) AS wait_count,
    sum(wait_ms_sum) AS wait_ms_sum,
    max(wait_ms_max) AS wait_ms_max,
    sumForEach(wait_hist) AS wait_hist,
    sum(abandon_count) AS abandon_count,
    sum(abandon_ms_sum) AS abandon_ms_sum,
    max(abandon_ms_max) AS abandon_ms_max,
    sumForEach(abandon_hist) AS abandon_hist,
    sum(talk_count) AS talk_count,
    sum(talk_ms_sum) AS talk_ms_sum,
    max(talk_ms_max) AS talk_ms_max,
    sumForEach(talk_hist) AS talk_hist,
    sum(callback_delay_count) AS callback_delay_count,
    sum(callback_delay_ms_sum) AS callback_delay_ms_sum,
    sum(dq_duplicates) AS dq_duplicates,
    sum(dq_conflicts) AS dq_conflicts
FROM window_metrics_periods
ARRAY JOIN
    ['practice', 'pcn', 'sub_icb', 'icb', 'region', 'england'] AS level,
    [practice, pcn_code, sub_icb_code, icb_code, region_code, 'ENG'] AS code,
    [practice_name, pcn_name, sub_icb_name, icb_name, region_name, 'England'] AS level_name,
    [icb_code, icb_code, icb_code, '', '', ''] AS level_icb,
    [region_code, region_code, region_code, region_code, '', ''] AS level_region
GROUP BY level, code, period, period_start;

-- Rates and percentiles. Rates are percentages of `offered` (NULL when
-- nothing was offered): answered %, abandoned %, handled % = (answered +
-- callback requested) / offered (metrics.md, CBT005).
--
-- Percentile from a histogram, nearest-rank, exact to bucket resolution:
-- the p-th percentile of n values is the upper bound, in seconds, of the
-- first bucket whose cumulative count reaches p * n. Buckets are those of
-- metrics.md (upper bounds 10, 30, 60, 120, 300, 600, 1200, 1800, 3600 s,
-- then the open bucket, reported as inf); NULL when the histogram is empty.
-- The comparison is in integers (cumulative * 10 >= n * 9 for p90), so no
-- rounding can move a percentile across a bucket bound.
CREATE VIEW IF NOT EXISTS rollups AS
SELECT
    *,
    if(offered = 0, NULL, 100 * answered / offered) AS answered_pct,
    if(offered = 0, NULL, 100 * abandoned / offered) AS abandoned_pct,
    if(offered = 0, NULL, 100 * (answered + callback_requested) / offered) AS handled_pct,
    if(wait_count = 0, NULL, wait_ms_sum / wait_count / 1000) AS mean_wait_s,
    if(talk_count = 0, NULL, talk_ms_sum / talk_count / 1000) AS mean_talk_s,
    if(arraySum(wait_hist) = 0, NULL,
        [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, inf][arrayFirstIndex(c -> c * 2 >= arraySum(wait_hist), arrayCumSum(wait_hist))]) AS p50_wait_s,
    if(arraySum(wait_hist) = 0, NULL,
        [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, inf][arrayFirstIndex(c -> c * 10 >= arraySum(wait_hist) * 9, arrayCumSum(wait_hist))]) AS p90_wait_s,
    if(arraySum(talk_hist) = 0, NULL,
        [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, inf][arrayFirstIndex(c -> c * 2 >= arraySum(talk_hist), arrayCumSum(talk_hist))]) AS p50_talk_s,
    if(arraySum(talk_hist) = 0, NULL,
        [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, inf][arrayFirstIndex(c -> c * 10 >= arraySum(talk_hist) * 9, arrayCumSum(talk_hist))]) AS p90_talk_s
FROM rollup_sums;

CREATE VIEW IF NOT EXISTS rollup_practice AS SELECT * FROM rollups WHERE level = 'practice';
CREATE VIEW IF NOT EXISTS rollup_pcn AS SELECT * FROM rollups WHERE level = 'pcn';
CREATE VIEW IF NOT EXISTS rollup_sub_icb AS SELECT * FROM rollups WHERE level = 'sub_icb';
CREATE VIEW IF NOT EXISTS rollup_icb AS SELECT * FROM rollups WHERE level = 'icb';
CREATE VIEW IF NOT EXISTS rollup_region AS SELECT * FROM rollups WHERE level = 'region';
CREATE VIEW IF NOT EXISTS rollup_england AS SELECT * FROM rollups WHERE level = 'england';
