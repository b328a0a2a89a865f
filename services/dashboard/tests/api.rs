//! The JSON API against the real ClickHouse (CALLPULSE_TEST_CLICKHOUSE):
//! every figure equals both ClickHouse's own answer, computed here straight
//! from `window_metrics FINAL` without the rollup views, and the sums of the
//! rows the test inserted; and the access rules hold (401 without a valid
//! token, 403 outside the token's ICB, whichever way it is asked).

mod common;

use clickhouse::Row;
use common::*;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

async fn get(base: &str, token: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn ok(base: &str, token: &str, path: &str) -> Value {
    let (status, body) = get(base, Some(token), path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// A node's day as ClickHouse computes it from the table itself.
#[derive(Debug, Row, Deserialize)]
struct Direct {
    offered: u64,
    answered: u64,
    callback_requested: u64,
    abandoned: u64,
    missed: u64,
    diverted_111: u64,
    diverted_111_core: u64,
    wait_count: u64,
    wait_hist: Vec<u64>,
}

fn org_condition(level: &str, code: &str) -> String {
    let column = match level {
        "england" => return "1".into(),
        "region" => "region_code",
        "icb" => "icb_code",
        "pcn" => "pcn_code",
        _ => "practice_code",
    };
    format!("practice IN (SELECT practice_code FROM organisations FINAL WHERE {column} = '{code}')")
}

async fn direct(fixture: &Fixture, level: &str, code: &str, window: &str, start: i64) -> Direct {
    let sql = format!(
        "SELECT sum(offered) AS o, sum(answered) AS a, sum(callback_requested) AS c, sum(abandoned) AS ab, \
         sum(missed) AS m, sum(diverted_111) AS d, sum(diverted_111_core) AS dc, sum(wait_count) AS wc, \
         sumForEach(wait_hist) AS wh \
         FROM window_metrics FINAL WHERE `window` = '{window}' AND `start` = toDateTime({start}) AND {}",
        org_condition(level, code)
    );
    callpulse_sink::clickhouse_client(&fixture.config)
        .query(&sql)
        .fetch_one()
        .await
        .unwrap()
}

fn pct(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| 100.0 * n as f64 / of as f64)
}

fn close(json: &Value, expected: Option<f64>) {
    match expected {
        None => assert!(json.is_null(), "{json} should be null"),
        Some(e) => assert!((json.as_f64().unwrap() - e).abs() < 1e-9, "{json} != {e}"),
    }
}

fn bound_json(value: Option<f64>) -> Value {
    match value {
        None => Value::Null,
        Some(v) if v.is_infinite() => Value::from("inf"),
        Some(v) => Value::from(v),
    }
}

#[tokio::test]
async fn figures_equal_clickhouse_and_the_inserted_rows() {
    let fixture = Fixture::load("figures").await;
    let base = fixture.serve().await;
    let home = fixture.home();
    let region = home[0].region_code.clone();
    let pcn = home[0].pcn_code.clone();
    let practice = home[1].code.clone();

    let me = ok(&base, ENGLAND_TOKEN, "/api/v1/me").await;
    assert_eq!(me["day"], DAY, "the latest day with metrics is the default");
    assert_eq!(me["root"]["level"], "england");

    let england_direct = direct(&fixture, "england", "ENG", "1d", midnight(DAY)).await;
    let nodes = [
        ("england", "ENG".to_string()),
        ("region", region.clone()),
        ("icb", HOME_ICB.to_string()),
        ("pcn", pcn.clone()),
        ("practice", practice.clone()),
    ];
    for (level, code) in &nodes {
        let summary = ok(
            &base,
            ENGLAND_TOKEN,
            &format!("/api/v1/nodes/{level}/{code}/summary"),
        )
        .await;
        let d = direct(&fixture, level, code, "1d", midnight(DAY)).await;
        let rows = fixture.day_total(&fixture.under(level, code), DAY);
        // ClickHouse's own answer and the inserted rows agree...
        assert_eq!(
            (d.offered, d.answered, d.abandoned, d.wait_hist.clone()),
            (
                rows.offered,
                rows.answered,
                rows.abandoned,
                rows.wait_hist.clone()
            ),
            "{level} {code}"
        );
        // ...and the API shows exactly that.
        let calls = &summary["calls"];
        assert_eq!(calls["offered"], d.offered, "{level} {code}");
        assert_eq!(calls["answered"], d.answered);
        assert_eq!(calls["callback_requested"], d.callback_requested);
        assert_eq!(calls["abandoned"], d.abandoned);
        assert_eq!(calls["missed"], d.missed);
        assert_eq!(summary["diverted_111"]["core_hours"], d.diverted_111_core);
        assert_eq!(summary["diverted_111"]["all"], d.diverted_111);
        close(
            &summary["rates_pct"]["answered"],
            pct(d.answered, d.offered),
        );
        close(
            &summary["rates_pct"]["abandoned"],
            pct(d.abandoned, d.offered),
        );
        close(
            &summary["rates_pct"]["handled"],
            pct(d.answered + d.callback_requested, d.offered),
        );
        close(
            &summary["england_rates_pct"]["answered"],
            pct(england_direct.answered, england_direct.offered),
        );
        close(
            &summary["england_rates_pct"]["abandoned"],
            pct(england_direct.abandoned, england_direct.offered),
        );
        assert_eq!(summary["wait_s"]["answered_with_wait"], d.wait_count);
        assert_eq!(
            summary["wait_s"]["p50"],
            bound_json(percentile(&d.wait_hist, 1, 2))
        );
        assert_eq!(
            summary["wait_s"]["p90"],
            bound_json(percentile(&d.wait_hist, 9, 10))
        );

        // 15-minute series: today and the same weekday a week before.
        let series = ok(
            &base,
            ENGLAND_TOKEN,
            &format!("/api/v1/nodes/{level}/{code}/series"),
        )
        .await;
        assert_eq!(series["last_week_day"], LAST_WEEK);
        for (key, day) in [("today", DAY), ("last_week", LAST_WEEK)] {
            let points = series[key].as_array().unwrap();
            assert_eq!(points.len(), 48, "{level} {code} {key}: 07:00 to 19:00");
            for point in points.iter().step_by(7) {
                let minute = point["minute"].as_i64().unwrap();
                let start = midnight(day) + minute * 60;
                let d = direct(&fixture, level, code, "15m", start).await;
                assert_eq!(point["offered"], d.offered, "{level} {code} {key} {minute}");
                assert_eq!(point["answered"], d.answered);
                assert_eq!(point["callback_requested"], d.callback_requested);
                assert_eq!(point["abandoned"], d.abandoned);
                assert_eq!(point["missed"], d.missed);
                assert_eq!(point["diverted_111_core"], d.diverted_111_core);
            }
        }
    }

    // Drill-down: the children of each level, with their day's figures.
    let regions = ok(&base, ENGLAND_TOKEN, "/api/v1/nodes/england/ENG/children").await;
    let listed: Vec<&str> = regions["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed.len(),
        7,
        "every region of the organisations file: {listed:?}"
    );
    let pcns = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/children"),
    )
    .await;
    let ours = pcns["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == pcn.as_str())
        .expect("the PCN is a child of its ICB");
    let d = direct(&fixture, "pcn", &pcn, "1d", midnight(DAY)).await;
    assert_eq!(ours["offered"], d.offered);
    close(&ours["abandoned_pct"], pct(d.abandoned, d.offered));
    let quiet = pcns["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["offered"] == 0)
        .expect("PCNs without data are listed too");
    assert!(quiet["answered_pct"].is_null());
    let practices = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/pcn/{pcn}/children"),
    )
    .await;
    let codes: Vec<&str> = practices["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    for p in fixture.under("pcn", &pcn) {
        assert!(codes.contains(&p.code.as_str()));
    }

    // Ranked practices: the ICB's six, worst abandoned % first, then by p90 wait.
    let ranked = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/practices"),
    )
    .await;
    let rows = ranked["practices"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let mut expected: Vec<(f64, u64, String)> = home
        .iter()
        .map(|p| {
            let t = fixture.day_total(&[*p], DAY);
            (
                pct(t.abandoned, t.offered).unwrap(),
                t.offered,
                p.code.clone(),
            )
        })
        .collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let got: Vec<&str> = rows.iter().map(|r| r["code"].as_str().unwrap()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(got, want);
    let by_wait = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/practices?rank=p90_wait&limit=3"),
    )
    .await;
    let waits: Vec<f64> = by_wait["practices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r["p90_wait_s"] {
            Value::String(_) => f64::INFINITY,
            v => v.as_f64().unwrap(),
        })
        .collect();
    assert_eq!(waits.len(), 3);
    assert!(waits.windows(2).all(|w| w[0] >= w[1]), "{waits:?}");

    // Active alerts: the QHM diversion only (the other QHM alert is resolved).
    let alerts = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/alerts"),
    )
    .await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["id"], "div111:a");
    assert_eq!(alerts[0]["state"], "updated");
    assert_eq!(alerts[0]["diverted_calls"], 2);
    let national = ok(&base, ENGLAND_TOKEN, "/api/v1/nodes/england/ENG/alerts").await;
    assert_eq!(national["alerts"].as_array().unwrap().len(), 2);

    // Heat map: four weeks of hourly windows by weekday and hour.
    let heat = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/heatmap"),
    )
    .await;
    assert_eq!(heat["first_day"], "2026-10-27");
    let cells = heat["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        3 * 12,
        "Monday, Tuesday, Wednesday, 07:00 to 18:00"
    );
    let monday_eight = cells
        .iter()
        .find(|c| c["weekday"] == 1 && c["hour"] == 8)
        .unwrap();
    let both: Vec<u64> = [DAY, LAST_WEEK]
        .iter()
        .map(|day| fixture.total(&home, "1h", midnight(day) + 8 * 3600).offered)
        .collect();
    assert_eq!(monday_eight["offered"], both[0] + both[1]);
    assert_eq!(monday_eight["days"], 2);
    close(
        &monday_eight["mean_offered"],
        Some((both[0] + both[1]) as f64 / 2.0),
    );

    // Another day, asked for.
    let before = ok(
        &base,
        ENGLAND_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/summary?day={LAST_WEEK}"),
    )
    .await;
    let d = direct(&fixture, "icb", HOME_ICB, "1d", midnight(LAST_WEEK)).await;
    assert_eq!(before["calls"]["offered"], d.offered);

    fixture.drop_database().await;
}

#[tokio::test]
async fn access_follows_the_token_scope() {
    let fixture = Fixture::load("access").await;
    let base = fixture.serve().await;
    let home = fixture.home();
    let far: Vec<_> = fixture.under("icb", &fixture.far_icb);
    let neighbour: Vec<_> = fixture.under("icb", &fixture.neighbour_icb);

    // No token, or a wrong one: 401 and no data, on every route.
    for path in [
        "/api/v1/me".to_string(),
        "/api/v1/nodes/england/ENG/summary".to_string(),
        format!("/api/v1/nodes/icb/{HOME_ICB}/series"),
        format!("/api/v1/nodes/practice/{}/summary", home[0].code),
    ] {
        let (status, body) = get(&base, None, &path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body.get("calls").is_none());
        let (status, _) = get(&base, Some("not-a-valid-token-at-all"), &path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // The page itself is public, and holds no figures.
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.json::<Value>().await.unwrap()["clickhouse"], true);

    // A QHM token: its ICB, PCNs and practices...
    let me = ok(&base, QHM_TOKEN, "/api/v1/me").await;
    assert_eq!(me["scope"], "icb");
    assert_eq!(me["root"]["code"], HOME_ICB);
    for path in [
        format!("/api/v1/nodes/icb/{HOME_ICB}/summary"),
        format!("/api/v1/nodes/icb/{HOME_ICB}/children"),
        format!("/api/v1/nodes/pcn/{}/series", home[0].pcn_code),
        format!("/api/v1/nodes/practice/{}/summary", home[0].code),
        format!("/api/v1/nodes/practice/{}/heatmap", home[0].code),
    ] {
        ok(&base, QHM_TOKEN, &path).await;
    }
    let node = ok(
        &base,
        QHM_TOKEN,
        &format!("/api/v1/nodes/practice/{}", home[0].code),
    )
    .await;
    let allowed: Vec<(String, bool)> = node["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["level"].as_str().unwrap().to_string(),
                p["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        allowed,
        [
            ("england".to_string(), false),
            ("region".to_string(), false),
            ("icb".to_string(), true),
            ("pcn".to_string(), true)
        ]
    );
    // ...and nothing of another ICB, nor England or a region as such.
    let mut forbidden = vec![
        "/api/v1/nodes/england/ENG/summary".to_string(),
        "/api/v1/nodes/england/ENG/children".to_string(),
        format!("/api/v1/nodes/region/{}/summary", home[0].region_code),
        format!("/api/v1/nodes/icb/{}/summary", fixture.far_icb),
        format!("/api/v1/nodes/icb/{}/practices", fixture.neighbour_icb),
        format!("/api/v1/nodes/icb/{}/alerts", fixture.far_icb),
        // An unknown practice: forbidden, not "not found", so existence does not leak.
        "/api/v1/nodes/practice/Z99999/summary".to_string(),
    ];
    for p in far.iter().chain(neighbour.iter()) {
        for route in [
            "",
            "/summary",
            "/series",
            "/children",
            "/practices",
            "/alerts",
            "/heatmap",
        ] {
            forbidden.push(format!("/api/v1/nodes/practice/{}{route}", p.code));
        }
        forbidden.push(format!("/api/v1/nodes/pcn/{}/summary", p.pcn_code));
    }
    for path in &forbidden {
        let (status, body) = get(&base, Some(QHM_TOKEN), path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body.get("calls").is_none() && body.get("children").is_none());
    }
    // The same unknown practice for an England token: 404. Bad input: 400.
    let (status, _) = get(
        &base,
        Some(ENGLAND_TOKEN),
        "/api/v1/nodes/practice/Z99999/summary",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [
        "/api/v1/nodes/icb/Q'1/summary",
        "/api/v1/nodes/practice/A81001%27%20OR%201/summary",
        "/api/v1/nodes/county/X/summary",
        "/api/v1/nodes/icb/QHM/summary?day=2026-13-01",
        "/api/v1/nodes/icb/QHM/practices?rank=name",
    ] {
        let (status, body) = get(&base, Some(ENGLAND_TOKEN), path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    }

    // The national comparison is all a QHM token sees of England.
    let summary = ok(
        &base,
        QHM_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/summary"),
    )
    .await;
    assert!(summary["england_rates_pct"]["answered"].is_number());
    // An ICB's alerts and rankings hold only its practices.
    let ranked = ok(
        &base,
        QHM_TOKEN,
        &format!("/api/v1/nodes/icb/{HOME_ICB}/practices?limit=200"),
    )
    .await;
    assert!(ranked["practices"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["icb"] == HOME_ICB));
    fixture.drop_database().await;
}

#[tokio::test]
async fn readiness_follows_clickhouse_and_metrics_count_requests_by_route() {
    let fixture = Fixture::load("dashboard_ops").await;
    let base = fixture.serve().await;
    let home = fixture.home();

    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["checks"]["clickhouse"], "ok");

    ok(&base, QHM_TOKEN, "/api/v1/me").await;
    ok(&base, QHM_TOKEN, "/api/v1/me").await;
    let (status, _) = get(&base, None, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let practice = &home[0].code;
    ok(
        &base,
        QHM_TOKEN,
        &format!("/api/v1/nodes/practice/{practice}/summary"),
    )
    .await;

    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let metrics = metrics.text().await.unwrap();
    for line in [
        r#"callpulse_dashboard_requests_total{route="/api/v1/me",status="200"} 2"#,
        r#"callpulse_dashboard_requests_total{route="/api/v1/me",status="401"} 1"#,
        r#"callpulse_dashboard_requests_total{route="/api/v1/nodes/{level}/{code}/summary",status="200"} 1"#,
        r#"callpulse_dashboard_request_seconds_count{route="/api/v1/me"} 3"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    // Route patterns only: no practice codes, no tokens.
    for secret in [practice.as_str(), QHM_TOKEN, ENGLAND_TOKEN] {
        assert!(!metrics.contains(secret), "{secret} in /metrics");
    }
    fixture.drop_database().await;

    // A dashboard whose ClickHouse does not answer is alive but not ready.
    let mut unreachable = fixture.config.clone();
    unreachable.clickhouse.url = "http://127.0.0.1:1".into();
    let state =
        std::sync::Arc::new(callpulse_dashboard::AppState::new(&unreachable, tokens()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, callpulse_dashboard::router(state))
            .await
            .unwrap();
    });
    let health = reqwest::get(format!("http://{address}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = reqwest::get(format!("http://{address}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], false);
    assert_ne!(ready["checks"]["clickhouse"], "ok");
}
