//! The shipped organisations file loaded into the real ClickHouse (a fresh
//! database per run): counts per level and per ICB and region as SQL sees
//! them, against counts computed here straight from the CSV text; and a
//! second load replaces every practice instead of adding to it. Run by
//! `deploy/local/test.sh` (CALLPULSE_TEST_CLICKHOUSE).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use callpulse_e2e::test_config;
use callpulse_sink::organisations::{load, parse};
use serde::Deserialize;

const SHIPPED: &str = include_str!("../../data/organisations.csv");

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct Levels {
    practices: u64,
    closed: u64,
    pcns: u64,
    sub_icbs: u64,
    icbs: u64,
    regions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct Group {
    code: String,
    name: String,
    practices: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct Dates {
    practice_code: String,
    open_date: String,
    close_date: String,
}

/// The shipped file as plain rows of named fields: it has no quoted fields,
/// so splitting on commas reads it without the loader's CSV parser.
fn shipped_rows() -> Vec<HashMap<&'static str, &'static str>> {
    let mut lines = SHIPPED.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(!SHIPPED.contains('"'), "the shipped file has quoted fields");
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{line}");
            header.iter().copied().zip(fields).collect()
        })
        .collect()
}

fn expected_levels(rows: &[HashMap<&str, &str>]) -> Levels {
    let distinct = |column: &str| {
        rows.iter()
            .map(|r| r[column])
            .filter(|c| !c.is_empty())
            .collect::<BTreeSet<_>>()
            .len() as u64
    };
    Levels {
        practices: rows.len() as u64,
        closed: rows.iter().filter(|r| !r["CLOSE_DATE"].is_empty()).count() as u64,
        pcns: distinct("PCN_CODE"),
        sub_icbs: distinct("SUB_ICB_LOCATION_CODE"),
        icbs: distinct("ICB_CODE"),
        regions: distinct("COMM_REGION_CODE"),
    }
}

fn expected_groups(rows: &[HashMap<&str, &str>], code: &str, name: &str) -> Vec<Group> {
    let mut groups: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for row in rows {
        groups.entry(row[code]).or_insert((row[name], 0)).1 += 1;
    }
    groups
        .into_iter()
        .map(|(code, (name, practices))| Group {
            code: code.to_string(),
            name: name.to_string(),
            practices,
        })
        .collect()
}

async fn levels(client: &clickhouse::Client) -> Levels {
    client
        .query(
            "SELECT count() AS practices, countIf(close_date IS NOT NULL) AS closed, \
             uniqExact(pcn_code) AS pcns, uniqExact(sub_icb_code) AS sub_icbs, \
             uniqExact(icb_code) AS icbs, uniqExact(region_code) AS regions \
             FROM organisations FINAL",
        )
        .fetch_one::<Levels>()
        .await
        .unwrap()
}

async fn groups(client: &clickhouse::Client, code: &str, name: &str) -> Vec<Group> {
    client
        .query(&format!(
            "SELECT {code} AS code, any({name}) AS name, count() AS practices \
             FROM organisations FINAL GROUP BY {code} ORDER BY {code}"
        ))
        .fetch_all::<Group>()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_organisations_load_with_exact_counts_and_reload_replaces() {
    let config = test_config("organisations");
    let rows = shipped_rows();
    let expected = expected_levels(&rows);
    assert_eq!(
        (expected.regions, expected.icbs, expected.sub_icbs),
        (7, 42, 106)
    );
    assert!((6_000..=6_600).contains(&expected.practices));
    assert!(expected.closed > 0);

    let parsed = parse(SHIPPED.as_bytes()).unwrap();
    assert_eq!(parsed.errors, vec![]);
    let first_version = load(&config, &parsed.practices).await.unwrap();

    let client = callpulse_sink::clickhouse_client(&config);
    assert_eq!(levels(&client).await, expected);
    assert_eq!(
        groups(&client, "icb_code", "icb_name").await,
        expected_groups(&rows, "ICB_CODE", "ICB_NAME")
    );
    assert_eq!(
        groups(&client, "region_code", "region_name").await,
        expected_groups(&rows, "COMM_REGION_CODE", "COMM_REGION_NAME")
    );
    assert_eq!(
        groups(&client, "pcn_code", "pcn_name").await,
        expected_groups(&rows, "PCN_CODE", "PCN_NAME")
    );

    // Dates arrive as written, and an open practice has no close date.
    let dates = client
        .query(
            "SELECT practice_code, ifNull(toString(open_date), '') AS open_date, \
             ifNull(toString(close_date), '') AS close_date \
             FROM organisations FINAL ORDER BY practice_code",
        )
        .fetch_all::<Dates>()
        .await
        .unwrap();
    let mut expected_dates: Vec<Dates> = rows
        .iter()
        .map(|r| Dates {
            practice_code: r["PRACTICE_CODE"].to_string(),
            open_date: r["OPEN_DATE"].to_string(),
            close_date: r["CLOSE_DATE"].to_string(),
        })
        .collect();
    expected_dates.sort_by(|a, b| a.practice_code.cmp(&b.practice_code));
    assert_eq!(dates, expected_dates);

    // The simulator's practices join: A81001 ... are there and open.
    let simulated: u64 = client
        .query(
            "SELECT count() FROM organisations FINAL \
             WHERE practice_code IN ('A81001', 'A81002', 'A81003', 'A81004', 'A81005') \
             AND close_date IS NULL",
        )
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(simulated, 5);

    // Loading again replaces: one row per practice, all from the second load.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second_version = load(&config, &parsed.practices).await.unwrap();
    assert!(second_version > first_version);
    assert_eq!(levels(&client).await, expected);
    let (rows_final, practices_final, from_second): (u64, u64, u64) = client
        .query(
            "SELECT count(), uniqExact(practice_code), countIf(version = ?) \
             FROM organisations FINAL",
        )
        .bind(second_version)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(rows_final, expected.practices);
    assert_eq!(practices_final, expected.practices);
    assert_eq!(from_second, expected.practices);
    let stored: u64 = client
        .query("SELECT count() FROM organisations")
        .fetch_one()
        .await
        .unwrap();
    assert!(
        stored == 2 * expected.practices || stored == expected.practices,
        "{stored} rows stored"
    );

    callpulse_sink::clickhouse_server(&config)
        .query(&format!(
            "DROP DATABASE IF EXISTS {}",
            config.clickhouse.database
        ))
        .execute()
        .await
        .unwrap();
}
