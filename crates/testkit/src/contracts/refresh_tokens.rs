//! `RefreshTokenRepository` contract: rotation is atomic and a reused token is
//! detected, even when two rotations race.

use std::future::Future;

use iace_domain::ports::{OrgRepository, RefreshTokenRepository, StoreError, UserRepository};
use iace_domain::{RefreshTokenId, Role, User, UserId};

use super::case;
use crate::{Harness, fixtures};

/// A stored organisation with one stored user (`n` makes the e-mail unique).
async fn seed<S>(s: &S, n: u32) -> User
where
    S: UserRepository + OrgRepository,
{
    let org = fixtures::org();
    OrgRepository::create(s, &org).await.expect("org");
    let user = fixtures::user(org.id, n, Role::Member);
    UserRepository::create(s, &user).await.expect("user");
    user
}

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: RefreshTokenRepository + UserRepository + OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "refresh tokens: create and find by hash", |s| {
        let user = seed(s, 1).await;
        let t = fixtures::refresh_token(user.id, None, "hash-1");
        RefreshTokenRepository::create(s, &t).await.expect("create");
        let got = RefreshTokenRepository::find_by_hash(s, "hash-1")
            .await
            .expect("find")
            .expect("found");
        assert_eq!(got, t);
        assert_eq!(got.token_hash.expose(), "hash-1");
        assert_eq!(got.family_id, t.id, "a first token starts its family");
        assert_eq!(
            RefreshTokenRepository::find_by_hash(s, "hash-unknown")
                .await
                .expect("find"),
            None
        );
    });
    case!(
        make,
        "refresh tokens: duplicate hash and unknown user are rejected",
        |s| {
            let user = seed(s, 1).await;
            RefreshTokenRepository::create(s, &fixtures::refresh_token(user.id, None, "dup"))
                .await
                .expect("first");
            let dup =
                RefreshTokenRepository::create(s, &fixtures::refresh_token(user.id, None, "dup"))
                    .await;
            assert!(
                matches!(
                    dup,
                    Err(StoreError::AlreadyExists {
                        field: "token_hash",
                        ..
                    })
                ),
                "{dup:?}"
            );
            let orphan = fixtures::refresh_token(UserId::new(), None, "orphan");
            assert!(RefreshTokenRepository::create(s, &orphan).await.is_err());
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "orphan")
                    .await
                    .expect("find"),
                None
            );
        }
    );
    case!(
        make,
        "refresh tokens: rotate revokes the old, stores the new; reuse is a Conflict",
        |s| {
            let user = seed(s, 1).await;
            let first = fixtures::refresh_token(user.id, None, "gen-1");
            RefreshTokenRepository::create(s, &first)
                .await
                .expect("create");
            let second = fixtures::refresh_token(user.id, Some(first.family_id), "gen-2");
            let at = fixtures::now();
            s.rotate(first.id, &second, at).await.expect("rotate");
            let old = RefreshTokenRepository::find_by_hash(s, "gen-1")
                .await
                .expect("find")
                .expect("old kept");
            assert_eq!(old.revoked_at, Some(at));
            assert!(!old.is_usable(at));
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "gen-2")
                    .await
                    .expect("find"),
                Some(second.clone())
            );
            // The old token presented again: reuse.
            let third = fixtures::refresh_token(user.id, Some(first.family_id), "gen-3");
            let reuse = s.rotate(first.id, &third, fixtures::now()).await;
            assert!(
                matches!(reuse, Err(StoreError::Conflict { .. })),
                "{reuse:?}"
            );
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "gen-3")
                    .await
                    .expect("find"),
                None,
                "a refused rotation stores nothing"
            );
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "gen-1")
                    .await
                    .expect("find")
                    .expect("old")
                    .revoked_at,
                Some(at),
                "the first revocation time is kept"
            );
            // A token never issued cannot be rotated either.
            let stray = fixtures::refresh_token(user.id, None, "stray");
            assert!(matches!(
                s.rotate(RefreshTokenId::new(), &stray, fixtures::now())
                    .await,
                Err(StoreError::Conflict { .. })
            ));
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "stray")
                    .await
                    .expect("find"),
                None
            );
        }
    );
    case!(
        make,
        "refresh tokens: a failed insert leaves the old token live",
        |s| {
            let user = seed(s, 1).await;
            let taken = fixtures::refresh_token(user.id, None, "taken");
            RefreshTokenRepository::create(s, &taken)
                .await
                .expect("taken");
            let old = fixtures::refresh_token(user.id, None, "old");
            RefreshTokenRepository::create(s, &old).await.expect("old");
            // The new token's hash collides: the whole rotation rolls back.
            let clash = fixtures::refresh_token(user.id, Some(old.family_id), "taken");
            let result = s.rotate(old.id, &clash, fixtures::now()).await;
            assert!(
                matches!(result, Err(StoreError::AlreadyExists { .. })),
                "{result:?}"
            );
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "old")
                    .await
                    .expect("find")
                    .expect("old")
                    .revoked_at,
                None,
                "the revocation was rolled back"
            );
            let retry = fixtures::refresh_token(user.id, Some(old.family_id), "retry");
            s.rotate(old.id, &retry, fixtures::now())
                .await
                .expect("the old token still rotates");
        }
    );
    case!(
        make,
        "refresh tokens: of two concurrent rotations exactly one succeeds",
        |s| {
            let user = seed(s, 1).await;
            for round in 0..5 {
                let old = fixtures::refresh_token(user.id, None, &format!("race-{round}"));
                RefreshTokenRepository::create(s, &old).await.expect("old");
                let a =
                    fixtures::refresh_token(user.id, Some(old.family_id), &format!("a-{round}"));
                let b =
                    fixtures::refresh_token(user.id, Some(old.family_id), &format!("b-{round}"));
                let at = fixtures::now();
                let (ra, rb) = tokio::join!(s.rotate(old.id, &a, at), s.rotate(old.id, &b, at));
                let won = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
                assert_eq!(won, 1, "round {round}: {ra:?} / {rb:?}");
                let lost = if ra.is_ok() { rb } else { ra };
                assert!(
                    matches!(lost, Err(StoreError::Conflict { .. })),
                    "round {round}: {lost:?}"
                );
                let stored_a = RefreshTokenRepository::find_by_hash(s, a.token_hash.expose())
                    .await
                    .expect("find a");
                let stored_b = RefreshTokenRepository::find_by_hash(s, b.token_hash.expose())
                    .await
                    .expect("find b");
                assert_eq!(
                    usize::from(stored_a.is_some()) + usize::from(stored_b.is_some()),
                    1,
                    "round {round}: exactly one successor is stored"
                );
                let old_now = RefreshTokenRepository::find_by_hash(s, old.token_hash.expose())
                    .await
                    .expect("find old")
                    .expect("old");
                assert_eq!(old_now.revoked_at, Some(at));
            }
        }
    );
    case!(
        make,
        "refresh tokens: revoke a family, counting only live tokens",
        |s| {
            let user = seed(s, 1).await;
            let first = fixtures::refresh_token(user.id, None, "f-1");
            RefreshTokenRepository::create(s, &first)
                .await
                .expect("first");
            let second = fixtures::refresh_token(user.id, Some(first.family_id), "f-2");
            s.rotate(first.id, &second, fixtures::now())
                .await
                .expect("rotate");
            let sibling = fixtures::refresh_token(user.id, Some(first.family_id), "f-3");
            RefreshTokenRepository::create(s, &sibling)
                .await
                .expect("sibling");
            let other_family = fixtures::refresh_token(user.id, None, "other");
            RefreshTokenRepository::create(s, &other_family)
                .await
                .expect("other family");
            let at = fixtures::now();
            assert_eq!(
                s.revoke_family(first.family_id, at).await.expect("revoke"),
                2,
                "the rotated token was no longer live"
            );
            for hash in ["f-2", "f-3"] {
                let t = RefreshTokenRepository::find_by_hash(s, hash)
                    .await
                    .expect("find")
                    .expect("kept");
                assert_eq!(t.revoked_at, Some(at), "{hash}");
            }
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "other")
                    .await
                    .expect("find")
                    .expect("other")
                    .revoked_at,
                None,
                "other families untouched"
            );
            assert_eq!(
                s.revoke_family(first.family_id, fixtures::now())
                    .await
                    .expect("again"),
                0
            );
            assert_eq!(
                s.revoke_family(RefreshTokenId::new(), fixtures::now())
                    .await
                    .expect("unknown family"),
                0
            );
        }
    );
    case!(
        make,
        "refresh tokens: revoke a user's tokens, not another user's",
        |s| {
            let user = seed(s, 1).await;
            let other = seed(s, 2).await;
            for hash in ["u-1", "u-2", "u-3"] {
                RefreshTokenRepository::create(s, &fixtures::refresh_token(user.id, None, hash))
                    .await
                    .expect("token");
            }
            RefreshTokenRepository::create(s, &fixtures::refresh_token(other.id, None, "o-1"))
                .await
                .expect("other's token");
            let early = fixtures::now();
            let family = RefreshTokenRepository::find_by_hash(s, "u-1")
                .await
                .expect("find")
                .expect("u-1")
                .family_id;
            assert_eq!(s.revoke_family(family, early).await.expect("family"), 1);
            let at = fixtures::now();
            assert_eq!(s.revoke_user(user.id, at).await.expect("revoke"), 2);
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "u-1")
                    .await
                    .expect("find")
                    .expect("u-1")
                    .revoked_at,
                Some(early),
                "an earlier revocation is kept"
            );
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "u-3")
                    .await
                    .expect("find")
                    .expect("u-3")
                    .revoked_at,
                Some(at)
            );
            assert_eq!(
                RefreshTokenRepository::find_by_hash(s, "o-1")
                    .await
                    .expect("find")
                    .expect("o-1")
                    .revoked_at,
                None,
                "another user's session survives"
            );
            assert_eq!(
                s.revoke_user(user.id, fixtures::now())
                    .await
                    .expect("again"),
                0
            );
        }
    );
}
