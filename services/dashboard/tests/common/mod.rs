//! The dashboard tests' data: a fresh ClickHouse database per test (named
//! after the test and the run) holding the shipped organisations file and
//! known window metrics for ten practices (two PCNs of ICB QHM, another ICB
//! of the same region, an ICB of another region) on Monday 23 November
//! 2026, the Monday before and two more days, plus a few alerts. The
//! expected figures are computed here from the same rows, in Rust.
//! ClickHouse: CALLPULSE_TEST_CLICKHOUSE (default http://127.0.0.1:8123).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use callpulse_dashboard::{AppState, Tokens};
use callpulse_runtime::Config;
use callpulse_sink::organisations::{self, Practice};
use callpulse_sink::{AlertRow, WindowMetricsRow};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Europe::London;

pub const SHIPPED: &str = include_str!("../../../../data/organisations.csv");
pub const DAY: &str = "2026-11-23";
pub const LAST_WEEK: &str = "2026-11-16";
/// The other days, for the heat map (a Tuesday and a Wednesday).
pub const OTHER_DAYS: [&str; 2] = ["2026-11-17", "2026-11-18"];
pub const ENGLAND_TOKEN: &str = "england-token-0123456789";
pub const QHM_TOKEN: &str = "qhm-token-0123456789abcdef";
pub const HOME_ICB: &str = "QHM";
/// Histogram upper bounds in seconds, the open bucket last (metrics.md).
pub const BOUNDS: [f64; 10] = [
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

pub struct Fixture {
    pub config: Config,
    pub practices: Vec<Practice>,
    /// Every inserted window.
    pub windows: Vec<WindowMetricsRow>,
    /// The ICB of another region, none of whose data a QHM user may see.
    pub far_icb: String,
    pub neighbour_icb: String,
}

pub fn clickhouse_url() -> String {
    std::env::var("CALLPULSE_TEST_CLICKHOUSE").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A configuration with its own database; no answers shared between requests.
pub fn test_config(name: &str) -> Config {
    let run = format!(
        "{name}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let env = [
        ("CALLPULSE__CLICKHOUSE__URL", clickhouse_url()),
        (
            "CALLPULSE__CLICKHOUSE__DATABASE",
            format!("test_dashboard_{run}"),
        ),
        ("CALLPULSE__DASHBOARD__CACHE_MS", "0".to_string()),
        ("CALLPULSE__DASHBOARD__REFRESH_SECONDS", "2".to_string()),
    ];
    Config::load_from(None, env.map(|(k, v)| (k.to_string(), v))).unwrap()
}

pub fn tokens() -> Tokens {
    let mut tokens = Tokens::new();
    tokens
        .add_pairs(&format!("england={ENGLAND_TOKEN},{HOME_ICB}={QHM_TOKEN}"))
        .unwrap();
    tokens
}

/// A small deterministic generator (no dependency, same numbers every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

fn chosen(all: &[Practice]) -> (Vec<Practice>, String, String) {
    let open: Vec<&Practice> = all.iter().filter(|p| p.close_date.is_none()).collect();
    let mut by_pcn: BTreeMap<&str, Vec<&Practice>> = BTreeMap::new();
    for p in open
        .iter()
        .filter(|p| p.icb_code == HOME_ICB && !p.pcn_code.is_empty())
    {
        by_pcn.entry(&p.pcn_code).or_default().push(p);
    }
    let mut practices: Vec<Practice> = by_pcn
        .values()
        .filter(|ps| ps.len() >= 3)
        .take(2)
        .flat_map(|ps| ps[..3].iter().map(|p| (*p).clone()))
        .collect();
    assert_eq!(practices.len(), 6);
    let region = practices[0].region_code.clone();
    let neighbour = open
        .iter()
        .find(|p| p.region_code == region && p.icb_code != HOME_ICB)
        .unwrap()
        .icb_code
        .clone();
    let far = open
        .iter()
        .find(|p| p.region_code != region)
        .unwrap()
        .icb_code
        .clone();
    for icb in [&neighbour, &far] {
        practices.extend(
            open.iter()
                .filter(|p| p.icb_code == *icb)
                .take(2)
                .map(|p| (*p).clone()),
        );
    }
    (practices, neighbour, far)
}

fn london_midnight(day: &str) -> i64 {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    London
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp()
}

fn empty(practice: &str, window: &str, start: i64, seconds: i64) -> WindowMetricsRow {
    WindowMetricsRow {
        practice: practice.to_string(),
        window: window.to_string(),
        start: start as u32,
        end: (start + seconds) as u32,
        revision: 1,
        is_final: 1,
        version: 3,
        offered: 0,
        answered: 0,
        callback_requested: 0,
        abandoned: 0,
        missed: 0,
        ivr_ended: 0,
        diverted_111: 0,
        diverted_111_core: 0,
        callbacks_made: 0,
        unique_callers: 0,
        peak_waiting: 0,
        wait_count: 0,
        wait_ms_sum: 0,
        wait_ms_max: 0,
        wait_hist: vec![0; 10],
        abandon_count: 0,
        abandon_ms_sum: 0,
        abandon_ms_max: 0,
        abandon_hist: vec![0; 10],
        talk_count: 0,
        talk_ms_sum: 0,
        talk_ms_max: 0,
        talk_hist: vec![0; 10],
        callback_delay_count: 0,
        callback_delay_ms_sum: 0,
        dq_duplicates: 0,
        dq_conflicts: 0,
    }
}

fn add_into(total: &mut WindowMetricsRow, w: &WindowMetricsRow) {
    total.offered += w.offered;
    total.answered += w.answered;
    total.callback_requested += w.callback_requested;
    total.abandoned += w.abandoned;
    total.missed += w.missed;
    total.diverted_111 += w.diverted_111;
    total.diverted_111_core += w.diverted_111_core;
    total.wait_count += w.wait_count;
    total.wait_ms_sum += w.wait_ms_sum;
    total.wait_ms_max = total.wait_ms_max.max(w.wait_ms_max);
    for (a, b) in total.wait_hist.iter_mut().zip(&w.wait_hist) {
        *a += b;
    }
}

/// 15-minute windows from 07:00 to 19:00 London (fewer before 08:00 and
/// after 18:30), with their 1-hour and 1-day sums.
fn practice_day(practice: &str, day: &str, rng: &mut Lcg) -> Vec<WindowMetricsRow> {
    let midnight = london_midnight(day);
    let mut out = Vec::new();
    let mut whole = empty(practice, "1d", midnight, 86_400);
    for hour in 7..19 {
        let hour_start = midnight + hour * 3600;
        let mut hourly = empty(practice, "1h", hour_start, 3600);
        for quarter in 0..4 {
            let start = hour_start + quarter * 900;
            let mut w = empty(practice, "15m", start, 900);
            let busy = if hour == 8 {
                14
            } else if (9..18).contains(&hour) {
                7
            } else {
                3
            };
            w.offered = 1 + rng.next(busy);
            w.answered = rng.next(w.offered + 1);
            let rest = w.offered - w.answered;
            w.callback_requested = rng.next(rest + 1);
            w.abandoned = rng.next(rest - w.callback_requested + 1);
            w.missed = rng.next(rest - w.callback_requested - w.abandoned + 1);
            w.diverted_111 = rng.next(2);
            // Core hours: 08:00-18:30 on working days; all four days are.
            let core = (8 * 60..18 * 60 + 30).contains(&(hour * 60 + quarter * 15));
            w.diverted_111_core = if core { w.diverted_111 } else { 0 };
            for _ in 0..w.answered {
                // Mostly short waits, some long: the percentiles differ by practice.
                let bucket = (rng.next(6) + rng.next(5)).min(9) as usize;
                w.wait_hist[bucket] += 1;
                let ms = (BOUNDS[bucket].min(4000.0) * 1000.0) as u64 - rng.next(5000);
                w.wait_ms_sum += ms;
                w.wait_ms_max = w.wait_ms_max.max(ms);
            }
            w.wait_count = w.answered;
            add_into(&mut hourly, &w);
            out.push(w);
        }
        add_into(&mut whole, &hourly);
        out.push(hourly);
    }
    out.push(whole);
    out
}

impl Fixture {
    /// Creates the database and loads the rows.
    pub async fn load(name: &str) -> Fixture {
        let config = test_config(name);
        callpulse_sink::migrate::apply(&config).await.unwrap();
        let parsed = organisations::parse(SHIPPED.as_bytes()).unwrap();
        assert!(parsed.errors.is_empty());
        organisations::load(&config, &parsed.practices)
            .await
            .unwrap();
        let (practices, neighbour_icb, far_icb) = chosen(&parsed.practices);
        let mut rng = Lcg(9);
        let mut windows = Vec::new();
        for day in [DAY, LAST_WEEK, OTHER_DAYS[0], OTHER_DAYS[1]] {
            for p in &practices {
                windows.extend(practice_day(&p.code, day, &mut rng));
            }
        }
        let client = callpulse_sink::clickhouse_client(&config);
        callpulse_sink::insert(&client, &windows).await.unwrap();
        callpulse_sink::insert_rows(&client, "alerts", &alerts(&practices, &far_icb))
            .await
            .unwrap();
        Fixture {
            config,
            practices,
            windows,
            far_icb,
            neighbour_icb,
        }
    }

    pub fn state(&self) -> Arc<AppState> {
        Arc::new(AppState::new(&self.config, tokens()).unwrap())
    }

    /// Serves the dashboard on a free loopback port; returns its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = callpulse_dashboard::router(self.state());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        format!("http://{address}")
    }

    pub async fn drop_database(&self) {
        callpulse_sink::clickhouse_server(&self.config)
            .query(&format!(
                "DROP DATABASE IF EXISTS {}",
                self.config.clickhouse.database
            ))
            .execute()
            .await
            .unwrap();
    }

    pub fn home(&self) -> Vec<&Practice> {
        self.practices
            .iter()
            .filter(|p| p.icb_code == HOME_ICB)
            .collect()
    }

    /// The practices under a node, from the chosen list.
    pub fn under(&self, level: &str, code: &str) -> Vec<&Practice> {
        self.practices
            .iter()
            .filter(|p| match level {
                "england" => true,
                "region" => p.region_code == code,
                "icb" => p.icb_code == code,
                "pcn" => p.pcn_code == code,
                _ => p.code == code,
            })
            .collect()
    }

    /// The summed windows of `size` starting at `start` (seconds) for some practices.
    pub fn total(&self, practices: &[&Practice], size: &str, start: i64) -> WindowMetricsRow {
        let mut total = empty("", size, start, 0);
        for w in self.windows.iter().filter(|w| {
            w.window == size
                && i64::from(w.start) == start
                && practices.iter().any(|p| p.code == w.practice)
        }) {
            add_into(&mut total, w);
        }
        total
    }

    pub fn day_total(&self, practices: &[&Practice], day: &str) -> WindowMetricsRow {
        self.total(practices, "1d", london_midnight(day))
    }
}

pub fn midnight(day: &str) -> i64 {
    london_midnight(day)
}

/// Nearest rank on a histogram: the upper bound of the first bucket whose
/// cumulative count reaches numerator/denominator of the values.
pub fn percentile(hist: &[u64], numerator: u64, denominator: u64) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let mut cumulative = 0;
    for (i, count) in hist.iter().enumerate() {
        cumulative += count;
        if cumulative * denominator >= n * numerator {
            return Some(BOUNDS[i]);
        }
    }
    unreachable!()
}

fn alert(
    id: &str,
    revision: u64,
    state: &str,
    practice: &Practice,
    kind: &str,
    at_ms: i64,
) -> AlertRow {
    AlertRow {
        id: id.to_string(),
        revision,
        kind: kind.to_string(),
        state: state.to_string(),
        practice: practice.code.clone(),
        pcn: practice.pcn_code.clone(),
        icb: practice.icb_code.clone(),
        started_at: (at_ms / 1000) as u32,
        started_at_ms: at_ms,
        updated_at_ms: at_ms + revision as i64 * 60_000,
        opened_by: String::new(),
        switched_on_at_ms: None,
        diverted_calls: revision,
        resolved_at_ms: None,
        duration_ms: None,
        resolution: String::new(),
        summary: format!("{kind} at {}", practice.name),
    }
}

/// One active diversion alert in QHM (two states), one resolved in QHM, one
/// active in the far ICB.
fn alerts(practices: &[Practice], far_icb: &str) -> Vec<AlertRow> {
    let at = (london_midnight(DAY) + 9 * 3600) * 1000;
    let home: Vec<&Practice> = practices
        .iter()
        .filter(|p| p.icb_code == HOME_ICB)
        .collect();
    let far = practices.iter().find(|p| p.icb_code == far_icb).unwrap();
    vec![
        alert("div111:a", 1, "firing", home[0], "diversion_111", at),
        alert("div111:a", 2, "updated", home[0], "diversion_111", at),
        alert("abandoned:b", 1, "firing", home[3], "abandoned_rate", at),
        alert("abandoned:b", 2, "resolved", home[3], "abandoned_rate", at),
        alert("div111:far", 1, "firing", far, "diversion_111", at),
    ]
}
