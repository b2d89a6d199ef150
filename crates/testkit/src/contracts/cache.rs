//! `Cache` contract.

use std::future::Future;
use std::time::Duration;

use iace_domain::OrgId;
use iace_domain::ports::{Cache, CacheExt, CacheKey};

use super::case;
use crate::Harness;

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: Cache,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "cache: set, get, overwrite, delete", |s| {
        let k = CacheKey::new(OrgId::new(), "persona", "1");
        assert_eq!(s.get(&k).await.expect("get"), None);
        s.set(&k, b"one".to_vec(), Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(s.get(&k).await.expect("get"), Some(b"one".to_vec()));
        s.set(&k, b"two".to_vec(), Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(s.get(&k).await.expect("get"), Some(b"two".to_vec()));
        s.delete(&k).await.expect("delete");
        assert_eq!(s.get(&k).await.expect("get"), None);
        s.delete(&k).await.expect("deleting a missing key is fine");
    });
    case!(make, "cache: entries expire", |s| {
        let k = CacheKey::new(OrgId::new(), "customer_by_phone", "x");
        s.set(&k, b"v".to_vec(), Duration::from_millis(150))
            .await
            .expect("set");
        assert!(s.get(&k).await.expect("get").is_some());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(s.get(&k).await.expect("get"), None);
    });
    case!(
        make,
        "cache: organisations never share entries; JSON helpers",
        |s| {
            let (a, b) = (OrgId::new(), OrgId::new());
            s.set_json(
                &CacheKey::new(a, "persona", "1"),
                &vec![1u32, 2],
                Duration::from_secs(60),
            )
            .await
            .expect("set");
            assert_eq!(
                s.get_json::<Vec<u32>>(&CacheKey::new(b, "persona", "1"))
                    .await
                    .expect("get"),
                None
            );
            assert_eq!(
                s.get_json::<Vec<u32>>(&CacheKey::new(a, "persona", "1"))
                    .await
                    .expect("get"),
                Some(vec![1, 2])
            );
        }
    );
}
