//! A record budget per sender, so that one misbehaving sender (a retry
//! loop, a replayed backlog) cannot crowd out every other practice's
//! events. Senders are told to slow down (HTTP 429 with `Retry-After`);
//! nothing they sent is accepted, so nothing is lost.

use std::collections::HashMap;
use std::sync::Mutex;

/// Token buckets by sender: `rate` records per second, bursts of `burst`.
#[derive(Debug)]
pub struct Throttle {
    rate_per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: i64,
}

/// Senders idle this long are forgotten, so the map stays small.
const FORGET_AFTER_MS: i64 = 10 * 60_000;

impl Throttle {
    /// `rate_per_second` 0: no limit.
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        Throttle {
            rate_per_second: f64::from(rate_per_second),
            burst: f64::from(burst.max(rate_per_second)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `records` from the sender's budget at `now_ms`: `Ok` if they
    /// fit, else `Err(seconds)` to wait before trying again.
    pub fn take(&self, sender: &str, records: usize, now_ms: i64) -> Result<(), u64> {
        if self.rate_per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, bucket| now_ms - bucket.updated_ms < FORGET_AFTER_MS);
        }
        let bucket = buckets.entry(sender.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated_ms: now_ms,
        });
        let elapsed_s = (now_ms - bucket.updated_ms).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed_s * self.rate_per_second).min(self.burst);
        bucket.updated_ms = now_ms.max(bucket.updated_ms);
        let wanted = records as f64;
        if wanted <= bucket.tokens {
            bucket.tokens -= wanted;
            return Ok(());
        }
        // A request larger than the burst can never fit: it waits for a
        // full bucket and is then let through, never refused for ever.
        if wanted > self.burst && bucket.tokens >= self.burst {
            bucket.tokens = 0.0;
            return Ok(());
        }
        let missing = wanted.min(self.burst) - bucket.tokens;
        Err((missing / self.rate_per_second).ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_its_burst_then_its_rate() {
        let throttle = Throttle::new(100, 200);
        assert!(throttle.take("twilio:AC1", 200, 0).is_ok());
        assert_eq!(throttle.take("twilio:AC1", 1, 0), Err(1));
        // Another sender is not affected.
        assert!(throttle.take("twilio:AC2", 150, 0).is_ok());
        // Half a second refills 50.
        assert!(throttle.take("twilio:AC1", 50, 500).is_ok());
        assert_eq!(throttle.take("twilio:AC1", 100, 500), Err(1));
        assert_eq!(throttle.take("twilio:AC1", 200, 500), Err(2));
    }

    #[test]
    fn a_request_larger_than_the_burst_passes_on_a_full_bucket() {
        let throttle = Throttle::new(10, 10);
        assert!(throttle.take("asterisk", 500, 0).is_ok());
        assert!(throttle.take("asterisk", 500, 100).is_err());
        assert!(throttle.take("asterisk", 500, 1_100).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let throttle = Throttle::new(0, 0);
        for _ in 0..1000 {
            assert!(throttle.take("generic", 1_000_000, 0).is_ok());
        }
    }
}
