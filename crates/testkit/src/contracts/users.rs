//! `UserRepository` contract, tenancy included.

use std::future::Future;

use iace_domain::ports::{
    OrgRepository, PageRequest, RefreshTokenRepository, StoreError, UserRepository,
};
use iace_domain::{OrgId, Role, SecretHash, UserId};

use super::case;
use crate::{Harness, fixtures};

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: UserRepository + OrgRepository + RefreshTokenRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "users: create, get, find by e-mail", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let u = fixtures::user(org.id, 1, Role::Owner);
        UserRepository::create(s, &u).await.expect("create");
        let got = UserRepository::get(s, org.id, u.id).await.expect("get");
        assert_eq!(got, u);
        assert_eq!(
            got.password_hash.expose(),
            u.password_hash.expose(),
            "the hash round-trips"
        );
        // Sign-in needs no organisation; parsing lower-cases the address.
        assert_eq!(
            s.find_by_email(&fixtures::email("USER1@Example.com"))
                .await
                .expect("find"),
            Some(u.clone())
        );
        assert_eq!(
            s.find_by_email(&fixtures::email("nobody@example.com"))
                .await
                .expect("find"),
            None
        );
        assert!(matches!(
            UserRepository::get(s, org.id, UserId::new()).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "users: e-mail is unique across organisations; unknown org rejected",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            let u = fixtures::user(a.id, 1, Role::Admin);
            UserRepository::create(s, &u).await.expect("first");
            for org in [a.id, b.id] {
                let dup = UserRepository::create(s, &fixtures::user(org, 1, Role::Viewer)).await;
                assert!(
                    matches!(dup, Err(StoreError::AlreadyExists { field: "email", .. })),
                    "{dup:?}"
                );
            }
            let same_id = UserRepository::create(s, &u).await;
            assert!(
                matches!(same_id, Err(StoreError::AlreadyExists { .. })),
                "{same_id:?}"
            );
            let orphan = fixtures::user(OrgId::new(), 2, Role::Viewer);
            assert!(UserRepository::create(s, &orphan).await.is_err());
            assert_eq!(s.find_by_email(&orphan.email).await.expect("find"), None);
        }
    );
    case!(
        make,
        "users: set role, password hash and last sign-in",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let mut u = fixtures::user(org.id, 1, Role::Viewer);
            let other = fixtures::user(org.id, 2, Role::Viewer);
            UserRepository::create(s, &u).await.expect("create");
            UserRepository::create(s, &other)
                .await
                .expect("create other");
            let at = fixtures::now();
            s.set_role(org.id, u.id, Role::Admin).await.expect("role");
            s.set_password_hash(org.id, u.id, "$argon2id$new")
                .await
                .expect("hash");
            s.record_login(org.id, u.id, at).await.expect("login");
            u.role = Role::Admin;
            u.password_hash = SecretHash::new("$argon2id$new");
            u.last_login_at = Some(at);
            let got = UserRepository::get(s, org.id, u.id).await.expect("get");
            assert_eq!(got, u);
            assert_eq!(got.password_hash.expose(), "$argon2id$new");
            assert_eq!(
                UserRepository::get(s, org.id, other.id)
                    .await
                    .expect("get other"),
                other,
                "only the addressed user changes"
            );
            let missing = UserId::new();
            assert!(matches!(
                s.set_role(org.id, missing, Role::Owner).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.set_password_hash(org.id, missing, "x").await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.record_login(org.id, missing, at).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(make, "users: delete removes the refresh tokens too", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let u = fixtures::user(org.id, 1, Role::Member);
        let keep = fixtures::user(org.id, 2, Role::Member);
        UserRepository::create(s, &u).await.expect("create");
        UserRepository::create(s, &keep).await.expect("create keep");
        RefreshTokenRepository::create(s, &fixtures::refresh_token(u.id, None, "t-u"))
            .await
            .expect("token");
        RefreshTokenRepository::create(s, &fixtures::refresh_token(keep.id, None, "t-keep"))
            .await
            .expect("token keep");
        UserRepository::delete(s, org.id, u.id)
            .await
            .expect("delete");
        assert!(matches!(
            UserRepository::get(s, org.id, u.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.find_by_email(&u.email).await.expect("find"), None);
        assert_eq!(
            RefreshTokenRepository::find_by_hash(s, "t-u")
                .await
                .expect("find"),
            None,
            "the deleted user's tokens are gone"
        );
        assert!(
            RefreshTokenRepository::find_by_hash(s, "t-keep")
                .await
                .expect("find")
                .is_some(),
            "other users' tokens stay"
        );
        assert!(matches!(
            UserRepository::delete(s, org.id, u.id).await,
            Err(StoreError::NotFound { .. })
        ));
        // The e-mail is free again.
        UserRepository::create(s, &fixtures::user(org.id, 1, Role::Viewer))
            .await
            .expect("re-create with the same e-mail");
    });
    case!(
        make,
        "users: another org cannot read, list, change or delete",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            OrgRepository::create(s, &a).await.expect("org a");
            OrgRepository::create(s, &b).await.expect("org b");
            let u = fixtures::user(a.id, 1, Role::Viewer);
            UserRepository::create(s, &u).await.expect("create");
            RefreshTokenRepository::create(s, &fixtures::refresh_token(u.id, None, "t-u"))
                .await
                .expect("token");
            assert!(matches!(
                UserRepository::get(s, b.id, u.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(
                UserRepository::list(s, b.id, PageRequest::default())
                    .await
                    .expect("list")
                    .items
                    .is_empty()
            );
            assert!(matches!(
                s.set_role(b.id, u.id, Role::Owner).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.set_password_hash(b.id, u.id, "$argon2id$mallory").await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                s.record_login(b.id, u.id, fixtures::now()).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                UserRepository::delete(s, b.id, u.id).await,
                Err(StoreError::NotFound { .. })
            ));
            let got = UserRepository::get(s, a.id, u.id)
                .await
                .expect("still there");
            assert_eq!(got, u);
            assert_eq!(got.password_hash.expose(), u.password_hash.expose());
            assert!(
                RefreshTokenRepository::find_by_hash(s, "t-u")
                    .await
                    .expect("find")
                    .is_some(),
                "a refused delete removes no tokens"
            );
        }
    );
    case!(make, "users: keyset pages are complete and ordered", |s| {
        let (org, other) = (fixtures::org(), fixtures::org());
        OrgRepository::create(s, &org).await.expect("org");
        OrgRepository::create(s, &other).await.expect("other org");
        let mut ids = Vec::new();
        for n in 0..5 {
            let u = fixtures::user(org.id, n, Role::Viewer);
            UserRepository::create(s, &u).await.expect("create");
            ids.push(u.id);
        }
        UserRepository::create(s, &fixtures::user(other.id, 99, Role::Owner))
            .await
            .expect("other org's user");
        let mut seen = Vec::new();
        let mut request = PageRequest::first(2);
        loop {
            let page = UserRepository::list(s, org.id, request)
                .await
                .expect("list");
            assert!(page.items.len() <= 2);
            assert!(page.items.iter().all(|u| u.org_id == org.id));
            seen.extend(page.items.iter().map(|u| u.id));
            match page.next {
                Some(next) => request = PageRequest::after(2, next),
                None => break,
            }
        }
        assert_eq!(seen, ids, "every user once, in creation order");
    });
}
