//! Deliveries against local receivers started by the tests: HTTP (axum) for
//! Teams, Slack and the signed webhook, including one that fails the first
//! attempts, and a minimal fake SMTP server.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use callpulse_alerter::contacts::{ChannelKind, Contacts};
use callpulse_alerter::deliver::{deliver, Attempt, Sender};
use callpulse_alerter::policy::{RetryPolicy, Verdict};
use callpulse_alerter::render::{render, Entry};
use callpulse_alerter::{audit, signature};
use callpulse_core::alert::{Alert, AlertKind, AlertState, Opening};
use callpulse_core::Timestamp;
use callpulse_runtime::config::AlerterConfig;
use callpulse_runtime::Config;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SECRET: &str = "a-test-secret-of-some-length";

const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    initial_ms: 20,
    max_ms: 100,
};

fn alert(practice: &str, revision: u64) -> Alert {
    Alert {
        id: format!("div111:{practice}:2026-11-23T08:00:00.000Z"),
        kind: AlertKind::Diversion111,
        state: AlertState::Firing,
        revision,
        practice: practice.into(),
        pcn: Some("U10030".into()),
        icb: Some("QHM".into()),
        started_at: Timestamp(1_795_420_800_000),
        updated_at: Timestamp(1_795_420_800_000),
        opened_by: Some(Opening::DivertOn),
        switched_on_at: Some(Timestamp(1_795_420_800_000)),
        diverted_calls: Some(0),
        value: None,
        fire_level: None,
        resolve_level: None,
        worst_value: None,
        offered: None,
        abandoned: None,
        answered: None,
        period_minutes: None,
        last_event_at: None,
        resolved_at: None,
        duration_ms: None,
        resolution: None,
        summary: format!(
            "{practice} has diverted its phones to NHS 111 in core hours since 08:00 on Mon 23 Nov"
        ),
    }
}

fn entries(practices: &[&str]) -> Vec<Entry> {
    practices
        .iter()
        .map(|p| Entry {
            alert: alert(p, 1),
            fallback: None,
        })
        .collect()
}

fn settings(smtp_server: &str) -> AlerterConfig {
    let mut config = Config::load_from(None, []).unwrap().alerter;
    config.hmac_secret = SECRET.into();
    config.smtp_server = smtp_server.into();
    config.smtp_from = "callpulse@example.nhs.uk".into();
    config.request_timeout_ms = 2000;
    config
}

/// What a receiver saw: (headers, body) per request.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver that answers `failures` requests with 503, then 200.
async fn receiver(failures: usize, then: StatusCode) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push((headers, body));
                    if seen.len() <= failures {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        then
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn contacts(channel: &str, url_or_to: &str) -> Contacts {
    let target = if channel == "email" {
        format!("to = [\"{url_or_to}\"]")
    } else {
        format!("url = \"{url_or_to}\"")
    };
    Contacts::parse(&format!(
        "[recipients.r]\nchannel = \"{channel}\"\n{target}\n"
    ))
    .unwrap()
}

async fn send(
    contacts: &Contacts,
    smtp: &str,
    entries: &[Entry],
    policy: RetryPolicy,
) -> (Attempt, Vec<(Attempt, bool)>) {
    let sender = Sender::new(&settings(smtp), contacts).unwrap();
    let recipient = &contacts.recipients["r"];
    let message = render(recipient.channel, &recipient.id, entries);
    let mut attempts = Vec::new();
    let last = deliver(&sender, recipient, &message, policy, |a, last| {
        attempts.push((a.clone(), last))
    })
    .await;
    (last, attempts)
}

#[tokio::test]
async fn signed_webhook_is_retried_until_the_receiver_takes_it() {
    let (url, seen) = receiver(2, StatusCode::OK).await;
    let contacts = contacts("webhook", &url);
    let (last, attempts) = send(&contacts, "", &entries(&["A81001"]), FAST).await;
    assert_eq!(last.verdict, Verdict::Delivered);
    assert_eq!(last.number, 3);
    let statuses: Vec<&str> = attempts
        .iter()
        .map(|(a, last)| audit::status(a, *last))
        .collect();
    assert_eq!(statuses, ["retry", "retry", "delivered"]);
    assert_eq!(attempts[0].0.http_status, 503);
    assert_eq!(attempts[0].0.error, "HTTP 503");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (headers, body) in seen.iter() {
        // What a receiver does: check the signature over the exact body.
        let header = headers[signature::HEADER].to_str().unwrap();
        assert!(
            signature::verify(SECRET.as_bytes(), body, header),
            "{header}"
        );
        assert!(!signature::verify(b"another-secret-entirely", body, header));
        assert_eq!(
            headers["idempotency-key"], "div111:A81001:2026-11-23T08:00:00.000Z:1",
            "the same key on every attempt"
        );
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["alerts"][0]["alert"]["practice"], "A81001");
        assert_eq!(
            json["idempotency_key"],
            "div111:A81001:2026-11-23T08:00:00.000Z:1"
        );
    }
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_makes_the_message_failed_after_max_attempts() {
    let (url, seen) = receiver(usize::MAX, StatusCode::OK).await;
    let contacts = contacts("slack", &url);
    let (last, attempts) = send(&contacts, "", &entries(&["A81001"]), FAST).await;
    assert_eq!(last.verdict, Verdict::Retry);
    assert_eq!(attempts.len(), 4);
    assert_eq!(
        attempts
            .iter()
            .map(|(a, l)| audit::status(a, *l))
            .collect::<Vec<_>>(),
        ["retry", "retry", "retry", "failed"]
    );
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_an_unreachable_host_is() {
    let (url, seen) = receiver(0, StatusCode::NOT_FOUND).await;
    let (last, attempts) = send(&contacts("teams", &url), "", &entries(&["A81001"]), FAST).await;
    assert_eq!((last.verdict, last.http_status), (Verdict::Permanent, 404));
    assert_eq!(attempts.len(), 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Nothing listens on this port (bound, then closed).
    let port = callpulse_testkit::free_port();
    let gone = format!("http://127.0.0.1:{port}/hook");
    let (last, attempts) = send(&contacts("slack", &gone), "", &entries(&["A81001"]), FAST).await;
    assert_eq!((last.verdict, last.http_status), (Verdict::Retry, 0));
    assert_eq!(attempts.len(), 4);
    assert!(
        !last.error.contains(&gone),
        "URLs stay out of errors: {}",
        last.error
    );
}

#[tokio::test]
async fn teams_and_slack_get_one_message_for_a_group() {
    let group = entries(&["A81001", "A81002", "A81003"]);
    let (url, seen) = receiver(0, StatusCode::OK).await;
    let (last, _) = send(&contacts("teams", &url), "", &group, FAST).await;
    assert_eq!(last.verdict, Verdict::Delivered);
    let (url, slack) = receiver(0, StatusCode::OK).await;
    send(&contacts("slack", &url), "", &group, FAST).await;
    let teams: Value = serde_json::from_slice(&seen.lock().unwrap()[0].1).unwrap();
    let card = &teams["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["body"][0]["text"],
        "3 alerts (3 firing, 0 resolved): A81001, A81002, A81003"
    );
    let slack: Value = serde_json::from_slice(&slack.lock().unwrap()[0].1).unwrap();
    assert_eq!(slack["text"].as_str().unwrap().lines().count(), 4);
    assert!(
        seen.lock().unwrap()[0].0.get(signature::HEADER).is_none(),
        "only webhooks are signed"
    );
}

/// A minimal SMTP server: answers each step with the next reply from
/// `script` for RCPT (others 250), and keeps what DATA carried.
async fn smtp_server(rcpt_replies: Vec<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = received.clone();
    let replies = Arc::new(Mutex::new(rcpt_replies.into_iter()));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let store = store.clone();
            let replies = replies.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                write
                    .write_all(b"220 fake.example ESMTP\r\n")
                    .await
                    .unwrap();
                let mut line = String::new();
                while read.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let command = line.trim_end().to_ascii_uppercase();
                    let reply: String = if command.starts_with("EHLO") {
                        "250-fake.example\r\n250 8BITMIME\r\n".into()
                    } else if command.starts_with("RCPT") {
                        let next = replies.lock().unwrap().next().unwrap_or("250 2.1.5 Ok");
                        format!("{next}\r\n")
                    } else if command == "DATA" {
                        write
                            .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await
                            .unwrap();
                        let mut data = String::new();
                        loop {
                            let mut l = String::new();
                            read.read_line(&mut l).await.unwrap();
                            if l == ".\r\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        store.lock().unwrap().push(data);
                        "250 2.0.0 Ok: queued as ABC123\r\n".into()
                    } else if command == "QUIT" {
                        write.write_all(b"221 2.0.0 Bye\r\n").await.unwrap();
                        return;
                    } else {
                        "250 2.1.0 Ok\r\n".into()
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                    line.clear();
                }
            });
        }
    });
    (address, received)
}

#[tokio::test]
async fn email_reaches_the_smtp_server_after_a_temporary_refusal() {
    let (server, received) = smtp_server(vec!["451 4.3.0 Try again later"]).await;
    let contacts = contacts("email", "cd@example.nhs.uk");
    let group = entries(&["A81001", "A81002"]);
    let (last, attempts) = send(&contacts, &server, &group, FAST).await;
    assert_eq!(last.verdict, Verdict::Delivered, "{last:?}");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].0.reply, "451 4.3.0 Try again later");
    assert_eq!(last.reply, "250 2.0.0 Ok: queued as ABC123");
    let mails = received.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.contains("To: cd@example.nhs.uk\r\n"), "{mail}");
    assert!(mail.contains("Subject: 2 alerts (2 firing, 0 resolved): A81001, A81002\r\n"));
    assert!(mail.contains("Message-ID: <"));
    use base64::Engine as _;
    let body: String = mail
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .collect();
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("A81002 has diverted its phones to NHS 111"),
        "{text}"
    );
    // A permanent refusal is final.
    let (server, _) = smtp_server(vec!["550 5.1.1 No such user"]).await;
    let (last, attempts) = send(&contacts, &server, &group, FAST).await;
    assert_eq!((last.verdict, attempts.len()), (Verdict::Permanent, 1));
    assert_eq!(last.reply, "550 5.1.1 No such user");
}

#[test]
fn a_webhook_without_a_secret_is_refused_at_start() {
    let contacts = contacts("webhook", "https://example.invalid/hook");
    let mut config = settings("");
    config.hmac_secret.clear();
    assert!(Sender::new(&config, &contacts).is_err());
    let with_own = Contacts::parse(
        "[recipients.r]\nchannel = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"MY_SECRET\"\n",
    )
    .unwrap();
    assert!(Sender::with_env(&config, &with_own, |_| Some("sixteen-bytes-or-more".into())).is_ok());
    assert!(Sender::with_env(&config, &with_own, |_| None).is_err());
    assert!(!ChannelKind::Webhook.groups());
}
