//! Webhook throughput end to end: signed Telnyx `call.*` webhooks against a
//! release build of the API on Postgres — verify, dedupe, record in the
//! inbox, transition, persist, answer — and the latency of each delivery.
//!
//! `just bench-webhooks [--calls 2000] [--concurrency 16] [--pool P]` (`P`
//! database connections; two per core by default). Needs
//! `TEST_DATABASE_URL` (`eval "$(scripts/test-services.sh start)"`); creates
//! and drops its own database. Each call gets `call.initiated`,
//! `call.answered` and `call.hangup`, in order; calls run concurrently.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // percentile arithmetic on small counts

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use futures::StreamExt as _;
use iace_api::config::Config;
use iace_api::startup::{self, Application};
use iace_db::{DbConfig, SqlStore};
use iace_domain::call::{Call, CallDirection, CallStatus, NewCall};
use iace_domain::ports::CallRepository;
use iace_domain::{Email, PhoneNumber};
use secrecy::SecretString;

/// The allocator the server binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One signed webhook, ready to send.
struct Delivery {
    body: Vec<u8>,
    signature: String,
    timestamp: String,
}

struct Args {
    calls: usize,
    concurrency: usize,
    pool: u32,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        calls: 2_000,
        concurrency: 16,
        // Two connections per core: more backends than that only add
        // context switches on a machine the database shares (see
        // docs/performance.md for the sweep).
        pool: std::thread::available_parallelism()
            .map_or(4, |n| u32::try_from(n.get() * 2).unwrap_or(u32::MAX)),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--calls", Some(v)) => parsed.calls = v,
            ("--concurrency", Some(v)) => parsed.concurrency = v,
            ("--pool", Some(v)) => {
                parsed.pool = u32::try_from(v).map_err(|_| anyhow::anyhow!("--pool too large"))?;
            }
            _ => anyhow::bail!("usage: bench_webhooks [--calls N] [--concurrency C] [--pool P]"),
        }
    }
    Ok(parsed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn signed(key: &SigningKey, body: &[u8]) -> (String, String) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut message = format!("{ts}|").into_bytes();
    message.extend_from_slice(body);
    (STANDARD.encode(key.sign(&message).to_bytes()), ts)
}

fn event(event_type: &str, call: &Call, payload: serde_json::Value) -> Vec<u8> {
    let mut payload = payload;
    payload["call_control_id"] = serde_json::json!(call.provider_call_id);
    payload["client_state"] = serde_json::json!(STANDARD.encode(call.id.to_string()));
    serde_json::to_vec(&serde_json::json!({
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": uuid::Uuid::new_v4().to_string(),
            "occurred_at": chrono::Utc::now().to_rfc3339(),
            "payload": payload
        }
    }))
    .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db =
        iace_testkit::pg::TestDatabase::create(iace_migrations::DEFAULT_EMBEDDING_DIMENSION).await;
    let key = SigningKey::from_bytes(&[9u8; 32]);

    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse()?;
    config.database = DbConfig {
        max_connections: args.pool,
        ..DbConfig::default().with_url(db.url.clone())
    };
    config.auth.jwt_secret = Some(SecretString::from(
        "bench-secret-bench-secret-bench-secret-42",
    ));
    config.telnyx = Some(iace_telnyx::TelnyxConfig {
        api_key: SecretString::from("KEY_bench"),
        connection_id: "bench".into(),
        base_url: "http://127.0.0.1:9".into(),
        public_key: Some(STANDARD.encode(key.verifying_key().as_bytes())),
        ..iace_telnyx::TelnyxConfig::default()
    });
    let app = Application::build(config.clone()).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));

    // An organisation and its calls, created directly in the store.
    let store = SqlStore::connect(&config.database).await?;
    let state = startup::state(&config, store.clone())?;
    let org = state
        .auth
        .bootstrap_org(
            "Bench",
            Email::parse("bench@example.com")?,
            Some(&SecretString::from("bench-password-1")),
        )
        .await?
        .org;
    let from = PhoneNumber::parse("+14155550100")?;
    let to = PhoneNumber::parse("+442079460958")?;
    let mut calls = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let call = Call::new(
            NewCall {
                org_id: org.id,
                direction: CallDirection::Outbound,
                from: from.clone(),
                to: to.clone(),
                customer_id: None,
                persona_id: None,
                assignment: None,
                provider_call_id: Some(format!("v3:{}", uuid::Uuid::new_v4().simple())),
                provider_session_id: None,
            },
            chrono::Utc::now(),
        );
        store.create(&call).await?;
        calls.push(call);
    }
    // Signed up front (well within the 300 s tolerance): the client's
    // signing is not the server's work.
    let sequences: Vec<Vec<Delivery>> = calls
        .iter()
        .map(|call| {
            [
                event("call.initiated", call, serde_json::json!({"direction": "outgoing"})),
                event("call.answered", call, serde_json::json!({})),
                event(
                    "call.hangup",
                    call,
                    serde_json::json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
                ),
            ]
            .into_iter()
            .map(|body| {
                let (signature, timestamp) = signed(&key, &body);
                Delivery {
                    body,
                    signature,
                    timestamp,
                }
            })
            .collect()
        })
        .collect();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    // Warm-up: connections and the database pool.
    let (warm_sig, warm_ts) = signed(&key, b"{}");
    for _ in 0..args.concurrency {
        let _ = client
            .post(format!("{base}/webhooks/telnyx"))
            .header("telnyx-signature-ed25519", &warm_sig)
            .header("telnyx-timestamp", &warm_ts)
            .body("{}")
            .send()
            .await;
    }

    let url = format!("{base}/webhooks/telnyx");
    let started = Instant::now();
    let latencies: Vec<Vec<Duration>> = futures::stream::iter(sequences)
        .map(|sequence| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let mut out = Vec::with_capacity(sequence.len());
                for delivery in sequence {
                    let sent = Instant::now();
                    let response = client
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .header("telnyx-signature-ed25519", delivery.signature)
                        .header("telnyx-timestamp", delivery.timestamp)
                        .body(delivery.body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        Ok(r) => eprintln!("unexpected status {}", r.status()),
                        Err(err) => eprintln!("request failed: {err}"),
                    }
                    out.push(sent.elapsed());
                }
                out
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();

    let mut completed = 0;
    for call in &calls {
        if store.get(org.id, call.id).await?.status == CallStatus::Completed {
            completed += 1;
        }
    }
    let rate = all.len() as f64 / elapsed.as_secs_f64();
    println!(
        "Telnyx webhooks end to end (verify, dedupe, inbox, transition, persist), {} calls x 3 events, {} concurrent, {} database connections",
        args.calls, args.concurrency, args.pool
    );
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>10}",
        "webhooks/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    println!(
        "{rate:>10.0} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
        percentile(&all, 50.0).as_secs_f64() * 1e3,
        percentile(&all, 95.0).as_secs_f64() * 1e3,
        percentile(&all, 99.0).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!(
        "calls completed: {completed}/{} (target: >= 2000 webhooks/s, p99 < 20 ms)",
        calls.len()
    );
    drop(db);
    Ok(())
}
