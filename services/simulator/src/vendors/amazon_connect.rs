//! Amazon Connect contact records (CTRs) for a simulated call, as the
//! contact record stream delivers them when a contact ends
//! (docs/adapters.md, Amazon Connect): one `INBOUND` record per call and a
//! `CALLBACK` record per callback made. Times are ISO 8601 with
//! milliseconds. The contact flow sets `callpulse_outcome` where a record
//! alone cannot say what happened (a callback booked, voicemail, lines closed).

use callpulse_core::{CallEvent, EventKind};
use serde_json::{json, Value};

use super::{
    e164, guid, iso_millis, seconds_between, Body, Call, Channel, Out, CONNECT_INSTANCE, NHS_111,
};

/// A flow that takes the caller out of the queue hangs up a few seconds
/// later (the adapter reads a dequeue more than 2 s before the disconnect
/// as the flow's doing).
const GOODBYE_MS: i64 = 3_000;

/// `ContactId` of the call's `INBOUND` contact (`attempt` 0) or of its
/// n-th `CALLBACK` contact.
pub fn contact_id(call_id: &str, attempt: u32) -> String {
    guid(&format!("connect-contact:{call_id}:{attempt}"))
}

fn agent(call: &Call, connected: i64, seconds: i64) -> Value {
    let n = call.hash("agent") % 6 + 1;
    json!({
        "ARN": format!("{CONNECT_INSTANCE}/agent/{}", guid(&format!("agent:{}:{n}", call.ids.code))),
        "Username": format!("reception{n}"),
        "ConnectedToAgentTimestamp": iso_millis(connected),
        "AgentInteractionDuration": seconds,
        "AfterContactWorkDuration": 30,
    })
}

fn queue(call: &Call, enqueued: i64, dequeued: Option<i64>) -> Value {
    json!({
        "ARN": call.ids.connect_queue_arn,
        "Name": call.ids.connect_queue_name,
        "EnqueueTimestamp": iso_millis(enqueued),
        "DequeueTimestamp": dequeued.map(iso_millis),
        "Duration": (dequeued.unwrap_or(enqueued) - enqueued) / 1000,
    })
}

fn base(call: &Call, contact: &str, method: &str, initiated: i64, disconnected: i64) -> Value {
    json!({
        "AWSAccountId": "111122223333",
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "InstanceARN": CONNECT_INSTANCE,
        "ContactId": contact,
        "InitialContactId": null,
        "PreviousContactId": null,
        "NextContactId": null,
        "Channel": "VOICE",
        "InitiationMethod": method,
        "InitiationTimestamp": iso_millis(initiated),
        "ConnectedToSystemTimestamp": iso_millis(initiated),
        "DisconnectTimestamp": iso_millis(disconnected),
        "LastUpdateTimestamp": iso_millis(disconnected),
        "CustomerEndpoint": {
            "Address": call.caller.as_deref().map_or_else(|| "anonymous".to_string(), e164),
            "Type": "TELEPHONE_NUMBER",
        },
        "SystemEndpoint": {"Address": call.ids.e164, "Type": "TELEPHONE_NUMBER"},
        "Queue": null,
        "Agent": null,
        "TransferredToEndpoint": null,
        "TransferCompletedTimestamp": null,
        "DisconnectReason": "CUSTOMER_DISCONNECT",
        "Attributes": {},
        "Recording": null,
    })
}

/// When the caller's contact disconnects: at `ended`, or for a caller the
/// flow took out of the queue, a goodbye after that.
pub(crate) fn disconnect_at(call: &Call) -> i64 {
    let outcome = call.outcome().map(|e| (e.kind, e.at.0));
    let ended = call.at(EventKind::Ended);
    match outcome {
        Some((EventKind::CallbackRequested | EventKind::Missed, at))
            if call.first(EventKind::Queued).is_some() =>
        {
            ended.unwrap_or(at).max(at + GOODBYE_MS)
        }
        Some((_, at)) => ended.unwrap_or(at),
        None => ended.unwrap_or(call.offered_at()),
    }
}

/// The `INBOUND` contact record, delivered when the call ends.
pub(crate) fn contact_record(call: &Call) -> Out {
    let initiated = call.offered_at();
    let disconnected = disconnect_at(call);
    let contact = contact_id(&call.call_id, 0);
    let mut ctr = base(call, &contact, "INBOUND", initiated, disconnected);
    let enqueued = call.at(EventKind::Queued);
    let Some(outcome) = call.outcome() else {
        return Vec::new();
    };
    let at = outcome.at.0;
    match (outcome.kind, enqueued) {
        (EventKind::Answered, Some(joined)) => {
            ctr["Queue"] = queue(call, joined, Some(at));
            ctr["Agent"] = agent(call, at, (disconnected - at) / 1000);
            ctr["DisconnectReason"] = json!(if call.hash("hangs-up") % 2 == 0 {
                "AGENT_DISCONNECT"
            } else {
                "CUSTOMER_DISCONNECT"
            });
        }
        (EventKind::Abandoned, Some(joined)) => {
            ctr["Queue"] = queue(call, joined, Some(at));
        }
        (EventKind::Missed, Some(joined)) => {
            ctr["Queue"] = queue(call, joined, Some(at));
            ctr["Attributes"] = json!({"callpulse_outcome": "voicemail"});
            ctr["DisconnectReason"] = json!("CONTACT_FLOW_DISCONNECT");
        }
        (EventKind::CallbackRequested, Some(joined)) => {
            ctr["Queue"] = queue(call, joined, Some(at));
            ctr["Attributes"] = json!({"callpulse_outcome": "callback"});
            ctr["DisconnectReason"] = json!("CONTACT_FLOW_DISCONNECT");
        }
        (EventKind::Diverted111, _) => {
            ctr["TransferredToEndpoint"] = json!({"Address": NHS_111, "Type": "TELEPHONE_NUMBER"});
            ctr["TransferCompletedTimestamp"] = json!(iso_millis(at));
            ctr["DisconnectReason"] = json!("CONTACT_FLOW_DISCONNECT");
        }
        // Lines closed, and the call rang out.
        (EventKind::Missed, None) => {
            ctr["Attributes"] = json!({"callpulse_outcome": "closed"});
            ctr["DisconnectReason"] = json!("CONTACT_FLOW_DISCONNECT");
        }
        // Ended in the menu (or heard the closed message and hung up).
        _ => {}
    }
    vec![(
        disconnected,
        Channel::AmazonConnect,
        Body::Line(ctr.to_string()),
    )]
}

/// A `CALLBACK` contact: Connect creates it as the caller's contact ends,
/// an agent takes it (the practice rings back), and its record comes when
/// the callback call ends.
pub(crate) fn callback_contact(call: &Call, attempt: u32, event: &CallEvent) -> Out {
    let created = disconnect_at(call);
    let connected = event.at.0;
    let seconds = seconds_between(call.hash(&format!("callback-{attempt}")), 45, 400);
    let disconnected = connected + seconds * 1000;
    let original = contact_id(&call.call_id, 0);
    let mut ctr = base(
        call,
        &contact_id(&call.call_id, attempt),
        "CALLBACK",
        created,
        disconnected,
    );
    ctr["InitialContactId"] = json!(original);
    ctr["PreviousContactId"] = json!(original);
    ctr["SystemEndpoint"] = Value::Null;
    ctr["CustomerEndpoint"] =
        json!({"Address": e164(&call.callback_number()), "Type": "TELEPHONE_NUMBER"});
    ctr["Queue"] = queue(call, created, Some(connected));
    ctr["Agent"] = agent(call, connected, seconds);
    ctr["DisconnectReason"] = json!("AGENT_DISCONNECT");
    vec![(
        disconnected,
        Channel::AmazonConnect,
        Body::Line(ctr.to_string()),
    )]
}
