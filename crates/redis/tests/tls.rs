//! `rediss://`: the adapter talks TLS to a Redis this test starts itself with
//! a freshly generated certificate, trusts it only through `tls_ca_file`, and
//! refuses a server it cannot verify.

use iace_domain::ports::{Cache, CacheKey, LimitScope, Quota, RateLimitKey, RateLimiter};
use iace_redis::{ConnectError, RedisConfig, RedisStore};
use iace_testkit::redis::{OwnRedis, free_port};

struct Certs {
    dir: std::path::PathBuf,
}

impl Certs {
    /// A self-signed certificate for `localhost`, written as PEM files.
    fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("iace-redis-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem())
            .expect("write key");
        Self { dir }
    }

    fn cert(&self) -> std::path::PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> std::path::PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(port: u16, ca: Option<std::path::PathBuf>) -> RedisConfig {
    RedisConfig {
        url: secrecy::SecretString::from(format!("rediss://localhost:{port}")),
        key_prefix: iace_testkit::redis::unique_prefix(),
        connect_timeout_ms: 2_000,
        tls_ca_file: ca,
        ..RedisConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_trusted_ca_works_and_an_unknown_server_is_refused() {
    let certs = Certs::generate();
    let server = OwnRedis::start_tls(free_port(), &certs.cert(), &certs.key()).await;

    let store = RedisStore::connect(&config(server.port, Some(certs.cert())))
        .await
        .expect("connect over TLS");
    store.ping().await.expect("ping over TLS");
    let key = RateLimitKey::org(iace_domain::OrgId::new(), LimitScope::Requests);
    let decision = store
        .check(&key, &Quota::per_minute(60, 2), 1)
        .await
        .expect("limit check over TLS");
    assert!(decision.allowed);
    assert_eq!(decision.remaining, 1);
    let cached = CacheKey::new(iace_domain::OrgId::new(), "tls", "k");
    store
        .set(&cached, b"v".to_vec(), std::time::Duration::from_secs(5))
        .await
        .expect("set");
    assert_eq!(store.get(&cached).await.expect("get"), Some(b"v".to_vec()));

    // The system's roots do not include our self-signed certificate.
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        RedisStore::connect(&config(server.port, None)),
    )
    .await
    .expect("refusal in time");
    assert!(
        matches!(refused, Err(ConnectError::Connect(_))),
        "{refused:?}"
    );

    // A CA file that holds no certificate is a configuration error.
    let bad = certs.dir.join("empty.pem");
    std::fs::write(&bad, "").expect("write");
    let err = RedisStore::connect(&config(server.port, Some(bad)))
        .await
        .expect_err("empty CA file");
    assert!(matches!(err, ConnectError::TlsCa { .. }), "{err:?}");
}
