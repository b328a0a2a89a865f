-- Calls offered and abandoned by PCN for one day (a London day), in one ICB.
-- Parameters, in order: ICB code, day (YYYY-MM-DD).
WITH
    ? AS icb_wanted,
    toDateTime(toDate(?), 'Europe/London') AS day_start
SELECT
    code AS pcn_code,
    name AS pcn_name,
    practices,
    offered,
    abandoned,
    round(abandoned_pct, 1) AS abandoned_pct
FROM rollup_pcn
WHERE `window` = '1d' AND `start` = day_start AND icb = icb_wanted
ORDER BY pcn_code
