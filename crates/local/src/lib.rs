//! # iace-local — the embedded defaults
//!
//! Implementations of domain ports that need no outside service, so that
//! `iace-api` runs on a laptop with nothing else installed, and tests run
//! without the internet:
//!
//! - [`telephony::SimulatedTelephony`]: a `TelephonyGateway` that accepts every
//!   command, hands out provider call ids and remembers what it was asked.
//! - [`embedder::HashingEmbedder`]: an `Embedder` that hashes words into a
//!   fixed-dimension vector (similar texts get similar vectors).
//! - [`sentiment::LexiconSentiment`]: a `SentimentAnalyzer` on an embedded
//!   English word list, VADER-style (negation, intensifiers, emphasis), with
//!   the words that drove the score as reasons.
//! - [`replies::ScriptedReplies`]: a `LanguageModel` for demos and tests —
//!   **not an AI**: canned answers to a few keywords (greeting, opening hours,
//!   billing, asking for a person → the `transfer_to_agent` tool, goodbye),
//!   streamed word by word.
//! - [`speech::TextSpeechToText`] and [`speech::EchoTextToSpeech`]:
//!   `SpeechToText` and `TextToSpeech` whose "audio" is UTF-8 text, for the
//!   call simulator and tests.
//! - [`limiter::LocalRateLimiter`], [`cache::LocalCache`],
//!   [`bus::LocalEventBus`]: the in-process `RateLimiter`, `Cache` and
//!   `EventBus` for a single instance (Redis shares them across instances), and
//!   [`dedupe::LocalEventDedupe`], the webhook dedupe fast path.
//!
//! **Must not depend on** other adapter crates, the API, or anything that opens
//! a socket.

pub mod bus;
pub mod cache;
pub mod dedupe;
pub mod embedder;
pub mod limiter;
pub mod replies;
pub mod sentiment;
pub mod speech;
pub mod telephony;
