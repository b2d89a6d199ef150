//! Live calls under load, end to end through the media WebSocket, on a
//! release build against Postgres.
//!
//! `just bench-voice [--calls 200] [--seconds 20] [--turn-every-ms 3000]`.
//! Each simulated call is a WebSocket client speaking Telnyx's frames:
//! 50 inbound frames a second (silence, 160 bytes each) and, every few
//! seconds, a caller line; it echoes every mark as Telnyx does. The providers
//! are the local ones (instant: speech is text), so what is measured is the
//! server's own work:
//!
//! - **frame relay**: from a client sending an inbound frame to the
//!   speech-to-text session receiving it (the client stamps each frame; a
//!   wrapper around the speech-to-text provider reads the stamp), p50/p99/max,
//!   and frames lost (sent − received);
//! - **turn overhead**, measured in the server as the work defines it: from
//!   the caller's final transcript reaching the call to the reply's first
//!   audio frame leaving the call for the caller's stream, minus the
//!   configured end-of-turn grace (turn-taking policy, not work) — the local
//!   providers add no latency of their own — p50/p99, with its stages
//!   (end of turn beyond the grace, model's first text, first audio, first
//!   frame out); and, for reference, the same seen from the clients (a line
//!   sent → its first reply frame received, minus the grace), which adds
//!   the socket hops and the clients' own scheduling on the shared cores;
//! - **memory per call**: the process's resident memory with the calls live,
//!   minus before, divided by the calls (clients included: an overestimate).
//!
//! The clients run in the same process as the server, on the same two cores.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // percentile arithmetic on small counts

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use iace_api::config::Config;
use iace_api::startup::Application;
use iace_app::voice::{TurnLatency, VoiceObserver};
use iace_db::{DbConfig, SqlStore};
use iace_domain::call::{Call, CallDirection, NewCall};
use iace_domain::ports::{CallRepository, ProviderError, SpeechToText, SttConfig, SttSession};
use iace_domain::{Email, PhoneNumber};
use secrecy::SecretString;
use tokio_tungstenite::tungstenite::Message;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GRACE_MS: u64 = 200;
const FRAME_MS: u64 = 20;
const LINE: &str = "What time do you open tomorrow?";

/// The bench's clock: frames carry microseconds since it started.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_now() -> u64 {
    u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX)
}

struct Args {
    calls: usize,
    seconds: u64,
    turn_every_ms: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        calls: 200,
        seconds: 20,
        turn_every_ms: 3_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: Option<u64> = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--calls", Some(v)) => parsed.calls = usize::try_from(v)?,
            ("--seconds", Some(v)) => parsed.seconds = v,
            ("--turn-every-ms", Some(v)) => parsed.turn_every_ms = v.max(500),
            _ => anyhow::bail!("usage: bench_voice [--calls N] [--seconds S] [--turn-every-ms MS]"),
        }
    }
    Ok(parsed)
}

/// Frames the speech-to-text side received, and their relay times (µs).
#[derive(Default)]
struct Relay {
    received: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

/// Speech-to-text that reads the client's stamp off each frame, then hands
/// the rest to the local text provider.
struct Stamped {
    inner: Arc<dyn SpeechToText>,
    relay: Arc<Relay>,
}

#[async_trait]
impl SpeechToText for Stamped {
    async fn open(&self, config: &SttConfig) -> Result<SttSession, ProviderError> {
        let session = self.inner.open(config).await?;
        let relay = self.relay.clone();
        let audio = session.audio.with(move |frame: Bytes| {
            let rest = if frame.len() >= 8 {
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&frame[..8]);
                let sent = u64::from_be_bytes(stamp);
                let took = micros_now().saturating_sub(sent);
                relay.received.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut all) = relay.latencies.lock() {
                    all.push(u32::try_from(took).unwrap_or(u32::MAX));
                }
                frame.slice(8..)
            } else {
                frame
            };
            futures::future::ready(Ok::<_, ProviderError>(rest))
        });
        Ok(SttSession {
            audio: Box::pin(audio),
            events: session.events,
        })
    }
}

/// Every reply's stage timings, as the server measured them.
#[derive(Default)]
struct Turns(Mutex<Vec<TurnLatency>>);

impl VoiceObserver for Turns {
    fn turn(&self, latency: &TurnLatency) {
        if let Ok(mut all) = self.0.lock() {
            all.push(*latency);
        }
    }
}

fn frame(content: &[u8]) -> String {
    let mut payload = micros_now().to_be_bytes().to_vec();
    payload.extend_from_slice(content);
    serde_json::json!({"event": "media", "media": {"track": "inbound", "payload": STANDARD.encode(payload)}})
        .to_string()
}

#[derive(Default)]
struct CallerStats {
    sent: u64,
    turns: Vec<Duration>,
}

/// One simulated caller for `run_for`.
async fn caller(
    url: String,
    run_for: Duration,
    turn_every: Duration,
    offset: Duration,
) -> anyhow::Result<CallerStats> {
    // No Nagle, as Telnyx's media client sends frames as they come.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024);
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true).await?;
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::Text(
        serde_json::json!({"event": "start", "stream_id": "bench", "start": {}})
            .to_string()
            .into(),
    ))
    .await?;
    let awaiting: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let turns: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let (marks_tx, mut marks_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = {
        let (awaiting, turns) = (awaiting.clone(), turns.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                // Cheap checks first: most frames are audio.
                if text.contains("\"media\"") {
                    if let Some(sent) = awaiting.lock().ok().and_then(|mut a| a.take())
                        && let Ok(mut t) = turns.lock()
                    {
                        t.push(sent.elapsed());
                    }
                } else if text.contains("\"mark\"")
                    && let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text)
                {
                    let name = frame["mark"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = marks_tx.send(name);
                }
            }
        })
    };
    let silence = [b' '; 160];
    let mut stats = CallerStats::default();
    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut next_line = started + offset;
    while started.elapsed() < run_for {
        tick.tick().await;
        while let Ok(name) = marks_rx.try_recv() {
            sink.send(Message::Text(
                serde_json::json!({"event": "mark", "mark": {"name": name}})
                    .to_string()
                    .into(),
            ))
            .await?;
        }
        let now = Instant::now();
        let text = if now >= next_line {
            next_line = now + turn_every;
            if let Ok(mut a) = awaiting.lock() {
                *a = Some(now);
            }
            frame(LINE.as_bytes())
        } else {
            frame(&silence)
        };
        sink.send(Message::Text(text.into())).await?;
        stats.sent += 1;
    }
    // Audio stops, then the call: frames still on their way are not cut off.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = sink.send(Message::Text(r#"{"event":"stop"}"#.into())).await;
    // Let the last replies arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.abort();
    stats.turns = turns.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(stats)
}

fn percentile<T: Copy + Default + Ord>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let _ = epoch();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db =
        iace_testkit::pg::TestDatabase::create(iace_migrations::DEFAULT_EMBEDDING_DIMENSION).await;
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse()?;
    config.database = DbConfig {
        max_connections: 8,
        ..DbConfig::default().with_url(db.url.clone())
    };
    config.auth.jwt_secret = Some(SecretString::from(
        "bench-secret-bench-secret-bench-secret-42",
    ));
    config.voice.end_of_turn_grace_ms = GRACE_MS;
    config.voice.silence_reprompt_ms = 0;
    config.voice.filler_after_ms = 0;
    config.voice.post_call_delay_ms = 600_000; // after the bench

    let relay = Arc::new(Relay::default());
    let mut providers = iace_api::providers::build(&config)?;
    providers.speech_to_text = Arc::new(Stamped {
        inner: providers.speech_to_text.clone(),
        relay: relay.clone(),
    });
    let server_turns = Arc::new(Turns::default());
    providers.voice_observer = Some(server_turns.clone());
    // Pace audio out as on a real line, although the local speech is text.
    providers
        .chosen
        .retain(|(port, _)| *port != "text_to_speech");
    let app = Application::build_with_providers(config.clone(), providers).await?;
    let port = app.port();
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));

    let store = SqlStore::connect(&config.database).await?;
    let org = state
        .auth
        .bootstrap_org("Bench", Email::parse("bench@example.com")?, None)
        .await?
        .org;
    let mut urls = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let mut call = Call::new(
            NewCall {
                org_id: org.id,
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
        call.status = iace_domain::call::CallStatus::InProgress;
        store.create(&call).await?;
        let token = state.voice.issue_token(call.id);
        urls.push(format!(
            "ws://127.0.0.1:{port}/v1/media/telnyx?token={token}"
        ));
    }

    let before = rss_bytes();
    let run_for = Duration::from_secs(args.seconds);
    let turn_every = Duration::from_millis(args.turn_every_ms);
    let mut callers = Vec::with_capacity(args.calls);
    for (n, url) in urls.into_iter().enumerate() {
        // Lines spread over the period, so replies do not all coincide.
        let offset = Duration::from_millis(500 + (n as u64 * 7_919) % args.turn_every_ms);
        callers.push(tokio::spawn(caller(url, run_for, turn_every, offset)));
    }
    tokio::time::sleep(run_for / 2).await;
    let during = rss_bytes();
    let mut sent = 0;
    let mut turns = Vec::new();
    let mut failed = 0;
    for caller in callers {
        match caller.await {
            Ok(Ok(stats)) => {
                sent += stats.sent;
                turns.extend(stats.turns);
            }
            Ok(Err(err)) => {
                failed += 1;
                eprintln!("a caller failed: {err}");
            }
            Err(err) => {
                failed += 1;
                eprintln!("a caller panicked: {err}");
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = relay.received.load(Ordering::Relaxed);
    let mut relays = relay
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    relays.sort_unstable();
    let grace = Duration::from_millis(GRACE_MS);
    let mut overheads: Vec<Duration> = turns.iter().map(|t| t.saturating_sub(grace)).collect();
    overheads.sort_unstable();
    let measured = server_turns.0.lock().map(|t| t.clone()).unwrap_or_default();
    let stage = |f: &dyn Fn(&TurnLatency) -> Duration| {
        let mut all: Vec<Duration> = measured.iter().map(f).collect();
        all.sort_unstable();
        (
            percentile(&all, 50.0).as_secs_f64() * 1e3,
            percentile(&all, 99.0).as_secs_f64() * 1e3,
        )
    };
    let server = stage(&|t| t.total().saturating_sub(grace));
    let end_of_turn = stage(&|t| t.end_of_turn.saturating_sub(grace));
    let first_token = stage(&|t| t.first_token);
    let first_audio = stage(&|t| t.first_audio);
    let first_frame = stage(&|t| t.first_frame);

    println!(
        "Live calls over the media WebSocket, {} calls for {} s (50 frames/s each, a line every {} ms), local providers, Postgres",
        args.calls, args.seconds, args.turn_every_ms
    );
    println!(
        "frame relay  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms   frames sent {sent}, received {received}, lost {}",
        f64::from(percentile(&relays, 50.0)) / 1e3,
        f64::from(percentile(&relays, 99.0)) / 1e3,
        f64::from(relays.last().copied().unwrap_or_default()) / 1e3,
        sent.saturating_sub(received),
    );
    println!(
        "turn overhead in the server (final transcript → first reply frame out − {GRACE_MS} ms grace)  p50 {:.2} ms  p99 {:.2} ms  ({} turns)",
        server.0,
        server.1,
        measured.len(),
    );
    println!(
        "  stages p50/p99 ms: end of turn beyond the grace {:.2}/{:.2}, model's first text {:.2}/{:.2}, first audio {:.2}/{:.2}, first frame out {:.2}/{:.2}",
        end_of_turn.0,
        end_of_turn.1,
        first_token.0,
        first_token.1,
        first_audio.0,
        first_audio.1,
        first_frame.0,
        first_frame.1,
    );
    println!(
        "turn seen from the clients (line sent → first reply frame received − {GRACE_MS} ms grace)  p50 {:.2} ms  p99 {:.2} ms  ({} turns)",
        percentile(&overheads, 50.0).as_secs_f64() * 1e3,
        percentile(&overheads, 99.0).as_secs_f64() * 1e3,
        overheads.len(),
    );
    println!(
        "memory: {:.1} MiB before, {:.1} MiB with the calls live: {:.0} KiB per call (clients included); callers failed: {failed}",
        before as f64 / 1_048_576.0,
        during as f64 / 1_048_576.0,
        during.saturating_sub(before) as f64 / 1024.0 / args.calls.max(1) as f64,
    );
    println!(
        "(targets: turn overhead p99 < 5 ms; >= 1000 calls with frame relay p99 < 20 ms, no frame lost, < 1 MiB per call)"
    );
    drop(db);
    Ok(())
}
