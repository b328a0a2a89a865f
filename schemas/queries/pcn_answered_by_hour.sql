-- Answered % by hour of day (London time) for one PCN over a range of
-- London days, for rota planning: every 1-hour window of the range summed by
-- its hour of day. Hours with no calls offered are absent.
-- Parameters, in order: PCN code, first day, last day (YYYY-MM-DD, inclusive).
WITH
    ? AS pcn_wanted,
    toDate(?) AS first_day,
    toDate(?) AS last_day
SELECT
    toHour(`start`, 'Europe/London') AS hour_of_day,
    sum(offered) AS calls_offered,
    sum(answered) AS calls_answered,
    round(100 * calls_answered / calls_offered, 1) AS answered_pct,
    round(100 * (calls_answered + sum(callback_requested)) / calls_offered, 1) AS handled_pct
FROM rollup_pcn
WHERE `window` = '1h' AND code = pcn_wanted
    AND toDate(`start`, 'Europe/London') >= first_day
    AND toDate(`start`, 'Europe/London') <= last_day
GROUP BY hour_of_day
HAVING calls_offered > 0
ORDER BY hour_of_day
