//! `TranscriptRepository` contract.

use std::future::Future;

use iace_domain::ports::{CallRepository, OrgRepository, StoreError, TranscriptRepository};
use iace_domain::{CallId, Sentiment, Speaker, TranscriptEntry, TranscriptEntryId};

use super::case;
use crate::{Harness, fixtures};

fn entry(call: CallId, sequence: u32, speaker: Speaker, text: &str) -> TranscriptEntry {
    TranscriptEntry {
        id: TranscriptEntryId::new(),
        call_id: call,
        sequence,
        speaker,
        text: text.into(),
        started_ms: u64::from(sequence) * 1_000,
        ended_ms: u64::from(sequence) * 1_000 + 800,
        sentiment: (speaker == Speaker::Caller).then(|| Sentiment::new(-0.4).expect("valid")),
        interrupted: speaker == Speaker::Bot && sequence == 1,
    }
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: TranscriptRepository + CallRepository + OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "transcripts: append in any order, read in sequence, idempotent",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let call = fixtures::call(org.id);
            CallRepository::create(s, &call).await.expect("call");
            let entries = vec![
                entry(call.id, 2, Speaker::Caller, "Is it fixed?"),
                entry(call.id, 0, Speaker::Bot, "Hi, this is Sam."),
                entry(call.id, 1, Speaker::Bot, "How can I"),
            ];
            s.append(org.id, &entries).await.expect("append");
            s.append(org.id, &entries[..1])
                .await
                .expect("retry is harmless");
            let read = s.for_call(org.id, call.id).await.expect("read");
            assert_eq!(
                read.iter().map(|e| e.sequence).collect::<Vec<_>>(),
                vec![0, 1, 2]
            );
            assert_eq!(read[2], entries[0]);
            assert!(read[1].interrupted);
            let clash = entry(call.id, 1, Speaker::Caller, "another line 1");
            assert!(matches!(
                s.append(org.id, &[clash]).await,
                Err(StoreError::AlreadyExists { .. })
            ));
        }
    );
    case!(
        make,
        "transcripts: another org can neither append nor read",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            let call = fixtures::call(a.id);
            CallRepository::create(s, &call).await.expect("call");
            s.append(a.id, &[entry(call.id, 0, Speaker::Bot, "Hello")])
                .await
                .expect("append");
            assert!(matches!(
                s.append(b.id, &[entry(call.id, 1, Speaker::Bot, "x")])
                    .await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.for_call(b.id, call.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(s.for_call(a.id, call.id).await.expect("read").len(), 1);
            assert!(matches!(
                s.set_sentiment(b.id, call.id, 0, Sentiment::NEUTRAL).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(
        make,
        "transcripts: a turn's sentiment is set after it was appended",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let call = fixtures::call(org.id);
            CallRepository::create(s, &call).await.expect("call");
            let mut caller = entry(call.id, 1, Speaker::Caller, "This is not working");
            caller.sentiment = None;
            s.append(org.id, &[entry(call.id, 0, Speaker::Bot, "Hello"), caller])
                .await
                .expect("append");
            let score = Sentiment::new(-0.7).expect("valid");
            assert!(
                s.set_sentiment(org.id, call.id, 1, score)
                    .await
                    .expect("set")
            );
            assert!(
                !s.set_sentiment(org.id, call.id, 9, score)
                    .await
                    .expect("no such entry"),
                "no entry at that sequence"
            );
            let read = s.for_call(org.id, call.id).await.expect("read");
            assert_eq!(read[1].sentiment, Some(score));
            assert_eq!(read[0].sentiment, None, "only that entry");
        }
    );
}
