-- The national wait and call-length bands for a month, per practice and
-- London day: CBT003 answered calls by wait (time to answer) and CBT007
-- answered calls by call length, in the bands up to 1 minute, 1-2 minutes,
-- 2-5 minutes and over 5 minutes (sums of histogram buckets: up to 10, 30
-- and 60 s; up to 120 s; up to 300 s; the rest), from the 1-day windows.
-- Parameters, in order: any day of the month (YYYY-MM-DD), ICB code or ''.
WITH
    toStartOfMonth(toDate(?)) AS month_first,
    ? AS icb_wanted
SELECT
    toDate(`start`, 'Europe/London') AS Date,
    region_code AS REGION_CODE,
    icb_code AS ICB_CODE,
    sub_icb_code AS SUB_ICB_LOCATION_CODE,
    pcn_code AS PCN_CODE,
    practice AS PRACTICE_CODE,
    band.1 AS Indicator,
    band.2 AS Time_Category,
    band.3 AS Value
FROM window_metrics_org
ARRAY JOIN [
    ('CBT003', 'Up to 1 minute', wait_hist[1] + wait_hist[2] + wait_hist[3], 1),
    ('CBT003', '1-2 minutes', wait_hist[4], 2),
    ('CBT003', '2-5 minutes', wait_hist[5], 3),
    ('CBT003', 'Over 5 minutes', arraySum(arraySlice(wait_hist, 6)), 4),
    ('CBT007', 'Up to 1 minute', talk_hist[1] + talk_hist[2] + talk_hist[3], 1),
    ('CBT007', '1-2 minutes', talk_hist[4], 2),
    ('CBT007', '2-5 minutes', talk_hist[5], 3),
    ('CBT007', 'Over 5 minutes', arraySum(arraySlice(talk_hist, 6)), 4)] AS band
WHERE `window` = '1d'
    AND toStartOfMonth(toDate(`start`, 'Europe/London')) = month_first
    AND (icb_code = icb_wanted OR icb_wanted = '')
ORDER BY Date, PRACTICE_CODE, Indicator, band.4
