//! The infrastructure contract suites from `iace-testkit` on Redis
//! (`TEST_REDIS_URL`, else testcontainers; each case in its own key prefix).

use iace_redis::{RedisConfig, RedisStore};
use iace_testkit::{Harness, contracts, redis};

async fn store() -> Harness<RedisStore> {
    let config = RedisConfig {
        url: secrecy::SecretString::from(redis::url().await),
        key_prefix: redis::unique_prefix(),
        ..RedisConfig::default()
    };
    Harness::new(
        RedisStore::connect(&config)
            .await
            .expect("connect to Redis"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiter() {
    contracts::rate_limiter::run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache() {
    contracts::cache::run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_bus() {
    contracts::event_bus::run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_dedupe() {
    contracts::event_dedupe::run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_limit_and_one_bus() {
    use futures::StreamExt as _;
    use iace_domain::ports::{
        BusEvent, BusEventKind, EventBus, LimitScope, Quota, RateLimitKey, RateLimiter, Topic,
    };
    let prefix = redis::unique_prefix();
    let config = RedisConfig {
        url: secrecy::SecretString::from(redis::url().await),
        key_prefix: prefix,
        ..RedisConfig::default()
    };
    let (a, b) = (
        RedisStore::connect(&config).await.expect("instance a"),
        RedisStore::connect(&config).await.expect("instance b"),
    );
    // A burst split across two instances is limited as one.
    let key = RateLimitKey::org(iace_domain::OrgId::new(), LimitScope::Requests);
    let quota = Quota::per_minute(6, 10);
    let mut allowed = 0;
    for i in 0..30 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        if limiter.check(&key, &quota, 1).await.expect("check").allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
    // An event published by A reaches a subscriber on B.
    let call = iace_domain::CallId::new();
    let mut on_b = b.subscribe(Topic::Call(call)).await.expect("subscribe");
    let event = BusEvent {
        org_id: iace_domain::OrgId::new(),
        call_id: call,
        kind: BusEventKind::HangupRequested,
        at: iace_testkit::fixtures::now(),
    };
    a.publish(&event).await.expect("publish");
    let got = tokio::time::timeout(std::time::Duration::from_secs(2), on_b.next())
        .await
        .expect("in time");
    assert_eq!(got, Some(event));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_loaded_again_after_redis_restarts() {
    use iace_domain::ports::{LimitScope, Quota, RateLimitKey, RateLimiter};
    let mut server = redis::OwnRedis::start(redis::free_port()).await;
    let config = RedisConfig {
        url: secrecy::SecretString::from(format!("redis://127.0.0.1:{}", server.port)),
        key_prefix: redis::unique_prefix(),
        reconnect_max_delay_ms: 100,
        ..RedisConfig::default()
    };
    let store = RedisStore::connect(&config).await.expect("connect");
    let key = RateLimitKey::org(iace_domain::OrgId::new(), LimitScope::Requests);
    let quota = Quota::per_minute(60, 5);
    assert!(store.check(&key, &quota, 1).await.expect("check").allowed);
    // A restarted Redis has no scripts (and no keys): EVALSHA answers
    // NOSCRIPT, and the adapter loads the script again.
    server.restart().await;
    let started = std::time::Instant::now();
    let decision = loop {
        match store.check(&key, &quota, 1).await {
            Ok(decision) => break decision,
            Err(err) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "no recovery: {err}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert!(decision.allowed);
    assert_eq!(decision.remaining, 4, "a fresh count after the restart");
}
