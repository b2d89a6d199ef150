//! `CustomerRepository` contract, tenancy included.

use std::future::Future;

use iace_domain::ports::{CustomerRepository, OrgRepository, PageRequest, StoreError};
use iace_domain::{CustomerId, CustomerTier};

use super::case;
use crate::{Harness, fixtures};

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: CustomerRepository + OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "customers: create, get, find by phone", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let c = fixtures::customer(org.id, 1);
        CustomerRepository::create(s, &c).await.expect("create");
        assert_eq!(
            CustomerRepository::get(s, org.id, c.id).await.expect("get"),
            c
        );
        assert_eq!(
            s.find_by_phone(org.id, &c.phone).await.expect("find"),
            Some(c.clone())
        );
        assert_eq!(
            s.find_by_phone(org.id, &fixtures::phone(2))
                .await
                .expect("find"),
            None
        );
    });
    case!(
        make,
        "customers: phone is unique per org, not globally",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            CustomerRepository::create(s, &fixtures::customer(a.id, 7))
                .await
                .expect("first");
            let dup = CustomerRepository::create(s, &fixtures::customer(a.id, 7)).await;
            assert!(
                matches!(dup, Err(StoreError::AlreadyExists { field: "phone", .. })),
                "{dup:?}"
            );
            CustomerRepository::create(s, &fixtures::customer(b.id, 7))
                .await
                .expect("same phone in another org");
        }
    );
    case!(make, "customers: unknown org is rejected", |s| {
        let c = fixtures::customer(iace_domain::OrgId::new(), 1);
        assert!(CustomerRepository::create(s, &c).await.is_err());
    });
    case!(make, "customers: update and delete", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let mut c = fixtures::customer(org.id, 1);
        CustomerRepository::create(s, &c).await.expect("create");
        c.tier = CustomerTier::Vip;
        c.phone = fixtures::phone(3);
        c.updated_at = fixtures::now();
        CustomerRepository::update(s, &c).await.expect("update");
        assert_eq!(
            CustomerRepository::get(s, org.id, c.id).await.expect("get"),
            c
        );
        CustomerRepository::delete(s, org.id, c.id)
            .await
            .expect("delete");
        assert!(matches!(
            CustomerRepository::get(s, org.id, c.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            CustomerRepository::delete(s, org.id, c.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            CustomerRepository::get(s, org.id, CustomerId::new()).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "customers: another org cannot read, list, update or delete",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            let c = fixtures::customer(a.id, 1);
            CustomerRepository::create(s, &c).await.expect("create");
            assert!(matches!(
                CustomerRepository::get(s, b.id, c.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(s.find_by_phone(b.id, &c.phone).await.expect("find"), None);
            assert!(
                CustomerRepository::list(s, b.id, PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            let mut hijack = c.clone();
            hijack.org_id = b.id;
            hijack.name = Some("Mallory".into());
            assert!(matches!(
                CustomerRepository::update(s, &hijack).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                CustomerRepository::delete(s, b.id, c.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(
                CustomerRepository::get(s, a.id, c.id)
                    .await
                    .expect("still there"),
                c
            );
        }
    );
    case!(
        make,
        "customers: keyset pages are complete, ordered and stable",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let mut ids = Vec::new();
            for n in 0..7 {
                let c = fixtures::customer(org.id, n);
                CustomerRepository::create(s, &c).await.expect("create");
                ids.push(c.id);
            }
            let mut seen = Vec::new();
            let mut request = PageRequest::first(3);
            loop {
                let page = CustomerRepository::list(s, org.id, request)
                    .await
                    .expect("list");
                assert!(page.items.len() <= 3);
                seen.extend(page.items.iter().map(|c| c.id));
                match page.next {
                    Some(next) => request = PageRequest::after(3, next),
                    None => break,
                }
            }
            assert_eq!(seen, ids, "every row once, in creation order");
            let newest = CustomerRepository::list(s, org.id, PageRequest::first(2).newest_first())
                .await
                .expect("list");
            assert_eq!(
                newest.items.iter().map(|c| c.id).collect::<Vec<_>>(),
                vec![ids[6], ids[5]]
            );
        }
    );
}
