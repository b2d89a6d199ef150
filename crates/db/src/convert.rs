//! Small conversions between domain values and column values.

use std::str::FromStr;

use iace_domain::ports::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::corrupt;

/// A unit-variant enum's snake_case name through its serde form
/// (`CustomerTier::Vip` → `"vip"`), for text columns.
pub(crate) fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        // Only unit enums are stored this way; anything else is a bug caught by
        // the contract tests (the read side reports it as corrupt).
        _ => String::new(),
    }
}

/// The inverse of [`enum_text`].
pub(crate) fn enum_from<T: DeserializeOwned>(
    entity: &'static str,
    raw: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|e| corrupt(entity, e))
}

/// A value parsed with `FromStr` (phone numbers, e-mails, languages, ...).
pub(crate) fn parse<T>(entity: &'static str, raw: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    raw.parse().map_err(|e| corrupt(entity, e))
}

/// A JSON column into a domain value.
pub(crate) fn from_json<T: DeserializeOwned>(
    entity: &'static str,
    value: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| corrupt(entity, e))
}

/// A domain value into a JSON column.
pub(crate) fn to_json<T: Serialize>(
    entity: &'static str,
    value: &T,
) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Invalid {
        entity,
        reason: format!("cannot be encoded as JSON: {e}"),
    })
}

/// A non-negative count column into `u32`, saturating (a count past 4 billion is
/// still "very many").
pub(crate) fn count_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// A non-negative count column into `u64`.
pub(crate) fn count_u64(value: i64) -> u64 {
    u64::try_from(value.max(0)).unwrap_or(0)
}
