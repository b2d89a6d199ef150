//! `CallRepository` contract: lifecycle persistence, race-free transitions,
//! history, filters, tenancy.

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use iace_domain::call::{
    Call, CallDirection, CallEvent, CallEventRecord, CallStatus, EventSource, HangupCause,
};
use iace_domain::ports::{
    CallFilter, CallLocator, CallRepository, CustomerRepository, OrgRepository, PageRequest,
    StoreError,
};
use iace_domain::{CallId, OrgId};
use tokio::sync::Barrier;

use super::case;
use crate::{Harness, fixtures};

/// Applies `event` to `call` in memory and builds its history record.
fn step(call: &mut Call, event: CallEvent, source: EventSource) -> (i64, CallEventRecord) {
    let (from, expected) = (call.status, call.version);
    let at = fixtures::now();
    let result = call.apply(event, at);
    let record = CallEventRecord::new(call.org_id, call.id, from, event, &result, source, at);
    (expected, record)
}

async fn new_org<S: OrgRepository>(s: &S) -> OrgId {
    let org = fixtures::org();
    s.create(&org).await.expect("org");
    org.id
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: CallRepository + OrgRepository + CustomerRepository + Clone + Send + Sync + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "calls: create, get, locate by id and provider id",
        |s| {
            let org = new_org(s).await;
            let mut c = fixtures::call(org);
            c.provider_call_id = Some("v3:abc".into());
            CallRepository::create(s, &c).await.expect("create");
            assert_eq!(CallRepository::get(s, org, c.id).await.expect("get"), c);
            assert_eq!(
                s.locate(&CallLocator::Id(c.id)).await.expect("locate"),
                Some(c.clone())
            );
            let by_provider = s
                .locate(&CallLocator::ProviderCallId("v3:abc".into()))
                .await;
            assert_eq!(by_provider.expect("locate"), Some(c.clone()));
            assert_eq!(
                s.locate(&CallLocator::Id(CallId::new()))
                    .await
                    .expect("locate"),
                None
            );
            let mut dup = fixtures::call(org);
            dup.provider_call_id = Some("v3:abc".into());
            let err = CallRepository::create(s, &dup).await;
            assert!(
                matches!(
                    err,
                    Err(StoreError::AlreadyExists {
                        field: "provider_call_id",
                        ..
                    })
                ),
                "{err:?}"
            );
        }
    );

    case!(
        make,
        "calls: concurrent creates with one idempotency key make one call",
        |s| {
            let (org, other) = (new_org(s).await, new_org(s).await);
            let barrier = Arc::new(Barrier::new(2));
            let mut tasks = Vec::new();
            for _ in 0..2 {
                let (store, barrier) = (s.clone(), barrier.clone());
                tasks.push(tokio::spawn(async move {
                    let c = fixtures::call(org);
                    barrier.wait().await;
                    let result = store.create_idempotent(&c, "order-42").await;
                    (c, result)
                }));
            }
            let mut outcomes = Vec::new();
            for task in tasks {
                let (attempted, result) = task.await.expect("task");
                let (call, created) = result.expect("create idempotent");
                outcomes.push((attempted, call, created));
            }
            assert_eq!(
                outcomes.iter().filter(|(_, _, created)| *created).count(),
                1,
                "exactly one create inserts"
            );
            let (winner, _, _) = outcomes
                .iter()
                .find(|(_, _, created)| *created)
                .expect("a winner");
            for (_, call, _) in &outcomes {
                assert_eq!(call, winner, "both get the winner's call back");
            }
            let listed =
                CallRepository::list(s, org, &CallFilter::default(), PageRequest::default())
                    .await
                    .expect("list");
            assert_eq!(listed.items, vec![winner.clone()]);

            // A replay changes nothing, the key is per organisation, and calls
            // without a key never collide.
            let (again, created) = s
                .create_idempotent(&fixtures::call(org), "order-42")
                .await
                .expect("replay");
            assert_eq!((again.id, created), (winner.id, false));
            let (elsewhere, created) = s
                .create_idempotent(&fixtures::call(other), "order-42")
                .await
                .expect("other org");
            assert!(created && elsewhere.org_id == other);
            CallRepository::create(s, &fixtures::call(org))
                .await
                .expect("no key");
            CallRepository::create(s, &fixtures::call(org))
                .await
                .expect("no key");
            let mut updated = CallRepository::get(s, org, winner.id).await.expect("get");
            updated.provider_call_id = Some("sim:idem".into());
            updated.version += 1;
            CallRepository::update(s, &updated, winner.version)
                .await
                .expect("update keeps the key");
            let (replayed, created) = s
                .create_idempotent(&fixtures::call(org), "order-42")
                .await
                .expect("replay after update");
            assert!(!created);
            assert_eq!(replayed, updated);
        }
    );

    case!(
        make,
        "calls: a transition is saved with its history entry",
        |s| {
            let org = new_org(s).await;
            let mut c = fixtures::call(org);
            CallRepository::create(s, &c).await.expect("create");
            let webhook = EventSource::Webhook {
                provider_event_id: "evt-1".into(),
            };
            let (expected, record) = step(&mut c, CallEvent::Ringing, webhook);
            s.save_transition(&c, expected, &record)
                .await
                .expect("save");
            let (expected, record) = step(&mut c, CallEvent::Answered, EventSource::Runtime);
            s.save_transition(&c, expected, &record)
                .await
                .expect("save");
            let stored = CallRepository::get(s, org, c.id).await.expect("get");
            assert_eq!(stored, c);
            assert_eq!(stored.status, CallStatus::InProgress);
            assert_eq!(stored.version, 2);
            assert!(stored.answered_at.is_some());
            let history = s.events(org, c.id).await.expect("events");
            assert_eq!(history.len(), 2);
            assert_eq!(history[0].event, CallEvent::Ringing);
            assert_eq!(history[1], record);
        }
    );

    case!(
        make,
        "calls: a stale version conflicts and writes nothing",
        |s| {
            let org = new_org(s).await;
            let c = fixtures::call(org);
            CallRepository::create(s, &c).await.expect("create");
            let (mut first, mut second) = (c.clone(), c.clone());
            let (v1, r1) = step(&mut first, CallEvent::Ringing, EventSource::Runtime);
            let (v2, r2) = step(&mut second, CallEvent::Canceled, EventSource::Api);
            s.save_transition(&first, v1, &r1)
                .await
                .expect("first writer wins");
            let lost = s.save_transition(&second, v2, &r2).await;
            assert!(
                matches!(lost, Err(StoreError::Conflict { expected: 0, .. })),
                "{lost:?}"
            );
            let stored = CallRepository::get(s, org, c.id).await.expect("get");
            assert_eq!(stored.status, CallStatus::Ringing);
            assert_eq!(s.events(org, c.id).await.expect("events").len(), 1);
        }
    );

    case!(
        make,
        "calls: a version that was not bumped by one is invalid",
        |s| {
            let org = new_org(s).await;
            let mut c = fixtures::call(org);
            CallRepository::create(s, &c).await.expect("create");
            c.recording_url = Some("https://rec.example.com/1.mp3".into());
            assert!(matches!(
                CallRepository::update(s, &c, 0).await,
                Err(StoreError::Invalid { .. })
            ));
            c.version = 1;
            CallRepository::update(s, &c, 0).await.expect("bumped");
            assert_eq!(CallRepository::get(s, org, c.id).await.expect("get"), c);
        }
    );

    case!(make, "calls: identity fields are never rewritten", |s| {
        let org = new_org(s).await;
        let original = fixtures::call(org);
        CallRepository::create(s, &original).await.expect("create");
        let mut c = original.clone();
        c.direction = CallDirection::Inbound;
        c.from = fixtures::phone(77);
        c.created_at -= Duration::days(3);
        c.version = 1;
        CallRepository::update(s, &c, 0).await.expect("update");
        let stored = CallRepository::get(s, org, c.id).await.expect("get");
        assert_eq!(stored.direction, original.direction);
        assert_eq!(stored.from, original.from);
        assert_eq!(stored.created_at, original.created_at);
        assert_eq!(stored.version, 1);
    });

    case!(
        make,
        "calls: ignored events are recorded without a version",
        |s| {
            let org = new_org(s).await;
            let mut c = fixtures::call(org);
            CallRepository::create(s, &c).await.expect("create");
            let (v, r) = step(
                &mut c,
                CallEvent::HungUp {
                    cause: HangupCause::NoAnswer,
                },
                EventSource::Runtime,
            );
            s.save_transition(&c, v, &r).await.expect("save");
            let late = EventSource::Webhook {
                provider_event_id: "evt-late".into(),
            };
            let (_, rejected) = step(&mut c, CallEvent::Answered, late);
            assert_eq!(c.version, 1, "a rejected event changes nothing");
            s.record_event(&rejected).await.expect("record");
            let history = s.events(org, c.id).await.expect("events");
            assert_eq!(history.len(), 2);
            assert_eq!(history[1].result.as_str(), "call_ended");
            assert_eq!(
                CallRepository::get(s, org, c.id).await.expect("get").status,
                CallStatus::NoAnswer
            );
        }
    );

    case!(
        make,
        "calls: 50 racing writers, exactly one wins each step, history without gaps",
        |s| {
            let org = new_org(s).await;
            let c = fixtures::call(org);
            CallRepository::create(s, &c).await.expect("create");
            let steps = [
                CallEvent::Ringing,
                CallEvent::Answered,
                CallEvent::EscalationStarted,
                CallEvent::TransferFailed,
                CallEvent::EscalationStarted,
                CallEvent::Transferred,
            ];
            for event in steps {
                let barrier = Arc::new(Barrier::new(50));
                let mut tasks = Vec::new();
                for _ in 0..50 {
                    let (store, barrier) = (s.clone(), barrier.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut call = CallRepository::get(&store, org, c.id).await.expect("read");
                        let (expected, record) = step(&mut call, event, EventSource::Runtime);
                        barrier.wait().await;
                        store.save_transition(&call, expected, &record).await
                    }));
                }
                let mut wins = 0;
                for task in tasks {
                    match task.await.expect("task") {
                        Ok(()) => wins += 1,
                        Err(StoreError::Conflict { .. }) => {}
                        Err(other) => panic!("unexpected error: {other:?}"),
                    }
                }
                assert_eq!(wins, 1, "exactly one writer wins {event}");
            }
            let stored = CallRepository::get(s, org, c.id).await.expect("get");
            assert_eq!(stored.status, CallStatus::Transferred);
            let versions: Vec<_> = s
                .events(org, c.id)
                .await
                .expect("events")
                .iter()
                .map(|r| (r.event, r.to))
                .collect();
            assert_eq!(
                versions.len(),
                steps.len(),
                "one history entry per step: {versions:?}"
            );
            assert_eq!(stored.version, steps.len() as i64);
        }
    );

    case!(
        make,
        "calls: 50 writers re-reading on conflict apply an event once",
        |s| {
            let org = new_org(s).await;
            let c = fixtures::call(org);
            CallRepository::create(s, &c).await.expect("create");
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let store = s.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        let mut call = CallRepository::get(&store, org, c.id).await.expect("read");
                        let (expected, record) =
                            step(&mut call, CallEvent::Answered, EventSource::Runtime);
                        if call.version == expected {
                            store.record_event(&record).await.expect("record");
                            return false;
                        }
                        match store.save_transition(&call, expected, &record).await {
                            Ok(()) => return true,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(other) => panic!("unexpected error: {other:?}"),
                        }
                    }
                }));
            }
            let mut applied = 0;
            for task in tasks {
                if task.await.expect("task") {
                    applied += 1;
                }
            }
            assert_eq!(applied, 1);
            let history = s.events(org, c.id).await.expect("events");
            assert_eq!(history.len(), 50);
            assert_eq!(
                history
                    .iter()
                    .filter(|r| r.result.as_str() == "applied")
                    .count(),
                1
            );
            assert_eq!(
                history
                    .iter()
                    .filter(|r| r.result.as_str() == "duplicate")
                    .count(),
                49
            );
            assert_eq!(
                CallRepository::get(s, org, c.id)
                    .await
                    .expect("get")
                    .version,
                1
            );
        }
    );

    case!(make, "calls: list filters, newest first, live count", |s| {
        let org = new_org(s).await;
        let customer = fixtures::customer(org, 5);
        CustomerRepository::create(s, &customer)
            .await
            .expect("customer");
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut c = fixtures::call(org);
            if i % 2 == 0 {
                c.customer_id = Some(customer.id);
            }
            CallRepository::create(s, &c).await.expect("create");
            if i == 4 {
                let (v, r) = step(
                    &mut c,
                    CallEvent::HungUp {
                        cause: HangupCause::UserBusy,
                    },
                    EventSource::Runtime,
                );
                s.save_transition(&c, v, &r).await.expect("end");
            }
            ids.push(c.id);
        }
        let all = CallRepository::list(
            s,
            org,
            &CallFilter::default(),
            PageRequest::first(10).newest_first(),
        )
        .await
        .expect("list");
        let newest: Vec<_> = ids.iter().rev().copied().collect();
        assert_eq!(all.items.iter().map(|c| c.id).collect::<Vec<_>>(), newest);
        let of_customer = CallFilter {
            customer_id: Some(customer.id),
            ..CallFilter::default()
        };
        assert_eq!(
            CallRepository::list(s, org, &of_customer, PageRequest::default())
                .await
                .expect("list")
                .items
                .len(),
            3
        );
        let busy = CallFilter {
            status: Some(CallStatus::Busy),
            ..CallFilter::default()
        };
        let busy_calls = CallRepository::list(s, org, &busy, PageRequest::default())
            .await
            .expect("list");
        assert_eq!(
            busy_calls.items.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![ids[4]]
        );
        let inbound = CallFilter {
            direction: Some(CallDirection::Inbound),
            ..CallFilter::default()
        };
        assert!(
            CallRepository::list(s, org, &inbound, PageRequest::default())
                .await
                .expect("list")
                .items
                .is_empty()
        );
        let future = CallFilter {
            created_after: Some(fixtures::now() + Duration::hours(1)),
            ..CallFilter::default()
        };
        assert!(
            CallRepository::list(s, org, &future, PageRequest::default())
                .await
                .expect("list")
                .items
                .is_empty()
        );
        let past = CallFilter {
            created_before: Some(fixtures::now() + Duration::hours(1)),
            ..CallFilter::default()
        };
        assert_eq!(
            CallRepository::list(s, org, &past, PageRequest::default())
                .await
                .expect("list")
                .items
                .len(),
            5
        );
        assert_eq!(s.count_live(org).await.expect("count"), 4);
    });

    case!(
        make,
        "calls: another org cannot read, list, write or see history",
        |s| {
            let (a, b) = (new_org(s).await, new_org(s).await);
            let mut c = fixtures::call(a);
            CallRepository::create(s, &c).await.expect("create");
            assert!(matches!(
                CallRepository::get(s, b, c.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(
                CallRepository::list(s, b, &CallFilter::default(), PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            assert_eq!(s.count_live(b).await.expect("count"), 0);
            assert!(matches!(
                s.events(b, c.id).await,
                Err(StoreError::NotFound { .. })
            ));
            let mut hijack = c.clone();
            hijack.org_id = b;
            let (v, r) = step(&mut hijack, CallEvent::Canceled, EventSource::Api);
            assert!(matches!(
                s.save_transition(&hijack, v, &r).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.record_event(&r).await,
                Err(StoreError::NotFound { .. })
            ));
            let (v, r) = step(&mut c, CallEvent::Ringing, EventSource::Runtime);
            s.save_transition(&c, v, &r).await.expect("owner still can");
        }
    );
}
