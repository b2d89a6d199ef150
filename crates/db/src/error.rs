//! Mapping database errors to the domain's `StoreError`.

use iace_domain::ports::StoreError;
use sea_orm::{DbErr, SqlErr};

/// Unique columns, in the order they are looked for in a constraint message.
const UNIQUE_FIELDS: [&str; 12] = [
    "provider_event_id",
    "idempotency_key",
    "provider_call_id",
    "billing_customer_ref",
    "token_hash",
    "key_hash",
    "subject_key",
    "sequence",
    "version",
    "phone",
    "email",
    "name",
];

/// Maps a sea-orm error for an operation on `entity`.
///
/// - unique violation → `AlreadyExists` naming the field when it can be told;
/// - foreign-key violation → `NotFound` (a referenced row does not exist);
/// - anything else (connection lost, pool timeout, server error) →
///   `Unavailable`, which callers may retry.
pub(crate) fn db_err(entity: &'static str, err: DbErr) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let field = UNIQUE_FIELDS
                .into_iter()
                .find(|f| message.contains(f))
                .unwrap_or("id");
            StoreError::AlreadyExists { entity, field }
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => StoreError::NotFound {
            entity: "referenced record",
        },
        _ => StoreError::Unavailable {
            source: Box::new(err),
        },
    }
}

/// A closure for `map_err` that maps with [`db_err`].
pub(crate) fn on(entity: &'static str) -> impl Fn(DbErr) -> StoreError {
    move |err| db_err(entity, err)
}

/// A row that cannot be turned into a domain value.
pub(crate) fn corrupt(
    entity: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Corrupt {
        entity,
        source: source.into(),
    }
}
