//! `MemoryStore` contract (with the ranking of `MemoryStoreExt` on top):
//! idempotent adds, vector search per customer, recency, decay, the context
//! budget, erasure and tenancy.

use std::future::Future;

use chrono::Duration;
use iace_domain::memory::MemoryConfig;
use iace_domain::ports::store::MemoryStoreExt;
use iace_domain::ports::{CustomerRepository, MemoryStore, OrgRepository, StoreError};
use iace_domain::{CustomerId, CustomerMemory, Importance, MemoryId, OrgId};

use super::case;
use crate::{Harness, fixtures};

/// The embedding dimension of the stores under test
/// (`iace_migrations::DEFAULT_EMBEDDING_DIMENSION`).
pub const DIMENSION: usize = iace_migrations::DEFAULT_EMBEDDING_DIMENSION as usize;

/// A new org with one customer (phone `n`).
async fn customer<S: OrgRepository + CustomerRepository>(s: &S, n: u32) -> (OrgId, CustomerId) {
    let org = fixtures::org();
    OrgRepository::create(s, &org).await.expect("org");
    let c = fixtures::customer(org.id, n);
    CustomerRepository::create(s, &c).await.expect("customer");
    (org.id, c.id)
}

async fn added<S: MemoryStore>(s: &S, memory: CustomerMemory) -> CustomerMemory {
    s.add(&memory).await.expect("add");
    memory
}

fn ids(memories: &[CustomerMemory]) -> Vec<MemoryId> {
    memories.iter().map(|m| m.id).collect()
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: MemoryStore + CustomerRepository + OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "memories: add is idempotent and round-trips", |s| {
        let (org, c) = customer(s, 1).await;
        let m = added(s, fixtures::memory(org, c, DIMENSION, 1)).await;
        s.add(&m).await.expect("the same memory again");
        let mut bare = fixtures::memory(org, c, DIMENSION, 2);
        bare.embedding = None;
        bare.facts = Vec::new();
        bare.importance = Importance::new(0.9).expect("importance");
        bare.created_at = m.created_at - Duration::minutes(1);
        let bare = added(s, bare).await;
        assert_eq!(
            s.recent(org, c, 10).await.expect("recent"),
            vec![m, bare],
            "once each, whole"
        );
    });
    case!(
        make,
        "memories: the customer must be in the org; dimensions are checked",
        |s| {
            let (a, _) = customer(s, 1).await;
            let (b, other) = customer(s, 2).await;
            let result = s.add(&fixtures::memory(a, other, DIMENSION, 1)).await;
            assert!(
                matches!(result, Err(StoreError::NotFound { .. })),
                "{result:?}"
            );
            let result = s
                .add(&fixtures::memory(a, CustomerId::new(), DIMENSION, 1))
                .await;
            assert!(
                matches!(result, Err(StoreError::NotFound { .. })),
                "{result:?}"
            );
            assert!(s.recent(b, other, 10).await.expect("recent").is_empty());
            let mut wrong = fixtures::memory(b, other, DIMENSION, 1);
            wrong.embedding = Some(fixtures::embedding(DIMENSION / 2, 1));
            let result = s.add(&wrong).await;
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{result:?}"
            );
            assert!(s.recent(b, other, 10).await.expect("recent").is_empty());
            let result = s
                .find_similar(b, other, &fixtures::embedding(3, 1), 5)
                .await;
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{result:?}"
            );
        }
    );
    case!(
        make,
        "memories: find_similar returns the customer's k most similar, most similar first",
        |s| {
            let (org, c) = customer(s, 1).await;
            let other = fixtures::customer(org, 2);
            CustomerRepository::create(s, &other).await.expect("other");
            let base = fixtures::embedding(DIMENSION, 1);
            let amounts = [0.6_f32, 0.05, 2.0, 0.3, 1.0];
            let mut made = Vec::new();
            for (n, amount) in amounts.iter().enumerate() {
                let mut m = fixtures::memory(org, c, DIMENSION, 10 + n as u64);
                m.embedding = Some(fixtures::near(&base, 10 + n as u64, *amount));
                made.push(added(s, m).await);
            }
            let mut bare = fixtures::memory(org, c, DIMENSION, 20);
            bare.embedding = None;
            added(s, bare).await;
            let mut theirs = fixtures::memory(org, other.id, DIMENSION, 21);
            theirs.embedding = Some(base.clone());
            added(s, theirs).await;
            let by_amount = {
                let mut order: Vec<(f32, MemoryId)> =
                    amounts.iter().copied().zip(ids(&made)).collect();
                order.sort_by(|a, b| a.0.total_cmp(&b.0));
                order.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
            };

            let top2 = s.find_similar(org, c, &base, 2).await.expect("search");
            assert_eq!(
                top2.iter().map(|m| m.item.id).collect::<Vec<_>>(),
                by_amount[..2].to_vec()
            );
            for found in &top2 {
                let stored = made.iter().find(|m| m.id == found.item.id).expect("known");
                assert_eq!(&found.item, stored, "the whole memory comes back");
                let exact = base
                    .cosine_similarity(stored.embedding.as_ref().expect("embedding"))
                    .expect("same dimension");
                assert!((found.similarity - exact).abs() < 1e-4);
            }
            let all = s.find_similar(org, c, &base, 50).await.expect("search");
            assert_eq!(
                all.iter().map(|m| m.item.id).collect::<Vec<_>>(),
                by_amount,
                "this customer's embedded memories only"
            );
            assert!(all.windows(2).all(|w| w[0].similarity >= w[1].similarity));
            assert!(
                s.find_similar(org, c, &base, 0)
                    .await
                    .expect("k = 0")
                    .is_empty()
            );
        }
    );
    case!(make, "memories: recent is newest first, limited", |s| {
        let (org, c) = customer(s, 1).await;
        let now = fixtures::now();
        let mut made = Vec::new();
        for n in 0..4_u32 {
            let mut m = fixtures::memory(org, c, DIMENSION, u64::from(n));
            m.created_at = now - Duration::hours(i64::from(n));
            made.push(m);
        }
        // Added oldest first; read back newest first.
        for m in made.iter().rev() {
            s.add(m).await.expect("add");
        }
        assert_eq!(
            ids(&s.recent(org, c, 2).await.expect("recent")),
            ids(&made[..2])
        );
        assert_eq!(
            ids(&s.recent(org, c, 10).await.expect("recent")),
            ids(&made)
        );
        assert!(s.recent(org, c, 0).await.expect("recent").is_empty());
    });
    case!(
        make,
        "memories: find_relevant ranks an old similar memory below a recent one",
        |s| {
            let (org, c) = customer(s, 1).await;
            let now = fixtures::now();
            let config = MemoryConfig::default(); // half-life 30 days
            let base = fixtures::embedding(DIMENSION, 1);
            // The old one is the more similar, but three half-lives old.
            let mut old = fixtures::memory(org, c, DIMENSION, 2);
            old.embedding = Some(fixtures::near(&base, 2, 0.05));
            old.created_at = now - Duration::days(90);
            let old = added(s, old).await;
            let mut recent = fixtures::memory(org, c, DIMENSION, 3);
            recent.embedding = Some(fixtures::near(&base, 3, 0.3));
            recent.created_at = now - Duration::hours(1);
            let recent = added(s, recent).await;
            let mut off_topic = fixtures::memory(org, c, DIMENSION, 4);
            off_topic.embedding = Some(fixtures::embedding(DIMENSION, 4));
            let off_topic = added(s, off_topic).await;

            let similar = s.find_similar(org, c, &base, 3).await.expect("search");
            assert_eq!(similar[0].item.id, old.id, "by similarity alone");
            let ranked = s
                .find_relevant(org, c, Some(&base), now, &config)
                .await
                .expect("relevant");
            assert_eq!(
                ranked.iter().map(|r| r.memory.id).collect::<Vec<_>>(),
                vec![recent.id, old.id],
                "decay puts the recent memory first; the off-topic one falls below min_relevance"
            );
            assert!(
                ranked[1].decay < 0.13,
                "three half-lives: {}",
                ranked[1].decay
            );
            let no_query = s
                .find_relevant(org, c, None, now, &config)
                .await
                .expect("relevant");
            assert_eq!(
                no_query.iter().map(|r| r.memory.id).collect::<Vec<_>>(),
                vec![off_topic.id, recent.id, old.id],
                "without a query, recency alone (the off-topic memory is the newest)"
            );
        }
    );
    case!(
        make,
        "memories: context stays within max_context_chars",
        |s| {
            let (org, c) = customer(s, 1).await;
            let now = fixtures::now();
            for n in 0..8_u32 {
                let mut m = fixtures::memory(org, c, DIMENSION, u64::from(n));
                m.summary = format!("Call {n}: discussed the invoice dispute at some length.");
                m.facts = vec![format!("fact {n}")];
                m.created_at = now - Duration::hours(i64::from(n));
                s.add(&m).await.expect("add");
            }
            let roomy = MemoryConfig {
                max_context_chars: 10_000,
                ..MemoryConfig::default()
            };
            let full = s.context(org, c, None, now, &roomy).await.expect("context");
            assert_eq!(full.used.len(), 8);
            let tight = MemoryConfig {
                max_context_chars: 200,
                ..MemoryConfig::default()
            };
            let cut = s.context(org, c, None, now, &tight).await.expect("context");
            assert!(cut.text.chars().count() <= 200, "{}", cut.text);
            assert!(!cut.used.is_empty() && cut.used.len() < 8);
            assert_eq!(
                cut.used[..],
                full.used[..cut.used.len()],
                "the most relevant first"
            );
        }
    );
    case!(make, "memories: delete one, forget a customer", |s| {
        let (org, c) = customer(s, 1).await;
        let other = fixtures::customer(org, 2);
        CustomerRepository::create(s, &other).await.expect("other");
        let first = added(s, fixtures::memory(org, c, DIMENSION, 1)).await;
        for n in 2..5 {
            added(s, fixtures::memory(org, c, DIMENSION, n)).await;
        }
        let kept = added(s, fixtures::memory(org, other.id, DIMENSION, 9)).await;
        MemoryStore::delete(s, org, first.id).await.expect("delete");
        assert!(matches!(
            MemoryStore::delete(s, org, first.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.recent(org, c, 10).await.expect("recent").len(), 3);
        assert_eq!(s.forget_customer(org, c).await.expect("forget"), 3);
        assert!(s.recent(org, c, 10).await.expect("recent").is_empty());
        assert_eq!(s.forget_customer(org, c).await.expect("again"), 0);
        assert_eq!(
            s.recent(org, other.id, 10).await.expect("recent"),
            vec![kept],
            "another customer's memories stay"
        );
    });
    case!(
        make,
        "memories: another org cannot find, read, delete or forget",
        |s| {
            let (a, c) = customer(s, 1).await;
            let (b, theirs) = customer(s, 2).await;
            let m = added(s, fixtures::memory(a, c, DIMENSION, 1)).await;
            let query = m.embedding.clone().expect("embedding");
            assert!(
                s.find_similar(b, c, &query, 10)
                    .await
                    .expect("search")
                    .is_empty()
            );
            assert!(s.recent(b, c, 10).await.expect("recent").is_empty());
            assert!(
                s.find_relevant(
                    b,
                    c,
                    Some(&query),
                    fixtures::now(),
                    &MemoryConfig::default()
                )
                .await
                .expect("relevant")
                .is_empty()
            );
            assert!(matches!(
                MemoryStore::delete(s, b, m.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(s.forget_customer(b, c).await.expect("forget"), 0);
            // The same id cannot be slipped into another org either.
            let mut hijack = m.clone();
            hijack.org_id = b;
            hijack.customer_id = theirs;
            let result = s.add(&hijack).await;
            assert!(
                matches!(result, Err(StoreError::AlreadyExists { .. })),
                "{result:?}"
            );
            assert_eq!(s.recent(a, c, 10).await.expect("intact"), vec![m]);
            assert!(s.recent(b, theirs, 10).await.expect("recent").is_empty());
        }
    );
}
