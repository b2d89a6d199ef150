//! `WebhookInbox` contract: idempotent recording, due-time and lease semantics,
//! concurrent claimers. Tenant-less by design.

use std::collections::HashSet;
use std::future::Future;

use chrono::Duration;
use iace_domain::InboxEventId;
use iace_domain::ports::{InboxOutcome, InboxStatus, StoreError, WebhookInbox};

use super::case;
use crate::{Harness, fixtures};

fn new_id(outcome: InboxOutcome) -> InboxEventId {
    match outcome {
        InboxOutcome::New { id } => id,
        InboxOutcome::Duplicate { id } => panic!("expected a new event, got duplicate {id}"),
    }
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: WebhookInbox + Clone + Send + Sync + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "inbox: a duplicate delivery answers the first id and changes nothing",
        |s| {
            let now = fixtures::now();
            let first = fixtures::inbox_event(1, now);
            let id = new_id(s.record(&first, now).await.expect("record"));
            let mut again = fixtures::inbox_event(1, now + Duration::seconds(5));
            again.payload = serde_json::json!({ "tampered": true });
            again.event_type = "call.hangup".into();
            assert_eq!(
                s.record(&again, now + Duration::seconds(5))
                    .await
                    .expect("record again"),
                InboxOutcome::Duplicate { id }
            );
            // Same event id from another provider is another event.
            let mut stripe = fixtures::inbox_event(1, now);
            stripe.provider = "stripe".into();
            let other = new_id(s.record(&stripe, now).await.expect("other provider"));
            assert_ne!(other, id);
            let claimed = s
                .claim_due(now, now + Duration::minutes(1), 10)
                .await
                .expect("claim");
            assert_eq!(claimed.len(), 2);
            let stored = claimed.iter().find(|e| e.id == id).expect("first");
            assert_eq!(stored.event, first, "the first delivery is kept as is");
            assert_eq!(stored.status, InboxStatus::Pending);
            assert_eq!(stored.attempts, 0);
            assert_eq!(stored.last_error, None);
            assert_eq!(stored.next_attempt_at, Some(now + Duration::minutes(1)));
        }
    );
    case!(
        make,
        "inbox: an event is not due before process_by; oldest received first",
        |s| {
            let now = fixtures::now();
            let process_by = now + Duration::seconds(30);
            // Received in the order 2, 1, 3 (ids do not decide the order).
            let e1 = fixtures::inbox_event(1, now - Duration::seconds(2));
            let e2 = fixtures::inbox_event(2, now - Duration::seconds(3));
            let e3 = fixtures::inbox_event(3, now - Duration::seconds(1));
            let id1 = new_id(s.record(&e1, process_by).await.expect("1"));
            let id2 = new_id(s.record(&e2, process_by).await.expect("2"));
            let id3 = new_id(s.record(&e3, process_by).await.expect("3"));
            assert!(
                s.claim_due(now, now + Duration::minutes(5), 10)
                    .await
                    .expect("claim")
                    .is_empty(),
                "the receiving instance still has it"
            );
            let later = process_by + Duration::milliseconds(1);
            let lease = later + Duration::minutes(5);
            let first = s.claim_due(later, lease, 2).await.expect("claim");
            assert_eq!(
                first.iter().map(|e| e.id).collect::<Vec<_>>(),
                vec![id2, id1],
                "limited, oldest received first"
            );
            let rest = s.claim_due(later, lease, 2).await.expect("claim");
            assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id3]);
            assert!(
                s.claim_due(later, lease, 0)
                    .await
                    .expect("claim none")
                    .is_empty()
            );
        }
    );
    case!(
        make,
        "inbox: a claimed event is hidden until its lease ends",
        |s| {
            let now = fixtures::now();
            let id = new_id(
                s.record(&fixtures::inbox_event(1, now), now)
                    .await
                    .expect("record"),
            );
            let lease = now + Duration::minutes(2);
            let claimed = s.claim_due(now, lease, 10).await.expect("claim");
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0].id, id);
            assert_eq!(claimed[0].next_attempt_at, Some(lease));
            assert!(
                s.claim_due(now + Duration::minutes(1), lease, 10)
                    .await
                    .expect("claim during lease")
                    .is_empty()
            );
            let after = s
                .claim_due(lease, lease + Duration::minutes(2), 10)
                .await
                .expect("claim after lease");
            assert_eq!(
                after.iter().map(|e| e.id).collect::<Vec<_>>(),
                vec![id],
                "an unfinished claim is handed out again"
            );
        }
    );
    case!(
        make,
        "inbox: completed events are never claimed again",
        |s| {
            let now = fixtures::now();
            let processed = new_id(
                s.record(&fixtures::inbox_event(1, now), now)
                    .await
                    .expect("1"),
            );
            let ignored = new_id(
                s.record(&fixtures::inbox_event(2, now), now)
                    .await
                    .expect("2"),
            );
            s.complete(processed, InboxStatus::Processed, now)
                .await
                .expect("processed");
            s.complete(ignored, InboxStatus::Ignored, now)
                .await
                .expect("ignored");
            assert!(
                s.claim_due(now + Duration::days(1), now + Duration::days(2), 10)
                    .await
                    .expect("claim")
                    .is_empty()
            );
            // A late redelivery is still recognised.
            assert_eq!(
                s.record(&fixtures::inbox_event(1, now), now)
                    .await
                    .expect("again"),
                InboxOutcome::Duplicate { id: processed }
            );
        }
    );
    case!(
        make,
        "inbox: a failure counts the attempt, keeps the error and sets the retry time",
        |s| {
            let now = fixtures::now();
            let id = new_id(
                s.record(&fixtures::inbox_event(1, now), now)
                    .await
                    .expect("record"),
            );
            let retry_at = now + Duration::seconds(10);
            s.fail(id, "provider timed out", retry_at)
                .await
                .expect("fail 1");
            assert!(
                s.claim_due(now + Duration::seconds(9), now + Duration::minutes(1), 10)
                    .await
                    .expect("claim before retry")
                    .is_empty(),
                "not retried early"
            );
            let long = "é".repeat(2_500);
            s.fail(id, &long, retry_at).await.expect("fail 2");
            let claimed = s
                .claim_due(retry_at, retry_at + Duration::minutes(1), 10)
                .await
                .expect("claim at retry");
            assert_eq!(claimed.len(), 1);
            let event = &claimed[0];
            assert_eq!(event.id, id);
            assert_eq!(event.status, InboxStatus::Failed);
            assert_eq!(event.attempts, 2);
            assert_eq!(
                event.last_error.as_deref(),
                Some("é".repeat(2_000).as_str()),
                "cut to 2000 characters on a char boundary"
            );
            assert_eq!(event.next_attempt_at, Some(retry_at + Duration::minutes(1)));
        }
    );
    case!(
        make,
        "inbox: a settled event stays settled; a late failure report does not reopen it",
        |s| {
            let now = fixtures::now();
            let id = new_id(
                s.record(&fixtures::inbox_event(1, now), now)
                    .await
                    .expect("record"),
            );
            s.complete(id, InboxStatus::Processed, now)
                .await
                .expect("processed");
            s.complete(id, InboxStatus::Ignored, now)
                .await
                .expect("completing again is fine");
            s.fail(id, "a racing attempt failed", now)
                .await
                .expect("a late failure is fine");
            assert!(
                s.claim_due(now + Duration::days(1), now + Duration::days(2), 10)
                    .await
                    .expect("claim")
                    .is_empty(),
                "still processed, never claimed"
            );
        }
    );
    case!(
        make,
        "inbox: completing many settles the open ones only, skips unknown ids, refuses other statuses",
        |s| {
            let now = fixtures::now();
            let mut ids = Vec::new();
            for n in 1..=4 {
                ids.push(new_id(
                    s.record(&fixtures::inbox_event(n, now), now)
                        .await
                        .expect("record"),
                ));
            }
            let left_open = new_id(
                s.record(&fixtures::inbox_event(5, now), now)
                    .await
                    .expect("record"),
            );
            s.complete(ids[0], InboxStatus::Ignored, now)
                .await
                .expect("settled first");
            s.fail(ids[1], "failed once", now).await.expect("failed");
            let mut batch = ids.clone();
            batch.push(InboxEventId::new());
            assert!(matches!(
                s.complete_many(&batch, InboxStatus::Failed, now).await,
                Err(StoreError::Invalid { .. })
            ));
            assert_eq!(
                s.complete_many(&batch, InboxStatus::Processed, now)
                    .await
                    .expect("complete many"),
                3,
                "the failed and the two pending ones; the ignored one and the unknown id are not counted"
            );
            assert_eq!(
                s.complete_many(&[], InboxStatus::Processed, now)
                    .await
                    .expect("nothing to do"),
                0
            );
            let due: Vec<_> = s
                .claim_due(now + Duration::days(1), now + Duration::days(2), 10)
                .await
                .expect("claim")
                .into_iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(
                due,
                vec![left_open],
                "only the event outside the batch is still open"
            );
        }
    );
    case!(
        make,
        "inbox: the backlog counts a provider's events still to be processed",
        |s| {
            let now = fixtures::now();
            let mut ids = Vec::new();
            for n in 1..=4 {
                ids.push(new_id(
                    s.record(&fixtures::inbox_event(n, now), now)
                        .await
                        .expect("record"),
                ));
            }
            let mut other = fixtures::inbox_event(9, now);
            other.provider = "iace".into();
            s.record(&other, now).await.expect("another provider");
            let provider = fixtures::inbox_event(1, now).provider;
            assert_eq!(s.backlog(&provider).await.expect("backlog"), 4);
            s.complete(ids[0], InboxStatus::Processed, now)
                .await
                .expect("processed");
            s.complete(ids[1], InboxStatus::Ignored, now)
                .await
                .expect("ignored");
            s.fail(ids[2], "once", now).await.expect("failed once");
            assert_eq!(
                s.backlog(&provider).await.expect("backlog"),
                2,
                "the failed one is retried, so it still counts"
            );
            assert_eq!(s.backlog("iace").await.expect("backlog"), 1);
            assert_eq!(s.backlog("nobody").await.expect("backlog"), 0);
        }
    );
    case!(
        make,
        "inbox: an event that keeps failing is given up after the attempt cap",
        |s| {
            let now = fixtures::now();
            let id = new_id(
                s.record(&fixtures::inbox_event(1, now), now)
                    .await
                    .expect("record"),
            );
            for attempt in 1..iace_domain::ports::MAX_INBOX_ATTEMPTS {
                s.fail(id, "still broken", now).await.expect("fail");
                assert_eq!(
                    s.claim_due(now, now, 10).await.expect("claim").len(),
                    1,
                    "claimed after {attempt} failures"
                );
            }
            s.fail(id, "still broken", now).await.expect("last failure");
            assert!(
                s.claim_due(now + Duration::days(1), now + Duration::days(2), 10)
                    .await
                    .expect("claim")
                    .is_empty(),
                "a dead letter is not claimed"
            );
        }
    );
    case!(make, "inbox: unknown ids are not found", |s| {
        let now = fixtures::now();
        assert!(matches!(
            s.complete(InboxEventId::new(), InboxStatus::Processed, now)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.fail(InboxEventId::new(), "boom", now).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "inbox: concurrent claimers never get the same event",
        |s| {
            let now = fixtures::now();
            let mut recorded = HashSet::new();
            for n in 0..40 {
                let event = fixtures::inbox_event(n, now - Duration::milliseconds(i64::from(n)));
                recorded.insert(new_id(s.record(&event, now).await.expect("record")));
            }
            let lease = now + Duration::minutes(5);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..6 {
                let store = s.clone();
                tasks.spawn(async move {
                    let mut mine = Vec::new();
                    for _ in 0..4 {
                        let batch = store.claim_due(now, lease, 3).await.expect("claim");
                        mine.extend(batch.into_iter().map(|e| e.id));
                        tokio::task::yield_now().await;
                    }
                    mine
                });
            }
            let mut seen = HashSet::new();
            while let Some(result) = tasks.join_next().await {
                for id in result.expect("task") {
                    assert!(seen.insert(id), "event {id} was claimed twice");
                }
            }
            // Whatever the claimers left is still there for the next one.
            let rest = s.claim_due(now, lease, 100).await.expect("claim rest");
            for e in rest {
                assert!(seen.insert(e.id), "event {} was claimed twice", e.id);
            }
            assert_eq!(seen, recorded, "every event claimed exactly once");
        }
    );
}
