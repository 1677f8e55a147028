//! Sign-in throttling: failed attempts are counted per email and per client IP in a sliding
//! window. Past the limit, attempts are refused (without checking the password) until the window
//! has passed, so guessing is slowed to a few tries per quarter hour while the real user is never
//! locked out for good. Counts live in this node's memory: the limit holds per node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use logbook_core::AccountId;
use time::{Duration, OffsetDateTime};

/// Failures for one email within `WINDOW` before further attempts are refused.
pub const MAX_FAILURES_PER_EMAIL: usize = 5;
/// Failures from one IP within `WINDOW` (an office behind one address signs in often).
pub const MAX_FAILURES_PER_IP: usize = 20;
pub const WINDOW: Duration = Duration::minutes(15);
/// Entries kept before the oldest are dropped, bounding memory under a spray of addresses.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<OffsetDateTime>>>,
}

fn email_key(email: &str) -> String {
    format!("email:{email}")
}

fn ip_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

impl LoginThrottle {
    /// `Some(wait)` when an attempt for this email or from this IP must be refused now.
    pub fn refusal(&self, email: &str, ip: IpAddr, now: OffsetDateTime) -> Option<Duration> {
        let mut failures = self.failures.lock().expect("throttle lock poisoned");
        [
            (email_key(email), MAX_FAILURES_PER_EMAIL),
            (ip_key(ip), MAX_FAILURES_PER_IP),
        ]
        .into_iter()
        .filter_map(|(key, limit)| {
            let times = failures.get_mut(&key)?;
            times.retain(|at| *at > now - WINDOW);
            (times.len() >= limit).then(|| times[times.len() - limit] + WINDOW - now)
        })
        .max()
    }

    pub fn record_failure(&self, email: &str, ip: IpAddr, now: OffsetDateTime) {
        let mut failures = self.failures.lock().expect("throttle lock poisoned");
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, times| times.iter().any(|at| *at > now - WINDOW));
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        for key in [email_key(email), ip_key(ip)] {
            let times = failures.entry(key).or_default();
            times.retain(|at| *at > now - WINDOW);
            times.push(now);
        }
    }

    /// A successful sign-in clears the email's failures (not the IP's).
    pub fn record_success(&self, email: &str) {
        self.failures
            .lock()
            .expect("throttle lock poisoned")
            .remove(&email_key(email));
    }
}

/// Test deliveries ("Send test" on a destination) an account may start at once.
pub const TEST_SENDS_BURST: u32 = 5;
/// Then one more test delivery per this many seconds, per account.
pub const TEST_SEND_INTERVAL_SECONDS: u64 = 12;

/// "Send test" makes this node connect out to an address the account chose: a cheap way to use
/// Logbook against a third party or to keep the delivery path busy. Each account gets a small
/// bucket (`TEST_SENDS_BURST`, refilled one every `TEST_SEND_INTERVAL_SECONDS`), kept in this
/// node's memory like the sign-in throttle.
pub struct TestSendThrottle {
    limiter: DefaultKeyedRateLimiter<AccountId>,
    clock: DefaultClock,
}

impl Default for TestSendThrottle {
    fn default() -> Self {
        let quota = Quota::with_period(std::time::Duration::from_secs(TEST_SEND_INTERVAL_SECONDS))
            .expect("the interval is not zero")
            .allow_burst(NonZeroU32::new(TEST_SENDS_BURST).expect("the burst is not zero"));
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }
}

impl TestSendThrottle {
    /// Takes one test send from the account's bucket, or says how long to wait (whole seconds,
    /// at least one, as `Retry-After` carries them).
    pub fn take(&self, account: &AccountId) -> Result<(), u64> {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(account).map_err(|not_until| {
            not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_account_may_send_a_few_tests_then_waits_while_another_account_is_not_held_back() {
        let throttle = TestSendThrottle::default();
        let acme = AccountId::parse("acme").unwrap();
        for _ in 0..TEST_SENDS_BURST {
            throttle.take(&acme).expect("within the burst");
        }
        let wait = throttle.take(&acme).expect_err("past the burst");
        assert!((1..=TEST_SEND_INTERVAL_SECONDS).contains(&wait), "{wait}");
        throttle
            .take(&AccountId::parse("globex").unwrap())
            .expect("another account has its own bucket");
    }

    use super::*;

    #[test]
    fn the_sixth_attempt_for_an_email_waits_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for minute in 0..5 {
            let at = start + Duration::minutes(minute);
            assert!(throttle.refusal("a@b.c", ip, at).is_none());
            throttle.record_failure("a@b.c", ip, at);
        }
        let wait = throttle
            .refusal("a@b.c", ip, start + Duration::minutes(5))
            .unwrap();
        assert_eq!(wait, Duration::minutes(10));
        assert!(
            throttle
                .refusal("other@b.c", "198.51.100.1".parse().unwrap(), start)
                .is_none()
        );
        assert!(
            throttle
                .refusal(
                    "a@b.c",
                    ip,
                    start + Duration::minutes(15) + Duration::seconds(1)
                )
                .is_none()
        );
    }

    #[test]
    fn many_emails_from_one_ip_are_limited_by_the_ip() {
        let throttle = LoginThrottle::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for index in 0..MAX_FAILURES_PER_IP {
            throttle.record_failure(&format!("user{index}@b.c"), ip, now);
        }
        assert!(throttle.refusal("fresh@b.c", ip, now).is_some());
        assert!(
            throttle
                .refusal("fresh@b.c", "198.51.100.1".parse().unwrap(), now)
                .is_none()
        );
    }
}
