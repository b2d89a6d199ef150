//! GCRA (the generic cell rate algorithm): the one rate-limiting rule every
//! limiter adapter applies — in process for the embedded default, in a Redis
//! Lua script across instances. Pure: time and state are arguments.
//!
//! State is one number per key, the *theoretical arrival time* (TAT): when the
//! bucket would be empty again at the sustained rate. With emission interval
//! `T = period / limit` and capacity `burst · T`, a request of `cost` units is
//! allowed when `max(TAT, now) + cost·T − burst·T ≤ now`, and then
//! `TAT ← max(TAT, now) + cost·T`. Integer milliseconds throughout, so every
//! implementation computes exactly the same answers.

use std::time::Duration;

use crate::ports::{Quota, RateDecision};

/// The outcome of [`check`]: the decision and the TAT to store (unchanged when
/// refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraOutcome {
    /// What to answer.
    pub decision: RateDecision,
    /// The TAT to store, in ms since the epoch; `None` to leave it as it was.
    pub new_tat_ms: Option<u64>,
    /// How long the stored TAT stays meaningful (set it as the key's expiry).
    pub ttl: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Applies GCRA for `cost` units at `now_ms` to a key whose stored TAT is
/// `tat_ms` (`None` for a key never seen or expired).
#[must_use]
pub fn check(now_ms: u64, tat_ms: Option<u64>, quota: &Quota, cost: u32) -> GcraOutcome {
    let burst = quota.burst.max(1);
    let refuse_forever = GcraOutcome {
        decision: RateDecision {
            allowed: false,
            limit: burst,
            remaining: 0,
            reset_after: quota.period,
            retry_after: Some(quota.period),
        },
        new_tat_ms: None,
        ttl: quota.period,
    };
    let Some(interval) = quota.emission_interval() else {
        return refuse_forever;
    };
    let t = ms(interval).max(1);
    let capacity = t.saturating_mul(u64::from(burst));
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat.saturating_add(t.saturating_mul(u64::from(cost)));
    let allow_at = new_tat.saturating_sub(capacity);
    if cost > burst || allow_at > now_ms {
        // Refused: nothing is consumed.
        let retry = if cost > burst {
            ms(quota.period)
        } else {
            allow_at - now_ms
        };
        let remaining = capacity.saturating_sub(tat - now_ms) / t;
        return GcraOutcome {
            decision: RateDecision {
                allowed: false,
                limit: burst,
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset_after: Duration::from_millis(tat - now_ms),
                retry_after: Some(Duration::from_millis(retry.max(1))),
            },
            new_tat_ms: None,
            ttl: Duration::from_millis((tat - now_ms).max(1)),
        };
    }
    let used = new_tat - now_ms;
    let remaining = capacity.saturating_sub(used) / t;
    GcraOutcome {
        decision: RateDecision {
            allowed: true,
            limit: burst,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_after: Duration::from_millis(used),
            retry_after: None,
        },
        new_tat_ms: Some(new_tat),
        ttl: Duration::from_millis(used.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(quota: &Quota, times: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let out = check(now, tat, quota, 1);
                if let Some(new) = out.new_tat_ms {
                    tat = Some(new);
                }
                out.decision.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        // 60 per minute = one per second, burst 3.
        let quota = Quota::per_minute(60, 3);
        let now = 1_000_000;
        assert_eq!(
            run(&quota, &[now, now, now, now]),
            vec![true, true, true, false]
        );
        // One unit comes back per second.
        assert_eq!(
            run(&quota, &[now, now, now, now + 1_000, now + 1_000]),
            vec![true, true, true, true, false]
        );
    }

    #[test]
    fn decisions_carry_remaining_reset_and_retry() {
        let quota = Quota::per_minute(60, 3);
        let first = check(10_000, None, &quota, 1);
        assert!(first.decision.allowed);
        assert_eq!(first.decision.limit, 3);
        assert_eq!(first.decision.remaining, 2);
        assert_eq!(first.decision.reset_after, Duration::from_secs(1));
        let full = check(10_000, Some(13_000), &quota, 1);
        assert!(!full.decision.allowed);
        assert_eq!(full.decision.remaining, 0);
        assert_eq!(full.decision.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(full.new_tat_ms, None, "a refusal consumes nothing");
    }

    #[test]
    fn zero_limits_and_oversized_costs_are_refused() {
        let nothing = Quota::per_minute(0, 5);
        assert!(!check(0, None, &nothing, 1).decision.allowed);
        let quota = Quota::per_minute(60, 3);
        let big = check(0, None, &quota, 4);
        assert!(!big.decision.allowed);
        assert_eq!(big.new_tat_ms, None);
    }

    proptest! {
        #[test]
        fn never_more_than_the_burst_at_one_instant(burst in 1u32..20, limit in 1u32..1000, n in 1usize..60) {
            let quota = Quota::per_minute(limit, burst);
            let allowed = run(&quota, &vec![5_000_000; n]).iter().filter(|a| **a).count();
            prop_assert_eq!(allowed, n.min(burst as usize));
        }

        #[test]
        fn over_a_long_window_the_rate_holds(limit in 1u32..600, burst in 1u32..10, step in 1u64..500) {
            // Requests every `step` ms for ten minutes: allowed ≤ burst + rate × time.
            let quota = Quota::per_minute(limit, burst);
            let times: Vec<u64> = (0..(600_000 / step)).map(|i| 1_000_000 + i * step).collect();
            let allowed = run(&quota, &times).iter().filter(|a| **a).count() as u64;
            let interval = 60_000 / u64::from(limit);
            let bound = u64::from(burst) + 600_000 / interval.max(1) + 1;
            prop_assert!(allowed <= bound, "{} allowed, bound {}", allowed, bound);
        }
    }
}
