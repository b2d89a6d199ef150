use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ExperimentId, OrgId, PersonaId, VariantId};

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
