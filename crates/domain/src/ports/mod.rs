//! Ports: the traits through which the core reaches the outside world.
//!
//! Each port is one capability, an `#[async_trait]` trait that is `Send + Sync`
//! and held as `Arc<dyn Port>`. Adapter crates implement them (sea-orm, fred,
//! Telnyx, Groq, Gemini, Deepgram, and the embedded `local` defaults); `apps/api`
//! picks one implementation per port from configuration. Every method documents
//! its errors. With the `mock` feature, mockall generates a `Mock<Port>` double for
//! each trait beside it (`ports::store::MockCallRepository`,
//! `ports::providers::MockTelephonyGateway`, ...); enable it from dev-dependencies
//! only.
//!
//! - [`store`]: repositories and stores (system of record, vector search, inbox).
//! - [`providers`]: telephony, speech-to-text, text-to-speech, language model,
//!   sentiment, embeddings.
//! - [`infra`]: rate limiter, cache, event bus, clock.

pub mod infra;
pub mod providers;
pub mod store;

use std::error::Error as StdError;

pub use infra::{
    BusEvent, BusEventKind, Cache, CacheExt, CacheKey, Clock, EventBus, EventDedupe, FixedClock,
    InfraError, LimitScope, Quota, RateDecision, RateLimitKey, RateLimiter, SlotLease, SystemClock,
    Topic,
};
pub use providers::{
    AnswerOptions, AudioChunkStream, AudioEncoding, AudioFormat, AudioSink, CallHandle, ChatChunk,
    ChatMessage, ChatRequest, ChatRole, ChatStream, CommandOutcome, DialRequest, DialResponse,
    Embedder, FinishReason, LanguageModel, MachineDetection, MachineDetectionResult,
    MediaStreamSpec, PlaybackStatus, ProviderError, SentimentAnalyzer, SentimentReading,
    SpeechRequest, SpeechToText, SttConfig, SttEvent, SttEventStream, SttSession, TelephonyEvent,
    TelephonyEventKind, TelephonyGateway, TextToSpeech, TokenUsage, ToolCall, ToolSpec,
    TransferTarget,
};
pub use store::{
    AgentRepository, ApiKeyRepository, CallFilter, CallLocator, CallRepository, CustomerRepository,
    ExperimentRepository, InboxEvent, InboxOutcome, InboxStatus, MAX_INBOX_ATTEMPTS, MemoryStore,
    MemoryStoreExt, NewInboxEvent, OrgRepository, Page, PageRequest, PatternFilter, PatternStore,
    PersonaRepository, RefreshTokenRepository, ScoredMatch, StoreError, TranscriptRepository,
    UserRepository, WebhookInbox,
};

/// A boxed error source kept inside port errors so logs can print the chain.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[cfg(all(test, feature = "mock"))]
mod mock_tests {
    use std::sync::Arc;

    use super::*;
    use crate::{CallId, OrgId};

    #[test]
    fn mocks_stand_in_for_ports_behind_arc_dyn() {
        let mut calls = store::MockCallRepository::new();
        calls
            .expect_count_live()
            .withf(|_org| true)
            .times(1)
            .returning(|_| Ok(3));
        calls
            .expect_get()
            .returning(|_, _| Err(StoreError::NotFound { entity: "call" }));
        let calls: Arc<dyn CallRepository> = Arc::new(calls);

        let mut clock = infra::MockClock::new();
        let at = chrono::Utc::now();
        clock.expect_now().return_const(at);
        let clock: Arc<dyn Clock> = Arc::new(clock);

        futures::executor::block_on(async {
            assert_eq!(calls.count_live(OrgId::new()).await.expect("count"), 3);
            let missing = calls.get(OrgId::new(), CallId::new()).await;
            assert!(matches!(
                missing,
                Err(StoreError::NotFound { entity: "call" })
            ));
        });
        assert_eq!(clock.now(), at);
    }
}
