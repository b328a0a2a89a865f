-- The ten practices with the longest 90th-percentile wait (time to answer)
-- in one London week (Monday to Sunday), in one ICB. The percentile is the
-- upper bound in seconds of its histogram bucket (inf: over an hour); ties
-- go to the longer mean wait, then to the practice code.
-- Parameters, in order: ICB code, any day of the week (YYYY-MM-DD).
WITH
    ? AS icb_wanted,
    toDateTime(toMonday(toDate(?)), 'Europe/London') AS week_start
SELECT
    code AS practice_code,
    name AS practice_name,
    wait_count AS answered_with_wait,
    p90_wait_s,
    p50_wait_s,
    mean_wait_s
FROM rollup_practice
WHERE `window` = '1w' AND `start` = week_start AND icb = icb_wanted AND wait_count > 0
ORDER BY p90_wait_s DESC, mean_wait_s DESC, practice_code
LIMIT 10
