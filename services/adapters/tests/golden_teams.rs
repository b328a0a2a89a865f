//! Golden test of the `teams` sample (Microsoft Graph call records; see
//! `common/mod.rs` and docs/adapters.md (teams)).

mod common;

use callpulse_adapters::Vendor;
use callpulse_core::EventKind;

#[test]
fn teams() {
    let events = common::golden(Vendor::Teams);
    // Teams records give callbacks made, nothing else.
    assert!(events.iter().all(|e| e.kind == EventKind::CallbackMade));
    assert!(events.iter().all(|e| e.vendor == "teams"));
    // Connected callbacks only: the unanswered attempt (record ...e02) gives none,
    // the repeated session of record ...e03 gives one.
    let from = |suffix: &str| {
        events
            .iter()
            .filter(|e| e.call_id.as_deref().is_some_and(|id| id.ends_with(suffix)))
            .count()
    };
    assert_eq!(from("5e01"), 1);
    assert_eq!(from("5e02"), 0);
    assert_eq!(from("5e03"), 1);
    assert_eq!(from("5e05"), 0, "inbound PSTN calls are not mapped");
    assert_eq!(from("5e06"), 0, "internal meetings carry nothing for us");
    // The callee is pseudonymised however the record spells the number
    // (record ...e03 writes it `07700 900456`).
    let second = events
        .iter()
        .find(|e| e.call_id.as_deref().is_some_and(|id| id.ends_with("5e03")))
        .unwrap();
    assert_eq!(
        second.caller,
        common::pseudonymiser().caller(Some("+447700900456"))
    );
    // A number the record does not show gives a callback without a caller.
    let hidden = events
        .iter()
        .find(|e| e.call_id.as_deref().is_some_and(|id| id.ends_with("5e04")))
        .unwrap();
    assert_eq!(hidden.caller, None);
    assert_eq!(hidden.practice, "A81005");
    // Every practice came from the mapping: staff, resource account, own tenant.
    let mut practices: Vec<&str> = events.iter().map(|e| e.practice.as_str()).collect();
    practices.sort_unstable();
    practices.dedup();
    assert_eq!(practices, ["A81004", "A81005", "A81006"]);
}
