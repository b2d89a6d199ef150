//! Opening Deepgram WebSockets: the one place that adds credentials and trace
//! headers, bounds the handshake in time, goes through the provider's circuit
//! breaker and maps handshake failures to [`ProviderError`].

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt as _;
use iace_domain::ports::ProviderError;
use iace_http::CircuitBreaker;
use iace_http::context;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::PROVIDER;

/// An open Deepgram WebSocket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens WebSockets to one Deepgram host.
#[derive(Clone)]
pub(crate) struct Connector {
    /// `wss://api.deepgram.com`, without a trailing slash.
    base: String,
    api_key: SecretString,
    timeout: Duration,
    breaker: Arc<CircuitBreaker>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(
        base: &str,
        api_key: SecretString,
        timeout: Duration,
        breaker: Arc<CircuitBreaker>,
    ) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            api_key,
            timeout,
            breaker,
        }
    }

    /// Opens `{base}{path_and_query}`.
    ///
    /// # Errors
    /// [`ProviderError::CircuitOpen`] without trying;
    /// [`ProviderError::Timeout`] when the handshake does not finish within
    /// the connect timeout; [`ProviderError::Unauthorized`] (401/403),
    /// [`ProviderError::RateLimited`] (429), [`ProviderError::Rejected`]
    /// (other 4xx), [`ProviderError::Unavailable`] (5xx, connection and TLS
    /// errors).
    pub(crate) async fn connect(&self, path_and_query: &str) -> Result<Socket, ProviderError> {
        let request = self.request(path_and_query)?;
        if !self.breaker.try_acquire() {
            return Err(ProviderError::CircuitOpen { provider: PROVIDER });
        }
        let permit = Permit {
            breaker: &self.breaker,
            settled: false,
        };
        let attempt = tokio_tungstenite::connect_async_with_config(request, None, true);
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.timeout, attempt).await;
        let path = path_and_query.split('?').next().unwrap_or_default();
        let operation = match path {
            "/v1/listen" => "listen_connect",
            "/v1/speak" => "speak_connect",
            _ => "connect",
        };
        let label = match &outcome {
            Ok(Ok(_)) => "ok",
            Err(_) => "timeout",
            Ok(Err(_)) => "handshake_error",
        };
        iace_http::record_operation(PROVIDER, operation, label, started.elapsed());
        match outcome {
            Ok(Ok((socket, _response))) => {
                permit.settle(Verdict::Up);
                Ok(socket)
            }
            Err(_elapsed) => {
                permit.settle(Verdict::Down);
                tracing::warn!(provider = PROVIDER, path, "WebSocket handshake timed out");
                Err(ProviderError::Timeout { provider: PROVIDER })
            }
            Ok(Err(err)) => {
                let (mapped, verdict) = map_handshake_error(err);
                permit.settle(verdict);
                tracing::warn!(
                    provider = PROVIDER,
                    path,
                    error = %mapped,
                    cause = ?std::error::Error::source(&mapped).map(ToString::to_string),
                    "WebSocket handshake failed"
                );
                Err(mapped)
            }
        }
    }

    /// The upgrade request: credentials, user agent, request id, trace.
    fn request(&self, path_and_query: &str) -> Result<Request, ProviderError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut request = url
            .into_client_request()
            .map_err(|err| ProviderError::Rejected {
                provider: PROVIDER,
                status: None,
                detail: format!("invalid WebSocket URL: {err}"),
            })?;
        let mut auth = HeaderValue::from_str(&format!("Token {}", self.api_key.expose_secret()))
            .map_err(|_| ProviderError::Rejected {
                provider: PROVIDER,
                status: None,
                detail: "the API key is not a valid header value".to_owned(),
            })?;
        auth.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(USER_AGENT, HeaderValue::from_static(iace_http::USER_AGENT));
        propagate(headers);
        Ok(request)
    }
}

/// Adds `x-request-id` and a `traceparent` ([`context::outbound`]), as
/// `iace-http` does for REST.
pub(crate) fn propagate(headers: &mut HeaderMap) {
    let (request_id, trace) = context::outbound();
    if let Some(id) = request_id.as_deref()
        && let Ok(value) = HeaderValue::from_str(id)
    {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&trace.to_string()) {
        headers.insert("traceparent", value);
    }
}

/// What a failed handshake says about Deepgram, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deepgram answered (a refusal is an answer): it is up.
    Up,
    /// Deepgram failed or could not be reached.
    Down,
    /// The attempt failed on our side (the URL, the request) before reaching
    /// Deepgram: it says nothing either way.
    Local,
}

/// Reports a handshake's outcome to the breaker exactly once; a handshake
/// abandoned midway (its future dropped) frees a half-open probe.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    settled: bool,
}

impl Permit<'_> {
    fn settle(mut self, verdict: Verdict) {
        self.settled = true;
        match verdict {
            Verdict::Up => self.breaker.on_success(),
            Verdict::Down => self.breaker.on_failure(),
            // Closing a half-open breaker needs an answer from Deepgram; an
            // error of ours only frees the probe for the next caller.
            Verdict::Local => self.breaker.on_abandoned(),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.on_abandoned();
        }
    }
}

/// A failed handshake as a [`ProviderError`], and what it says about the
/// provider (for the breaker).
pub(crate) fn map_handshake_error(err: WsError) -> (ProviderError, Verdict) {
    let provider = PROVIDER;
    match err {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            match status {
                401 | 403 => (ProviderError::Unauthorized { provider }, Verdict::Up),
                429 => (
                    ProviderError::RateLimited {
                        provider,
                        retry_after: retry_after(response.headers()),
                    },
                    Verdict::Up,
                ),
                500.. => (
                    ProviderError::Unavailable {
                        provider,
                        source: format!("handshake answered HTTP {status}").into(),
                    },
                    Verdict::Down,
                ),
                400..=499 => (
                    ProviderError::Rejected {
                        provider,
                        status: Some(status),
                        detail: error_detail(response.body().as_deref().unwrap_or_default()),
                    },
                    Verdict::Up,
                ),
                _ => (
                    ProviderError::InvalidResponse {
                        provider,
                        source: format!("handshake answered HTTP {status}").into(),
                    },
                    Verdict::Up,
                ),
            }
        }
        // Refused before any byte went out: our URL or request is wrong.
        WsError::Url(err) => (
            ProviderError::Rejected {
                provider,
                status: None,
                detail: format!("invalid WebSocket URL: {err}"),
            },
            Verdict::Local,
        ),
        WsError::HttpFormat(err) => (
            ProviderError::Rejected {
                provider,
                status: None,
                detail: format!("invalid WebSocket request: {err}"),
            },
            Verdict::Local,
        ),
        other => (
            ProviderError::Unavailable {
                provider,
                source: Box::new(other),
            },
            Verdict::Down,
        ),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3_600.0)))
}

/// Deepgram's explanation from a refused handshake (`err_msg` of its JSON
/// error body, else the text), at most 300 characters.
fn error_detail(body: &[u8]) -> String {
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let message = json.as_ref().and_then(|j| {
        ["/err_msg", "/message", "/description"]
            .into_iter()
            .find_map(|p| j.pointer(p).and_then(|v| v.as_str()))
    });
    let text = match message {
        Some(message) => message.to_owned(),
        None => String::from_utf8_lossy(body).trim().to_owned(),
    };
    text.chars().take(300).collect()
}

/// Sends `message`, failing when it is not written within `limit` (a
/// stalled connection is a lost one).
pub(crate) async fn send(
    socket: &mut Socket,
    message: Message,
    limit: Duration,
) -> Result<(), WsError> {
    match tokio::time::timeout(limit, socket.send(message)).await {
        Ok(result) => result,
        Err(_) => Err(WsError::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

/// A control message as a text frame.
pub(crate) fn json_frame<T: serde::Serialize>(value: &T) -> Message {
    // Serialising these plain enums cannot fail; an empty frame would be
    // ignored by Deepgram rather than crash the session.
    Message::text(serde_json::to_string(value).unwrap_or_default())
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::http::Response;

    fn refused(status: u16, headers: &[(&str, &str)], body: &str) -> WsError {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        WsError::Http(Box::new(
            builder
                .body(Some(body.as_bytes().to_vec()))
                .expect("response"),
        ))
    }

    #[test]
    fn handshake_statuses_map_to_provider_errors() {
        let (err, verdict) = map_handshake_error(refused(401, &[], ""));
        assert!(matches!(err, ProviderError::Unauthorized { .. }));
        assert_eq!(verdict, Verdict::Up);
        let (err, _) = map_handshake_error(refused(403, &[], ""));
        assert!(matches!(err, ProviderError::Unauthorized { .. }));
        let (err, verdict) = map_handshake_error(refused(429, &[("retry-after", "30")], ""));
        assert_eq!(verdict, Verdict::Up);
        assert!(matches!(
            err,
            ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
        let (err, verdict) = map_handshake_error(refused(503, &[], ""));
        assert!(matches!(err, ProviderError::Unavailable { .. }));
        assert_eq!(verdict, Verdict::Down);
        let (err, _) = map_handshake_error(refused(
            400,
            &[],
            r#"{"err_code":"INVALID_QUERY_PARAMETER","err_msg":"No such model/version/tier combination found."}"#,
        ));
        assert!(matches!(
            err,
            ProviderError::Rejected { status: Some(400), ref detail, .. }
                if detail == "No such model/version/tier combination found."
        ));
        let (err, verdict) =
            map_handshake_error(WsError::Io(std::io::ErrorKind::ConnectionRefused.into()));
        assert!(matches!(err, ProviderError::Unavailable { .. }));
        assert_eq!(verdict, Verdict::Down);
        let (err, verdict) = map_handshake_error(WsError::Url(
            tokio_tungstenite::tungstenite::error::UrlError::UnsupportedUrlScheme,
        ));
        assert!(matches!(err, ProviderError::Rejected { status: None, .. }));
        assert_eq!(verdict, Verdict::Local, "our error, not Deepgram's answer");
    }

    #[tokio::test]
    async fn an_error_of_ours_does_not_close_a_half_open_breaker() {
        let breaker = Arc::new(CircuitBreaker::new(
            PROVIDER,
            &iace_http::BreakerConfig {
                failure_threshold: 1,
                window_ms: 60_000,
                open_ms: 0,
            },
        ));
        breaker.on_failure();
        // No port and not ws/wss: refused before any connection is made.
        let connector = Connector::new(
            "http://127.0.0.1",
            SecretString::from("KEY"),
            Duration::from_secs(1),
            breaker.clone(),
        );
        assert!(
            connector.request("/v1/listen").is_ok(),
            "the request builds: the breaker is asked"
        );
        let err = connector
            .connect("/v1/listen")
            .await
            .expect_err("not a WebSocket URL");
        assert!(matches!(err, ProviderError::Rejected { .. }), "{err:?}");
        assert_eq!(
            breaker.state(),
            iace_http::BreakerState::HalfOpen,
            "still waiting for an answer from Deepgram"
        );
        assert!(
            breaker.try_acquire(),
            "the probe was freed for the next caller"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("en-US"), "en-US");
        assert_eq!(encode("Acme Corp & co"), "Acme%20Corp%20%26%20co");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn requests_carry_the_token_and_trace_headers() {
        let breaker = Arc::new(CircuitBreaker::new(
            PROVIDER,
            &iace_http::BreakerConfig::default(),
        ));
        let connector = Connector::new(
            "wss://api.deepgram.com/",
            SecretString::from("KEY"),
            Duration::from_secs(1),
            breaker,
        );
        let request = connector
            .request("/v1/listen?model=nova-3")
            .expect("request");
        assert_eq!(
            request.uri().to_string(),
            "wss://api.deepgram.com/v1/listen?model=nova-3"
        );
        assert_eq!(request.headers()[AUTHORIZATION], "Token KEY");
        assert!(request.headers()[AUTHORIZATION].is_sensitive());
        assert!(request.headers().contains_key("traceparent"));
    }
}
