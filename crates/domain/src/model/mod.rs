//! The entities IACE stores and reasons about.
//!
//! Plain data with validated fields; behaviour lives in the policy modules
//! ([`crate::call`], [`crate::escalation`], [`crate::routing`],
//! [`crate::experiment`], [`crate::learning`], [`crate::memory`]).

mod agent;
mod customer;
mod embedding;
mod experiment;
mod memory;
mod org;
mod pattern;
mod persona;
mod transcript;

pub use agent::{Availability, HumanAgent, InvalidSkill, Skill};
pub use customer::{Customer, CustomerTier};
pub use embedding::{Embedding, EmbeddingError};
pub use experiment::{Experiment, ExperimentMetric, ExperimentStatus, Variant};
pub use memory::{CustomerMemory, Importance, InvalidImportance};
pub use org::{
    ApiKey, Organization, RefreshToken, Role, SecretHash, TelephonySettings,
    TelephonySettingsError, UnknownRole, User,
};
pub use pattern::{LearnedPattern, PatternKind};
pub use persona::{Persona, PersonaError, Style, Voice};
pub use transcript::{Speaker, TranscriptEntry};
