//! Typed identifiers.
//!
//! Every entity has its own id type so that a `CallId` can never be passed where an
//! `OrgId` is expected. Ids are UUID v7 (time-ordered, so they index well and sort
//! by creation time) and serialize as plain UUID strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that is not a UUID was given where an id was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind} (expected a UUID)")]
pub struct ParseIdError {
    /// The id type that was being parsed, e.g. `call id`.
    pub kind: &'static str,
    /// The rejected input, truncated to 64 characters.
    pub input: String,
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (e.g. one read back from storage).
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The underlying UUID, by value.
            #[must_use]
            pub const fn into_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| ParseIdError {
                    kind: $kind,
                    input: s.chars().take(64).collect(),
                })
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

define_id!(
    /// An organisation (tenant). Every org-owned row is scoped by it.
    OrgId, "organisation id"
);
define_id!(
    /// A user who can sign in to an organisation.
    UserId, "user id"
);
define_id!(
    /// An API key (the id is public; the secret is never stored in clear).
    ApiKeyId, "API key id"
);
define_id!(
    /// A refresh token (its family and rotation are tracked by id).
    RefreshTokenId, "refresh token id"
);
define_id!(
    /// A human agent who can take escalated calls.
    AgentId, "agent id"
);
define_id!(
    /// A customer (a person who calls or is called).
    CustomerId, "customer id"
);
define_id!(
    /// A persona the AI agent speaks as.
    PersonaId, "persona id"
);
define_id!(
    /// An A/B experiment over personas or scripts.
    ExperimentId, "experiment id"
);
define_id!(
    /// One arm of an experiment.
    VariantId, "variant id"
);
define_id!(
    /// A phone call.
    CallId, "call id"
);
define_id!(
    /// One entry in a call's event history (a state transition or an ignored event).
    CallEventId, "call event id"
);
define_id!(
    /// One entry of a call transcript.
    TranscriptEntryId, "transcript entry id"
);
define_id!(
    /// A pattern learned from earlier calls.
    PatternId, "pattern id"
);
define_id!(
    /// A stored memory about a customer.
    MemoryId, "memory id"
);
define_id!(
    /// A provider event recorded in the webhook inbox.
    InboxEventId, "inbox event id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_time_ordered() {
        let a = CallId::new();
        let b = CallId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a <= b, "v7 ids sort by creation time");
    }

    #[test]
    fn parses_and_displays_round_trip() {
        let id = OrgId::new();
        let parsed: OrgId = id.to_string().parse().expect("valid uuid");
        assert_eq!(parsed, id);
    }

    #[test]
    fn rejects_garbage_with_the_kind_named() {
        let err = "not-a-uuid".parse::<CallId>().expect_err("must fail");
        assert_eq!(err.kind, "call id");
        assert!(err.to_string().contains("not-a-uuid"));
    }

    #[test]
    fn serializes_as_a_plain_uuid_string() {
        let id = PersonaId::from_uuid(Uuid::nil());
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, "\"00000000-0000-0000-0000-000000000000\"");
        let back: PersonaId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
    }

    #[test]
    fn debug_names_the_type() {
        let id = AgentId::from_uuid(Uuid::nil());
        assert!(format!("{id:?}").starts_with("AgentId("));
    }
}
