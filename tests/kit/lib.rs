//! What the tests of every crate share, so that no crate keeps its own
//! copy: a port for a server started as a process, and the `callpulse`
//! binary the tests drive.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// Ports are handed out from here, below Linux's ephemeral range
/// (32768–60999 by default). Asking the kernel for port 0 instead draws
/// from the ephemeral range: an outgoing connection of any client could
/// take the port before the server binds it, and two calls in a row can
/// return the same port, which once made two services of one test fight
/// over one address.
const FIRST_PORT: u16 = 20_000;
const PORTS: u16 = 12_000;

/// A port of 127.0.0.1 that was free a moment ago, for a server that is
/// started as a process and must be told its port. No port is handed out
/// twice in one test process.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Test binaries of one run start at different places, so that a
    // server a previous binary left behind is not the first one tried.
    let start = (u64::from(std::process::id()) * 7_919 % u64::from(PORTS)) as u16;
    let port =
        first_free(start, &handed_out).expect("no free port of 127.0.0.1 between 20000 and 31999");
    handed_out.insert(port);
    port
}

/// The first port from `FIRST_PORT + start` on (wrapping) that is not in
/// `handed_out` and can be bound now.
fn first_free(start: u16, handed_out: &BTreeSet<u16>) -> Option<u16> {
    (0..PORTS)
        .map(|step| FIRST_PORT + (start + step) % PORTS)
        .find(|port| !handed_out.contains(port) && TcpListener::bind(("127.0.0.1", *port)).is_ok())
}

/// `target/debug/callpulse`, next to the test binaries' `deps` folder.
pub fn callpulse_binary() -> PathBuf {
    // target/debug/deps/fault_broker-… → target/debug/callpulse
    let exe = std::env::current_exe().expect("the test binary's own path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps")
        .join("callpulse");
    assert!(
        path.exists(),
        "{} is missing: build it first (deploy/local/test.sh runs `cargo build -p callpulse-cli`)",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice_and_lie_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports
            .iter()
            .all(|port| (FIRST_PORT..FIRST_PORT + PORTS).contains(port)));
    }

    #[test]
    fn a_port_in_use_or_handed_out_is_skipped() {
        let nothing = BTreeSet::new();
        let start = 1_234;
        let port = first_free(start, &nothing).unwrap();
        let held = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let next = first_free(start, &nothing).unwrap();
        assert!(next > port, "{next} is not after the port in use, {port}");
        drop(held);
        let handed_out = BTreeSet::from([port]);
        assert_eq!(first_free(start, &handed_out), Some(next));
    }
}
