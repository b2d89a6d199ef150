//! `PersonaRepository` contract, tenancy included. (Deleting a persona that an
//! experiment uses needs experiments: the `experiments` suite covers it.)

use std::future::Future;

use iace_domain::ports::{OrgRepository, PageRequest, PersonaRepository, StoreError};
use iace_domain::{Language, PersonaId, Style};

use super::case;
use crate::{Harness, fixtures};

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: PersonaRepository + OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "personas: create and get round-trip", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let mut p = fixtures::persona(org.id);
        p.voice.speed = 1.15; // not exactly representable: must still round-trip
        p.style = Style::Empathetic;
        p.language = "es-MX".parse::<Language>().expect("language");
        p.system_prompt = "Línea 1\nLínea 2 — «comillas» 🙂".into();
        PersonaRepository::create(s, &p).await.expect("create");
        assert_eq!(
            PersonaRepository::get(s, org.id, p.id).await.expect("get"),
            p
        );
        assert!(matches!(
            PersonaRepository::create(s, &p).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            PersonaRepository::get(s, org.id, PersonaId::new()).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(make, "personas: unknown org is rejected", |s| {
        let p = fixtures::persona(iace_domain::OrgId::new());
        assert!(PersonaRepository::create(s, &p).await.is_err());
    });
    case!(make, "personas: update keeps identity; delete", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let mut p = fixtures::persona(org.id);
        PersonaRepository::create(s, &p).await.expect("create");
        let created_at = p.created_at;
        p.name = "Sam (night shift)".into();
        p.voice.name = "aura-2-orion-en".into();
        p.voice.speed = 0.9;
        p.greeting = "Good evening.".into();
        p.style = Style::Concise;
        p.updated_at = fixtures::now();
        let mut stale = p.clone();
        stale.created_at = fixtures::micros(created_at - chrono::Duration::days(3));
        PersonaRepository::update(s, &stale).await.expect("update");
        assert_eq!(
            PersonaRepository::get(s, org.id, p.id).await.expect("get"),
            p,
            "fields replaced, created_at kept"
        );
        PersonaRepository::delete(s, org.id, p.id)
            .await
            .expect("delete");
        assert!(matches!(
            PersonaRepository::get(s, org.id, p.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            PersonaRepository::delete(s, org.id, p.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            PersonaRepository::update(s, &p).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "personas: another org cannot read, list, update or delete",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            let p = fixtures::persona(a.id);
            PersonaRepository::create(s, &p).await.expect("create");
            assert!(matches!(
                PersonaRepository::get(s, b.id, p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(
                PersonaRepository::list(s, b.id, PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            let mut hijack = p.clone();
            hijack.org_id = b.id;
            hijack.name = "Mallory".into();
            assert!(matches!(
                PersonaRepository::update(s, &hijack).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                PersonaRepository::delete(s, b.id, p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(
                PersonaRepository::get(s, a.id, p.id)
                    .await
                    .expect("still there"),
                p
            );
        }
    );
    case!(make, "personas: keyset pages in creation order", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let mut ids = Vec::new();
        for _ in 0..5 {
            let p = fixtures::persona(org.id);
            PersonaRepository::create(s, &p).await.expect("create");
            ids.push(p.id);
        }
        let first = PersonaRepository::list(s, org.id, PageRequest::first(3))
            .await
            .expect("first");
        let next = first.next.expect("a second page");
        let second = PersonaRepository::list(s, org.id, PageRequest::after(3, next))
            .await
            .expect("second");
        assert_eq!(second.next, None);
        let seen: Vec<_> = first
            .items
            .iter()
            .chain(&second.items)
            .map(|p| p.id)
            .collect();
        assert_eq!(seen, ids);
    });
}
