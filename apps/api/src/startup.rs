//! Wiring, in one place: adapters from configuration, the application state,
//! the listener (its bound port exposed for tests), graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use iace_app::agents::AgentService;
use iace_app::auth::{AuthService, JwtAlgorithm, ephemeral_secret};
use iace_app::billing::BillingService;
use iace_app::calls::CallService;
use iace_app::calls::VoicemailAction;
use iace_app::customers::CustomerService;
use iace_app::experiments::ExperimentService;
use iace_app::orgs::OrgService;
use iace_app::patterns::PatternService;
use iace_app::personas::PersonaService;
use iace_app::postcall::{PostCallConfig, PostCallService, PostCallStores};
use iace_app::voice::{MediaTokens, VoiceConfig, VoicePorts, VoiceService, VoiceStores};
use iace_app::webhooks::{InboxSettler, WebhookConfig, WebhookService};
use iace_db::SqlStore;
use iace_domain::escalation::EscalationPolicy;
use iace_domain::memory::MemoryConfig;
use iace_domain::ports::{Cache, Clock, EventBus, EventDedupe, RateLimiter, SystemClock};
use iace_local::bus::LocalEventBus;
use iace_local::cache::LocalCache;
use iace_local::dedupe::LocalEventDedupe;
use iace_local::limiter::LocalRateLimiter;
use iace_redis::RedisStore;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::limits::Limits;
use crate::http::{self, state::AppState};

/// A bound, ready-to-serve application.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    port: u16,
    shutdown_timeout: std::time::Duration,
    drain_timeout: std::time::Duration,
    webhooks: Arc<WebhookService>,
    state: AppState,
    settler: InboxSettler,
    worker_interval: std::time::Duration,
}

/// Builds every service over the store, with the in-process rate limiter.
///
/// # Errors
/// When the auth configuration is unusable.
pub fn state(config: &Config, store: SqlStore) -> anyhow::Result<AppState> {
    state_with(config, store, None)
}

/// Builds every service over the store, with limits shared through `redis`
/// when given (in-process otherwise).
///
/// # Errors
/// When the auth configuration is unusable.
pub fn state_with(
    config: &Config,
    store: SqlStore,
    redis: Option<RedisStore>,
) -> anyhow::Result<AppState> {
    let providers = crate::providers::build(config)?;
    state_with_providers(config, store, redis, providers)
}

/// [`state_with`] over providers built by the caller (benchmarks and tools
/// that wrap an adapter).
///
/// # Errors
/// When the auth configuration is unusable.
pub fn state_with_providers(
    config: &Config,
    store: SqlStore,
    redis: Option<RedisStore>,
    providers: crate::providers::Providers,
) -> anyhow::Result<AppState> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fallback = match (config.auth.jwt_algorithm, &config.auth.jwt_secret) {
        (JwtAlgorithm::Hs256, None) => {
            tracing::warn!(
                "auth.jwt_secret is not set: using a random secret; access tokens will not survive a restart"
            );
            Some(ephemeral_secret()?)
        }
        _ => None,
    };
    let auth = AuthService::new(
        &config.auth.to_auth_config(fallback.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        clock.clone(),
    )?;
    let agents = AgentService::new(Arc::new(store.clone()));
    // Call events reach every instance through Redis when configured, this
    // instance only otherwise.
    let bus: Arc<dyn EventBus> = match &redis {
        Some(redis) => Arc::new(redis.clone()),
        None => Arc::new(LocalEventBus::new(1_024)),
    };
    let calls = CallService::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        providers.telephony.clone(),
        clock.clone(),
    )
    .with_read_cache(std::time::Duration::from_millis(
        config.server.read_cache_ttl_ms,
    ))
    .with_bus(bus)
    .with_inbound(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        config.calls.media_base_url.clone(),
    )
    .with_voicemail(match &config.calls.voicemail_message {
        Some(message) => VoicemailAction::LeaveMessage {
            message: message.clone(),
        },
        None => VoicemailAction::HangUp,
    });
    let media_tokens = media_tokens(config, fallback.as_ref())?;
    let calls = Arc::new(calls.with_media_tokens(media_tokens.clone()));
    let voice = Arc::new(VoiceService::new(
        VoiceStores {
            calls: Arc::new(store.clone()),
            personas: Arc::new(store.clone()),
            customers: Arc::new(store.clone()),
            memories: Arc::new(store.clone()),
            patterns: Arc::new(store.clone()),
            embedder: providers.embedder.clone(),
            transcripts: Arc::new(store.clone()),
            inbox: Arc::new(store.clone()),
        },
        calls.clone(),
        VoicePorts {
            stt: providers.speech_to_text.clone(),
            tts: providers.text_to_speech.clone(),
            llm: providers.language_model.clone(),
            sentiment: providers.sentiment.clone(),
            observer: providers.voice_observer.clone(),
        },
        voice_config(config, &providers),
        media_tokens,
        Arc::new(
            EscalationPolicy::default()
                .compile()
                .map_err(|err| anyhow::anyhow!("the escalation policy: {err}"))?,
        ),
        MemoryConfig::default(),
        clock.clone(),
    ));
    let dedupe: Arc<dyn EventDedupe> = match &redis {
        Some(redis) => Arc::new(redis.clone()),
        None => Arc::new(LocalEventDedupe::new(Arc::new(SystemClock), 100_000)),
    };
    let webhooks = WebhookService::new(
        Arc::new(store.clone()),
        calls.clone(),
        clock.clone(),
        WebhookConfig::default(),
    )
    .with_dedupe(dedupe);
    let billing = Arc::new(BillingService::new(
        Arc::new(store.clone()),
        config
            .stripe
            .as_ref()
            .map(|s| s.prices.clone())
            .unwrap_or_default(),
    ));
    let post_call = Arc::new(PostCallService::new(
        PostCallStores {
            calls: Arc::new(store.clone()),
            transcripts: Arc::new(store.clone()),
            experiments: Arc::new(store.clone()),
            patterns: Arc::new(store.clone()),
            memories: Arc::new(store.clone()),
        },
        providers.embedder.clone(),
        providers.language_model.clone(),
        clock.clone(),
        PostCallConfig::default(),
    ));
    let webhooks = webhooks
        .with_billing(billing.clone())
        .with_post_call(post_call);
    let orgs = Arc::new(OrgService::new(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
    ));
    // Hot reads (a customer by phone and a persona on every inbound call) go
    // through the shared cache when Redis is configured, an in-process one
    // otherwise.
    let lookup_ttl = std::time::Duration::from_millis(config.server.lookup_cache_ttl_ms);
    let cache: Arc<dyn Cache> = match &redis {
        Some(redis) => Arc::new(redis.clone()),
        None => Arc::new(LocalCache::new(Arc::new(SystemClock), 10_000)),
    };
    let customers = CustomerService::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        clock.clone(),
        MemoryConfig::default(),
    )
    .with_cache(cache.clone(), lookup_ttl);
    let personas =
        PersonaService::new(Arc::new(store.clone()), clock.clone()).with_cache(cache, lookup_ttl);
    let experiments =
        ExperimentService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock);
    let patterns = PatternService::new(Arc::new(store.clone()), providers.embedder.clone());
    let limiter: Arc<dyn RateLimiter> = match &redis {
        Some(redis) => Arc::new(redis.clone()),
        None => Arc::new(LocalRateLimiter::new(Arc::new(SystemClock))),
    };
    let limits = Limits::new(limiter, Arc::new(store.clone()), config.limits.clone());
    Ok(AppState {
        auth: Arc::new(auth),
        customers: Arc::new(customers),
        agents: Arc::new(agents),
        personas: Arc::new(personas),
        experiments: Arc::new(experiments),
        patterns: Arc::new(patterns),
        calls,
        store,
        limits: Arc::new(limits),
        redis,
        providers,
        webhooks: Arc::new(webhooks),
        billing,
        orgs,
        voice,
        draining: Arc::default(),
        metrics: iace_telemetry::metrics::recorder()
            .inspect_err(
                |err| tracing::warn!(error = %err, "no metrics recorder; /metrics answers 503"),
            )
            .ok(),
    })
}

/// Media-stream tokens: signed with `calls.media_secret`, else with a key
/// derived from the JWT secret (the configured one, else this instance's
/// random one — then only this instance accepts its streams).
fn media_tokens(config: &Config, fallback: Option<&SecretString>) -> anyhow::Result<MediaTokens> {
    let ttl = std::time::Duration::from_secs(config.calls.media_token_ttl_s.max(1));
    if let Some(secret) = &config.calls.media_secret {
        anyhow::ensure!(
            secret.expose_secret().len() >= 32,
            "calls.media_secret must be at least 32 characters"
        );
        return Ok(MediaTokens::new(secret.expose_secret().as_bytes(), ttl));
    }
    let jwt = config.auth.jwt_secret.as_ref().or(fallback);
    let secret = match jwt {
        Some(secret) => secret.expose_secret().to_owned(),
        None => ephemeral_secret()?.expose_secret().to_owned(),
    };
    Ok(MediaTokens::derived_from(secret.as_bytes(), ttl))
}

/// The voice runtime's settings; with the text providers (the simulator's
/// text-as-audio) audio goes out unpaced, as it comes.
fn voice_config(config: &Config, providers: &crate::providers::Providers) -> VoiceConfig {
    let mut voice = config.voice.to_voice_config();
    if providers
        .chosen
        .iter()
        .any(|(port, adapter)| *port == "text_to_speech" && *adapter == "text")
    {
        voice.pacing.frame_bytes = 0;
    }
    voice
}

impl Application {
    /// Connects to the database (migrating when configured), builds the state
    /// and binds the listener.
    ///
    /// # Errors
    /// Database, configuration or bind failures.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let providers = crate::providers::build(&config)?;
        // Boxed: the providers make the future large for every caller's stack.
        Box::pin(Self::build_with_providers(config, providers)).await
    }

    /// [`build`](Self::build) over providers built by the caller.
    ///
    /// # Errors
    /// Database, configuration or bind failures.
    pub async fn build_with_providers(
        config: Config,
        providers: crate::providers::Providers,
    ) -> anyhow::Result<Self> {
        let store = SqlStore::connect(&config.database).await?;
        let redis = match &config.redis {
            Some(redis) => Some(RedisStore::connect(redis).await?),
            None => None,
        };
        let mut state = state_with_providers(&config, store, redis, providers)?;
        for (port, adapter) in &state.providers.chosen {
            tracing::info!(port, adapter, "provider");
        }
        // Processed webhook events are settled in batches, off the response
        // path (the settler runs with the server).
        let (webhooks, settler) = (*state.webhooks)
            .clone()
            .with_batched_settling(SETTLE_QUEUE);
        state.webhooks = Arc::new(webhooks);
        let webhooks = state.webhooks.clone();
        let router = http::router(state.clone(), &config.server);
        let listener = TcpListener::bind(config.server.bind).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router,
            port,
            shutdown_timeout: config.server.shutdown_timeout(),
            drain_timeout: config.server.drain_timeout(),
            webhooks,
            state,
            settler,
            worker_interval: std::time::Duration::from_millis(
                config.calls.worker_interval_ms.max(10),
            ),
        })
    }

    /// The services the server runs with (for in-process tools: the
    /// simulator, benchmarks).
    #[must_use]
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The bound port (useful with `bind = 127.0.0.1:0`).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives
    /// in-flight requests up to the shutdown timeout to finish.
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let timeout = self.shutdown_timeout;
        // The webhook worker: events not processed inline (or whose processing
        // failed) are claimed from the database and processed, on whichever
        // instance, after a restart too. It stops with the server.
        let worker = tokio::spawn(webhook_worker(self.webhooks.clone(), self.worker_interval));
        let _stop_worker = AbortOnDrop(worker);
        // The settler stops after the server: what the last requests queued
        // is still settled.
        let (stop_settler, settler_stopped) = tokio::sync::oneshot::channel::<()>();
        let settler = tokio::spawn(self.settler.run(async move {
            let _ = settler_stopped.await;
        }));
        let mut settler = AbortOnDrop(settler);
        // No Nagle: media frames (20 ms of audio, marks) must leave at once,
        // not wait for the peer's delayed acknowledgement.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        let (draining, voice, drain_timeout) = (
            self.state.draining.clone(),
            self.state.voice.clone(),
            self.drain_timeout,
        );
        let serve = axum::serve(listener, self.router).with_graceful_shutdown(async move {
            shutdown.await;
            drain(&draining, &voice, drain_timeout).await;
            let _ = tx.send(());
        });
        let mut serve = std::pin::pin!(serve.into_future());
        let served = tokio::select! {
            result = &mut serve => result,
            () = async {
                let _ = rx.await;
                tokio::time::sleep(timeout).await;
            } => {
                tracing::warn!(?timeout, "in-flight requests did not finish in time; stopping");
                Ok(())
            }
        };
        let _ = stop_settler.send(());
        if tokio::time::timeout(SETTLE_ON_SHUTDOWN, &mut settler.0)
            .await
            .is_err()
        {
            // Left pending: the worker of this or another instance settles them.
            tracing::warn!("queued webhook events were not settled before shutdown");
        }
        served
    }
}

/// The drain before stopping: readiness fails and new media streams are
/// refused (the load balancer sends new calls' streams elsewhere), while the
/// live calls go on — their webhooks still served — until they end or
/// `limit` passes.
async fn drain(
    draining: &std::sync::atomic::AtomicBool,
    voice: &iace_app::voice::VoiceService,
    limit: std::time::Duration,
) {
    draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    tracing::info!(live_calls = voice.live_calls(), ?limit, "draining");
    while voice.live_calls() > 0 && started.elapsed() < limit {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    match voice.live_calls() {
        0 => tracing::info!(took = ?started.elapsed(), "drained"),
        left => tracing::warn!(
            live_calls = left,
            "drain limit reached; stopping with calls live"
        ),
    }
}

/// Room for processed webhook events waiting to be settled; when it is full,
/// events are settled inline.
const SETTLE_QUEUE: usize = 4096;

/// How long shutdown waits for the queued events to be settled.
const SETTLE_ON_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(2);

/// Aborts the task when dropped (the worker stops with the server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Processes due webhook events every `interval` (sooner while there is a
/// backlog). Each round runs as its own task, so a panic in one round is
/// logged and the worker goes on.
async fn webhook_worker(webhooks: Arc<WebhookService>, interval: std::time::Duration) {
    const BATCH: u32 = 20;
    loop {
        let round = tokio::spawn({
            let webhooks = webhooks.clone();
            async move { webhooks.process_due(BATCH).await }
        })
        .await;
        match round {
            Ok(Ok(n)) if n == BATCH as usize => continue,
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "webhook worker could not claim events"),
            Err(err) => tracing::error!(error = %err, "a webhook worker round panicked"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
