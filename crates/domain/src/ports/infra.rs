//! Infrastructure ports: rate limiting, caching, cross-instance events, time.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::BoxError;
use crate::call::CallStatus;
use crate::{AgentId, ApiKeyId, CallId, OrgId};

/// Why an infrastructure call failed.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The backend (e.g. Redis) could not be reached or failed.
    #[error("{backend} is unavailable")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// The backend did not answer within the command timeout.
    #[error("{backend} did not answer in time")]
    Timeout {
        /// Backend name.
        backend: &'static str,
    },
    /// A value could not be encoded or decoded.
    #[error("cached value could not be (de)serialized")]
    Serialization {
        /// The codec's error.
        #[source]
        source: BoxError,
    },
}

// ---------------------------------------------------------------- rate limiting

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// API requests.
    Requests,
    /// Outbound calls placed.
    OutboundCalls,
    /// Calls live at the same time.
    LiveCalls,
}

impl LimitScope {
    /// The stable snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::OutboundCalls => "outbound_calls",
            Self::LiveCalls => "live_calls",
        }
    }
}

/// The key a limit is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateLimitKey(String);

impl RateLimitKey {
    /// An organisation's counter for `scope`.
    #[must_use]
    pub fn org(org: OrgId, scope: LimitScope) -> Self {
        Self(format!("org:{org}:{}", scope.as_str()))
    }

    /// An API key's counter for `scope`.
    #[must_use]
    pub fn api_key(key: ApiKeyId, scope: LimitScope) -> Self {
        Self(format!("key:{key}:{}", scope.as_str()))
    }

    /// Sign-in attempts for one account, under an opaque digest of its
    /// e-mail address (no address is stored in the limiter).
    #[must_use]
    pub fn login(email_digest: &str) -> Self {
        Self(format!("login:{email_digest}"))
    }

    /// The one media stream a call may have, across every instance.
    #[must_use]
    pub fn media_stream(call: CallId) -> Self {
        Self(format!("call:{call}:media_stream"))
    }

    /// The key as a string (adapters prefix it).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rate: `limit` units per `period`, with up to `burst` units at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Units allowed per period (sustained rate).
    pub limit: u32,
    /// The period.
    pub period: Duration,
    /// Units that may be spent at once (≥ 1).
    pub burst: u32,
}

impl Quota {
    /// `limit` per minute with `burst`.
    #[must_use]
    pub const fn per_minute(limit: u32, burst: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
            burst,
        }
    }

    /// The time one unit takes to replenish (the GCRA emission interval), or
    /// `None` for a zero limit (nothing is ever allowed).
    #[must_use]
    pub fn emission_interval(&self) -> Option<Duration> {
        (self.limit > 0).then(|| self.period / self.limit)
    }
}

/// The answer to a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDecision {
    /// Whether the request may proceed (and was counted).
    pub allowed: bool,
    /// The burst size (the `RateLimit` header's limit).
    pub limit: u32,
    /// Units still available now.
    pub remaining: u32,
    /// Time until the full burst is available again.
    pub reset_after: Duration,
    /// When refused: time until one unit is available.
    pub retry_after: Option<Duration>,
}

/// A held concurrency slot (e.g. one live call); release it when done. It expires
/// by itself after its lease so a crashed instance cannot leak slots forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotLease {
    /// The key the slot was taken under.
    pub key: RateLimitKey,
    /// The slot's unique token.
    pub token: String,
}

/// Exact limits shared by every instance.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts `cost` units against `key` under `quota`, atomically, if they fit.
    ///
    /// # Errors
    /// [`InfraError`] when the backend fails; the caller applies its configured
    /// policy (fail open or closed).
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<RateDecision, InfraError>;

    /// Takes one of at most `max` concurrent slots under `key` for up to `lease`;
    /// `None` when all are taken.
    ///
    /// # Errors
    /// [`InfraError`].
    async fn acquire(
        &self,
        key: &RateLimitKey,
        max: u32,
        lease: Duration,
    ) -> Result<Option<SlotLease>, InfraError>;

    /// Extends a held slot's lease by `lease` from now (a call that outlives its
    /// first lease keeps its slot); `false` when the slot had already expired or
    /// been released — the holder must then acquire again.
    ///
    /// # Errors
    /// [`InfraError`].
    async fn renew(&self, lease: &SlotLease, extend_by: Duration) -> Result<bool, InfraError>;

    /// Gives a slot back (idempotent).
    ///
    /// # Errors
    /// [`InfraError`].
    async fn release(&self, lease: &SlotLease) -> Result<(), InfraError>;
}

// ---------------------------------------------------------------- cache

/// A cache key: always namespaced by organisation, so tenants never share
/// entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheKey(String);

impl CacheKey {
    /// `org:<org>:<namespace>:<key>`, e.g. the customer with a phone number.
    #[must_use]
    pub fn new(org: OrgId, namespace: &str, key: &str) -> Self {
        Self(format!("org:{org}:{namespace}:{key}"))
    }

    /// The key as a string (adapters prefix it).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A byte cache with expiry, shared by instances when backed by Redis.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value, if present and not expired.
    ///
    /// # Errors
    /// [`InfraError`]; callers treat errors as a miss.
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, InfraError>;

    /// Stores a value for `ttl`.
    ///
    /// # Errors
    /// [`InfraError`].
    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), InfraError>;

    /// Removes a value (invalidation on write); absent keys are fine.
    ///
    /// # Errors
    /// [`InfraError`].
    async fn delete(&self, key: &CacheKey) -> Result<(), InfraError>;
}

/// JSON helpers over any [`Cache`] (generic, so not part of the object-safe trait).
#[async_trait]
pub trait CacheExt: Cache {
    /// Reads and decodes a JSON value.
    ///
    /// # Errors
    /// [`InfraError`]; [`InfraError::Serialization`] when the stored bytes are not
    /// a `T` (e.g. written by an older version) — callers treat it as a miss.
    async fn get_json<T: DeserializeOwned>(&self, key: &CacheKey) -> Result<Option<T>, InfraError> {
        match self.get(key).await? {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| InfraError::Serialization {
                        source: Box::new(e),
                    })
            }
            None => Ok(None),
        }
    }

    /// Encodes and stores a JSON value.
    ///
    /// # Errors
    /// [`InfraError`].
    async fn set_json<T: Serialize + Sync>(
        &self,
        key: &CacheKey,
        value: &T,
        ttl: Duration,
    ) -> Result<(), InfraError> {
        let bytes = serde_json::to_vec(value).map_err(|e| InfraError::Serialization {
            source: Box::new(e),
        })?;
        self.set(key, bytes, ttl).await
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

// ---------------------------------------------------------------- event bus

/// Who wants to hear about what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Topic {
    /// One call (the instance holding its media session subscribes).
    Call(CallId),
    /// Every call of an organisation (live dashboards).
    Org(OrgId),
}

/// What happened to a call, for other instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEventKind {
    /// The status changed.
    StatusChanged {
        /// Before.
        from: CallStatus,
        /// After.
        to: CallStatus,
    },
    /// The caller pressed keys.
    Dtmf {
        /// The digits.
        digits: String,
    },
    /// The provider's media stream started.
    StreamingStarted,
    /// The provider's media stream stopped or failed.
    StreamingStopped,
    /// Provider-played audio finished (speak or playback).
    PlaybackEnded,
    /// An operator asked for the call to be transferred.
    TransferRequested {
        /// To whom.
        agent_id: AgentId,
    },
    /// An operator asked for the call to be hung up.
    HangupRequested,
}

/// A call event published on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    /// The organisation.
    pub org_id: OrgId,
    /// The call.
    pub call_id: CallId,
    /// What happened.
    pub kind: BusEventKind,
    /// When.
    pub at: DateTime<Utc>,
}

impl BusEvent {
    /// The topics the event is delivered on: its call's and its org's.
    #[must_use]
    pub fn topics(&self) -> [Topic; 2] {
        [Topic::Call(self.call_id), Topic::Org(self.org_id)]
    }
}

/// Publish/subscribe of call events across instances. Delivery is at most once
/// and best effort: state of record is in the repositories; the bus only makes
/// other instances react sooner. A subscription stream that ends means the
/// connection behind it was lost: subscribe again and re-read state from the
/// repositories.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes an event on its topics.
    ///
    /// # Errors
    /// [`InfraError`].
    async fn publish(&self, event: &BusEvent) -> Result<(), InfraError>;

    /// Events on `topic` from now on, until the stream is dropped.
    ///
    /// # Errors
    /// [`InfraError`] when the subscription cannot be made.
    async fn subscribe(&self, topic: Topic) -> Result<BoxStream<'static, BusEvent>, InfraError>;
}

// ---------------------------------------------------------------- webhook dedupe

/// A fast, shared "have we seen this provider event?" check in front of the
/// durable `WebhookInbox`: it turns away most redeliveries before they reach
/// the database. It is an optimisation only — the inbox's unique key stays
/// the guarantee — so a lost entry (eviction, restart) just costs a database
/// round trip.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EventDedupe: Send + Sync {
    /// Marks `(provider, event_id)` as seen for `ttl` and says whether this is
    /// the first time within that window (atomic: of two concurrent callers,
    /// one gets `true`).
    ///
    /// # Errors
    /// [`InfraError`]; callers then fall back to the inbox alone.
    async fn first_seen(
        &self,
        provider: &str,
        event_id: &str,
        ttl: Duration,
    ) -> Result<bool, InfraError>;

    /// Whether `(provider, event_id)` is marked as seen, without marking it.
    /// Intake checks this before the inbox and marks an event only once the
    /// inbox holds it, so a marked event is always durably recorded.
    ///
    /// # Errors
    /// [`InfraError`]; callers then fall back to the inbox alone.
    async fn seen(&self, provider: &str, event_id: &str) -> Result<bool, InfraError>;

    /// Forgets an event (when recording it in the inbox failed, so that the
    /// provider's retry is processed).
    ///
    /// # Errors
    /// [`InfraError`].
    async fn forget(&self, provider: &str, event_id: &str) -> Result<(), InfraError>;
}

// ---------------------------------------------------------------- clock

/// The time. Inject it wherever "now" matters so tests control it.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved; for tests and simulations.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock showing `at`.
    #[must_use]
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MapCache(Mutex<HashMap<String, Vec<u8>>>);

    #[async_trait]
    impl Cache for MapCache {
        async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, InfraError> {
            Ok(self.0.lock().expect("lock").get(key.as_str()).cloned())
        }
        async fn set(&self, key: &CacheKey, value: Vec<u8>, _: Duration) -> Result<(), InfraError> {
            self.0
                .lock()
                .expect("lock")
                .insert(key.as_str().to_owned(), value);
            Ok(())
        }
        async fn delete(&self, key: &CacheKey) -> Result<(), InfraError> {
            self.0.lock().expect("lock").remove(key.as_str());
            Ok(())
        }
    }

    #[test]
    fn json_helpers_round_trip_through_a_dyn_cache() {
        let cache: Box<dyn Cache> = Box::new(MapCache::default());
        let key = CacheKey::new(OrgId::new(), "customer_by_phone", "+14155550100");
        futures::executor::block_on(async {
            assert_eq!(cache.get_json::<Vec<u32>>(&key).await.expect("get"), None);
            cache
                .set_json(&key, &vec![1u32, 2, 3], Duration::from_secs(60))
                .await
                .expect("set");
            assert_eq!(
                cache.get_json::<Vec<u32>>(&key).await.expect("get"),
                Some(vec![1, 2, 3])
            );
            let wrong_type = cache.get_json::<String>(&key).await;
            assert!(matches!(wrong_type, Err(InfraError::Serialization { .. })));
            cache.delete(&key).await.expect("delete");
            assert_eq!(cache.get_json::<Vec<u32>>(&key).await.expect("get"), None);
        });
    }

    #[test]
    fn keys_are_namespaced_by_org() {
        let (a, b) = (OrgId::new(), OrgId::new());
        assert_ne!(
            CacheKey::new(a, "persona", "1"),
            CacheKey::new(b, "persona", "1")
        );
        assert!(
            CacheKey::new(a, "persona", "1")
                .as_str()
                .starts_with(&format!("org:{a}:"))
        );
        assert_eq!(
            RateLimitKey::org(a, LimitScope::LiveCalls).as_str(),
            format!("org:{a}:live_calls")
        );
    }

    #[test]
    fn quota_emission_interval() {
        assert_eq!(
            Quota::per_minute(60, 10).emission_interval(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            Quota::per_minute(120, 10).emission_interval(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(Quota::per_minute(0, 1).emission_interval(), None);
    }

    #[test]
    fn bus_events_go_to_their_call_and_org() {
        let event = BusEvent {
            org_id: OrgId::new(),
            call_id: CallId::new(),
            kind: BusEventKind::Dtmf {
                digits: "12#".into(),
            },
            at: Utc::now(),
        };
        assert_eq!(
            event.topics(),
            [Topic::Call(event.call_id), Topic::Org(event.org_id)]
        );
        let json = serde_json::to_value(&event).expect("ser");
        assert_eq!(json["kind"]["type"], "dtmf");
        assert_eq!(serde_json::from_value::<BusEvent>(json).expect("de"), event);
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let start = Utc::now();
        let clock = FixedClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(chrono::Duration::seconds(5));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(5));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
