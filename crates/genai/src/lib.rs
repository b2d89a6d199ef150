//! # iace-genai — Google Gemini embeddings
//!
//! [`GeminiEmbedder`] implements the domain's `Embedder` port on the Gemini
//! API's `models/{model}:batchEmbedContents` (`gemini-embedding-001` by
//! default): texts go in batches of at most 100, the key in the
//! `x-goog-api-key` header, and every vector comes back checked against the
//! configured dimension and L2-normalised (Gemini only normalises its full
//! 3072-component output). Requests go through `iace-http`, so they get its
//! retries, deadlines, circuit breaker and trace propagation, and failures
//! leave as the domain's `ProviderError` naming `gemini`.
//!
//! Configuration is [`GenaiConfig`]; its `dimension` must match the
//! database's vector columns.
//!
//! **Must not depend on** other adapter crates, the app crate or axum.

mod client;
mod config;
mod wire;

pub use client::{BuildError, GeminiEmbedder, PROVIDER};
pub use config::{GenaiConfig, MAX_BATCH_SIZE, MAX_DIMENSION, TaskType};
