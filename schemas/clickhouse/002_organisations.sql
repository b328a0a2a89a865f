-- Organisations: GP practice -> PCN -> sub-ICB location -> ICB -> NHS England
-- region, one row per practice, loaded by `callpulse orgs load FILE`
-- (format: docs/organisations.md). Every load writes all its rows with a new
-- `version` (the load time in milliseconds), so ReplacingMergeTree keeps the
-- latest load of each practice: read with FINAL (or argMax by version).
-- A practice absent from a later file keeps its row from the earlier load.
-- Dates are Nullable: NULL open_date = not in the file, NULL close_date = open.
-- Plain String columns (no LowCardinality): runs on ClickHouse 18.16 and current.
CREATE TABLE IF NOT EXISTS organisations
(
    practice_code String,
    practice_name String,
    practice_postcode String,
    pcn_code String,
    pcn_name String,
    sub_icb_code String,
    sub_icb_name String,
    icb_code String,
    icb_name String,
    region_code String,
    region_name String,
    open_date Nullable(Date),
    close_date Nullable(Date),
    loaded_at DateTime('UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY practice_code;
