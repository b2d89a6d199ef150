//! `RateLimiter` contract (real time, generous margins: no speed assertions).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iace_domain::OrgId;
use iace_domain::ports::{LimitScope, Quota, RateLimitKey, RateLimiter};

use super::case;
use crate::Harness;

fn key() -> RateLimitKey {
    RateLimitKey::org(OrgId::new(), LimitScope::Requests)
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: RateLimiter + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "rate limiter: a burst is allowed, then refused with a retry time",
        |s| {
            let (k, quota) = (key(), Quota::per_minute(60, 3));
            let mut remaining = Vec::new();
            for _ in 0..3 {
                let d = s.check(&k, &quota, 1).await.expect("check");
                assert!(d.allowed);
                assert_eq!(d.limit, 3);
                remaining.push(d.remaining);
            }
            assert_eq!(remaining, vec![2, 1, 0]);
            let refused = s.check(&k, &quota, 1).await.expect("check");
            assert!(!refused.allowed);
            let retry = refused.retry_after.expect("retry after");
            assert!(
                retry > Duration::ZERO && retry <= Duration::from_secs(1),
                "{retry:?}"
            );
            // Another key has its own budget.
            assert!(s.check(&key(), &quota, 1).await.expect("check").allowed);
        }
    );
    case!(
        make,
        "rate limiter: units come back at the sustained rate",
        |s| {
            let (k, quota) = (
                key(),
                Quota {
                    limit: 10,
                    period: Duration::from_secs(1),
                    burst: 1,
                },
            );
            assert!(s.check(&k, &quota, 1).await.expect("check").allowed);
            assert!(!s.check(&k, &quota, 1).await.expect("check").allowed);
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert!(s.check(&k, &quota, 1).await.expect("check").allowed);
        }
    );
    case!(make, "rate limiter: a zero quota refuses everything", |s| {
        let quota = Quota::per_minute(0, 5);
        assert!(!s.check(&key(), &quota, 1).await.expect("check").allowed);
    });
    case!(
        make,
        "rate limiter: concurrent checks never exceed the burst",
        |s| {
            let _ = s;
            let shared = Arc::new(make().await);
            let (k, quota) = (key(), Quota::per_minute(6, 10));
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let (h, k) = (Arc::clone(&shared), k.clone());
                tasks.push(tokio::spawn(async move {
                    h.store.check(&k, &quota, 1).await.expect("check").allowed
                }));
            }
            let mut allowed = 0;
            for task in tasks {
                if task.await.expect("task") {
                    allowed += 1;
                }
            }
            assert_eq!(allowed, 10);
        }
    );
    case!(
        make,
        "rate limiter: concurrency slots, release, renew, expiry",
        |s| {
            let k = RateLimitKey::org(OrgId::new(), LimitScope::LiveCalls);
            let lease = Duration::from_secs(30);
            let a = s
                .acquire(&k, 2, lease)
                .await
                .expect("acquire")
                .expect("slot a");
            let b = s
                .acquire(&k, 2, lease)
                .await
                .expect("acquire")
                .expect("slot b");
            assert_ne!(a.token, b.token);
            assert!(
                s.acquire(&k, 2, lease).await.expect("acquire").is_none(),
                "full"
            );
            assert!(s.renew(&a, lease).await.expect("renew"));
            s.release(&a).await.expect("release");
            s.release(&a).await.expect("release is idempotent");
            assert!(
                !s.renew(&a, lease).await.expect("renew"),
                "a released slot cannot be renewed"
            );
            assert!(
                s.acquire(&k, 2, lease).await.expect("acquire").is_some(),
                "a freed slot is free"
            );
            // A lease that is not renewed expires by itself.
            let short = RateLimitKey::org(OrgId::new(), LimitScope::LiveCalls);
            s.acquire(&short, 1, Duration::from_millis(100))
                .await
                .expect("acquire")
                .expect("slot");
            assert!(
                s.acquire(&short, 1, lease)
                    .await
                    .expect("acquire")
                    .is_none()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                s.acquire(&short, 1, lease)
                    .await
                    .expect("acquire")
                    .is_some(),
                "expired lease freed"
            );
        }
    );
}
