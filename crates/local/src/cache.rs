//! In-process `Cache` with expiry, for a single instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{Cache, CacheKey, Clock, InfraError};

/// Key → (value, expiry).
type Entries = HashMap<String, (Vec<u8>, DateTime<Utc>)>;

/// The embedded cache. Bounded: when it holds `max_entries`, expired entries
/// are dropped, and if none were, everything is (a cache may forget).
pub struct LocalCache {
    clock: Arc<dyn Clock>,
    max_entries: usize,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache").finish_non_exhaustive()
    }
}

impl LocalCache {
    /// A cache of at most `max_entries` values reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>, max_entries: usize) -> Self {
        Self {
            clock,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Cache for LocalCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, InfraError> {
        let now = self.clock.now();
        Ok(self
            .entries()
            .get(key.as_str())
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone()))
    }

    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), InfraError> {
        let now = self.clock.now();
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let mut entries = self.entries();
        if entries.len() >= self.max_entries && !entries.contains_key(key.as_str()) {
            entries.retain(|_, (_, e)| *e > now);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key.as_str().to_owned(), (value, expires));
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), InfraError> {
        self.entries().remove(key.as_str());
        Ok(())
    }
}
