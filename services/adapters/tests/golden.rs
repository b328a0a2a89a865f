//! Golden tests of every vendor's sample file (see `common/mod.rs`).

mod common;

use callpulse_adapters::Vendor;
use callpulse_core::EventKind;

#[test]
fn generic() {
    let events = common::golden(Vendor::Generic);
    assert!(events.iter().any(|e| e.kind == EventKind::Diverted111));
}
