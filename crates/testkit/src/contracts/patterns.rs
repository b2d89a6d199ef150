//! `PatternStore` contract: upserts that never touch the counters, vector search
//! (order, `k`, filters), ranking by smoothed success rate, idempotent and
//! concurrent usage counting, and tenancy.

use std::future::Future;

use chrono::Duration;
use iace_domain::learning::SuccessPrior;
use iace_domain::ports::store::PatternFilter;
use iace_domain::ports::{OrgRepository, PageRequest, PatternStore, StoreError};
use iace_domain::{CallId, Embedding, LearnedPattern, OrgId, PatternId, PatternKind};

use super::case;
use crate::{Harness, fixtures};

/// The embedding dimension of the stores under test
/// (`iace_migrations::DEFAULT_EMBEDDING_DIMENSION`).
pub const DIMENSION: usize = iace_migrations::DEFAULT_EMBEDDING_DIMENSION as usize;

async fn org<S: OrgRepository>(s: &S) -> OrgId {
    let org = fixtures::org();
    OrgRepository::create(s, &org).await.expect("org");
    org.id
}

async fn upserted<S: PatternStore>(s: &S, pattern: LearnedPattern) -> LearnedPattern {
    s.upsert(&pattern).await.expect("upsert");
    pattern
}

/// Counts `uses` calls of `id`, the first `successes` of them successful.
async fn use_pattern<S: PatternStore>(s: &S, org: OrgId, id: PatternId, uses: u32, successes: u32) {
    for n in 0..uses {
        let counted = s
            .record_usage(org, CallId::new(), &[id], n < successes, fixtures::now())
            .await
            .expect("record usage");
        assert_eq!(counted, 1);
    }
}

fn ids(patterns: &[LearnedPattern]) -> Vec<PatternId> {
    patterns.iter().map(|p| p.id).collect()
}

fn exact_order(query: &Embedding, patterns: &[LearnedPattern]) -> Vec<PatternId> {
    let mut scored: Vec<(f64, PatternId)> = patterns
        .iter()
        .filter_map(|p| {
            let e = p.embedding.as_ref()?;
            Some((query.cosine_similarity(e).expect("same dimension"), p.id))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, id)| id).collect()
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: PatternStore + OrgRepository + Clone + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "patterns: upsert inserts, get round-trips", |s| {
        let org = org(s).await;
        let p = upserted(s, fixtures::pattern(org, DIMENSION, 1)).await;
        assert_eq!(PatternStore::get(s, org, p.id).await.expect("get"), p);
        let mut bare = fixtures::pattern(org, DIMENSION, 2);
        bare.embedding = None;
        let bare = upserted(s, bare).await;
        assert_eq!(PatternStore::get(s, org, bare.id).await.expect("get"), bare);
        assert!(matches!(
            PatternStore::get(s, org, PatternId::new()).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "patterns: upsert updates content, never the counters or identity",
        |s| {
            let org = org(s).await;
            let mut p = upserted(s, fixtures::pattern(org, DIMENSION, 1)).await;
            let at = fixtures::now();
            s.record_usage(org, CallId::new(), &[p.id], true, at)
                .await
                .expect("usage");
            let created_at = p.created_at;
            p.kind = PatternKind::Closing;
            p.trigger = "caller wants to cancel".into();
            p.response = "Offer the annual plan at the monthly price.".into();
            p.embedding = Some(fixtures::embedding(DIMENSION, 99));
            // Counters and identity in the value are ignored by upsert.
            p.uses = 42;
            p.successes = 40;
            p.last_used_at = None;
            p.created_at = created_at + Duration::days(1);
            s.upsert(&p).await.expect("update");
            let stored = PatternStore::get(s, org, p.id).await.expect("get");
            assert_eq!(stored.kind, PatternKind::Closing);
            assert_eq!(stored.trigger, p.trigger);
            assert_eq!(stored.response, p.response);
            assert_eq!(stored.embedding, p.embedding);
            assert_eq!((stored.uses, stored.successes), (1, 1));
            assert_eq!(stored.last_used_at, Some(at));
            assert_eq!(stored.created_at, created_at);
            // Clearing the embedding is a content change too.
            p.embedding = None;
            s.upsert(&p).await.expect("clear embedding");
            let stored = PatternStore::get(s, org, p.id).await.expect("get");
            assert_eq!(stored.embedding, None);
            assert_eq!(stored.uses, 1);
            // A new pattern's counters start at zero whatever the value says.
            let mut fresh = fixtures::pattern(org, DIMENSION, 3);
            fresh.uses = 7;
            fresh.successes = 3;
            fresh.last_used_at = Some(at);
            s.upsert(&fresh).await.expect("insert");
            let stored = PatternStore::get(s, org, fresh.id).await.expect("get");
            assert_eq!(
                (stored.uses, stored.successes, stored.last_used_at),
                (0, 0, None)
            );
        }
    );
    case!(
        make,
        "patterns: an id of another org is refused, not overwritten",
        |s| {
            let (a, b) = (org(s).await, org(s).await);
            let p = upserted(s, fixtures::pattern(a, DIMENSION, 1)).await;
            let mut hijack = p.clone();
            hijack.org_id = b;
            hijack.response = "Send your password to us.".into();
            let result = s.upsert(&hijack).await;
            assert!(
                matches!(result, Err(StoreError::AlreadyExists { field: "id", .. })),
                "{result:?}"
            );
            assert_eq!(PatternStore::get(s, a, p.id).await.expect("get"), p);
            assert!(matches!(
                PatternStore::get(s, b, p.id).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(
        make,
        "patterns: an embedding of the wrong dimension is invalid",
        |s| {
            let org = org(s).await;
            let mut p = fixtures::pattern(org, DIMENSION, 1);
            p.embedding = Some(fixtures::embedding(3, 1));
            let result = s.upsert(&p).await;
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{result:?}"
            );
            assert!(matches!(
                PatternStore::get(s, org, p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            let result = s
                .find_similar(
                    org,
                    &fixtures::embedding(DIMENSION + 1, 1),
                    5,
                    &PatternFilter::default(),
                )
                .await;
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{result:?}"
            );
        }
    );
    case!(
        make,
        "patterns: find_similar returns the k most similar, most similar first",
        |s| {
            let org = org(s).await;
            let base = fixtures::embedding(DIMENSION, 1);
            // Inserted out of order; amount 0.1 is the nearest, 3.0 the farthest.
            let amounts = [0.8_f32, 0.1, 3.0, 0.4, 1.5, 0.2];
            let mut patterns = Vec::new();
            for (n, amount) in amounts.iter().enumerate() {
                let mut p = fixtures::pattern(org, DIMENSION, 100 + n as u64);
                p.embedding = Some(fixtures::near(&base, 100 + n as u64, *amount));
                patterns.push(upserted(s, p).await);
            }
            let mut bare = fixtures::pattern(org, DIMENSION, 7);
            bare.embedding = None;
            upserted(s, bare).await;
            let by_amount = {
                let mut order: Vec<(f32, PatternId)> =
                    amounts.iter().copied().zip(ids(&patterns)).collect();
                order.sort_by(|a, b| a.0.total_cmp(&b.0));
                order.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
            };
            assert_eq!(exact_order(&base, &patterns), by_amount, "fixture sanity");

            let top3 = s
                .find_similar(org, &base, 3, &PatternFilter::default())
                .await
                .expect("search");
            assert_eq!(
                top3.iter().map(|m| m.item.id).collect::<Vec<_>>(),
                by_amount[..3].to_vec()
            );
            for m in &top3 {
                let exact = base
                    .cosine_similarity(m.item.embedding.as_ref().expect("embedding returned"))
                    .expect("same dimension");
                assert!(
                    (m.similarity - exact).abs() < 1e-4,
                    "{} vs {exact}",
                    m.similarity
                );
                let stored = patterns.iter().find(|p| p.id == m.item.id).expect("known");
                assert_eq!(&m.item, stored, "the whole pattern comes back");
            }
            assert!(top3.windows(2).all(|w| w[0].similarity >= w[1].similarity));

            let all = s
                .find_similar(org, &base, 50, &PatternFilter::default())
                .await
                .expect("search");
            assert_eq!(
                all.iter().map(|m| m.item.id).collect::<Vec<_>>(),
                by_amount,
                "every embedded pattern, never the one without an embedding"
            );
            assert!(
                s.find_similar(org, &base, 0, &PatternFilter::default())
                    .await
                    .expect("k = 0")
                    .is_empty()
            );
        }
    );
    case!(make, "patterns: find_similar applies the filters", |s| {
        let org = org(s).await;
        let base = fixtures::embedding(DIMENSION, 1);
        let mut near = fixtures::pattern(org, DIMENSION, 10);
        near.embedding = Some(fixtures::near(&base, 10, 0.1));
        near.kind = PatternKind::Opening;
        let near = upserted(s, near).await;
        let mut used = fixtures::pattern(org, DIMENSION, 11);
        used.embedding = Some(fixtures::near(&base, 11, 0.5));
        let used = upserted(s, used).await;
        use_pattern(s, org, used.id, 3, 1).await;
        let mut closing = fixtures::pattern(org, DIMENSION, 12);
        closing.embedding = Some(fixtures::near(&base, 12, 0.3));
        closing.kind = PatternKind::Closing;
        let closing = upserted(s, closing).await;
        use_pattern(s, org, closing.id, 1, 1).await;

        let search = |filter: PatternFilter| {
            let query = base.clone();
            async move {
                s.find_similar(org, &query, 10, &filter)
                    .await
                    .expect("search")
                    .into_iter()
                    .map(|m| m.item.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            search(PatternFilter::default()).await,
            vec![near.id, closing.id, used.id]
        );
        assert_eq!(
            search(PatternFilter {
                kind: Some(PatternKind::ObjectionHandling),
                min_uses: 0
            })
            .await,
            vec![used.id]
        );
        assert_eq!(
            search(PatternFilter {
                kind: None,
                min_uses: 1
            })
            .await,
            vec![closing.id, used.id]
        );
        assert_eq!(
            search(PatternFilter {
                kind: None,
                min_uses: 3
            })
            .await,
            vec![used.id]
        );
        assert!(
            search(PatternFilter {
                kind: Some(PatternKind::Opening),
                min_uses: 1
            })
            .await
            .is_empty()
        );
    });
    case!(
        make,
        "patterns: top ranks by smoothed success rate under the prior, ties by id",
        |s| {
            let org = org(s).await;
            let mut made = Vec::new();
            for n in 0..5 {
                made.push(upserted(s, fixtures::pattern(org, DIMENSION, n)).await);
            }
            let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| made[i].id);
            use_pattern(s, org, a, 10, 9).await; // default prior: 11/14 = 0.786
            use_pattern(s, org, b, 1, 1).await; // 3/5 = 0.6
            // c: never used, 2/4 = 0.5
            use_pattern(s, org, d, 2, 1).await; // 3/6 = 0.5, a tie with c
            use_pattern(s, org, e, 4, 0).await; // 2/8 = 0.25
            let (low, high) = if c < d { (c, d) } else { (d, c) };
            let all = PatternFilter::default();
            let prior = SuccessPrior::default();
            let top = s.top(org, &all, &prior, 10).await.expect("top");
            assert_eq!(ids(&top), vec![a, b, low, high, e]);
            let stored = top.iter().find(|p| p.id == a).expect("a");
            assert_eq!((stored.uses, stored.successes), (10, 9));
            assert!(stored.embedding.is_some(), "the whole pattern comes back");
            assert_eq!(
                ids(&s.top(org, &all, &prior, 2).await.expect("top")),
                vec![a, b]
            );
            // A weak prior trusts the single success of b over a's 9 in 10.
            let weak = SuccessPrior::new(0.5, 0.1).expect("prior");
            assert_eq!(
                ids(&s.top(org, &all, &weak, 2).await.expect("top")),
                vec![b, a]
            );
            let used_twice = PatternFilter {
                kind: None,
                min_uses: 2,
            };
            assert_eq!(
                ids(&s.top(org, &used_twice, &prior, 10).await.expect("top")),
                vec![a, d, e]
            );
            let closing = PatternFilter {
                kind: Some(PatternKind::Closing),
                min_uses: 0,
            };
            assert!(
                s.top(org, &closing, &prior, 10)
                    .await
                    .expect("top")
                    .is_empty()
            );
            assert!(s.top(org, &all, &prior, 0).await.expect("top").is_empty());
        }
    );
    case!(
        make,
        "patterns: record_usage counts each call once, in the org only, last use forward",
        |s| {
            let (a, b) = (org(s).await, org(s).await);
            let p1 = upserted(s, fixtures::pattern(a, DIMENSION, 1)).await;
            let p2 = upserted(s, fixtures::pattern(a, DIMENSION, 2)).await;
            let foreign = upserted(s, fixtures::pattern(b, DIMENSION, 3)).await;
            let t1 = fixtures::now();
            let call = CallId::new();
            let ids = [p1.id, p2.id, p1.id, foreign.id, PatternId::new()];
            assert_eq!(
                s.record_usage(a, call, &ids, true, t1)
                    .await
                    .expect("usage"),
                2,
                "p1 and p2, once each; another org's and unknown ids are ignored"
            );
            assert_eq!(
                s.record_usage(a, call, &ids, true, t1)
                    .await
                    .expect("retry"),
                0,
                "a retried job counts nothing"
            );
            assert_eq!(
                s.record_usage(a, call, &[p1.id], false, t1 + Duration::hours(1))
                    .await
                    .expect("same call, other outcome"),
                0
            );
            let stored = PatternStore::get(s, a, p1.id).await.expect("get");
            assert_eq!((stored.uses, stored.successes), (1, 1));
            assert_eq!(stored.last_used_at, Some(t1));
            // An earlier use (a late job) counts but does not move last_used_at back.
            let t0 = t1 - Duration::hours(2);
            assert_eq!(
                s.record_usage(a, CallId::new(), &[p1.id], false, t0)
                    .await
                    .expect("usage"),
                1
            );
            let stored = PatternStore::get(s, a, p1.id).await.expect("get");
            assert_eq!((stored.uses, stored.successes), (2, 1));
            assert_eq!(stored.last_used_at, Some(t1));
            let t2 = t1 + Duration::minutes(5);
            s.record_usage(a, CallId::new(), &[p1.id], true, t2)
                .await
                .expect("usage");
            let stored = PatternStore::get(s, a, p1.id).await.expect("get");
            assert_eq!((stored.uses, stored.successes), (3, 2));
            assert_eq!(stored.last_used_at, Some(t2));
            assert_eq!(
                PatternStore::get(s, b, foreign.id).await.expect("get"),
                foreign,
                "another org's pattern is untouched"
            );
            assert_eq!(
                s.record_usage(a, CallId::new(), &[], true, t2)
                    .await
                    .expect("none"),
                0
            );
        }
    );
    case!(make, "patterns: 30 concurrent calls are all counted", |s| {
        let org = org(s).await;
        let p = upserted(s, fixtures::pattern(org, DIMENSION, 1)).await;
        let at = fixtures::now();
        let tasks: Vec<_> = (0..30)
            .map(|n| {
                let store = s.clone();
                let id = p.id;
                tokio::spawn(async move {
                    store
                        .record_usage(org, CallId::new(), &[id], n % 2 == 0, at)
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task").expect("usage"), 1);
        }
        let stored = PatternStore::get(s, org, p.id).await.expect("get");
        assert_eq!((stored.uses, stored.successes), (30, 15));
        assert_eq!(stored.last_used_at, Some(at));
    });
    case!(make, "patterns: list pages, delete", |s| {
        let org = org(s).await;
        let mut made = Vec::new();
        for n in 0..5 {
            made.push(upserted(s, fixtures::pattern(org, DIMENSION, n)).await);
        }
        let mut seen = Vec::new();
        let mut request = PageRequest::first(2);
        loop {
            let page = PatternStore::list(s, org, request).await.expect("list");
            assert!(page.items.len() <= 2);
            seen.extend(page.items);
            match page.next {
                Some(next) => request = PageRequest::after(2, next),
                None => break,
            }
        }
        assert_eq!(seen, made, "every pattern once, in creation order, whole");
        let gone = made[0].clone();
        use_pattern(s, org, gone.id, 1, 1).await;
        PatternStore::delete(s, org, gone.id).await.expect("delete");
        assert!(matches!(
            PatternStore::get(s, org, gone.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            PatternStore::delete(s, org, gone.id).await,
            Err(StoreError::NotFound { .. })
        ));
        let query = gone.embedding.clone().expect("embedding");
        let found = s
            .find_similar(org, &query, 10, &PatternFilter::default())
            .await
            .expect("search");
        assert_eq!(found.len(), 4);
        assert!(found.iter().all(|m| m.item.id != gone.id));
    });
    case!(
        make,
        "patterns: another org cannot read, search, list, rank, count or delete",
        |s| {
            let (a, b) = (org(s).await, org(s).await);
            let p = upserted(s, fixtures::pattern(a, DIMENSION, 1)).await;
            let query = p.embedding.clone().expect("embedding");
            let all = PatternFilter::default();
            assert!(matches!(
                PatternStore::get(s, b, p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(
                s.find_similar(b, &query, 10, &all)
                    .await
                    .expect("search")
                    .is_empty()
            );
            assert!(
                PatternStore::list(s, b, PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            assert!(
                s.top(b, &all, &SuccessPrior::default(), 10)
                    .await
                    .expect("top")
                    .is_empty()
            );
            assert_eq!(
                s.record_usage(b, CallId::new(), &[p.id], true, fixtures::now())
                    .await
                    .expect("usage"),
                0
            );
            assert!(matches!(
                PatternStore::delete(s, b, p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(PatternStore::get(s, a, p.id).await.expect("still there"), p);
            let found = s.find_similar(a, &query, 10, &all).await.expect("search");
            assert_eq!(found.len(), 1);
            assert!(found[0].similarity > 0.999, "{}", found[0].similarity);
        }
    );
}
