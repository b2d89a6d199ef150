//! `AgentRepository` contract: capacity accounting under concurrency, routing
//! candidates, tenancy.

use std::future::Future;

use iace_domain::ports::{AgentRepository, OrgRepository, PageRequest, StoreError};
use iace_domain::{AgentId, Availability, Skill};

use super::case;
use crate::{Harness, fixtures};

fn skill(name: &str) -> Skill {
    Skill::parse(name).expect("skill")
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: AgentRepository + OrgRepository + Clone + Send + Sync + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "agents: create, get and list round-trip", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let mut a = fixtures::agent(org.id, &["billing", "spanish"], 2);
        a.email = Some("ana@example.com".parse().expect("email"));
        a.sip_uri = Some("sip:ana@pbx.example.com".into());
        a.availability = Availability::Away;
        AgentRepository::create(s, &a).await.expect("create");
        assert_eq!(AgentRepository::get(s, org.id, a.id).await.expect("get"), a);
        let b = fixtures::agent(org.id, &[], 1);
        AgentRepository::create(s, &b).await.expect("create b");
        let page = AgentRepository::list(s, org.id, PageRequest::default())
            .await
            .expect("list");
        assert_eq!(page.items, vec![a.clone(), b]);
        assert!(matches!(
            AgentRepository::create(s, &a).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            AgentRepository::get(s, org.id, AgentId::new()).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "agents: update replaces fields but never active calls; delete",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let mut a = fixtures::agent(org.id, &["billing"], 3);
            AgentRepository::create(s, &a).await.expect("create");
            s.adjust_active_calls(org.id, a.id, 2).await.expect("take");
            a.name = "Ana Maria".into();
            a.skills.insert(skill("vip"));
            a.availability = Availability::Offline;
            a.max_concurrent_calls = 4;
            a.active_calls = 0; // a stale read: must not reset the counter
            AgentRepository::update(s, &a).await.expect("update");
            let stored = AgentRepository::get(s, org.id, a.id).await.expect("get");
            assert_eq!(stored.active_calls, 2, "update leaves active calls alone");
            a.active_calls = 2;
            assert_eq!(stored, a);
            AgentRepository::delete(s, org.id, a.id)
                .await
                .expect("delete");
            assert!(matches!(
                AgentRepository::get(s, org.id, a.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                AgentRepository::delete(s, org.id, a.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                AgentRepository::update(s, &a).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(
        make,
        "agents: candidates are available, have capacity and every skill, by id",
        |s| {
            let (org, other) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &org).await.expect("org");
            OrgRepository::create(s, &other).await.expect("other");
            let both = fixtures::agent(org.id, &["billing", "spanish"], 2);
            let billing = fixtures::agent(org.id, &["billing"], 1);
            let mut away = fixtures::agent(org.id, &["billing", "spanish"], 2);
            away.availability = Availability::Away;
            let full = fixtures::agent(org.id, &["billing", "spanish"], 1);
            let foreign = fixtures::agent(other.id, &["billing", "spanish"], 2);
            for a in [&both, &billing, &away, &full, &foreign] {
                AgentRepository::create(s, a).await.expect("create");
            }
            s.adjust_active_calls(org.id, full.id, 1)
                .await
                .expect("fill");
            let ids = |agents: Vec<iace_domain::HumanAgent>| {
                agents.into_iter().map(|a| a.id).collect::<Vec<_>>()
            };
            assert_eq!(
                ids(s
                    .candidates(org.id, &[skill("billing"), skill("spanish")])
                    .await
                    .expect("candidates")),
                vec![both.id]
            );
            assert_eq!(
                ids(s
                    .candidates(org.id, &[skill("billing")])
                    .await
                    .expect("candidates")),
                vec![both.id, billing.id]
            );
            assert_eq!(
                ids(s.candidates(org.id, &[]).await.expect("candidates")),
                vec![both.id, billing.id],
                "no skills required: every available agent with capacity"
            );
            assert!(
                s.candidates(org.id, &[skill("french")])
                    .await
                    .expect("candidates")
                    .is_empty()
            );
            // Freeing the full agent's slot makes it a candidate again.
            s.adjust_active_calls(org.id, full.id, -1)
                .await
                .expect("free");
            assert_eq!(
                ids(s
                    .candidates(org.id, &[skill("spanish")])
                    .await
                    .expect("candidates")),
                vec![both.id, full.id]
            );
        }
    );
    case!(
        make,
        "agents: active calls stay within 0..=max and the new count is returned",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let a = fixtures::agent(org.id, &[], 2);
            AgentRepository::create(s, &a).await.expect("create");
            let one = s.adjust_active_calls(org.id, a.id, 1).await.expect("+1");
            assert_eq!((one.id, one.active_calls), (a.id, 1));
            let two = s.adjust_active_calls(org.id, a.id, 1).await.expect("+1");
            assert_eq!(two.active_calls, 2);
            let over = s.adjust_active_calls(org.id, a.id, 1).await;
            assert!(
                matches!(over, Err(StoreError::Conflict { .. })),
                "above capacity: {over:?}"
            );
            let huge = s.adjust_active_calls(org.id, a.id, i32::MAX).await;
            assert!(
                matches!(huge, Err(StoreError::Conflict { .. })),
                "no overflow: {huge:?}"
            );
            let zero = s.adjust_active_calls(org.id, a.id, -2).await.expect("-2");
            assert_eq!(zero.active_calls, 0);
            let under = s.adjust_active_calls(org.id, a.id, -1).await;
            assert!(
                matches!(under, Err(StoreError::Conflict { .. })),
                "below zero: {under:?}"
            );
            assert_eq!(
                AgentRepository::get(s, org.id, a.id)
                    .await
                    .expect("get")
                    .active_calls,
                0,
                "refused adjustments change nothing"
            );
            assert!(matches!(
                s.adjust_active_calls(org.id, AgentId::new(), 1).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(
        make,
        "agents: concurrent takes never exceed capacity",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let a = fixtures::agent(org.id, &[], 3);
            AgentRepository::create(s, &a).await.expect("create");
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..10 {
                let store = s.clone();
                let (org, id) = (org.id, a.id);
                tasks.spawn(async move { store.adjust_active_calls(org, id, 1).await });
            }
            let (mut taken, mut refused) = (0, 0);
            while let Some(result) = tasks.join_next().await {
                match result.expect("task") {
                    Ok(agent) => {
                        assert!(agent.active_calls <= 3);
                        taken += 1;
                    }
                    Err(StoreError::Conflict { .. }) => refused += 1,
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            assert_eq!((taken, refused), (3, 7));
            assert_eq!(
                AgentRepository::get(s, org.id, a.id)
                    .await
                    .expect("get")
                    .active_calls,
                3
            );
        }
    );
    case!(
        make,
        "agents: another org cannot read, list, route to, update, delete or adjust",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            let agent = fixtures::agent(a.id, &["billing"], 2);
            AgentRepository::create(s, &agent).await.expect("create");
            assert!(matches!(
                AgentRepository::get(s, b.id, agent.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(
                AgentRepository::list(s, b.id, PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            assert!(
                s.candidates(b.id, &[skill("billing")])
                    .await
                    .expect("candidates")
                    .is_empty()
            );
            let mut hijack = agent.clone();
            hijack.org_id = b.id;
            hijack.name = "Mallory".into();
            assert!(matches!(
                AgentRepository::update(s, &hijack).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.adjust_active_calls(b.id, agent.id, 1).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                AgentRepository::delete(s, b.id, agent.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(
                AgentRepository::get(s, a.id, agent.id)
                    .await
                    .expect("still there"),
                agent
            );
        }
    );
}
