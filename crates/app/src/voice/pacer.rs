//! Audio out: the agent's speeches, played one after another, paced to the
//! caller.
//!
//! Each speech arrives as a bounded stream of [`Piece`]s — audio, and a mark
//! after each chunk of text — produced by its synthesis task. The pacer plays
//! the speech at the front of its queue: audio is cut into frames and sent
//! no further ahead of real time than [`Pacing::lead_ms`], so a barge-in can
//! take back at most that much; marks are sent in line with the audio (the
//! telephony side echoes them when the caller has heard what came before).
//! A producer that runs ahead waits on its bounded stream (back-pressure)
//! instead of piling audio up in memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iace_domain::conversation::engine::SpeechId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::timing::TurnStamps;

/// What goes out to the caller's media stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOut {
    /// Audio (one frame, or a whole chunk when pacing is off).
    Audio(Bytes),
    /// A playback mark: echoed back once everything before it was played.
    Mark(String),
    /// Drop whatever audio is queued on the caller's side.
    Clear,
}

/// A piece of one speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// Audio to play.
    Audio(Bytes),
    /// The end of chunk `seq`'s audio.
    Mark(u32),
}

/// How audio is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Bytes per frame (160 for 20 ms of 8 kHz μ-law); `0` sends audio as it
    /// comes, unpaced (the text simulator's "audio").
    pub frame_bytes: usize,
    /// Playing time of one frame.
    pub frame_ms: u64,
    /// How far ahead of real time audio may be sent.
    pub lead_ms: u64,
    /// How long after its audio should have been played a mark that was
    /// not echoed is taken as played anyway (a telephony side that loses a
    /// mark must not stall the conversation); `0` waits for every echo.
    pub mark_timeout_ms: u64,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            frame_bytes: 160,
            frame_ms: 20,
            lead_ms: 100,
            mark_timeout_ms: 3_000,
        }
    }
}

/// The mark name for chunk `seq` of `speech` (`"<speech>.<seq>"`).
#[must_use]
pub fn mark_name(speech: SpeechId, seq: u32) -> String {
    format!("{speech}.{seq}")
}

/// Reads a mark name back.
#[must_use]
pub fn parse_mark(name: &str) -> Option<(SpeechId, u32)> {
    let (speech, seq) = name.split_once('.')?;
    Some((SpeechId(speech.parse().ok()?), seq.parse().ok()?))
}

/// What the call's task tells the pacer.
#[derive(Debug)]
pub(super) enum PacerCommand {
    /// Play this speech after the queued ones (`first`: before them, if
    /// nothing of theirs has been played yet).
    Enqueue {
        /// The speech.
        speech: SpeechId,
        /// Its pieces.
        pieces: mpsc::Receiver<Piece>,
        /// Ahead of the others (a filler line).
        first: bool,
        /// A reply's stage timings: its first frame completes them.
        stamps: Option<Arc<TurnStamps>>,
    },
    /// Stop playing this speech and drop the rest of it.
    Cancel(SpeechId),
    /// Send [`MediaOut::Clear`].
    Clear,
}

struct Queued {
    speech: SpeechId,
    pieces: mpsc::Receiver<Piece>,
    /// Audio of the current piece not yet sent.
    rest: Bytes,
    started: bool,
    stamps: Option<Arc<TurnStamps>>,
}

/// Runs until the command channel closes (the call ended) or the media side
/// goes away. Marks not echoed [`Pacing::mark_timeout_ms`] after their audio
/// should have been played are reported on `unechoed`.
pub(super) async fn run(
    pacing: Pacing,
    mut commands: mpsc::UnboundedReceiver<PacerCommand>,
    out: mpsc::Sender<MediaOut>,
    unechoed: mpsc::UnboundedSender<(SpeechId, u32)>,
) {
    let mut queue: VecDeque<Queued> = VecDeque::new();
    // When the audio sent so far will have been played.
    let mut played_by = Instant::now();
    loop {
        // Without a speech to play, wait for a command.
        let Some(front) = queue.front_mut() else {
            match commands.recv().await {
                Some(command) => apply(command, &mut queue, &out).await,
                None => return,
            }
            continue;
        };
        // Never more than `lead_ms` ahead of real time.
        let lead = Duration::from_millis(pacing.lead_ms);
        let now = Instant::now();
        if pacing.frame_bytes > 0 && played_by > now + lead {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => apply(command, &mut queue, &out).await,
                    None => return,
                },
                () = tokio::time::sleep_until(played_by - lead) => {}
            }
            continue;
        }
        // The next frame of the front speech.
        if front.rest.is_empty() {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => apply(command, &mut queue, &out).await,
                    None => return,
                },
                piece = front.pieces.recv() => match piece {
                    Some(Piece::Audio(audio)) => {
                        front.started = true;
                        front.rest = audio;
                    }
                    Some(Piece::Mark(seq)) => {
                        front.started = true;
                        let name = mark_name(front.speech, seq);
                        if out.send(MediaOut::Mark(name)).await.is_err() {
                            return;
                        }
                        if pacing.mark_timeout_ms > 0 {
                            let due = played_by.max(Instant::now())
                                + Duration::from_millis(pacing.mark_timeout_ms);
                            let (speech, unechoed) = (front.speech, unechoed.clone());
                            tokio::spawn(async move {
                                tokio::time::sleep_until(due).await;
                                let _ = unechoed.send((speech, seq));
                            });
                        }
                    }
                    None => {
                        queue.pop_front();
                    }
                },
            }
            continue;
        }
        let frame = if pacing.frame_bytes == 0 || front.rest.len() <= pacing.frame_bytes {
            std::mem::take(&mut front.rest)
        } else {
            front.rest.split_to(pacing.frame_bytes)
        };
        if pacing.frame_bytes > 0 {
            let frames = frame.len().div_ceil(pacing.frame_bytes) as u64;
            played_by = played_by.max(Instant::now())
                + Duration::from_millis(pacing.frame_ms.saturating_mul(frames));
        }
        if out.send(MediaOut::Audio(frame)).await.is_err() {
            return;
        }
        if let Some(stamps) = front.stamps.take() {
            stamps.first_frame();
        }
    }
}

async fn apply(command: PacerCommand, queue: &mut VecDeque<Queued>, out: &mpsc::Sender<MediaOut>) {
    match command {
        PacerCommand::Enqueue {
            speech,
            pieces,
            first,
            stamps,
        } => {
            let queued = Queued {
                speech,
                pieces,
                rest: Bytes::new(),
                started: false,
                stamps,
            };
            let front_playing = queue.front().is_some_and(|q| q.started);
            if first && !front_playing {
                queue.push_front(queued);
            } else if first {
                queue.insert(1, queued);
            } else {
                queue.push_back(queued);
            }
        }
        PacerCommand::Cancel(speech) => queue.retain(|q| q.speech != speech),
        PacerCommand::Clear => {
            let _ = out.send(MediaOut::Clear).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(pieces: Vec<Piece>) -> mpsc::Receiver<Piece> {
        let (tx, rx) = mpsc::channel(pieces.len().max(1));
        for piece in pieces {
            tx.try_send(piece).expect("room");
        }
        rx
    }

    async fn collect(out: &mut mpsc::Receiver<MediaOut>, n: usize) -> Vec<MediaOut> {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(out.recv().await.expect("more output"));
        }
        got
    }

    #[test]
    fn marks_round_trip() {
        assert_eq!(
            parse_mark(&mark_name(SpeechId(7), 3)),
            Some((SpeechId(7), 3))
        );
        assert_eq!(parse_mark("7"), None);
        assert_eq!(parse_mark("a.1"), None);
        assert_eq!(parse_mark("1.-2"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn speeches_play_in_order_in_frames_paced_to_real_time() {
        let (commands, rx) = mpsc::unbounded_channel();
        let (out_tx, mut out) = mpsc::channel(64);
        tokio::spawn(run(
            Pacing::default(),
            rx,
            out_tx,
            mpsc::unbounded_channel().0,
        ));
        let started = Instant::now();
        commands
            .send(PacerCommand::Enqueue {
                speech: SpeechId(0),
                pieces: speech(vec![
                    Piece::Audio(Bytes::from(vec![1u8; 1600])),
                    Piece::Mark(0),
                ]),
                first: false,
                stamps: None,
            })
            .expect("send");
        commands
            .send(PacerCommand::Enqueue {
                speech: SpeechId(1),
                pieces: speech(vec![
                    Piece::Audio(Bytes::from(vec![2u8; 160])),
                    Piece::Mark(0),
                ]),
                first: false,
                stamps: None,
            })
            .expect("send");
        let got = collect(&mut out, 13).await;
        let frames: Vec<usize> = got
            .iter()
            .filter_map(|m| match m {
                MediaOut::Audio(a) => Some(a.len()),
                _ => None,
            })
            .collect();
        assert_eq!(
            frames,
            vec![160; 11],
            "ten frames of the first, one of the second"
        );
        assert_eq!(got[10], MediaOut::Mark("0.0".into()));
        assert_eq!(got[12], MediaOut::Mark("1.0".into()));
        // 11 frames = 220 ms of audio, sent at most 100 ms ahead.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(100) && elapsed <= Duration::from_millis(140),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_speech_stops_mid_way_and_a_filler_goes_first() {
        let (commands, rx) = mpsc::unbounded_channel();
        let (out_tx, mut out) = mpsc::channel(64);
        tokio::spawn(run(
            Pacing::default(),
            rx,
            out_tx,
            mpsc::unbounded_channel().0,
        ));
        let (reply_tx, reply_rx) = mpsc::channel(4);
        commands
            .send(PacerCommand::Enqueue {
                speech: SpeechId(3),
                pieces: reply_rx,
                first: false,
                stamps: None,
            })
            .expect("send");
        // A filler arrives before the reply has any audio: it plays first.
        commands
            .send(PacerCommand::Enqueue {
                speech: SpeechId(4),
                pieces: speech(vec![Piece::Audio(Bytes::from_static(b"x")), Piece::Mark(0)]),
                first: true,
                stamps: None,
            })
            .expect("send");
        assert_eq!(
            collect(&mut out, 2).await,
            vec![
                MediaOut::Audio(Bytes::from_static(b"x")),
                MediaOut::Mark("4.0".into())
            ]
        );
        reply_tx
            .send(Piece::Audio(Bytes::from(vec![5u8; 160 * 50])))
            .await
            .expect("audio");
        let first = collect(&mut out, 1).await;
        assert!(matches!(&first[0], MediaOut::Audio(a) if a.len() == 160));
        commands
            .send(PacerCommand::Cancel(SpeechId(3)))
            .expect("cancel");
        commands.send(PacerCommand::Clear).expect("clear");
        // At most the lead's worth of frames may already be out.
        let mut after = Vec::new();
        while let Some(m) = out.recv().await {
            let clear = m == MediaOut::Clear;
            after.push(m);
            if clear {
                break;
            }
        }
        assert!(after.len() <= 7, "{} frames after the cancel", after.len());
        drop(commands);
        assert!(
            out.recv().await.is_none(),
            "the pacer ends with its commands"
        );
    }

    #[tokio::test]
    async fn unpaced_audio_goes_out_whole() {
        let (commands, rx) = mpsc::unbounded_channel();
        let (out_tx, mut out) = mpsc::channel(64);
        let pacing = Pacing {
            frame_bytes: 0,
            ..Pacing::default()
        };
        tokio::spawn(run(pacing, rx, out_tx, mpsc::unbounded_channel().0));
        commands
            .send(PacerCommand::Enqueue {
                speech: SpeechId(0),
                pieces: speech(vec![
                    Piece::Audio(Bytes::from(vec![b'a'; 1000])),
                    Piece::Mark(0),
                ]),
                first: false,
                stamps: None,
            })
            .expect("send");
        let got = collect(&mut out, 2).await;
        assert!(matches!(&got[0], MediaOut::Audio(a) if a.len() == 1000));
    }
}
