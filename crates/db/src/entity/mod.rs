//! sea-orm entities, one per table. Private to the crate: repositories convert
//! rows to domain types and back. Embedding columns are not mapped here (their
//! SQL type differs per backend); `crate::vector` reads and writes them.

pub(crate) mod agents;
pub(crate) mod api_keys;
pub(crate) mod call_events;
pub(crate) mod calls;
pub(crate) mod customer_memories;
pub(crate) mod customers;
pub(crate) mod experiment_assignments;
pub(crate) mod experiment_outcomes;
pub(crate) mod experiment_variants;
pub(crate) mod experiments;
pub(crate) mod learned_patterns;
pub(crate) mod org_phone_numbers;
pub(crate) mod org_telephony;
pub(crate) mod organizations;
pub(crate) mod pattern_uses;
pub(crate) mod personas;
pub(crate) mod refresh_tokens;
pub(crate) mod transcript_entries;
pub(crate) mod users;
pub(crate) mod webhook_inbox;

/// The UUID primary key of a row, for keyset pagination.
pub(crate) trait HasId {
    fn row_id(&self) -> uuid::Uuid;
}

macro_rules! has_id {
    ($($table:ident),*) => {
        $(impl HasId for $table::Model {
            fn row_id(&self) -> uuid::Uuid {
                self.id
            }
        })*
    };
}

has_id!(
    organizations,
    users,
    api_keys,
    agents,
    customers,
    personas,
    experiments,
    calls,
    learned_patterns,
    customer_memories
);
