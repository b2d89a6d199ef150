//! Repositories and stores: the system of record.
//!
//! Every org-owned read and write takes the [`OrgId`] and only ever touches that
//! organisation's rows; asking for another tenant's row answers
//! [`StoreError::NotFound`], exactly as if it did not exist. The few look-ups that
//! cannot know the tenant up front — a verified provider webhook finding its
//! call, a sign-in finding a user by e-mail, an API key or refresh token found by
//! its hash — are named as such and return the owning org with the row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::BoxError;
use crate::call::{Call, CallDirection, CallEventRecord, CallStatus};
use crate::experiment::VariantCounts;
use crate::learning::SuccessPrior;
use crate::memory::{self, MemoryConfig, MemoryContext, ScoredMemory};
use crate::{
    AgentId, ApiKey, ApiKeyId, CallId, Customer, CustomerId, CustomerMemory, Email, Embedding,
    Experiment, ExperimentId, HumanAgent, InboxEventId, LearnedPattern, MemoryId, OrgId,
    Organization, PatternId, PatternKind, Persona, PersonaId, PhoneNumber, Plan, RefreshToken,
    RefreshTokenId, Role, Sentiment, Skill, TranscriptEntry, User, UserId, VariantId,
};

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row in this organisation.
    #[error("{entity} not found")]
    NotFound {
        /// What was looked up, e.g. `call`.
        entity: &'static str,
    },
    /// A unique constraint refused the write (same phone, same provider id, ...).
    #[error("{entity} already exists ({field} is taken)")]
    AlreadyExists {
        /// What was written.
        entity: &'static str,
        /// The unique field, e.g. `phone`.
        field: &'static str,
    },
    /// The row changed since it was read (optimistic concurrency); re-read and
    /// re-apply.
    #[error("{entity} was modified concurrently (expected version {expected})")]
    Conflict {
        /// What was written.
        entity: &'static str,
        /// The version the writer had read.
        expected: i64,
    },
    /// A stored row could not be turned back into a domain value.
    #[error("stored {entity} is invalid")]
    Corrupt {
        /// What was read.
        entity: &'static str,
        /// What was wrong with it.
        #[source]
        source: BoxError,
    },
    /// The request was refused before reaching storage (e.g. an embedding of the
    /// wrong dimension, or a version that was not bumped).
    #[error("invalid {entity}: {reason}")]
    Invalid {
        /// What was written or queried.
        entity: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend could not be reached or failed; the operation may be retried.
    #[error("storage is unavailable")]
    Unavailable {
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Keyset pagination: up to `limit` rows after the row with id `after`, in id
/// order (ids are UUID v7, so this is creation order), oldest first unless
/// `descending`. Stable under concurrent inserts: a page never repeats or skips a
/// row that existed when the first page was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Rows per page, 1..=[`PageRequest::MAX_LIMIT`].
    pub limit: u32,
    /// The last id of the previous page (the cursor).
    pub after: Option<Uuid>,
    /// Newest first.
    pub descending: bool,
}

impl PageRequest {
    /// The largest page any query returns.
    pub const MAX_LIMIT: u32 = 200;
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 50;

    /// A first page of `limit` rows, clamped into 1..=200.
    #[must_use]
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: None,
            descending: false,
        }
    }

    /// The page after `after`, `limit` clamped into 1..=200.
    #[must_use]
    pub fn after(limit: u32, after: Uuid) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: Some(after),
            descending: false,
        }
    }

    /// The same page, newest first.
    #[must_use]
    pub const fn newest_first(mut self) -> Self {
        self.descending = true;
        self
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows, in id order.
    pub items: Vec<T>,
    /// The id to pass as `after` for the next page; `None` on the last page.
    pub next: Option<Uuid>,
}

/// A row found by vector search with its cosine similarity to the query (−1..=1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredMatch<T> {
    /// The row.
    pub item: T,
    /// Cosine similarity to the query.
    pub similarity: f64,
}

/// How a webhook finds its call, without knowing the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallLocator {
    /// Our id, carried in the provider's `client_state`.
    Id(CallId),
    /// The provider's call id (`call_control_id`).
    ProviderCallId(String),
}

/// Filters for listing calls; all optional and combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallFilter {
    /// Only calls in this status.
    pub status: Option<CallStatus>,
    /// Only this direction.
    pub direction: Option<CallDirection>,
    /// Only this customer's calls.
    pub customer_id: Option<CustomerId>,
    /// Only calls created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only calls created before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Only calls transferred to this human agent.
    pub agent_id: Option<AgentId>,
    /// Only calls with this persona.
    pub persona_id: Option<PersonaId>,
    /// Only calls in this experiment.
    pub experiment_id: Option<ExperimentId>,
}

/// Calls and their event history.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CallRepository: Send + Sync {
    /// Inserts a new call.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the id or the provider call id is taken;
    /// [`StoreError::Unavailable`].
    async fn create(&self, call: &Call) -> Result<(), StoreError>;

    /// Inserts a new call under the client's idempotency `key`, unique in
    /// `call.org_id`: returns `(call, true)` when it was inserted, or the call
    /// first created with this key and `false` (nothing is written). Race-free:
    /// of concurrent creates with the same key exactly one inserts, and every
    /// other one gets that call back.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the id or the provider call id is taken;
    /// [`StoreError::Corrupt`] when the existing call cannot be read back;
    /// [`StoreError::Unavailable`].
    async fn create_idempotent(&self, call: &Call, key: &str) -> Result<(Call, bool), StoreError>;

    /// The call with this id in this organisation.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: CallId) -> Result<Call, StoreError>;

    /// Finds a call for a **verified provider webhook**, which carries no tenant.
    /// Never use it for operator requests.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`]; [`StoreError::Unavailable`].
    async fn locate(&self, locator: &CallLocator) -> Result<Option<Call>, StoreError>;

    /// Saves a status change: writes `call`'s mutable fields if the stored version
    /// is still `expected_version`, and appends `record` to its history (numbered
    /// with the new version), in one transaction. `call.version` must be
    /// `expected_version + 1` (what [`Call::apply`] does). Identity fields (org,
    /// direction, parties, creation time) are never rewritten.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another writer got there first (nothing is
    /// written); [`StoreError::Invalid`] when the version was not bumped by one;
    /// [`StoreError::NotFound`] when the call is not in `call.org_id`;
    /// [`StoreError::Unavailable`].
    async fn save_transition(
        &self,
        call: &Call,
        expected_version: i64,
        record: &CallEventRecord,
    ) -> Result<(), StoreError>;

    /// Saves other fields (provider ids, outcome, sentiment, recording) under the
    /// same version check, without a history entry. The caller bumps
    /// `call.version` by one before saving; identity fields are never rewritten.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]; [`StoreError::Invalid`] when the version was not
    /// bumped by one; [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn update(&self, call: &Call, expected_version: i64) -> Result<(), StoreError>;

    /// Appends an event that changed nothing (a duplicate, a stale or a rejected
    /// event) to the call's history.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the call does not exist; [`StoreError::Unavailable`].
    async fn record_event(&self, record: &CallEventRecord) -> Result<(), StoreError>;

    /// The call's history, oldest first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn events(&self, org: OrgId, id: CallId) -> Result<Vec<CallEventRecord>, StoreError>;

    /// Calls matching `filter`, one page (see [`PageRequest`] for the order).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(
        &self,
        org: OrgId,
        filter: &CallFilter,
        page: PageRequest,
    ) -> Result<Page<Call>, StoreError>;

    /// Calls of this organisation that have not ended.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn count_live(&self, org: OrgId) -> Result<u64, StoreError>;
}

/// Call transcripts.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TranscriptRepository: Send + Sync {
    /// Appends entries to a call's transcript (idempotent by entry id).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the call is not in `org`; [`StoreError::Unavailable`].
    async fn append(&self, org: OrgId, entries: &[TranscriptEntry]) -> Result<(), StoreError>;

    /// The transcript, in sequence order.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the call is not in `org`; [`StoreError::Unavailable`].
    async fn for_call(&self, org: OrgId, call: CallId) -> Result<Vec<TranscriptEntry>, StoreError>;

    /// Sets the sentiment of the entry at `sequence` (scored after it was
    /// appended). Returns whether there was such an entry.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the call is not in `org`; [`StoreError::Unavailable`].
    async fn set_sentiment(
        &self,
        org: OrgId,
        call: CallId,
        sequence: u32,
        sentiment: Sentiment,
    ) -> Result<bool, StoreError>;
}

/// Human agents.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AgentRepository: Send + Sync {
    /// Inserts an agent.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::Unavailable`].
    async fn create(&self, agent: &HumanAgent) -> Result<(), StoreError>;

    /// One agent.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: AgentId) -> Result<HumanAgent, StoreError>;

    /// Replaces an agent's fields (not `active_calls`, which only
    /// [`AgentRepository::adjust_active_calls`] changes).
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn update(&self, agent: &HumanAgent) -> Result<(), StoreError>;

    /// Deletes an agent.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn delete(&self, org: OrgId, id: AgentId) -> Result<(), StoreError>;

    /// Agents, one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest) -> Result<Page<HumanAgent>, StoreError>;

    /// Available agents with capacity left that have all of `skills` — the
    /// candidates [`crate::routing::route`] chooses from.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn candidates(&self, org: OrgId, skills: &[Skill])
    -> Result<Vec<HumanAgent>, StoreError>;

    /// Atomically adds `delta` to the agent's active calls, never below 0 nor
    /// above `max_concurrent_calls`, and returns the updated agent.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when taking a call would exceed capacity (another
    /// escalation took the last slot); [`StoreError::NotFound`];
    /// [`StoreError::Unavailable`].
    async fn adjust_active_calls(
        &self,
        org: OrgId,
        id: AgentId,
        delta: i32,
    ) -> Result<HumanAgent, StoreError>;
}

/// Customers.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CustomerRepository: Send + Sync {
    /// Inserts a customer.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the phone number is taken in the org;
    /// [`StoreError::Unavailable`].
    async fn create(&self, customer: &Customer) -> Result<(), StoreError>;

    /// One customer.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: CustomerId) -> Result<Customer, StoreError>;

    /// The customer with this number, if any (inbound call matching).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn find_by_phone(
        &self,
        org: OrgId,
        phone: &PhoneNumber,
    ) -> Result<Option<Customer>, StoreError>;

    /// Replaces a customer's fields.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::AlreadyExists`] when the new phone
    /// is taken; [`StoreError::Unavailable`].
    async fn update(&self, customer: &Customer) -> Result<(), StoreError>;

    /// Deletes a customer and their memories.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn delete(&self, org: OrgId, id: CustomerId) -> Result<(), StoreError>;

    /// Customers, one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest) -> Result<Page<Customer>, StoreError>;
}

/// Personas.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PersonaRepository: Send + Sync {
    /// Inserts a persona.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::Unavailable`].
    async fn create(&self, persona: &Persona) -> Result<(), StoreError>;

    /// One persona.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: PersonaId) -> Result<Persona, StoreError>;

    /// Replaces a persona's fields.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn update(&self, persona: &Persona) -> Result<(), StoreError>;

    /// Deletes a persona.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Conflict`] when a variant of any
    /// experiment (running or not: its history refers to the persona) uses it;
    /// [`StoreError::Unavailable`].
    async fn delete(&self, org: OrgId, id: PersonaId) -> Result<(), StoreError>;

    /// Personas, one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest) -> Result<Page<Persona>, StoreError>;
}

/// Experiments, their assignments and outcome counts.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ExperimentRepository: Send + Sync {
    /// Inserts an experiment with its variants.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::Unavailable`].
    async fn create(&self, experiment: &Experiment) -> Result<(), StoreError>;

    /// One experiment.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: ExperimentId) -> Result<Experiment, StoreError>;

    /// Replaces an experiment's fields (status, name, timestamps; variants only
    /// while it is a draft).
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn update(&self, experiment: &Experiment) -> Result<(), StoreError>;

    /// Experiments, one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest) -> Result<Page<Experiment>, StoreError>;

    /// The organisation's running experiments.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn running(&self, org: OrgId) -> Result<Vec<Experiment>, StoreError>;

    /// Counts the outcome of `call` for `variant`: a trial, and a conversion when
    /// `converted`. Atomic and idempotent per call: counting the same call again
    /// (a retried post-call job) changes nothing and returns `false`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the variant is not in the experiment or the
    /// experiment not in `org`; [`StoreError::Unavailable`].
    async fn record_outcome(
        &self,
        org: OrgId,
        experiment: ExperimentId,
        variant: VariantId,
        call: CallId,
        converted: bool,
    ) -> Result<bool, StoreError>;

    /// Makes `variant` the assignment of `subject_key` (a customer id or E.164
    /// number, see `experiment::AssignmentKey`) unless the subject already has
    /// one, and returns the assignment in force. Sticky: once assigned, a caller
    /// keeps their variant even if the weights change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the experiment is not in `org` or the variant
    /// not in it; [`StoreError::Unavailable`].
    async fn assign(
        &self,
        org: OrgId,
        experiment: ExperimentId,
        subject_key: &str,
        variant: VariantId,
        at: DateTime<Utc>,
    ) -> Result<VariantId, StoreError>;

    /// Trials and conversions per variant.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn counts(
        &self,
        org: OrgId,
        experiment: ExperimentId,
    ) -> Result<Vec<VariantCounts>, StoreError>;
}

/// Which learned patterns a query considers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternFilter {
    /// Only this kind.
    pub kind: Option<PatternKind>,
    /// Only patterns used at least this often.
    pub min_uses: u32,
}

/// Learned patterns with vector search and usage tracking.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PatternStore: Send + Sync {
    /// Inserts a pattern, or updates its content (kind, trigger, response,
    /// embedding) when the id exists in the same org. Usage counters are never
    /// written here (only [`PatternStore::record_usage`] moves them), so an
    /// upsert racing with usage loses nothing.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the embedding's dimension differs from the
    /// store's; [`StoreError::AlreadyExists`] when the id belongs to another org;
    /// [`StoreError::Unavailable`].
    async fn upsert(&self, pattern: &LearnedPattern) -> Result<(), StoreError>;

    /// One pattern.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: PatternId) -> Result<LearnedPattern, StoreError>;

    /// The `k` patterns most similar to `query` by cosine similarity, most
    /// similar first. Patterns without an embedding never match.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the query's dimension differs from the
    /// store's (checked before any SQL runs); [`StoreError::Unavailable`].
    async fn find_similar(
        &self,
        org: OrgId,
        query: &Embedding,
        k: u32,
        filter: &PatternFilter,
    ) -> Result<Vec<ScoredMatch<LearnedPattern>>, StoreError>;

    /// The `limit` patterns with the best smoothed success rate
    /// (`(successes + α) / (uses + α + β)` under `prior`), best first, ties by id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn top(
        &self,
        org: OrgId,
        filter: &PatternFilter,
        prior: &SuccessPrior,
        limit: u32,
    ) -> Result<Vec<LearnedPattern>, StoreError>;

    /// Counts `call`'s use of each pattern, and a success when `success`;
    /// `last_used_at` only moves forward. Atomic and idempotent per (pattern,
    /// call): a retried post-call job counts nothing twice. Returns how many
    /// patterns were counted now. Ids not in `org` are ignored.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn record_usage(
        &self,
        org: OrgId,
        call: CallId,
        ids: &[PatternId],
        success: bool,
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError>;

    /// Patterns, one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest)
    -> Result<Page<LearnedPattern>, StoreError>;

    /// Deletes a pattern.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn delete(&self, org: OrgId, id: PatternId) -> Result<(), StoreError>;
}

/// Customer memories with vector search.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MemoryStore: Send + Sync {
    /// Adds a memory snapshot (idempotent by id).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an embedding of the wrong dimension;
    /// [`StoreError::NotFound`] when the customer is not in the org;
    /// [`StoreError::Unavailable`].
    async fn add(&self, memory: &CustomerMemory) -> Result<(), StoreError>;

    /// The `k` memories of `customer` most similar to `query`, most similar
    /// first, with their cosine similarity. Memories without an embedding never
    /// match.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a query of the wrong dimension;
    /// [`StoreError::Unavailable`].
    async fn find_similar(
        &self,
        org: OrgId,
        customer: CustomerId,
        query: &Embedding,
        k: u32,
    ) -> Result<Vec<ScoredMatch<CustomerMemory>>, StoreError>;

    /// The `limit` newest memories of `customer`, newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn recent(
        &self,
        org: OrgId,
        customer: CustomerId,
        limit: u32,
    ) -> Result<Vec<CustomerMemory>, StoreError>;

    /// Deletes one memory.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn delete(&self, org: OrgId, id: MemoryId) -> Result<(), StoreError>;

    /// Deletes every memory of a customer (erasure requests); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn forget_customer(&self, org: OrgId, customer: CustomerId) -> Result<u64, StoreError>;
}

/// Ranking on top of any [`MemoryStore`] (kept out of the trait so that every
/// adapter scores memories the same way, with the domain's rules).
#[async_trait]
pub trait MemoryStoreExt: MemoryStore {
    /// The customer's memories that matter now: candidates by similarity to
    /// `query` (or the newest, without one), ranked by the domain's relevance —
    /// similarity × time decay × importance ([`memory::rank_scored_memories`]).
    /// Fetches four times `config.max_items` candidates, so recent, important
    /// memories are not cut before decay and importance are applied.
    ///
    /// # Errors
    /// As [`MemoryStore::find_similar`] and [`MemoryStore::recent`].
    async fn find_relevant(
        &self,
        org: OrgId,
        customer: CustomerId,
        query: Option<&Embedding>,
        now: DateTime<Utc>,
        config: &MemoryConfig,
    ) -> Result<Vec<ScoredMemory>, StoreError> {
        let fetch = u32::try_from(config.max_items.saturating_mul(4))
            .unwrap_or(u32::MAX)
            .max(1);
        let candidates = match query {
            Some(query) => self
                .find_similar(org, customer, query, fetch)
                .await?
                .into_iter()
                .map(|m| (m.item, m.similarity))
                .collect(),
            None => self
                .recent(org, customer, fetch)
                .await?
                .into_iter()
                .map(|m| (m, 1.0))
                .collect(),
        };
        Ok(memory::rank_scored_memories(candidates, now, config))
    }

    /// The bounded prompt section summarising what matters about the customer
    /// now ([`memory::build_context`] over [`MemoryStoreExt::find_relevant`]).
    ///
    /// # Errors
    /// As [`MemoryStoreExt::find_relevant`].
    async fn context(
        &self,
        org: OrgId,
        customer: CustomerId,
        query: Option<&Embedding>,
        now: DateTime<Utc>,
        config: &MemoryConfig,
    ) -> Result<MemoryContext, StoreError> {
        let ranked = self
            .find_relevant(org, customer, query, now, config)
            .await?;
        Ok(memory::build_context(&ranked, config))
    }
}

impl<S: MemoryStore + ?Sized> MemoryStoreExt for S {}

/// Organisations.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait OrgRepository: Send + Sync {
    /// Inserts an organisation.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::Unavailable`].
    async fn create(&self, org: &Organization) -> Result<(), StoreError>;

    /// One organisation.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, id: OrgId) -> Result<Organization, StoreError>;

    /// Changes the plan (after a billing event).
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn set_plan(&self, id: OrgId, plan: Plan) -> Result<(), StoreError>;

    /// Links the billing provider's customer id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::AlreadyExists`] when another org
    /// has it; [`StoreError::Unavailable`].
    async fn set_billing_ref(&self, id: OrgId, billing_ref: &str) -> Result<(), StoreError>;

    /// The organisation's telephony settings (defaults when never set).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown organisation;
    /// [`StoreError::Unavailable`].
    async fn telephony(&self, id: OrgId) -> Result<crate::TelephonySettings, StoreError>;

    /// Replaces the organisation's telephony settings, its numbers included,
    /// atomically.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::AlreadyExists`] when a number
    /// belongs to another organisation (nothing is changed);
    /// [`StoreError::Unavailable`].
    async fn set_telephony(
        &self,
        id: OrgId,
        settings: &crate::TelephonySettings,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The organisation a number belongs to, for a **verified telephony
    /// webhook** about an inbound call (which carries no tenant).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn org_for_number(&self, number: &PhoneNumber) -> Result<Option<OrgId>, StoreError>;

    /// Finds the org for a **verified billing webhook**, which carries no tenant.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn find_by_billing_ref(
        &self,
        billing_ref: &str,
    ) -> Result<Option<Organization>, StoreError>;
}

/// Users.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Inserts a user.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the e-mail is taken; [`StoreError::Unavailable`].
    async fn create(&self, user: &User) -> Result<(), StoreError>;

    /// One user of the organisation.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn get(&self, org: OrgId, id: UserId) -> Result<User, StoreError>;

    /// Finds a user **for sign-in**, by e-mail (unique across organisations).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Users of the organisation, one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest) -> Result<Page<User>, StoreError>;

    /// Changes a user's role.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn set_role(&self, org: OrgId, id: UserId, role: Role) -> Result<(), StoreError>;

    /// Replaces the password hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn set_password_hash(&self, org: OrgId, id: UserId, hash: &str)
    -> Result<(), StoreError>;

    /// Stamps a successful sign-in.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn record_login(
        &self,
        org: OrgId,
        id: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes a user (and their refresh tokens).
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn delete(&self, org: OrgId, id: UserId) -> Result<(), StoreError>;
}

/// Refresh tokens (stored as hashes), rotated on every use.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RefreshTokenRepository: Send + Sync {
    /// Stores a newly issued token.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::Unavailable`].
    async fn create(&self, token: &RefreshToken) -> Result<(), StoreError>;

    /// Finds a token **presented by a client**, by its hash.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn find_by_hash(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError>;

    /// Revokes `old` and stores `new` atomically, only if `old` is still unrevoked.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `old` was already rotated or revoked — a
    /// reused token, the sign of theft; the caller revokes the family.
    /// [`StoreError::Unavailable`].
    async fn rotate(
        &self,
        old: RefreshTokenId,
        new: &RefreshToken,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Revokes every token of a rotation family; returns how many were live.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn revoke_family(
        &self,
        family: RefreshTokenId,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Revokes every token of a user (sign out everywhere).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn revoke_user(&self, user: UserId, at: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// API keys (stored as hashes).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    /// Stores a new key's metadata and hash.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::Unavailable`].
    async fn create(&self, key: &ApiKey) -> Result<(), StoreError>;

    /// Finds a key **presented by a client**, by its hash.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// The organisation's keys (revoked included), one page.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn list(&self, org: OrgId, page: PageRequest) -> Result<Page<ApiKey>, StoreError>;

    /// Revokes a key.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn revoke(&self, org: OrgId, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Stamps the key's last use (best effort; callers may ignore failures).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn touch(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Where a provider event is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    /// Recorded, not yet (fully) processed.
    Pending,
    /// Processed.
    Processed,
    /// Recorded and acknowledged, but of a type we do not act on.
    Ignored,
    /// Processing failed; retried until `attempts` reaches
    /// [`MAX_INBOX_ATTEMPTS`], then left failed for an operator (its
    /// `last_error` says why).
    Failed,
}

/// Failed processing attempts after which an inbox event is no longer
/// claimed (a dead letter).
pub const MAX_INBOX_ATTEMPTS: u32 = 10;

/// A provider event to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInboxEvent {
    /// Provider name (`telnyx`, `stripe`).
    pub provider: String,
    /// The provider's unique event id (the deduplication key with `provider`).
    pub provider_event_id: String,
    /// The provider's event type (`call.answered`).
    pub event_type: String,
    /// The verified payload.
    pub payload: serde_json::Value,
    /// When the provider says it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When we received it.
    pub received_at: DateTime<Utc>,
}

/// A recorded provider event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxEvent {
    /// Identity.
    pub id: InboxEventId,
    /// What was received.
    pub event: NewInboxEvent,
    /// Processing state.
    pub status: InboxStatus,
    /// Processing attempts so far.
    pub attempts: u32,
    /// The last processing error, for operators.
    pub last_error: Option<String>,
    /// Not to be retried before this time.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What recording an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum InboxOutcome {
    /// First delivery: process it.
    New {
        /// Its inbox id.
        id: InboxEventId,
    },
    /// Already recorded: acknowledge and do nothing.
    Duplicate {
        /// The id of the first delivery.
        id: InboxEventId,
    },
}

/// Idempotent intake of provider events, durable before they are acknowledged.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WebhookInbox: Send + Sync {
    /// Records an event unless `(provider, provider_event_id)` is already there.
    /// Once this returns, the event survives a restart. A new event is pending
    /// and due at `process_by`: the receiving instance processes it inline, and
    /// only if it has not completed it by then does [`WebhookInbox::claim_due`]
    /// hand it to the background worker.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] — the webhook must then not be acknowledged.
    async fn record(
        &self,
        event: &NewInboxEvent,
        process_by: DateTime<Utc>,
    ) -> Result<InboxOutcome, StoreError>;

    /// Marks an event processed or ignored. An event already settled stays
    /// as it is (not an error).
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn complete(
        &self,
        id: InboxEventId,
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// [`complete`](WebhookInbox::complete) for several events at once (one
    /// write where the store allows it): each open one is marked `status`,
    /// each settled one stays as it is, and ids not in the inbox are skipped.
    /// Returns how many were marked.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a status other than processed or ignored;
    /// [`StoreError::Unavailable`].
    async fn complete_many(
        &self,
        ids: &[InboxEventId],
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Records a failed attempt and when to retry; an event already settled
    /// (processed or ignored meanwhile) stays so.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Unavailable`].
    async fn fail(
        &self,
        id: InboxEventId,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` pending or failed events whose retry time has come
    /// and that have failed fewer than [`MAX_INBOX_ATTEMPTS`] times, oldest
    /// first, hiding them from other claimers until `lease_until`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError>;

    /// How many of `provider`'s events still wait to be processed: pending
    /// or failed, and not yet given up after [`MAX_INBOX_ATTEMPTS`] (for the
    /// backlog gauges).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn backlog(&self, provider: &str) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_are_clamped() {
        assert_eq!(PageRequest::first(0).limit, 1);
        assert_eq!(PageRequest::first(10_000).limit, PageRequest::MAX_LIMIT);
        assert_eq!(PageRequest::default().limit, PageRequest::DEFAULT_LIMIT);
        let after = Uuid::now_v7();
        assert_eq!(PageRequest::after(20, after).after, Some(after));
    }

    #[test]
    fn only_unavailability_is_transient() {
        let unavailable = StoreError::Unavailable {
            source: "connection refused".into(),
        };
        assert!(unavailable.is_transient());
        assert!(!StoreError::NotFound { entity: "call" }.is_transient());
        assert!(
            !StoreError::Conflict {
                entity: "call",
                expected: 3
            }
            .is_transient()
        );
    }

    #[test]
    fn error_messages_do_not_repeat_their_source() {
        let err = StoreError::Unavailable {
            source: "connection refused".into(),
        };
        assert_eq!(err.to_string(), "storage is unavailable");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection refused"));
        assert_eq!(
            StoreError::AlreadyExists {
                entity: "customer",
                field: "phone"
            }
            .to_string(),
            "customer already exists (phone is taken)"
        );
    }
}
