//! `asterisk`: Asterisk's own files, one line at a time, in either of two
//! formats (told apart by the line's shape, see [`is_queue_log`]):
//!
//! - **CDR CSV** as `cdr_csv` writes `Master.csv`: `accountcode, src, dst,
//!   dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer,
//!   end, duration, billsec, disposition, amaflags[, uniqueid[, userfield]]`,
//!   times in the PBX's zone (the mapping's `local_time_zone`). A CDR knows
//!   nothing of queues, so its outcome is inferred from the last application
//!   and the disposition.
//! - **queue_log** lines, `epoch|callid|queue|agent|event|data...`: the
//!   richest source for queue calls.
//!
//! Both formats name a call by the caller's channel `uniqueid` (the CDR's
//! `uniqueid` column, the queue_log's `callid`), and event ids are built from
//! it and the kind only, so the same fact from two CDR legs, or from a CDR
//! and the queue_log, is one event (a duplicate), never two. The mapping,
//! and why, is written down in `docs/adapters.md (asterisk)`.

use callpulse_core::{CallEvent, EventKind, Timestamp};
use sha2::{Digest, Sha256};

use crate::redact::redact_numbers;
use crate::{ids, timefmt, AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "asterisk";

/// Site settings that the practice mapping does not carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// queue_log `EXITWITHKEY` keys that book a callback (the queue's
    /// "press 1 to be called back" option). Any other exit key is `missed`.
    /// [`adapt_record`] takes them from the practice mapping.
    pub callback_keys: &'a [&'a str],
}

/// Adapts one line of a CDR CSV file or of a queue_log, with the callback
/// keys of the practice mapping (`[asterisk] callback_keys`).
pub fn adapt_record(record: &str, ctx: &AdaptContext<'_>) -> Adapted {
    let keys: Vec<&str> = ctx
        .mapping
        .asterisk_callback_keys()
        .iter()
        .map(String::as_str)
        .collect();
    adapt_record_with(
        record,
        ctx,
        &Options {
            callback_keys: &keys,
        },
    )
}

/// Adapts one line of a CDR CSV file or of a queue_log.
pub fn adapt_record_with(record: &str, ctx: &AdaptContext<'_>, options: &Options<'_>) -> Adapted {
    let line = record.trim_end_matches(['\r', '\n']);
    if is_queue_log(line) {
        queue_log(line, ctx, options)
    } else {
        cdr(line, ctx)
    }
}

/// Whether a line is a queue_log line: it starts with a Unix time (digits,
/// perhaps a fraction) and a `|`. Anything else is read as a CDR CSV line.
pub fn is_queue_log(line: &str) -> bool {
    match line.trim_start().split_once('|') {
        Some((time, _)) => {
            let time = time.trim();
            time.bytes().any(|b| b.is_ascii_digit())
                && time.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        }
        None => false,
    }
}

/// What every event of one call shares.
struct Call<'a> {
    /// The vendor's id of the call, as written: the first part of event ids.
    uid: &'a str,
    call_id: String,
    practice: String,
}

impl Call<'_> {
    fn event(
        &self,
        kind: EventKind,
        at: Timestamp,
        extra: &[&str],
        caller: Option<String>,
        queue_position: Option<u32>,
    ) -> Result<CallEvent, AdaptError> {
        let mut parts = vec![self.uid, kind.as_str()];
        parts.extend_from_slice(extra);
        let event = CallEvent {
            event_id: ids::event_id(NAME, &parts),
            call_id: Some(self.call_id.clone()),
            vendor: NAME.to_string(),
            practice: self.practice.clone(),
            kind,
            at,
            caller,
            queue_position,
        };
        event.validate()?;
        Ok(event)
    }
}

/// The practice for the first mapped identifier. An unmapped identifier is
/// an error, never a guess; anything like a number in it is masked (a `dst`
/// may be the number a member of staff rang out to).
fn practice(
    ctx: &AdaptContext<'_>,
    candidates: &[(&'static str, Option<&str>)],
) -> Result<String, AdaptError> {
    ctx.mapping
        .practice_of_any(NAME, candidates)
        .map_err(|err| match err {
            AdaptError::UnmappedPractice {
                vendor,
                identifier_kind,
                identifier,
            } => AdaptError::UnmappedPractice {
                vendor,
                identifier_kind,
                identifier: redact_numbers(&identifier),
            },
            other => other,
        })
}

// ---------------------------------------------------------------------------
// CDR CSV

/// cdr_csv's columns, 0-based.
mod col {
    pub const ACCOUNTCODE: usize = 0;
    pub const SRC: usize = 1;
    pub const DST: usize = 2;
    pub const CHANNEL: usize = 5;
    pub const DSTCHANNEL: usize = 6;
    pub const LASTAPP: usize = 7;
    pub const LASTDATA: usize = 8;
    pub const START: usize = 9;
    pub const ANSWER: usize = 10;
    pub const END: usize = 11;
    pub const DISPOSITION: usize = 14;
    pub const UNIQUEID: usize = 16;
}

/// Applications that run the menu (IVR) and never put the caller through
/// to a person: a call that ends in one of them ended in the menu.
const MENU_APPS: &[&str] = &[
    "",
    "answer",
    "playback",
    "background",
    "read",
    "waitexten",
    "wait",
    "hangup",
    "goto",
    "gotoif",
    "gotoiftime",
    "execif",
    "exec",
    "set",
    "noop",
    "saydigits",
    "saynumber",
    "sayalpha",
    "playtones",
    "progress",
    "ringing",
    "agi",
    "eagi",
    "stasis",
    "gosub",
    "macro",
    "return",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    Answered,
    NoAnswer,
    Busy,
    Failed,
    Congestion,
}

fn cdr(line: &str, ctx: &AdaptContext<'_>) -> Adapted {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut records = reader.records();
    let record = match records.next() {
        Some(Ok(record)) => record,
        Some(Err(err)) => return Err(AdaptError::malformed("CDR CSV", csv_reason(&err))),
        None => return Err(AdaptError::malformed("CDR CSV", "no fields")),
    };
    if records.next().is_some() {
        return Err(AdaptError::malformed(
            "CDR CSV",
            "more than one record on the line",
        ));
    }
    if !(16..=18).contains(&record.len()) {
        return Err(AdaptError::malformed(
            "CDR CSV",
            format!(
                "{} columns; cdr_csv writes 16 (accountcode ... amaflags), 17 (with uniqueid) or 18 (and userfield)",
                record.len()
            ),
        ));
    }
    let get = |i: usize| record.get(i).unwrap_or("").trim();

    let channel = get(col::CHANNEL);
    // The two halves of a Local channel are the PBX talking to itself (a
    // queue member or ring group reached through a Local channel): a leg of
    // a call that its caller's own CDR already counts.
    // Compared as bytes: a channel name is not always ASCII, and slicing
    // the text at byte 6 could fall inside a character.
    if channel
        .as_bytes()
        .get(..6)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"local/"))
    {
        return Ok(vec![]);
    }
    let lastapp = get(col::LASTAPP);
    let lastdata = get(col::LASTDATA);
    let app = lastapp.to_ascii_lowercase();
    let args = app_args(lastdata);
    let queue_name = if app == "queue" {
        args.first().copied().filter(|q| !q.is_empty())
    } else {
        None
    };
    let practice = practice(
        ctx,
        &[
            ("accountcode", Some(get(col::ACCOUNTCODE))),
            ("dst", Some(get(col::DST))),
            ("queue", queue_name),
        ],
    )?;

    let zone = ctx.mapping.local_time_zone();
    let start_text = get(col::START);
    if start_text.is_empty() {
        return Err(AdaptError::missing("start"));
    }
    let start = timefmt::local("start", start_text, zone)?;
    let end = match get(col::END) {
        "" => return Err(AdaptError::missing("end")),
        text => timefmt::local("end", text, zone)?,
    };
    let answer = match get(col::ANSWER) {
        "" => None,
        text => Some(timefmt::local("answer", text, zone)?),
    };
    let disposition = match get(col::DISPOSITION).to_ascii_uppercase().as_str() {
        "ANSWERED" => Disposition::Answered,
        "NO ANSWER" => Disposition::NoAnswer,
        "BUSY" => Disposition::Busy,
        "FAILED" => Disposition::Failed,
        "CONGESTION" => Disposition::Congestion,
        other => {
            return Err(AdaptError::field(
                "disposition",
                format!(
                    "`{}` is not ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION",
                    redact_numbers(&other.chars().take(40).collect::<String>())
                ),
            ))
        }
    };

    // Without a uniqueid column (loguniqueid=no), the caller's channel name
    // and start time name the call: stable for a re-read file.
    let derived;
    let uid = match get(col::UNIQUEID) {
        "" => {
            derived = derived_uid(channel, start_text);
            derived.as_str()
        }
        uniqueid => uniqueid,
    };
    let call = Call {
        uid,
        call_id: ids::call_id(uid),
        practice,
    };
    let caller = ctx.pseudonymiser.caller(Some(get(col::SRC)));
    let mut events = vec![call.event(EventKind::Offered, start, &[], caller, None)?];

    let dstchannel = get(col::DSTCHANNEL);
    let person_answered = disposition == Disposition::Answered && !dstchannel.is_empty();
    let answer_or_end = answer.unwrap_or(end);
    let waited = (end.millis() - start.millis()) / 1000;
    let targets: Vec<&str> = match app.as_str() {
        "dial" => args
            .first()
            .map(|a| a.split('&').map(str::trim).collect())
            .unwrap_or_default(),
        _ => vec![],
    };

    let outcome = if ctx.mapping.is_111(get(col::DST)) || targets.iter().any(|t| dials_111(ctx, t))
    {
        Some((EventKind::Diverted111, answer_or_end))
    } else if app == "voicemail" {
        // The national collection counts voicemail as missed.
        Some((EventKind::Missed, answer_or_end))
    } else if person_answered {
        let at = answer.ok_or_else(|| {
            AdaptError::field("answer", "ANSWERED with a dstchannel, but no answer time")
        })?;
        events.push(call.event(EventKind::Answered, at, &[], None, None)?);
        events.push(call.event(EventKind::Ended, end, &[], None, None)?);
        None
    } else if app == "queue" {
        if !dstchannel.is_empty() {
            // A queue member's phone rang and was not answered: one ring
            // attempt of several, not the call's outcome.
            None
        } else if timeout_reached(args.get(4), waited) {
            Some((EventKind::Missed, end))
        } else {
            // Hung up inside Queue() before its timeout: the caller gave up.
            Some((EventKind::Abandoned, end))
        }
    } else if app == "dial" {
        match disposition {
            Disposition::Busy | Disposition::Failed | Disposition::Congestion => {
                Some((EventKind::Missed, end))
            }
            Disposition::NoAnswer | Disposition::Answered => {
                if targets.len() > 1 && !dstchannel.is_empty() {
                    // One phone of a ring group (Asterisk 12+ writes a CDR per phone rung).
                    None
                } else if timeout_reached(args.get(1), waited) {
                    Some((EventKind::Missed, end))
                } else {
                    // Ended before Dial's timeout, unanswered: the caller hung up while it rang.
                    Some((EventKind::Abandoned, end))
                }
            }
        }
    } else if app == "busy" || app == "congestion" {
        // The PBX gave busy or congestion tone: the line was closed or full.
        Some((EventKind::Missed, end))
    } else if MENU_APPS.contains(&app.as_str()) {
        Some((EventKind::IvrEnded, end))
    } else {
        return Err(AdaptError::field(
            "lastapp",
            format!(
                "`{}` is not an application whose outcome we know (Dial, Queue, VoiceMail or a menu application)",
                redact_numbers(&lastapp.chars().take(40).collect::<String>())
            ),
        ));
    };
    if let Some((kind, at)) = outcome {
        events.push(call.event(kind, at, &[], None, None)?);
    }
    Ok(events)
}

/// A csv error without any of the record's text.
fn csv_reason(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
        _ => "not a CSV line".to_string(),
    }
}

/// An application's arguments: `,`-separated, or `|` in Asterisk 1.4 and older.
fn app_args(lastdata: &str) -> Vec<&str> {
    let separator = if !lastdata.contains(',') && lastdata.contains('|') {
        '|'
    } else {
        ','
    };
    lastdata.split(separator).map(str::trim).collect()
}

/// Whether an unanswered call lasted at least the application's timeout
/// argument (seconds), so the timeout may have ended it. Without a timeout
/// we cannot tell that the caller gave up, so the answer is yes.
fn timeout_reached(timeout: Option<&&str>, waited_seconds: i64) -> bool {
    match timeout.and_then(|t| t.parse::<u32>().ok()) {
        Some(0) | None => true,
        Some(timeout) => waited_seconds >= i64::from(timeout),
    }
}

/// Whether one Dial target (`PJSIP/111@trunk`, `SIP/trunk/111`,
/// `Local/111@outbound`, `PJSIP/trunk/sip:111@host`) rings NHS 111.
fn dials_111(ctx: &AdaptContext<'_>, target: &str) -> bool {
    let resource = target
        .split_once('/')
        .map_or(target, |(_, resource)| resource);
    resource.split('/').any(|part| {
        let mut user = part.trim();
        for scheme in ["sip:", "sips:", "tel:"] {
            if user.len() >= scheme.len()
                && user.is_char_boundary(scheme.len())
                && user[..scheme.len()].eq_ignore_ascii_case(scheme)
            {
                user = &user[scheme.len()..];
            }
        }
        let user = user.split(['@', ';']).next().unwrap_or("");
        !user.is_empty() && ctx.mapping.is_111(user)
    })
}

fn derived_uid(channel: &str, start: &str) -> String {
    let digest = Sha256::digest(format!("{channel}\u{1f}{start}").as_bytes());
    let mut uid = String::from("cdr-");
    for byte in &digest[..16] {
        uid.push_str(&format!("{byte:02x}"));
    }
    uid
}

// ---------------------------------------------------------------------------
// queue_log

/// Events that say nothing about a caller's call (agent, queue and system
/// events, and ring attempts to one member): no canonical events.
const QUEUE_LOG_IGNORED: &[&str] = &[
    "RINGNOANSWER",
    "RINGCANCELED",
    "AGENTDUMP",
    "DID",
    "INFO",
    "SYSCOMPAT",
    "ADDMEMBER",
    "REMOVEMEMBER",
    "PAUSE",
    "UNPAUSE",
    "PAUSEALL",
    "UNPAUSEALL",
    "PAUSECUSTOM",
    "AGENTLOGIN",
    "AGENTLOGOFF",
    "AGENTCALLBACKLOGIN",
    "AGENTCALLBACKLOGOFF",
    "QUEUESTART",
    "CONFIGRELOAD",
    "PENALTY",
    "MEMBERPENALTY",
    "AGENTCALLED",
];

fn queue_log(line: &str, ctx: &AdaptContext<'_>, options: &Options<'_>) -> Adapted {
    let fields: Vec<&str> = line.split('|').map(str::trim).collect();
    if fields.len() < 5 {
        return Err(AdaptError::malformed(
            "queue_log",
            format!(
                "{} fields; a line is time|callid|queue|agent|event|data...",
                fields.len()
            ),
        ));
    }
    let (time, callid, queue, event) = (fields[0], fields[1], fields[2], fields[4]);
    let data = |i: usize| fields.get(5 + i).copied().unwrap_or("");
    let event_name = event.to_ascii_uppercase();
    // Lines of no call ("NONE") and agent-level events: nothing to count.
    if callid.is_empty()
        || callid.eq_ignore_ascii_case("NONE")
        || callid.eq_ignore_ascii_case("REALTIME")
        || QUEUE_LOG_IGNORED.contains(&event_name.as_str())
    {
        return Ok(vec![]);
    }
    enum Action {
        Enter,
        Outcome(EventKind),
        NotJoined,
        Ended,
    }
    let action = match event_name.as_str() {
        "ENTERQUEUE" => Action::Enter,
        "CONNECT" => Action::Outcome(EventKind::Answered),
        "ABANDON" => Action::Outcome(EventKind::Abandoned),
        "EXITWITHTIMEOUT" | "EXITEMPTY" => Action::Outcome(EventKind::Missed),
        "EXITWITHKEY" => {
            if options.callback_keys.contains(&data(0)) {
                Action::Outcome(EventKind::CallbackRequested)
            } else {
                Action::Outcome(EventKind::Missed)
            }
        }
        "JOINEMPTY" | "JOINUNAVAIL" | "FULL" => Action::NotJoined,
        "COMPLETECALLER" | "COMPLETEAGENT" | "TRANSFER" | "BLINDTRANSFER" | "ATTENDEDTRANSFER" => {
            Action::Ended
        }
        _ => {
            return Err(AdaptError::field(
                "event",
                format!(
                    "`{}` is not a queue_log event we know",
                    redact_numbers(&event.chars().take(40).collect::<String>())
                ),
            ))
        }
    };
    let practice = practice(ctx, &[("queue", Some(queue))])?;
    let at = timefmt::epoch_seconds("time", time)?;
    let call = Call {
        uid: callid,
        call_id: ids::call_id(callid),
        practice,
    };
    let events = match action {
        Action::Enter => {
            // data: url|callerid|position
            let position = match data(2) {
                "" => None,
                text => Some(
                    text.parse::<u32>()
                        .map_err(|_| AdaptError::field("position", "not a whole number"))?,
                ),
            };
            let caller = ctx.pseudonymiser.caller(Some(data(1)));
            vec![
                call.event(EventKind::Offered, at, &[], caller, None)?,
                call.event(EventKind::Queued, at, &[queue, time], None, position)?,
            ]
        }
        Action::Outcome(kind) => vec![call.event(kind, at, &[], None, None)?],
        Action::NotJoined => vec![
            call.event(EventKind::Offered, at, &[], None, None)?,
            call.event(EventKind::Missed, at, &[], None, None)?,
        ],
        Action::Ended => vec![call.event(EventKind::Ended, at, &[], None, None)?],
    };
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PracticeMapping, Pseudonymiser};
    use proptest::prelude::*;

    const MAPPING: &str = r#"
local_time_zone = "Europe/London"
[vendors.asterisk]
"A81003" = "A81003"
"01632 960003" = "A81003"
"reception-a81003" = "A81003"
"#;

    fn run(line: &str) -> Adapted {
        run_with(line, &Options::default())
    }

    fn run_with(line: &str, options: &Options<'_>) -> Adapted {
        let mapping = PracticeMapping::from_toml(MAPPING).unwrap();
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        adapt_record_with(line, &ctx, options)
    }

    fn kinds(line: &str) -> Vec<&'static str> {
        run(line).unwrap().iter().map(|e| e.kind.as_str()).collect()
    }

    fn cdr_line(
        dst: &str,
        src: &str,
        dstchannel: &str,
        lastapp: &str,
        lastdata: &str,
        times: (&str, &str, &str),
        disposition: &str,
    ) -> String {
        format!(
            r#""A81003","{src}","{dst}","from-pstn","""Caller"" <{src}>","PJSIP/trunk-00000001","{dstchannel}","{lastapp}","{lastdata}","{}","{}","{}","0","0","{disposition}","DOCUMENTATION","1795421700.1","""#,
            times.0, times.1, times.2
        )
    }

    const T: (&str, &str, &str) = (
        "2026-11-23 08:00:00",
        "2026-11-23 08:01:00",
        "2026-11-23 08:05:00",
    );
    const T_UNANSWERED: (&str, &str, &str) = ("2026-11-23 08:00:00", "", "2026-11-23 08:00:20");

    #[test]
    fn answered_queue_call() {
        let line = cdr_line(
            "01632960003",
            "07700900123",
            "PJSIP/reception1-00000002",
            "Queue",
            "reception-a81003,t,,,300",
            T,
            "ANSWERED",
        );
        let events = run(&line).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["offered", "answered", "ended"]);
        assert_eq!(events[0].event_id, "asterisk:1795421700.1:offered");
        assert_eq!(events[0].call_id.as_deref(), Some("1795421700.1"));
        assert_eq!(
            events[1].at,
            Timestamp::parse_rfc3339("2026-11-23T08:01:00Z").unwrap()
        );
        assert_eq!(events[0].practice, "A81003");
        let json: String = events.iter().map(|e| e.to_json()).collect();
        assert!(!json.contains("7700") && !json.contains("Caller"), "{json}");
        assert!(events[0].caller.as_deref().unwrap().starts_with("p:"));
    }

    #[test]
    fn unanswered_calls() {
        // Caller hung up in the queue before its 300 s timeout.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "07700900123",
                "",
                "Queue",
                "reception-a81003,t,,,300",
                T_UNANSWERED,
                "ANSWERED"
            )),
            ["offered", "abandoned"]
        );
        // Queue with a 10 s timeout, still there at 20 s: the timeout ended it.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "07700900123",
                "",
                "Queue",
                "reception-a81003,t,,,10",
                T_UNANSWERED,
                "NO ANSWER"
            )),
            ["offered", "missed"]
        );
        // A member's phone rang unanswered: a ring attempt, no outcome.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "07700900123",
                "PJSIP/201-00000003",
                "Queue",
                "reception-a81003",
                T_UNANSWERED,
                "NO ANSWER"
            )),
            ["offered"]
        );
        // Dial rang out (timeout 20 s reached) / caller gave up before 30 s / busy.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "PJSIP/201-00000003",
                "Dial",
                "PJSIP/201,20",
                T_UNANSWERED,
                "NO ANSWER"
            )),
            ["offered", "missed"]
        );
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "PJSIP/201-00000003",
                "Dial",
                "PJSIP/201,30",
                T_UNANSWERED,
                "NO ANSWER"
            )),
            ["offered", "abandoned"]
        );
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "PJSIP/201-00000003",
                "Dial",
                "PJSIP/201,30",
                T_UNANSWERED,
                "BUSY"
            )),
            ["offered", "missed"]
        );
        // One phone of a ring group.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "PJSIP/201-00000003",
                "Dial",
                "PJSIP/201&PJSIP/202,30",
                T_UNANSWERED,
                "NO ANSWER"
            )),
            ["offered"]
        );
        // Voicemail is missed, even though the PBX answered to record it.
        let events = run(&cdr_line(
            "01632960003",
            "",
            "",
            "VoiceMail",
            "200@default,u",
            T,
            "ANSWERED",
        ))
        .unwrap();
        assert_eq!(events[1].kind, EventKind::Missed);
        assert_eq!(
            events[1].at,
            Timestamp::parse_rfc3339("2026-11-23T08:01:00Z").unwrap()
        );
        // The menu, and its closed message.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "",
                "Playback",
                "closed-message",
                T,
                "ANSWERED"
            )),
            ["offered", "ivr_ended"]
        );
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "",
                "Hangup",
                "",
                T,
                "ANSWERED"
            )),
            ["offered", "ivr_ended"]
        );
    }

    #[test]
    fn diversions_to_111() {
        for lastdata in [
            "PJSIP/111@nhs-trunk,60",
            "SIP/trunk/111",
            "PJSIP/trunk/sip:111@example.nhs.uk",
            "Local/111@outbound",
        ] {
            assert_eq!(
                kinds(&cdr_line(
                    "01632960003",
                    "07700900123",
                    "PJSIP/trunk-00000009",
                    "Dial",
                    lastdata,
                    T,
                    "ANSWERED"
                )),
                ["offered", "diverted_111"],
                "{lastdata}"
            );
        }
        // An extension 1110 is not 111.
        assert_eq!(
            kinds(&cdr_line(
                "01632960003",
                "",
                "PJSIP/1110-9",
                "Dial",
                "PJSIP/1110",
                T,
                "ANSWERED"
            )),
            ["offered", "answered", "ended"]
        );
    }

    #[test]
    fn withheld_and_without_uniqueid() {
        let events = run(&cdr_line(
            "01632960003",
            "anonymous",
            "",
            "Hangup",
            "",
            T,
            "ANSWERED",
        ))
        .unwrap();
        assert_eq!(events[0].caller, None);
        let sixteen = r#""A81003","","01632960003","from-pstn","","PJSIP/trunk-00000001","","Hangup","","2026-11-23 08:00:00","2026-11-23 08:00:01","2026-11-23 08:00:30","30","29","ANSWERED","DOCUMENTATION""#;
        let a = run(sixteen).unwrap();
        assert_eq!(a, run(sixteen).unwrap());
        assert!(a[0].call_id.as_deref().unwrap().starts_with("cdr-"));
    }

    #[test]
    fn local_channels_are_skipped() {
        let line = cdr_line(
            "201",
            "07700900123",
            "PJSIP/201-00000004",
            "Dial",
            "PJSIP/201",
            T,
            "ANSWERED",
        )
        .replace("PJSIP/trunk-00000001", "Local/201@from-queue-00000001;2");
        assert_eq!(run(&line).unwrap(), vec![]);
    }

    #[test]
    fn bad_cdr_lines_are_errors_without_numbers() {
        let unmapped = cdr_line(
            "01632960999",
            "07700900123",
            "",
            "Hangup",
            "",
            T,
            "ANSWERED",
        )
        .replace("\"A81003\"", "\"B00000\"");
        let err = run(&unmapped).unwrap_err();
        assert_eq!(err.code(), "unmapped_practice");
        assert!(!err.to_string().contains("960999"), "{err}");
        let err = run(&cdr_line(
            "01632960003",
            "",
            "",
            "Hangup",
            "",
            ("23/11/2026 08:00", "", "2026-11-23 08:00:20"),
            "ANSWERED",
        ))
        .unwrap_err();
        assert_eq!(err.field_name(), Some("start"));
        assert_eq!(
            run(r#""A81003","07700900123","01632960003""#)
                .unwrap_err()
                .code(),
            "malformed"
        );
        let err = run(&cdr_line("01632960003", "", "", "Hangup", "", T, "MAYBE")).unwrap_err();
        assert_eq!(err.field_name(), Some("disposition"));
        let err = run(&cdr_line(
            "01632960003",
            "",
            "",
            "MusicOnHold",
            "",
            T,
            "ANSWERED",
        ))
        .unwrap_err();
        assert_eq!(err.field_name(), Some("lastapp"));
        // ANSWERED by a person, but no answer time: inconsistent.
        let err = run(&cdr_line(
            "01632960003",
            "",
            "PJSIP/201-1",
            "Dial",
            "PJSIP/201",
            T_UNANSWERED,
            "ANSWERED",
        ))
        .unwrap_err();
        assert_eq!(err.field_name(), Some("answer"));
    }

    #[test]
    fn queue_log_call() {
        let enter =
            run("1795421702|1795421700.7|reception-a81003|NONE|ENTERQUEUE||07700900123|3").unwrap();
        assert_eq!(enter.len(), 2);
        assert_eq!(enter[0].kind, EventKind::Offered);
        assert_eq!(enter[0].event_id, "asterisk:1795421700.7:offered");
        assert!(enter[0].caller.is_some());
        assert_eq!(enter[1].queue_position, Some(3));
        assert_eq!(
            enter[1].at,
            Timestamp::parse_rfc3339("2026-11-23T08:15:02Z").unwrap()
        );
        assert!(!enter
            .iter()
            .map(|e| e.to_json())
            .collect::<String>()
            .contains("7700"));
        let connect =
            run("1795421762|1795421700.7|reception-a81003|PJSIP/201|CONNECT|60|1795421755.9|7")
                .unwrap();
        assert_eq!(connect[0].kind, EventKind::Answered);
        assert_eq!(connect[0].event_id, "asterisk:1795421700.7:answered");
        assert_eq!(
            kinds("1795421999|1795421700.7|reception-a81003|PJSIP/201|COMPLETECALLER|60|237|3"),
            ["ended"]
        );
        assert_eq!(
            kinds("1795421762|1795421700.8|reception-a81003|NONE|ABANDON|2|3|60"),
            ["abandoned"]
        );
        assert_eq!(
            kinds("1795421762|1795421700.8|reception-a81003|NONE|EXITWITHTIMEOUT|2|3|600"),
            ["missed"]
        );
        assert_eq!(
            kinds("1795421762|1795421700.8|reception-a81003|NONE|EXITEMPTY|1|1|5"),
            ["missed"]
        );
        assert_eq!(
            kinds("1795421762|1795421700.8|reception-a81003|NONE|JOINEMPTY|"),
            ["offered", "missed"]
        );
        assert_eq!(
            kinds("1795421762|1795421700.8|reception-a81003|NONE|EXITWITHKEY|1|2|3|40"),
            ["missed"]
        );
        let callback = run_with(
            "1795421762|1795421700.8|reception-a81003|NONE|EXITWITHKEY|1|2|3|40",
            &Options {
                callback_keys: &["1"],
            },
        )
        .unwrap();
        assert_eq!(callback[0].kind, EventKind::CallbackRequested);
    }

    #[test]
    fn queue_log_lines_without_a_call() {
        for line in [
            "1795421000|NONE|reception-a81003|PJSIP/201|ADDMEMBER|",
            "1795421000|NONE|NONE|NONE|QUEUESTART|",
            "1795421000|1795421700.8|unknown-queue|PJSIP/201|RINGNOANSWER|15000",
            "1795421000|REALTIME|reception-a81003|PJSIP/201|PAUSE|lunch",
        ] {
            assert_eq!(run(line).unwrap(), vec![], "{line}");
        }
        assert_eq!(
            run("1795421762|1795421700.8|other|NONE|ABANDON|1|1|5")
                .unwrap_err()
                .code(),
            "unmapped_practice"
        );
        assert_eq!(
            run("1795421762|1795421700.8|reception-a81003|NONE|WHATEVER")
                .unwrap_err()
                .field_name(),
            Some("event")
        );
        assert_eq!(
            run("1795421762|1795421700.8|reception-a81003")
                .unwrap_err()
                .code(),
            "malformed"
        );
        assert_eq!(
            run("99999999999999|1795421700.8|reception-a81003|NONE|ABANDON|1|1|5")
                .unwrap_err()
                .field_name(),
            Some("time")
        );
        assert_eq!(
            run("1795421762|1795421700.8|reception-a81003|NONE|ENTERQUEUE||07700900123|x")
                .unwrap_err()
                .field_name(),
            Some("position")
        );
    }

    /// Found by `tests/fuzz_parsers.rs`: a channel whose sixth byte falls
    /// inside a character panicked on the `Local/` check.
    #[test]
    fn a_channel_with_a_multibyte_character_near_its_start_is_no_panic() {
        let line = r#""A81003","07700900123","01632960003","from-pstn","","J*E𐍗Eh","PJSIP/r","Queue","reception-a81003","2026-11-23 08:00:00","","2026-11-23 08:02:10","130","0","NO ANSWER","DOCUMENTATION""#;
        let _ = run(line);
        let local = line.replace("J*E𐍗Eh", "LOCAL/201@from-queue");
        assert_eq!(run(&local), Ok(vec![]));
    }

    #[test]
    fn format_detection() {
        assert!(is_queue_log("1795421762|x|q|NONE|ABANDON"));
        assert!(is_queue_log("1795421762.123|x|q|NONE|ABANDON"));
        assert!(!is_queue_log(
            r#""A81003","","","","","","","","","","","","","","","""#
        ));
        assert!(!is_queue_log("|x|y"));
        assert!(!is_queue_log("abc|x"));
    }

    proptest! {
        #[test]
        fn never_panics(line in ".{0,400}") {
            let _ = run(&line);
        }

        #[test]
        fn never_panics_on_near_records(
            fields in proptest::collection::vec("[-A-Za-z0-9 :./|&@,\"]{0,24}", 0..20),
            pipe in any::<bool>(),
        ) {
            let line = if pipe {
                format!("1795421762|{}", fields.join("|"))
            } else {
                fields.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(",")
            };
            let _ = run(&line);
        }
    }
}
