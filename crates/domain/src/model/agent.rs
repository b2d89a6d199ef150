use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AgentId, Email, OrgId, PhoneNumber};

/// A capability a human agent has and an escalation may require, e.g. `billing`,
/// `spanish`, `vip`. Lower-case ASCII letters, digits, `-` and `_`, 1–64 long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Skill(String);

/// A string that is not a valid skill name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a skill name (lower-case letters, digits, - and _; 1-64 long)")]
pub struct InvalidSkill(pub String);

impl Skill {
    /// Parses a skill name, lower-casing it.
    ///
    /// # Errors
    /// [`InvalidSkill`] for empty, over-long or otherwise malformed names.
    pub fn parse(input: &str) -> Result<Self, InvalidSkill> {
        let s = input.trim().to_ascii_lowercase();
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidSkill(input.chars().take(64).collect()))
        }
    }

    /// The skill name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Skill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Skill {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Whether a human agent can take calls now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Signed in and taking calls.
    Available,
    /// Signed in, temporarily not taking calls (break, wrap-up).
    Away,
    /// Not signed in.
    Offline,
}

/// A human agent who can take escalated calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanAgent {
    /// Identity.
    pub id: AgentId,
    /// Owning organisation.
    pub org_id: OrgId,
    /// Display name.
    pub name: String,
    /// Contact e-mail, if any.
    pub email: Option<Email>,
    /// Where transfers are sent: a phone number ...
    pub phone: Option<PhoneNumber>,
    /// ... or a SIP URI (`sip:alice@pbx.example.com`).
    pub sip_uri: Option<String>,
    /// What the agent can handle.
    pub skills: BTreeSet<Skill>,
    /// Whether the agent takes calls now.
    pub availability: Availability,
    /// Most calls the agent handles at once (≥ 1).
    pub max_concurrent_calls: u32,
    /// Calls the agent handles now.
    pub active_calls: u32,
}

impl HumanAgent {
    /// Calls the agent can still take.
    #[must_use]
    pub fn capacity_left(&self) -> u32 {
        self.max_concurrent_calls.saturating_sub(self.active_calls)
    }

    /// Whether the agent has every skill in `required`.
    #[must_use]
    pub fn has_skills<'a>(&self, required: impl IntoIterator<Item = &'a Skill>) -> bool {
        required.into_iter().all(|s| self.skills.contains(s))
    }

    /// Whether a call can be transferred to the agent at all (a number or URI).
    #[must_use]
    pub fn is_reachable(&self) -> bool {
        self.phone.is_some() || self.sip_uri.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_names_are_normalised_and_validated() {
        assert_eq!(Skill::parse(" Billing ").expect("ok").as_str(), "billing");
        assert_eq!(
            Skill::parse("tier_2-support").expect("ok").as_str(),
            "tier_2-support"
        );
        for bad in ["", "two words", "café", &"x".repeat(65)] {
            assert!(Skill::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Skill>("\"no spaces\"").is_err());
    }

    #[test]
    fn capacity_and_skills() {
        let billing = Skill::parse("billing").expect("ok");
        let spanish = Skill::parse("spanish").expect("ok");
        let agent = HumanAgent {
            id: AgentId::new(),
            org_id: OrgId::new(),
            name: "Ana".into(),
            email: None,
            phone: None,
            sip_uri: Some("sip:ana@pbx.example.com".into()),
            skills: [billing.clone()].into_iter().collect(),
            availability: Availability::Available,
            max_concurrent_calls: 2,
            active_calls: 3,
        };
        assert_eq!(agent.capacity_left(), 0, "over capacity saturates at zero");
        assert!(agent.has_skills([&billing]));
        assert!(!agent.has_skills([&billing, &spanish]));
        assert!(agent.has_skills([]));
        assert!(agent.is_reachable());
    }
}
