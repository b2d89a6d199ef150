//! Soak: the server, as its own process (release build, Postgres), under
//! simulated calls and API traffic for a long time, watched from outside.
//!
//! `just soak [--minutes 10] [--calls 40] [--call-seconds 20] [--rps 20]`.
//!
//! - **Calls:** `--calls` callers at once, each a media WebSocket speaking
//!   Telnyx's frames (50 a second, a caller line every 3 s, every mark
//!   echoed). A call lasts `--call-seconds`, then the caller hangs up and the
//!   next call starts: calls come and go for the whole run, and each one's
//!   post-call work (summary, memory, patterns) runs during it.
//! - **API traffic:** about `--rps` requests a second: customers created,
//!   read and listed, calls listed, `/v1/me`.
//! - **Watched** every `--sample-seconds`: the server's resident memory,
//!   open file descriptors and threads (`/proc`), and from its `/metrics`
//!   the tasks alive on its runtime, its database connections and its live
//!   calls.
//!
//! It prints one row per sample, then the trend of memory after the warm-up
//! (the first fifth of the run) as a least-squares slope, and compares the
//! idle server at the start with the idle server at the end. It fails (exit
//! code 1) when memory grows by more than the larger of 8 MiB and 10 % over
//! the measured window, or when descriptors (other than the pool's idle
//! database connections) or tasks are not back where they started once the
//! load stops, or the pool holds more connections than its maximum.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // figures for people

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt as _, StreamExt as _};
use iace_app::voice::MediaTokens;
use iace_db::{DbConfig, SqlStore};
use iace_domain::call::{Call, CallDirection, CallStatus, NewCall};
use iace_domain::ports::CallRepository;
use iace_domain::{OrgId, PhoneNumber};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "soak-secret-soak-secret-soak-secret-42";
const LINE: &str = "What time do you open tomorrow?";

struct Args {
    minutes: f64,
    calls: usize,
    call_seconds: u64,
    rps: u64,
    sample_seconds: u64,
    server: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        minutes: 10.0,
        calls: 40,
        call_seconds: 20,
        rps: 20,
        sample_seconds: 0,
        server: PathBuf::from("target/release/iace-api"),
    };
    let usage = "usage: soak [--minutes M] [--calls N] [--call-seconds S] [--rps R] [--sample-seconds S] [--server PATH]";
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().context(usage)?;
        match flag.as_str() {
            "--minutes" => parsed.minutes = value.parse().context(usage)?,
            "--calls" => parsed.calls = value.parse().context(usage)?,
            "--call-seconds" => parsed.call_seconds = value.parse::<u64>().context(usage)?.max(2),
            "--rps" => parsed.rps = value.parse().context(usage)?,
            "--sample-seconds" => parsed.sample_seconds = value.parse().context(usage)?,
            "--server" => parsed.server = PathBuf::from(value),
            _ => anyhow::bail!(usage),
        }
    }
    if parsed.sample_seconds == 0 {
        // About 40 rows, at least one every 5 s.
        parsed.sample_seconds = ((parsed.minutes * 60.0 / 40.0) as u64).max(5);
    }
    Ok(parsed)
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    call_errors: AtomicU64,
    replies: AtomicU64,
    requests: AtomicU64,
    request_errors: AtomicU64,
}

/// The server process, stopped when dropped (also when the soak fails).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One reading of the server.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    tasks: f64,
    db_connections: f64,
    live_calls: f64,
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_default()
}

fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn sample(client: &reqwest::Client, base: &str, pid: u32, started: Instant) -> Sample {
    let metrics = match client.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    Sample {
        at_s: started.elapsed().as_secs_f64(),
        rss_kib: proc_status(pid, "VmRSS:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
        threads: proc_status(pid, "Threads:"),
        tasks: series(&metrics, "iace_runtime_alive_tasks"),
        db_connections: series(&metrics, "iace_db_pool_connections"),
        live_calls: series(&metrics, "iace_live_calls"),
    }
}

fn frame(content: &[u8]) -> String {
    serde_json::json!({"event": "media", "media": {"track": "inbound", "payload": STANDARD.encode(content)}})
        .to_string()
}

/// One media stream, for `length`.
async fn one_call(url: &str, length: Duration, counters: &Counters) -> anyhow::Result<()> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::Text(
        serde_json::json!({"event": "start", "stream_id": "soak", "start": {}})
            .to_string()
            .into(),
    ))
    .await?;
    let (marks_tx, mut marks_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            if text.contains("\"mark\"")
                && let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text)
            {
                let name = frame["mark"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let _ = marks_tx.send(name);
            }
        }
    });
    let silence = [0xFF_u8; 160];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut next_line = started + Duration::from_millis(1_500);
    while started.elapsed() < length {
        tick.tick().await;
        while let Ok(name) = marks_rx.try_recv() {
            counters.replies.fetch_add(1, Ordering::Relaxed);
            let mark = serde_json::json!({"event": "mark", "mark": {"name": name}});
            sink.send(Message::Text(mark.to_string().into())).await?;
        }
        let text = if Instant::now() >= next_line {
            next_line += Duration::from_secs(3);
            frame(LINE.as_bytes())
        } else {
            frame(&silence)
        };
        sink.send(Message::Text(text.into())).await?;
    }
    sink.send(Message::Text(r#"{"event":"stop"}"#.into()))
        .await?;
    let _ = sink.close().await;
    reader.abort();
    Ok(())
}

/// Calls, one after another, until `until`.
async fn caller(
    store: Arc<SqlStore>,
    tokens: Arc<MediaTokens>,
    org: OrgId,
    ws: String,
    length: Duration,
    until: Instant,
    counters: Arc<Counters>,
) {
    while Instant::now() + length <= until {
        let result = async {
            let mut call = Call::new(
                NewCall {
                    org_id: org,
                    direction: CallDirection::Inbound,
                    from: PhoneNumber::parse("+442079460958")?,
                    to: PhoneNumber::parse("+14155550100")?,
                    customer_id: None,
                    persona_id: None,
                    assignment: None,
                    provider_call_id: Some(format!("v3:{}", uuid::Uuid::new_v4().simple())),
                    provider_session_id: None,
                },
                chrono::Utc::now(),
            );
            call.status = CallStatus::InProgress;
            store.create(&call).await?;
            let token = tokens.issue(call.id, chrono::Utc::now());
            one_call(&format!("{ws}?token={token}"), length, &counters).await
        }
        .await;
        match result {
            Ok(()) => counters.calls.fetch_add(1, Ordering::Relaxed),
            Err(err) => {
                eprintln!("soak: a call failed: {err:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                counters.call_errors.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Operator traffic at about `rps` requests a second until `until`.
async fn operator(base: String, key: String, rps: u64, until: Instant, counters: Arc<Counters>) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let mut last_customer: Option<String> = None;
    while Instant::now() < until {
        tick.tick().await;
        n += 1;
        let request = match n % 5 {
            0 => client
                .post(format!("{base}/v1/customers"))
                .json(&serde_json::json!({
                    "name": format!("Soak {n}"),
                    "phone": format!("+1415{:07}", n % 10_000_000),
                })),
            1 => match &last_customer {
                Some(id) => client.get(format!("{base}/v1/customers/{id}")),
                None => client.get(format!("{base}/v1/me")),
            },
            2 => client.get(format!("{base}/v1/customers?limit=20")),
            3 => client.get(format!("{base}/v1/calls?limit=20")),
            _ => client.get(format!("{base}/v1/me")),
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        match request.bearer_auth(&key).send().await {
            Ok(response) if response.status().is_success() => {
                if n.is_multiple_of(5)
                    && let Ok(body) = response.json::<serde_json::Value>().await
                {
                    last_customer = body["id"].as_str().map(str::to_owned);
                }
            }
            Ok(response) => {
                counters.request_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: {} {}", response.status(), response.url().path());
            }
            Err(err) => {
                counters.request_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: request failed: {err}");
            }
        }
    }
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

fn row(label: &str, s: &Sample, counters: &Counters) {
    println!(
        "{label:>9} {:>8.1} {:>6} {:>7} {:>6.0} {:>8.0} {:>5.0} {:>7} {:>6} {:>8} {:>6}",
        s.rss_kib as f64 / 1024.0,
        s.fds,
        s.threads,
        s.tasks,
        s.db_connections,
        s.live_calls,
        counters.calls.load(Ordering::Relaxed),
        counters.replies.load(Ordering::Relaxed),
        counters.requests.load(Ordering::Relaxed),
        counters.call_errors.load(Ordering::Relaxed)
            + counters.request_errors.load(Ordering::Relaxed),
    );
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not become ready")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db =
        iace_testkit::pg::TestDatabase::create(iace_migrations::DEFAULT_EMBEDDING_DIMENSION).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("IACE_DATABASE__URL", db.url.clone()),
        ("IACE_DATABASE__MAX_CONNECTIONS", "8".to_owned()),
        ("IACE_AUTH__JWT_SECRET", SECRET.to_owned()),
        ("IACE_LOG__FILTER", "warn".to_owned()),
        ("IACE_VOICE__POST_CALL_DELAY_MS", "1000".to_owned()),
        (
            "IACE_LIMITS__FREE__REQUESTS_PER_MINUTE",
            "100000000".to_owned(),
        ),
        ("IACE_LIMITS__FREE__BURST", "100000000".to_owned()),
        ("IACE_LIMITS__FREE__LIVE_CALLS", "100000".to_owned()),
    ];
    let created = std::process::Command::new(&args.server)
        .args([
            "org",
            "create",
            "--name",
            "Soak",
            "--owner-email",
            "soak@example.com",
            "--owner-password",
            "soak-password-1",
        ])
        .envs(env.iter().cloned())
        .output()
        .with_context(|| format!("running {}", args.server.display()))?;
    anyhow::ensure!(
        created.status.success(),
        "org create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&created.stdout)?;
    let key = created["api_key"].as_str().context("api_key")?.to_owned();
    let org: OrgId = created["org_id"]
        .as_str()
        .or_else(|| created["org"]["id"].as_str())
        .context("the org's id")?
        .parse()
        .map_err(|_| anyhow::anyhow!("the org's id"))?;

    let server = Server(
        std::process::Command::new(&args.server)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id();
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await?;

    let store = Arc::new(
        SqlStore::connect(&DbConfig {
            max_connections: 4,
            migrate_on_connect: false,
            ..DbConfig::default().with_url(db.url.clone())
        })
        .await?,
    );
    let tokens = Arc::new(MediaTokens::derived_from(
        SECRET.as_bytes(),
        Duration::from_secs(3_600),
    ));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    println!(
        "Soak: {} min, {} callers ({} s calls, a line every 3 s), ~{} API requests/s, release server pid {pid} on Postgres",
        args.minutes, args.calls, args.call_seconds, args.rps
    );
    println!(
        "{:>9} {:>8} {:>6} {:>7} {:>6} {:>8} {:>5} {:>7} {:>6} {:>8} {:>6}",
        "t",
        "RSS MiB",
        "fds",
        "threads",
        "tasks",
        "db conns",
        "live",
        "calls",
        "marks",
        "requests",
        "errors"
    );
    let idle_start = sample(&client, &base, pid, started).await;
    row("idle", &idle_start, &counters);

    let run = Duration::from_secs_f64(args.minutes * 60.0);
    let until = started + run;
    let ws = format!("ws://127.0.0.1:{port}/v1/media/telnyx");
    let mut workers = Vec::new();
    for n in 0..args.calls {
        let (store, tokens, ws, counters) =
            (store.clone(), tokens.clone(), ws.clone(), counters.clone());
        let length = Duration::from_secs(args.call_seconds);
        workers.push(tokio::spawn(async move {
            // Staggered, so that calls start and end all the time.
            let stagger = length.mul_f64(n as f64 / args.calls.max(1) as f64);
            tokio::time::sleep(stagger).await;
            caller(store, tokens, org, ws, length, until, counters).await;
        }));
    }
    workers.push(tokio::spawn(operator(
        base.clone(),
        key,
        args.rps,
        until,
        counters.clone(),
    )));

    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.sample_seconds));
    tick.tick().await;
    while Instant::now() < until {
        tick.tick().await;
        let s = sample(&client, &base, pid, started).await;
        row(&format!("{:.0}s", s.at_s), &s, &counters);
        samples.push(s);
    }
    for worker in workers {
        let _ = worker.await;
    }
    // Post-call work and idle connections settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_end = sample(&client, &base, pid, started).await;
    row("idle", &idle_end, &counters);
    drop(server);

    let warm = run.as_secs_f64() / 5.0;
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= warm).collect();
    let points: Vec<(f64, f64)> = measured
        .iter()
        .map(|s| (s.at_s / 60.0, s.rss_kib as f64 / 1024.0))
        .collect();
    let per_minute = slope(&points);
    let window = points.last().map_or(0.0, |l| l.0) - points.first().map_or(0.0, |f| f.0);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len().max(1) as f64;
    let growth = per_minute * window;
    let allowed = (mean * 0.10).max(8.0);
    let tasks_slope = slope(
        &measured
            .iter()
            .map(|s| (s.at_s / 60.0, s.tasks))
            .collect::<Vec<_>>(),
    );
    let first = measured.first().copied().copied().unwrap_or_default();
    let last = measured.last().copied().copied().unwrap_or_default();
    println!();
    println!(
        "after the warm-up ({warm:.0} s): RSS {:.1} → {:.1} MiB, trend {per_minute:+.3} MiB/min ({growth:+.1} MiB over {window:.1} min; allowed {allowed:.1}); tasks trend {tasks_slope:+.2}/min",
        first.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
    );
    println!(
        "idle start → idle end: RSS {:.1} → {:.1} MiB, fds {} → {}, threads {} → {}, tasks {:.0} → {:.0}, db connections {:.0} → {:.0}",
        idle_start.rss_kib as f64 / 1024.0,
        idle_end.rss_kib as f64 / 1024.0,
        idle_start.fds,
        idle_end.fds,
        idle_start.threads,
        idle_end.threads,
        idle_start.tasks,
        idle_end.tasks,
        idle_start.db_connections,
        idle_end.db_connections,
    );
    println!(
        "calls {} ({} failed), marks echoed {}, API requests {} ({} failed)",
        counters.calls.load(Ordering::Relaxed),
        counters.call_errors.load(Ordering::Relaxed),
        counters.replies.load(Ordering::Relaxed),
        counters.requests.load(Ordering::Relaxed),
        counters.request_errors.load(Ordering::Relaxed),
    );
    let mut failures = Vec::new();
    if growth > allowed {
        failures.push(format!("memory grew {growth:.1} MiB after the warm-up"));
    }
    // The pool keeps idle database connections (up to its maximum) until
    // their idle timeout: those descriptors are not leaks.
    let pooled = |s: &Sample| s.fds.saturating_sub(s.db_connections as u64);
    if pooled(&idle_end) > pooled(&idle_start) + 4 {
        failures.push(format!(
            "descriptors other than the database's {} → {}",
            pooled(&idle_start),
            pooled(&idle_end)
        ));
    }
    if idle_end.tasks > idle_start.tasks + 4.0 {
        failures.push(format!("tasks {} → {}", idle_start.tasks, idle_end.tasks));
    }
    if idle_end.db_connections > 8.0 {
        failures.push(format!("{} database connections", idle_end.db_connections));
    }
    if counters.calls.load(Ordering::Relaxed) == 0 {
        failures.push("no call completed".to_owned());
    }
    if failures.is_empty() {
        println!("no growth trend after the warm-up; the idle server is back where it started");
        Ok(())
    } else {
        anyhow::bail!("soak failed: {}", failures.join("; "))
    }
}
