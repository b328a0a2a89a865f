//! Microsoft Teams call records (Graph `callRecords`, v1.0, sessions and
//! segments expanded) for callbacks made by practices whose PBX is
//! Asterisk: staff ring patients back through the practice's "Callbacks"
//! resource account, so each callback is an outbound PSTN call organised by
//! that account (docs/adapters.md, teams). Times carry Graph's seven
//! fractional digits.

use callpulse_core::{CallEvent, Timestamp};
use serde_json::json;

use super::{e164, guid, seconds_between, Body, Call, Channel, Out, TEAMS_TENANT};

fn graph_time(ms: i64) -> String {
    // 2026-11-23T10:15:02.123Z -> 2026-11-23T10:15:02.1230000Z
    let text = Timestamp(ms).to_rfc3339_millis();
    format!("{}0000Z", text.trim_end_matches('Z'))
}

/// The call record of the n-th callback made for `call`, delivered when it ends.
pub(crate) fn callback_record(call: &Call, attempt: u32, event: &CallEvent) -> Out {
    let start = event.at.0;
    let seconds = seconds_between(call.hash(&format!("callback-{attempt}")), 45, 400);
    let end = start + seconds * 1000;
    let account = json!({"applicationInstance": {
        "id": call.ids.teams_callbacks_id,
        "displayName": format!("Callbacks {}", call.ids.code),
        "tenantId": TEAMS_TENANT,
    }});
    let phone = e164(&call.callback_number());
    let callee = json!({"phone": {"id": phone, "displayName": null}});
    let session = guid(&format!("teams-session:{}:{attempt}", call.call_id));
    let record = json!({
        "@odata.type": "#microsoft.graph.callRecords.callRecord",
        "id": guid(&format!("teams-record:{}:{attempt}", call.call_id)),
        "version": 1,
        "type": "peerToPeer",
        "modalities": ["audio"],
        "lastModifiedDateTime": graph_time(end),
        "startDateTime": graph_time(start),
        "endDateTime": graph_time(end),
        "joinWebUrl": null,
        "organizer_v2": {"id": call.ids.teams_callbacks_id, "identity": account},
        "participants_v2": [
            {"id": call.ids.teams_callbacks_id, "identity": account},
            {"id": phone, "identity": callee},
        ],
        "sessions": [{
            "id": session,
            "modalities": ["audio"],
            "startDateTime": graph_time(start),
            "endDateTime": graph_time(end),
            "isTest": false,
            "failureInfo": null,
            "caller": {
                "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                "identity": account,
            },
            "callee": {
                "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                "identity": callee,
            },
            "segments": [{
                "id": session,
                "startDateTime": graph_time(start),
                "endDateTime": graph_time(end),
                "failureInfo": null,
                "media": [],
            }],
        }],
    });
    vec![(end, Channel::Teams, Body::Line(record.to_string()))]
}
