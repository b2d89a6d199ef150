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

/// A `redis-server` a test starts, stops and restarts itself (to take Redis
/// away mid-test, or to serve TLS), on its own port. Killed on drop.
#[derive(Debug)]
pub struct OwnRedis {
    /// The port it listens on (TLS only, when started with [`OwnRedis::start_tls`]).
    pub port: u16,
    args: Vec<String>,
    child: std::process::Child,
}

impl OwnRedis {
    /// Starts a plain Redis on `port` (127.0.0.1), persisting nothing.
    pub async fn start(port: u16) -> Self {
        Self::spawn(port, vec!["--port".into(), port.to_string()]).await
    }

    /// Starts a Redis that speaks only TLS on `port`, with this certificate
    /// chain and key (PEM files); clients are not asked for certificates.
    pub async fn start_tls(port: u16, cert: &std::path::Path, key: &std::path::Path) -> Self {
        let args = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        Self::spawn(port, args).await
    }

    async fn spawn(port: u16, args: Vec<String>) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(&args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server must be installed for this test (apt-get install redis-server): {e}"
                )
            });
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "redis-server did not start on port {port}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self { port, args, child }
    }

    /// Kills the server (idempotent).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same settings (after [`stop`](Self::stop)).
    pub async fn restart(&mut self) {
        self.stop();
        *self = Self::spawn(self.port, self.args.clone()).await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
