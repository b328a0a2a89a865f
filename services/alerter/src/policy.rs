//! Retry and rate-limit policy. Pure: time is passed in (milliseconds).

/// When to try again and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl RetryPolicy {
    /// The wait after the `failed`-th failed attempt (1-based): doubling
    /// from `initial_ms`, capped at `max_ms`, then "equal jitter" (between
    /// half and all of it), derived from `seed` so that many messages
    /// failing together do not retry in lockstep, yet a test can predict it.
    pub fn delay_ms(&self, failed: u32, seed: u64) -> u64 {
        let exponent = failed.saturating_sub(1).min(40);
        let base = self
            .initial_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_ms);
        let half = base / 2;
        let mixed = splitmix64(seed ^ u64::from(failed));
        base - half + mixed % (half + 1)
    }

    /// The waits between all attempts of one message: `max_attempts - 1` of them.
    pub fn schedule(&self, seed: u64) -> Vec<u64> {
        (1..self.max_attempts)
            .map(|failed| self.delay_ms(failed, seed))
            .collect()
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stable seed from a message key.
pub fn seed_of(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What one attempt's result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt (network errors, 5xx, 429, SMTP 4xx).
    Retry,
    /// Another attempt would fail the same way (most 4xx, SMTP 5xx).
    Permanent,
}

pub fn classify_http(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Permanent,
    }
}

/// An SMTP reply code to a step that must succeed.
pub fn classify_smtp(code: u16) -> Verdict {
    match code {
        200..=399 => Verdict::Delivered,
        400..=499 => Verdict::Retry,
        _ => Verdict::Permanent,
    }
}

/// Tolerance for the float arithmetic of refills.
const EPSILON: f64 = 1e-9;

/// A token bucket: `burst` messages at once, then `per_minute`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    burst: f64,
    per_ms: f64,
    tokens: f64,
    at_ms: i64,
}

impl TokenBucket {
    pub fn new(burst: u32, per_minute: u32, now_ms: i64) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            burst,
            per_ms: f64::from(per_minute) / 60_000.0,
            tokens: burst,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        if now_ms > self.at_ms {
            self.tokens =
                (self.tokens + (now_ms - self.at_ms) as f64 * self.per_ms).min(self.burst);
            self.at_ms = now_ms;
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 - EPSILON {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    /// When the next token will be there (`now_ms` if it is); `None` when
    /// the rate is zero.
    pub fn next_token_at(&mut self, now_ms: i64) -> Option<i64> {
        self.refill(now_ms);
        if self.tokens >= 1.0 - EPSILON {
            Some(now_ms)
        } else if self.per_ms <= 0.0 {
            None
        } else {
            Some(now_ms + ((1.0 - self.tokens) / self.per_ms).ceil() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 8,
        initial_ms: 1000,
        max_ms: 30_000,
    };

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for seed in [0, 1, 42, u64::MAX] {
            let schedule = POLICY.schedule(seed);
            assert_eq!(schedule.len(), 7);
            let bases = [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000];
            for (delay, base) in schedule.iter().zip(bases) {
                assert!((base / 2..=base).contains(delay), "{delay} vs {base}");
            }
            assert_eq!(schedule, POLICY.schedule(seed), "deterministic");
        }
        assert_ne!(POLICY.schedule(1), POLICY.schedule(2), "jittered by seed");
        let huge = RetryPolicy {
            max_attempts: 100,
            initial_ms: u64::MAX / 4,
            max_ms: u64::MAX,
        };
        assert!(huge.delay_ms(99, 7) > 0, "no overflow");
        assert!(RetryPolicy {
            max_attempts: 1,
            ..POLICY
        }
        .schedule(0)
        .is_empty());
    }

    #[test]
    fn results_are_classified() {
        assert_eq!(classify_http(200), Verdict::Delivered);
        assert_eq!(classify_http(202), Verdict::Delivered);
        assert_eq!(classify_http(429), Verdict::Retry);
        assert_eq!(classify_http(503), Verdict::Retry);
        assert_eq!(classify_http(404), Verdict::Permanent);
        assert_eq!(classify_http(400), Verdict::Permanent);
        assert_eq!(classify_smtp(250), Verdict::Delivered);
        assert_eq!(classify_smtp(354), Verdict::Delivered);
        assert_eq!(classify_smtp(451), Verdict::Retry);
        assert_eq!(classify_smtp(550), Verdict::Permanent);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(3, 6, 0);
        assert!(bucket.try_take(0) && bucket.try_take(0) && bucket.try_take(0));
        assert!(!bucket.try_take(0));
        assert_eq!(bucket.next_token_at(0), Some(10_000));
        assert!(!bucket.try_take(9_999));
        assert!(bucket.try_take(10_000));
        // Idle for an hour: back to the burst, not more.
        let later = 3_600_000;
        assert!((0..3).all(|_| bucket.try_take(later)));
        assert!(!bucket.try_take(later));
        let mut never = TokenBucket::new(1, 0, 0);
        assert!(never.try_take(0));
        assert_eq!(never.next_token_at(5), None);
    }
}
