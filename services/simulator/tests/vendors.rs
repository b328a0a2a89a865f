//! The simulator's vendor-native records against the real adapter parsers
//! (docs/simulator.md, "Vendor mix"): every record parses, and the events
//! the adapters make of them are the model's, except for what a vendor's
//! format cannot say (the documented differences, applied by
//! [`documented`]); and replaying them gives the same final windows.

use std::collections::{HashMap, HashSet};

use callpulse_adapters::vendors::twilio;
use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_core::{CallEvent, CoreHours, Engine, EngineConfig, EventKind, Timestamp};
use callpulse_simulator::vendors::{
    caller_number, mapping_toml, withheld_callback_number, Body, Channel, NativeFaults,
    NativeRecord, NativeStream, Supplier, VendorMix,
};
use callpulse_simulator::{parse_start, synthetic_practices, Faults, Scenario};

const SEED: u64 = 11;

fn scenario(practices: usize, start: &str, duration_ms: i64) -> Scenario {
    Scenario {
        practices: synthetic_practices(practices),
        seed: SEED,
        start: parse_start(start, Timestamp(0)).unwrap(),
        duration_ms,
        demand: 1.0,
        faults: Faults::default(),
        calendar: CoreHours::shipped(),
    }
}

/// A Monday from 06:00 to 21:00: the 8 am surge, callbacks, lunchtime
/// 111 diversions, closed lines and evening diversions.
fn monday(practices: usize) -> Scenario {
    scenario(practices, "2026-11-23T06:00", 15 * 3_600_000)
}

/// The records `callpulse simulate --format native` sends: rendered from
/// the model's fault-free stream, then the scenario's faults applied.
fn native(s: &Scenario, mix: VendorMix) -> Vec<NativeRecord> {
    let (faults, clean) = NativeFaults::split(s.clone());
    faults
        .apply(NativeStream::new(clean.stream(), mix, s.seed))
        .collect()
}

fn model(s: &Scenario) -> Vec<CallEvent> {
    s.generate().into_iter().map(|d| d.event).collect()
}

/// Every record through the real parser, as `callpulse adapt` and the HTTP
/// routes run it; a record that does not parse fails the test.
fn adapt(
    records: &[NativeRecord],
    mapping: &PracticeMapping,
    key: &Pseudonymiser,
) -> Vec<CallEvent> {
    let ctx = AdaptContext {
        mapping,
        pseudonymiser: key,
        received_at: None,
    };
    let mut events = Vec::new();
    for record in records {
        let vendor = Vendor::parse(record.channel.vendor()).unwrap();
        let line = record.file_line();
        let adapted = vendor
            .adapt_record(&line, &ctx)
            .unwrap_or_else(|err| panic!("{:?} record rejected: {err}\n{line}", record.channel));
        if let Body::Params(params) = &record.body {
            // Over HTTP: the form body, signed as the adapters check it.
            let form = record.form_body().unwrap();
            assert_eq!(twilio::adapt_form(&form, &ctx).unwrap(), adapted, "{form}");
            let url = "https://adapters.example.nhs.uk/v1/twilio";
            let signature = callpulse_simulator::vendors::twilio_signature("token", url, params);
            assert!(twilio::verify_signature("token", url, params, &signature));
        }
        events.extend(adapted);
    }
    events
}

fn pseudonym(key: &Pseudonymiser, practice: &str, caller: Option<&str>) -> Option<String> {
    let hex = caller?.rsplit_once("-p")?.1;
    let index = u32::from_str_radix(hex, 16).unwrap();
    key.caller(Some(&caller_number(practice, index)))
}

/// The model's events as each practice's supplier reports them: the
/// documented differences of docs/simulator.md, and nothing else.
fn documented(events: &[CallEvent], mix: VendorMix, key: &Pseudonymiser) -> Vec<CallEvent> {
    let mut calls: HashMap<&str, Vec<&CallEvent>> = HashMap::new();
    for e in events {
        if let Some(call) = e.call_id.as_deref() {
            calls.entry(call).or_default().push(e);
        }
    }
    let floor = |t: Timestamp| Timestamp(t.0.div_euclid(1000) * 1000);
    let mut out = Vec::new();
    for e in events {
        let mut x = e.clone();
        let Some(call_id) = e.call_id.as_deref() else {
            out.push(x); // diversion switches: generic, as they are
            continue;
        };
        let call = &calls[call_id];
        let at = |kind: EventKind| call.iter().find(|c| c.kind == kind).map(|c| c.at);
        let supplier = mix.supplier(SEED, &e.practice);
        x.vendor = supplier.name().to_string();
        if e.kind == EventKind::Offered {
            x.caller = pseudonym(key, &e.practice, e.caller.as_deref());
        }
        match supplier {
            Supplier::Generic => {}
            // Twilio's Timestamp is RFC 2822: whole seconds. Queue positions are 1-based.
            Supplier::Twilio => {
                x.at = floor(x.at);
                x.queue_position = x.queue_position.map(|p| p + 1);
            }
            // Contact records carry no queue position; each CALLBACK
            // contact repeats the callback request (one event, a duplicate)
            // at the caller's disconnect.
            Supplier::AmazonConnect => {
                x.queue_position = None;
                if e.kind == EventKind::CallbackRequested {
                    let made = call
                        .iter()
                        .filter(|c| c.kind == EventKind::CallbackMade)
                        .count();
                    let disconnect = at(EventKind::Ended).unwrap_or(e.at).0.max(e.at.0 + 3_000);
                    for _ in 0..made {
                        let mut copy = x.clone();
                        copy.at = Timestamp(disconnect);
                        out.push(copy);
                    }
                }
            }
            // Whole seconds; a queued call is offered when the queue_log
            // sees it (ENTERQUEUE); callbacks are made from Teams, calls of
            // their own.
            Supplier::Asterisk => {
                if e.kind == EventKind::CallbackMade {
                    // Teams names the number rung: the caller's, or the one a
                    // withheld caller gave.
                    let offered = call.iter().find(|c| c.kind == EventKind::Offered);
                    x.caller = match offered
                        .and_then(|o| pseudonym(key, &o.practice, o.caller.as_deref()))
                    {
                        Some(p) => Some(p),
                        None => key.caller(Some(&withheld_callback_number(call_id))),
                    };
                    x.vendor = "teams".into();
                    x.call_id = Some(format!("teams:{}", e.event_id));
                } else {
                    x.at = floor(x.at);
                    x.queue_position = x.queue_position.map(|p| p + 1);
                    if e.kind == EventKind::Offered {
                        if let Some(queued) = at(EventKind::Queued) {
                            x.at = floor(queued);
                        }
                    }
                }
            }
        }
        out.push(x);
    }
    out
}

/// Drops `ended` of calls nobody answered: it carries no metric, vendors
/// differ in whether they report it, and the model sends it only for calls
/// that queued.
fn normalise(events: Vec<CallEvent>) -> Vec<CallEvent> {
    let answered: HashSet<(String, String)> = events
        .iter()
        .filter(|e| e.kind == EventKind::Answered)
        .map(|e| (e.vendor.clone(), e.call_id.clone().unwrap_or_default()))
        .collect();
    events
        .into_iter()
        .filter(|e| {
            e.kind != EventKind::Ended
                || answered.contains(&(e.vendor.clone(), e.call_id.clone().unwrap_or_default()))
        })
        .collect()
}

/// Facts of an event that do not depend on the vendor's ids.
type Fact = (String, String, String, i64, Option<u32>, Option<String>);

fn facts(events: &[CallEvent]) -> Vec<Fact> {
    let mut facts: Vec<Fact> = events
        .iter()
        .map(|e| {
            (
                e.practice.clone(),
                e.vendor.clone(),
                e.kind.as_str().to_string(),
                e.at.0,
                e.queue_position,
                e.caller.clone(),
            )
        })
        .collect();
    facts.sort();
    facts
}

fn windows(events: &[CallEvent]) -> Vec<String> {
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    for event in events {
        engine.ingest(event);
    }
    let mut out: Vec<String> = engine
        .finish()
        .windows
        .iter()
        .map(|w| {
            // `revision` counts re-emissions, which depend on how many
            // events arrived (duplicates, `ended` of unanswered calls), not
            // on what the window holds.
            let mut value = serde_json::to_value(w).unwrap();
            value.as_object_mut().unwrap().remove("revision");
            value.to_string()
        })
        .collect();
    out.sort();
    out
}

fn check_mix(s: &Scenario, mix: VendorMix) -> (Vec<CallEvent>, Vec<CallEvent>) {
    let mapping = PracticeMapping::from_toml(&mapping_toml(&s.practices)).unwrap();
    let key = Pseudonymiser::demo();
    let records = native(s, mix);
    assert!(
        records
            .windows(2)
            .all(|w| w[0].deliver_at <= w[1].deliver_at),
        "delivery order"
    );
    assert_eq!(records, native(s, mix), "deterministic for a seed");
    let adapted = adapt(&records, &mapping, &key);
    let model = model(s);
    let expected = documented(&model, mix, &key);
    // Event by event: the same practice, kind, time, position and caller.
    let (got, want) = (
        facts(&normalise(adapted.clone())),
        facts(&normalise(expected.clone())),
    );
    if got != want {
        let g: HashSet<&Fact> = got.iter().collect();
        let w: HashSet<&Fact> = want.iter().collect();
        let extra: Vec<_> = g.difference(&w).take(5).collect();
        let missing: Vec<_> = w.difference(&g).take(5).collect();
        panic!(
            "{mix:?}: {} events from the adapters, {} expected\nnot expected: {extra:#?}\nmissing: {missing:#?}",
            got.len(),
            want.len()
        );
    }
    // The adapters' call ids are the vendor's, one call per model call.
    let calls = |events: &[CallEvent]| {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Offered)
            .map(|e| (e.vendor.clone(), e.call_id.clone()))
            .collect::<HashSet<_>>()
            .len()
    };
    assert_eq!(calls(&adapted), calls(&model));
    (adapted, expected)
}

#[test]
fn every_vendor_record_parses_and_maps_back_to_the_model() {
    let s = monday(12);
    for supplier in Supplier::ALL {
        let (adapted, _) = check_mix(&s, VendorMix::All(supplier));
        let kinds: HashSet<EventKind> = adapted.iter().map(|e| e.kind).collect();
        // The day has every kind of call for every supplier.
        for kind in [
            EventKind::Offered,
            EventKind::Queued,
            EventKind::Answered,
            EventKind::Abandoned,
            EventKind::Missed,
            EventKind::IvrEnded,
            EventKind::CallbackRequested,
            EventKind::CallbackMade,
            EventKind::Diverted111,
        ] {
            assert!(kinds.contains(&kind), "{supplier:?}: no {kind:?}");
        }
    }
}

#[test]
fn the_mix_uses_every_format() {
    let s = monday(24);
    let records = native(&s, VendorMix::Mix);
    let channels: HashSet<Channel> = records.iter().map(|r| r.channel).collect();
    assert_eq!(channels.len(), Channel::ALL.len(), "{channels:?}");
    check_mix(&s, VendorMix::Mix);
}

#[test]
fn native_then_adapt_then_replay_gives_the_canonical_windows() {
    let s = monday(24);
    let (adapted, expected) = check_mix(&s, VendorMix::Mix);
    let native_windows = windows(&normalise(adapted));
    let expected_windows = windows(&normalise(expected));
    if native_windows != expected_windows {
        let a: HashSet<&String> = native_windows.iter().collect();
        let b: HashSet<&String> = expected_windows.iter().collect();
        let extra: Vec<_> = a.difference(&b).take(3).collect();
        let missing: Vec<_> = b.difference(&a).take(3).collect();
        panic!(
            "{} windows, {} expected\nnot expected: {extra:#?}\nmissing: {missing:#?}",
            native_windows.len(),
            expected_windows.len()
        );
    }
    // Daily counts are the model's exactly (every difference is within the day).
    let daily = |ws: &[String]| -> Vec<serde_json::Value> {
        ws.iter()
            .map(|w| serde_json::from_str::<serde_json::Value>(w).unwrap())
            .filter(|w| w["window"] == "1d")
            .map(|w| {
                serde_json::json!([
                    w["practice"],
                    w["offered"],
                    w["answered"],
                    w["abandoned"],
                    w["missed"],
                    w["ivr_ended"],
                    w["diverted_111"],
                    w["callback_requested"],
                    w["callbacks_made"],
                    w["unique_callers"],
                    w["wait_count"],
                    w["talk_count"]
                ])
            })
            .collect()
    };
    assert_eq!(daily(&native_windows), daily(&windows(&model(&s))));
}

#[test]
fn no_phone_number_survives_the_adapters() {
    let s = monday(10);
    let mapping = PracticeMapping::from_toml(&mapping_toml(&s.practices)).unwrap();
    let records = native(&s, VendorMix::Mix);
    let adapted = adapt(&records, &mapping, &Pseudonymiser::demo());
    // Every number in the vendors' records: callers' and practices'.
    let mut numbers: HashSet<String> = s
        .practices
        .iter()
        .map(|p| callpulse_simulator::vendors::PracticeIds::of(&p.code).number)
        .collect();
    for e in model(&s) {
        if let Some(hex) = e.caller.as_deref().and_then(|c| c.rsplit_once("-p")) {
            numbers.insert(caller_number(
                &e.practice,
                u32::from_str_radix(hex.1, 16).unwrap(),
            ));
        }
    }
    assert!(numbers.len() > 100);
    let text: String = records.iter().map(|r| r.file_line()).collect();
    // National significant numbers: ten digits after the leading 0.
    let national_significant: HashSet<&str> = numbers.iter().map(|n| &n[1..]).collect();
    let holds_number = |text: &str| {
        text.split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() >= 10)
            .any(|run| (0..=run.len() - 10).any(|i| national_significant.contains(&run[i..i + 10])))
    };
    assert!(holds_number(&text), "the records hold numbers");
    for event in adapted {
        let json = event.to_json();
        assert!(!json.contains("+44") && !holds_number(&json), "{json}");
    }
}

/// A window's identity (practice, size, start), what it holds (without
/// `dq_duplicates`), and its `dq_duplicates`.
fn split_duplicates(w: &str) -> ((String, String, String), String, u64) {
    let mut value: serde_json::Value = serde_json::from_str(w).unwrap();
    let text = |field: &str| value[field].as_str().unwrap().to_string();
    let key = (text("practice"), text("window"), text("start"));
    let duplicates = value
        .as_object_mut()
        .unwrap()
        .remove("dq_duplicates")
        .and_then(|d| d.as_u64())
        .unwrap();
    (key, value.to_string(), duplicates)
}

/// Replayed, `got` gives the windows of `want` in every field but
/// `dq_duplicates`, which counts each event `got` has in excess once: the
/// repeats had the event ids of the first deliveries.
fn assert_only_duplicates_added(got: &[CallEvent], want: &[CallEvent]) {
    let split = |events: &[CallEvent]| -> Vec<_> {
        let mut split: Vec<_> = windows(events)
            .iter()
            .map(|w| split_duplicates(w))
            .collect();
        split.sort();
        split
    };
    let (got_windows, want_windows) = (split(got), split(want));
    assert_eq!(got_windows.len(), want_windows.len());
    let mut repeats = 0;
    for ((key, values, duplicates), (want_key, want_values, want_duplicates)) in
        got_windows.iter().zip(&want_windows)
    {
        assert_eq!((key, values), (want_key, want_values));
        assert!(duplicates >= want_duplicates, "{key:?}");
        if key.1 == "1d" {
            repeats += duplicates - want_duplicates;
        }
    }
    assert!(got.len() > want.len());
    assert_eq!(repeats as usize, got.len() - want.len());
}

#[test]
fn re_sent_and_late_records_change_nothing_but_the_duplicate_counts() {
    let s = monday(24);
    let mut faulty = s.clone();
    faulty.faults = Faults::parse("duplicates,late").unwrap();
    let mapping = PracticeMapping::from_toml(&mapping_toml(&s.practices)).unwrap();
    let key = Pseudonymiser::demo();
    let records = native(&faulty, VendorMix::Mix);
    assert!(
        records
            .windows(2)
            .all(|w| w[0].deliver_at <= w[1].deliver_at),
        "delivery order"
    );
    assert_eq!(records, native(&faulty, VendorMix::Mix), "deterministic");
    let clean_records = native(&s, VendorMix::Mix);
    let sent_at: HashMap<(Channel, String), Timestamp> = clean_records
        .iter()
        .map(|r| ((r.channel, r.file_line()), r.deliver_at))
        .collect();
    let past_lateness = records
        .iter()
        .filter(|r| {
            let sent = sent_at
                .get(&(r.channel, r.file_line()))
                .expect("every record is one the vendors sent");
            r.deliver_at.0 - sent.0 > 300_000
        })
        .count();
    assert!(
        past_lateness > 10,
        "{past_lateness} past the allowed lateness"
    );
    // Every re-sent and delayed record parses.
    let adapted = adapt(&records, &mapping, &key);
    let clean = adapt(&clean_records, &mapping, &key);
    // Records of every format but Teams (few: callbacks of Asterisk
    // practices) were re-sent, ...
    let mut seen = HashSet::new();
    let resent: HashSet<Channel> = records
        .iter()
        .filter(|r| !seen.insert((r.channel, r.file_line())))
        .map(|r| r.channel)
        .collect();
    assert!(resent.len() >= Channel::ALL.len() - 1, "{resent:?}");
    assert_only_duplicates_added(&adapted, &clean);
    // ... and every record of every format sent twice is counted as a
    // duplicate, not as a second call.
    let twice: Vec<NativeRecord> = clean_records
        .iter()
        .flat_map(|r| [r.clone(), r.clone()])
        .collect();
    assert_only_duplicates_added(&adapt(&twice, &mapping, &key), &clean);
}

#[test]
fn a_silent_practice_counts_in_its_interval_only_what_is_sent_after_it() {
    for mix in [VendorMix::Mix, VendorMix::All(Supplier::Twilio)] {
        let s = monday(24);
        let mut quiet = s.clone();
        quiet.faults = Faults::parse("silence").unwrap();
        let (index, from, to) = quiet.silent_practices()[0];
        let code = s.practices[index].code.as_str();
        let mapping = PracticeMapping::from_toml(&mapping_toml(&s.practices)).unwrap();
        let key = Pseudonymiser::demo();
        let clean_records = native(&s, mix);
        let clean = windows(&adapt(&clean_records, &mapping, &key));
        let silenced = windows(&adapt(&native(&quiet, mix), &mapping, &key));
        let practice =
            |w: &String| serde_json::from_str::<serde_json::Value>(w).unwrap()["practice"] == code;
        let others = |ws: &[String]| -> Vec<String> {
            ws.iter().filter(|w| !practice(w)).cloned().collect()
        };
        assert_eq!(
            others(&silenced),
            others(&clean),
            "{mix:?}: the others are unchanged"
        );
        // Its windows within the interval, of every size.
        let inside = |ws: &[String]| -> Vec<String> {
            ws.iter()
                .filter(|w| {
                    let w: serde_json::Value = serde_json::from_str(w).unwrap();
                    let at =
                        |field: &str| Timestamp::parse_rfc3339(w[field].as_str().unwrap()).unwrap();
                    w["practice"] == code && from <= at("start") && at("end") <= to
                })
                .cloned()
                .collect()
        };
        let offered = |ws: &[String]| {
            ws.iter()
                .filter(|w| serde_json::from_str::<serde_json::Value>(w).unwrap()["offered"] != 0)
                .count()
        };
        assert!(
            offered(&inside(&clean)) > 100,
            "{mix:?}: busy without the silence"
        );
        // In the interval, only what its supplier sends after it: records
        // written when a call ends (contact records, CDRs, call records)
        // of calls still going at its end, and callbacks made later.
        let sent_after: Vec<NativeRecord> = clean_records
            .iter()
            .filter(|r| r.practice == code && r.deliver_at >= to)
            .cloned()
            .collect();
        let after = windows(&adapt(&sent_after, &mapping, &key));
        assert_eq!(inside(&silenced), inside(&after), "{mix:?}");
        assert!(
            offered(&inside(&silenced)) * 50 < offered(&inside(&clean)),
            "{mix:?}"
        );
        if matches!(
            mix.supplier(SEED, code),
            Supplier::Twilio | Supplier::Generic
        ) {
            // Live formats: nothing at all.
            assert_eq!(inside(&silenced), Vec::<String>::new(), "{mix:?}");
        }
    }
}
