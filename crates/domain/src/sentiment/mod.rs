//! Sentiment: a score in −1..=1 with its label, and per-call aggregation.

mod aggregate;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

pub use aggregate::{
    SentimentSummary, SentimentTracker, SentimentTrend, TrackerConfig, TrackerConfigError,
};

/// Scores at or below this are [`SentimentLabel::Negative`].
pub const NEGATIVE_BELOW: f64 = -0.25;
/// Scores at or above this are [`SentimentLabel::Positive`].
pub const POSITIVE_ABOVE: f64 = 0.25;

/// The coarse reading of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    /// Score ≤ −0.25.
    Negative,
    /// Score strictly between −0.25 and 0.25.
    Neutral,
    /// Score ≥ 0.25.
    Positive,
}

impl SentimentLabel {
    /// The stable name used in storage, the API and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }
}

/// A score outside −1..=1 (or NaN).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("sentiment score {0} is outside -1..=1")]
pub struct InvalidSentiment(pub f64);

/// A sentiment score in −1.0 (very negative) ..= 1.0 (very positive).
///
/// The label is derived from the score, so the two can never disagree.
#[derive(Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Sentiment {
    score: f64,
}

impl Sentiment {
    /// Neutral (0.0).
    pub const NEUTRAL: Self = Self { score: 0.0 };

    /// A score in −1..=1.
    ///
    /// # Errors
    /// [`InvalidSentiment`] when the score is out of range or not a number.
    pub fn new(score: f64) -> Result<Self, InvalidSentiment> {
        if score.is_finite() && (-1.0..=1.0).contains(&score) {
            // Normalise -0.0 so equal scores compare and print equally.
            Ok(Self { score: score + 0.0 })
        } else {
            Err(InvalidSentiment(score))
        }
    }

    /// Clamps any finite score into range (NaN becomes neutral). For provider
    /// outputs that are known to overshoot slightly.
    #[must_use]
    pub fn saturating(score: f64) -> Self {
        if score.is_nan() {
            Self::NEUTRAL
        } else {
            Self {
                score: score.clamp(-1.0, 1.0) + 0.0,
            }
        }
    }

    /// The score.
    #[must_use]
    pub const fn score(self) -> f64 {
        self.score
    }

    /// The label the score falls in.
    #[must_use]
    pub fn label(self) -> SentimentLabel {
        if self.score <= NEGATIVE_BELOW {
            SentimentLabel::Negative
        } else if self.score >= POSITIVE_ABOVE {
            SentimentLabel::Positive
        } else {
            SentimentLabel::Neutral
        }
    }
}

impl fmt::Debug for Sentiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sentiment({:+.3}, {})",
            self.score,
            self.label().as_str()
        )
    }
}

impl fmt::Display for Sentiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.2} ({})", self.score, self.label().as_str())
    }
}

impl TryFrom<f64> for Sentiment {
    type Error = InvalidSentiment;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl<'de> Deserialize<'de> for Sentiment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            score: f64,
        }
        let raw = Raw::deserialize(deserializer)?;
        Self::new(raw.score).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_follow_thresholds() {
        let label = |s: f64| Sentiment::new(s).expect("in range").label();
        assert_eq!(label(-1.0), SentimentLabel::Negative);
        assert_eq!(label(-0.25), SentimentLabel::Negative);
        assert_eq!(label(-0.24), SentimentLabel::Neutral);
        assert_eq!(label(0.0), SentimentLabel::Neutral);
        assert_eq!(label(0.24), SentimentLabel::Neutral);
        assert_eq!(label(0.25), SentimentLabel::Positive);
        assert_eq!(label(1.0), SentimentLabel::Positive);
    }

    #[test]
    fn rejects_out_of_range_and_nan() {
        assert!(Sentiment::new(1.0001).is_err());
        assert!(Sentiment::new(-1.5).is_err());
        assert!(Sentiment::new(f64::NAN).is_err());
        assert!(Sentiment::new(f64::INFINITY).is_err());
    }

    #[test]
    fn saturating_clamps() {
        assert_eq!(Sentiment::saturating(3.0).score(), 1.0);
        assert_eq!(Sentiment::saturating(-3.0).score(), -1.0);
        assert_eq!(Sentiment::saturating(f64::NAN), Sentiment::NEUTRAL);
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let s = Sentiment::new(-0.5).expect("valid");
        let json = serde_json::to_string(&s).expect("ser");
        assert_eq!(json, r#"{"score":-0.5}"#);
        assert_eq!(serde_json::from_str::<Sentiment>(&json).expect("de"), s);
        assert!(serde_json::from_str::<Sentiment>(r#"{"score":2.0}"#).is_err());
    }

    proptest! {
        #[test]
        fn new_accepts_exactly_the_range(score in -2.0f64..2.0) {
            prop_assert_eq!(Sentiment::new(score).is_ok(), (-1.0..=1.0).contains(&score));
        }
    }
}
