-- Feeds one ICB's database (docs/queries.md, "Access") from the main one.
-- Applied by callpulse_sink::access::create_icb_database in the ICB's
-- database, after the main migrations (the same tables and views), with
--   {source}  the main database      {icb}  the ICB code, e.g. QHM
-- Materialized views copy every new row of the ICB's practices; the inserts
-- then copy what was there before. Running it again is harmless: the tables
-- are ReplacingMergeTree, so a row copied twice counts once under FINAL.
CREATE MATERIALIZED VIEW IF NOT EXISTS organisations_feed TO organisations AS
SELECT * FROM {source}.organisations WHERE icb_code = '{icb}';

CREATE MATERIALIZED VIEW IF NOT EXISTS window_metrics_feed TO window_metrics AS
SELECT * FROM {source}.window_metrics
WHERE practice IN (SELECT practice_code FROM {source}.organisations FINAL WHERE icb_code = '{icb}');

INSERT INTO organisations
SELECT * FROM {source}.organisations WHERE icb_code = '{icb}';

INSERT INTO window_metrics
SELECT * FROM {source}.window_metrics
WHERE practice IN (SELECT practice_code FROM {source}.organisations FINAL WHERE icb_code = '{icb}');
