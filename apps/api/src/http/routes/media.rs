//! `GET /v1/media/telnyx`: the call's bidirectional media stream.
//!
//! Telnyx connects here with the stream URL the call was answered (or
//! dialled) with. The stream is authenticated before the upgrade by the
//! call's media token — the `x-telnyx-streaming-auth-token` header, or the
//! `token` query parameter — which names the call and expires. Frames are
//! decoded with `iace_telnyx::media` (start, media, dtmf, mark, stop in;
//! media, mark, clear out) and the call runs on this instance's voice
//! runtime until it ends.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::{SinkExt as _, StreamExt as _};
use iace_app::voice::{MediaIn, MediaOut, OpenCall, VoiceService};
use iace_telnyx::media::{InboundFrame, MAX_FRAME_BYTES, OutboundFrame, Track, decode};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::limits::{STREAM_LEASE, StreamClaim};
use crate::http::state::AppState;

/// The header Telnyx sends the stream auth token in.
pub const AUTH_HEADER: &str = "x-telnyx-streaming-auth-token";

/// The socket's read buffer (bigger frames are still read, in pieces).
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// How often the server pings the media peer.
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A media stream with nothing at all from the peer this long is dead.
const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the last frames may take to leave after the call ended.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Room for frames between the socket and the call (about a second of
/// audio each way).
const FRAMES_BUFFERED: usize = 64;

/// The stream URL's parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MediaQuery {
    /// The call's media token (when the header does not carry it).
    pub token: Option<String>,
}

/// Opens a call's media stream (WebSocket).
#[utoipa::path(get, path = "/v1/media/telnyx", tag = "media",
    params(
        MediaQuery,
        ("x-telnyx-streaming-auth-token" = Option<String>, Header, description = "The call's media token"),
    ),
    responses(
        (status = 101, description = "switching to the WebSocket media stream"),
        (status = 400, description = "not a WebSocket upgrade", body = Problem),
        (status = 401, description = "missing, invalid or expired media token", body = Problem),
        (status = 404, description = "no such call", body = Problem),
        (status = 409, description = "the call has ended (`call_ended`), or already has a media stream on some instance (`stream_already_open`)", body = Problem),
        (status = 503, description = "this instance is draining (stopping): connect again, to another", body = Problem),
    ))]
pub async fn telnyx(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<MediaQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let token = headers
        .get(AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(query.token.as_deref());
    let unauthorized = |code: &'static str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            code,
            "Unauthorized",
            "the media stream's token is missing, invalid or expired",
        )
    };
    let Some(token) = token else {
        return Err(unauthorized("missing_media_token"));
    };
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "Service unavailable",
            "this instance is stopping and takes no new media streams",
        )
        .with_retry_after(1));
    }
    let call = state.voice.authenticate(token).map_err(|err| {
        tracing::warn!(reason = %err, "media stream refused");
        unauthorized(err.code())
    })?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "Bad request",
            "this endpoint speaks WebSocket only",
        )
    })?;
    let open = state.voice.open(call).await?;
    // One stream per call on this instance (above), and across instances.
    let claim = state.limits.claim_stream(call).await?;
    let voice = state.voice.clone();
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        // A frame is a few hundred bytes; the default 128 KiB read buffer is
        // zeroed on every read, which cost a fifth of the CPU at 1 000 calls.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| stream(voice, open, claim, socket)))
}

/// Runs the call on the socket until either ends.
async fn stream(
    voice: Arc<VoiceService>,
    open: OpenCall,
    mut claim: StreamClaim,
    socket: WebSocket,
) {
    let call_id = open.call.id;
    tracing::info!(call_id = %call_id, "media stream open");
    let (mut sink, mut frames) = socket.split();
    let (to_call, media_in) = mpsc::channel::<MediaIn>(FRAMES_BUFFERED);
    let (media_out, mut from_call) = mpsc::channel::<MediaOut>(FRAMES_BUFFERED);
    let writer = tokio::spawn(async move {
        // Pings keep a quiet but healthy peer answering (its pongs count as
        // traffic for the reader's idle limit).
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let message = tokio::select! {
                out = from_call.recv() => match out {
                    Some(out) => Message::Text(match out {
                        MediaOut::Audio(audio) => OutboundFrame::Media(audio),
                        MediaOut::Mark(name) => OutboundFrame::Mark(name),
                        MediaOut::Clear => OutboundFrame::Clear,
                    }.encode().into()),
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Vec::new().into()),
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let reader = async move {
        loop {
            // A peer that went away without closing (a dead network) sends
            // nothing, not even pongs: the call ends after IDLE_LIMIT.
            let Ok(next) = tokio::time::timeout(IDLE_LIMIT, frames.next()).await else {
                tracing::warn!(call_id = %call_id, "media stream idle; closing");
                break;
            };
            let Some(message) = next else { break };
            let text = match message {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let media = match decode(&text) {
                Ok(InboundFrame::Media(chunk)) if chunk.track == Track::Inbound => {
                    MediaIn::Audio(chunk.payload)
                }
                Ok(InboundFrame::Dtmf { digit }) => MediaIn::Dtmf(digit),
                Ok(InboundFrame::Mark { name }) => MediaIn::Mark(name),
                Ok(InboundFrame::Stop) => break,
                Ok(InboundFrame::Start(start)) => {
                    if start.call_id.is_some_and(|id| id != call_id) {
                        tracing::warn!(call_id = %call_id, "the stream started for another call; closing");
                        break;
                    }
                    continue;
                }
                Ok(InboundFrame::Error { detail }) => {
                    tracing::warn!(call_id = %call_id, detail, "the provider reported a stream error");
                    continue;
                }
                Ok(_) => continue,
                Err(err) => {
                    tracing::debug!(call_id = %call_id, error = %err, "undecodable media frame skipped");
                    continue;
                }
            };
            if to_call.send(media).await.is_err() {
                return;
            }
        }
        let _ = to_call.send(MediaIn::Stop).await;
    };
    let run = voice.run(open, media_in, media_out);
    let mut run = std::pin::pin!(run);
    let mut reader = std::pin::pin!(reader);
    // The claim is renewed while the call runs, and released (dropped) when
    // the renewal stops.
    let renewal = tokio::spawn(async move {
        let mut every = tokio::time::interval(STREAM_LEASE / 3);
        every.tick().await;
        loop {
            every.tick().await;
            claim.renew().await;
        }
    });
    // The call may end first (transfer, hang-up): then stop reading.
    let report = tokio::select! {
        report = &mut run => report,
        () = &mut reader => run.await,
    };
    renewal.abort();
    // The last frames go out unless the peer stopped reading.
    let mut writer = writer;
    if tokio::time::timeout(WRITER_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    tracing::info!(
        call_id = %call_id,
        turns = report.turns.len(),
        replies = report.replies,
        escalation = ?report.escalation,
        "media stream closed"
    );
}

/// The media routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(telnyx))
}
