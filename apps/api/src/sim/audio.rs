//! Audio mode: the caller speaks μ-law, as a phone line carries it.
//!
//! Every line of the script is synthesised up front with the configured
//! text-to-speech (in a voice other than the agent's) and played into the
//! media stream in real time: one 20 ms frame of 160 bytes every 20 ms, μ-law
//! silence between lines, as Telnyx streams a call. The next line starts once
//! the agent has spoken and then been quiet for a moment. What the agent
//! says comes back as μ-law frames; with `--record FILE` both sides are
//! written to a stereo μ-law WAV file (left: the caller, right: the agent)
//! on one timeline, so the call can be listened to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use iace_domain::audio::{MULAW_SILENCE, mulaw_to_linear};
use iace_domain::ports::{AudioFormat, SpeechRequest, TextToSpeech};
use iace_domain::{Language, Voice};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Socket;

/// One 20 ms frame of 8 kHz μ-law.
const FRAME_BYTES: usize = 160;
const FRAME: Duration = Duration::from_millis(20);
/// μ-law samples per millisecond at 8 kHz.
const SAMPLES_PER_MS: u128 = 8;
/// How long the agent is quiet before the caller says the next line.
const TURN_GAP: Duration = Duration::from_millis(800);
/// How long the caller waits for the agent to say anything at all.
const PATIENCE: Duration = Duration::from_secs(15);
/// The caller's voice (the agent's default is another Aura voice).
pub(super) const CALLER_VOICE: &str = "aura-2-orion-en";

/// Both sides of the call on one timeline (one byte per 8 kHz sample).
#[derive(Debug, Default)]
pub struct Recording {
    caller: Vec<u8>,
    agent: Vec<u8>,
}

impl Recording {
    /// The caller's frame sent at `sample`: after the caller's audio before
    /// it (a tick that fires a little early must not cut a frame).
    fn caller(&mut self, sample: usize, audio: &[u8]) {
        append_at(&mut self.caller, sample, audio);
    }

    /// The agent's audio, arriving at `sample`: it plays after whatever of
    /// the agent's is still playing (audio is sent a little ahead of time).
    fn agent(&mut self, sample: usize, audio: &[u8]) {
        append_at(&mut self.agent, sample, audio);
    }

    /// The call as a stereo 16-bit PCM WAV file at 8 kHz (the phone line's
    /// μ-law decoded, so that any player opens it): left the caller, right
    /// the agent.
    #[must_use]
    pub fn wav(&self) -> Vec<u8> {
        let frames = self.caller.len().max(self.agent.len());
        let data = frames * 4;
        let mut out = Vec::with_capacity(44 + data);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&u32_le(36 + data));
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // WAVE_FORMAT_PCM
        out.extend_from_slice(&2u16.to_le_bytes()); // channels
        out.extend_from_slice(&8_000u32.to_le_bytes()); // samples per second
        out.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
        out.extend_from_slice(&4u16.to_le_bytes()); // block align
        out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        out.extend_from_slice(b"data");
        out.extend_from_slice(&u32_le(data));
        let sample = |track: &[u8], i: usize| {
            mulaw_to_linear(track.get(i).copied().unwrap_or(MULAW_SILENCE)).to_le_bytes()
        };
        for i in 0..frames {
            out.extend_from_slice(&sample(&self.caller, i));
            out.extend_from_slice(&sample(&self.agent, i));
        }
        out
    }
}

fn u32_le(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// Writes `audio` at `at`, or right after the track's end when that is
/// later: silence fills a gap, nothing is ever overwritten or cut.
fn append_at(track: &mut Vec<u8>, at: usize, audio: &[u8]) {
    if track.len() < at {
        track.resize(at, MULAW_SILENCE);
    }
    track.extend_from_slice(audio);
}

/// Synthesises each line in the caller's voice.
///
/// # Errors
/// When the text-to-speech provider fails.
pub(super) async fn synthesise(
    tts: &dyn TextToSpeech,
    lines: &[String],
    language: &Language,
) -> anyhow::Result<Vec<Bytes>> {
    let mut spoken = Vec::with_capacity(lines.len());
    for line in lines {
        let request = SpeechRequest {
            text: line.clone(),
            voice: Voice {
                name: CALLER_VOICE.into(),
                speed: 1.0,
            },
            language: language.clone(),
            format: AudioFormat::TELEPHONY,
        };
        let mut stream = tts
            .synthesize(&request)
            .await
            .with_context(|| format!("synthesising the caller's line {line:?}"))?;
        let mut audio = Vec::new();
        while let Some(chunk) = stream.next().await {
            audio.extend_from_slice(&chunk.context("synthesising the caller's line")?);
        }
        spoken.push(Bytes::from(audio));
    }
    Ok(spoken)
}

/// What the media client saw of the agent.
#[derive(Debug, Default)]
struct Heard {
    recording: Recording,
    /// When the agent's audio last arrived.
    last_audio: Option<Instant>,
    /// Whether the agent spoke since the caller's last line.
    spoke: bool,
    /// Whether the server closed the stream.
    closed: bool,
}

fn sample(started: Instant) -> usize {
    usize::try_from(started.elapsed().as_millis() * SAMPLES_PER_MS).unwrap_or(usize::MAX)
}

/// Plays `lines` (their audio in `spoken`) into the stream, one after each of
/// the agent's answers; returns whether the stream is still open and the
/// recording.
///
/// # Errors
/// When the stream fails.
pub(super) async fn converse(
    socket: Socket,
    lines: Vec<String>,
    spoken: Vec<Bytes>,
) -> anyhow::Result<(bool, Recording)> {
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    let heard = Arc::new(Mutex::new(Heard::default()));
    let (marks_tx, mut marks) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = {
        let heard = heard.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match frame["event"].as_str() {
                    Some("media") => {
                        let audio = STANDARD
                            .decode(frame["media"]["payload"].as_str().unwrap_or_default())
                            .unwrap_or_default();
                        if let Ok(mut heard) = heard.lock() {
                            heard.recording.agent(sample(started), &audio);
                            heard.last_audio = Some(Instant::now());
                            heard.spoke = true;
                        }
                    }
                    // Telnyx echoes a mark once the audio before it played;
                    // audio comes at most a fraction of a second ahead.
                    Some("mark") => {
                        let _ = marks_tx.send(
                            frame["mark"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                    Some("clear") => println!("  agent  │ (stops: the caller spoke over it)"),
                    _ => {}
                }
            }
            if let Ok(mut heard) = heard.lock() {
                heard.closed = true;
            }
        })
    };

    let mut next = 0usize;
    let mut playing: Option<Bytes> = None;
    let mut waiting_since = Instant::now();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = loop {
        tick.tick().await;
        while let Ok(name) = marks.try_recv() {
            send(&mut sink, json!({"event": "mark", "mark": {"name": name}})).await?;
        }
        let (closed, spoke, quiet) = match heard.lock() {
            Ok(h) => (
                h.closed,
                h.spoke,
                h.last_audio.is_none_or(|at| at.elapsed() >= TURN_GAP),
            ),
            Err(_) => (true, false, true),
        };
        if closed {
            break false;
        }
        // The caller's turn: after the agent spoke and went quiet, or after
        // waiting long enough for it.
        let idle = playing.is_none()
            && ((spoke && quiet) || (!spoke && waiting_since.elapsed() >= PATIENCE));
        if idle {
            if next == lines.len() {
                break true;
            }
            println!("  caller ▶ says: {}", lines[next]);
            playing = Some(spoken[next].clone());
            next += 1;
            if let Ok(mut h) = heard.lock() {
                h.spoke = false;
            }
        }
        let mut frame = [MULAW_SILENCE; FRAME_BYTES];
        if let Some(audio) = playing.as_mut() {
            let take = audio.len().min(FRAME_BYTES);
            frame[..take].copy_from_slice(&audio.split_to(take));
            if audio.is_empty() {
                playing = None;
                waiting_since = Instant::now();
            }
        }
        if let Ok(mut h) = heard.lock() {
            h.recording.caller(sample(started), &frame);
        }
        send(
            &mut sink,
            json!({"event": "media", "media": {"track": "inbound", "payload": STANDARD.encode(frame)}}),
        )
        .await?;
    };
    if open {
        let _ = send(&mut sink, json!({"event": "stop"})).await;
    }
    // The last of the agent's audio, then the recording.
    tokio::time::sleep(Duration::from_millis(300)).await;
    reader.abort();
    let recording = match Arc::try_unwrap(heard) {
        Ok(heard) => heard.into_inner().map(|h| h.recording).unwrap_or_default(),
        Err(shared) => shared
            .lock()
            .map(|mut h| std::mem::take(&mut h.recording))
            .unwrap_or_default(),
    };
    Ok((open, recording))
}

async fn send(
    sink: &mut futures::stream::SplitSink<Socket, Message>,
    frame: Value,
) -> anyhow::Result<()> {
    sink.send(Message::Text(frame.to_string().into()))
        .await
        .context("the media stream closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_is_a_stereo_pcm_wav_on_one_timeline() {
        let mut recording = Recording::default();
        recording.caller(0, &[0x80, 0x00]);
        recording.agent(4, &[0xEF, 0xFE]);
        // Sent ahead of time: plays after the agent's audio before it.
        recording.agent(0, &[0x7F]);
        let wav = recording.wav();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([wav[20], wav[21]]), 1, "PCM");
        assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
        assert_eq!(
            u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
            8_000
        );
        assert_eq!(u16::from_le_bytes([wav[34], wav[35]]), 16, "16-bit");
        assert_eq!(&wav[36..40], b"data");
        let data = &wav[44..];
        assert_eq!(
            u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]) as usize,
            data.len()
        );
        assert_eq!(
            u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]) as usize,
            wav.len() - 8
        );
        let samples: Vec<i16> = data
            .chunks_exact(2)
            .map(|s| i16::from_le_bytes([s[0], s[1]]))
            .collect();
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(left, [32_124, -32_124, 0, 0, 0, 0, 0]);
        assert_eq!(right, [0, 0, 0, 0, 132, 8, 0]);
    }

    #[test]
    fn a_frame_stamped_a_little_early_is_not_cut() {
        let mut recording = Recording::default();
        recording.caller(0, b"abcd");
        recording.caller(2, b"XYZ");
        assert_eq!(recording.caller, b"abcdXYZ");
    }
}
