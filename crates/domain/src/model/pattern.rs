use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Embedding, OrgId, PatternId};

/// What a learned pattern is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// How to open a call.
    Opening,
    /// A response to an objection or complaint.
    ObjectionHandling,
    /// A way of resolving a common request.
    Resolution,
    /// How to close or convert.
    Closing,
    /// A phrase that tends to calm an upset caller.
    Deescalation,
}

/// Something that worked (or not) on earlier calls, retrieved by similarity to the
/// current conversation and ranked by its smoothed success rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedPattern {
    /// Identity.
    pub id: PatternId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// What it is for.
    pub kind: PatternKind,
    /// The situation it applies to ("caller disputes a late fee").
    pub trigger: String,
    /// What to say or do.
    pub response: String,
    /// Embedding of `trigger`, used for retrieval.
    pub embedding: Option<Embedding>,
    /// Calls that used it.
    pub uses: u32,
    /// Of those, calls whose outcome was a success.
    pub successes: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last call that used it.
    pub last_used_at: Option<DateTime<Utc>>,
}
