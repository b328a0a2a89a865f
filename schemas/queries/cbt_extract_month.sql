-- A month's practice-level extract in the shape of NHS England's Cloud Based
-- Telephony publication, "By Day and Time": one row per London day,
-- practice, time band and indicator, from the 15-minute windows.
-- Indicators (metrics.md): CBT001 offered; CBT002 ivr_ended + diverted_111;
-- CBT003 answered; CBT004 abandoned + missed; CBT005 callback_requested;
-- CBT006 callbacks_made; CBT007 talk_count (answered calls with a call
-- length, counted when they ended). Time bands (London time, by window
-- start): 00-06, 06-08, 08-10, 10-12, 12-14, 14-16, 16-18, 18:00-18:29,
-- 18:30-24. A band with any window of the practice gets all seven rows,
-- zeros included. An empty ICB code gives every ICB.
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
    indicator.1 AS Indicator,
    multiIf(
        toHour(`start`, 'Europe/London') < 6, '00-06',
        toHour(`start`, 'Europe/London') < 8, '06-08',
        toHour(`start`, 'Europe/London') < 10, '08-10',
        toHour(`start`, 'Europe/London') < 12, '10-12',
        toHour(`start`, 'Europe/London') < 14, '12-14',
        toHour(`start`, 'Europe/London') < 16, '14-16',
        toHour(`start`, 'Europe/London') < 18, '16-18',
        toHour(`start`, 'Europe/London') = 18 AND toMinute(`start`, 'Europe/London') < 30, '18:00-18:29',
        '18:30-24') AS Time_Category,
    sum(indicator.2) AS Value
FROM window_metrics_org
ARRAY JOIN [
    ('CBT001', offered),
    ('CBT002', ivr_ended + diverted_111),
    ('CBT003', answered),
    ('CBT004', abandoned + missed),
    ('CBT005', callback_requested),
    ('CBT006', callbacks_made),
    ('CBT007', talk_count)] AS indicator
WHERE `window` = '15m'
    AND toStartOfMonth(toDate(`start`, 'Europe/London')) = month_first
    AND (icb_code = icb_wanted OR icb_wanted = '')
GROUP BY Date, REGION_CODE, ICB_CODE, SUB_ICB_LOCATION_CODE, PCN_CODE, PRACTICE_CODE, Indicator, Time_Category
ORDER BY Date, PRACTICE_CODE, Time_Category, Indicator
