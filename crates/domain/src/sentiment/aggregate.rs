//! Per-call sentiment aggregation: a rolling view of how the caller feels.
//!
//! A [`SentimentTracker`] receives one [`Sentiment`] per caller turn and summarises
//! them in constant memory:
//!
//! - **EMA** (exponential moving average) `ema ← α·score + (1 − α)·ema`, seeded
//!   with the first score. Per-turn scores are noisy (one curt "fine." reads as
//!   negative); the EMA is the smoothed "current mood" that escalation rules should
//!   read. `α` = 0.3 weighs the latest turn at 30 % and forgets a turn's influence
//!   to below 10 % after about seven turns.
//! - **mean, min, max** over the whole call, for the call record and analytics.
//! - **trend**: the least-squares slope of the last `trend_window` scores against
//!   the turn index, in score units per turn:
//!
//!   ```text
//!   slope = Σ (i − ī)(yᵢ − ȳ) / Σ (i − ī)²
//!   ```
//!
//!   compared with `±trend_threshold`. A regression over a short window, rather
//!   than "last minus first", uses every recent turn, so one outlier does not flip
//!   the trend; the window keeps it about *now* rather than the whole call. Fewer
//!   than two scores have no slope and read as stable.
//!
//! Only the last `trend_window` scores are stored, plus running sum, count, min,
//! max and EMA, so a tracker's memory does not grow with the call's length.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Sentiment;

/// Why a [`TrackerConfig`] is invalid.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum TrackerConfigError {
    /// The EMA weight is not in (0, 1].
    #[error("EMA alpha {0} is outside (0, 1]")]
    EmaAlpha(f64),
    /// The trend window is shorter than 2 or longer than
    /// [`TrackerConfig::MAX_TREND_WINDOW`].
    #[error("trend window {0} is outside 2..={max}", max = TrackerConfig::MAX_TREND_WINDOW)]
    TrendWindow(usize),
    /// The trend threshold is negative, infinite or NaN.
    #[error("trend threshold {0} is not a finite, non-negative number")]
    TrendThreshold(f64),
}

/// How a [`SentimentTracker`] smooths and reads the trend.
///
/// Missing fields take their defaults when deserializing; call
/// [`TrackerConfig::validate`] after loading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Weight of the newest score in the EMA, in (0, 1] (default 0.3; 1 means "the
    /// EMA is the last score").
    pub ema_alpha: f64,
    /// Number of recent scores the trend is fitted to (default 5), 2..=1024.
    pub trend_window: usize,
    /// Slope, in score units per turn, beyond which the trend is improving or
    /// declining (default 0.05: a steady drift of 0.2 over five turns).
    pub trend_threshold: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            ema_alpha: 0.3,
            trend_window: 5,
            trend_threshold: 0.05,
        }
    }
}

impl TrackerConfig {
    /// Largest accepted `trend_window`; [`SentimentTracker::new`] clamps longer
    /// windows to it so a misconfiguration cannot make a tracker's memory unbounded.
    pub const MAX_TREND_WINDOW: usize = 1024;

    /// Checks every field's range.
    ///
    /// # Errors
    /// The first [`TrackerConfigError`] found.
    pub fn validate(&self) -> Result<(), TrackerConfigError> {
        if !(self.ema_alpha > 0.0 && self.ema_alpha <= 1.0) {
            return Err(TrackerConfigError::EmaAlpha(self.ema_alpha));
        }
        if !(2..=Self::MAX_TREND_WINDOW).contains(&self.trend_window) {
            return Err(TrackerConfigError::TrendWindow(self.trend_window));
        }
        if !(self.trend_threshold.is_finite() && self.trend_threshold >= 0.0) {
            return Err(TrackerConfigError::TrendThreshold(self.trend_threshold));
        }
        Ok(())
    }
}

/// Where the caller's mood is heading over the recent turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentTrend {
    /// Slope above the threshold.
    Improving,
    /// Slope within ±threshold, or fewer than two turns.
    Stable,
    /// Slope below −threshold.
    Declining,
}

impl SentimentTrend {
    /// The stable name used in storage, the API and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Improving => "improving",
            Self::Stable => "stable",
            Self::Declining => "declining",
        }
    }
}

impl fmt::Display for SentimentTrend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call's sentiment so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SentimentSummary {
    /// Scores received (saturating at `u32::MAX`).
    pub turns: u32,
    /// The latest score.
    pub last: Sentiment,
    /// Exponential moving average: the smoothed current mood.
    pub ema: Sentiment,
    /// Mean over the whole call.
    pub mean: Sentiment,
    /// Lowest score of the call.
    pub min: Sentiment,
    /// Highest score of the call.
    pub max: Sentiment,
    /// Direction over the last `trend_window` turns.
    pub trend: SentimentTrend,
}

/// Rolling per-call sentiment: push one score per caller turn, read a
/// [`SentimentSummary`] at any time. Memory is bounded by the trend window.
#[derive(Debug, Clone)]
pub struct SentimentTracker {
    alpha: f64,
    window_len: usize,
    threshold: f64,
    window: VecDeque<f64>,
    stats: Option<Stats>,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    ema: f64,
    last: Sentiment,
}

impl SentimentTracker {
    /// A tracker with no turns yet.
    ///
    /// Never fails: settings that [`TrackerConfig::validate`] would reject are
    /// made usable instead — an `ema_alpha` outside (0, 1] is clamped into it (NaN
    /// becomes the default 0.3), `trend_window` is clamped to 2..=1024, and a
    /// negative or NaN threshold is taken as 0 (any slope counts).
    #[must_use]
    pub fn new(config: TrackerConfig) -> Self {
        let alpha = if config.ema_alpha.is_nan() {
            TrackerConfig::default().ema_alpha
        } else {
            config.ema_alpha.clamp(f64::MIN_POSITIVE, 1.0)
        };
        let window_len = config
            .trend_window
            .clamp(2, TrackerConfig::MAX_TREND_WINDOW);
        let threshold = if config.trend_threshold >= 0.0 {
            config.trend_threshold
        } else {
            0.0
        };
        Self {
            alpha,
            window_len,
            threshold,
            window: VecDeque::with_capacity(window_len),
            stats: None,
        }
    }

    /// Adds the score of the caller's latest turn.
    pub fn push(&mut self, sentiment: Sentiment) {
        let score = sentiment.score();
        if self.window.len() == self.window_len {
            self.window.pop_front();
        }
        self.window.push_back(score);
        self.stats = Some(match self.stats {
            None => Stats {
                count: 1,
                sum: score,
                min: score,
                max: score,
                ema: score,
                last: sentiment,
            },
            Some(s) => Stats {
                count: s.count.saturating_add(1),
                sum: s.sum + score,
                min: s.min.min(score),
                max: s.max.max(score),
                ema: self.alpha * score + (1.0 - self.alpha) * s.ema,
                last: sentiment,
            },
        });
    }

    /// The summary so far, or `None` before the first turn.
    ///
    /// Mean and EMA are kept within `[min, max]` (floating-point rounding could
    /// otherwise put them a hair outside).
    #[must_use]
    pub fn summary(&self) -> Option<SentimentSummary> {
        let s = self.stats?;
        let mean = s.sum / s.count as f64;
        Some(SentimentSummary {
            turns: u32::try_from(s.count).unwrap_or(u32::MAX),
            last: s.last,
            ema: Sentiment::saturating(s.ema.clamp(s.min, s.max)),
            mean: Sentiment::saturating(mean.clamp(s.min, s.max)),
            min: Sentiment::saturating(s.min),
            max: Sentiment::saturating(s.max),
            trend: self.trend(),
        })
    }

    fn trend(&self) -> SentimentTrend {
        match slope(&self.window) {
            Some(slope) if slope > self.threshold => SentimentTrend::Improving,
            Some(slope) if slope < -self.threshold => SentimentTrend::Declining,
            _ => SentimentTrend::Stable,
        }
    }
}

/// Least-squares slope of `ys` against their index; `None` for fewer than two
/// points.
fn slope(ys: &VecDeque<f64>) -> Option<f64> {
    let n = ys.len();
    if n < 2 {
        return None;
    }
    let x_mean = (n - 1) as f64 / 2.0;
    let y_mean = ys.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - x_mean;
        sxy += dx * (y - y_mean);
        sxx += dx * dx;
    }
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(score: f64) -> Sentiment {
        Sentiment::new(score).expect("in range")
    }

    fn track(scores: &[f64], config: TrackerConfig) -> SentimentSummary {
        let mut tracker = SentimentTracker::new(config);
        for &score in scores {
            tracker.push(s(score));
        }
        tracker.summary().expect("at least one turn")
    }

    fn close(a: Sentiment, b: f64) -> bool {
        (a.score() - b).abs() < 1e-12
    }

    #[test]
    fn no_summary_before_the_first_turn() {
        assert_eq!(
            SentimentTracker::new(TrackerConfig::default()).summary(),
            None
        );
    }

    #[test]
    fn single_turn_is_everything_and_stable() {
        let summary = track(&[-0.4], TrackerConfig::default());
        assert_eq!(summary.turns, 1);
        for v in [
            summary.last,
            summary.ema,
            summary.mean,
            summary.min,
            summary.max,
        ] {
            assert!(close(v, -0.4));
        }
        assert_eq!(summary.trend, SentimentTrend::Stable);
    }

    #[test]
    fn ema_matches_a_hand_computation() {
        // α = 0.3: 0.5 → 0.3·(−0.5) + 0.7·0.5 = 0.2 → 0.3·1.0 + 0.7·0.2 = 0.44.
        let summary = track(&[0.5, -0.5, 1.0], TrackerConfig::default());
        assert!(close(summary.ema, 0.44), "{:?}", summary.ema);
        // α = 1: the EMA is the last score.
        let last_only = TrackerConfig {
            ema_alpha: 1.0,
            ..TrackerConfig::default()
        };
        assert!(close(track(&[0.5, -0.5, 1.0], last_only).ema, 1.0));
    }

    #[test]
    fn min_max_mean_and_last() {
        let summary = track(&[0.2, -0.6, 0.8, 0.0], TrackerConfig::default());
        assert_eq!(summary.turns, 4);
        assert!(close(summary.min, -0.6));
        assert!(close(summary.max, 0.8));
        assert!(close(summary.mean, 0.1));
        assert!(close(summary.last, 0.0));
    }

    #[test]
    fn trend_follows_the_recent_slope() {
        let config = TrackerConfig::default();
        let up = track(&[-0.6, -0.4, -0.2, 0.0, 0.2], config);
        assert_eq!(up.trend, SentimentTrend::Improving);
        let down = track(&[0.5, 0.3, 0.1, -0.1, -0.3], config);
        assert_eq!(down.trend, SentimentTrend::Declining);
        let flat = track(&[0.1, 0.12, 0.09, 0.11, 0.1], config);
        assert_eq!(flat.trend, SentimentTrend::Stable);
        // A slope of exactly ±0.02 per turn is within the 0.05 threshold.
        let drift = track(&[0.0, 0.02, 0.04, 0.06, 0.08], config);
        assert_eq!(drift.trend, SentimentTrend::Stable);
        // Two points are enough for a slope.
        assert_eq!(track(&[-0.5, 0.5], config).trend, SentimentTrend::Improving);
    }

    #[test]
    fn trend_only_looks_at_the_window() {
        // A long decline followed by a recovery over the last five turns.
        let mut scores: Vec<f64> = (0..20).map(|i| 0.9 - 0.09 * f64::from(i)).collect();
        scores.extend([-0.8, -0.6, -0.4, -0.2, 0.0]);
        let summary = track(&scores, TrackerConfig::default());
        assert_eq!(summary.trend, SentimentTrend::Improving);
        assert!(close(summary.max, 0.9));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut tracker = SentimentTracker::new(TrackerConfig::default());
        for i in 0..10_000u32 {
            tracker.push(Sentiment::saturating(f64::from(i % 21) / 10.0 - 1.0));
        }
        assert_eq!(tracker.window.len(), 5);
        let summary = tracker.summary().expect("turns");
        assert_eq!(summary.turns, 10_000);
        assert!(close(summary.min, -1.0) && close(summary.max, 1.0));
    }

    #[test]
    fn config_validates() {
        assert_eq!(TrackerConfig::default().validate(), Ok(()));
        let with = |ema_alpha, trend_window, trend_threshold| TrackerConfig {
            ema_alpha,
            trend_window,
            trend_threshold,
        };
        for alpha in [0.0, -0.1, 1.01, f64::NAN] {
            assert!(matches!(
                with(alpha, 5, 0.05).validate(),
                Err(TrackerConfigError::EmaAlpha(_))
            ));
        }
        for window in [0, 1, TrackerConfig::MAX_TREND_WINDOW + 1] {
            assert_eq!(
                with(0.3, window, 0.05).validate(),
                Err(TrackerConfigError::TrendWindow(window))
            );
        }
        for threshold in [-0.01, f64::INFINITY, f64::NAN] {
            assert!(matches!(
                with(0.3, 5, threshold).validate(),
                Err(TrackerConfigError::TrendThreshold(_))
            ));
        }
        assert_eq!(
            TrackerConfigError::TrendWindow(1).to_string(),
            "trend window 1 is outside 2..=1024"
        );
    }

    #[test]
    fn invalid_config_is_made_usable() {
        let config = TrackerConfig {
            ema_alpha: f64::NAN,
            trend_window: usize::MAX,
            trend_threshold: f64::NAN,
        };
        let mut tracker = SentimentTracker::new(config);
        for i in 0..2_000 {
            tracker.push(s(if i % 2 == 0 { 0.5 } else { -0.5 }));
        }
        assert_eq!(tracker.window.len(), TrackerConfig::MAX_TREND_WINDOW);
        let summary = tracker.summary().expect("turns");
        assert!(summary.ema.score().is_finite());
        let zero_window = TrackerConfig {
            trend_window: 0,
            ..TrackerConfig::default()
        };
        assert_eq!(
            track(&[0.1, 0.9], zero_window).trend,
            SentimentTrend::Improving
        );
    }

    #[test]
    fn serde_shapes() {
        assert_eq!(
            serde_json::to_string(&SentimentTrend::Declining).expect("ser"),
            r#""declining""#
        );
        assert_eq!(SentimentTrend::Improving.as_str(), "improving");
        assert_eq!(SentimentTrend::Stable.to_string(), "stable");
        // α = 0.5 keeps every value exact in binary, so the round trip is exact.
        let halves = TrackerConfig {
            ema_alpha: 0.5,
            ..TrackerConfig::default()
        };
        let summary = track(&[0.5, -0.5], halves);
        let json = serde_json::to_string(&summary).expect("ser");
        assert!(json.contains(r#""trend":"declining""#), "{json}");
        let back: SentimentSummary = serde_json::from_str(&json).expect("de");
        assert_eq!(back, summary);
        let config: TrackerConfig = serde_json::from_str(r#"{"trend_window":8}"#).expect("de");
        assert_eq!(config.trend_window, 8);
        assert_eq!(config.ema_alpha, 0.3);
        assert!(serde_json::from_str::<TrackerConfig>(r#"{"alpha":0.5}"#).is_err());
    }

    proptest! {
        #[test]
        fn summary_values_are_consistent(
            scores in proptest::collection::vec(-1.0f64..=1.0, 1..200),
            ema_alpha in 0.01f64..=1.0,
            trend_window in 2usize..20,
        ) {
            let config = TrackerConfig { ema_alpha, trend_window, ..TrackerConfig::default() };
            let summary = track(&scores, config);
            let v = |x: Sentiment| x.score();
            for x in [summary.last, summary.ema, summary.mean, summary.min, summary.max] {
                prop_assert!((-1.0..=1.0).contains(&v(x)));
            }
            prop_assert!(v(summary.min) <= v(summary.mean) && v(summary.mean) <= v(summary.max));
            prop_assert!(v(summary.min) <= v(summary.ema) && v(summary.ema) <= v(summary.max));
            prop_assert_eq!(summary.turns as usize, scores.len());
            prop_assert!(v(summary.last) == *scores.last().expect("non-empty"));
        }

        #[test]
        fn monotone_sequences_never_read_as_the_opposite_trend(
            start in -1.0f64..0.0,
            steps in proptest::collection::vec(0.0f64..0.2, 1..10),
        ) {
            let mut scores = vec![start];
            for step in steps {
                let next = (scores[scores.len() - 1] + step).min(1.0);
                scores.push(next);
            }
            let up = track(&scores, TrackerConfig::default());
            prop_assert_ne!(up.trend, SentimentTrend::Declining);
            let reversed: Vec<f64> = scores.iter().rev().copied().collect();
            let down = track(&reversed, TrackerConfig::default());
            prop_assert_ne!(down.trend, SentimentTrend::Improving);
        }
    }
}
