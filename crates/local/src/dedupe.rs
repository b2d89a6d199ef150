//! In-process `EventDedupe` for a single instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{Clock, EventDedupe, InfraError};

/// Seen events with their expiry; bounded (expired entries are dropped when
/// it fills, everything if none are).
pub struct LocalEventDedupe {
    clock: Arc<dyn Clock>,
    max_entries: usize,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for LocalEventDedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEventDedupe").finish_non_exhaustive()
    }
}

impl LocalEventDedupe {
    /// Remembers at most `max_entries` events, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>, max_entries: usize) -> Self {
        Self {
            clock,
            max_entries: max_entries.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

fn key(provider: &str, event_id: &str) -> String {
    format!("{provider}\u{1f}{event_id}")
}

#[async_trait]
impl EventDedupe for LocalEventDedupe {
    async fn first_seen(
        &self,
        provider: &str,
        event_id: &str,
        ttl: Duration,
    ) -> Result<bool, InfraError> {
        let now = self.clock.now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let k = key(provider, event_id);
        if seen.get(&k).is_some_and(|expires| *expires > now) {
            return Ok(false);
        }
        if seen.len() >= self.max_entries {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= self.max_entries {
                seen.clear();
            }
        }
        seen.insert(
            k,
            now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        );
        Ok(true)
    }

    async fn seen(&self, provider: &str, event_id: &str) -> Result<bool, InfraError> {
        let now = self.clock.now();
        Ok(self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key(provider, event_id))
            .is_some_and(|expires| *expires > now))
    }

    async fn forget(&self, provider: &str, event_id: &str) -> Result<(), InfraError> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(provider, event_id));
        Ok(())
    }
}
