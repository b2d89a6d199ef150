use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::call::CallOutcome;
use crate::{ExperimentId, OrgId, PersonaId, Sentiment, SentimentLabel, VariantId};

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Being set up; assigns nobody.
    Draft,
    /// Assigning callers and counting outcomes.
    Running,
    /// Temporarily assigning nobody; counts kept.
    Paused,
    /// Finished; assigns nobody.
    Completed,
}

/// What counts as a conversion for an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentMetric {
    /// The call ended with a successful outcome (sale, booking, resolution).
    Conversion,
    /// The call was resolved without a transfer to a human.
    ResolvedWithoutEscalation,
    /// The caller's final sentiment was positive.
    PositiveSentiment,
}

impl ExperimentMetric {
    /// Whether a call counts as a conversion under this metric: its outcome,
    /// whether it went to a human, and the caller's last scored sentiment.
    #[must_use]
    pub fn achieved(
        self,
        outcome: CallOutcome,
        escalated: bool,
        last_sentiment: Option<Sentiment>,
    ) -> bool {
        match self {
            Self::Conversion => outcome.is_success(),
            Self::ResolvedWithoutEscalation => outcome.is_success() && !escalated,
            Self::PositiveSentiment => {
                last_sentiment.is_some_and(|s| s.label() == SentimentLabel::Positive)
            }
        }
    }
}

/// One arm of an experiment: a persona (and optionally a script) with a weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Identity.
    pub id: VariantId,
    /// Label ("control", "friendly-v2").
    pub name: String,
    /// The persona callers in this arm get.
    pub persona_id: PersonaId,
    /// Relative share of callers (> 0).
    pub weight: u32,
    /// Whether this arm is the baseline others are compared against.
    pub is_control: bool,
}

/// An A/B (or A/B/n) test over personas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Identity.
    pub id: ExperimentId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Display name.
    pub name: String,
    /// Mixed into the bucketing hash so that two experiments split the same callers
    /// independently. Fixed at creation: changing it reshuffles everyone.
    pub salt: String,
    /// Life-cycle state.
    pub status: ExperimentStatus,
    /// What is measured.
    pub metric: ExperimentMetric,
    /// The arms; exactly one is the control.
    pub variants: Vec<Variant>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub ended_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_metric_counts_its_own_kind_of_success() {
        let happy = Sentiment::new(0.6).ok();
        let upset = Sentiment::new(-0.6).ok();
        let m = ExperimentMetric::Conversion;
        assert!(m.achieved(CallOutcome::Converted, false, upset));
        assert!(m.achieved(CallOutcome::Resolved, true, None));
        assert!(!m.achieved(CallOutcome::Abandoned, false, happy));
        let m = ExperimentMetric::ResolvedWithoutEscalation;
        assert!(m.achieved(CallOutcome::Resolved, false, None));
        assert!(!m.achieved(CallOutcome::Resolved, true, None));
        assert!(!m.achieved(CallOutcome::Escalated, true, happy));
        let m = ExperimentMetric::PositiveSentiment;
        assert!(m.achieved(CallOutcome::Unresolved, false, happy));
        assert!(!m.achieved(CallOutcome::Resolved, false, upset));
        assert!(!m.achieved(CallOutcome::Resolved, false, None));
    }
}
