//! The analysts' queries (docs/queries.md, whose SQL lives in
//! schemas/queries/*.sql) against the real ClickHouse, in a fresh database
//! per run: the shipped organisations file, window metrics computed by the
//! core engine from simulated calls at 16 practices in three ICBs and two
//! regions over five days in two months, inserted with the sink's row type.
//! Every query's answer is compared with values computed here, in Rust, from
//! the same windows (and, where possible, from the raw events). Also: a
//! second insert of the same metrics leaves `FINAL` unchanged; per-ICB
//! databases hold exactly their ICB; the analyst user cannot write, and an
//! ICB's user cannot read another ICB. Run by `deploy/local/test.sh`
//! (CALLPULSE_TEST_CLICKHOUSE).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use callpulse_core::{
    CallEvent, CoreHours, Engine, EngineConfig, EventKind, Timestamp, WindowMetrics, WindowSize,
};
use callpulse_e2e::test_config;
use callpulse_runtime::Config;
use callpulse_simulator::{generate, SimulationPlan};
use callpulse_sink::{access, organisations, WindowMetricsRow};
use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Europe::London;
use serde::Deserialize;

const SHIPPED: &str = include_str!("../../data/organisations.csv");
const DOC: &str = include_str!("../../docs/queries.md");
const PCN_DAY: &str = include_str!("../../schemas/queries/pcn_day.sql");
const LONGEST_WAITS: &str = include_str!("../../schemas/queries/longest_waits_week.sql");
const DIVERSIONS: &str = include_str!("../../schemas/queries/diversions_111_month.sql");
const BY_HOUR: &str = include_str!("../../schemas/queries/pcn_answered_by_hour.sql");
const CBT_EXTRACT: &str = include_str!("../../schemas/queries/cbt_extract_month.sql");
const CBT_DURATIONS: &str = include_str!("../../schemas/queries/cbt_durations_month.sql");

/// Histogram upper bounds in seconds, the open bucket last (metrics.md).
const BOUNDS: [f64; 10] = [
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    f64::INFINITY,
];

/// A query file as sent: without its `--` comment lines (which may hold
/// apostrophes the client's `?` binding would take for quotes).
fn sql(file: &str) -> String {
    file.lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone)]
struct Org {
    name: String,
    pcn: String,
    pcn_name: String,
    sub_icb: String,
    icb: String,
    icb_name: String,
    region: String,
}

fn shipped_orgs() -> BTreeMap<String, Org> {
    let mut lines = SHIPPED.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (code, name, pcn, pcn_name, sub_icb, icb, icb_name, region, close) = (
        column("PRACTICE_CODE"),
        column("PRACTICE_NAME"),
        column("PCN_CODE"),
        column("PCN_NAME"),
        column("SUB_ICB_LOCATION_CODE"),
        column("ICB_CODE"),
        column("ICB_NAME"),
        column("COMM_REGION_CODE"),
        column("CLOSE_DATE"),
    );
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|f| f[close].is_empty())
        .map(|f| {
            (
                f[code].to_string(),
                Org {
                    name: f[name].to_string(),
                    pcn: f[pcn].to_string(),
                    pcn_name: f[pcn_name].to_string(),
                    sub_icb: f[sub_icb].to_string(),
                    icb: f[icb].to_string(),
                    icb_name: f[icb_name].to_string(),
                    region: f[region].to_string(),
                },
            )
        })
        .collect()
}

/// 12 practices of ICB QHM in three PCNs (4 each), 2 of another ICB of the
/// same region, 2 of an ICB in another region.
fn chosen_practices(orgs: &BTreeMap<String, Org>) -> (Vec<String>, [String; 3]) {
    let home = "QHM";
    let mut by_pcn: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (code, org) in orgs
        .iter()
        .filter(|(_, o)| o.icb == home && !o.pcn.is_empty())
    {
        by_pcn.entry(&org.pcn).or_default().push(code);
    }
    let mut chosen: Vec<String> = by_pcn
        .values()
        .filter(|codes| codes.len() >= 4)
        .take(3)
        .flat_map(|codes| codes[..4].iter().map(|c| c.to_string()))
        .collect();
    assert_eq!(chosen.len(), 12);
    let region = &orgs[&chosen[0]].region;
    let neighbour = orgs
        .values()
        .find(|o| o.region == *region && o.icb != home)
        .unwrap()
        .icb
        .clone();
    let far = orgs
        .values()
        .find(|o| o.region != *region)
        .unwrap()
        .icb
        .clone();
    for icb in [&neighbour, &far] {
        chosen.extend(
            orgs.iter()
                .filter(|(_, o)| o.icb == *icb)
                .take(2)
                .map(|(c, _)| c.clone()),
        );
    }
    (chosen, [home.to_string(), neighbour, far])
}

/// Simulated calls on five days (05:00-20:00 UTC = London in November and
/// late October): Friday 30 October, Monday 2, Tuesday 3, Saturday 7 and
/// Monday 9 November 2026, at the chosen practices.
fn simulated_events(practices: &[String]) -> Vec<CallEvent> {
    let days = [
        "2026-10-30",
        "2026-11-02",
        "2026-11-03",
        "2026-11-07",
        "2026-11-09",
    ];
    let mut events = Vec::new();
    for (d, day) in days.iter().enumerate() {
        let plan = SimulationPlan {
            practices: practices.len(),
            seed: 600 + d as u64,
            start: Timestamp::parse_rfc3339(&format!("{day}T05:00:00Z")).unwrap(),
            duration_ms: 15 * 3_600_000,
            calls_per_practice_minute: 0.3,
            speed: None,
        };
        for mut event in generate(&plan) {
            let index = (event.practice[1..].parse::<usize>().unwrap()) - 81_001;
            event.practice = practices[index].clone();
            event.call_id = event.call_id.map(|id| format!("d{d}-{id}"));
            event.event_id = format!("d{d}-{}", event.event_id);
            events.push(event);
        }
    }
    events
}

fn engine_windows(events: &[CallEvent]) -> Vec<WindowMetrics> {
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    for event in events {
        engine.ingest(event);
    }
    engine.finish().windows
}

fn london(ts: Timestamp) -> chrono::DateTime<chrono_tz::Tz> {
    London.timestamp_millis_opt(ts.millis()).unwrap()
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn days_since_epoch(d: NaiveDate) -> u16 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as u16
}

/// Nearest rank: the first bucket whose cumulative count reaches
/// ceil(numerator / denominator * n), as its upper bound; None when empty.
fn percentile(hist: &[u64; 10], numerator: u64, denominator: u64) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = (numerator * n).div_ceil(denominator);
    let mut cumulative = 0;
    for (i, count) in hist.iter().enumerate() {
        cumulative += count;
        if cumulative >= rank {
            return Some(BOUNDS[i]);
        }
    }
    unreachable!()
}

fn add(into: &mut [u64; 10], hist: &[u64; 10]) {
    for (a, b) in into.iter_mut().zip(hist) {
        *a += b;
    }
}

fn close(actual: f64, exact: f64, tolerance: f64) -> bool {
    (actual - exact).abs() <= tolerance
}

async fn drop_database(config: &Config, database: &str) {
    callpulse_sink::clickhouse_server(config)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .unwrap();
}

// ---------------------------------------------------------------- rows

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
struct PcnDay {
    pcn_code: String,
    pcn_name: String,
    practices: u64,
    offered: u64,
    abandoned: u64,
    abandoned_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
struct LongestWait {
    practice_code: String,
    practice_name: String,
    answered_with_wait: u64,
    p90_wait_s: Option<f64>,
    p50_wait_s: Option<f64>,
    mean_wait_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct Diversions {
    icb_code: String,
    icb_name: String,
    region_code: String,
    diverted_111_core: u64,
    diverted_111: u64,
    offered: u64,
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
struct ByHour {
    hour_of_day: u8,
    calls_offered: u64,
    calls_answered: u64,
    answered_pct: f64,
    handled_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, clickhouse::Row, Deserialize)]
struct CbtRow {
    #[serde(rename = "Date")]
    date: u16,
    #[serde(rename = "REGION_CODE")]
    region_code: String,
    #[serde(rename = "ICB_CODE")]
    icb_code: String,
    #[serde(rename = "SUB_ICB_LOCATION_CODE")]
    sub_icb_code: String,
    #[serde(rename = "PCN_CODE")]
    pcn_code: String,
    #[serde(rename = "PRACTICE_CODE")]
    practice_code: String,
    #[serde(rename = "Indicator")]
    indicator: String,
    #[serde(rename = "Time_Category")]
    time_category: String,
    #[serde(rename = "Value")]
    value: u64,
}

// ---------------------------------------------------------------- expected

struct Data<'a> {
    windows: &'a [WindowMetrics],
    orgs: &'a BTreeMap<String, Org>,
}

impl Data<'_> {
    fn of(&self, size: WindowSize) -> impl Iterator<Item = (&WindowMetrics, &Org)> {
        self.windows
            .iter()
            .filter(move |w| w.window == size)
            .map(|w| (w, &self.orgs[&w.practice]))
    }

    fn pcn_day(&self, icb: &str, day: NaiveDate) -> Vec<PcnDay> {
        let mut by_pcn: BTreeMap<String, (String, BTreeSet<String>, u64, u64)> = BTreeMap::new();
        for (w, org) in self.of(WindowSize::Day) {
            if org.icb == icb && london(w.start).date_naive() == day {
                let entry = by_pcn
                    .entry(org.pcn.clone())
                    .or_insert_with(|| (org.pcn_name.clone(), BTreeSet::new(), 0, 0));
                entry.1.insert(w.practice.clone());
                entry.2 += w.offered;
                entry.3 += w.abandoned;
            }
        }
        by_pcn
            .into_iter()
            .map(
                |(pcn_code, (pcn_name, practices, offered, abandoned))| PcnDay {
                    pcn_code,
                    pcn_name,
                    practices: practices.len() as u64,
                    offered,
                    abandoned,
                    abandoned_pct: (offered > 0).then(|| 100.0 * abandoned as f64 / offered as f64),
                },
            )
            .collect()
    }

    fn longest_waits(&self, icb: &str, monday: NaiveDate) -> Vec<LongestWait> {
        let mut by_practice: BTreeMap<String, ([u64; 10], u64, u64)> = BTreeMap::new();
        for (w, org) in self.of(WindowSize::Day) {
            let d = london(w.start).date_naive();
            if org.icb == icb && d >= monday && d < monday + chrono::Days::new(7) {
                let entry = by_practice.entry(w.practice.clone()).or_default();
                add(&mut entry.0, &w.wait_hist);
                entry.1 += w.wait_count;
                entry.2 += w.wait_ms_sum;
            }
        }
        let mut rows: Vec<LongestWait> = by_practice
            .into_iter()
            .filter(|(_, (_, count, _))| *count > 0)
            .map(|(code, (hist, count, sum))| LongestWait {
                practice_name: self.orgs[&code].name.clone(),
                practice_code: code,
                answered_with_wait: count,
                p90_wait_s: percentile(&hist, 9, 10),
                p50_wait_s: percentile(&hist, 1, 2),
                mean_wait_s: Some(sum as f64 / count as f64 / 1000.0),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.p90_wait_s
                .partial_cmp(&a.p90_wait_s)
                .unwrap()
                .then(b.mean_wait_s.partial_cmp(&a.mean_wait_s).unwrap())
                .then(a.practice_code.cmp(&b.practice_code))
        });
        rows.truncate(10);
        rows
    }

    fn diversions(&self, month: (i32, u32)) -> Vec<Diversions> {
        let mut by_icb: BTreeMap<String, Diversions> = BTreeMap::new();
        for (w, org) in self.of(WindowSize::Day) {
            let d = london(w.start).date_naive();
            if (d.year(), d.month()) == month {
                let entry = by_icb.entry(org.icb.clone()).or_insert_with(|| Diversions {
                    icb_code: org.icb.clone(),
                    icb_name: org.icb_name.clone(),
                    region_code: org.region.clone(),
                    diverted_111_core: 0,
                    diverted_111: 0,
                    offered: 0,
                });
                entry.diverted_111_core += w.diverted_111_core;
                entry.diverted_111 += w.diverted_111;
                entry.offered += w.offered;
            }
        }
        let mut rows: Vec<Diversions> = by_icb.into_values().collect();
        rows.sort_by(|a, b| {
            b.diverted_111_core
                .cmp(&a.diverted_111_core)
                .then(a.icb_code.cmp(&b.icb_code))
        });
        rows
    }

    fn by_hour(&self, pcn: &str, first: NaiveDate, last: NaiveDate) -> Vec<(u8, u64, u64, u64)> {
        let mut by_hour: BTreeMap<u8, (u64, u64, u64)> = BTreeMap::new();
        for (w, org) in self.of(WindowSize::Hour) {
            let local = london(w.start);
            if org.pcn == pcn && local.date_naive() >= first && local.date_naive() <= last {
                let entry = by_hour.entry(local.hour() as u8).or_default();
                entry.0 += w.offered;
                entry.1 += w.answered;
                entry.2 += w.callback_requested;
            }
        }
        by_hour
            .into_iter()
            .filter(|(_, (offered, _, _))| *offered > 0)
            .map(|(hour, (o, a, c))| (hour, o, a, c))
            .collect()
    }

    fn cbt_extract(&self, month: (i32, u32), icb: &str) -> Vec<CbtRow> {
        let band = |local: chrono::DateTime<chrono_tz::Tz>| match (local.hour(), local.minute()) {
            (0..=5, _) => "00-06",
            (6..=7, _) => "06-08",
            (8..=9, _) => "08-10",
            (10..=11, _) => "10-12",
            (12..=13, _) => "12-14",
            (14..=15, _) => "14-16",
            (16..=17, _) => "16-18",
            (18, 0..=29) => "18:00-18:29",
            _ => "18:30-24",
        };
        let mut sums: BTreeMap<(NaiveDate, String, &str), [u64; 7]> = BTreeMap::new();
        for (w, org) in self.of(WindowSize::FifteenMinutes) {
            let local = london(w.start);
            let d = local.date_naive();
            if (d.year(), d.month()) != month || !(icb.is_empty() || org.icb == icb) {
                continue;
            }
            let values = sums
                .entry((d, w.practice.clone(), band(local)))
                .or_default();
            let add = [
                w.offered,
                w.ivr_ended + w.diverted_111,
                w.answered,
                w.abandoned + w.missed,
                w.callback_requested,
                w.callbacks_made,
                w.talk_count,
            ];
            for (v, a) in values.iter_mut().zip(add) {
                *v += a;
            }
        }
        let mut rows = Vec::new();
        for ((d, practice, band), values) in sums {
            let org = &self.orgs[&practice];
            for (i, value) in values.into_iter().enumerate() {
                rows.push(CbtRow {
                    date: days_since_epoch(d),
                    region_code: org.region.clone(),
                    icb_code: org.icb.clone(),
                    sub_icb_code: org.sub_icb.clone(),
                    pcn_code: org.pcn.clone(),
                    practice_code: practice.clone(),
                    indicator: format!("CBT00{}", i + 1),
                    time_category: band.to_string(),
                    value,
                });
            }
        }
        rows.sort_by(|a, b| {
            (a.date, &a.practice_code, &a.time_category, &a.indicator).cmp(&(
                b.date,
                &b.practice_code,
                &b.time_category,
                &b.indicator,
            ))
        });
        rows
    }

    fn cbt_durations(&self, month: (i32, u32), icb: &str) -> Vec<CbtRow> {
        let bands = [
            "Up to 1 minute",
            "1-2 minutes",
            "2-5 minutes",
            "Over 5 minutes",
        ];
        let banded = |h: &[u64; 10]| [h[0] + h[1] + h[2], h[3], h[4], h[5..].iter().sum()];
        let mut rows = Vec::new();
        for (w, org) in self.of(WindowSize::Day) {
            let d = london(w.start).date_naive();
            if (d.year(), d.month()) != month || !(icb.is_empty() || org.icb == icb) {
                continue;
            }
            for (indicator, hist) in [("CBT003", &w.wait_hist), ("CBT007", &w.talk_hist)] {
                for (band, value) in bands.iter().zip(banded(hist)) {
                    rows.push(CbtRow {
                        date: days_since_epoch(d),
                        region_code: org.region.clone(),
                        icb_code: org.icb.clone(),
                        sub_icb_code: org.sub_icb.clone(),
                        pcn_code: org.pcn.clone(),
                        practice_code: w.practice.clone(),
                        indicator: indicator.to_string(),
                        time_category: band.to_string(),
                        value,
                    });
                }
            }
        }
        let position = |band: &str| bands.iter().position(|b| *b == band).unwrap();
        rows.sort_by(|a, b| {
            (
                a.date,
                &a.practice_code,
                &a.indicator,
                position(&a.time_category),
            )
                .cmp(&(
                    b.date,
                    &b.practice_code,
                    &b.indicator,
                    position(&b.time_category),
                ))
        });
        rows
    }
}

// ---------------------------------------------------------------- running the queries

/// Runs every query of docs/queries.md against `client`'s database for ICB
/// `icb` (and `other_icbs` that must not appear when the database is one
/// ICB's) and checks each answer against `data`.
async fn check_every_query(
    client: &clickhouse::Client,
    data: &Data<'_>,
    icb: &str,
    pcn: &str,
    whole: bool,
) {
    let day = date("2026-11-02");
    let actual: Vec<PcnDay> = client
        .query(&sql(PCN_DAY))
        .bind(icb)
        .bind("2026-11-02")
        .fetch_all()
        .await
        .unwrap();
    let expected = data.pcn_day(icb, day);
    assert!(!expected.is_empty());
    assert_eq!(actual.len(), expected.len(), "{actual:#?}\n{expected:#?}");
    for (a, e) in actual.iter().zip(&expected) {
        assert_eq!(
            (
                &a.pcn_code,
                &a.pcn_name,
                a.practices,
                a.offered,
                a.abandoned
            ),
            (
                &e.pcn_code,
                &e.pcn_name,
                e.practices,
                e.offered,
                e.abandoned
            )
        );
        assert!(close(
            a.abandoned_pct.unwrap(),
            e.abandoned_pct.unwrap(),
            0.05 + 1e-9
        ));
    }

    let actual: Vec<LongestWait> = client
        .query(&sql(LONGEST_WAITS))
        .bind(icb)
        .bind("2026-11-05")
        .fetch_all()
        .await
        .unwrap();
    let expected = data.longest_waits(icb, date("2026-11-02"));
    assert_eq!(expected.len(), 10);
    assert_eq!(actual, expected);

    let actual: Vec<Diversions> = client
        .query(&sql(DIVERSIONS))
        .bind("2026-11-20")
        .fetch_all()
        .await
        .unwrap();
    let mut expected = data.diversions((2026, 11));
    if !whole {
        expected.retain(|r| r.icb_code == icb);
    }
    assert_eq!(actual, expected);

    let actual: Vec<ByHour> = client
        .query(&sql(BY_HOUR))
        .bind(pcn)
        .bind("2026-11-02")
        .bind("2026-11-09")
        .fetch_all()
        .await
        .unwrap();
    let expected = data.by_hour(pcn, day, date("2026-11-09"));
    assert!(expected.len() >= 14, "{expected:?}");
    assert_eq!(actual.len(), expected.len());
    for (a, (hour, offered, answered, callbacks)) in actual.iter().zip(&expected) {
        assert_eq!(
            (a.hour_of_day, a.calls_offered, a.calls_answered),
            (*hour, *offered, *answered)
        );
        let answered_pct = 100.0 * *answered as f64 / *offered as f64;
        let handled_pct = 100.0 * (answered + callbacks) as f64 / *offered as f64;
        assert!(close(a.answered_pct, answered_pct, 0.05 + 1e-9), "{a:?}");
        assert!(close(a.handled_pct, handled_pct, 0.05 + 1e-9), "{a:?}");
    }

    for wanted in [icb, ""] {
        let actual: Vec<CbtRow> = client
            .query(&sql(CBT_EXTRACT))
            .bind("2026-11-15")
            .bind(wanted)
            .fetch_all()
            .await
            .unwrap();
        let expected = data.cbt_extract((2026, 11), if whole { wanted } else { icb });
        assert!(!expected.is_empty());
        assert_eq!(actual.len(), expected.len(), "extract for ICB `{wanted}`");
        assert!(actual == expected, "the extract for ICB `{wanted}` differs");

        let actual: Vec<CbtRow> = client
            .query(&sql(CBT_DURATIONS))
            .bind("2026-11-15")
            .bind(wanted)
            .fetch_all()
            .await
            .unwrap();
        let expected = data.cbt_durations((2026, 11), if whole { wanted } else { icb });
        assert!(
            actual == expected,
            "the duration bands for ICB `{wanted}` differ"
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct StoredWindow {
    practice: String,
    window: String,
    start: u32,
    version: u64,
    offered: u64,
    answered: u64,
    diverted_111_core: u64,
    wait_hist: Vec<u64>,
    talk_hist: Vec<u64>,
}

async fn stored_windows(client: &clickhouse::Client) -> Vec<StoredWindow> {
    client
        .query(
            "SELECT practice, `window`, toUInt32(`start`) AS start, version, offered, answered, \
             diverted_111_core, wait_hist, talk_hist FROM window_metrics FINAL \
             ORDER BY `window`, practice, `start`",
        )
        .fetch_all()
        .await
        .unwrap()
}

async fn insert_rows(client: &clickhouse::Client, rows: &[WindowMetricsRow]) {
    for batch in rows.chunks(50_000) {
        callpulse_sink::insert(client, batch).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_queries_give_the_answers_computed_from_the_windows() {
    // The doc shows every query file as it is: they cannot drift apart.
    for (name, file) in [
        ("pcn_day.sql", PCN_DAY),
        ("longest_waits_week.sql", LONGEST_WAITS),
        ("diversions_111_month.sql", DIVERSIONS),
        ("pcn_answered_by_hour.sql", BY_HOUR),
        ("cbt_extract_month.sql", CBT_EXTRACT),
        ("cbt_durations_month.sql", CBT_DURATIONS),
    ] {
        assert!(
            DOC.contains(file.trim_end()),
            "docs/queries.md lacks schemas/queries/{name} as it is"
        );
        assert!(!sql(file).contains(';'));
    }

    let config = test_config("queries");
    let orgs = shipped_orgs();
    let (practices, [home, neighbour, far]) = chosen_practices(&orgs);
    let events = simulated_events(&practices);
    let windows = engine_windows(&events);
    assert!(windows.iter().all(|w| w.is_final));
    let data = Data {
        windows: &windows,
        orgs: &orgs,
    };

    let parsed = organisations::parse(SHIPPED.as_bytes()).unwrap();
    organisations::load(&config, &parsed.practices)
        .await
        .unwrap();
    let client = callpulse_sink::clickhouse_client(&config);
    let rows: Vec<WindowMetricsRow> = windows.iter().map(WindowMetricsRow::from).collect();
    insert_rows(&client, &rows).await;

    // Independently of the engine: diversions and calls offered in November
    // counted from the raw events add up in the views.
    let in_november = |e: &&CallEvent| {
        let d = london(e.at).date_naive();
        (d.year(), d.month()) == (2026, 11)
    };
    let diverted = events
        .iter()
        .filter(in_november)
        .filter(|e| e.kind == EventKind::Diverted111)
        .count() as u64;
    let offered = events
        .iter()
        .filter(in_november)
        .filter(|e| e.kind == EventKind::Offered)
        .count() as u64;
    let england: (u64, u64, u64) = client
        .query(
            "SELECT diverted_111, offered, practices FROM rollup_england \
             WHERE `window` = '1mo' AND `start` = toDateTime('2026-11-01 00:00:00', 'Europe/London')",
        )
        .fetch_one()
        .await
        .unwrap();
    assert!(diverted > 0);
    assert_eq!(england, (diverted, offered, practices.len() as u64));

    // The rollups at each level agree with each other.
    let totals: Vec<(String, u64, u64)> = client
        .query(
            "SELECT level, sum(offered), sum(wait_count) FROM rollups \
             WHERE `window` = '15m' GROUP BY level ORDER BY level",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(totals.len(), 6);
    assert!(
        totals
            .iter()
            .all(|t| (t.1, t.2) == (totals[0].1, totals[0].2)),
        "{totals:?}"
    );

    let pcn = orgs[&practices[0]].pcn.clone();
    check_every_query(&client, &data, &home, &pcn, true).await;

    // Per-ICB databases: backfilled at creation, then fed by their views.
    let created = {
        let mut created = Vec::new();
        for icb in [&home, &neighbour, &far] {
            created.push(access::create_icb_database(&config, icb).await.unwrap());
        }
        created
    };
    let home_client = callpulse_sink::clickhouse_server(&config).with_database(&created[0]);
    check_every_query(&home_client, &data, &home, &pcn, false).await;

    // Inserting the same metrics again (a replay), and an older revision of
    // some, changes nothing under FINAL, here and in the ICB databases.
    let before = stored_windows(&client).await;
    let home_before = stored_windows(&home_client).await;
    assert_eq!(before.len(), windows.len());
    assert!(!home_before.is_empty());
    assert!(home_before.iter().all(|w| orgs[&w.practice].icb == home));
    insert_rows(&client, &rows).await;
    let older: Vec<WindowMetricsRow> = rows
        .iter()
        .take(500)
        .map(|r| WindowMetricsRow {
            revision: 0,
            is_final: 0,
            version: 0,
            offered: r.offered + 1000,
            ..r.clone()
        })
        .collect();
    insert_rows(&client, &older).await;
    let stored: u64 = client
        .query("SELECT count() FROM window_metrics")
        .fetch_one()
        .await
        .unwrap();
    assert!(stored > windows.len() as u64 || stored == windows.len() as u64);
    assert_eq!(stored_windows(&client).await, before);
    assert_eq!(stored_windows(&home_client).await, home_before);
    check_every_query(&client, &data, &home, &pcn, true).await;
    // Creating an ICB database again is harmless too.
    access::create_icb_database(&config, &home).await.unwrap();
    assert_eq!(stored_windows(&home_client).await, home_before);

    // Users: an ICB's user sees its ICB's database only; the analyst reads
    // everything and writes nothing.
    check_users(&config, &created, [&home, &neighbour], &before).await;

    for icb in [&home, &neighbour, &far] {
        access::drop_icb_database(&config, icb).await.unwrap();
    }
    drop_database(&config, &config.clickhouse.database).await;
}

/// The local stack's state directory (deploy/local/stack.sh): generated
/// passwords and the server's users.d.
fn state_dir() -> PathBuf {
    std::env::var_os("CALLPULSE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.local")))
}

fn analyst_password() -> String {
    if let Ok(password) = std::env::var("CALLPULSE_TEST_ANALYST_PASSWORD") {
        return password;
    }
    let file = state_dir().join("passwords/analyst");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|err| panic!("reading {} ({err}): start the stack with deploy/local/stack.sh, or set CALLPULSE_TEST_ANALYST_PASSWORD", file.display()))
        .trim()
        .to_string()
}

/// Removes a users.d file when dropped, so a failing test leaves no user behind.
struct UsersFile(PathBuf);
impl Drop for UsersFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn error_of<T>(result: Result<T, clickhouse::error::Error>) -> String {
    match result {
        Ok(_) => panic!("expected ClickHouse to refuse"),
        Err(err) => err.to_string(),
    }
}

async fn check_users(
    config: &Config,
    icb_databases: &[String],
    icbs: [&String; 2],
    all: &[StoredWindow],
) {
    let server = callpulse_sink::clickhouse_server(config);
    let as_user = |user: &str, password: &str, database: &str| {
        server
            .clone()
            .with_user(user)
            .with_password(password)
            .with_database(database)
    };
    let main = &config.clickhouse.database;

    // The analyst: reads the main database and any ICB's; cannot write.
    let analyst = as_user("analyst", &analyst_password(), main);
    let count: u64 = analyst
        .query("SELECT count() FROM window_metrics FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(count, all.len() as u64);
    let refused = error_of(
        analyst
            .query("INSERT INTO organisations (practice_code) VALUES ('A00001')")
            .execute()
            .await,
    );
    assert!(refused.contains("readonly"), "{refused}");
    let refused = error_of(
        analyst
            .query("CREATE TABLE analyst_scratch (a UInt8) ENGINE = Memory")
            .execute()
            .await,
    );
    assert!(refused.contains("readonly"), "{refused}");
    let refused = error_of(analyst.query("DROP TABLE window_metrics").execute().await);
    assert!(refused.contains("readonly"), "{refused}");

    // ICB users, declared in a users.d file that ClickHouse picks up live.
    let users: Vec<access::DatabaseUser> = icbs
        .iter()
        .zip(icb_databases)
        .map(|(icb, database)| access::DatabaseUser {
            name: format!("{main}_{}", icb.to_ascii_lowercase()),
            password: format!("pw-{}-{}", std::process::id(), icb),
            database: database.clone(),
        })
        .collect();
    let users_d = state_dir().join("clickhouse/users.d");
    assert!(
        users_d.is_dir(),
        "{} is missing: start the stack with deploy/local/stack.sh",
        users_d.display()
    );
    let file = UsersFile(users_d.join(format!("{main}.xml")));
    std::fs::write(&file.0, access::users_xml(&users).unwrap()).unwrap();

    let home = as_user(&users[0].name, &users[0].password, &users[0].database);
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen: Vec<(String, u64)> = loop {
        match home
            .query("SELECT icb, count() FROM rollup_practice GROUP BY icb ORDER BY icb")
            .fetch_all()
            .await
        {
            Ok(rows) => break rows,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => panic!("the ICB user never got in: {err}"),
        }
    };
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(&seen[0].0, icbs[0]);
    let own: u64 = home
        .query("SELECT count() FROM window_metrics FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert!(own > 0 && own < all.len() as u64);

    // Another ICB's database, the main database, and writing: refused.
    let other = as_user(&users[0].name, &users[0].password, &users[1].database);
    let refused = error_of(
        other
            .query("SELECT count() FROM window_metrics")
            .fetch_one::<u64>()
            .await,
    );
    assert!(
        refused.contains("Access denied") || refused.contains("ACCESS_DENIED"),
        "{refused}"
    );
    let refused = error_of(
        home.query(&format!("SELECT count() FROM {main}.window_metrics"))
            .fetch_one::<u64>()
            .await,
    );
    assert!(
        refused.contains("Access denied") || refused.contains("ACCESS_DENIED"),
        "{refused}"
    );
    let refused = error_of(
        home.query("INSERT INTO organisations (practice_code) VALUES ('A00001')")
            .execute()
            .await,
    );
    assert!(refused.contains("readonly"), "{refused}");

    // The other ICB's user sees only its own.
    let neighbour = as_user(&users[1].name, &users[1].password, &users[1].database);
    let icbs_seen: Vec<String> = neighbour
        .query("SELECT DISTINCT icb_code FROM window_metrics_org")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(icbs_seen, vec![icbs[1].clone()]);
    drop(file);
}

/// Insert throughput into `window_metrics` through the sink's insert, in
/// batches of 50,000 rows, with and without per-ICB feeds (three ICB
/// databases). Ignored by default; docs/benchmarks.md gives the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly (docs/benchmarks.md)"]
async fn insert_throughput() {
    let config = test_config("insert_bench");
    let orgs = shipped_orgs();
    let (practices, icbs) = chosen_practices(&orgs);
    let parsed = organisations::parse(SHIPPED.as_bytes()).unwrap();
    organisations::load(&config, &parsed.practices)
        .await
        .unwrap();
    let client = callpulse_sink::clickhouse_client(&config);
    // 1-minute windows of realistic content, spread over every shipped practice.
    let template = engine_windows(&simulated_events(&practices[..1]));
    let template: Vec<WindowMetricsRow> = template
        .iter()
        .filter(|w| w.window == WindowSize::Minute)
        .map(WindowMetricsRow::from)
        .collect();
    let codes: Vec<&String> = orgs.keys().collect();
    let total = 1_000_000;
    let rows: Vec<WindowMetricsRow> = (0..total)
        .map(|i| WindowMetricsRow {
            practice: codes[i % codes.len()].clone(),
            ..template[(i / codes.len()) % template.len()].clone()
        })
        .collect();
    let mut report = Vec::new();
    for feeds in [false, true] {
        if feeds {
            for icb in &icbs {
                access::create_icb_database(&config, icb).await.unwrap();
            }
        }
        let started = Instant::now();
        insert_rows(&client, &rows).await;
        let seconds = started.elapsed().as_secs_f64();
        report.push(format!(
            "{total} rows in batches of 50000, {} ICB feeds: {seconds:.2} s, {:.0} rows/s",
            if feeds { icbs.len() } else { 0 },
            total as f64 / seconds
        ));
    }
    for line in &report {
        println!("insert_throughput: {line}");
    }
    for icb in &icbs {
        access::drop_icb_database(&config, icb).await.unwrap();
    }
    drop_database(&config, &config.clickhouse.database).await;
}
