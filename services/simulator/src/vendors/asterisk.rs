//! Asterisk's own files for a simulated call (docs/adapters.md, asterisk):
//! `queue_log` lines as a queued call goes through `Queue()`, written as each
//! step happens, and a CDR (`Master.csv`, cdr_csv's column order with
//! `uniqueid` and `userfield`) for a call that never queued (menu, lines
//! closed, a forward to 111), written when it hangs up. Times are whole
//! seconds, CDR times in London local time. A practice's PBX is named after
//! it, so `uniqueid` is `<system name>-<epoch>.<sequence>`.

use callpulse_core::{CallEvent, EventKind};
use chrono::TimeZone;

use super::{floor_seconds, seconds_between, Body, Call, Channel, Out, ASTERISK_CALLBACK_KEY};

/// The caller's channel `uniqueid` (the CDR's `uniqueid`, the queue_log's `callid`).
pub fn uniqueid(call_id: &str, offered_at_ms: i64) -> String {
    // sim-<practice>-<yyyymmdd>-<n>
    let mut parts = call_id.rsplitn(4, '-');
    let n = parts.next().unwrap_or("0");
    let _day = parts.next();
    let practice = parts.next().unwrap_or("pbx").to_ascii_lowercase();
    format!("{practice}-{}.{n}", floor_seconds(offered_at_ms))
}

fn uid(call: &Call) -> String {
    uniqueid(&call.call_id, call.offered_at())
}

fn member(call: &Call) -> String {
    format!("PJSIP/reception{}", call.hash("member") % 6 + 1)
}

fn queue_line(
    call: &Call,
    at_ms: i64,
    agent: &str,
    event: &str,
    data: &[String],
) -> (i64, Channel, Body) {
    let mut line = format!(
        "{}|{}|{}|{agent}|{event}",
        floor_seconds(at_ms),
        uid(call),
        call.ids.asterisk_queue
    );
    for d in data {
        line.push('|');
        line.push_str(d);
    }
    (at_ms, Channel::AsteriskQueueLog, Body::Line(line))
}

/// Seconds from joining the queue to `at`.
fn waited(call: &Call, at_ms: i64) -> i64 {
    let joined = call.at(EventKind::Queued).unwrap_or(at_ms);
    (floor_seconds(at_ms) - floor_seconds(joined)).max(0)
}

/// The queue_log lines one step of a queued call writes.
pub(crate) fn on_event(call: &Call, event: &CallEvent) -> Out {
    let at = event.at.0;
    let queued = call.first(EventKind::Queued);
    let position = queued
        .and_then(|q| q.queue_position)
        .map_or(1, |p| p + 1)
        .to_string();
    let s = |v: i64| v.to_string();
    match (event.kind, queued) {
        (EventKind::Queued, _) => {
            let callerid = call.caller.clone().unwrap_or_else(|| "anonymous".into());
            vec![queue_line(
                call,
                at,
                "NONE",
                "ENTERQUEUE",
                &[String::new(), callerid, position],
            )]
        }
        (EventKind::Answered, Some(_)) => vec![queue_line(
            call,
            at,
            &member(call),
            "CONNECT",
            &[s(waited(call, at)), format!("{}.1", uid(call)), s(3)],
        )],
        (EventKind::Abandoned, Some(_)) => vec![queue_line(
            call,
            at,
            "NONE",
            "ABANDON",
            &[s(1), position, s(waited(call, at))],
        )],
        (EventKind::Missed, Some(_)) => vec![queue_line(
            call,
            at,
            "NONE",
            "EXITWITHTIMEOUT",
            &[s(1), position, s(waited(call, at))],
        )],
        (EventKind::CallbackRequested, Some(_)) => vec![queue_line(
            call,
            at,
            "NONE",
            "EXITWITHKEY",
            &[
                ASTERISK_CALLBACK_KEY.to_string(),
                s(1),
                position,
                s(waited(call, at)),
            ],
        )],
        (EventKind::Ended, Some(_)) => match call.at(EventKind::Answered) {
            Some(answered) => vec![queue_line(
                call,
                at,
                &member(call),
                "COMPLETECALLER",
                &[
                    s(waited(call, answered)),
                    s(floor_seconds(at) - floor_seconds(answered)),
                    position,
                ],
            )],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn local(ms: i64) -> String {
    chrono_tz::Europe::London
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn quoted(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The caller's CDR, for a call that never queued: written when it hangs up.
pub(crate) fn cdr(call: &Call) -> Out {
    if call.first(EventKind::Queued).is_some() {
        return Vec::new();
    }
    let Some(outcome) = call.outcome() else {
        return Vec::new();
    };
    let start = call.offered_at();
    let at = outcome.at.0;
    let hex = |salt: &str| format!("{:08x}", call.hash(salt) as u32);
    let practice = call.ids.code.to_ascii_lowercase();
    // (dstchannel, lastapp, lastdata, answer, end, disposition)
    let (dstchannel, lastapp, lastdata, answer, end, disposition) = match outcome.kind {
        EventKind::Diverted111 => {
            let talk = seconds_between(call.hash("111-call"), 60, 900) * 1000;
            (
                format!("PJSIP/nhs111-trunk-{}", hex("leg")),
                "Dial",
                "PJSIP/111@nhs111-trunk,60".to_string(),
                Some(at),
                at + talk,
                "ANSWERED",
            )
        }
        // Lines closed and the practice's phone rang out.
        EventKind::Missed => (
            format!("PJSIP/{practice}-reception-{}", hex("leg")),
            "Dial",
            format!("PJSIP/{practice}-reception,30"),
            None,
            at,
            "NO ANSWER",
        ),
        // The menu (or the closed message), and the caller hung up there.
        _ => (
            String::new(),
            "BackGround",
            format!("{practice}-main-menu"),
            Some(start),
            at,
            "ANSWERED",
        ),
    };
    let duration = floor_seconds(end) - floor_seconds(start);
    let billsec = answer.map_or(0, |a| floor_seconds(end) - floor_seconds(a));
    let src = call.caller.clone().unwrap_or_else(|| "anonymous".into());
    let fields = [
        String::new(),
        src.clone(),
        call.ids.number.clone(),
        "from-pstn".into(),
        format!("\"{src}\" <{src}>"),
        format!("PJSIP/nhs-trunk-{}", hex("channel")),
        dstchannel,
        lastapp.into(),
        lastdata,
        local(start),
        answer.map(local).unwrap_or_default(),
        local(end),
        duration.to_string(),
        billsec.to_string(),
        disposition.into(),
        "DOCUMENTATION".into(),
        uid(call),
        String::new(),
    ];
    vec![(end, Channel::AsteriskCdr, Body::Line(quoted(&fields)))]
}
