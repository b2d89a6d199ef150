//! Redis for tests: `TEST_REDIS_URL`, else a `redis:7` container where a Docker
//! engine answers, else a failure that says how to start one. Each test keeps
//! to its own keyspace with [`unique_prefix`].

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage};
use tokio::sync::OnceCell;

const HOW_TO: &str = "no Redis for tests: set TEST_REDIS_URL (e.g. run \
`eval \"$(scripts/test-services.sh start)\"` from the repository root), or make a \
Docker engine available for testcontainers";

static CONTAINER: OnceCell<(String, ContainerAsync<GenericImage>)> = OnceCell::const_new();

/// The URL of a Redis the tests may use.
pub async fn url() -> String {
    // Test configuration is read here, once, by design.
    #[allow(clippy::disallowed_methods)]
    let configured = std::env::var("TEST_REDIS_URL").ok();
    if let Some(url) = configured.filter(|u| !u.trim().is_empty()) {
        return url;
    }
    #[allow(clippy::disallowed_methods)]
    let docker = std::env::var("DOCKER_HOST").is_ok()
        || std::path::Path::new("/var/run/docker.sock").exists();
    if !docker {
        panic!("{HOW_TO}");
    }
    let (url, _) = CONTAINER
        .get_or_init(|| async {
            let container = GenericImage::new("redis", "7")
                .with_exposed_port(6379.tcp())
                .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
                .start()
                .await
                .unwrap_or_else(|e| panic!("{HOW_TO} (starting the container failed: {e})"));
            let port = container
                .get_host_port_ipv4(6379)
                .await
                .unwrap_or_else(|e| panic!("{HOW_TO} (no port for the container: {e})"));
            (format!("redis://127.0.0.1:{port}"), container)
        })
        .await;
    url.clone()
}

/// A key prefix no other test uses (`iace-test:<uuid>:`).
pub fn unique_prefix() -> String {
    format!("iace-test:{}:", uuid::Uuid::new_v4().simple())
}
