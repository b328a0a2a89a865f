-- Calls diverted to NHS 111 in GP core hours (08:00-18:30 London, Monday
-- to Friday, not bank holidays) in one London calendar month, by ICB, most
-- first. Every ICB with calls that month is listed, with zero if none.
-- Parameters: any day of the month (YYYY-MM-DD).
WITH toDateTime(toStartOfMonth(toDate(?)), 'Europe/London') AS month_start
SELECT
    code AS icb_code,
    name AS icb_name,
    region AS region_code,
    diverted_111_core,
    diverted_111,
    offered
FROM rollup_icb
WHERE `window` = '1mo' AND `start` = month_start
ORDER BY diverted_111_core DESC, icb_code
