//! Twilio Programmable Voice webhooks for a simulated call, as a practice's
//! TwiML flow with `<Enqueue>` makes Twilio send them (docs/adapters.md,
//! Twilio): the incoming-call request, `waitUrl` requests, the `<Queue url>`
//! request when staff dequeue, the `<Enqueue action>` callback, status
//! callbacks, `<Dial>` legs to 111, and callback calls through the REST
//! API. The flow's own `CallpulseOutcome` and `CallpulseOriginalCallSid` are
//! set where the adapter needs them.
//!
//! Every record carries `Timestamp` (RFC 2822, whole seconds), as a logging
//! webhook receiver adds it: Twilio itself sends it only on status
//! callbacks, and without it the adapters would take the arrival time.

use callpulse_core::{CallEvent, EventKind};
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{e164, floor_seconds, hex128, seconds_between, Body, Call, Channel, Out, NHS_111};

/// The caller's call's `CallSid`.
pub fn call_sid(call_id: &str) -> String {
    format!("CA{}", hex128(&format!("twilio-call:{call_id}")))
}

/// `X-Twilio-Signature` for a POST to `url` with `params`, as Twilio signs
/// (the adapters' `verify_signature` checks it): HMAC-SHA1 under the
/// account's auth token of the URL and each parameter, sorted by name,
/// name then value; base64.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine as _;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// RFC 2822 as Twilio writes `Timestamp`, in whole seconds.
fn rfc2822(seconds: i64) -> String {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}

struct Params(Vec<(String, String)>);

impl Params {
    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.push((name.to_string(), value.into()));
        self
    }
}

/// The parameters of every request about the caller's own call.
fn caller_leg(call: &Call, status: &str, seconds: i64) -> Params {
    let from = call
        .caller
        .as_deref()
        .map_or_else(|| "anonymous".to_string(), e164);
    Params(Vec::with_capacity(16))
        .with("AccountSid", call.ids.twilio_account.clone())
        .with("ApiVersion", "2010-04-01")
        .with("CallSid", call_sid(&call.call_id))
        .with("CallStatus", status)
        .with("Called", call.ids.e164.clone())
        .with("Caller", from.clone())
        .with("Direction", "inbound")
        .with("From", from)
        .with("FromCountry", "GB")
        .with("To", call.ids.e164.clone())
        .with("ToCountry", "GB")
        .with("Timestamp", rfc2822(seconds))
}

/// A status callback of the caller's call (terminal: with its duration).
fn status_callback(call: &Call, status: &str, at_ms: i64) -> Params {
    let seconds = floor_seconds(at_ms);
    let duration = seconds - floor_seconds(call.offered_at());
    caller_leg(call, status, seconds)
        .with("CallDuration", duration.max(0).to_string())
        .with("CallbackSource", "call-progress-events")
        .with("SequenceNumber", "1")
}

/// An `<Enqueue>` request (waitUrl, action, `<Queue url>`): queue parameters.
fn queue_request(call: &Call, at_ms: i64) -> Params {
    let joined = call.at(EventKind::Queued).unwrap_or(at_ms);
    let queue_time = (floor_seconds(at_ms) - floor_seconds(joined)).max(0);
    caller_leg(call, "in-progress", floor_seconds(at_ms))
        .with("QueueSid", call.ids.twilio_queue_sid.clone())
        .with("QueueTime", queue_time.to_string())
}

fn record(at_ms: i64, params: Params) -> (i64, Channel, Body) {
    (at_ms, Channel::Twilio, Body::Params(params.0))
}

/// The webhooks one step of the call makes Twilio send.
pub(crate) fn on_event(call: &Call, event: &CallEvent) -> Out {
    let at = event.at.0;
    let queued = call.first(EventKind::Queued).is_some();
    match event.kind {
        // The incoming-call request.
        EventKind::Offered => vec![record(at, caller_leg(call, "ringing", floor_seconds(at)))],
        // The first waitUrl request: the call joined the queue.
        EventKind::Queued => {
            let position = event.queue_position.unwrap_or(0) + 1;
            vec![record(
                at,
                caller_leg(call, "in-progress", floor_seconds(at))
                    .with("QueueSid", call.ids.twilio_queue_sid.clone())
                    .with("QueuePosition", position.to_string())
                    .with("CurrentQueueSize", position.to_string())
                    .with("AvgQueueTime", "120")
                    .with("QueueTime", "0"),
            )]
        }
        // Staff dequeue the call with <Dial><Queue url=...>.
        EventKind::Answered => vec![record(
            at,
            queue_request(call, at).with(
                "DequeingCallSid",
                call_sid(&format!("{}#staff", call.call_id)),
            ),
        )],
        EventKind::Abandoned if queued => {
            vec![record(
                at,
                queue_request(call, at).with("QueueResult", "hangup"),
            )]
        }
        // Taken out of the queue (timeout to voicemail, or a phone that
        // rang out): the flow says so on the action request.
        EventKind::Missed if queued => vec![record(
            at,
            queue_request(call, at)
                .with("QueueResult", "leave")
                .with("CallpulseOutcome", "voicemail"),
        )],
        EventKind::CallbackRequested => vec![record(
            at,
            queue_request(call, at)
                .with("QueueResult", "leave")
                .with("CallpulseOutcome", "callback_requested"),
        )],
        // Lines closed: <Reject reason="busy">.
        EventKind::Missed | EventKind::Abandoned => {
            let status = if event.kind == EventKind::Missed {
                "busy"
            } else {
                "canceled"
            };
            vec![record(at, status_callback(call, status, at))]
        }
        // Hung up in the menu: the receiver tags the completed callback.
        EventKind::IvrEnded => vec![record(
            at,
            status_callback(call, "completed", at).with("CallpulseOutcome", "ivr_ended"),
        )],
        // <Dial> to 111: the leg's terminal callback, then the caller's.
        EventKind::Diverted111 => {
            let seconds = seconds_between(call.hash("111-call"), 60, 900);
            let end = floor_seconds(at) + seconds;
            let from = call
                .caller
                .as_deref()
                .map_or_else(|| "anonymous".to_string(), e164);
            let leg = Params(Vec::with_capacity(12))
                .with("AccountSid", call.ids.twilio_account.clone())
                .with("ApiVersion", "2010-04-01")
                .with("CallDuration", seconds.to_string())
                .with("CallSid", call_sid(&format!("{}#111", call.call_id)))
                .with("CallStatus", "completed")
                .with("CallbackSource", "call-progress-events")
                .with("Called", NHS_111)
                .with("Direction", "outbound-dial")
                .with("From", from)
                .with("ParentCallSid", call_sid(&call.call_id))
                .with("SequenceNumber", "3")
                .with("Timestamp", rfc2822(end))
                .with("To", NHS_111);
            vec![
                record(end * 1000, leg),
                record(end * 1000, status_callback(call, "completed", end * 1000)),
            ]
        }
        EventKind::Ended => {
            let mut out = Vec::with_capacity(2);
            if call.first(EventKind::Answered).is_some() {
                // The <Enqueue action> of a bridged call comes when the bridge ends.
                out.push(record(
                    at,
                    queue_request(call, at).with("QueueResult", "bridged"),
                ));
            }
            out.push(record(at, status_callback(call, "completed", at)));
            out
        }
        EventKind::CallbackMade | EventKind::Divert111On | EventKind::Divert111Off => Vec::new(),
    }
}

/// A callback call placed through the REST API, tagged with the call it
/// returns: its terminal status callback.
pub(crate) fn callback(call: &Call, attempt: u32, event: &CallEvent) -> Out {
    let seconds = seconds_between(call.hash(&format!("callback-{attempt}")), 45, 400);
    let end = floor_seconds(event.at.0) + seconds;
    let params = Params(Vec::with_capacity(14))
        .with("AccountSid", call.ids.twilio_account.clone())
        .with("ApiVersion", "2010-04-01")
        .with("CallDuration", seconds.to_string())
        .with(
            "CallSid",
            call_sid(&format!("{}#callback{attempt}", call.call_id)),
        )
        .with("CallStatus", "completed")
        .with("CallbackSource", "call-progress-events")
        .with("Called", e164(&call.callback_number()))
        .with("CallpulseOriginalCallSid", call_sid(&call.call_id))
        .with("Direction", "outbound-api")
        .with("From", call.ids.e164.clone())
        .with("SequenceNumber", "3")
        .with("Timestamp", rfc2822(end))
        .with("To", e164(&call.callback_number()));
    vec![record(end * 1000, params)]
}
