//! The `Embedder` contract suite on [`GeminiEmbedder`] against a fake Gemini
//! speaking the documented wire format (wiremock; no network).

mod support;

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use iace_domain::ports::Embedder;
use iace_testkit::contracts;
use iace_testkit::contracts::embedder::EmbedderFixture;
use iace_testkit::contracts::provider_failure::Failure;
use wiremock::{MockServer, ResponseTemplate};

/// Starts one fake server per embedder and keeps them alive.
#[derive(Default)]
struct Fixture {
    servers: Mutex<Vec<MockServer>>,
}

impl Fixture {
    async fn server(&self) -> MockServer {
        MockServer::start().await
    }

    fn keep(&self, server: MockServer) {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(server);
    }

    fn embedder(&self, server: MockServer) -> Arc<dyn Embedder> {
        let embedder = support::embedder(&server);
        self.keep(server);
        Arc::new(embedder)
    }
}

#[async_trait]
impl EmbedderFixture for Fixture {
    async fn embedding(&self) -> Arc<dyn Embedder> {
        let server = self.server().await;
        support::mount_fake(&server, None).await;
        self.embedder(server)
    }

    async fn wrong_dimension(&self) -> Option<Arc<dyn Embedder>> {
        let server = self.server().await;
        support::mount_fake(&server, Some(3_072)).await;
        Some(self.embedder(server))
    }

    async fn failing(&self, failure: Failure) -> Option<Arc<dyn Embedder>> {
        let server = self.server().await;
        let template = match failure {
            Failure::RateLimited { retry_after_secs } => support::rate_limited(retry_after_secs),
            Failure::Unavailable => ResponseTemplate::new(503),
            Failure::Unauthorized => support::invalid_key(),
            Failure::Slow => support::slow(),
            Failure::Malformed => ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        };
        support::mount_template(&server, template).await;
        Some(self.embedder(server))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedder() {
    contracts::embedder::run(&Fixture::default()).await;
}
