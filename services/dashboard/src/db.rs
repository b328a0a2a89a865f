//! The dashboard's reads from ClickHouse, all through the analysts' views
//! (`rollup_*`, `alert_status`, `organisations`; docs/queries.md), with the
//! sink's client. Values reach SQL only as bound parameters (the client
//! escapes them) after `node` checked their shape; view and column names
//! come from fixed tables, never from input.

use clickhouse::Row;
use serde::Deserialize;

use crate::node::{Level, Node};
use crate::Error;

/// The client for the configured database. 18.16 does not push an outer
/// WHERE into a view unless asked (docs/queries.md, "Cost"): with this
/// setting a day's rollup reads that day's windows, not the whole table.
pub fn client(config: &callpulse_runtime::Config) -> clickhouse::Client {
    callpulse_sink::clickhouse_client(config)
        .with_setting("enable_optimize_predicate_expression", "1")
}

/// London midnight of the bound day, as the rollups' `start` of a 1d window.
const DAY_START: &str = "toDateTime(toDate(?), 'Europe/London')";

/// Where a node's organisations are, as an `organisations` condition and its binding.
fn org_filter(node: &Node) -> (String, Option<String>) {
    match node.level.org_columns() {
        None => ("1".into(), None),
        Some((code, _)) => (format!("{code} = ?"), Some(node.code.clone())),
    }
}

/// The practices of a node, as a condition on a practice-code column.
fn practices_of(column: &str, node: &Node) -> (String, Option<String>) {
    match node.level {
        Level::England => ("1".into(), None),
        Level::Practice => (format!("{column} = ?"), Some(node.code.clone())),
        level => {
            let (code, _) = level.org_columns().expect("below England");
            (
                format!(
                    "{column} IN (SELECT practice_code FROM organisations FINAL WHERE {code} = ?)"
                ),
                Some(node.code.clone()),
            )
        }
    }
}

/// The rows of `rollup_practice` that belong to a node (the view carries
/// each practice's ICB and region; PCNs go through `organisations`).
fn practice_rows_of(node: &Node) -> (String, Option<String>) {
    match node.level {
        Level::Region => ("region = ?".into(), Some(node.code.clone())),
        Level::Icb => ("icb = ?".into(), Some(node.code.clone())),
        _ => practices_of("code", node),
    }
}

fn bind_all(
    mut query: clickhouse::query::Query,
    values: &[Option<&str>],
) -> clickhouse::query::Query {
    for value in values.iter().flatten() {
        query = query.bind(*value);
    }
    query
}

// ---------------------------------------------------------------- nodes

#[derive(Debug, Clone, Row, Deserialize, serde::Serialize)]
pub struct OrgInfo {
    pub practices: u64,
    pub name: String,
    pub icbs: Vec<String>,
    pub icb_name: String,
    pub region_code: String,
    pub region_name: String,
    pub pcn_code: String,
    pub pcn_name: String,
}

/// What `organisations` says about a node: its name, the ICBs it lies in
/// (for the access check) and its ancestors. None: no such organisation.
pub async fn org_info(client: &clickhouse::Client, node: &Node) -> Result<Option<OrgInfo>, Error> {
    let Some((code, name)) = node.level.org_columns() else {
        return Ok(Some(OrgInfo {
            practices: 0,
            name: "England".into(),
            icbs: Vec::new(),
            icb_name: String::new(),
            region_code: String::new(),
            region_name: String::new(),
            pcn_code: String::new(),
            pcn_name: String::new(),
        }));
    };
    // Aliases differ from the column names: 18.16 would otherwise read the
    // alias inside the aggregate.
    let sql = format!(
        "SELECT count() AS n, any({name}) AS node_name, groupUniqArray(icb_code) AS node_icbs, \
         any(icb_name) AS node_icb_name, any(region_code) AS node_region, any(region_name) AS node_region_name, \
         any(pcn_code) AS node_pcn, any(pcn_name) AS node_pcn_name \
         FROM organisations FINAL WHERE {code} = ?"
    );
    let info: OrgInfo = client
        .query(&sql)
        .bind(node.code.as_str())
        .fetch_one()
        .await?;
    Ok((info.practices > 0).then_some(info))
}

/// The latest London day with 15-minute windows; None when there are none.
pub async fn latest_day(client: &clickhouse::Client) -> Result<Option<String>, Error> {
    #[derive(Row, Deserialize)]
    struct Latest {
        windows: u64,
        day: String,
    }
    let latest: Latest = client
        .query(
            "SELECT count() AS windows, toString(toDate(max(`start`), 'Europe/London')) AS day \
             FROM window_metrics WHERE `window` = '15m'",
        )
        .fetch_one()
        .await?;
    Ok((latest.windows > 0).then_some(latest.day))
}

// ---------------------------------------------------------------- a day's figures

/// One node's figures for one London day (the `1d` rollup).
#[derive(Debug, Clone, Default, Row, Deserialize)]
pub struct DayFigures {
    pub practices: u64,
    pub provisional_windows: u64,
    pub offered: u64,
    pub answered: u64,
    pub callback_requested: u64,
    pub abandoned: u64,
    pub missed: u64,
    pub diverted_111: u64,
    pub diverted_111_core: u64,
    pub wait_count: u64,
    pub wait_ms_max: u64,
    pub answered_pct: Option<f64>,
    pub abandoned_pct: Option<f64>,
    pub handled_pct: Option<f64>,
    pub mean_wait_s: Option<f64>,
    pub p50_wait_s: Option<f64>,
    pub p90_wait_s: Option<f64>,
}

/// A node's day; all zeros (rates and percentiles None) when it had no calls.
pub async fn day_figures(
    client: &clickhouse::Client,
    node: &Node,
    day: &str,
) -> Result<DayFigures, Error> {
    let sql = format!(
        "SELECT practices, provisional_windows, offered, answered, callback_requested, abandoned, missed, \
         diverted_111, diverted_111_core, wait_count, wait_ms_max, answered_pct, abandoned_pct, handled_pct, \
         mean_wait_s, p50_wait_s, p90_wait_s \
         FROM {} WHERE `window` = '1d' AND `start` = {DAY_START} AND code = ?",
        node.level.view()
    );
    let row: Option<DayFigures> = client
        .query(&sql)
        .bind(day)
        .bind(node.code.as_str())
        .fetch_optional()
        .await?;
    Ok(row.unwrap_or_default())
}

// ---------------------------------------------------------------- children

#[derive(Debug, Clone, Row, Deserialize)]
pub struct Child {
    pub code: String,
    pub name: String,
    pub offered: u64,
    pub answered_pct: Option<f64>,
    pub abandoned_pct: Option<f64>,
    pub p90_wait_s: Option<f64>,
    pub diverted_111_core: u64,
}

/// The organisations one level down, open on `day`, each with its day's
/// figures (zero offered and no rates when it had no calls), busiest first.
pub async fn children(
    client: &clickhouse::Client,
    node: &Node,
    child: Level,
    day: &str,
) -> Result<Vec<Child>, Error> {
    let (child_code, child_name) = child.org_columns().expect("a child is below England");
    let (parent_filter, parent_value) = org_filter(node);
    // The children's rows of the child rollup: region and ICB views carry
    // `region`, PCN views `icb`; practices of a PCN go through organisations.
    let (rows_filter, rows_value) = match node.level {
        Level::England => ("1".to_string(), None),
        Level::Region => ("region = ?".to_string(), Some(node.code.clone())),
        Level::Icb => ("icb = ?".to_string(), Some(node.code.clone())),
        _ => practice_rows_of(node),
    };
    let sql = format!(
        "SELECT code, child_name, offered, answered_pct, abandoned_pct, p90_wait_s, diverted_111_core \
         FROM ( \
             SELECT {child_code} AS code, any({child_name}) AS child_name FROM organisations FINAL \
             WHERE {parent_filter} AND {child_code} != '' AND (close_date IS NULL OR close_date >= toDate(?)) \
             GROUP BY code \
         ) AS c \
         ANY LEFT JOIN ( \
             SELECT code, offered, answered_pct, abandoned_pct, p90_wait_s, diverted_111_core FROM {} \
             WHERE `window` = '1d' AND `start` = {DAY_START} AND {rows_filter} \
         ) AS f USING (code) \
         ORDER BY offered DESC, code",
        child.view()
    );
    let query = bind_all(
        client.query(&sql),
        &[
            parent_value.as_deref(),
            Some(day),
            Some(day),
            rows_value.as_deref(),
        ],
    );
    Ok(query.fetch_all().await?)
}

// ---------------------------------------------------------------- series

#[derive(Debug, Clone, Row, Deserialize)]
pub struct SeriesPoint {
    pub day: String,
    /// Minutes after London midnight of the window's start.
    pub minute: u32,
    pub offered: u64,
    pub answered: u64,
    pub callback_requested: u64,
    pub abandoned: u64,
    pub missed: u64,
    pub diverted_111_core: u64,
}

/// The 15-minute windows of `day` and of the same weekday a week before.
pub async fn series(
    client: &clickhouse::Client,
    node: &Node,
    day: &str,
) -> Result<Vec<SeriesPoint>, Error> {
    let sql = format!(
        "SELECT toString(toDate(`start`, 'Europe/London')) AS day, \
         toUInt32(toHour(`start`, 'Europe/London') * 60 + toMinute(`start`, 'Europe/London')) AS minute, \
         offered, answered, callback_requested, abandoned, missed, diverted_111_core \
         FROM {} WHERE `window` = '15m' AND code = ? AND ( \
             (`start` >= {DAY_START} AND `start` < toDateTime(toDate(?) + 1, 'Europe/London')) \
             OR (`start` >= toDateTime(toDate(?) - 7, 'Europe/London') AND `start` < toDateTime(toDate(?) - 6, 'Europe/London'))) \
         ORDER BY `start`",
        node.level.view()
    );
    Ok(client
        .query(&sql)
        .bind(node.code.as_str())
        .bind(day)
        .bind(day)
        .bind(day)
        .bind(day)
        .fetch_all()
        .await?)
}

// ---------------------------------------------------------------- practices

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    AbandonedPct,
    P90Wait,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct RankedPractice {
    pub code: String,
    pub name: String,
    pub icb: String,
    pub offered: u64,
    pub answered_pct: Option<f64>,
    pub abandoned_pct: Option<f64>,
    pub p90_wait_s: Option<f64>,
    pub mean_wait_s: Option<f64>,
    pub diverted_111_core: u64,
}

/// The node's practices with calls on `day`, worst first.
pub async fn ranked_practices(
    client: &clickhouse::Client,
    node: &Node,
    day: &str,
    rank: Rank,
    limit: u32,
) -> Result<Vec<RankedPractice>, Error> {
    let (filter, value) = practice_rows_of(node);
    let order = match rank {
        Rank::AbandonedPct => "offered > 0 ORDER BY abandoned_pct DESC, offered DESC, code",
        Rank::P90Wait => "wait_count > 0 ORDER BY p90_wait_s DESC, mean_wait_s DESC, code",
    };
    let sql = format!(
        "SELECT code, name, icb, offered, answered_pct, abandoned_pct, p90_wait_s, mean_wait_s, diverted_111_core \
         FROM rollup_practice WHERE `window` = '1d' AND `start` = {DAY_START} AND {filter} AND {order} \
         LIMIT {limit}"
    );
    let query = bind_all(client.query(&sql), &[Some(day), value.as_deref()]);
    Ok(query.fetch_all().await?)
}

// ---------------------------------------------------------------- alerts

#[derive(Debug, Clone, Row, Deserialize)]
pub struct ActiveAlert {
    pub id: String,
    pub practice: String,
    pub practice_name: String,
    pub kind: String,
    pub state: String,
    pub summary: String,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub diverted_calls: u64,
    pub delivered_to: u64,
    pub failed_for: u64,
}

/// Alerts of the node's practices whose latest state is not `resolved`.
pub async fn active_alerts(
    client: &clickhouse::Client,
    node: &Node,
) -> Result<Vec<ActiveAlert>, Error> {
    let (filter, value) = practices_of("practice", node);
    let sql = format!(
        "SELECT id, practice, practice_name, latest_kind, latest_state, latest_summary, started_ms, updated_ms, \
             diverted, delivered, failed \
         FROM ( \
             SELECT id, practice, argMax(kind, revision) AS latest_kind, argMax(state, revision) AS latest_state, \
                 argMax(summary, revision) AS latest_summary, min(started_at_ms) AS started_ms, \
                 max(updated_at_ms) AS updated_ms, argMax(diverted_calls, revision) AS diverted, \
                 argMax(delivered_to, revision) AS delivered, argMax(failed_for, revision) AS failed \
             FROM alert_status WHERE {filter} GROUP BY id, practice \
         ) AS a \
         ANY LEFT JOIN (SELECT practice_code AS practice, practice_name FROM organisations FINAL) AS o USING (practice) \
         WHERE latest_state != 'resolved' \
         ORDER BY updated_ms DESC, id LIMIT 200"
    );
    let query = bind_all(client.query(&sql), &[value.as_deref()]);
    Ok(query.fetch_all().await?)
}

// ---------------------------------------------------------------- heat map

#[derive(Debug, Clone, Row, Deserialize)]
pub struct HeatCell {
    /// 1 = Monday ... 7 = Sunday (London).
    pub weekday: u8,
    /// London hour of day, 0-23.
    pub hour: u8,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// London days with a window at this weekday and hour.
    pub days: u64,
}

/// Hour of day by weekday over the `weeks` weeks ending with `day`, from
/// the 1-hour rollups.
pub async fn heat_map(
    client: &clickhouse::Client,
    node: &Node,
    day: &str,
    weeks: u32,
) -> Result<Vec<HeatCell>, Error> {
    let back = weeks * 7 - 1;
    let sql = format!(
        "SELECT toUInt8(toDayOfWeek(`start`, 'Europe/London')) AS weekday, \
             toUInt8(toHour(`start`, 'Europe/London')) AS hour, \
             sum(offered) AS calls_offered, sum(answered) AS calls_answered, sum(abandoned) AS calls_abandoned, \
             uniqExact(toDate(`start`, 'Europe/London')) AS days \
         FROM {} WHERE `window` = '1h' AND code = ? \
             AND `start` >= toDateTime(toDate(?) - {back}, 'Europe/London') \
             AND `start` < toDateTime(toDate(?) + 1, 'Europe/London') \
         GROUP BY weekday, hour ORDER BY weekday, hour",
        node.level.view()
    );
    Ok(client
        .query(&sql)
        .bind(node.code.as_str())
        .bind(day)
        .bind(day)
        .fetch_all()
        .await?)
}
