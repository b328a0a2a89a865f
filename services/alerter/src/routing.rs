//! Who receives an alert. Pure: the alert's kind gives its audiences
//! (contacts file `[audiences]`, or [`default_audiences`]); the practice
//! gives its PCN and ICB (from the alert, else from the organisations
//! data); the contacts file gives the recipients of each.
//!
//! When nobody is found for a clinical alert (a PCN or ICB missing from the
//! contacts file, a practice missing from the organisations data) the
//! operators receive it instead, with the reason: a gap in the contacts is
//! something to fix, not a reason to lose an alert. When there are no
//! operators either, the alert is undeliverable (recorded and published to
//! the undeliverable topic by the service).
//!
//! [`default_audiences`]: crate::contacts::default_audiences

use std::collections::HashMap;

use callpulse_core::alert::Alert;

use crate::contacts::{Audience, Contacts};

/// Practice ODS code -> (PCN code, ICB code), from the organisations data.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    practices: HashMap<String, (Option<String>, String)>,
}

impl Directory {
    pub fn from_practices(practices: &[callpulse_sink::organisations::Practice]) -> Directory {
        Directory {
            practices: practices
                .iter()
                .map(|p| {
                    let pcn = (!p.pcn_code.is_empty()).then(|| p.pcn_code.clone());
                    (p.code.clone(), (pcn, p.icb_code.clone()))
                })
                .collect(),
        }
    }

    /// For tests: `(practice, pcn, icb)` triples.
    pub fn from_pairs<'a>(
        rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Directory {
        Directory {
            practices: rows
                .into_iter()
                .map(|(practice, pcn, icb)| {
                    let pcn = (!pcn.is_empty()).then(|| pcn.to_string());
                    (practice.to_string(), (pcn, icb.to_string()))
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.practices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.practices.is_empty()
    }

    /// The alert with its `pcn` and `icb` filled in where it lacks them.
    pub fn complete(&self, alert: &Alert) -> Alert {
        let mut alert = alert.clone();
        if let Some((pcn, icb)) = self.practices.get(&alert.practice.to_ascii_uppercase()) {
            if alert.pcn.is_none() {
                alert.pcn = pcn.clone();
            }
            if alert.icb.is_none() && !icb.is_empty() {
                alert.icb = Some(icb.clone());
            }
        }
        alert
    }
}

/// The recipients of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The alert with its PCN and ICB filled in.
    pub alert: Alert,
    /// Recipient ids, each once, in a stable order.
    pub recipients: Vec<String>,
    /// Set when the operators received a clinical alert because nobody
    /// else was found: why.
    pub fallback: Option<String>,
}

/// The alert's kind as it is spelled in the record (e.g. `diversion_111`).
pub fn kind_name(alert: &Alert) -> String {
    serde_json::to_value(alert.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", alert.kind))
}

pub fn route(alert: &Alert, directory: &Directory, contacts: &Contacts) -> Routed {
    let alert = directory.complete(alert);
    let mut recipients: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let add = |ids: &[String], recipients: &mut Vec<String>| {
        for id in ids {
            if !recipients.contains(id) {
                recipients.push(id.clone());
            }
        }
    };
    let audiences = contacts.audiences_of(&kind_name(&alert));
    for audience in &audiences {
        match audience {
            Audience::Pcn => match alert.pcn.as_deref() {
                Some(pcn) => match contacts.pcn.get(&pcn.to_ascii_uppercase()) {
                    Some(ids) if !ids.is_empty() => add(ids, &mut recipients),
                    _ => missing.push(format!("no contact for PCN {pcn}")),
                },
                None => missing.push(format!("PCN of practice {} unknown", alert.practice)),
            },
            Audience::Icb => match alert.icb.as_deref() {
                Some(icb) => match contacts.icb.get(&icb.to_ascii_uppercase()) {
                    Some(ids) if !ids.is_empty() => add(ids, &mut recipients),
                    _ => missing.push(format!("no contact for ICB {icb}")),
                },
                None => missing.push(format!("ICB of practice {} unknown", alert.practice)),
            },
            Audience::Operators => add(&contacts.operators, &mut recipients),
        }
    }
    let mut fallback = None;
    if !missing.is_empty() && !audiences.contains(&Audience::Operators) {
        // Someone must hear of a gap in the contacts: the operators, as well
        // as whoever was found.
        add(&contacts.operators, &mut recipients);
        fallback = Some(missing.join("; "));
    }
    Routed {
        alert,
        recipients,
        fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callpulse_core::alert::{AlertKind, AlertState, Opening};
    use callpulse_core::Timestamp;

    pub fn alert(practice: &str) -> Alert {
        Alert {
            id: format!("div111:{practice}:2026-11-23T08:00:00.000Z"),
            kind: AlertKind::Diversion111,
            state: AlertState::Firing,
            revision: 1,
            practice: practice.into(),
            pcn: None,
            icb: None,
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
            summary: format!("{practice} has diverted its phones to NHS 111"),
        }
    }

    fn contacts() -> Contacts {
        Contacts::parse(
            r#"
            operators = ["ops"]
            [recipients.ops]
            channel = "slack"
            url = "https://ops"
            [recipients.cd]
            channel = "teams"
            url = "https://cd"
            [recipients.pct]
            channel = "email"
            to = ["pct@example.nhs.uk"]
            [recipients.both]
            channel = "webhook"
            url = "https://both"
            [pcn]
            U10030 = ["cd", "both"]
            [icb]
            QHM = ["pct", "both"]
            "#,
        )
        .unwrap()
    }

    fn directory() -> Directory {
        Directory::from_pairs([
            ("A81001", "U10030", "QHM"),
            ("A81009", "U99999", "QHM"),
            ("A81010", "", "QHM"),
        ])
    }

    #[test]
    fn clinical_alerts_go_to_the_pcn_and_icb_each_recipient_once() {
        let routed = route(&alert("A81001"), &directory(), &contacts());
        assert_eq!(routed.recipients, ["cd", "both", "pct"]);
        assert_eq!(routed.alert.pcn.as_deref(), Some("U10030"));
        assert_eq!(routed.alert.icb.as_deref(), Some("QHM"));
        assert_eq!(routed.fallback, None);
    }

    #[test]
    fn the_alerts_own_pcn_and_icb_win() {
        let mut own = alert("A81001");
        own.pcn = Some("U99999".into());
        own.icb = Some("QHM".into());
        let routed = route(&own, &directory(), &contacts());
        assert_eq!(routed.alert.pcn.as_deref(), Some("U99999"));
        assert_eq!(routed.recipients, ["pct", "both", "ops"]);
        assert_eq!(
            routed.fallback.as_deref(),
            Some("no contact for PCN U99999")
        );
    }

    #[test]
    fn gaps_fall_back_to_the_operators() {
        let routed = route(&alert("Z99999"), &directory(), &contacts());
        assert_eq!(routed.recipients, ["ops"]);
        assert_eq!(
            routed.fallback.as_deref(),
            Some("PCN of practice Z99999 unknown; ICB of practice Z99999 unknown")
        );
        let no_pcn = route(&alert("A81010"), &directory(), &contacts());
        assert_eq!(no_pcn.recipients, ["pct", "both", "ops"]);
        let mut without_operators = contacts();
        without_operators.operators.clear();
        assert!(route(&alert("Z99999"), &directory(), &without_operators)
            .recipients
            .is_empty());
    }

    #[test]
    fn threshold_kinds_go_to_clinicians_and_feed_silence_to_operators() {
        for (kind, expected) in [
            (AlertKind::AbandonedRate, vec!["cd", "both", "pct"]),
            (AlertKind::WaitMean, vec!["cd", "both", "pct"]),
            (AlertKind::WaitP90, vec!["cd", "both", "pct"]),
            (AlertKind::PeakWaiting, vec!["cd", "both", "pct"]),
            (AlertKind::FeedSilence, vec!["ops"]),
        ] {
            let mut a = alert("A81001");
            a.kind = kind;
            let routed = route(&a, &directory(), &contacts());
            assert_eq!(routed.recipients, expected, "{kind:?}");
            assert_eq!(kind_name(&a), kind.as_str());
        }
    }

    #[test]
    fn operator_kinds_go_to_operators_only() {
        let mut contacts = contacts();
        contacts
            .audiences
            .insert("diversion_111".into(), vec![Audience::Operators]);
        let routed = route(&alert("A81001"), &directory(), &contacts);
        assert_eq!(routed.recipients, ["ops"]);
        assert_eq!(routed.fallback, None);
    }
}
