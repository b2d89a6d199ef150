use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CustomerId, Email, Language, OrgId, PhoneNumber};

/// How a customer is treated; the escalation policy can send VIPs straight to a
/// human.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CustomerTier {
    /// Everyone, by default.
    #[default]
    Standard,
    /// Paying more; may get priority routing.
    Premium,
    /// Highest value.
    Vip,
}

impl CustomerTier {
    /// The stable name used in storage and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Premium => "premium",
            Self::Vip => "vip",
        }
    }
}

/// A person who calls or is called. Unique by phone number within an organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Identity.
    pub id: CustomerId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Their number (the key inbound calls are matched on).
    pub phone: PhoneNumber,
    /// Name, if known.
    pub name: Option<String>,
    /// E-mail, if known.
    pub email: Option<Email>,
    /// Treatment tier.
    pub tier: CustomerTier,
    /// Preferred language, if known.
    pub language: Option<Language>,
    /// Free-form attributes from the operator's CRM (plan, account number, ...).
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}
