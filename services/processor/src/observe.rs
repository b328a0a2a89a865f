//! The processor's operations endpoints and the offsets its lag gauge needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callpulse_runtime::kafka::{self, OffsetWatch};
use callpulse_runtime::ops::Readiness;

/// Readiness check: the broker answers (metadata and offsets of the call-events topic).
pub const KAFKA: &str = "kafka";
/// Readiness check: the consumer group gave this instance its partitions.
pub const CONSUMER_GROUP: &str = "consumer_group";

/// Each call-event partition's end offset.
pub type PartitionEnds = Arc<Mutex<HashMap<i32, i64>>>;

/// Keeps each call-event partition's end offset fresh, every 10 seconds, off
/// the processing loop, and reports to the `kafka` readiness check whether
/// the broker answered. The watcher stops when the guard is dropped.
pub fn watch_partition_ends(
    config: &callpulse_runtime::Config,
    readiness: Arc<Readiness>,
) -> anyhow::Result<(PartitionEnds, OffsetWatch)> {
    let ends = Arc::new(Mutex::new(HashMap::new()));
    let shared = ends.clone();
    let watch = kafka::watch_offsets(
        &config.kafka,
        None,
        vec![config.topics.call_events.clone()],
        Duration::from_secs(10),
        move |offsets| match offsets {
            Ok(offsets) => {
                readiness.pass(KAFKA);
                let mut ends = shared.lock().expect("ends lock");
                for o in offsets {
                    ends.insert(o.partition, o.high);
                }
            }
            Err(reason) => readiness.fail(KAFKA, reason),
        },
    )?;
    Ok((ends, watch))
}
