//! Read-through caching of hot lookups over the [`Cache`] port: a hit skips
//! the database, a write through the owning service forgets the entry, and a
//! cache failure only ever costs a database read (it is logged, never
//! returned).

use std::sync::Arc;
use std::time::Duration;

use iace_domain::ports::{Cache, CacheExt, CacheKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A cache and how long its entries live.
#[derive(Clone)]
pub(crate) struct ReadThrough {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

impl ReadThrough {
    pub(crate) fn new(cache: Arc<dyn Cache>, ttl: Duration) -> Self {
        Self { cache, ttl }
    }

    /// The cached value, or `None` on a miss or a cache failure.
    pub(crate) async fn lookup<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        if self.ttl.is_zero() {
            return None;
        }
        match self.cache.get_json::<T>(key).await {
            Ok(found) => found,
            Err(err) => {
                tracing::debug!(error = %err, "cache read failed; reading the database");
                None
            }
        }
    }

    /// Remembers `value` under `key`.
    pub(crate) async fn store<T: Serialize + Sync>(&self, key: &CacheKey, value: &T) {
        if self.ttl.is_zero() {
            return;
        }
        if let Err(err) = self.cache.set_json(key, value, self.ttl).await {
            tracing::debug!(error = %err, "could not cache a lookup");
        }
    }

    /// Forgets `key` (after a write).
    pub(crate) async fn forget(&self, key: &CacheKey) {
        if let Err(err) = self.cache.delete(key).await {
            tracing::warn!(error = %err, "could not invalidate a cached lookup");
        }
    }
}
