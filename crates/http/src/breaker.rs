//! A circuit breaker per provider: closed → open when, within the sliding
//! `window`, there were at least `failure_threshold` failures and they were at
//! least half of the calls → after `open_for`, half-open: one probe goes
//! through; its success closes the circuit, its failure opens it again; a
//! probe abandoned without an answer (its caller gave up) lets the next caller
//! probe.
//!
//! The window is kept in ten buckets, so memory is constant whatever the call
//! rate. Time is passed in (`Instant`), so the state machine is tested without
//! sleeping.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// The breaker's state, for metrics and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused without being sent.
    Open,
    /// One probe is allowed to test recovery.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// 0 closed, 1 half-open, 2 open (a gauge value).
    #[must_use]
    pub const fn as_gauge(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

const BUCKETS: usize = 10;

/// Outcomes in the sliding window, in `BUCKETS` slices of `window / BUCKETS`.
#[derive(Debug, Clone)]
struct Window {
    /// Each bucket: the slice it counts (its index since `origin`), successes,
    /// failures.
    buckets: [(u64, u32, u32); BUCKETS],
    origin: Instant,
    slice: Duration,
}

impl Window {
    fn new(window: Duration, now: Instant) -> Self {
        Self {
            buckets: [(u64::MAX, 0, 0); BUCKETS],
            origin: now,
            slice: (window / u32::try_from(BUCKETS).unwrap_or(10)).max(Duration::from_millis(1)),
        }
    }

    fn slice_of(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed / self.slice.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    fn record(&mut self, now: Instant, failed: bool) {
        let slice = self.slice_of(now);
        let index = usize::try_from(slice % BUCKETS as u64).unwrap_or(0);
        let bucket = &mut self.buckets[index];
        if bucket.0 != slice {
            *bucket = (slice, 0, 0);
        }
        if failed {
            bucket.2 = bucket.2.saturating_add(1);
        } else {
            bucket.1 = bucket.1.saturating_add(1);
        }
    }

    /// Successes and failures in the window ending at `now`.
    fn totals(&self, now: Instant) -> (u32, u32) {
        let current = self.slice_of(now);
        self.buckets
            .iter()
            .filter(|(slice, _, _)| *slice <= current && current - *slice < BUCKETS as u64)
            .fold((0u32, 0u32), |(s, f), (_, bs, bf)| {
                (s.saturating_add(*bs), f.saturating_add(*bf))
            })
    }
}

#[derive(Debug)]
enum Inner {
    Closed { window: Window },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One provider's breaker. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct CircuitBreaker {
    provider: &'static str,
    threshold: u32,
    window: Duration,
    open_for: Duration,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker for `provider`.
    #[must_use]
    pub fn new(provider: &'static str, config: &BreakerConfig) -> Self {
        let window = Duration::from_millis(config.window_ms.max(1));
        Self {
            provider,
            threshold: config.failure_threshold.max(1),
            window,
            open_for: Duration::from_millis(config.open_ms),
            inner: Mutex::new(Inner::Closed {
                window: Window::new(window, Instant::now()),
            }),
        }
    }

    /// The provider it guards.
    #[must_use]
    pub const fn provider(&self) -> &'static str {
        self.provider
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state at `now` (an open breaker whose time is up reads half-open).
    #[must_use]
    pub fn state_at(&self, now: Instant) -> BreakerState {
        match &*self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= *until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// The state now.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    /// Whether a request may be sent at `now`. In half-open, only the first
    /// caller gets through (the probe) until it reports back.
    pub fn try_acquire_at(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } => {
                if now >= *until {
                    *inner = Inner::HalfOpen { probing: true };
                    tracing::info!(provider = self.provider, "circuit half-open: probing");
                    true
                } else {
                    false
                }
            }
            Inner::HalfOpen { probing } => {
                if *probing {
                    false
                } else {
                    *probing = true;
                    true
                }
            }
        }
    }

    /// [`try_acquire_at`](Self::try_acquire_at) now.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    /// The provider answered at `now` (any status below 500: it is up).
    pub fn on_success_at(&self, now: Instant) {
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed { window } => window.record(now, false),
            Inner::HalfOpen { .. } => {
                tracing::info!(
                    provider = self.provider,
                    "circuit closed: provider recovered"
                );
                *inner = Inner::Closed {
                    window: Window::new(self.window, now),
                };
            }
            Inner::Open { .. } => {}
        }
    }

    /// [`on_success_at`](Self::on_success_at) now.
    pub fn on_success(&self) {
        self.on_success_at(Instant::now());
    }

    /// The provider failed at `now` (5xx, timeout, connection error).
    pub fn on_failure_at(&self, now: Instant) {
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed { window } => {
                window.record(now, true);
                let (successes, failures) = window.totals(now);
                if failures >= self.threshold && failures >= successes {
                    tracing::warn!(
                        provider = self.provider,
                        failures,
                        successes,
                        "circuit open: provider failing"
                    );
                    *inner = Inner::Open {
                        until: now + self.open_for,
                    };
                }
            }
            Inner::HalfOpen { .. } => {
                tracing::warn!(provider = self.provider, "circuit open again: probe failed");
                *inner = Inner::Open {
                    until: now + self.open_for,
                };
            }
            Inner::Open { .. } => {}
        }
    }

    /// [`on_failure_at`](Self::on_failure_at) now.
    pub fn on_failure(&self) {
        self.on_failure_at(Instant::now());
    }

    /// A probe ended without an answer either way (cancelled): let another
    /// caller probe.
    pub fn on_abandoned(&self) {
        if let Inner::HalfOpen { probing } = &mut *self.lock() {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "test",
            &BreakerConfig {
                failure_threshold: 3,
                window_ms: 1_000,
                open_ms: 500,
            },
        )
    }

    #[test]
    fn opens_after_threshold_failures_within_the_window() {
        let b = breaker();
        let t0 = Instant::now();
        b.on_failure_at(t0);
        b.on_failure_at(t0 + Duration::from_millis(100));
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        b.on_failure_at(t0 + Duration::from_millis(200));
        assert_eq!(
            b.state_at(t0 + Duration::from_millis(200)),
            BreakerState::Open
        );
        assert!(!b.try_acquire_at(t0 + Duration::from_millis(300)));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let b = breaker();
        let t0 = Instant::now();
        b.on_failure_at(t0);
        b.on_failure_at(t0 + Duration::from_millis(1_500));
        b.on_failure_at(t0 + Duration::from_millis(1_600));
        assert_eq!(
            b.state_at(t0 + Duration::from_millis(1_600)),
            BreakerState::Closed
        );
    }

    #[test]
    fn failures_open_it_only_when_they_are_at_least_half_the_calls() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..4 {
            b.on_success_at(t0);
        }
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        assert_eq!(b.state_at(t0), BreakerState::Closed, "3 of 7 failed");
        b.on_failure_at(t0);
        assert_eq!(b.state_at(t0), BreakerState::Open, "4 of 8 failed");
    }

    #[test]
    fn an_occasional_success_does_not_hide_a_failing_provider() {
        let b = breaker();
        let t0 = Instant::now();
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        b.on_success_at(t0);
        b.on_failure_at(t0);
        assert_eq!(b.state_at(t0), BreakerState::Open, "3 of 4 failed");
    }

    #[test]
    fn successes_age_out_of_the_window_too() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..100 {
            b.on_success_at(t0);
        }
        let later = t0 + Duration::from_millis(1_500);
        for _ in 0..3 {
            b.on_failure_at(later);
        }
        assert_eq!(b.state_at(later), BreakerState::Open);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_result_decides() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            b.on_failure_at(t0);
        }
        let later = t0 + Duration::from_millis(600);
        assert_eq!(b.state_at(later), BreakerState::HalfOpen);
        assert!(b.try_acquire_at(later), "the probe");
        assert!(!b.try_acquire_at(later), "only one probe at a time");
        b.on_failure_at(later);
        assert_eq!(b.state_at(later), BreakerState::Open);

        let again = later + Duration::from_millis(600);
        assert!(b.try_acquire_at(again));
        b.on_success_at(again);
        assert_eq!(b.state_at(again), BreakerState::Closed);
        assert!(b.try_acquire_at(again));
    }

    #[test]
    fn an_abandoned_probe_lets_another_caller_probe() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            b.on_failure_at(t0);
        }
        let later = t0 + Duration::from_millis(600);
        assert!(b.try_acquire_at(later));
        b.on_abandoned();
        assert!(b.try_acquire_at(later));
    }
}
