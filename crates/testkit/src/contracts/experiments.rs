//! `ExperimentRepository` contract: variants kept in order, draft-only variant
//! changes, idempotent and race-free outcome counting, sticky assignments, and
//! tenancy.

use std::future::Future;

use iace_domain::ports::{
    ExperimentRepository, OrgRepository, PageRequest, PersonaRepository, StoreError,
};
use iace_domain::{
    CallId, Experiment, ExperimentId, ExperimentMetric, ExperimentStatus, OrgId, PersonaId,
    Variant, VariantId,
};

use super::case;
use crate::{Harness, fixtures};

/// Creates `n` personas of `org`.
async fn personas<S: PersonaRepository>(s: &S, org: OrgId, n: usize) -> Vec<PersonaId> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let p = fixtures::persona(org);
        PersonaRepository::create(s, &p).await.expect("persona");
        ids.push(p.id);
    }
    ids
}

/// A new org with `n` personas.
async fn org_with_personas<S>(s: &S, n: usize) -> (OrgId, Vec<PersonaId>)
where
    S: OrgRepository + PersonaRepository,
{
    let org = fixtures::org();
    OrgRepository::create(s, &org).await.expect("org");
    let ids = personas(s, org.id, n).await;
    (org.id, ids)
}

/// A stored experiment of a new org, with `n` variants.
async fn stored<S>(s: &S, n: usize) -> Experiment
where
    S: ExperimentRepository + OrgRepository + PersonaRepository,
{
    let (org, ids) = org_with_personas(s, n).await;
    let e = fixtures::experiment(org, &ids);
    ExperimentRepository::create(s, &e).await.expect("create");
    e
}

/// `e`, started.
fn started(e: &Experiment) -> Experiment {
    let mut e = e.clone();
    e.status = ExperimentStatus::Running;
    e.started_at = Some(fixtures::now());
    e
}

/// `(variant, trials, conversions)` of every variant of `e`, in order.
async fn counts_of<S: ExperimentRepository>(s: &S, e: &Experiment) -> Vec<(VariantId, u64, u64)> {
    s.counts(e.org_id, e.id)
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.variant_id, c.trials, c.conversions))
        .collect()
}

/// Whether `result` is `NotFound`.
fn not_found<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: ExperimentRepository + OrgRepository + PersonaRepository + Clone + Send + Sync + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(
        make,
        "experiments: create and get keep every field and the variants' order",
        |s| {
            let mut e = stored(s, 3).await;
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                e
            );
            // Another experiment, created running with timestamps set.
            let ids: Vec<PersonaId> = e.variants.iter().map(|v| v.persona_id).collect();
            e = fixtures::experiment(e.org_id, &ids[..2]);
            e.status = ExperimentStatus::Completed;
            e.metric = ExperimentMetric::PositiveSentiment;
            e.started_at = Some(fixtures::now());
            e.ended_at = Some(fixtures::now());
            ExperimentRepository::create(s, &e).await.expect("create");
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                e
            );
            assert!(not_found(
                &ExperimentRepository::get(s, e.org_id, ExperimentId::new()).await
            ));
        }
    );
    case!(
        make,
        "experiments: invalid variants are refused and nothing is stored",
        |s| {
            let (org, ids) = org_with_personas(s, 2).await;
            let mut no_control = fixtures::experiment(org, &ids);
            no_control.variants[0].is_control = false;
            let mut zero_weight = fixtures::experiment(org, &ids);
            zero_weight.variants[1].weight = 0;
            let mut lonely = fixtures::experiment(org, &ids);
            lonely.variants.truncate(1);
            for e in [no_control, zero_weight, lonely] {
                let result = ExperimentRepository::create(s, &e).await;
                assert!(
                    matches!(result, Err(StoreError::Invalid { .. })),
                    "{result:?}"
                );
                assert!(not_found(&ExperimentRepository::get(s, org, e.id).await));
            }
        }
    );
    case!(
        make,
        "experiments: duplicate ids, unknown or foreign personas are refused atomically",
        |s| {
            let (org, ids) = org_with_personas(s, 2).await;
            let e = fixtures::experiment(org, &ids);
            ExperimentRepository::create(s, &e).await.expect("create");
            let again = ExperimentRepository::create(s, &e).await;
            assert!(
                matches!(again, Err(StoreError::AlreadyExists { .. })),
                "{again:?}"
            );
            let unknown = fixtures::experiment(org, &[ids[0], PersonaId::new()]);
            assert!(not_found(&ExperimentRepository::create(s, &unknown).await));
            let (_, foreign) = org_with_personas(s, 1).await;
            let cross = fixtures::experiment(org, &[ids[0], foreign[0]]);
            assert!(not_found(&ExperimentRepository::create(s, &cross).await));
            // A variant id already used by another experiment: the experiment
            // row is rolled back with its variants.
            let mut reused = fixtures::experiment(org, &ids);
            reused.variants[1].id = e.variants[1].id;
            assert!(ExperimentRepository::create(s, &reused).await.is_err());
            for id in [unknown.id, cross.id, reused.id] {
                assert!(not_found(&ExperimentRepository::get(s, org, id).await));
            }
            let listed = ExperimentRepository::list(s, org, PageRequest::default())
                .await
                .expect("list");
            assert_eq!(listed.items, vec![e]);
        }
    );
    case!(
        make,
        "experiments: update writes name, status and timestamps, never salt or metric",
        |s| {
            let e = stored(s, 2).await;
            let mut changed = started(&e);
            changed.name = "Friendly greeting, take two".into();
            ExperimentRepository::update(s, &changed)
                .await
                .expect("update");
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                changed
            );
            let mut ended = changed.clone();
            ended.status = ExperimentStatus::Completed;
            ended.ended_at = Some(fixtures::now());
            let mut sneaky = ended.clone();
            sneaky.salt = "reshuffle-everyone".into();
            sneaky.metric = ExperimentMetric::PositiveSentiment;
            sneaky.created_at = fixtures::now() + chrono::Duration::days(1);
            ExperimentRepository::update(s, &sneaky)
                .await
                .expect("update");
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                ended,
                "salt, metric and creation time are fixed at creation"
            );
            let mut unknown = e.clone();
            unknown.id = ExperimentId::new();
            assert!(not_found(&ExperimentRepository::update(s, &unknown).await));
        }
    );
    case!(
        make,
        "experiments: a draft's variants can be replaced",
        |s| {
            let e = stored(s, 2).await;
            let extra = personas(s, e.org_id, 1).await[0];
            // Drop the treatment, reweight the control, put a new arm first.
            let mut changed = e.clone();
            changed.variants.truncate(1);
            changed.variants[0].weight = 5;
            changed.variants.insert(
                0,
                Variant {
                    id: VariantId::new(),
                    name: "treatment-new".into(),
                    persona_id: extra,
                    weight: 2,
                    is_control: false,
                },
            );
            ExperimentRepository::update(s, &changed)
                .await
                .expect("update");
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                changed
            );
            let ids: Vec<VariantId> = changed.variants.iter().map(|v| v.id).collect();
            assert_eq!(
                counts_of(s, &changed).await,
                vec![(ids[0], 0, 0), (ids[1], 0, 0)]
            );
            // Replacing them with invalid ones is refused.
            let mut invalid = changed.clone();
            invalid.variants[0].is_control = true;
            let result = ExperimentRepository::update(s, &invalid).await;
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{result:?}"
            );
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                changed
            );
        }
    );
    case!(
        make,
        "experiments: variants of a non-draft cannot change, and counts survive updates",
        |s| {
            let e = stored(s, 2).await;
            let running = started(&e);
            ExperimentRepository::update(s, &running)
                .await
                .expect("start");
            let control = e.variants[0].id;
            assert!(
                s.record_outcome(e.org_id, e.id, control, CallId::new(), true)
                    .await
                    .expect("record")
            );
            let mut reweighted = running.clone();
            reweighted.variants[1].weight = 10;
            let result = ExperimentRepository::update(s, &reweighted).await;
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{result:?}"
            );
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                running,
                "nothing written"
            );
            let mut paused = running.clone();
            paused.status = ExperimentStatus::Paused;
            ExperimentRepository::update(s, &paused)
                .await
                .expect("pause");
            assert_eq!(
                counts_of(s, &e).await,
                vec![(control, 1, 1), (e.variants[1].id, 0, 0)]
            );
        }
    );
    case!(
        make,
        "experiments: list pages with their variants; running lists only running ones",
        |s| {
            let (org, ids) = org_with_personas(s, 3).await;
            let mut all = Vec::new();
            for n in 0..5 {
                let mut e = fixtures::experiment(org, &ids[..2 + n % 2]);
                if n.is_multiple_of(2) {
                    e.status = ExperimentStatus::Running;
                    e.started_at = Some(fixtures::now());
                }
                ExperimentRepository::create(s, &e).await.expect("create");
                all.push(e);
            }
            let mut seen = Vec::new();
            let mut request = PageRequest::first(2);
            loop {
                let page = ExperimentRepository::list(s, org, request)
                    .await
                    .expect("list");
                assert!(page.items.len() <= 2);
                seen.extend(page.items);
                match page.next {
                    Some(next) => request = PageRequest::after(2, next),
                    None => break,
                }
            }
            assert_eq!(seen, all, "every experiment once, in order, with variants");
            let newest = ExperimentRepository::list(s, org, PageRequest::first(1).newest_first())
                .await
                .expect("list");
            assert_eq!(newest.items, vec![all[4].clone()]);
            let running = s.running(org).await.expect("running");
            assert_eq!(
                running,
                vec![all[0].clone(), all[2].clone(), all[4].clone()]
            );
        }
    );
    case!(
        make,
        "experiments: an outcome counts once per call; unused variants count zero",
        |s| {
            let e = stored(s, 3).await;
            let (a, b, c) = (e.variants[0].id, e.variants[1].id, e.variants[2].id);
            assert_eq!(
                counts_of(s, &e).await,
                vec![(a, 0, 0), (b, 0, 0), (c, 0, 0)]
            );
            let call = CallId::new();
            assert!(
                s.record_outcome(e.org_id, e.id, a, call, true)
                    .await
                    .expect("first")
            );
            assert!(
                !s.record_outcome(e.org_id, e.id, a, call, true)
                    .await
                    .expect("retry"),
                "a retried job is not counted again"
            );
            assert!(
                !s.record_outcome(e.org_id, e.id, b, call, false)
                    .await
                    .expect("other variant"),
                "one call is one outcome, whatever variant is claimed later"
            );
            assert!(
                s.record_outcome(e.org_id, e.id, a, CallId::new(), false)
                    .await
                    .expect("second call")
            );
            assert!(
                s.record_outcome(e.org_id, e.id, b, CallId::new(), true)
                    .await
                    .expect("third call")
            );
            assert_eq!(
                counts_of(s, &e).await,
                vec![(a, 2, 1), (b, 1, 1), (c, 0, 0)]
            );
        }
    );
    case!(
        make,
        "experiments: outcomes and assignments need the variant in the experiment",
        |s| {
            let e = stored(s, 2).await;
            let ids: Vec<PersonaId> = e.variants.iter().map(|v| v.persona_id).collect();
            let other = fixtures::experiment(e.org_id, &ids);
            ExperimentRepository::create(s, &other)
                .await
                .expect("other");
            let foreign_variant = other.variants[0].id;
            let at = fixtures::now();
            for variant in [foreign_variant, VariantId::new()] {
                assert!(not_found(
                    &s.record_outcome(e.org_id, e.id, variant, CallId::new(), true)
                        .await
                ));
                assert!(not_found(
                    &s.assign(e.org_id, e.id, "+14155550001", variant, at).await
                ));
            }
            let unknown = ExperimentId::new();
            let control = e.variants[0].id;
            assert!(not_found(
                &s.record_outcome(e.org_id, unknown, control, CallId::new(), true)
                    .await
            ));
            assert!(not_found(
                &s.assign(e.org_id, unknown, "+14155550001", control, at)
                    .await
            ));
            assert!(not_found(&s.counts(e.org_id, unknown).await));
            assert_eq!(
                counts_of(s, &e).await,
                vec![(control, 0, 0), (e.variants[1].id, 0, 0)]
            );
            assert_eq!(
                counts_of(s, &other).await,
                vec![(other.variants[0].id, 0, 0), (other.variants[1].id, 0, 0)]
            );
        }
    );
    case!(
        make,
        "experiments: 40 concurrent outcomes are all counted exactly",
        |s| {
            let e = stored(s, 2).await;
            let (a, b) = (e.variants[0].id, e.variants[1].id);
            let mut tasks = Vec::new();
            for n in 0..40u32 {
                let store = s.clone();
                let (org, id) = (e.org_id, e.id);
                let variant = if n.is_multiple_of(4) { b } else { a };
                tasks.push(tokio::spawn(async move {
                    store
                        .record_outcome(org, id, variant, CallId::new(), n.is_multiple_of(2))
                        .await
                }));
            }
            // And the same call raced from several tasks counts once.
            let shared = CallId::new();
            let mut racers = Vec::new();
            for _ in 0..5 {
                let store = s.clone();
                let (org, id) = (e.org_id, e.id);
                racers.push(tokio::spawn(async move {
                    store.record_outcome(org, id, b, shared, false).await
                }));
            }
            for task in tasks {
                assert!(task.await.expect("task").expect("record"), "counted");
            }
            let mut won = 0;
            for racer in racers {
                if racer.await.expect("task").expect("record") {
                    won += 1;
                }
            }
            assert_eq!(won, 1, "exactly one racer counts the shared call");
            // b: n divisible by 4 (10 calls, all even so all converted), plus the
            // shared call (not converted). a: the other 30, of which the 10
            // even ones converted.
            assert_eq!(counts_of(s, &e).await, vec![(a, 30, 10), (b, 11, 10)]);
            let total: u64 = counts_of(s, &e).await.iter().map(|c| c.1).sum();
            assert_eq!(total, 41);
        }
    );
    case!(
        make,
        "experiments: assignments are sticky per subject and experiment",
        |s| {
            let e = stored(s, 2).await;
            let (a, b) = (e.variants[0].id, e.variants[1].id);
            let at = fixtures::now();
            assert_eq!(
                s.assign(e.org_id, e.id, "+14155550001", a, at)
                    .await
                    .expect("first"),
                a
            );
            assert_eq!(
                s.assign(e.org_id, e.id, "+14155550001", b, at)
                    .await
                    .expect("again"),
                a,
                "the first assignment stays in force"
            );
            assert_eq!(
                s.assign(e.org_id, e.id, "+14155550002", b, at)
                    .await
                    .expect("other subject"),
                b
            );
            // The same subject in another experiment is independent.
            let ids: Vec<PersonaId> = e.variants.iter().map(|v| v.persona_id).collect();
            let other = fixtures::experiment(e.org_id, &ids);
            ExperimentRepository::create(s, &other)
                .await
                .expect("other");
            let other_b = other.variants[1].id;
            assert_eq!(
                s.assign(e.org_id, other.id, "+14155550001", other_b, at)
                    .await
                    .expect("other experiment"),
                other_b
            );
            // Concurrent first assignments agree on one winner.
            let mut tasks = Vec::new();
            for n in 0..6u32 {
                let store = s.clone();
                let (org, id) = (e.org_id, e.id);
                let variant = if n.is_multiple_of(2) { a } else { b };
                tasks.push(tokio::spawn(async move {
                    store.assign(org, id, "cust-race", variant, at).await
                }));
            }
            let mut winners = Vec::new();
            for task in tasks {
                winners.push(task.await.expect("task").expect("assign"));
            }
            assert!(
                winners.iter().all(|w| *w == winners[0]),
                "every caller sees the same assignment: {winners:?}"
            );
        }
    );
    case!(
        make,
        "experiments: a persona in use by an experiment cannot be deleted",
        |s| {
            let e = stored(s, 2).await;
            let running = started(&e);
            ExperimentRepository::update(s, &running)
                .await
                .expect("start");
            let used = e.variants[1].persona_id;
            let result = PersonaRepository::delete(s, e.org_id, used).await;
            assert!(
                matches!(result, Err(StoreError::Conflict { .. })),
                "running: {result:?}"
            );
            let mut done = running.clone();
            done.status = ExperimentStatus::Completed;
            done.ended_at = Some(fixtures::now());
            ExperimentRepository::update(s, &done).await.expect("end");
            let result = PersonaRepository::delete(s, e.org_id, used).await;
            assert!(
                matches!(result, Err(StoreError::Conflict { .. })),
                "completed: {result:?}"
            );
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("get"),
                done
            );
            let unused = personas(s, e.org_id, 1).await[0];
            PersonaRepository::delete(s, e.org_id, unused)
                .await
                .expect("an unused persona can go");
        }
    );
    case!(
        make,
        "experiments: another org cannot read, list, update, record, assign or count",
        |s| {
            let e = stored(s, 2).await;
            let running = started(&e);
            ExperimentRepository::update(s, &running)
                .await
                .expect("start");
            let (b, _) = org_with_personas(s, 0).await;
            let control = e.variants[0].id;
            assert!(not_found(&ExperimentRepository::get(s, b, e.id).await));
            assert!(
                ExperimentRepository::list(s, b, PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            assert!(s.running(b).await.expect("running").is_empty());
            let mut hijack = running.clone();
            hijack.org_id = b;
            hijack.name = "Mallory's".into();
            hijack.status = ExperimentStatus::Completed;
            assert!(not_found(&ExperimentRepository::update(s, &hijack).await));
            assert!(not_found(
                &s.record_outcome(b, e.id, control, CallId::new(), true)
                    .await
            ));
            assert!(not_found(
                &s.assign(b, e.id, "+14155550001", control, fixtures::now())
                    .await
            ));
            assert!(not_found(&s.counts(b, e.id).await));
            assert_eq!(
                ExperimentRepository::get(s, e.org_id, e.id)
                    .await
                    .expect("untouched"),
                running
            );
            assert_eq!(
                counts_of(s, &e).await,
                vec![(control, 0, 0), (e.variants[1].id, 0, 0)]
            );
            // The assignment slot was not taken by the foreign attempt.
            let treatment = e.variants[1].id;
            assert_eq!(
                s.assign(e.org_id, e.id, "+14155550001", treatment, fixtures::now())
                    .await
                    .expect("assign"),
                treatment
            );
        }
    );
}
