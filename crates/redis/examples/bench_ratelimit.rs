//! Rate-limiter throughput against a local Redis, beside a plain Redis round
//! trip (PING) on the same run as the floor. Run with `just bench-ratelimit`
//! (`-- --seconds 10 --concurrency 32`). Reads `TEST_REDIS_URL`.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use iace_domain::OrgId;
use iace_domain::ports::{LimitScope, Quota, RateLimitKey, RateLimiter};
use iace_redis::{RedisConfig, RedisStore};

struct Figures {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure<F, Fut>(seconds: u64, concurrency: usize, op: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let op = Arc::clone(&op);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                op(worker).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Figures {
        ops_per_sec: all.len() as f64 / elapsed,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = arg("--seconds", 10);
    let concurrency = usize::try_from(arg("--concurrency", 32))?;
    #[allow(clippy::disallowed_methods)]
    let url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let config = RedisConfig {
        url: secrecy::SecretString::from(url),
        key_prefix: format!("iace-bench:{}:", uuid::Uuid::new_v4().simple()),
        pool_size: 8,
        ..RedisConfig::default()
    };
    let store = Arc::new(RedisStore::connect(&config).await?);

    let ping_store = Arc::clone(&store);
    let floor = measure(seconds, concurrency, move |_| {
        let store = Arc::clone(&ping_store);
        async move {
            let _ = store.ping().await;
        }
    })
    .await;

    // One key per worker at a quota it never exhausts, so every check runs the
    // whole script (read, compute, write).
    let keys: Arc<Vec<RateLimitKey>> = Arc::new(
        (0..concurrency)
            .map(|_| RateLimitKey::org(OrgId::new(), LimitScope::Requests))
            .collect(),
    );
    let quota = Quota::per_minute(u32::MAX / 2, u32::MAX / 2);
    let check_store = Arc::clone(&store);
    let limiter = measure(seconds, concurrency, move |worker| {
        let (store, keys) = (Arc::clone(&check_store), Arc::clone(&keys));
        async move {
            let _ = store.check(&keys[worker], &quota, 1).await;
        }
    })
    .await;

    println!("Redis rate limiter vs plain round trip, {concurrency} concurrent, {seconds} s each");
    println!("{:<28} {:>10} {:>9} {:>9}", "", "ops/s", "p50 ms", "p99 ms");
    for (name, f) in [
        ("PING (floor)", &floor),
        ("RateLimiter::check (GCRA)", &limiter),
    ] {
        println!(
            "{name:<28} {:>10.0} {:>9.3} {:>9.3}",
            f.ops_per_sec, f.p50_ms, f.p99_ms
        );
    }
    println!(
        "limiter / floor throughput: {:.2} (target >= 0.50)",
        limiter.ops_per_sec / floor.ops_per_sec
    );
    Ok(())
}
