//! # iace-redis — shared limits, cache and call events on Redis
//!
//! [`RedisStore`] implements the domain's `RateLimiter` (GCRA in one Lua script
//! per check, using the Redis server's clock so every instance agrees; leased
//! concurrency slots in a sorted set), `Cache` (values with `PX` expiry) and
//! `EventBus` (pub/sub on one channel per topic, JSON payloads) for several API
//! instances. Every key and channel carries the configured prefix.
//!
//! **Must not depend on** other adapter crates or the API.

mod config;
mod store;

pub use config::RedisConfig;
pub use store::{ConnectError, RedisStore};
