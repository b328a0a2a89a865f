//! Rows of the `calls` and `alerts` tables (schemas/clickhouse/005_calls_alerts.sql),
//! made from the JSON records of `callpulse.calls.v1` and `callpulse.alerts.v1`.

use callpulse_core::{CallSummary, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A `calls` row: one call summary plus its replacing version.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct CallRow {
    pub practice: String,
    pub vendor: String,
    pub call_id: String,
    pub revision: u64,
    #[serde(rename = "final")]
    pub is_final: u8,
    pub version: u64,
    pub caller: String,
    /// Seconds, for partitioning; 0 when the call's `offered` is missing.
    pub offered_at: u32,
    pub offered_at_ms: Option<i64>,
    pub wait_start_at_ms: Option<i64>,
    pub outcome: String,
    pub outcome_at_ms: Option<i64>,
    pub outcome_in_core_hours: u8,
    pub wait_ms: Option<u64>,
    pub abandon_ms: Option<u64>,
    pub talk_ms: Option<u64>,
    pub ended_at_ms: Option<i64>,
    pub callback_requested_at_ms: Option<i64>,
    pub first_callback_made_at_ms: Option<i64>,
    pub callbacks_made: u64,
    pub callback_delay_ms: Option<u64>,
    pub conflicting_outcomes: u64,
    pub events: u64,
}

impl From<&CallSummary> for CallRow {
    fn from(call: &CallSummary) -> Self {
        let ms = |t: Option<Timestamp>| t.map(Timestamp::millis);
        CallRow {
            practice: call.practice.clone(),
            vendor: call.vendor.clone(),
            call_id: call.call_id.clone(),
            revision: call.revision,
            is_final: u8::from(call.is_final),
            version: call.revision * 2 + u64::from(call.is_final),
            caller: call.caller.clone().unwrap_or_default(),
            offered_at: call
                .offered_at
                .map_or(0, |t| (t.millis().max(0) / 1000) as u32),
            offered_at_ms: ms(call.offered_at),
            wait_start_at_ms: ms(call.wait_start_at),
            outcome: call
                .outcome
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
            outcome_at_ms: ms(call.outcome_at),
            outcome_in_core_hours: u8::from(call.outcome_in_core_hours),
            wait_ms: call.wait_ms,
            abandon_ms: call.abandon_ms,
            talk_ms: call.talk_ms,
            ended_at_ms: ms(call.ended_at),
            callback_requested_at_ms: ms(call.callback_requested_at),
            first_callback_made_at_ms: ms(call.first_callback_made_at),
            callbacks_made: call.callbacks_made,
            callback_delay_ms: call.callback_delay_ms,
            conflicting_outcomes: call.conflicting_outcomes,
            events: call.events,
        }
    }
}

/// An `alerts` row: one state of one alert.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: String,
    pub revision: u64,
    pub kind: String,
    pub state: String,
    pub practice: String,
    pub pcn: String,
    pub icb: String,
    pub started_at: u32,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
    pub opened_by: String,
    pub switched_on_at_ms: Option<i64>,
    pub diverted_calls: u64,
    pub resolved_at_ms: Option<i64>,
    pub duration_ms: Option<u64>,
    pub resolution: String,
    pub summary: String,
}

impl AlertRow {
    /// From an alert's JSON (callpulse_core::alert::Alert), read by field
    /// name so that kinds and fields added later still load. `None` when
    /// the record has no `id`: it is not an alert.
    pub fn from_json(alert: &Value) -> Option<AlertRow> {
        let text = |name: &str| {
            alert
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let time = |name: &str| {
            alert
                .get(name)
                .and_then(Value::as_str)
                .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                .map(Timestamp::millis)
        };
        let number = |name: &str| alert.get(name).and_then(Value::as_u64);
        let id = text("id");
        if id.is_empty() {
            return None;
        }
        let started_at_ms = time("started_at").unwrap_or(0);
        Some(AlertRow {
            id,
            revision: number("revision").unwrap_or(0),
            kind: text("kind"),
            state: text("state"),
            practice: text("practice"),
            pcn: text("pcn"),
            icb: text("icb"),
            started_at: (started_at_ms.max(0) / 1000) as u32,
            started_at_ms,
            updated_at_ms: time("updated_at").unwrap_or(0),
            opened_by: text("opened_by"),
            switched_on_at_ms: time("switched_on_at"),
            diverted_calls: number("diverted_calls").unwrap_or(0),
            resolved_at_ms: time("resolved_at"),
            duration_ms: number("duration_ms"),
            resolution: text("resolution"),
            summary: text("summary"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_rows_read_the_core_alert_json() {
        let json = serde_json::json!({
            "id": "div111:A81001:2026-11-23T09:00:00.000Z", "kind": "diversion_111",
            "state": "resolved", "revision": 3, "practice": "A81001", "pcn": null, "icb": null,
            "started_at": "2026-11-23T09:00:00.000Z", "updated_at": "2026-11-23T18:30:00.000Z",
            "opened_by": "divert_111_on", "switched_on_at": "2026-11-23T09:00:00.000Z",
            "diverted_calls": 4, "resolved_at": "2026-11-23T18:30:00.000Z",
            "duration_ms": 34200000, "resolution": "core_hours_ended", "summary": "A81001 ..."
        });
        let row = AlertRow::from_json(&json).unwrap();
        assert_eq!(row.revision, 3);
        assert_eq!(row.started_at, 1_795_424_400);
        assert_eq!(row.resolved_at_ms, Some(1_795_458_600_000));
        assert_eq!(row.pcn, "");
        assert_eq!(row.duration_ms, Some(34_200_000));
        assert!(AlertRow::from_json(&serde_json::json!({"kind": "x"})).is_none());
    }
}
