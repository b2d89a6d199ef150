//! In-process `RateLimiter`: GCRA per key ([`iace_domain::ratelimit`]) and
//! leased concurrency slots, for a single instance. Exact within the process;
//! several instances need the Redis limiter to share limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{
    Clock, InfraError, Quota, RateDecision, RateLimitKey, RateLimiter, SlotLease,
};
use iace_domain::ratelimit;

#[derive(Debug, Default)]
struct State {
    /// Key → (theoretical arrival time in ms, when the entry may be dropped).
    tats: HashMap<String, (u64, DateTime<Utc>)>,
    /// Key → slot token → lease expiry.
    slots: HashMap<String, HashMap<String, DateTime<Utc>>>,
}

/// The embedded limiter.
pub struct LocalRateLimiter {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl std::fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRateLimiter").finish_non_exhaustive()
    }
}

impl LocalRateLimiter {
    /// A limiter reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<RateDecision, InfraError> {
        let now = self.clock.now();
        let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let mut state = self.state();
        // Drop expired entries now and then, so idle keys do not accumulate.
        if state.tats.len() > 10_000 {
            state.tats.retain(|_, (_, expires)| *expires > now);
        }
        let stored = state
            .tats
            .get(key.as_str())
            .filter(|(_, expires)| *expires > now)
            .map(|(tat, _)| *tat);
        let outcome = ratelimit::check(now_ms, stored, quota, cost);
        if let Some(tat) = outcome.new_tat_ms {
            state
                .tats
                .insert(key.as_str().to_owned(), (tat, now + to_chrono(outcome.ttl)));
        }
        Ok(outcome.decision)
    }

    async fn acquire(
        &self,
        key: &RateLimitKey,
        max: u32,
        lease: Duration,
    ) -> Result<Option<SlotLease>, InfraError> {
        let now = self.clock.now();
        let mut state = self.state();
        // Keys whose every lease expired unreleased go now and then, so that
        // one-off keys (a call's media stream) do not accumulate.
        if state.slots.len() > 10_000 {
            state.slots.retain(|_, slots| {
                slots.retain(|_, expires| *expires > now);
                !slots.is_empty()
            });
        }
        let slots = state.slots.entry(key.as_str().to_owned()).or_default();
        slots.retain(|_, expires| *expires > now);
        if slots.len() >= max as usize {
            return Ok(None);
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        slots.insert(token.clone(), now + to_chrono(lease));
        Ok(Some(SlotLease {
            key: key.clone(),
            token,
        }))
    }

    async fn renew(&self, lease: &SlotLease, extend_by: Duration) -> Result<bool, InfraError> {
        let now = self.clock.now();
        let mut state = self.state();
        let Some(slots) = state.slots.get_mut(lease.key.as_str()) else {
            return Ok(false);
        };
        match slots.get_mut(&lease.token) {
            Some(expires) if *expires > now => {
                *expires = now + to_chrono(extend_by);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: &SlotLease) -> Result<(), InfraError> {
        let mut state = self.state();
        if let Some(slots) = state.slots.get_mut(lease.key.as_str()) {
            slots.remove(&lease.token);
            // A key with no slot held is forgotten, not kept empty.
            if slots.is_empty() {
                state.slots.remove(lease.key.as_str());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use iace_domain::CallId;
    use iace_domain::ports::FixedClock;

    use super::*;

    fn keys(limiter: &LocalRateLimiter) -> usize {
        limiter.state().slots.len()
    }

    #[tokio::test]
    async fn released_and_expired_slots_leave_nothing_behind() {
        let clock = Arc::new(FixedClock::new(Utc::now()));
        let limiter = LocalRateLimiter::new(clock.clone());
        // A key per call, as media streams use: released ones are forgotten.
        for _ in 0..1_000 {
            let key = RateLimitKey::media_stream(CallId::new());
            let lease = limiter
                .acquire(&key, 1, Duration::from_secs(30))
                .await
                .expect("acquire")
                .expect("free");
            limiter.release(&lease).await.expect("release");
        }
        assert_eq!(keys(&limiter), 0);
        // Leases that lapse unreleased are swept once keys pile up.
        for _ in 0..10_001 {
            let key = RateLimitKey::media_stream(CallId::new());
            let _ = limiter.acquire(&key, 1, Duration::from_secs(30)).await;
        }
        assert_eq!(keys(&limiter), 10_001);
        clock.advance(chrono::Duration::seconds(31));
        let key = RateLimitKey::media_stream(CallId::new());
        let _ = limiter.acquire(&key, 1, Duration::from_secs(30)).await;
        assert_eq!(keys(&limiter), 1, "only the live lease is left");
    }
}
