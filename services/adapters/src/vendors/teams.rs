//! `teams`: Microsoft Graph call records (`microsoft.graph.callRecords.callRecord`),
//! one JSON object per line, fetched with `$expand=sessions($expand=segments)`.
//!
//! Teams call records have no queue semantics (domain.md, vendor formats),
//! so this adapter reads one thing from them: **outbound callbacks** made by
//! practice staff. Each distinct session in which a practice identity (a
//! user or a resource account) rang a PSTN number and the call connected
//! becomes one `callback_made` event. Everything else (internal calls and
//! meetings, inbound PSTN calls, attempts that never connected) gives no
//! events: it is not an error, there is just nothing in it for us.
//!
//! What cannot be known from a call record, and what we do about it, is
//! written down in `docs/adapters.md (teams)`. In short:
//!
//! - `call_id` is the call record's own `id`: Graph has no field that can
//!   carry the id of the inbound call being returned, so a Teams
//!   `callback_made` counts in `callbacks_made` but never yields a callback
//!   delay (metrics.md §2: the other end is missing).
//! - The practice comes from the organizer's identity (user object id, then
//!   resource account id, then tenant id) in the practice mapping; an
//!   unmapped organizer is an error, never a guess.
//! - `at` is the session's `startDateTime`: when the practice rang.
//! - The callee's number becomes a keyed pseudonym here and goes no further.

use std::collections::HashSet;

use callpulse_core::{CallEvent, EventKind, Timestamp};
use serde_json::{Map, Value};

use crate::pseudonym::normalise_e164;
use crate::{ids, timefmt, AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "teams";

/// Who is at one end of a session, as far as we care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party<'a> {
    /// A practice identity: a Teams user or a resource account (application instance).
    Practice,
    /// A PSTN number; `None` when the record carries no number for it.
    Phone(Option<&'a str>),
    /// Anything else (guest, bot, service endpoint, nothing at all).
    Other,
}

/// One connected outbound PSTN session, ready to become an event.
struct Callback<'a> {
    index: usize,
    session_id: &'a str,
    session: &'a Map<String, Value>,
    number: Option<&'a str>,
}

pub fn adapt_record(record: &str, ctx: &AdaptContext<'_>) -> Adapted {
    let value: Value =
        serde_json::from_str(record).map_err(|err| AdaptError::malformed("JSON", err))?;
    let Value::Object(root) = &value else {
        return Err(AdaptError::malformed(
            "JSON",
            "a call record must be a JSON object",
        ));
    };
    let record_id = required_str(root, "id", "id")?;

    let sessions: &[Value] = match root.get("sessions") {
        Some(Value::Array(sessions)) => sessions,
        None | Some(Value::Null) => {
            // Without sessions we cannot tell direction or whether a call
            // connected. A record that plainly has a PSTN party would be a
            // callback silently lost: reject it so the export gets fixed.
            if has_phone_participant(root) {
                return Err(AdaptError::field(
                    "sessions",
                    "required to tell whether a PSTN call connected; fetch call records with $expand=sessions($expand=segments)",
                ));
            }
            return Ok(vec![]);
        }
        Some(_) => return Err(AdaptError::field("sessions", "not an array")),
    };

    let callbacks = outbound_pstn_sessions(sessions)?;
    if callbacks.is_empty() {
        return Ok(vec![]);
    }

    let practice = practice_of(root, callbacks[0].session, ctx)?;
    let mut events = Vec::with_capacity(callbacks.len());
    for callback in callbacks {
        if !connected(callback.session) {
            continue;
        }
        let at = session_start(root, callback.session, callback.index)?;
        let event = CallEvent {
            event_id: ids::event_id(NAME, &[record_id, callback.session_id, "callback_made"]),
            call_id: Some(ids::call_id(record_id)),
            vendor: NAME.to_string(),
            practice: practice.clone(),
            kind: EventKind::CallbackMade,
            at,
            caller: ctx.pseudonymiser.caller(callback.number),
            queue_position: None,
        };
        event.validate()?;
        events.push(event);
    }
    Ok(events)
}

/// The sessions in which a practice identity rang a PSTN number, once each
/// (Graph may return one session more than once), in record order.
/// Connection is checked later, after the record's practice is known, so
/// that an unmapped organizer is reported even for a failed attempt.
fn outbound_pstn_sessions(sessions: &[Value]) -> Result<Vec<Callback<'_>>, AdaptError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (index, session) in sessions.iter().enumerate() {
        let Value::Object(session) = session else {
            return Err(AdaptError::field(
                format!("sessions[{index}]"),
                "not an object",
            ));
        };
        let caller = party(session.get("caller"));
        let Party::Phone(number) = party(session.get("callee")) else {
            continue;
        };
        if caller != Party::Practice {
            continue;
        }
        if session.get("isTest").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if !carries_audio(session) {
            continue;
        }
        if number.is_some_and(|number| !number.is_ascii()) {
            // Not a phone number; and the pseudonymiser must only see ASCII (see `reads_as_number`).
            return Err(AdaptError::field(
                format!("sessions[{index}].callee phone id"),
                "not a phone number",
            ));
        }
        let session_id = required_str(session, "id", &format!("sessions[{index}].id"))?;
        if !seen.insert(session_id) {
            continue;
        }
        out.push(Callback {
            index,
            session_id,
            session,
            number,
        });
    }
    Ok(out)
}

/// A session's modalities, when listed, must include audio.
fn carries_audio(session: &Map<String, Value>) -> bool {
    match session.get("modalities") {
        Some(Value::Array(modalities)) if !modalities.is_empty() => modalities
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case("audio"))),
        _ => true,
    }
}

/// Whether a session connected: no failure, or a failure mid-call (the
/// call was up, then dropped). A failure at call setup, or of a stage we
/// do not know, means it did not. A session without its own failure whose
/// segments all failed did not connect either.
fn connected(session: &Map<String, Value>) -> bool {
    if let Some(failed) = failure(session.get("failureInfo")) {
        return failed_midcall(failed);
    }
    match session.get("segments") {
        Some(Value::Array(segments)) if !segments.is_empty() => !segments.iter().all(|segment| {
            failure(segment.get("failureInfo")).is_some_and(|failed| !failed_midcall(failed))
        }),
        _ => true,
    }
}

/// `Some(failureInfo)` when a failure is recorded (anything but absent or null).
fn failure(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn failed_midcall(failure: &Value) -> bool {
    failure
        .get("stage")
        .and_then(Value::as_str)
        .is_some_and(|stage| stage.eq_ignore_ascii_case("midcall"))
}

/// When the practice rang: the session's start, or the record's when the
/// session has none.
fn session_start(
    root: &Map<String, Value>,
    session: &Map<String, Value>,
    index: usize,
) -> Result<Timestamp, AdaptError> {
    match session.get("startDateTime") {
        Some(Value::String(text)) => iso8601_at(format!("sessions[{index}].startDateTime"), text),
        None | Some(Value::Null) => match root.get("startDateTime") {
            Some(Value::String(text)) => iso8601_at("startDateTime".to_string(), text),
            None | Some(Value::Null) => Err(AdaptError::missing(format!(
                "sessions[{index}].startDateTime"
            ))),
            Some(_) => Err(AdaptError::field("startDateTime", "not a string")),
        },
        Some(_) => Err(AdaptError::field(
            format!("sessions[{index}].startDateTime"),
            "not a string",
        )),
    }
}

/// [`timefmt::iso8601`] with a field name built at run time.
fn iso8601_at(field: String, text: &str) -> Result<Timestamp, AdaptError> {
    timefmt::iso8601("startDateTime", text).map_err(|err| match err {
        AdaptError::Field { reason, .. } => AdaptError::field(field, reason),
        other => other,
    })
}

/// The practice of a record: its organizer's user object id, resource
/// account id or tenant id, in that order of preference, from
/// `organizer_v2` (or the deprecated `organizer`). A record without an
/// organizer falls back to the identity that placed the call.
fn practice_of(
    root: &Map<String, Value>,
    first_callback: &Map<String, Value>,
    ctx: &AdaptContext<'_>,
) -> Result<String, AdaptError> {
    let organizer = root
        .get("organizer_v2")
        .and_then(|o| o.get("identity"))
        .filter(|o| o.is_object())
        .or_else(|| root.get("organizer").filter(|o| o.is_object()));
    let practice = match organizer {
        Some(identity) => ctx.mapping.practice_of_any(
            NAME,
            &[
                ("organizer.user.id", nested_str(identity, &["user", "id"])),
                (
                    "organizer.applicationInstance.id",
                    nested_str(identity, &["applicationInstance", "id"]),
                ),
                (
                    "organizer.user.tenantId",
                    nested_str(identity, &["user", "tenantId"])
                        .or_else(|| nested_str(identity, &["applicationInstance", "tenantId"])),
                ),
            ],
        )?,
        None => {
            let caller = first_callback.get("caller");
            let identity = caller.and_then(|c| c.get("identity"));
            let associated = caller.and_then(|c| c.get("associatedIdentity"));
            ctx.mapping.practice_of_any(
                NAME,
                &[
                    (
                        "caller.identity.user.id",
                        identity.and_then(|i| nested_str(i, &["user", "id"])),
                    ),
                    (
                        "caller.identity.applicationInstance.id",
                        identity.and_then(|i| nested_str(i, &["applicationInstance", "id"])),
                    ),
                    (
                        "caller.associatedIdentity.id",
                        associated.and_then(|i| nested_str(i, &["id"])),
                    ),
                    (
                        "caller.identity.user.tenantId",
                        identity.and_then(|i| nested_str(i, &["user", "tenantId"])),
                    ),
                ],
            )?
        }
    };
    if !ctx.mapping.is_known_practice(&practice) {
        return Err(AdaptError::field(
            "organizer",
            format!(
                "mapped to `{practice}`, which is not a practice in the organisations directory"
            ),
        ));
    }
    Ok(practice)
}

/// Who an endpoint (`caller` / `callee` of a session) is. Reads the
/// identity set (`identity`, deprecated by Graph but still sent) and, when
/// that is absent, the newer single `associatedIdentity`.
fn party(endpoint: Option<&Value>) -> Party<'_> {
    let Some(endpoint) = endpoint.filter(|e| e.is_object()) else {
        return Party::Other;
    };
    if let Some(identity) = endpoint.get("identity").filter(|i| i.is_object()) {
        if present(identity.get("user")) || present(identity.get("applicationInstance")) {
            return Party::Practice;
        }
        if let Some(phone) = identity.get("phone").filter(|p| !p.is_null()) {
            return Party::Phone(phone.get("id").and_then(Value::as_str));
        }
        return Party::Other;
    }
    if let Some(associated) = endpoint.get("associatedIdentity").filter(|i| i.is_object()) {
        let odata_type = associated
            .get("@odata.type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        if odata_type.contains("phone") {
            return Party::Phone(associated.get("id").and_then(Value::as_str));
        }
        if odata_type.contains("applicationinstance")
            || odata_type.contains("useridentity")
            || associated
                .get("userPrincipalName")
                .is_some_and(Value::is_string)
        {
            return Party::Practice;
        }
    }
    Party::Other
}

fn present(value: Option<&Value>) -> bool {
    value.is_some_and(|v| v.is_object())
}

/// Whether `participants_v2` (or the deprecated `participants`) lists a PSTN number.
fn has_phone_participant(root: &Map<String, Value>) -> bool {
    let v2 = root
        .get("participants_v2")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("identity"));
    let v1 = root
        .get("participants")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    v2.chain(v1)
        .any(|identity| identity.get("phone").is_some_and(Value::is_object))
}

/// A string at `path`. Used for the identities that map to a practice,
/// which are GUIDs: anything that reads as a phone number is ignored, so an
/// "unmapped" error can never quote one.
fn nested_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
        .filter(|text| text.is_ascii() && !reads_as_number(text))
}

/// Whether text is a phone number. Only ASCII text can be one, and
/// `normalise_e164` must only ever see ASCII: it slices by bytes and would
/// panic inside a multi-byte character. (Graph ids are ASCII GUIDs, and the
/// practice mapping normalises every identifier it is asked about the same way.)
fn reads_as_number(text: &str) -> bool {
    text.is_ascii() && normalise_e164(text).is_some()
}

/// A required id (`id` of the record or of a session). Graph ids are GUIDs:
/// one that reads as a phone number is refused, so that a number can never
/// travel on as a `call_id` or `event_id`.
fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'a str, AdaptError> {
    match object.get(key) {
        Some(Value::String(text)) if reads_as_number(text) => Err(AdaptError::field(
            field.to_string(),
            "looks like a phone number, not a Graph id",
        )),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        None | Some(Value::Null) => Err(AdaptError::missing(field.to_string())),
        Some(Value::String(_)) => Err(AdaptError::field(field.to_string(), "must not be empty")),
        Some(_) => Err(AdaptError::field(field.to_string(), "not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PracticeMapping, Pseudonymiser};
    use proptest::prelude::*;
    use serde_json::json;

    const STAFF: &str = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
    const TENANT: &str = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d";
    const NUMBER: &str = "+447700900123";

    fn mapping() -> PracticeMapping {
        let mut mapping = PracticeMapping::default();
        mapping.insert(NAME, STAFF, "A81004");
        mapping
    }

    fn with_ctx<T>(f: impl FnOnce(&AdaptContext<'_>) -> T) -> T {
        let mapping = mapping();
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        f(&ctx)
    }

    fn staff() -> Value {
        json!({"user": {"id": STAFF, "displayName": "Reception 1", "tenantId": TENANT}})
    }

    fn session(id: &str, callee: Value) -> Value {
        json!({
            "id": id,
            "modalities": ["audio"],
            "startDateTime": "2026-11-23T10:15:02.1234567Z",
            "endDateTime": "2026-11-23T10:19:40.0000000Z",
            "isTest": false,
            "caller": {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint", "identity": staff()},
            "callee": {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint", "identity": callee},
        })
    }

    fn record(sessions: Value) -> String {
        json!({
            "id": "rec-1",
            "version": 1,
            "type": "peerToPeer",
            "modalities": ["audio"],
            "startDateTime": "2026-11-23T10:15:00.0000000Z",
            "endDateTime": "2026-11-23T10:19:40.0000000Z",
            "organizer_v2": {"id": STAFF, "identity": staff()},
            "sessions": sessions,
        })
        .to_string()
    }

    fn phone(number: &str) -> Value {
        json!({"phone": {"id": number, "displayName": null}})
    }

    #[test]
    fn a_connected_callback_is_one_callback_made() {
        let line = record(json!([session("s-1", phone(NUMBER))]));
        let events = with_ctx(|ctx| adapt_record(&line, ctx)).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.kind, EventKind::CallbackMade);
        assert_eq!(event.practice, "A81004");
        assert_eq!(event.call_id.as_deref(), Some("rec-1"));
        assert_eq!(event.event_id, "teams:rec-1:s-1:callback_made");
        assert_eq!(event.at.to_rfc3339_millis(), "2026-11-23T10:15:02.123Z");
        assert_eq!(
            event.caller,
            Pseudonymiser::demo().caller(Some("07700 900123"))
        );
        assert!(!event.to_json().contains("7700900123"));
    }

    #[test]
    fn repeated_sessions_count_once_and_ids_are_stable() {
        let line = record(json!([
            session("s-1", phone(NUMBER)),
            session("s-1", phone(NUMBER))
        ]));
        let a = with_ctx(|ctx| adapt_record(&line, ctx)).unwrap();
        let b = with_ctx(|ctx| adapt_record(&line, ctx)).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a, b);
    }

    #[test]
    fn attempts_that_never_connected_give_nothing() {
        let mut failed = session("s-1", phone(NUMBER));
        failed["failureInfo"] = json!({"stage": "callSetup", "reason": "CallerHungUp"});
        let line = record(json!([failed]));
        assert_eq!(with_ctx(|ctx| adapt_record(&line, ctx)).unwrap(), vec![]);

        let mut unknown = session("s-1", phone(NUMBER));
        unknown["failureInfo"] = json!({"stage": "unknown"});
        let line = record(json!([unknown]));
        assert_eq!(with_ctx(|ctx| adapt_record(&line, ctx)).unwrap(), vec![]);

        let mut segments_failed = session("s-1", phone(NUMBER));
        segments_failed["segments"] = json!([{"id": "g-1", "failureInfo": {"stage": "callSetup"}}]);
        let line = record(json!([segments_failed]));
        assert_eq!(with_ctx(|ctx| adapt_record(&line, ctx)).unwrap(), vec![]);
    }

    #[test]
    fn a_call_dropped_midcall_did_connect() {
        let mut dropped = session("s-1", phone(NUMBER));
        dropped["failureInfo"] = json!({"stage": "midcall", "reason": "MediaTimeout"});
        let line = record(json!([dropped]));
        assert_eq!(with_ctx(|ctx| adapt_record(&line, ctx)).unwrap().len(), 1);
    }

    #[test]
    fn no_number_means_no_caller_but_still_a_callback() {
        for callee in [
            json!({"phone": {"displayName": "External"}}),
            phone("anonymous"),
        ] {
            let line = record(json!([session("s-1", callee)]));
            let events = with_ctx(|ctx| adapt_record(&line, ctx)).unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].caller, None);
        }
    }

    #[test]
    fn nothing_for_us_is_not_an_error() {
        // An internal call between two staff members.
        let internal = record(json!([session("s-1", staff())]));
        assert_eq!(
            with_ctx(|ctx| adapt_record(&internal, ctx)).unwrap(),
            vec![]
        );
        // An inbound PSTN call: not mapped (docs/adapters.md (teams)).
        let mut inbound = session("s-1", staff());
        inbound["caller"] = json!({"identity": phone(NUMBER)});
        let line = record(json!([inbound]));
        assert_eq!(with_ctx(|ctx| adapt_record(&line, ctx)).unwrap(), vec![]);
        // A meeting without sessions or PSTN participants.
        let meeting = json!({"id": "m-1", "type": "groupCall", "participants_v2": [{"id": STAFF, "identity": staff()}]});
        assert_eq!(
            with_ctx(|ctx| adapt_record(&meeting.to_string(), ctx)).unwrap(),
            vec![]
        );
        // A video-only session to a phone is not a phone call we count.
        let mut video = session("s-1", phone(NUMBER));
        video["modalities"] = json!(["video"]);
        assert_eq!(
            with_ctx(|ctx| adapt_record(&record(json!([video])), ctx)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn errors_name_the_field_and_never_quote_the_number() {
        let mut unknown =
            serde_json::from_str::<Value>(&record(json!([session("s-1", phone(NUMBER))]))).unwrap();
        unknown["organizer_v2"]["identity"]["user"]["id"] =
            json!("00000000-aaaa-4bbb-8ccc-dddddddddddd");
        unknown["organizer_v2"]["identity"]["user"]["tenantId"] =
            json!("11111111-aaaa-4bbb-8ccc-dddddddddddd");
        let err = with_ctx(|ctx| adapt_record(&unknown.to_string(), ctx)).unwrap_err();
        assert_eq!(err.code(), "unmapped_practice");
        assert_eq!(err.field_name(), Some("organizer.user.id"));

        let mut bad_time = session("s-1", phone(NUMBER));
        bad_time["startDateTime"] = json!("23/11/2026 10:15");
        let err = with_ctx(|ctx| adapt_record(&record(json!([bad_time])), ctx)).unwrap_err();
        assert_eq!(err.field_name(), Some("sessions[0].startDateTime"));

        let err = with_ctx(|ctx| adapt_record(r#"{"id": "x", "sessions": [{"callee": {"identity": {"phone": {"id": "+447700900123""#, ctx)).unwrap_err();
        assert_eq!(err.code(), "malformed");
        assert!(!err.to_string().contains("7700"), "{err}");

        for line in [
            "[]",
            "null",
            "42",
            r#"{"sessions": []}"#,
            r#"{"id": "x", "sessions": {}}"#,
        ] {
            assert!(with_ctx(|ctx| adapt_record(line, ctx)).is_err(), "{line}");
        }
    }

    #[test]
    fn the_tenant_maps_when_the_user_does_not_and_the_deprecated_organizer_is_read() {
        let mut mapping = PracticeMapping::default();
        mapping.insert(NAME, TENANT, "A81006");
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        let mut line =
            serde_json::from_str::<Value>(&record(json!([session("s-1", phone(NUMBER))]))).unwrap();
        let organizer = line["organizer_v2"]["identity"].clone();
        line.as_object_mut().unwrap().remove("organizer_v2");
        line["organizer"] = organizer;
        let events = adapt_record(&line.to_string(), &ctx).unwrap();
        assert_eq!(events[0].practice, "A81006");
    }

    #[test]
    fn a_pstn_record_without_sessions_is_rejected_not_dropped() {
        let line = json!({
            "id": "rec-2",
            "organizer_v2": {"identity": staff()},
            "participants_v2": [{"id": STAFF, "identity": staff()}, {"id": "p", "identity": phone(NUMBER)}],
        });
        let err = with_ctx(|ctx| adapt_record(&line.to_string(), ctx)).unwrap_err();
        assert_eq!(err.field_name(), Some("sessions"));
    }

    #[test]
    fn the_newer_associated_identity_is_read() {
        let mut s = session("s-1", json!(null));
        s["caller"] = json!({"associatedIdentity": {"id": STAFF, "tenantId": TENANT, "userPrincipalName": "reception1@example.nhs.uk"}});
        s["callee"] = json!({"associatedIdentity": {"@odata.type": "#microsoft.graph.communicationsPhoneIdentity", "id": NUMBER}});
        let events = with_ctx(|ctx| adapt_record(&record(json!([s])), ctx)).unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].caller.is_some());
    }

    #[test]
    fn non_ascii_identifiers_are_errors_not_panics() {
        // `normalise_e164` panics on these; the adapter must never hand them over.
        let mut odd =
            serde_json::from_str::<Value>(&record(json!([session("s-1", phone("¡ࠀ"))]))).unwrap();
        let err = with_ctx(|ctx| adapt_record(&odd.to_string(), ctx)).unwrap_err();
        assert_eq!(err.code(), "invalid_field");
        odd["sessions"][0]["callee"]["identity"]["phone"]["id"] = json!(NUMBER);
        odd["organizer_v2"]["identity"]["user"]["id"] = json!("¡ࠀ");
        odd["organizer_v2"]["identity"]["user"]["tenantId"] = json!("¡ࠀ");
        assert!(with_ctx(|ctx| adapt_record(&odd.to_string(), ctx)).is_err());
        assert!(with_ctx(|ctx| adapt_record(r#"{"id": "¡ࠀ"}"#, ctx))
            .unwrap()
            .is_empty());
    }

    /// Arbitrary JSON, with object keys drawn mostly from the call record's
    /// own vocabulary so that the adapter's paths are reached.
    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("id".to_string()),
            Just("sessions".to_string()),
            Just("caller".to_string()),
            Just("callee".to_string()),
            Just("identity".to_string()),
            Just("associatedIdentity".to_string()),
            Just("@odata.type".to_string()),
            Just("user".to_string()),
            Just("phone".to_string()),
            Just("applicationInstance".to_string()),
            Just("tenantId".to_string()),
            Just("organizer".to_string()),
            Just("organizer_v2".to_string()),
            Just("participants".to_string()),
            Just("participants_v2".to_string()),
            Just("failureInfo".to_string()),
            Just("stage".to_string()),
            Just("segments".to_string()),
            Just("modalities".to_string()),
            Just("startDateTime".to_string()),
            Just("isTest".to_string()),
            Just("userPrincipalName".to_string()),
            ".{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            Just(json!(STAFF)),
            Just(json!(NUMBER)),
            Just(json!("audio")),
            Just(json!("callSetup")),
            Just(json!("midcall")),
            Just(json!("2026-11-23T10:15:02.1234567Z")),
            Just(json!("#microsoft.graph.communicationsPhoneIdentity")),
            ".{0,24}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 96, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..8)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = with_ctx(|ctx| adapt_record(&text, ctx));
        }

        #[test]
        fn fuzzed_callback_records_never_panic(
            number in prop_oneof![Just(NUMBER.to_string()), ".{0,20}", "[+0-9 ()-]{0,18}"],
            stage in prop_oneof![Just("callSetup".to_string()), Just("midcall".to_string()), ".{0,10}"],
            start in prop_oneof![Just("2026-11-23T10:15:02.1234567Z".to_string()), ".{0,32}", "[0-9T:.Z+-]{0,34}"],
            id in prop_oneof![Just("rec-1".to_string()), ".{0,140}"],
            organizer in prop_oneof![Just(STAFF.to_string()), Just(TENANT.to_string()), ".{0,40}"],
            failed in any::<bool>(),
        ) {
            let mut s = session("s-1", phone(&number));
            s["startDateTime"] = json!(start);
            if failed {
                s["failureInfo"] = json!({"stage": stage});
            }
            let mut line = serde_json::from_str::<Value>(&record(json!([s]))).unwrap();
            line["id"] = json!(id);
            line["organizer_v2"]["identity"]["user"]["id"] = json!(organizer);
            match with_ctx(|ctx| adapt_record(&line.to_string(), ctx)) {
                Ok(events) => {
                    prop_assert!(events.len() <= 1);
                    for event in events {
                        prop_assert!(event.validate().is_ok());
                        prop_assert!(!event.to_json().contains("7700900123"));
                    }
                }
                Err(err) => prop_assert!(!err.to_string().contains("7700900123")),
            }
        }

        #[test]
        fn arbitrary_json_never_panics_nor_leaks_the_number(value in arb_json()) {
            let line = value.to_string();
            match with_ctx(|ctx| adapt_record(&line, ctx)) {
                Ok(events) => {
                    for event in events {
                        prop_assert!(event.validate().is_ok());
                        prop_assert!(!event.to_json().contains("7700900123"));
                    }
                }
                Err(err) => prop_assert!(!err.to_string().contains("7700900123")),
            }
        }
    }
}
