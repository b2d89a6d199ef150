//! The infrastructure contract suites from `iace-testkit`, on the in-process
//! implementations (the Redis adapter runs the same suites).

use std::sync::Arc;

use iace_domain::ports::SystemClock;
use iace_local::bus::LocalEventBus;
use iace_local::cache::LocalCache;
use iace_local::dedupe::LocalEventDedupe;
use iace_local::limiter::LocalRateLimiter;
use iace_testkit::Harness;
use iace_testkit::contracts;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiter() {
    contracts::rate_limiter::run(|| async {
        Harness::new(LocalRateLimiter::new(Arc::new(SystemClock)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache() {
    contracts::cache::run(|| async { Harness::new(LocalCache::new(Arc::new(SystemClock), 1_000)) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_bus() {
    contracts::event_bus::run(|| async { Harness::new(LocalEventBus::new(64)) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_dedupe() {
    contracts::event_dedupe::run(|| async {
        Harness::new(LocalEventDedupe::new(Arc::new(SystemClock), 1_000))
    })
    .await;
}
