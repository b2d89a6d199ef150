//! E.164 phone numbers.
//!
//! [`PhoneNumber`] accepts the forms people actually type — `+1 (415) 555-0100`,
//! `+44 20 7946 0958`, `0044 20 7946 0958`, `tel:+14155550100` — and normalises them
//! to E.164 (`+14155550100`). National forms without a country code (`(415)
//! 555-0100`, `020 7946 0958`) are accepted only through
//! [`PhoneNumber::parse_with_default_country`], which is told which country code to
//! assume. Everything else is rejected: letters, too few or too many digits, a
//! country code starting with 0.
//!
//! `Display` and `Debug` print a masked form (`+1415***0100`) so that a number never
//! ends up in a log by accident; use [`PhoneNumber::as_str`] where the full number
//! is needed (provider requests, storage). Serde uses the full E.164 form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fewest digits (country code included) we accept; shorter strings are
/// extensions or short codes, which cannot be dialled through the network.
const MIN_DIGITS: usize = 8;
/// E.164 allows at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// Nothing but whitespace and punctuation was given.
    #[error("phone number is empty")]
    Empty,
    /// A character that has no place in a phone number (a letter, `*`, ...).
    #[error("phone number contains an invalid character `{0}`")]
    InvalidCharacter(char),
    /// No `+`/`00` prefix and no default country code to assume.
    #[error("phone number has no country code (write it as +<country code><number>)")]
    MissingCountryCode,
    /// Fewer digits than any dialable international number has.
    #[error("phone number is too short ({digits} digits, at least {MIN_DIGITS})")]
    TooShort {
        /// Digits found, country code included.
        digits: usize,
    },
    /// More digits than E.164 allows.
    #[error("phone number is too long ({digits} digits, at most {MAX_DIGITS})")]
    TooLong {
        /// Digits found, country code included.
        digits: usize,
    },
    /// Country codes never start with 0.
    #[error("country code cannot start with 0")]
    InvalidCountryCode,
    /// The default country code given to [`PhoneNumber::parse_with_default_country`]
    /// is not 1–3 digits starting with 1–9.
    #[error("default country code `{0}` is not 1-3 digits")]
    InvalidDefaultCountry(String),
}

/// A phone number in E.164 form (`+` followed by 8–15 digits, the first not 0).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses an international number (`+…`, `00…`, `tel:+…`), ignoring spaces,
    /// dashes, dots, slashes and parentheses.
    ///
    /// # Errors
    /// [`PhoneNumberError`] when the input has letters, no country code, or a digit
    /// count outside 8..=15.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        Self::parse_inner(input, None)
    }

    /// Like [`PhoneNumber::parse`], but a number written without a country code is
    /// taken to be national to `default_country_code` (e.g. `"1"` or `"44"`): its
    /// trunk prefix `0` is dropped (`020 7946 0958` with `44` → `+442079460958`),
    /// and a NANP number with a leading `1` is not doubled (`1 415 555 0100` with
    /// `1` → `+14155550100`).
    ///
    /// # Errors
    /// As [`PhoneNumber::parse`], plus [`PhoneNumberError::InvalidDefaultCountry`].
    pub fn parse_with_default_country(
        input: &str,
        default_country_code: &str,
    ) -> Result<Self, PhoneNumberError> {
        let cc = default_country_code.trim().trim_start_matches('+');
        let valid_cc = (1..=3).contains(&cc.len())
            && cc.bytes().all(|b| b.is_ascii_digit())
            && !cc.starts_with('0');
        if !valid_cc {
            return Err(PhoneNumberError::InvalidDefaultCountry(
                default_country_code.chars().take(8).collect(),
            ));
        }
        Self::parse_inner(input, Some(cc))
    }

    fn parse_inner(input: &str, default_cc: Option<&str>) -> Result<Self, PhoneNumberError> {
        let trimmed = input.trim();
        let trimmed = trimmed
            .strip_prefix("tel:")
            .or_else(|| trimmed.strip_prefix("TEL:"))
            .unwrap_or(trimmed);

        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                other => return Err(PhoneNumberError::InvalidCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(PhoneNumberError::Empty);
        }

        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(cc) = default_cc {
            national_to_international(&digits, cc)
        } else {
            return Err(PhoneNumberError::MissingCountryCode);
        };

        if international.starts_with('0') {
            return Err(PhoneNumberError::InvalidCountryCode);
        }
        let n = international.len();
        if n < MIN_DIGITS {
            return Err(PhoneNumberError::TooShort { digits: n });
        }
        if n > MAX_DIGITS {
            return Err(PhoneNumberError::TooLong { digits: n });
        }
        Ok(Self(format!("+{international}")))
    }

    /// The full E.164 form, e.g. `+14155550100`. Do not log it: use the masked
    /// `Display` form instead.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the leading `+`.
    #[must_use]
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// A form safe for logs: the first four digits and the last two, the middle
    /// starred (`+1415*****00`).
    #[must_use]
    pub fn masked(&self) -> String {
        let digits = self.digits();
        let keep_head = 4.min(digits.len());
        let keep_tail = 2.min(digits.len() - keep_head);
        let hidden = digits.len() - keep_head - keep_tail;
        format!(
            "+{}{}{}",
            &digits[..keep_head],
            "*".repeat(hidden),
            &digits[digits.len() - keep_tail..]
        )
    }
}

fn national_to_international(digits: &str, cc: &str) -> String {
    if cc == "1" {
        // NANP: "1 415 555 0100" already carries the country code.
        if digits.len() == 11 && digits.starts_with('1') {
            return digits.to_owned();
        }
        return format!("1{digits}");
    }
    let national = digits.strip_prefix('0').unwrap_or(digits);
    format!("{cc}{national}")
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(input: &str) -> String {
        PhoneNumber::parse(input)
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
            .as_str()
            .to_owned()
    }

    #[test]
    fn normalises_common_international_forms() {
        assert_eq!(ok("+14155550100"), "+14155550100");
        assert_eq!(ok("+1 (415) 555-0100"), "+14155550100");
        assert_eq!(ok("  +44 20 7946 0958 "), "+442079460958");
        assert_eq!(ok("0044 20 7946 0958"), "+442079460958");
        assert_eq!(ok("+49.30.901820"), "+4930901820");
        assert_eq!(ok("tel:+33142685300"), "+33142685300");
        assert_eq!(ok("+61/2/9374/4000"), "+61293744000");
    }

    #[test]
    fn national_forms_need_a_default_country() {
        assert_eq!(
            PhoneNumber::parse("(415) 555-0100"),
            Err(PhoneNumberError::MissingCountryCode)
        );
        let us = PhoneNumber::parse_with_default_country("(415) 555-0100", "1").expect("us");
        assert_eq!(us.as_str(), "+14155550100");
        let us_with_1 =
            PhoneNumber::parse_with_default_country("1-415-555-0100", "+1").expect("us");
        assert_eq!(us_with_1.as_str(), "+14155550100");
        let uk = PhoneNumber::parse_with_default_country("020 7946 0958", "44").expect("uk");
        assert_eq!(uk.as_str(), "+442079460958");
        let intl = PhoneNumber::parse_with_default_country("+33 1 42 68 53 00", "44").expect("fr");
        assert_eq!(
            intl.as_str(),
            "+33142685300",
            "an explicit country code wins"
        );
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        assert_eq!(PhoneNumber::parse(""), Err(PhoneNumberError::Empty));
        assert_eq!(PhoneNumber::parse(" - () "), Err(PhoneNumberError::Empty));
        assert_eq!(
            PhoneNumber::parse("+1 800 FLOWERS"),
            Err(PhoneNumberError::InvalidCharacter('F'))
        );
        assert_eq!(
            PhoneNumber::parse("+1415555010*"),
            Err(PhoneNumberError::InvalidCharacter('*'))
        );
        assert_eq!(
            PhoneNumber::parse("1+4155550100"),
            Err(PhoneNumberError::InvalidCharacter('+'))
        );
        assert_eq!(
            PhoneNumber::parse("+1234567"),
            Err(PhoneNumberError::TooShort { digits: 7 })
        );
        assert_eq!(
            PhoneNumber::parse("+1234567890123456"),
            Err(PhoneNumberError::TooLong { digits: 16 })
        );
        assert_eq!(
            PhoneNumber::parse("+0123456789"),
            Err(PhoneNumberError::InvalidCountryCode)
        );
        assert_eq!(
            PhoneNumber::parse("000123456789"),
            Err(PhoneNumberError::InvalidCountryCode)
        );
    }

    #[test]
    fn rejects_bad_default_country() {
        for cc in ["", "0", "1234", "4a", "044"] {
            assert!(matches!(
                PhoneNumber::parse_with_default_country("4155550100", cc),
                Err(PhoneNumberError::InvalidDefaultCountry(_))
            ));
        }
    }

    #[test]
    fn display_and_debug_are_masked() {
        let n = PhoneNumber::parse("+14155550100").expect("valid");
        assert_eq!(n.to_string(), "+1415*****00");
        assert_eq!(format!("{n:?}"), "PhoneNumber(+1415*****00)");
        assert!(!format!("{n} {n:?}").contains("5550100"));
    }

    #[test]
    fn serde_uses_full_form_and_validates() {
        let n = PhoneNumber::parse("+442079460958").expect("valid");
        assert_eq!(serde_json::to_string(&n).expect("ser"), "\"+442079460958\"");
        let back: PhoneNumber = serde_json::from_str("\"+44 20 7946 0958\"").expect("de");
        assert_eq!(back, n);
        assert!(serde_json::from_str::<PhoneNumber>("\"hello\"").is_err());
    }

    proptest! {
        #[test]
        fn any_valid_e164_round_trips(first in 1u8..=9, rest in "[0-9]{7,14}") {
            let e164 = format!("+{first}{rest}");
            let parsed = PhoneNumber::parse(&e164).expect("valid e164");
            prop_assert_eq!(parsed.as_str(), e164.as_str());
            // Re-parsing the normalised form is the identity.
            prop_assert_eq!(PhoneNumber::parse(parsed.as_str()).expect("reparse"), parsed);
        }

        #[test]
        fn punctuation_does_not_change_the_number(first in 1u8..=9, rest in "[0-9]{7,14}", seps in proptest::collection::vec(prop::sample::select(vec![" ", "-", ".", "(", ")"]), 0..6)) {
            let mut decorated = format!("+{first}");
            for (i, c) in rest.chars().enumerate() {
                if let Some(sep) = seps.get(i) { decorated.push_str(sep); }
                decorated.push(c);
            }
            let plain = PhoneNumber::parse(&format!("+{first}{rest}")).expect("plain");
            prop_assert_eq!(PhoneNumber::parse(&decorated).expect("decorated"), plain);
        }

        #[test]
        fn never_panics(input in "\\PC{0,40}") {
            let _ = PhoneNumber::parse(&input);
            let _ = PhoneNumber::parse_with_default_country(&input, "44");
        }

        #[test]
        fn masked_form_never_contains_the_middle(first in 1u8..=9, rest in "[0-9]{7,14}") {
            let n = PhoneNumber::parse(&format!("+{first}{rest}")).expect("valid");
            let masked = n.masked();
            prop_assert_eq!(masked.len(), n.as_str().len());
            let digits = n.digits();
            // Every digit but the first four and the last two is hidden.
            for (i, c) in masked[1..].chars().enumerate() {
                if i >= 4 && i + 2 < digits.len() {
                    prop_assert_eq!(c, '*');
                } else {
                    prop_assert_eq!(Some(c), digits.chars().nth(i));
                }
            }
        }
    }
}
