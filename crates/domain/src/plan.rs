//! Subscription plans and languages: small closed vocabularies parsed at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an organisation pays for; the plan selects its rate-limit tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// The default for new organisations.
    Free,
    /// Paid self-serve.
    Pro,
    /// Contracted; highest limits.
    Enterprise,
}

impl Plan {
    /// All plans, cheapest first.
    pub const ALL: [Self; 3] = [Self::Free, Self::Pro, Self::Enterprise];

    /// The stable name used in configuration, the API and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan `{0}` (expected free, pro or enterprise)")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Ok(Self::Free),
            "pro" => Ok(Self::Pro),
            "enterprise" => Ok(Self::Enterprise),
            _ => Err(UnknownPlan(s.chars().take(32).collect())),
        }
    }
}

/// A BCP 47 language tag restricted to the shapes speech providers accept:
/// a 2–3 letter language, optionally a 4-letter script and a 2-letter or 3-digit
/// region (`en`, `en-US`, `pt-BR`, `zh-Hans-CN`, `es-419`). Normalised to the
/// canonical case (`en-US`, `zh-Hans-CN`); `_` is accepted as a separator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Language(String);

/// A string that is not a supported language tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a language tag like `en` or `en-US`")]
pub struct InvalidLanguage(pub String);

impl Language {
    /// Parses and normalises a tag.
    ///
    /// # Errors
    /// [`InvalidLanguage`] for anything but `language[-Script][-REGION]`.
    pub fn parse(input: &str) -> Result<Self, InvalidLanguage> {
        let bad = || InvalidLanguage(input.chars().take(32).collect());
        let mut parts = input.trim().split(['-', '_']);
        let lang = parts
            .next()
            .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
        let mut out = lang.ok_or_else(bad)?.to_ascii_lowercase();
        let mut seen_script = false;
        let mut seen_region = false;
        for part in parts {
            let is_script = part.len() == 4 && part.chars().all(|c| c.is_ascii_alphabetic());
            let is_region = (part.len() == 2 && part.chars().all(|c| c.is_ascii_alphabetic()))
                || (part.len() == 3 && part.chars().all(|c| c.is_ascii_digit()));
            if is_script && !seen_script && !seen_region {
                seen_script = true;
                out.push('-');
                let mut chars = part.chars();
                if let Some(first) = chars.next() {
                    out.push(first.to_ascii_uppercase());
                }
                out.extend(chars.map(|c| c.to_ascii_lowercase()));
            } else if is_region && !seen_region {
                seen_region = true;
                out.push('-');
                out.push_str(&part.to_ascii_uppercase());
            } else {
                return Err(bad());
            }
        }
        Ok(Self(out))
    }

    /// The canonical tag, e.g. `en-US`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language subtag, e.g. `en` for `en-US`.
    #[must_use]
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl Default for Language {
    /// `en-US`.
    fn default() -> Self {
        Self("en-US".to_owned())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Language {
    type Err = InvalidLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parses_case_insensitively_and_round_trips() {
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>(), Ok(plan));
            assert_eq!(plan.as_str().to_uppercase().parse::<Plan>(), Ok(plan));
            let json = serde_json::to_string(&plan).expect("ser");
            assert_eq!(json, format!("\"{}\"", plan.as_str()));
        }
        assert!("gold".parse::<Plan>().is_err());
        assert!(Plan::Free < Plan::Pro && Plan::Pro < Plan::Enterprise);
    }

    #[test]
    fn language_normalises_case_and_separators() {
        assert_eq!(Language::parse("en").expect("en").as_str(), "en");
        assert_eq!(Language::parse("EN_us").expect("en-US").as_str(), "en-US");
        assert_eq!(Language::parse("pt-br").expect("pt-BR").as_str(), "pt-BR");
        assert_eq!(
            Language::parse("zh-hans-cn").expect("zh").as_str(),
            "zh-Hans-CN"
        );
        assert_eq!(
            Language::parse("es-419").expect("es-419").as_str(),
            "es-419"
        );
        assert_eq!(Language::parse("en-US").expect("en").primary(), "en");
    }

    #[test]
    fn language_rejects_other_shapes() {
        for bad in [
            "",
            "e",
            "english",
            "en-",
            "en-USA1",
            "en-US-CA",
            "en-US-Latn",
            "12",
            "en US",
        ] {
            assert!(Language::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn language_deserialize_validates() {
        let l: Language = serde_json::from_str("\"fr_fr\"").expect("de");
        assert_eq!(l.as_str(), "fr-FR");
        assert!(serde_json::from_str::<Language>("\"french\"").is_err());
    }
}
