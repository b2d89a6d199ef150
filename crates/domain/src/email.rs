//! E-mail addresses.
//!
//! [`Email`] does the syntax check that matters for sign-in and invitations: one
//! `@`, a non-empty local part of allowed characters, a domain of dot-separated
//! labels with a top-level label, and RFC 5321's length limits. The whole address
//! is lower-cased: the domain is case-insensitive by standard, and no mail
//! provider in practice distinguishes `Jane@` from `jane@`, so an address is one
//! account however it is typed.
//! `Display` and `Debug` are masked (`j***@example.com`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Empty after trimming.
    #[error("e-mail address is empty")]
    Empty,
    /// Longer than 254 characters, or a local part longer than 64.
    #[error("e-mail address is too long")]
    TooLong,
    /// Not exactly one `@` with text on both sides.
    #[error("e-mail address must have the form name@domain")]
    MissingAt,
    /// The part before `@` has a character or dot placement that is not allowed.
    #[error("e-mail address has an invalid name part")]
    InvalidLocalPart,
    /// The part after `@` is not a valid domain name with a top-level label.
    #[error("e-mail address has an invalid domain")]
    InvalidDomain,
}

/// A syntactically valid, lower-cased e-mail address.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    ///
    /// # Errors
    /// [`EmailError`] naming the part that is wrong.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::MissingAt)?;
        if local.is_empty() || domain.is_empty() || local.contains('@') {
            return Err(EmailError::MissingAt);
        }
        if local.len() > 64 {
            return Err(EmailError::TooLong);
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(EmailError::InvalidLocalPart);
        }
        let domain = domain.to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if !domain_ok {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Self(format!("{}@{domain}", local.to_ascii_lowercase())))
    }

    /// The full address. Do not log it: use the masked `Display` form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part, lower-cased.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// A form safe for logs: the first character of the name, then `***`.
    #[must_use]
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises_the_domain() {
        let e = Email::parse("  Jane.Doe+calls@Example.CO.uk ").expect("valid");
        assert_eq!(e.as_str(), "jane.doe+calls@example.co.uk");
        assert_eq!(
            Email::parse("JANE@EXAMPLE.COM").expect("valid"),
            Email::parse("jane@example.com").expect("valid")
        );
        assert_eq!(e.domain(), "example.co.uk");
    }

    #[test]
    fn rejects_malformed_addresses() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("jane.example.com"), Err(EmailError::MissingAt));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::MissingAt));
        assert_eq!(Email::parse("jane@"), Err(EmailError::MissingAt));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::MissingAt));
        assert_eq!(
            Email::parse(".jane@example.com"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("ja..ne@example.com"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("ja ne@example.com"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("jane@localhost"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(
            Email::parse("jane@-example.com"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(
            Email::parse("jane@example..com"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(
            Email::parse("jane@example.c"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(
            Email::parse("jane@example.123"),
            Err(EmailError::InvalidDomain)
        );
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(EmailError::TooLong));
        let long_total = format!("a@{}.com", "b".repeat(260));
        assert_eq!(Email::parse(&long_total), Err(EmailError::TooLong));
    }

    #[test]
    fn display_is_masked_serde_is_full() {
        let e = Email::parse("jane@example.com").expect("valid");
        assert_eq!(e.to_string(), "j***@example.com");
        assert_eq!(format!("{e:?}"), "Email(j***@example.com)");
        assert_eq!(
            serde_json::to_string(&e).expect("ser"),
            "\"jane@example.com\""
        );
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(input in "\\PC{0,80}") {
            let _ = Email::parse(&input);
        }

        #[test]
        fn parsing_is_idempotent(local in "[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", domain in "[a-z][a-z0-9]{0,10}", tld in "[a-z]{2,6}") {
            prop_assume!(!local.contains(".."));
            let raw = format!("{local}@{domain}.{tld}");
            let once = Email::parse(&raw).expect("valid");
            prop_assert_eq!(Email::parse(once.as_str()).expect("reparse"), once);
        }
    }
}
