//! The Redis-backed ports.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::{Pool, SubscriberClient};
use fred::prelude::TlsConnector;
use fred::prelude::{
    Builder, ClientLike, Config as FredConfig, Error as FredError, ErrorKind, EventInterface,
    Expiration, KeysInterface, PubsubInterface, ReconnectPolicy, SortedSetsInterface, Value,
};
use fred::types::scripts::Script;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use iace_domain::ports::{
    BusEvent, Cache, CacheKey, EventBus, EventDedupe, InfraError, Quota, RateDecision,
    RateLimitKey, RateLimiter, SlotLease, Topic,
};
use secrecy::ExposeSecret;

use crate::config::RedisConfig;

const BACKEND: &str = "redis";

/// GCRA, exactly as `iace_domain::ratelimit::check`, on the server's clock.
/// KEYS[1] the key; ARGV: interval ms, burst, cost, period ms.
/// Returns {allowed, remaining, reset_after_ms, retry_after_ms}.
const GCRA: &str = r"
local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local period = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
local capacity = t * burst
local new_tat = tat + cost * t
local allow_at = new_tat - capacity
if cost > burst or allow_at > now then
  local retry = period
  if cost <= burst then retry = allow_at - now end
  local remaining = math.floor(math.max(capacity - (tat - now), 0) / t)
  return {0, remaining, tat - now, math.max(retry, 1)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(new_tat - now, 1))
return {1, math.floor(math.max(capacity - (new_tat - now), 0) / t), new_tat - now, 0}
";

/// KEYS[1] the slot set; ARGV: max, lease ms, token. Returns 1 when taken.
const ACQUIRE: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local expires = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expires, ARGV[3])
local latest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], latest)
return 1
";

/// KEYS[1] the slot set; ARGV: lease ms, token. Returns 1 when renewed.
const RENEW: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then return 0 end
local expires = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[2])
local latest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], latest)
return 1
";

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] FredError),
    /// Redis did not answer.
    #[error("could not connect to Redis")]
    Connect(#[source] FredError),
    /// `tls_ca_file` could not be read or holds no usable certificate.
    #[error("could not load the Redis TLS CA file {path}")]
    TlsCa {
        /// The configured path.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A TLS connector trusting only the certificates in `path`.
fn tls_with_ca(path: &std::path::Path) -> Result<TlsConnector, ConnectError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let failed = |source: Box<dyn std::error::Error + Send + Sync>| ConnectError::TlsCa {
        path: path.to_owned(),
        source,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| failed(Box::new(e)))? {
        roots
            .add(cert.map_err(|e| failed(Box::new(e)))?)
            .map_err(|e| failed(Box::new(e)))?;
    }
    if roots.is_empty() {
        return Err(failed("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(Box::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config))
}

/// Rate limiter, cache and event bus over one Redis.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    subscriber: SubscriberClient,
    prefix: String,
    scripts: Arc<Scripts>,
}

/// The Lua scripts, sent by SHA-1 (`EVALSHA`) and loaded again on `NOSCRIPT`
/// (after a Redis restart or `SCRIPT FLUSH`).
struct Scripts {
    gcra: Script,
    acquire: Script,
    renew: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn infra(err: FredError) -> InfraError {
    match err.kind() {
        ErrorKind::Timeout => InfraError::Timeout { backend: BACKEND },
        _ => InfraError::Unavailable {
            backend: BACKEND,
            source: Box::new(err),
        },
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn int(value: Option<&Value>) -> u64 {
    value
        .and_then(Value::as_i64)
        .map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

impl RedisStore {
    /// Connects the pool and the subscriber.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect(config: &RedisConfig) -> Result<Self, ConnectError> {
        let mut fred_config =
            FredConfig::from_url(config.url.expose_secret()).map_err(ConnectError::InvalidUrl)?;
        if let (Some(tls), Some(ca)) = (fred_config.tls.as_mut(), &config.tls_ca_file) {
            tls.connector = tls_with_ca(ca)?;
        }
        let mut builder = Builder::from_config(fred_config);
        builder
            .with_performance_config(|p| {
                p.default_command_timeout = Duration::from_millis(config.command_timeout_ms);
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_millis(config.connect_timeout_ms);
                c.internal_command_timeout =
                    Duration::from_millis(config.command_timeout_ms.max(1_000));
                c.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                100,
                config.reconnect_max_delay_ms,
                2,
            ));
        let pool = builder
            .build_pool(config.pool_size.max(1))
            .map_err(ConnectError::Connect)?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(ConnectError::Connect)?;
        pool.init().await.map_err(ConnectError::Connect)?;
        subscriber.init().await.map_err(ConnectError::Connect)?;
        // Re-subscribe after a reconnection.
        let _resubscribe = subscriber.manage_subscriptions();
        Ok(Self {
            pool,
            subscriber,
            prefix: config.key_prefix.clone(),
            scripts: Arc::new(Scripts {
                gcra: Script::from_lua(GCRA),
                acquire: Script::from_lua(ACQUIRE),
                renew: Script::from_lua(RENEW),
            }),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn channel(&self, topic: Topic) -> String {
        match topic {
            Topic::Call(id) => format!("{}events:call:{id}", self.prefix),
            Topic::Org(id) => format!("{}events:org:{id}", self.prefix),
        }
    }

    /// Checks that Redis answers (readiness probes).
    ///
    /// # Errors
    /// [`InfraError`].
    pub async fn ping(&self) -> Result<(), InfraError> {
        let _: Value = self.pool.ping(None).await.map_err(infra)?;
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<RateDecision, InfraError> {
        let burst = quota.burst.max(1);
        let Some(interval) = quota.emission_interval() else {
            return Ok(RateDecision {
                allowed: false,
                limit: burst,
                remaining: 0,
                reset_after: quota.period,
                retry_after: Some(quota.period),
            });
        };
        let args = vec![
            millis(interval).to_string(),
            burst.to_string(),
            cost.to_string(),
            millis(quota.period).to_string(),
        ];
        let reply: Vec<Value> = self
            .scripts
            .gcra
            .evalsha_with_reload(self.pool.next(), vec![self.key(key.as_str())], args)
            .await
            .map_err(infra)?;
        let allowed = int(reply.first()) == 1;
        Ok(RateDecision {
            allowed,
            limit: burst,
            remaining: u32::try_from(int(reply.get(1))).unwrap_or(u32::MAX),
            reset_after: Duration::from_millis(int(reply.get(2))),
            retry_after: (!allowed).then(|| Duration::from_millis(int(reply.get(3)).max(1))),
        })
    }

    async fn acquire(
        &self,
        key: &RateLimitKey,
        max: u32,
        lease: Duration,
    ) -> Result<Option<SlotLease>, InfraError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let taken: i64 = self
            .scripts
            .acquire
            .evalsha_with_reload(
                self.pool.next(),
                vec![self.key(&format!("slots:{}", key.as_str()))],
                vec![max.to_string(), millis(lease).to_string(), token.clone()],
            )
            .await
            .map_err(infra)?;
        Ok((taken == 1).then(|| SlotLease {
            key: key.clone(),
            token,
        }))
    }

    async fn renew(&self, lease: &SlotLease, extend_by: Duration) -> Result<bool, InfraError> {
        let renewed: i64 = self
            .scripts
            .renew
            .evalsha_with_reload(
                self.pool.next(),
                vec![self.key(&format!("slots:{}", lease.key.as_str()))],
                vec![millis(extend_by).to_string(), lease.token.clone()],
            )
            .await
            .map_err(infra)?;
        Ok(renewed == 1)
    }

    async fn release(&self, lease: &SlotLease) -> Result<(), InfraError> {
        let _: i64 = self
            .pool
            .zrem(
                self.key(&format!("slots:{}", lease.key.as_str())),
                lease.token.clone(),
            )
            .await
            .map_err(infra)?;
        Ok(())
    }
}

#[async_trait]
impl Cache for RedisStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, InfraError> {
        let value: Option<Vec<u8>> = self.pool.get(self.key(key.as_str())).await.map_err(infra)?;
        Ok(value)
    }

    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), InfraError> {
        let _: Value = self
            .pool
            .set(
                self.key(key.as_str()),
                value,
                Some(Expiration::PX(millis(ttl))),
                None,
                false,
            )
            .await
            .map_err(infra)?;
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), InfraError> {
        let _: i64 = self.pool.del(self.key(key.as_str())).await.map_err(infra)?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for RedisStore {
    async fn publish(&self, event: &BusEvent) -> Result<(), InfraError> {
        let payload = serde_json::to_string(event).map_err(|e| InfraError::Serialization {
            source: Box::new(e),
        })?;
        for topic in event.topics() {
            let _: i64 = self
                .pool
                .next()
                .publish(self.channel(topic), payload.clone())
                .await
                .map_err(infra)?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: Topic) -> Result<BoxStream<'static, BusEvent>, InfraError> {
        let channel = self.channel(topic);
        // Listen before subscribing, so nothing published right after is missed.
        let receiver = self.subscriber.message_rx();
        self.subscriber
            .subscribe(channel.clone())
            .await
            .map_err(infra)?;
        let stream = futures::stream::unfold(receiver, move |mut receiver| {
            let channel = channel.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok(message) if *message.channel == *channel => {
                            let Some(text) = message.value.as_string() else {
                                continue;
                            };
                            match serde_json::from_str::<BusEvent>(&text) {
                                Ok(event) => return Some((event, receiver)),
                                Err(err) => {
                                    tracing::warn!(error = %err, "undecodable call event on the bus");
                                }
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(stream.boxed())
    }
}

#[async_trait]
impl EventDedupe for RedisStore {
    async fn first_seen(
        &self,
        provider: &str,
        event_id: &str,
        ttl: Duration,
    ) -> Result<bool, InfraError> {
        let key = self.key(&format!("seen:{provider}:{event_id}"));
        // SET NX: exactly one caller creates the key.
        let set: Option<String> = self
            .pool
            .set(
                key,
                1,
                Some(Expiration::PX(millis(ttl))),
                Some(fred::types::SetOptions::NX),
                false,
            )
            .await
            .map_err(infra)?;
        Ok(set.is_some())
    }

    async fn seen(&self, provider: &str, event_id: &str) -> Result<bool, InfraError> {
        let exists: i64 = self
            .pool
            .exists(self.key(&format!("seen:{provider}:{event_id}")))
            .await
            .map_err(infra)?;
        Ok(exists > 0)
    }

    async fn forget(&self, provider: &str, event_id: &str) -> Result<(), InfraError> {
        let _: i64 = self
            .pool
            .del(self.key(&format!("seen:{provider}:{event_id}")))
            .await
            .map_err(infra)?;
        Ok(())
    }
}
