//! Ports: the traits through which the core reaches the outside world.
//!
//! Each port is one capability, an `#[async_trait]` trait that is `Send + Sync`
//! and held as `Arc<dyn Port>`. Adapter crates implement them (sea-orm, fred,
//! Telnyx, Groq, Gemini, Deepgram, and the embedded `local` defaults); `apps/api`
//! picks one implementation per port from configuration. Every method documents
//! its errors. With the `mock` feature, mockall generates a `Mock<Port>` double for
//! each trait (enable it from dev-dependencies only).
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
    BusEvent, BusEventKind, Cache, CacheExt, CacheKey, Clock, EventBus, FixedClock, InfraError,
    LimitScope, Quota, RateDecision, RateLimitKey, RateLimiter, SlotLease, SystemClock, Topic,
};
pub use providers::{
    AnswerOptions, AudioChunkStream, AudioEncoding, AudioFormat, AudioSink, CallHandle, ChatChunk,
    ChatMessage, ChatRequest, ChatRole, ChatStream, CommandOutcome, DialRequest, DialResponse,
    Embedder, FinishReason, LanguageModel, MachineDetection, MediaStreamSpec, ProviderError,
    SentimentAnalyzer, SpeechRequest, SpeechToText, SttConfig, SttEvent, SttEventStream,
    SttSession, TelephonyGateway, TextToSpeech, TokenUsage, ToolCall, ToolSpec, TransferTarget,
};
pub use store::{
    AgentRepository, ApiKeyRepository, CallFilter, CallLocator, CallRepository, CustomerRepository,
    ExperimentRepository, InboxEvent, InboxOutcome, InboxStatus, MemoryStore, NewInboxEvent,
    OrgRepository, Page, PageRequest, PatternStore, PersonaRepository, RefreshTokenRepository,
    ScoredMatch, StoreError, TranscriptRepository, UserRepository, WebhookInbox,
};

/// A boxed error source kept inside port errors so logs can print the chain.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;
