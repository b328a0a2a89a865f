//! `amazon-connect`: Amazon Connect contact records (CTRs), one JSON object
//! per record, as the contact record stream delivers them (Kinesis Data
//! Streams or Data Firehose), plus the Firehose HTTP endpoint envelope.
//!
//! One contact record describes a whole contact, so it maps onto several
//! canonical events. The mapping, and why, is written down in
//! `docs/adapters.md (amazon-connect)`; in short:
//!
//! - `INBOUND` contacts give `offered` (with the caller's pseudonym),
//!   `queued`, one outcome and `ended`.
//! - `QUEUE_TRANSFER` and `TRANSFER` contacts continue the same caller's call
//!   (`call_id` = `InitialContactId`): never a second `offered`. A queue
//!   transfer happens before an answer, so it carries `queued` and the
//!   outcome; an agent transfer happens after one, so it carries only `ended`.
//! - A contact that handed the caller on (`NextContactId` set, no agent)
//!   leaves the outcome and `ended` to the contact it handed on to.
//! - `CALLBACK` contacts give `callback_requested` for the original call and
//!   `callback_made` once an agent took the callback.
//! - Other channels and initiation methods (chat, tasks, outbound calls) are
//!   not inbound phone calls: they give no events and no error.
//!
//! Amazon Connect delivers records at least once and re-delivers a record
//! when it is updated. Event ids are built from the contact id and the fact
//! (`amazon-connect:<ContactId>:<kind>`), never from `LastUpdateTimestamp`,
//! so a re-sent or updated record gives the same ids and the processor
//! drops the copies.

use callpulse_core::{CallEvent, EventKind, Timestamp};
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::file::MAX_RECORD_BYTES;
use crate::redact::redact_numbers;
use crate::timefmt::iso8601;
use crate::{ids, AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "amazon-connect";

/// The contact attribute a practice's contact flow may set to say how a
/// call ended where the contact record itself cannot tell (Amazon Connect
/// has no native voicemail, and the original contact of a queued callback
/// carries no callback flag). Values: [`OUTCOME_VALUES`].
pub const OUTCOME_ATTRIBUTE: &str = "callpulse_outcome";

/// [`OUTCOME_ATTRIBUTE`] as the field errors name it.
const OUTCOME_FIELD: &str = "Attributes.callpulse_outcome";

/// The values of [`OUTCOME_ATTRIBUTE`] and the kinds they map to.
pub const OUTCOME_VALUES: [(&str, EventKind); 3] = [
    ("callback", EventKind::CallbackRequested),
    ("voicemail", EventKind::Missed),
    ("closed", EventKind::Missed),
];

/// A caller still in the queue when the call ended has `DequeueTimestamp`
/// equal to `DisconnectTimestamp`, give or take this much; a call taken out
/// of the queue earlier was taken out by the contact flow.
const DEQUEUE_TOLERANCE_MS: i64 = 2_000;

/// Adapts one contact record.
pub fn adapt_record(record: &str, ctx: &AdaptContext<'_>) -> Adapted {
    if record.len() > MAX_RECORD_BYTES {
        return Err(AdaptError::TooLarge {
            size: record.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    let value: Value =
        serde_json::from_str(record).map_err(|err| AdaptError::malformed("JSON", err))?;
    let Value::Object(ctr) = value else {
        return Err(AdaptError::malformed(
            "JSON",
            "a contact record must be a JSON object",
        ));
    };
    Ctr(&ctr).adapt(ctx)
}

/// How a contact began (`InitiationMethod`), as far as calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Inbound,
    QueueTransfer,
    Transfer,
    Callback,
    /// A documented method that is not part of an inbound call.
    NotInbound,
}

/// Documented `InitiationMethod` values that are not an inbound caller:
/// agent or campaign dialling, API and web calling, supervisor monitoring,
/// disconnect flows, chat replies and flow-created contacts.
const NOT_INBOUND_METHODS: [&str; 8] = [
    "OUTBOUND",
    "API",
    "DISCONNECT",
    "MONITOR",
    "EXTERNAL_OUTBOUND",
    "WEBRTC_API",
    "AGENT_REPLY",
    "FLOW",
];

fn method(text: &str) -> Result<Method, AdaptError> {
    Ok(match text {
        "INBOUND" => Method::Inbound,
        "QUEUE_TRANSFER" => Method::QueueTransfer,
        "TRANSFER" => Method::Transfer,
        "CALLBACK" => Method::Callback,
        other if NOT_INBOUND_METHODS.contains(&other) => Method::NotInbound,
        other => {
            return Err(AdaptError::field(
                "InitiationMethod",
                format!(
                    "`{}` is not a known initiation method (INBOUND, QUEUE_TRANSFER, TRANSFER, CALLBACK, OUTBOUND, API, ...)",
                    quote(other)
                ),
            ))
        }
    })
}

/// A vendor value fit to quote in an error: short, with numbers masked.
fn quote(text: &str) -> String {
    redact_numbers(&text.chars().take(40).collect::<String>())
}

/// One contact record, read field by field. Missing fields and JSON `null`
/// are the same; a field of the wrong type is an error naming it.
struct Ctr<'a>(&'a Map<String, Value>);

impl<'a> Ctr<'a> {
    fn get(&self, path: &'static str) -> Result<Option<&'a Value>, AdaptError> {
        let mut node = self.0;
        let mut end = 0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            end += part.len();
            let value = match node.get(part) {
                None | Some(Value::Null) => return Ok(None),
                Some(value) => value,
            };
            if parts.peek().is_none() {
                return Ok(Some(value));
            }
            match value {
                Value::Object(inner) => node = inner,
                _ => {
                    return Err(AdaptError::field(
                        path[..end].to_string(),
                        "must be a JSON object",
                    ))
                }
            }
            end += 1;
        }
        Ok(None)
    }

    /// A string field; empty or blank counts as absent.
    fn str(&self, path: &'static str) -> Result<Option<&'a str>, AdaptError> {
        match self.get(path)? {
            None => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(AdaptError::field(path, "must be a string")),
        }
    }

    fn required_str(&self, path: &'static str) -> Result<&'a str, AdaptError> {
        self.str(path)?.ok_or_else(|| AdaptError::missing(path))
    }

    fn time(&self, path: &'static str) -> Result<Option<Timestamp>, AdaptError> {
        self.str(path)?.map(|text| iso8601(path, text)).transpose()
    }

    fn required_time(&self, path: &'static str) -> Result<Timestamp, AdaptError> {
        self.time(path)?.ok_or_else(|| AdaptError::missing(path))
    }

    fn adapt(&self, ctx: &AdaptContext<'_>) -> Adapted {
        let contact_id = self.required_str("ContactId")?;
        let channel = self.required_str("Channel")?;
        if channel != "VOICE" {
            // Chat, tasks and email are not phone calls.
            return Ok(Vec::new());
        }
        let method = method(self.required_str("InitiationMethod")?)?;
        if method == Method::NotInbound {
            // Outbound, API and monitoring contacts are not inbound calls.
            return Ok(Vec::new());
        }
        let practice = ctx.mapping.practice_of_any(
            NAME,
            &[
                (
                    "SystemEndpoint.Address",
                    self.str("SystemEndpoint.Address")?,
                ),
                ("Queue.ARN", self.str("Queue.ARN")?),
                ("Queue.Name", self.str("Queue.Name")?),
            ],
        )?;
        let call_id = match method {
            Method::Inbound => ids::call_id(contact_id),
            _ => ids::call_id(
                self.str("InitialContactId")?
                    .or(self.str("PreviousContactId")?)
                    .ok_or_else(|| {
                        AdaptError::field(
                            "InitialContactId",
                            "required for a transferred or callback contact, to find the caller's original call",
                        )
                    })?,
            ),
        };
        let mut out = Events {
            contact_id,
            call_id,
            practice,
            events: Vec::with_capacity(4),
        };
        match method {
            Method::Callback => self.callback(&mut out)?,
            Method::Inbound | Method::QueueTransfer | Method::Transfer => {
                self.call(method, ctx, &mut out)?
            }
            Method::NotInbound => {}
        }
        Ok(out.events)
    }

    /// An inbound contact, or the continuation of one after a transfer.
    fn call(
        &self,
        method: Method,
        ctx: &AdaptContext<'_>,
        out: &mut Events<'_>,
    ) -> Result<(), AdaptError> {
        let initiated = self.required_time("InitiationTimestamp")?;
        let disconnected = self.required_time("DisconnectTimestamp")?;
        let enqueued = self.time("Queue.EnqueueTimestamp")?;
        let dequeued = self.time("Queue.DequeueTimestamp")?;
        let answered = self.time("Agent.ConnectedToAgentTimestamp")?;
        let handed_on = self.str("NextContactId")?.is_some();

        if method == Method::Inbound {
            let caller = ctx
                .pseudonymiser
                .caller(self.str("CustomerEndpoint.Address")?);
            out.push(EventKind::Offered, initiated, caller)?;
        }
        if method == Method::Transfer {
            // An agent transferred the call: it was answered on an earlier
            // contact, which holds its offer, queue and outcome.
            if !handed_on {
                out.push(EventKind::Ended, disconnected, None)?;
            }
            return Ok(());
        }
        if let Some(at) = enqueued {
            out.push(EventKind::Queued, at, None)?;
        }
        let outcome = match answered {
            Some(at) => Some((EventKind::Answered, at)),
            None => {
                self.unanswered_outcome(method, ctx, disconnected, enqueued, dequeued, handed_on)?
            }
        };
        // The call ends on the last contact of the chain. A contact that
        // handed the caller on to another queue or agent leaves `ended` to
        // its successor; one that ended with a callback booking or a
        // diversion is the end of the caller's line (a callback is a call
        // of its own).
        let ends_here = !handed_on || outcome.is_some_and(|(kind, _)| kind != EventKind::Answered);
        if let Some((kind, at)) = outcome {
            if kind == EventKind::CallbackRequested {
                out.push_for_call(kind, at)?;
            } else {
                out.push(kind, at, None)?;
            }
        }
        if ends_here {
            out.push(EventKind::Ended, disconnected, None)?;
        }
        Ok(())
    }

    /// The outcome of a contact that never reached an agent, or `None` when
    /// the caller was handed on to another contact that will say.
    fn unanswered_outcome(
        &self,
        method: Method,
        ctx: &AdaptContext<'_>,
        disconnected: Timestamp,
        enqueued: Option<Timestamp>,
        dequeued: Option<Timestamp>,
        handed_on: bool,
    ) -> Result<Option<(EventKind, Timestamp)>, AdaptError> {
        // Taken out of the queue by the contact flow well before the end.
        let left_queue_early = dequeued
            .filter(|at| at.millis() < disconnected.millis().saturating_sub(DEQUEUE_TOLERANCE_MS));
        if let Some(address) = self.str("TransferredToEndpoint.Address")? {
            if ctx.mapping.is_111(address) {
                let at = self
                    .time("TransferCompletedTimestamp")?
                    .unwrap_or(disconnected);
                return Ok(Some((EventKind::Diverted111, at)));
            }
        }
        if let Some(marker) = self.str(OUTCOME_FIELD)? {
            let kind = OUTCOME_VALUES
                .iter()
                .find(|(value, _)| marker.trim().eq_ignore_ascii_case(value))
                .map(|(_, kind)| *kind)
                .ok_or_else(|| {
                    AdaptError::field(
                        OUTCOME_FIELD,
                        format!(
                            "`{}` is not one of callback, voicemail, closed",
                            quote(marker)
                        ),
                    )
                })?;
            // The wait ended when the flow took the caller out of the queue.
            return Ok(Some((kind, left_queue_early.unwrap_or(disconnected))));
        }
        if handed_on {
            return Ok(None);
        }
        // A queue transfer continues a call that was already queued.
        let was_queued = enqueued.is_some() || method == Method::QueueTransfer;
        if !was_queued {
            // Ended in the menu: resolved, signposted (transferred to another
            // number) or the caller hung up there.
            return Ok(Some((EventKind::IvrEnded, disconnected)));
        }
        let reason = self.str("DisconnectReason")?.unwrap_or("");
        Ok(Some(match (reason, left_queue_early) {
            // The contact flow took the call out of the queue (a queue
            // timeout, a message, a voicemail box) before the caller hung up.
            (_, Some(at)) => (EventKind::Missed, at),
            // The caller hung up while still waiting in the queue or while an
            // agent's phone rang.
            ("CUSTOMER_DISCONNECT", None) => (EventKind::Abandoned, disconnected),
            // Disconnected by the flow (queue timeout, closed), expired,
            // dropped by the network, or any other reason: the practice did
            // not answer.
            (_, None) => (EventKind::Missed, disconnected),
        }))
    }

    /// A queued callback: the caller's original call asked for it, and the
    /// practice rang back once an agent took it.
    fn callback(&self, out: &mut Events<'_>) -> Result<(), AdaptError> {
        let created = self.required_time("InitiationTimestamp")?;
        out.push_for_call(EventKind::CallbackRequested, created)?;
        if let Some(at) = self.time("Agent.ConnectedToAgentTimestamp")? {
            out.push(EventKind::CallbackMade, at, None)?;
        }
        Ok(())
    }
}

/// The events of one record, with what they share.
struct Events<'a> {
    contact_id: &'a str,
    call_id: String,
    practice: String,
    events: Vec<CallEvent>,
}

impl Events<'_> {
    /// An event that this contact reports: its id is the contact's and the kind.
    fn push(
        &mut self,
        kind: EventKind,
        at: Timestamp,
        caller: Option<String>,
    ) -> Result<(), AdaptError> {
        let event_id = ids::event_id(NAME, &[self.contact_id, kind.as_str()]);
        self.push_with_id(event_id, kind, at, caller)
    }

    /// An event about the caller's call that more than one contact may
    /// report (a callback request: on the original contact when its flow
    /// says so, and on the callback contact): its id is the call's, so the
    /// copies are one event.
    fn push_for_call(&mut self, kind: EventKind, at: Timestamp) -> Result<(), AdaptError> {
        let event_id = ids::event_id(NAME, &["call", &self.call_id, kind.as_str()]);
        self.push_with_id(event_id, kind, at, None)
    }

    fn push_with_id(
        &mut self,
        event_id: String,
        kind: EventKind,
        at: Timestamp,
        caller: Option<String>,
    ) -> Result<(), AdaptError> {
        let event = CallEvent {
            event_id,
            call_id: Some(self.call_id.clone()),
            vendor: NAME.to_string(),
            practice: self.practice.clone(),
            kind,
            at,
            caller,
            queue_position: None,
        };
        event.validate()?;
        self.events.push(event);
        Ok(())
    }
}

/// The contact records in an Amazon Data Firehose HTTP endpoint delivery
/// request (`{"requestId", "timestamp", "records": [{"data": base64}]}`,
/// protocol 1.0), decoded, in order. A record's data may hold several JSON
/// objects, one after another or one a line; each is returned on its own.
/// Text that is not JSON is returned as it is, for [`adapt_record`] to
/// reject on its own, so one bad record never holds back the rest.
///
/// The request itself being wrong (not JSON, no `records`, data that is not
/// base64 or not UTF-8) is an error: Firehose never sends such a request.
/// A gzip `Content-Encoding` is the HTTP shell's to undo first.
pub fn records_from_firehose(body: &str) -> Result<Vec<String>, AdaptError> {
    let value: Value =
        serde_json::from_str(body).map_err(|err| AdaptError::malformed("JSON", err))?;
    let Value::Object(request) = value else {
        return Err(AdaptError::malformed(
            "JSON",
            "a Firehose request must be a JSON object",
        ));
    };
    let records = match request.get("records") {
        Some(Value::Array(records)) => records,
        Some(_) => return Err(AdaptError::field("records", "must be an array")),
        None => return Err(AdaptError::missing("records")),
    };
    let mut out = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let data = match record.get("data") {
            Some(Value::String(data)) => data,
            Some(_) => {
                return Err(AdaptError::field(
                    format!("records[{i}].data"),
                    "must be a base64 string",
                ))
            }
            None => return Err(AdaptError::missing(format!("records[{i}].data"))),
        };
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|err| {
                AdaptError::field(format!("records[{i}].data"), format!("not base64: {err}"))
            })?;
        let text = String::from_utf8(bytes).map_err(|err| {
            AdaptError::field(
                format!("records[{i}].data"),
                format!(
                    "not UTF-8 (invalid byte at {})",
                    err.utf8_error().valid_up_to()
                ),
            )
        })?;
        split_json_values(&text, &mut out);
    }
    Ok(out)
}

/// Splits concatenated or newline-separated JSON values into their texts.
/// From the first text that is not JSON on, the rest of each line is kept
/// as one record each, for the adapter to reject.
fn split_json_values(text: &str, out: &mut Vec<String>) {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return;
        }
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<IgnoredAny>();
        match stream.next() {
            Some(Ok(_)) => {
                let end = stream.byte_offset();
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
            _ => {
                // Not JSON: keep up to the end of the line as one record.
                let end = rest.find('\n').unwrap_or(rest.len());
                let line = rest[..end].trim_end();
                if !line.is_empty() {
                    out.push(line.to_string());
                }
                rest = &rest[end..];
            }
        }
    }
}

/// The response body Amazon Data Firehose expects from an HTTP endpoint:
/// the request's id, the time of the response in milliseconds since 1970,
/// and on failure an error message (send it with a non-2xx status so that
/// Firehose retries). Numbers in the message are masked.
pub fn firehose_response(request_id: &str, timestamp_ms: i64, error: Option<&str>) -> String {
    let mut body = Map::new();
    body.insert("requestId".into(), Value::String(request_id.to_string()));
    body.insert("timestamp".into(), Value::from(timestamp_ms));
    if let Some(message) = error {
        body.insert(
            "errorMessage".into(),
            Value::String(redact_numbers(message)),
        );
    }
    Value::Object(body).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PracticeMapping, Pseudonymiser};
    use base64::Engine as _;
    use proptest::prelude::*;

    const MAPPING: &str = r#"
[divert_111]
numbers = ["111", "+44111"]

[vendors.amazon-connect]
"+441632960001" = "A81002"
"arn:aws:connect:eu-west-2:111122223333:instance/inst-1/queue/q-reception" = "A81002"
"GP-A81003-Reception" = "A81003"
"#;

    fn with_ctx<T>(f: impl FnOnce(&AdaptContext<'_>) -> T) -> T {
        let mapping = PracticeMapping::from_toml(MAPPING).unwrap();
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        f(&ctx)
    }

    fn adapt(record: &Value) -> Adapted {
        with_ctx(|ctx| adapt_record(&record.to_string(), ctx))
    }

    fn kinds(events: &[CallEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    /// An inbound call that queued and was answered.
    fn answered() -> Value {
        serde_json::json!({
            "AWSAccountId": "111122223333",
            "ContactId": "c-1",
            "InitialContactId": null,
            "PreviousContactId": null,
            "NextContactId": null,
            "Channel": "VOICE",
            "InitiationMethod": "INBOUND",
            "InitiationTimestamp": "2026-11-23T08:00:01Z",
            "ConnectedToSystemTimestamp": "2026-11-23T08:00:01Z",
            "DisconnectTimestamp": "2026-11-23T08:09:00Z",
            "DisconnectReason": "AGENT_DISCONNECT",
            "LastUpdateTimestamp": "2026-11-23T08:10:30Z",
            "CustomerEndpoint": {"Address": "+447700900123", "Type": "TELEPHONE_NUMBER"},
            "SystemEndpoint": {"Address": "+441632960001", "Type": "TELEPHONE_NUMBER"},
            "Queue": {
                "ARN": "arn:aws:connect:eu-west-2:111122223333:instance/inst-1/queue/q-reception",
                "Name": "Reception",
                "EnqueueTimestamp": "2026-11-23T08:00:30Z",
                "DequeueTimestamp": "2026-11-23T08:03:00Z",
                "Duration": 150
            },
            "Agent": {"ConnectedToAgentTimestamp": "2026-11-23T08:03:00Z", "AgentInteractionDuration": 360},
            "TransferredToEndpoint": null,
            "Attributes": {}
        })
    }

    /// The same call, abandoned in the queue.
    fn abandoned() -> Value {
        let mut ctr = answered();
        ctr["Agent"] = Value::Null;
        ctr["DisconnectReason"] = "CUSTOMER_DISCONNECT".into();
        ctr["Queue"]["DequeueTimestamp"] = "2026-11-23T08:02:10Z".into();
        ctr["DisconnectTimestamp"] = "2026-11-23T08:02:10Z".into();
        ctr
    }

    #[test]
    fn answered_call_gives_offer_queue_answer_end() {
        let events = adapt(&answered()).unwrap();
        assert_eq!(kinds(&events), ["offered", "queued", "answered", "ended"]);
        assert!(events
            .iter()
            .all(|e| e.call_id.as_deref() == Some("c-1") && e.practice == "A81002"));
        assert_eq!(events[0].event_id, "amazon-connect:c-1:offered");
        let caller = Pseudonymiser::demo().caller(Some("+447700900123"));
        assert_eq!(events[0].caller, caller);
        assert!(events[1..].iter().all(|e| e.caller.is_none()));
        assert_eq!(events[2].at.to_rfc3339_millis(), "2026-11-23T08:03:00.000Z");
        for event in &events {
            assert!(!event.to_json().contains("7700900123"));
        }
    }

    #[test]
    fn outcomes_of_unanswered_calls() {
        // Hung up in the queue.
        assert_eq!(
            kinds(&adapt(&abandoned()).unwrap()),
            ["offered", "queued", "abandoned", "ended"]
        );
        // The queue flow disconnected the caller (queue timeout, closed).
        let mut ctr = abandoned();
        ctr["DisconnectReason"] = "CONTACT_FLOW_DISCONNECT".into();
        assert_eq!(kinds(&adapt(&ctr).unwrap())[2], "missed");
        // Taken out of the queue by the flow, hung up a minute later (a message, a voicemail box).
        let mut ctr = abandoned();
        ctr["Queue"]["DequeueTimestamp"] = "2026-11-23T08:01:10Z".into();
        let events = adapt(&ctr).unwrap();
        assert_eq!(events[2].kind, EventKind::Missed);
        assert_eq!(events[2].at.to_rfc3339_millis(), "2026-11-23T08:01:10.000Z");
        // Never queued: ended in the menu, whoever hung up.
        let mut ctr = abandoned();
        ctr["Queue"] = Value::Null;
        assert_eq!(
            kinds(&adapt(&ctr).unwrap()),
            ["offered", "ivr_ended", "ended"]
        );
        // The flow says voicemail or closed: missed.
        for marker in ["voicemail", "closed", "VOICEMAIL"] {
            let mut ctr = abandoned();
            ctr["Attributes"][OUTCOME_ATTRIBUTE] = marker.into();
            assert_eq!(kinds(&adapt(&ctr).unwrap())[2], "missed", "{marker}");
        }
        let mut ctr = abandoned();
        ctr["Attributes"][OUTCOME_ATTRIBUTE] = "maybe".into();
        assert_eq!(
            adapt(&ctr).unwrap_err().field_name(),
            Some("Attributes.callpulse_outcome")
        );
    }

    #[test]
    fn transfer_to_111_is_a_diversion_unless_answered_first() {
        let mut ctr = abandoned();
        ctr["Queue"] = Value::Null;
        ctr["DisconnectReason"] = "THIRD_PARTY_DISCONNECT".into();
        ctr["TransferredToEndpoint"] =
            serde_json::json!({"Address": "111", "Type": "TELEPHONE_NUMBER"});
        ctr["TransferCompletedTimestamp"] = "2026-11-23T08:00:40Z".into();
        let events = adapt(&ctr).unwrap();
        assert_eq!(kinds(&events), ["offered", "diverted_111", "ended"]);
        assert_eq!(events[1].at.to_rfc3339_millis(), "2026-11-23T08:00:40.000Z");
        // Another number from the menu is signposting: ended in the menu.
        ctr["TransferredToEndpoint"]["Address"] = "+441632960999".into();
        assert_eq!(kinds(&adapt(&ctr).unwrap())[1], "ivr_ended");
        // An agent who answered and then transferred to 111: answered.
        let mut ctr = answered();
        ctr["TransferredToEndpoint"] = serde_json::json!({"Address": "+44111"});
        assert_eq!(kinds(&adapt(&ctr).unwrap())[2], "answered");
    }

    #[test]
    fn callbacks_link_to_the_original_call_and_share_one_request_id() {
        // The original contact, whose flow booked a callback.
        let mut original = abandoned();
        original["DisconnectReason"] = "CONTACT_FLOW_DISCONNECT".into();
        original["Attributes"][OUTCOME_ATTRIBUTE] = "callback".into();
        let first = adapt(&original).unwrap();
        assert_eq!(
            kinds(&first),
            ["offered", "queued", "callback_requested", "ended"]
        );
        // The callback contact Amazon Connect created, later taken by an agent.
        let callback = serde_json::json!({
            "ContactId": "cb-1", "InitialContactId": "c-1", "PreviousContactId": "c-1",
            "Channel": "VOICE", "InitiationMethod": "CALLBACK",
            "InitiationTimestamp": "2026-11-23T08:02:05Z",
            "DisconnectTimestamp": "2026-11-23T09:20:00Z",
            "CustomerEndpoint": {"Address": "+447700900123"},
            "Queue": {"ARN": "arn:aws:connect:eu-west-2:111122223333:instance/inst-1/queue/q-reception",
                      "EnqueueTimestamp": "2026-11-23T08:02:05Z"},
            "Agent": {"ConnectedToAgentTimestamp": "2026-11-23T09:15:00Z"}
        });
        let later = adapt(&callback).unwrap();
        assert_eq!(kinds(&later), ["callback_requested", "callback_made"]);
        assert!(later.iter().all(|e| e.call_id.as_deref() == Some("c-1")));
        // Both report the same request: one event id, so one counts.
        assert_eq!(first[2].event_id, later[0].event_id);
        assert_eq!(later[1].event_id, "amazon-connect:cb-1:callback_made");
        // A callback no agent took (it expired): requested, never made.
        let mut expired = callback.clone();
        expired["Agent"] = Value::Null;
        expired["DisconnectReason"] = "EXPIRED".into();
        assert_eq!(kinds(&adapt(&expired).unwrap()), ["callback_requested"]);
        // A callback must say which call it belongs to.
        let mut orphan = callback;
        orphan["InitialContactId"] = Value::Null;
        orphan["PreviousContactId"] = Value::Null;
        assert_eq!(
            adapt(&orphan).unwrap_err().field_name(),
            Some("InitialContactId")
        );
    }

    #[test]
    fn transfers_continue_the_call_without_a_second_offer() {
        // Queue A handed the caller to queue B: no outcome or end here.
        let mut first = abandoned();
        first["DisconnectReason"] = "CONTACT_FLOW_DISCONNECT".into();
        first["NextContactId"] = "c-2".into();
        assert_eq!(kinds(&adapt(&first).unwrap()), ["offered", "queued"]);
        // Queue B: queued again, answered, ended, all on the original call.
        let mut second = answered();
        second["ContactId"] = "c-2".into();
        second["InitialContactId"] = "c-1".into();
        second["PreviousContactId"] = "c-1".into();
        second["InitiationMethod"] = "QUEUE_TRANSFER".into();
        second["SystemEndpoint"] = Value::Null;
        let events = adapt(&second).unwrap();
        assert_eq!(kinds(&events), ["queued", "answered", "ended"]);
        assert!(events.iter().all(|e| e.call_id.as_deref() == Some("c-1")));
        // A queue transfer with no queue of its own still counts as waiting: missed, not ended in the menu.
        second["Queue"] = serde_json::json!({"Name": "GP-A81003-Reception"});
        second["Agent"] = Value::Null;
        second["DisconnectReason"] = "EXPIRED".into();
        assert_eq!(kinds(&adapt(&second).unwrap()), ["missed", "ended"]);
        // An agent's transfer: the call was answered before; only the end is here.
        let mut third = answered();
        third["ContactId"] = "c-3".into();
        third["InitialContactId"] = "c-1".into();
        third["InitiationMethod"] = "TRANSFER".into();
        assert_eq!(kinds(&adapt(&third).unwrap()), ["ended"]);
        // The answered first leg that an agent transferred leaves `ended` to the last leg.
        let mut leg = answered();
        leg["NextContactId"] = "c-3".into();
        assert_eq!(
            kinds(&adapt(&leg).unwrap()),
            ["offered", "queued", "answered"]
        );
    }

    #[test]
    fn resent_and_updated_records_give_the_same_ids() {
        let first = adapt(&answered()).unwrap();
        let mut updated = answered();
        updated["LastUpdateTimestamp"] = "2026-11-24T10:00:00Z".into();
        updated["Attributes"]["note"] = "updated by update-contact-attributes".into();
        let second = adapt(&updated).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn withheld_callers_have_no_pseudonym() {
        for endpoint in [
            Value::Null,
            serde_json::json!({"Address": "anonymous"}),
            serde_json::json!({}),
        ] {
            let mut ctr = answered();
            ctr["CustomerEndpoint"] = endpoint;
            assert_eq!(adapt(&ctr).unwrap()[0].caller, None);
        }
    }

    #[test]
    fn other_channels_and_methods_are_ignored_but_unknown_methods_rejected() {
        let mut chat = answered();
        chat["Channel"] = "CHAT".into();
        assert_eq!(adapt(&chat).unwrap(), Vec::new());
        let mut outbound = answered();
        outbound["InitiationMethod"] = "OUTBOUND".into();
        assert_eq!(adapt(&outbound).unwrap(), Vec::new());
        let mut odd = answered();
        odd["InitiationMethod"] = "TELEPORT +447700900123".into();
        let err = adapt(&odd).unwrap_err();
        assert_eq!(err.field_name(), Some("InitiationMethod"));
        assert!(!err.to_string().contains("7700900123"), "{err}");
    }

    #[test]
    fn errors_name_the_field_and_never_the_caller() {
        let cases: [(&str, Value, &str); 6] = [
            ("ContactId", Value::Null, "ContactId"),
            (
                "InitiationTimestamp",
                "23/11/2026 08:00".into(),
                "InitiationTimestamp",
            ),
            ("DisconnectTimestamp", Value::Null, "DisconnectTimestamp"),
            ("Queue", "Reception".into(), "Queue"),
            (
                "CustomerEndpoint",
                serde_json::json!({"Address": 447700900123u64}),
                "CustomerEndpoint.Address",
            ),
            ("Channel", Value::from(1), "Channel"),
        ];
        for (field, value, named) in cases {
            let mut ctr = answered();
            ctr[field] = value;
            let err = adapt(&ctr).unwrap_err();
            assert_eq!(err.field_name(), Some(named), "{field}: {err}");
            assert!(!err.to_string().contains("7700900123"), "{err}");
        }
        // Unknown practice: an error naming the identifier, never a guess.
        let mut ctr = answered();
        ctr["SystemEndpoint"] = Value::Null;
        ctr["Queue"]["ARN"] =
            "arn:aws:connect:eu-west-2:111122223333:instance/inst-1/queue/q-unknown".into();
        ctr["Queue"]["Name"] = "Somewhere else".into();
        let err = adapt(&ctr).unwrap_err();
        assert_eq!(err.code(), "unmapped_practice");
        assert_eq!(err.field_name(), Some("Queue.ARN"));
        // Malformed JSON and non-objects.
        for text in ["", "{", "[]", "null", "\"VOICE\"", "{\"ContactId\": }"] {
            let err = with_ctx(|ctx| adapt_record(text, ctx)).unwrap_err();
            assert_eq!(err.code(), "malformed", "{text:?}");
        }
    }

    #[test]
    fn long_ids_are_hashed_not_rejected() {
        let mut ctr = answered();
        ctr["ContactId"] = "x".repeat(300).into();
        let events = adapt(&ctr).unwrap();
        assert!(events
            .iter()
            .all(|e| e.event_id.len() <= callpulse_core::event::MAX_ID_LEN));
    }

    fn firehose_body(datas: &[&str]) -> String {
        let records: Vec<Value> = datas
            .iter()
            .map(|d| serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(d)}))
            .collect();
        serde_json::json!({
            "requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
            "timestamp": 1795421702000i64,
            "records": records
        })
        .to_string()
    }

    #[test]
    fn firehose_requests_decode_to_records() {
        let one = answered().to_string();
        let two = abandoned().to_string();
        let body = firehose_body(&[
            &one,
            &format!("{two}\n{one}\n"),
            &format!("{one}{two}"),
            "not json\n",
            "",
        ]);
        let records = records_from_firehose(&body).unwrap();
        assert_eq!(records.len(), 6);
        assert_eq!(records[0], one);
        assert_eq!(records[1], two);
        assert_eq!(records[2], one);
        assert_eq!(records[3], one);
        assert_eq!(records[4], two);
        assert_eq!(records[5], "not json");
        with_ctx(|ctx| {
            assert_eq!(adapt_record(&records[1], ctx).unwrap().len(), 4);
            assert_eq!(
                adapt_record(&records[5], ctx).unwrap_err().code(),
                "malformed"
            );
        });
        // The envelope itself being wrong is an error.
        assert_eq!(
            records_from_firehose("{}").unwrap_err().field_name(),
            Some("records")
        );
        assert_eq!(
            records_from_firehose("nope").unwrap_err().code(),
            "malformed"
        );
        assert_eq!(
            records_from_firehose(r#"{"records":[{"data":"***"}]}"#)
                .unwrap_err()
                .field_name(),
            Some("records[0].data")
        );
        assert_eq!(
            records_from_firehose(r#"{"records":[]}"#).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn firehose_responses_follow_the_documented_shape() {
        let ok: Value =
            serde_json::from_str(&firehose_response("req-1", 1795421702123, None)).unwrap();
        assert_eq!(
            ok,
            serde_json::json!({"requestId": "req-1", "timestamp": 1795421702123i64})
        );
        let failed: Value = serde_json::from_str(&firehose_response(
            "req-\"2",
            5,
            Some("record 3 from +447700900123 failed"),
        ))
        .unwrap();
        assert_eq!(failed["requestId"], "req-\"2");
        assert_eq!(failed["timestamp"], 5);
        let message = failed["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with("record 3 from ") && !message.contains("7700900123"),
            "{message}"
        );
    }

    /// JSON values shaped like contact records: the real field names, with
    /// values of every type, including plausible timestamps and enums.
    fn json_ish() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            Just("2026-11-23T08:00:01Z".to_string()),
            Just("2026-11-23T08:05:00.123Z".to_string()),
            Just("1970-01-01T00:00:00Z".to_string()),
            Just("VOICE".to_string()),
            Just("INBOUND".to_string()),
            Just("QUEUE_TRANSFER".to_string()),
            Just("TRANSFER".to_string()),
            Just("CALLBACK".to_string()),
            Just("CUSTOMER_DISCONNECT".to_string()),
            Just("+441632960001".to_string()),
            Just("111".to_string()),
            Just("callback".to_string()),
            Just("c-1".to_string()),
            ".{0,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            text.prop_map(Value::from),
        ];
        let keys = prop::sample::select(vec![
            "ContactId",
            "InitialContactId",
            "PreviousContactId",
            "NextContactId",
            "Channel",
            "InitiationMethod",
            "InitiationTimestamp",
            "DisconnectTimestamp",
            "DisconnectReason",
            "TransferCompletedTimestamp",
            "Queue",
            "Agent",
            "CustomerEndpoint",
            "SystemEndpoint",
            "TransferredToEndpoint",
            "Attributes",
            "Address",
            "ARN",
            "Name",
            "EnqueueTimestamp",
            "DequeueTimestamp",
            "ConnectedToAgentTimestamp",
            "callpulse_outcome",
        ]);
        leaf.prop_recursive(4, 64, 10, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..10).prop_map(
                    |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                ),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,300}") {
            with_ctx(|ctx| { let _ = adapt_record(&text, ctx); });
            let _ = records_from_firehose(&text);
        }

        #[test]
        fn never_panics_on_json_ish_records(value in json_ish()) {
            let text = value.to_string();
            let result = with_ctx(|ctx| adapt_record(&text, ctx));
            if let Ok(events) = result {
                for event in events {
                    prop_assert!(event.validate().is_ok());
                }
            }
            let body = firehose_body(&[&text, &format!("{text}\n{text}")]);
            let records = records_from_firehose(&body).unwrap();
            prop_assert!(records.len() >= 2);
        }

        #[test]
        fn never_panics_on_mutated_real_records(
            field in prop::sample::select(vec![
                "ContactId", "Channel", "InitiationMethod", "InitiationTimestamp", "DisconnectTimestamp",
                "DisconnectReason", "Queue", "Agent", "CustomerEndpoint", "SystemEndpoint",
                "TransferredToEndpoint", "Attributes", "NextContactId", "InitialContactId",
            ]),
            value in json_ish(),
        ) {
            let mut ctr = abandoned();
            ctr[field] = value;
            let _ = adapt(&ctr);
        }
    }
}
