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
pub mod telephony;
