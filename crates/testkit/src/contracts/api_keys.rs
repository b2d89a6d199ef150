//! `ApiKeyRepository` contract, tenancy included.

use std::future::Future;

use iace_domain::ports::{ApiKeyRepository, OrgRepository, PageRequest, StoreError};
use iace_domain::{ApiKeyId, OrgId};

use super::case;
use crate::{Harness, fixtures};

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: ApiKeyRepository + OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "api keys: create, find by hash, list", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let mut k = fixtures::api_key(org.id, "key-1");
        k.expires_at = Some(fixtures::now() + chrono::Duration::days(90));
        ApiKeyRepository::create(s, &k).await.expect("create");
        let got = ApiKeyRepository::find_by_hash(s, "key-1")
            .await
            .expect("find")
            .expect("found");
        assert_eq!(got, k);
        assert_eq!(got.key_hash.expose(), "key-1");
        assert_eq!(
            ApiKeyRepository::find_by_hash(s, "key-unknown")
                .await
                .expect("find"),
            None
        );
        let second = fixtures::api_key(org.id, "key-2");
        ApiKeyRepository::create(s, &second).await.expect("second");
        let page = ApiKeyRepository::list(s, org.id, PageRequest::default())
            .await
            .expect("list");
        assert_eq!(page.items, vec![k, second]);
        assert_eq!(page.next, None);
    });
    case!(
        make,
        "api keys: duplicate hash and unknown org are rejected",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            ApiKeyRepository::create(s, &fixtures::api_key(org.id, "dup"))
                .await
                .expect("first");
            let dup = ApiKeyRepository::create(s, &fixtures::api_key(org.id, "dup")).await;
            assert!(
                matches!(
                    dup,
                    Err(StoreError::AlreadyExists {
                        field: "key_hash",
                        ..
                    })
                ),
                "{dup:?}"
            );
            let orphan = fixtures::api_key(OrgId::new(), "orphan");
            assert!(ApiKeyRepository::create(s, &orphan).await.is_err());
            assert_eq!(
                ApiKeyRepository::find_by_hash(s, "orphan")
                    .await
                    .expect("find"),
                None
            );
        }
    );
    case!(
        make,
        "api keys: revoked keys are still found and listed, but unusable",
        |s| {
            let org = fixtures::org();
            OrgRepository::create(s, &org).await.expect("org");
            let k = fixtures::api_key(org.id, "key-1");
            ApiKeyRepository::create(s, &k).await.expect("create");
            let at = fixtures::now();
            s.revoke(org.id, k.id, at).await.expect("revoke");
            let got = ApiKeyRepository::find_by_hash(s, "key-1")
                .await
                .expect("find")
                .expect("a revoked key is still found");
            assert_eq!(got.revoked_at, Some(at));
            assert!(!got.is_usable(at));
            s.revoke(org.id, k.id, at + chrono::Duration::seconds(5))
                .await
                .expect("revoking again is harmless");
            let listed = ApiKeyRepository::list(s, org.id, PageRequest::default())
                .await
                .expect("list");
            assert_eq!(listed.items.len(), 1, "revoked keys are listed");
            assert_eq!(
                listed.items[0].revoked_at,
                Some(at),
                "the first revocation time is kept"
            );
            assert!(matches!(
                s.revoke(org.id, ApiKeyId::new(), at).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(make, "api keys: touch stamps the last use", |s| {
        let org = fixtures::org();
        OrgRepository::create(s, &org).await.expect("org");
        let k = fixtures::api_key(org.id, "key-1");
        let other = fixtures::api_key(org.id, "key-2");
        ApiKeyRepository::create(s, &k).await.expect("create");
        ApiKeyRepository::create(s, &other).await.expect("other");
        let at = fixtures::now();
        s.touch(k.id, at).await.expect("touch");
        let got = ApiKeyRepository::find_by_hash(s, "key-1")
            .await
            .expect("find")
            .expect("found");
        assert_eq!(got.last_used_at, Some(at));
        assert_eq!(
            ApiKeyRepository::find_by_hash(s, "key-2")
                .await
                .expect("find")
                .expect("other")
                .last_used_at,
            None
        );
        s.touch(ApiKeyId::new(), at)
            .await
            .expect("touching an unknown key is not an error");
    });
    case!(make, "api keys: another org cannot list or revoke", |s| {
        let (a, b) = (fixtures::org(), fixtures::org());
        OrgRepository::create(s, &a).await.expect("org a");
        OrgRepository::create(s, &b).await.expect("org b");
        let k = fixtures::api_key(a.id, "key-a");
        ApiKeyRepository::create(s, &k).await.expect("create");
        ApiKeyRepository::create(s, &fixtures::api_key(b.id, "key-b"))
            .await
            .expect("b's own key");
        let listed = ApiKeyRepository::list(s, b.id, PageRequest::default())
            .await
            .expect("list");
        assert_eq!(listed.items.len(), 1);
        assert!(listed.items.iter().all(|key| key.org_id == b.id));
        assert!(matches!(
            s.revoke(b.id, k.id, fixtures::now()).await,
            Err(StoreError::NotFound { .. })
        ));
        let got = ApiKeyRepository::find_by_hash(s, "key-a")
            .await
            .expect("find")
            .expect("found");
        assert_eq!(got, k, "untouched");
        assert!(got.is_usable(fixtures::now()));
    });
}
