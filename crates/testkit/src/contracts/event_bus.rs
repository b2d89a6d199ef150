//! `EventBus` contract.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use iace_domain::call::CallStatus;
use iace_domain::ports::{BusEvent, BusEventKind, EventBus, Topic};
use iace_domain::{CallId, OrgId};

use super::case;
use crate::{Harness, fixtures};

fn event(org: OrgId, call: CallId) -> BusEvent {
    BusEvent {
        org_id: org,
        call_id: call,
        kind: BusEventKind::StatusChanged {
            from: CallStatus::Ringing,
            to: CallStatus::InProgress,
        },
        at: fixtures::now(),
    }
}

const WAIT: Duration = Duration::from_secs(2);

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: EventBus,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "event bus: a call's subscriber gets its events, in order, and only them",
        |s| {
            let (org, call, other) = (OrgId::new(), CallId::new(), CallId::new());
            let mut stream = s.subscribe(Topic::Call(call)).await.expect("subscribe");
            // Give a networked bus time to register the subscription.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let first = event(org, call);
            let mut second = event(org, call);
            second.kind = BusEventKind::Dtmf {
                digits: "12#".into(),
            };
            s.publish(&event(org, other)).await.expect("publish other");
            s.publish(&first).await.expect("publish");
            s.publish(&second).await.expect("publish");
            let got = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("in time");
            assert_eq!(got, Some(first));
            let got = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("in time");
            assert_eq!(got, Some(second));
            let nothing = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
            assert!(nothing.is_err(), "no event of another call");
        }
    );
    case!(
        make,
        "event bus: an organisation's subscribers hear every call of it",
        |s| {
            let (org, stranger) = (OrgId::new(), OrgId::new());
            let mut one = s.subscribe(Topic::Org(org)).await.expect("subscribe");
            let mut two = s.subscribe(Topic::Org(org)).await.expect("subscribe");
            tokio::time::sleep(Duration::from_millis(100)).await;
            s.publish(&event(stranger, CallId::new()))
                .await
                .expect("publish");
            let mine = event(org, CallId::new());
            s.publish(&mine).await.expect("publish");
            for stream in [&mut one, &mut two] {
                let got = tokio::time::timeout(WAIT, stream.next())
                    .await
                    .expect("in time");
                assert_eq!(got, Some(mine.clone()));
            }
        }
    );
    case!(
        make,
        "event bus: publishing with nobody listening is fine",
        |s| {
            s.publish(&event(OrgId::new(), CallId::new()))
                .await
                .expect("publish");
        }
    );
}
