//! The log audit (docs/operations.md, "Secrets and personal data"): a small
//! full pipeline — adapters, processor, sink, alerter as real processes —
//! at RUST_LOG=debug, fed a few hundred calls with real-looking UK caller
//! numbers through the adapters' HTTP ingest (and some records it must
//! reject), with every secret set through the environment: the pseudonym
//! key, the ingest token, a ClickHouse password, the webhook HMAC secret
//! and a webhook URL that carries a token. Then every line any process
//! wrote is searched: no caller number (in any of its spellings, nor
//! anything shaped like a UK number) and no secret may appear.

mod ops_support;

use std::time::{Duration, Instant};

use callpulse_e2e::{diversion_alert, publish_alerts, test_env};
use callpulse_runtime::Config;
use ops_support::*;

const WAIT: Duration = Duration::from_secs(60);

const PSEUDONYM_KEY: &str = "audit-pseudonym-key-5b1f0c9e7d2a4e6f8a0b";
const INGEST_TOKEN: &str = "audit-ingest-token-3c8e1f7a9b2d";
const HMAC_SECRET: &str = "audit-hmac-secret-7e4a2c9f1b3d";
const HOOK_TOKEN: &str = "audit-hook-token-9d2f6b1e8c4a";

/// Real-looking UK numbers (Ofcom's ranges for drama, so nobody's), in the
/// spellings telephony systems use.
fn caller_number(i: usize) -> String {
    let n = i % 1000;
    match i % 5 {
        0 => format!("07700 900{n:03}"),
        1 => format!("+447700900{n:03}"),
        2 => format!("020 7946 0{n:03}"),
        3 => format!("tel:+441134960{n:03}"),
        _ => format!("(0161) 496 0{n:03}"),
    }
}

/// Every spelling of a number that must not appear: as sent, E.164, and
/// the national digits with and without the leading 0.
fn spellings(raw: &str) -> Vec<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.strip_prefix("44") {
        Some(rest) => rest.to_string(),
        None => digits.trim_start_matches('0').to_string(),
    };
    vec![
        raw.to_string(),
        format!("+44{national}"),
        format!("44{national}"),
        format!("0{national}"),
        national,
    ]
}

/// Digit runs (spaces, hyphens and brackets between digits ignored) shaped
/// like a UK number: 0 and 9–10 more digits, or 44 and 9–10 more.
fn phone_like(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut run = String::new();
        let mut i = 0;
        while i <= chars.len() {
            let c = chars.get(i).copied();
            match c {
                Some(d) if d.is_ascii_digit() => run.push(d),
                // Separators inside a number (`(0161) 496-0123`): keep the run going.
                Some(' ' | '-' | '(' | ')')
                    if !run.is_empty()
                        && chars[i + 1..]
                            .iter()
                            .take(3)
                            .find(|n| !matches!(n, ' ' | '-' | '(' | ')'))
                            .is_some_and(char::is_ascii_digit) => {}
                _ => {
                    let uk = (run.starts_with('0') && (10..=11).contains(&run.len()))
                        || (run.starts_with("44") && (11..=12).contains(&run.len()));
                    if uk {
                        found.push(format!("{run} in: {line}"));
                    }
                    run.clear();
                }
            }
            i += 1;
        }
    }
    found
}

#[test]
fn the_phone_like_scan_finds_numbers_and_spares_timestamps() {
    assert_eq!(phone_like("caller=07700 900123 x").len(), 1);
    assert_eq!(phone_like("caller=+447700900123").len(), 1);
    assert_eq!(phone_like("(0161) 496 0123").len(), 1);
    assert!(phone_like("2026-11-23T22:09:07.778Z offset=1234567 at_ms=1763935747778").is_empty());
    assert!(spellings("07700 900123").contains(&"+447700900123".to_string()));
    assert!(spellings("tel:+441134960001").contains(&"01134960001".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_of_a_full_run_holds_a_caller_number_or_a_secret() {
    let started = Instant::now();
    let env = test_env("audit");
    let config = Config::load_from(None, env.clone()).unwrap();
    let user = PasswordUser::create(&config, "audit").await;
    let hook = hook(HOOK_TOKEN).await;
    let contacts = contacts_file("audit", &hook.url);
    let ports = Ports::free();
    let mut env = stack_env(env, &ports, &contacts);
    for (key, value) in [
        ("CALLPULSE__ADAPTERS__PSEUDONYM_KEY", PSEUDONYM_KEY),
        ("CALLPULSE__ADAPTERS__INGEST_TOKEN", INGEST_TOKEN),
        ("CALLPULSE__ALERTER__HMAC_SECRET", HMAC_SECRET),
        ("CALLPULSE__CLICKHOUSE__USER", &user.name),
        ("CALLPULSE__CLICKHOUSE__PASSWORD", &user.password),
    ] {
        env.push((key.to_string(), value.to_string()));
    }
    env.push(("RUST_LOG".into(), "debug".into()));
    let mut services = start_all(&env);
    let bases = ports.bases();
    for (_, base) in &bases {
        wait_for_status(&format!("{base}/readyz"), 200, WAIT).await;
    }

    // A few hundred calls, each caller a real-looking number.
    let mut numbers = Vec::new();
    let events: Vec<String> = recent_events(4, 2.5)
        .iter()
        .map(|event| {
            let mut json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
            if json.get("caller").is_some_and(|c| !c.is_null()) {
                let number = caller_number(numbers.len());
                json["caller"] = number.clone().into();
                numbers.push(number);
            }
            json.to_string()
        })
        .collect();
    assert!(
        numbers.len() >= 200,
        "{} calls with a caller",
        numbers.len()
    );
    let adapters = &bases[3].1;
    post_events(adapters, &events, Some(INGEST_TOKEN)).await;
    // Records the adapters must reject (and dead-letter), numbers inside.
    let rejected: Vec<String> = (0..5)
        .map(|i| {
            let number = caller_number(900 + i);
            let line = serde_json::json!({
                "event_id": format!("bad-{i}"), "call_id": format!("bad-call-{i}"),
                "vendor": "generic", "practice": "A81001", "kind": "no_such_kind",
                "at": "2026-11-23T09:00:00Z", "caller": number,
            })
            .to_string();
            numbers.push(number);
            line
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{adapters}/v1/events"))
        .bearer_auth(INGEST_TOKEN)
        .body(rejected.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    // A wrong token, refused.
    let refused = reqwest::Client::new()
        .post(format!("{adapters}/v1/events"))
        .bearer_auth("not-the-token")
        .body(events[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    // One alert to deliver to the webhook.
    publish_alerts(&config, &[&diversion_alert("A81002", Some("QHM"))]).await;

    // Wait until the calls are in ClickHouse and the alert was delivered.
    let deadline = Instant::now() + WAIT;
    loop {
        let processor = get(&format!("{}/metrics", bases[0].1)).await.1;
        let sink = get(&format!("{}/metrics", bases[1].1)).await.1;
        let events_in = metric(&processor, "callpulse_processor_events_in_total", &[]);
        let calls = metric(
            &sink,
            "callpulse_sink_rows_inserted_total",
            &["table=\"calls\""],
        );
        let delivered = hook.received.load(std::sync::atomic::Ordering::SeqCst);
        if events_in == events.len() as f64 && calls > 0.0 && delivered >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events in {events_in} of {}, call rows {calls}, webhook requests {delivered}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let a few more debug lines (emits, checkpoints, flushes) happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for service in services.iter_mut() {
        let clean = service.terminate(Duration::from_secs(30));
        assert!(clean, "{} did not stop cleanly", service.name);
    }

    let secrets = [
        PSEUDONYM_KEY,
        INGEST_TOKEN,
        HMAC_SECRET,
        HOOK_TOKEN,
        &hook.url,
        &user.password,
    ];
    let mut problems = Vec::new();
    let mut lines = 0;
    for service in &services {
        let log = service.log();
        lines += log.lines().count();
        if std::env::var_os("CALLPULSE_AUDIT_SHOW").is_some() {
            eprintln!("==== {}\n{log}", service.name);
        }
        assert!(
            log.contains("DEBUG"),
            "{}: RUST_LOG=debug did not take:\n{log}",
            service.name
        );
        for secret in secrets {
            for line in log.lines().filter(|l| l.contains(secret)) {
                problems.push(format!("{}: a secret: {line}", service.name));
            }
        }
        for number in &numbers {
            for spelling in spellings(number) {
                for line in log.lines().filter(|l| l.contains(&spelling)) {
                    problems.push(format!("{}: {spelling}: {line}", service.name));
                }
            }
        }
        for found in phone_like(&log) {
            problems.push(format!("{}: phone-like {found}", service.name));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} problems in {lines} log lines, the first:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .map(|p| p.chars().take(400).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "log audit: {lines} lines of 4 processes, {} numbers, clean, in {:?}",
        numbers.len(),
        started.elapsed()
    );
    let _ = std::fs::remove_file(&contacts);
    drop(user);
}
