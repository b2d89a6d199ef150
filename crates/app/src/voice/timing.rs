//! How long each stage of a reply took, measured in the call's own tasks:
//! from the caller's final words reaching the call to the reply's first
//! audio frame handed to the caller's stream.
//!
//! ```text
//!  final transcript ─end_of_turn─▶ reply started ─first_token─▶ model's first text
//!    ─first_audio─▶ first synthesised audio ─first_frame─▶ first frame out
//! ```
//!
//! `end_of_turn` holds the configured end-of-turn grace (turn-taking policy,
//! not work) and any wait for the turn's context; the provider stages hold
//! the providers' own latency. Each reply's figures are recorded as the
//! `iace_turn_stage_seconds{stage}` and `iace_turn_seconds` histograms, and
//! handed to a [`VoiceObserver`] when one is set (the voice benchmark).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// One reply's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnLatency {
    /// The caller's final words reaching the call → the reply started: the
    /// end-of-turn grace, plus any wait for the turn's context.
    pub end_of_turn: Duration,
    /// Reply started → the language model's first text.
    pub first_token: Duration,
    /// The model's first text → its first synthesised audio (the first
    /// chunk of text waits for a sentence to end).
    pub first_audio: Duration,
    /// First synthesised audio → the first frame handed to the caller's
    /// stream (pacing and queueing).
    pub first_frame: Duration,
}

impl TurnLatency {
    /// From the caller's final words to the first frame out.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.end_of_turn + self.first_token + self.first_audio + self.first_frame
    }
}

/// Receives the voice runtime's measurements. Called on the call's own
/// tasks: keep it quick (record, never wait).
pub trait VoiceObserver: Send + Sync {
    /// A reply's first audio frame went out.
    fn turn(&self, latency: &TurnLatency);
}

/// The stamps of one reply, filled in by the tasks that produce and play it.
pub(super) struct TurnStamps {
    heard: Instant,
    started: Instant,
    first_token: OnceLock<Instant>,
    first_audio: OnceLock<Instant>,
    observer: Option<Arc<dyn VoiceObserver>>,
}

impl std::fmt::Debug for TurnStamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnStamps")
            .field("heard", &self.heard)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl TurnStamps {
    /// A reply starting now, for words heard at `heard`.
    pub(super) fn start(heard: Instant, observer: Option<Arc<dyn VoiceObserver>>) -> Arc<Self> {
        Arc::new(Self {
            heard,
            started: Instant::now(),
            first_token: OnceLock::new(),
            first_audio: OnceLock::new(),
            observer,
        })
    }

    /// The model's text arrived (the first call counts).
    pub(super) fn text(&self) {
        let _ = self.first_token.set(Instant::now());
    }

    /// Synthesised audio arrived (the first call counts).
    pub(super) fn audio(&self) {
        let _ = self.first_audio.set(Instant::now());
    }

    /// The first frame went out: reports the reply's figures.
    pub(super) fn first_frame(&self) {
        let now = Instant::now();
        let token = self.first_token.get().copied().unwrap_or(self.started);
        let audio = self.first_audio.get().copied().unwrap_or(token);
        let latency = TurnLatency {
            end_of_turn: self.started.saturating_duration_since(self.heard),
            first_token: token.saturating_duration_since(self.started),
            first_audio: audio.saturating_duration_since(token),
            first_frame: now.saturating_duration_since(audio),
        };
        for (stage, took) in [
            ("end_of_turn", latency.end_of_turn),
            ("first_token", latency.first_token),
            ("first_audio", latency.first_audio),
            ("first_frame", latency.first_frame),
        ] {
            metrics::histogram!("iace_turn_stage_seconds", "stage" => stage)
                .record(took.as_secs_f64());
        }
        metrics::histogram!("iace_turn_seconds").record(latency.total().as_secs_f64());
        if let Some(observer) = &self.observer {
            observer.turn(&latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<TurnLatency>>);

    impl VoiceObserver for Collect {
        fn turn(&self, latency: &TurnLatency) {
            self.0.lock().expect("lock").push(*latency);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_stage_is_the_time_between_its_stamps() {
        let observer = Arc::new(Collect::default());
        let heard = Instant::now();
        tokio::time::advance(Duration::from_millis(200)).await;
        let stamps = TurnStamps::start(heard, Some(observer.clone()));
        tokio::time::advance(Duration::from_millis(30)).await;
        stamps.text();
        tokio::time::advance(Duration::from_millis(5)).await;
        stamps.text(); // later text does not move the stamp
        tokio::time::advance(Duration::from_millis(40)).await;
        stamps.audio();
        tokio::time::advance(Duration::from_millis(2)).await;
        stamps.first_frame();
        let seen = observer.0.lock().expect("lock").clone();
        let expected = TurnLatency {
            end_of_turn: Duration::from_millis(200),
            first_token: Duration::from_millis(30),
            first_audio: Duration::from_millis(45),
            first_frame: Duration::from_millis(2),
        };
        assert_eq!(seen, vec![expected]);
        assert_eq!(expected.total(), Duration::from_millis(277));
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_stamp_counts_as_no_time() {
        let observer = Arc::new(Collect::default());
        let stamps = TurnStamps::start(Instant::now(), Some(observer.clone()));
        tokio::time::advance(Duration::from_millis(7)).await;
        stamps.first_frame();
        let seen = observer.0.lock().expect("lock")[0];
        assert_eq!(seen.first_token, Duration::ZERO);
        assert_eq!(seen.first_audio, Duration::ZERO);
        assert_eq!(seen.first_frame, Duration::from_millis(7));
    }
}
