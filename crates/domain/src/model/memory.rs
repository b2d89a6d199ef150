use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CallId, CustomerId, Embedding, MemoryId, OrgId};

/// How much a memory matters, 0.0 (trivia) ..= 1.0 (must not be forgotten).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Importance(f64);

/// An importance outside 0..=1 (or NaN).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("importance {0} is outside 0..=1")]
pub struct InvalidImportance(pub f64);

impl Importance {
    /// Importance 0.5, for memories nobody rated.
    pub const DEFAULT: Self = Self(0.5);

    /// A value in 0..=1.
    ///
    /// # Errors
    /// [`InvalidImportance`] when out of range or NaN.
    pub fn new(value: f64) -> Result<Self, InvalidImportance> {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(InvalidImportance(value))
        }
    }

    /// The value.
    #[must_use]
    pub const fn value(self) -> f64 {
        self.0
    }
}

impl Default for Importance {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl<'de> Deserialize<'de> for Importance {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// What IACE remembers about a customer: typically one snapshot per call (a summary
/// and the facts learned), retrieved by similarity and weighted by age and
/// importance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMemory {
    /// Identity.
    pub id: MemoryId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Whom it is about.
    pub customer_id: CustomerId,
    /// The call it came from, if any.
    pub call_id: Option<CallId>,
    /// A short summary ("Asked to move the appointment to Friday").
    pub summary: String,
    /// Discrete facts ("prefers mornings", "account 4411").
    pub facts: Vec<String>,
    /// How much it matters.
    pub importance: Importance,
    /// Embedding of the summary, used for retrieval.
    pub embedding: Option<Embedding>,
    /// When it was learned.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_is_bounded() {
        assert!(Importance::new(0.0).is_ok());
        assert!(Importance::new(1.0).is_ok());
        assert!(Importance::new(1.01).is_err());
        assert!(Importance::new(-0.1).is_err());
        assert!(Importance::new(f64::NAN).is_err());
        assert!(serde_json::from_str::<Importance>("2.0").is_err());
        assert_eq!(
            serde_json::from_str::<Importance>("0.75")
                .expect("ok")
                .value(),
            0.75
        );
    }
}
