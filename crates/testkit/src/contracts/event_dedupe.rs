//! `EventDedupe` contract.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iace_domain::ports::EventDedupe;

use super::case;
use crate::Harness;

fn event_id() -> String {
    format!("evt-{}", uuid::Uuid::new_v4().simple())
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: EventDedupe + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "dedupe: first delivery is new, redeliveries are not",
        |s| {
            let id = event_id();
            let ttl = Duration::from_secs(60);
            assert!(s.first_seen("telnyx", &id, ttl).await.expect("first"));
            assert!(!s.first_seen("telnyx", &id, ttl).await.expect("again"));
            assert!(
                s.first_seen("stripe", &id, ttl)
                    .await
                    .expect("other provider"),
                "providers are separate"
            );
            s.forget("telnyx", &id).await.expect("forget");
            assert!(
                s.first_seen("telnyx", &id, ttl)
                    .await
                    .expect("after forget")
            );
        }
    );
    case!(make, "dedupe: `seen` reads without marking", |s| {
        let id = event_id();
        assert!(!s.seen("telnyx", &id).await.expect("unseen"));
        assert!(!s.seen("telnyx", &id).await.expect("still unseen"));
        assert!(
            s.first_seen("telnyx", &id, Duration::from_secs(60))
                .await
                .expect("mark")
        );
        assert!(s.seen("telnyx", &id).await.expect("seen"));
        assert!(!s.seen("stripe", &id).await.expect("other provider"));
        s.forget("telnyx", &id).await.expect("forget");
        assert!(!s.seen("telnyx", &id).await.expect("forgotten"));
    });
    case!(make, "dedupe: entries expire", |s| {
        let id = event_id();
        assert!(
            s.first_seen("telnyx", &id, Duration::from_millis(150))
                .await
                .expect("first")
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            s.first_seen("telnyx", &id, Duration::from_secs(60))
                .await
                .expect("expired")
        );
    });
    case!(
        make,
        "dedupe: of concurrent deliveries exactly one is first",
        |s| {
            let _ = s;
            let shared = Arc::new(make().await);
            let id = event_id();
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let (h, id) = (Arc::clone(&shared), id.clone());
                tasks.push(tokio::spawn(async move {
                    h.store
                        .first_seen("telnyx", &id, Duration::from_secs(60))
                        .await
                        .expect("check")
                }));
            }
            let mut firsts = 0;
            for task in tasks {
                if task.await.expect("task") {
                    firsts += 1;
                }
            }
            assert_eq!(firsts, 1);
        }
    );
}
