//! Messages: what each channel receives for a batch of alerts. Pure.
//!
//! A batch holds the latest state of one or more alerts for one recipient
//! (several when grouped). Its idempotency key is `<alert id>:<revision>`
//! for one alert, and `group:` plus a digest of the sorted alert keys for
//! several; retries of a message keep its key.

use callpulse_core::alert::{Alert, AlertState};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::contacts::ChannelKind;
use crate::routing::kind_name;

/// One alert state in a message, with why this recipient got it when it
/// was not the usual one (see [`crate::routing::Routed::fallback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub alert: Alert,
    pub fallback: Option<String>,
}

/// The idempotency key of one alert state.
pub fn alert_key(alert: &Alert) -> String {
    format!("{}:{}", alert.id, alert.revision)
}

/// The idempotency key of a message holding `entries`.
pub fn message_key(entries: &[Entry]) -> String {
    match entries {
        [one] => alert_key(&one.alert),
        _ => {
            let mut keys: Vec<String> = entries.iter().map(|e| alert_key(&e.alert)).collect();
            keys.sort_unstable();
            let digest = Sha256::digest(keys.join("\n").as_bytes());
            format!("group:{}", &hex::encode(digest)[..32])
        }
    }
}

/// A message, ready for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub key: String,
    /// One line: the email subject, the card title.
    pub title: String,
    /// Plain text, one paragraph per alert (email body).
    pub text: String,
    /// The HTTP body for Teams, Slack and webhooks; `Null` for email.
    pub json: Value,
}

/// What kind of alert, in words.
pub fn kind_label(alert: &Alert) -> String {
    match kind_name(alert).as_str() {
        "diversion_111" => "111 diversion in core hours".to_string(),
        other => other.replace('_', " "),
    }
}

fn where_of(alert: &Alert) -> String {
    let mut parts = vec![alert.practice.clone()];
    if let Some(pcn) = &alert.pcn {
        parts.push(format!("PCN {pcn}"));
    }
    if let Some(icb) = &alert.icb {
        parts.push(format!("ICB {icb}"));
    }
    parts.join(", ")
}

fn title_of_one(alert: &Alert) -> String {
    let state = match alert.state {
        AlertState::Firing => "",
        AlertState::Resolved => "Resolved: ",
    };
    format!("{state}{} at {}", kind_label(alert), where_of(alert))
}

/// The title of a message: the alert's for one, a count and the practices for several.
pub fn title(entries: &[Entry]) -> String {
    match entries {
        [one] => title_of_one(&one.alert),
        _ => {
            let mut practices: Vec<&str> =
                entries.iter().map(|e| e.alert.practice.as_str()).collect();
            practices.sort_unstable();
            practices.dedup();
            let shown = practices.len().min(5);
            let mut list = practices[..shown].join(", ");
            if practices.len() > shown {
                list.push_str(&format!(" and {} more", practices.len() - shown));
            }
            let firing = entries
                .iter()
                .filter(|e| e.alert.state == AlertState::Firing)
                .count();
            format!(
                "{} alerts ({} firing, {} resolved): {list}",
                entries.len(),
                firing,
                entries.len() - firing
            )
        }
    }
}

fn paragraph(entry: &Entry) -> String {
    let mut out = entry.alert.summary.clone();
    out.push_str(&format!(
        "\n({}; alert {} revision {})",
        where_of(&entry.alert),
        entry.alert.id,
        entry.alert.revision
    ));
    if let Some(why) = &entry.fallback {
        out.push_str(&format!("\nSent to operators: {why}."));
    }
    out
}

/// Escapes what Slack's mrkdwn treats as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(channel: ChannelKind, recipient: &str, entries: &[Entry]) -> Rendered {
    let key = message_key(entries);
    let title = title(entries);
    let text = entries
        .iter()
        .map(paragraph)
        .collect::<Vec<_>>()
        .join("\n\n");
    let json = match channel {
        ChannelKind::Email => Value::Null,
        ChannelKind::Slack => {
            let lines: Vec<String> = entries
                .iter()
                .map(|e| {
                    let mark = if e.alert.state == AlertState::Firing {
                        ":red_circle:"
                    } else {
                        ":white_check_mark:"
                    };
                    let mut line = format!("{mark} {}", slack_escape(&e.alert.summary));
                    if let Some(why) = &e.fallback {
                        line.push_str(&format!(" _(to operators: {})_", slack_escape(why)));
                    }
                    line
                })
                .collect();
            json!({ "text": format!("*{}*\n{}", slack_escape(&title), lines.join("\n")) })
        }
        ChannelKind::Teams => {
            let mut body = vec![json!({
                "type": "TextBlock", "size": "Medium", "weight": "Bolder",
                "text": title, "wrap": true,
            })];
            for e in entries {
                body.push(json!({
                    "type": "TextBlock", "wrap": true,
                    "color": if e.alert.state == AlertState::Firing { "Attention" } else { "Good" },
                    "text": e.alert.summary,
                }));
                let mut facts = format!(
                    "{} · {} rev {}",
                    where_of(&e.alert),
                    e.alert.id,
                    e.alert.revision
                );
                if let Some(why) = &e.fallback {
                    facts.push_str(&format!(" · sent to operators: {why}"));
                }
                body.push(json!({
                    "type": "TextBlock", "wrap": true, "isSubtle": true, "size": "Small",
                    "spacing": "None", "text": facts,
                }));
            }
            json!({
                "type": "message",
                "summary": title,
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    }
                }]
            })
        }
        ChannelKind::Webhook => json!({
            "idempotency_key": key,
            "recipient": recipient,
            "title": title,
            "alerts": entries.iter().map(|e| json!({
                "idempotency_key": alert_key(&e.alert),
                "alert": e.alert,
                "fallback": e.fallback,
            })).collect::<Vec<_>>(),
        }),
    };
    Rendered {
        key,
        title,
        text,
        json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callpulse_core::alert::{AlertKind, Opening};
    use callpulse_core::Timestamp;

    fn entry(practice: &str, state: AlertState, revision: u64) -> Entry {
        Entry {
            alert: Alert {
                id: format!("div111:{practice}:2026-11-23T08:00:00.000Z"),
                kind: AlertKind::Diversion111,
                state,
                revision,
                practice: practice.into(),
                pcn: Some("U10030".into()),
                icb: Some("QHM".into()),
                started_at: Timestamp(1_795_420_800_000),
                updated_at: Timestamp(1_795_420_800_000),
                opened_by: Some(Opening::CoreHoursStarted),
                switched_on_at: None,
                diverted_calls: Some(2),
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
                summary: format!("{practice} diverted 2 calls to NHS 111 <since 08:00> & more"),
            },
            fallback: None,
        }
    }

    #[test]
    fn keys_are_the_alert_state_or_a_stable_digest_of_the_group() {
        let a = entry("A81001", AlertState::Firing, 3);
        let b = entry("A81002", AlertState::Firing, 1);
        assert_eq!(
            message_key(std::slice::from_ref(&a)),
            "div111:A81001:2026-11-23T08:00:00.000Z:3"
        );
        let ab = message_key(&[a.clone(), b.clone()]);
        assert!(ab.starts_with("group:") && ab.len() == 38, "{ab}");
        assert_eq!(ab, message_key(&[b, a.clone()]), "order does not matter");
        let mut a4 = a;
        a4.alert.revision = 4;
        assert_ne!(
            ab,
            message_key(&[a4, entry("A81002", AlertState::Firing, 1)])
        );
    }

    #[test]
    fn one_alert_reads_as_its_summary() {
        let one = [entry("A81001", AlertState::Firing, 1)];
        let r = render(ChannelKind::Email, "cd", &one);
        assert_eq!(
            r.title,
            "111 diversion in core hours at A81001, PCN U10030, ICB QHM"
        );
        assert!(r.text.starts_with("A81001 diverted 2 calls"));
        assert!(r.json.is_null());
        let resolved = [entry("A81001", AlertState::Resolved, 2)];
        assert!(title(&resolved).starts_with("Resolved: 111 diversion"));
    }

    #[test]
    fn a_group_is_one_message_naming_its_practices() {
        let many: Vec<Entry> = (1..=7)
            .map(|i| entry(&format!("A8100{i}"), AlertState::Firing, 1))
            .collect();
        let r = render(ChannelKind::Slack, "cd", &many);
        assert_eq!(
            r.title,
            "7 alerts (7 firing, 0 resolved): A81001, A81002, A81003, A81004, A81005 and 2 more"
        );
        let text = r.json["text"].as_str().unwrap();
        assert_eq!(text.lines().count(), 8);
        assert!(text.contains("&lt;since 08:00&gt; &amp; more"), "{text}");
    }

    #[test]
    fn teams_gets_an_adaptive_card_and_webhooks_the_records() {
        let mut e = entry("A81001", AlertState::Firing, 1);
        e.fallback = Some("no contact for PCN U10030".into());
        let teams = render(ChannelKind::Teams, "cd", std::slice::from_ref(&e)).json;
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["body"].as_array().unwrap().len(), 3);
        let hook = render(ChannelKind::Webhook, "sys", &[e]).json;
        assert_eq!(
            hook["idempotency_key"],
            "div111:A81001:2026-11-23T08:00:00.000Z:1"
        );
        assert_eq!(hook["alerts"][0]["alert"]["kind"], "diversion_111");
        assert_eq!(hook["alerts"][0]["fallback"], "no contact for PCN U10030");
        let back: Alert = serde_json::from_value(hook["alerts"][0]["alert"].clone()).unwrap();
        assert_eq!(back.practice, "A81001");
    }
}
