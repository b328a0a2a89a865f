//! `twilio`: Twilio Programmable Voice webhooks (docs/adapters.md (twilio)).
//!
//! One record is one webhook's parameters: a form body over HTTP
//! ([`adapt_form`]), or one JSON object per line in files ([`adapt_record`]),
//! as the practice's webhook receiver logs them. The kinds of record:
//!
//! - the incoming-call request and status callbacks (`CallStatus`,
//!   `Direction`, `Timestamp`, `CallDuration`, `ParentCallSid` ...);
//! - `<Enqueue>` `waitUrl` requests (`QueuePosition`, `QueueTime`) and the
//!   `<Enqueue>` `action` callback (`QueueResult`, `QueueTime`);
//! - the `<Queue url>` request Twilio makes on the caller's leg as staff
//!   dequeue it (`DequeingCallSid`): the moment staff answer;
//! - two parameters of our own that the practice's call flow adds where only
//!   the flow knows the answer: `CallpulseOutcome` (what the call came to:
//!   a menu ending, a callback booking, voicemail ...) and
//!   `CallpulseOriginalCallSid` (on a callback call: the call it returns).
//!
//! Each record is mapped on its own, without state: a record gives only the
//! facts it proves. Twilio answering a call with TwiML (`in-progress`) is
//! not staff answering, and a call that completes is not assumed to have
//! ended in the menu: a speculative outcome would lose to the real one and
//! show up as a conflict.

use std::borrow::Cow;

use callpulse_core::{CallEvent, EventKind, Timestamp};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::file::MAX_RECORD_BYTES;
use crate::ids;
use crate::redact::redact_numbers;
use crate::timefmt;
use crate::{AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "twilio";

/// The call flow's own word on what the call came to (see the module docs).
pub const OUTCOME_PARAM: &str = "CallpulseOutcome";
/// On a callback call (`outbound-api`): the `CallSid` of the call it returns.
pub const ORIGINAL_CALL_PARAM: &str = "CallpulseOriginalCallSid";

/// The longest `CallDuration` or `QueueTime` we accept: a week, in seconds.
const MAX_SECONDS: i64 = 7 * 24 * 3600;

/// One file record: a JSON object of a webhook's parameters. Values are
/// strings as Twilio sends them; numbers and booleans a logger wrote
/// natively are read as their text, `null` as absent.
pub fn adapt_record(record: &str, ctx: &AdaptContext<'_>) -> Adapted {
    let value: serde_json::Value =
        serde_json::from_str(record).map_err(|err| AdaptError::malformed("JSON", err))?;
    let serde_json::Value::Object(object) = value else {
        return Err(AdaptError::malformed(
            "JSON",
            "expected an object of webhook parameters",
        ));
    };
    let mut params = Vec::with_capacity(object.len());
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            serde_json::Value::Null => continue,
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(AdaptError::field(
                    key.chars().take(64).collect::<String>(),
                    "must be a string, as webhook parameters are",
                ));
            }
        };
        params.push((key, text));
    }
    adapt_params(&params, ctx)
}

/// One webhook over HTTP: an `application/x-www-form-urlencoded` body.
/// Records without a `Timestamp` of their own take `ctx.received_at`.
pub fn adapt_form(body: &str, ctx: &AdaptContext<'_>) -> Adapted {
    if body.len() > MAX_RECORD_BYTES {
        return Err(AdaptError::TooLarge {
            size: body.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(body).map_err(|err| AdaptError::malformed("form data", err))?;
    adapt_params(&params, ctx)
}

/// One webhook's parameters, however they arrived. The HTTP shell may add
/// the callback URL's query parameters here (where a call flow puts
/// `CallpulseOutcome` or `CallpulseOriginalCallSid`); the first occurrence
/// of a name counts.
pub fn adapt_params(params: &[(String, String)], ctx: &AdaptContext<'_>) -> Adapted {
    let params = Params(params);
    let call_sid = params.require("CallSid")?;
    let tag = params.get(OUTCOME_PARAM).map(parse_tag).transpose()?;
    let mut out = Out::new(&params, ctx);

    let native = if params.get("DequeingCallSid").is_some() {
        // `<Queue url>`: requested on the caller's leg as staff dequeue it.
        out.caller_leg();
        Native::Settled {
            proves: EventKind::Answered,
            emit: true,
        }
    } else if let Some(result) = params.get("QueueResult") {
        out.caller_leg();
        queue_result(result)?
    } else if params.get("QueuePosition").is_some() {
        out.caller_leg();
        wait_url(&params, &mut out, call_sid)?;
        Native::Nothing
    } else {
        let status = call_status(params.require("CallStatus")?)?;
        match direction(params.require("Direction")?)? {
            // A member of staff calling in from a Twilio Voice SDK client, not a patient.
            Direction::Inbound if params.get("From").is_some_and(is_client) => {
                return Ok(Vec::new())
            }
            Direction::Inbound => inbound(&params, &mut out, call_sid, status)?,
            Direction::OutboundDial => {
                if tag.is_some() {
                    return Err(tag_not_here("a <Dial> leg (Direction outbound-dial)"));
                }
                return dial_leg(&params, out, status);
            }
            Direction::OutboundApi => {
                if tag.is_some() {
                    return Err(tag_not_here("an outbound call (Direction outbound-api)"));
                }
                return callback_call(&params, out, call_sid, status);
            }
            Direction::Trunking => return Ok(Vec::new()),
        }
    };

    let outcome = match (native, tag) {
        (Native::Nothing, None) => None,
        (Native::Nothing | Native::Continues(_), Some(tag)) => tag,
        (Native::Continues(kind), None) => kind,
        (Native::Settled { proves, emit }, tag) => {
            if let Some(Some(tagged)) = tag {
                if tagged != proves {
                    return Err(AdaptError::field(
                        OUTCOME_PARAM,
                        format!(
                            "`{}` contradicts what Twilio reports for this record (`{}`)",
                            tagged.as_str(),
                            proves.as_str()
                        ),
                    ));
                }
            }
            emit.then_some(proves)
        }
    };
    if let Some(kind) = outcome {
        let at = out.time()?;
        out.push(call_sid, kind, &[call_sid, kind.as_str()], at, None, None)?;
    }
    Ok(out.events)
}

/// Validates an `X-Twilio-Signature` as Twilio documents it: the full URL
/// the webhook was sent to (with its query string), then every POST
/// parameter sorted by name (byte order, case-sensitive), each as name then
/// value with no separators; HMAC-SHA1 of that under the account's auth
/// token, base64. For a GET request pass no params (they are in the URL).
/// The comparison is constant-time.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature_b64: &str,
) -> bool {
    use base64::Engine as _;
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim())
    else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return false;
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(&signature).is_ok()
}

/// What one record proves about the call's outcome, before the flow's tag.
enum Native {
    /// Nothing: a tag adds the outcome.
    Nothing,
    /// The caller is still on the line and the flow goes on: this is the
    /// outcome unless the flow's tag, on this same record, says otherwise.
    Continues(Option<EventKind>),
    /// Settled by Twilio itself (the caller hung up, staff answered): a
    /// tag may only agree. `emit` is false when the record cannot place
    /// the outcome in time (a bridged call's action comes after the talk).
    Settled { proves: EventKind, emit: bool },
}

/// `<Enqueue action>`: why the call left the queue.
fn queue_result(result: &str) -> Result<Native, AdaptError> {
    Ok(match result.to_ascii_lowercase().as_str() {
        // The caller hung up while waiting.
        "hangup" => Native::Settled {
            proves: EventKind::Abandoned,
            emit: true,
        },
        // Staff dequeued the call but the caller hung up before the bridge.
        "bridging-in-process" => Native::Settled {
            proves: EventKind::Abandoned,
            emit: true,
        },
        // Staff answered; this request comes when the bridge ends, so the
        // answer's time comes from the `<Queue url>` request or a Dial leg.
        "bridged" | "redirected-from-bridged" => Native::Settled {
            proves: EventKind::Answered,
            emit: false,
        },
        // The flow took the caller out of the queue (<Leave>: a timeout,
        // the line closing, voicemail), or it could not join: missed, unless
        // the flow's tag says what it did instead (a callback booking, an
        // overflow queue: `continue`).
        "leave" | "queue-full" | "error" | "system-error" => {
            Native::Continues(Some(EventKind::Missed))
        }
        // Moved out of the queue by the REST API: what follows is the flow's.
        "redirected" => Native::Continues(None),
        _ => {
            return Err(unknown_value(
                "QueueResult",
                result,
                "bridged, hangup, leave, queue-full, ...",
            ))
        }
    })
}

/// `<Enqueue waitUrl>`: the first request of a call (`QueueTime` 0) is the
/// moment it joined the queue; later ones repeat while it waits.
fn wait_url(params: &Params<'_>, out: &mut Out<'_, '_>, call_sid: &str) -> Result<(), AdaptError> {
    let position: u32 = params
        .require("QueuePosition")?
        .parse()
        .map_err(|_| AdaptError::field("QueuePosition", "not a whole number"))?;
    let queue_time = seconds(params, "QueueTime")?;
    if queue_time == 0 {
        let at = out.time()?;
        let queue = params.get("QueueSid").unwrap_or("");
        out.push(
            call_sid,
            EventKind::Queued,
            &[call_sid, "queued", queue],
            at,
            None,
            Some(position),
        )?;
    }
    Ok(())
}

/// The caller's own call: the incoming-call request and its status callbacks.
fn inbound(
    params: &Params<'_>,
    out: &mut Out<'_, '_>,
    call_sid: &str,
    status: CallStatus,
) -> Result<Native, AdaptError> {
    out.caller_leg();
    Ok(match status {
        CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing => {
            let at = out.time()?;
            let caller = out
                .ctx
                .pseudonymiser
                .caller(params.get("From").map(ascii_only).as_deref());
            out.push(
                call_sid,
                EventKind::Offered,
                &[call_sid, "offered"],
                at,
                caller,
                None,
            )?;
            Native::Nothing
        }
        // Twilio answered with TwiML: the menu is running, nobody has answered.
        CallStatus::InProgress => Native::Nothing,
        CallStatus::Completed => {
            ended(out, call_sid)?;
            Native::Nothing
        }
        // Rejected (<Reject>: lines closed, blocked) or not answered by Twilio.
        CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed => {
            ended(out, call_sid)?;
            Native::Settled {
                proves: EventKind::Missed,
                emit: true,
            }
        }
        // The caller hung up before Twilio answered.
        CallStatus::Canceled => {
            ended(out, call_sid)?;
            Native::Settled {
                proves: EventKind::Abandoned,
                emit: true,
            }
        }
    })
}

fn ended(out: &mut Out<'_, '_>, call_sid: &str) -> Result<(), AdaptError> {
    let at = out.time()?;
    out.push(
        call_sid,
        EventKind::Ended,
        &[call_sid, "ended"],
        at,
        None,
        None,
    )
}

/// A `<Dial>` child leg (`outbound-dial`) of the caller's call: to NHS 111,
/// a diversion; to anyone else (a reception phone, a Voice SDK client), a
/// member of staff answering when the leg completes. Only the terminal
/// callback, which Twilio always sends, is used, so that subscribing to
/// more events gives no duplicates.
fn dial_leg(params: &Params<'_>, mut out: Out<'_, '_>, status: CallStatus) -> Adapted {
    let parent = params.require("ParentCallSid")?;
    let to = params
        .get("To")
        .or_else(|| params.get("Called"))
        .unwrap_or("");
    // The leg's From is, by default, the caller's number: never a key here.
    out.keys(&["AccountSid"]);
    let to_111 = out.ctx.mapping.is_111(to);
    match status {
        CallStatus::Completed => {
            let at = minus_seconds(out.time()?, seconds(params, "CallDuration")?)?;
            let kind = if to_111 {
                EventKind::Diverted111
            } else {
                EventKind::Answered
            };
            out.push(parent, kind, &[parent, kind.as_str()], at, None, None)?;
        }
        CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed | CallStatus::Canceled
            if to_111 =>
        {
            let at = out.time()?;
            out.push(
                parent,
                EventKind::Diverted111,
                &[parent, "diverted_111"],
                at,
                None,
                None,
            )?;
        }
        // A staff phone that rang out or was busy: the flow goes on.
        _ => {}
    }
    Ok(out.events)
}

/// An outbound call made through the REST API: a callback when the
/// practice's callback flow names the original call in
/// `CallpulseOriginalCallSid`; any other outbound call gives nothing.
fn callback_call(
    params: &Params<'_>,
    mut out: Out<'_, '_>,
    call_sid: &str,
    status: CallStatus,
) -> Adapted {
    let Some(original) = params.get(ORIGINAL_CALL_PARAM) else {
        return Ok(Vec::new());
    };
    // The practice's number is From; To is the patient's.
    out.keys(&["From", "AccountSid"]);
    let at = match status {
        // Connected: when it was answered.
        CallStatus::Completed => minus_seconds(out.time()?, seconds(params, "CallDuration")?)?,
        // Rang without an answer: the attempt still counts as made.
        CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Canceled => out.time()?,
        // Never placed (`failed`), or not over yet: the terminal callback counts.
        _ => return Ok(Vec::new()),
    };
    out.push(
        original,
        EventKind::CallbackMade,
        &[call_sid, "callback_made"],
        at,
        None,
        None,
    )?;
    Ok(out.events)
}

/// The events of one record, with the practice and time looked up only
/// when an event needs them.
struct Out<'p, 'c> {
    params: &'p Params<'p>,
    ctx: &'p AdaptContext<'c>,
    candidates: Vec<(&'static str, Option<Cow<'p, str>>)>,
    practice: Option<String>,
    events: Vec<CallEvent>,
}

impl<'p, 'c> Out<'p, 'c> {
    fn new(params: &'p Params<'p>, ctx: &'p AdaptContext<'c>) -> Self {
        Out {
            params,
            ctx,
            candidates: Vec::new(),
            practice: None,
            events: Vec::new(),
        }
    }

    /// The caller's own leg: the practice's number is what they dialled.
    fn caller_leg(&mut self) {
        self.keys(&["To", "Called", "AccountSid"]);
    }

    /// The identifiers that find the practice, in order of preference.
    fn keys(&mut self, names: &[&'static str]) {
        self.candidates = names
            .iter()
            .map(|name| (*name, self.params.get(name).map(ascii_only)))
            .collect();
    }

    /// When the record happened: its `Timestamp` (RFC 2822, as Twilio
    /// writes it; RFC 3339 accepted from loggers), else when it arrived.
    fn time(&self) -> Result<Timestamp, AdaptError> {
        match self.params.get("Timestamp") {
            Some(text) => timefmt::rfc2822("Timestamp", text)
                .or_else(|err| timefmt::iso8601("Timestamp", text).map_err(|_| err)),
            None => self.ctx.received_at.ok_or_else(|| {
                AdaptError::field(
                    "Timestamp",
                    "required: this record carries no time of its own and did not arrive over HTTP",
                )
            }),
        }
    }

    fn push(
        &mut self,
        call_sid: &str,
        kind: EventKind,
        id_parts: &[&str],
        at: Timestamp,
        caller: Option<String>,
        queue_position: Option<u32>,
    ) -> Result<(), AdaptError> {
        if self.practice.is_none() {
            let candidates: Vec<(&'static str, Option<&str>)> = self
                .candidates
                .iter()
                .map(|(name, value)| (*name, value.as_deref()))
                .collect();
            self.practice = Some(self.ctx.mapping.practice_of_any(NAME, &candidates)?);
        }
        let practice = self.practice.clone().unwrap_or_default();
        if !self.ctx.mapping.is_known_practice(&practice) {
            return Err(AdaptError::field(
                self.candidates.first().map_or("To", |(name, _)| *name),
                format!(
                    "maps to `{practice}`, which is not a practice in the organisations directory"
                ),
            ));
        }
        let event = CallEvent {
            event_id: ids::event_id(NAME, id_parts),
            call_id: Some(ids::call_id(call_sid)),
            vendor: NAME.to_string(),
            practice,
            kind,
            at,
            caller,
            queue_position,
        };
        event.validate()?;
        self.events.push(event);
        Ok(())
    }
}

/// A webhook's parameters: the first occurrence of a name, trimmed; empty is absent.
struct Params<'a>(&'a [(String, String)]);

impl<'a> Params<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    fn require(&self, name: &'static str) -> Result<&'a str, AdaptError> {
        self.get(name).ok_or_else(|| AdaptError::missing(name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Canceled,
    Failed,
}

fn call_status(text: &str) -> Result<CallStatus, AdaptError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "queued" => CallStatus::Queued,
        "initiated" => CallStatus::Initiated,
        "ringing" => CallStatus::Ringing,
        "in-progress" | "answered" => CallStatus::InProgress,
        "completed" => CallStatus::Completed,
        "busy" => CallStatus::Busy,
        "no-answer" => CallStatus::NoAnswer,
        "canceled" | "cancelled" => CallStatus::Canceled,
        "failed" => CallStatus::Failed,
        _ => {
            return Err(unknown_value(
                "CallStatus",
                text,
                "queued, ringing, in-progress, completed, ...",
            ))
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Inbound,
    OutboundApi,
    OutboundDial,
    /// Elastic SIP Trunking legs: not Programmable Voice call flows.
    Trunking,
}

fn direction(text: &str) -> Result<Direction, AdaptError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "inbound" => Direction::Inbound,
        "outbound-api" => Direction::OutboundApi,
        "outbound-dial" => Direction::OutboundDial,
        "trunking-originating" | "trunking-terminating" => Direction::Trunking,
        _ => {
            return Err(unknown_value(
                "Direction",
                text,
                "inbound, outbound-api, outbound-dial",
            ))
        }
    })
}

/// `CallpulseOutcome`: `Some(kind)`, or `None` for `continue`.
fn parse_tag(text: &str) -> Result<Option<EventKind>, AdaptError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "ivr_ended" => Some(EventKind::IvrEnded),
        // `callback` and `closed` as the Amazon Connect flow attribute spells them.
        "callback_requested" | "callback" => Some(EventKind::CallbackRequested),
        "missed" | "voicemail" | "closed" => Some(EventKind::Missed),
        "diverted_111" => Some(EventKind::Diverted111),
        "continue" => None,
        _ => {
            return Err(unknown_value(
                OUTCOME_PARAM,
                text,
                "ivr_ended, callback_requested, voicemail, missed, closed, diverted_111, continue",
            ))
        }
    })
}

/// Identifiers as the number normaliser can take them: it slices the text's
/// first bytes looking for `tel:` and `sip:` and would panic inside a
/// multi-byte character, so anything not ASCII (never a number, an account
/// or a call id) is spelt out as Unicode escapes first.
fn ascii_only(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|ch| {
                if ch.is_ascii() {
                    ch.to_string()
                } else {
                    ch.escape_unicode().to_string()
                }
            })
            .collect(),
    )
}

fn is_client(identity: &str) -> bool {
    identity
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("client:"))
}

fn tag_not_here(what: &str) -> AdaptError {
    AdaptError::field(
        OUTCOME_PARAM,
        format!("belongs on the caller's own call, not on {what}"),
    )
}

/// A whole number of seconds, 0 to a week.
fn seconds(params: &Params<'_>, name: &'static str) -> Result<i64, AdaptError> {
    let value: i64 = params
        .require(name)?
        .parse()
        .map_err(|_| AdaptError::field(name, "not a whole number of seconds"))?;
    if !(0..=MAX_SECONDS).contains(&value) {
        return Err(AdaptError::field(name, "outside 0 to 604800 seconds"));
    }
    Ok(value)
}

fn minus_seconds(at: Timestamp, seconds: i64) -> Result<Timestamp, AdaptError> {
    let at = Timestamp::from_millis(at.millis() - seconds * 1000);
    if at < callpulse_core::time::EARLIEST {
        return Err(AdaptError::field(
            "CallDuration",
            "puts the start before 2000-01-01",
        ));
    }
    Ok(at)
}

/// An error quoting a bad value, cut short and with anything like a phone number masked.
fn unknown_value(field: &'static str, value: &str, expected: &str) -> AdaptError {
    let shown: String = value.chars().take(40).collect();
    AdaptError::field(
        field,
        format!("`{}` is not one of {expected}", redact_numbers(&shown)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PracticeMapping, Pseudonymiser};
    use proptest::prelude::*;

    const MAPPING: &str = r#"
[divert_111]
numbers = ["111"]

[vendors.twilio]
"+441632960001" = "A81001"
"AC0000000000000000000000000000a810" = "A81001"
"#;
    const ACCOUNT: &str = "AC0000000000000000000000000000a810";

    fn with_ctx<T>(received_at: Option<&str>, f: impl FnOnce(&AdaptContext<'_>) -> T) -> T {
        let mapping = PracticeMapping::from_toml(MAPPING).unwrap();
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: received_at.map(|t| Timestamp::parse_rfc3339(t).unwrap()),
        };
        f(&ctx)
    }

    fn record(pairs: &[(&str, &str)]) -> String {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    fn caller_leg(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs = vec![
            ("CallSid", "CA01"),
            ("AccountSid", ACCOUNT),
            ("From", "+447700900123"),
            ("Caller", "+447700900123"),
            ("To", "+441632960001"),
            ("Called", "+441632960001"),
            ("Direction", "inbound"),
        ];
        pairs.extend_from_slice(extra);
        pairs
    }

    fn adapt(pairs: &[(&str, &str)]) -> Adapted {
        with_ctx(None, |ctx| adapt_record(&record(pairs), ctx))
    }

    fn summary(events: &[CallEvent]) -> Vec<(String, &'static str, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.call_id.clone().unwrap(),
                    e.kind.as_str(),
                    e.at.to_rfc3339_seconds(),
                )
            })
            .collect()
    }

    #[test]
    fn the_incoming_call_is_offered_with_a_pseudonymous_caller() {
        let events = adapt(&caller_leg(&[
            ("CallStatus", "ringing"),
            ("Timestamp", "Mon, 23 Nov 2026 08:00:01 +0000"),
        ]))
        .unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "offered", "2026-11-23T08:00:01Z".into())]
        );
        assert_eq!(events[0].practice, "A81001");
        assert_eq!(events[0].event_id, "twilio:CA01:offered");
        let caller = events[0].caller.as_deref().unwrap();
        assert_eq!(
            Some(caller),
            Pseudonymiser::demo()
                .caller(Some("07700 900123"))
                .as_deref()
        );
        assert!(!events[0].to_json().contains("7700"));
    }

    #[test]
    fn twilio_answering_with_twiml_is_not_staff_answering() {
        let events = adapt(&caller_leg(&[
            ("CallStatus", "in-progress"),
            ("Timestamp", "Mon, 23 Nov 2026 08:00:02 +0000"),
        ]))
        .unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn withheld_callers_have_no_pseudonym() {
        for withheld in ["anonymous", "+266696687", ""] {
            let mut pairs = caller_leg(&[
                ("CallStatus", "ringing"),
                ("Timestamp", "Mon, 23 Nov 2026 08:00:01 +0000"),
            ]);
            pairs[2].1 = withheld;
            let events = adapt(&pairs).unwrap();
            assert_eq!(events.len(), 1, "{withheld}");
            assert_eq!(events[0].caller, None, "{withheld}");
        }
    }

    #[test]
    fn the_first_wait_url_request_is_the_queue_join() {
        let first = caller_leg(&[
            ("QueueSid", "QU01"),
            ("QueuePosition", "3"),
            ("QueueTime", "0"),
            ("AvgQueueTime", "95"),
            ("CurrentQueueSize", "3"),
            ("CallStatus", "in-progress"),
        ]);
        // Over HTTP the arrival time places it.
        let events = with_ctx(Some("2026-11-23T08:00:30Z"), |ctx| {
            adapt_record(&record(&first), ctx)
        })
        .unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "queued", "2026-11-23T08:00:30Z".into())]
        );
        assert_eq!(events[0].queue_position, Some(3));
        // In a file, without a Timestamp, it is rejected naming the field.
        assert_eq!(adapt(&first).unwrap_err().field_name(), Some("Timestamp"));
        // Later requests repeat while the call waits: nothing new, no time needed.
        let mut later = first.clone();
        later.retain(|(k, _)| *k != "QueueTime");
        later.push(("QueueTime", "45"));
        assert!(adapt(&later).unwrap().is_empty());
    }

    #[test]
    fn staff_answer_when_the_queued_call_is_dequeued() {
        let dequeued = caller_leg(&[
            ("QueueSid", "QU01"),
            ("QueueTime", "152"),
            ("DequeingCallSid", "CA99"),
            ("CallStatus", "in-progress"),
        ]);
        let events = with_ctx(Some("2026-11-23T08:03:02Z"), |ctx| {
            adapt_record(&record(&dequeued), ctx)
        })
        .unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "answered", "2026-11-23T08:03:02Z".into())]
        );
        // The bridged action callback arrives after the talk: it adds nothing.
        let bridged = caller_leg(&[
            ("QueueSid", "QU01"),
            ("QueueTime", "152"),
            ("QueueResult", "bridged"),
        ]);
        assert!(with_ctx(Some("2026-11-23T08:09:00Z"), |ctx| adapt_record(
            &record(&bridged),
            ctx
        ))
        .unwrap()
        .is_empty());
    }

    #[test]
    fn queue_results_map_onto_outcomes() {
        let cases = [
            ("hangup", Some("abandoned")),
            ("bridging-in-process", Some("abandoned")),
            ("leave", Some("missed")),
            ("queue-full", Some("missed")),
            ("error", Some("missed")),
            ("system-error", Some("missed")),
            ("redirected", None),
            ("bridged", None),
            ("redirected-from-bridged", None),
        ];
        for (result, kind) in cases {
            let pairs = caller_leg(&[
                ("QueueSid", "QU01"),
                ("QueueTime", "60"),
                ("QueueResult", result),
            ]);
            let events = with_ctx(Some("2026-11-23T08:02:00Z"), |ctx| {
                adapt_record(&record(&pairs), ctx)
            })
            .unwrap();
            assert_eq!(events.first().map(|e| e.kind.as_str()), kind, "{result}");
            assert!(events.len() <= 1);
        }
        let bad = caller_leg(&[("QueueResult", "teleported")]);
        assert_eq!(adapt(&bad).unwrap_err().field_name(), Some("QueueResult"));
    }

    #[test]
    fn the_flow_tag_replaces_a_leave_and_cannot_contradict_a_hangup() {
        let booked = caller_leg(&[
            ("QueueSid", "QU01"),
            ("QueueTime", "60"),
            ("QueueResult", "leave"),
            (OUTCOME_PARAM, "callback_requested"),
        ]);
        let events = with_ctx(Some("2026-11-23T08:02:00Z"), |ctx| {
            adapt_record(&record(&booked), ctx)
        })
        .unwrap();
        assert_eq!(
            summary(&events),
            [(
                "CA01".into(),
                "callback_requested",
                "2026-11-23T08:02:00Z".into()
            )]
        );
        let overflow = caller_leg(&[("QueueResult", "queue-full"), (OUTCOME_PARAM, "continue")]);
        assert!(adapt(&overflow).unwrap().is_empty());
        let contradiction = caller_leg(&[
            ("QueueResult", "hangup"),
            (OUTCOME_PARAM, "callback_requested"),
        ]);
        assert_eq!(
            adapt(&contradiction).unwrap_err().field_name(),
            Some(OUTCOME_PARAM)
        );
        let unknown = caller_leg(&[("CallStatus", "completed"), (OUTCOME_PARAM, "07700900123")]);
        let err = adapt(&unknown).unwrap_err();
        assert_eq!(err.field_name(), Some(OUTCOME_PARAM));
        assert!(!err.to_string().contains("7700"), "{err}");
    }

    #[test]
    fn completed_calls_end_and_a_menu_ending_needs_the_flow_tag() {
        let completed = caller_leg(&[
            ("CallStatus", "completed"),
            ("CallDuration", "40"),
            ("Timestamp", "Mon, 23 Nov 2026 08:00:41 +0000"),
        ]);
        let events = adapt(&completed).unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "ended", "2026-11-23T08:00:41Z".into())]
        );
        let mut tagged = completed.clone();
        tagged.push((OUTCOME_PARAM, "ivr_ended"));
        let events = adapt(&tagged).unwrap();
        assert_eq!(
            summary(&events),
            [
                ("CA01".into(), "ended", "2026-11-23T08:00:41Z".into()),
                ("CA01".into(), "ivr_ended", "2026-11-23T08:00:41Z".into())
            ]
        );
    }

    #[test]
    fn calls_twilio_never_answered_are_missed_or_abandoned() {
        for (status, kind) in [
            ("busy", "missed"),
            ("no-answer", "missed"),
            ("failed", "missed"),
            ("canceled", "abandoned"),
        ] {
            let events = adapt(&caller_leg(&[
                ("CallStatus", status),
                ("Timestamp", "Mon, 23 Nov 2026 08:00:05 +0000"),
            ]))
            .unwrap();
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(kinds, ["ended", kind], "{status}");
        }
    }

    #[test]
    fn dial_legs_are_staff_answering_or_111_diversions_of_the_parent() {
        let leg = |to: &'static str, status: &'static str| {
            vec![
                ("CallSid", "CA02"),
                ("ParentCallSid", "CA01"),
                ("AccountSid", ACCOUNT),
                ("From", "+447700900123"),
                ("To", to),
                ("Direction", "outbound-dial"),
                ("CallStatus", status),
                ("CallDuration", "200"),
                ("Timestamp", "Mon, 23 Nov 2026 08:05:00 +0000"),
            ]
        };
        let events = adapt(&leg("client:reception-1", "completed")).unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "answered", "2026-11-23T08:01:40Z".into())]
        );
        assert_eq!(events[0].event_id, "twilio:CA01:answered");
        let events = adapt(&leg("111", "completed")).unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "diverted_111", "2026-11-23T08:01:40Z".into())]
        );
        let events = adapt(&leg("111", "no-answer")).unwrap();
        assert_eq!(events[0].kind, EventKind::Diverted111);
        assert!(adapt(&leg("+441632960555", "no-answer"))
            .unwrap()
            .is_empty());
        assert!(adapt(&leg("+441632960555", "in-progress"))
            .unwrap()
            .is_empty());
        let mut orphan = leg("111", "completed");
        orphan.retain(|(k, _)| *k != "ParentCallSid");
        assert_eq!(
            adapt(&orphan).unwrap_err().field_name(),
            Some("ParentCallSid")
        );
    }

    #[test]
    fn callback_calls_name_their_original_call() {
        let callback = |status: &'static str, original: Option<&'static str>| {
            let mut pairs = vec![
                ("CallSid", "CA05"),
                ("AccountSid", ACCOUNT),
                ("From", "+441632960001"),
                ("To", "+447700900123"),
                ("Direction", "outbound-api"),
                ("CallStatus", status),
                ("CallDuration", "90"),
                ("Timestamp", "Mon, 23 Nov 2026 10:01:30 +0000"),
            ];
            if let Some(original) = original {
                pairs.push((ORIGINAL_CALL_PARAM, original));
            }
            pairs
        };
        let events = adapt(&callback("completed", Some("CA01"))).unwrap();
        assert_eq!(
            summary(&events),
            [(
                "CA01".into(),
                "callback_made",
                "2026-11-23T10:00:00Z".into()
            )]
        );
        assert_eq!(events[0].event_id, "twilio:CA05:callback_made");
        assert_eq!(events[0].caller, None);
        assert_eq!(
            adapt(&callback("no-answer", Some("CA01"))).unwrap()[0]
                .at
                .to_rfc3339_seconds(),
            "2026-11-23T10:01:30Z"
        );
        assert!(adapt(&callback("failed", Some("CA01"))).unwrap().is_empty());
        assert!(adapt(&callback("ringing", Some("CA01")))
            .unwrap()
            .is_empty());
        // Other outbound calls are not callbacks.
        assert!(adapt(&callback("completed", None)).unwrap().is_empty());
    }

    #[test]
    fn staff_calls_from_voice_sdk_clients_are_not_offered() {
        let mut pairs = caller_leg(&[
            ("CallStatus", "ringing"),
            ("Timestamp", "Mon, 23 Nov 2026 08:00:01 +0000"),
        ]);
        pairs[2].1 = "client:reception-1";
        assert!(adapt(&pairs).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_field_and_never_show_the_caller() {
        let mut unknown = caller_leg(&[
            ("CallStatus", "ringing"),
            ("Timestamp", "Mon, 23 Nov 2026 08:00:01 +0000"),
        ]);
        unknown[1].1 = "AC0000000000000000000000000000ffff";
        unknown[4].1 = "+441632960099";
        unknown[5].1 = "+441632960099";
        let err = adapt(&unknown).unwrap_err();
        assert_eq!(
            (err.code(), err.field_name()),
            ("unmapped_practice", Some("To"))
        );
        assert!(!err.to_string().contains("7700"));
        let bad_status = caller_leg(&[("CallStatus", "+447700900123")]);
        let err = adapt(&bad_status).unwrap_err();
        assert_eq!(err.field_name(), Some("CallStatus"));
        assert!(!err.to_string().contains("7700900123"), "{err}");
        assert_eq!(
            adapt(&[("From", "+447700900123")])
                .unwrap_err()
                .field_name(),
            Some("CallSid")
        );
        let bad_time = caller_leg(&[("CallStatus", "ringing"), ("Timestamp", "yesterday")]);
        assert_eq!(
            adapt(&bad_time).unwrap_err().field_name(),
            Some("Timestamp")
        );
        let err = with_ctx(None, |ctx| adapt_record("{\"CallSid\": \"CA1\",", ctx)).unwrap_err();
        assert_eq!(err.code(), "malformed");
        let err = with_ctx(None, |ctx| adapt_record("[1, 2]", ctx)).unwrap_err();
        assert_eq!(err.code(), "malformed");
    }

    #[test]
    fn identifiers_that_are_not_ascii_are_rejected_not_a_panic() {
        let mut pairs = caller_leg(&[
            ("QueueResult", "hangup"),
            ("Timestamp", "Mon, 23 Nov 2026 08:03:00 +0000"),
        ]);
        pairs[1].1 = "\u{800}\u{86}";
        pairs[4].1 = "te\u{e9}:1";
        pairs[5].1 = "sip\u{e9}";
        assert_eq!(adapt(&pairs).unwrap_err().code(), "unmapped_practice");
        let mut offered = caller_leg(&[
            ("CallStatus", "ringing"),
            ("Timestamp", "Mon, 23 Nov 2026 08:00:01 +0000"),
        ]);
        offered[2].1 = "sip\u{e9}@example";
        assert!(adapt(&offered).unwrap()[0].caller.is_some());
    }

    #[test]
    fn re_sent_webhooks_give_identical_events() {
        let pairs = caller_leg(&[
            ("QueueResult", "hangup"),
            ("QueueTime", "75"),
            ("Timestamp", "Mon, 23 Nov 2026 08:03:00 +0000"),
        ]);
        assert_eq!(adapt(&pairs).unwrap(), adapt(&pairs).unwrap());
        assert_eq!(adapt(&pairs).unwrap()[0].event_id, "twilio:CA01:abandoned");
    }

    #[test]
    fn form_bodies_are_decoded() {
        let body =
            "CallSid=CA01&AccountSid=AC0000000000000000000000000000a810&From=%2B447700900123\
                    &To=%2B441632960001&Direction=inbound&CallStatus=ringing&ApiVersion=2010-04-01";
        let events = with_ctx(Some("2026-11-23T08:00:01Z"), |ctx| adapt_form(body, ctx)).unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "offered", "2026-11-23T08:00:01Z".into())]
        );
        assert_eq!(
            events[0].caller,
            Pseudonymiser::demo().caller(Some("+447700900123"))
        );
        // Status callbacks carry their own time, which wins over arrival.
        let body = "CallSid=CA01&To=%2B441632960001&Direction=inbound&CallStatus=completed\
                    &CallDuration=40&Timestamp=Mon%2C+23+Nov+2026+08%3A00%3A41+%2B0000";
        let events = with_ctx(Some("2026-11-23T08:00:45Z"), |ctx| adapt_form(body, ctx)).unwrap();
        assert_eq!(
            summary(&events),
            [("CA01".into(), "ended", "2026-11-23T08:00:41Z".into())]
        );
        let huge = "a".repeat(MAX_RECORD_BYTES + 1);
        assert!(matches!(
            with_ctx(None, |ctx| adapt_form(&huge, ctx)),
            Err(AdaptError::TooLarge { .. })
        ));
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signatures_match_twilios_documented_example() {
        // Twilio's request-validation example: auth token 12345, this URL and
        // these POST parameters sign as RSOYDt4T1cUTdK1PDd93/VVr8B8=.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = owned(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(verify_signature("12345", url, &params, signature));
        // Parameter order as received does not matter: they are sorted.
        let mut reversed = params.clone();
        reversed.reverse();
        assert!(verify_signature("12345", url, &reversed, signature));
        // A tampered parameter, URL, token or signature fails.
        let mut tampered = params.clone();
        tampered[2].1 = "1235".into();
        assert!(!verify_signature("12345", url, &tampered, signature));
        let mut extra = params.clone();
        extra.push(("CallpulseOutcome".into(), "ivr_ended".into()));
        assert!(!verify_signature("12345", url, &extra, signature));
        assert!(!verify_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            signature
        ));
        assert!(!verify_signature("12346", url, &params, signature));
        assert!(!verify_signature(
            "12345",
            url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B9="
        ));
        assert!(!verify_signature("12345", url, &params, "not base64!"));
        assert!(!verify_signature("12345", url, &params, ""));
    }

    const KEYS: [&str; 16] = [
        "CallSid",
        "AccountSid",
        "From",
        "To",
        "Called",
        "Direction",
        "CallStatus",
        "Timestamp",
        "CallDuration",
        "ParentCallSid",
        "QueueResult",
        "QueueTime",
        "QueuePosition",
        "DequeingCallSid",
        OUTCOME_PARAM,
        ORIGINAL_CALL_PARAM,
    ];

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            with_ctx(Some("2026-11-23T08:00:00Z"), |ctx| {
                let _ = adapt_record(&text, ctx);
                let _ = adapt_form(&text, ctx);
            });
        }

        #[test]
        fn arbitrary_webhooks_never_panic_nor_leak_the_caller(
            fields in proptest::collection::vec((0..KEYS.len(), prop_oneof![
                Just("+447700900123".to_string()),
                Just("+441632960001".to_string()),
                Just("111".to_string()),
                Just("inbound".to_string()), Just("outbound-dial".to_string()), Just("outbound-api".to_string()),
                Just("ringing".to_string()), Just("completed".to_string()), Just("no-answer".to_string()),
                Just("hangup".to_string()), Just("leave".to_string()), Just("bridged".to_string()),
                Just("0".to_string()), Just("99999999999999999999".to_string()), Just("-5".to_string()),
                Just("Mon, 23 Nov 2026 08:00:00 +0000".to_string()),
                Just("ivr_ended".to_string()), Just("CA01".to_string()),
                ".{0,30}",
            ]), 0..14),
            received in proptest::option::of(Just("2026-11-23T08:00:00Z")),
        ) {
            let params: Vec<(String, String)> =
                fields.into_iter().map(|(key, value)| (KEYS[key].to_string(), value)).collect();
            let body = serde_urlencoded::to_string(&params).unwrap();
            with_ctx(received, |ctx| {
                for result in [adapt_params(&params, ctx), adapt_form(&body, ctx)] {
                    match result {
                        Ok(events) => for event in events {
                            prop_assert!(event.validate().is_ok());
                            prop_assert!(!event.to_json().contains("7700900123"));
                        },
                        // A practice lookup quotes the dialled number it could not map,
                        // which on a real record is never the caller's.
                        Err(err) if err.code() == "unmapped_practice" => {}
                        Err(err) => prop_assert!(!err.to_string().contains("7700900123"), "{}", err),
                    }
                }
                Ok(())
            })?;
        }
    }
}
