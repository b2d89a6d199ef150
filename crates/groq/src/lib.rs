//! # iace-groq — the Groq adapter (any OpenAI-compatible chat completions API)
//!
//! [`GroqClient`] implements two domain ports on `POST {base_url}/chat/completions`:
//! - `LanguageModel`: streamed replies with tools. The server-sent events are
//!   parsed as they arrive: text deltas are passed on at once, tool call
//!   fragments are assembled and passed on whole, and the reply ends with
//!   `Finished` (reason and token usage). A body that ends before `[DONE]` or
//!   a `finish_reason` is an error (`StreamClosed`), never a normal end; a
//!   stream that stalls fails with `Timeout`. Dropping the stream drops the
//!   HTTP response, which cancels generation.
//! - `SentimentAnalyzer`: one non-streamed completion answering a JSON object
//!   (`response_format` `json_schema`, strict by default) with a score, a
//!   label and short reasons.
//!
//! Groq is the default, but any server speaking the OpenAI format works
//! (vLLM, Ollama, llama.cpp's server, OpenAI): set [`GroqConfig::base_url`]
//! and the model names.
//!
//! Every request goes through `iace-http` (retries only where repeating is
//! harmless, timeouts and deadlines, one `groq` circuit breaker, request-id and
//! trace propagation); failures leave as the domain's `ProviderError` naming
//! `groq`. The API key is a `SecretString` and is never logged.
//!
//! **Must not depend on** other adapter crates, the app crate or axum: it
//! depends on the domain (for the ports) and on `iace-http` only.

#![warn(missing_docs)]

mod chat;
mod client;
mod config;
mod error;
mod sentiment;
mod sse;
mod wire;

pub use client::GroqClient;
pub use config::{GroqConfig, SentimentOutput};
pub use error::BuildError;
