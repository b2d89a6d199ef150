//! Streamed replies: the `LanguageModel` port on `POST /chat/completions`
//! with `stream: true`, and the decoding of the event stream into chunks.
//!
//! The returned stream owns the HTTP response: dropping it closes the
//! connection (or resets the HTTP/2 stream), which stops generation. Nothing
//! is spawned, so nothing outlives it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt as _, StreamExt as _};
use iace_domain::ports::{
    BoxError, ChatChunk, ChatRequest, ChatStream, FinishReason, LanguageModel, ProviderError,
    TokenUsage, ToolCall,
};
use iace_http::{CircuitBreaker, Operation};
use tokio::time::Instant;

use crate::client::GroqClient;
use crate::error::{PROVIDER, from_stream_error, invalid};
use crate::sse::{SseEvent, SseParser};
use crate::wire::{self, ApiError, StreamChunk, ToolCallDelta};

/// The sentinel that ends an OpenAI-compatible event stream.
const DONE: &str = "[DONE]";

/// At most this many tool calls in one reply (Groq accepts at most 128 tools).
const MAX_TOOL_CALLS: usize = 128;

/// How long a reply stream may stall, and how large its parts may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    /// From the response head to the first event.
    pub(crate) first_event: Duration,
    /// Between two pieces of the body, after the first event.
    pub(crate) idle: Duration,
    /// Largest arguments of one tool call (bytes).
    pub(crate) max_tool_arguments: usize,
}

impl StreamLimits {
    /// Largest event-stream line: room for the largest tool call arguments
    /// sent in one chunk, JSON-escaped inside a JSON string (at worst six
    /// bytes per byte), and never less than 1 MiB.
    fn max_line(self) -> usize {
        self.max_tool_arguments.saturating_mul(6).max(1 << 20)
    }
}

#[async_trait]
impl LanguageModel for GroqClient {
    async fn stream_chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let body = wire::CompletionRequest {
            model: request.model.as_deref().unwrap_or(&self.model),
            messages: request.messages.iter().map(wire::Message::from).collect(),
            tools: request.tools.iter().map(wire::Tool::from).collect(),
            temperature: request.temperature,
            max_completion_tokens: request.max_tokens,
            stream: true,
            stream_options: Some(wire::StreamOptions {
                include_usage: true,
            }),
            response_format: None,
        };
        // Retries happen only until a response head arrives, so a repeated
        // request never follows text the caller already received.
        let operation = Operation::safe("chat_stream", self.chat_policy);
        let response = self.post(operation, &body).await?;
        let body = response
            .bytes_stream()
            .map(|piece| piece.map_err(|err| BoxError::from(err.without_url())))
            .boxed();
        Ok(open(body, self.stream_limits, self.http.breaker().clone()))
    }
}

/// The chunks of a reply whose body arrives as `body`.
pub(crate) fn open(
    body: BoxStream<'static, Result<Bytes, BoxError>>,
    limits: StreamLimits,
    breaker: Arc<CircuitBreaker>,
) -> ChatStream {
    let reply = Reply {
        body,
        parser: SseParser::new(limits.max_line()),
        decoder: Decoder::new(limits.max_tool_arguments),
        first_event_by: Instant::now() + limits.first_event,
        limits,
        last_event_at: None,
        breaker,
        ended: false,
        failed: false,
    };
    futures::stream::unfold(reply, |mut reply| async move {
        let item = reply.next().await?;
        Some((item, reply))
    })
    .boxed()
}

/// A reply being read: the body, the parser and the decoder.
struct Reply {
    body: BoxStream<'static, Result<Bytes, BoxError>>,
    parser: SseParser,
    decoder: Decoder,
    limits: StreamLimits,
    first_event_by: Instant,
    /// When the last event was decoded: the idle timeout runs from it, so
    /// keep-alive comments cannot hold a reply open forever.
    last_event_at: Option<Instant>,
    breaker: Arc<CircuitBreaker>,
    /// Nothing more will be yielded but what the decoder holds.
    ended: bool,
    /// An error was yielded: nothing follows it.
    failed: bool,
}

impl Reply {
    async fn next(&mut self) -> Option<Result<ChatChunk, ProviderError>> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(chunk) = self.decoder.pop() {
                return Some(Ok(chunk));
            }
            if self.ended {
                return None;
            }
            if self.decoder.is_done() {
                self.ended = true;
                self.release();
                continue;
            }
            if let Err(err) = self.advance().await {
                self.ended = true;
                self.failed = true;
                self.report(&err);
                return Some(Err(err));
            }
        }
    }

    /// Decodes the next event, reading from the network when none is buffered.
    async fn advance(&mut self) -> Result<(), ProviderError> {
        if let Some(event) = self.parser.next_event().map_err(invalid)? {
            self.last_event_at = Some(Instant::now());
            return self.decoder.event(&event);
        }
        let wait = match self.last_event_at {
            Some(at) => (at + self.limits.idle).saturating_duration_since(Instant::now()),
            None => self
                .first_event_by
                .saturating_duration_since(Instant::now()),
        };
        match tokio::time::timeout(wait, self.body.next()).await {
            Err(_) => Err(ProviderError::Timeout { provider: PROVIDER }),
            Ok(Some(Ok(piece))) => {
                self.parser.push(&piece);
                Ok(())
            }
            Ok(Some(Err(err))) => {
                tracing::debug!(
                    provider = PROVIDER,
                    error = %err,
                    "reply stream broke off"
                );
                Err(ProviderError::StreamClosed { provider: PROVIDER })
            }
            Ok(None) => match self.parser.finish() {
                Ok(trailing) => self.decoder.end_of_body(trailing),
                // Nothing but this was sent: the body never was an event stream.
                Err(err) if self.last_event_at.is_none() => Err(invalid(err)),
                // Events came, then the body stopped mid-line: a cut.
                Err(_) => Err(ProviderError::StreamClosed { provider: PROVIDER }),
            },
        }
    }

    /// A reply that failed because the provider did counts against its
    /// breaker, like a failed request (an invalid answer does not: the
    /// provider is up).
    fn report(&self, err: &ProviderError) {
        let provider_failed = matches!(
            err,
            ProviderError::Timeout { .. }
                | ProviderError::StreamClosed { .. }
                | ProviderError::Unavailable { .. }
        );
        if provider_failed {
            self.breaker.on_failure();
        }
        tracing::warn!(
            provider = PROVIDER,
            kind = err.kind(),
            error = %err,
            source = std::error::Error::source(err).map(ToString::to_string),
            "reply stream failed"
        );
    }

    /// After `[DONE]`: takes what already arrived of the body's end (without
    /// waiting), so that the connection can go back to the pool.
    fn release(&mut self) {
        for _ in 0..4 {
            match self.body.next().now_or_never() {
                Some(Some(Ok(_))) => {}
                _ => break,
            }
        }
    }
}

/// A tool call being assembled from its fragments.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Turns events into chunks: text as it comes, tool calls once complete,
/// `Finished` at the end. Pure, so it is tested without a network.
#[derive(Debug)]
pub(crate) struct Decoder {
    pending: VecDeque<ChatChunk>,
    /// By the provider's `index`, so calls come out in its order.
    calls: BTreeMap<u32, PartialCall>,
    /// Set by the first `finish_reason`; later choices are ignored.
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
    done: bool,
    max_arguments: usize,
}

impl Decoder {
    pub(crate) fn new(max_arguments: usize) -> Self {
        Self {
            pending: VecDeque::new(),
            calls: BTreeMap::new(),
            finish: None,
            usage: None,
            done: false,
            max_arguments,
        }
    }

    /// The next chunk ready to be yielded.
    pub(crate) fn pop(&mut self) -> Option<ChatChunk> {
        self.pending.pop_front()
    }

    /// `Finished` was produced; nothing more will be.
    pub(crate) const fn is_done(&self) -> bool {
        self.done
    }

    /// Takes in one event.
    ///
    /// # Errors
    /// [`ProviderError::InvalidResponse`] for a payload that is not a chunk
    /// or a tool call that does not parse; the mapped error when the server
    /// reports one.
    pub(crate) fn event(&mut self, event: &SseEvent) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == DONE {
            return self.end();
        }
        let is_error_event = event.event.as_deref() == Some("error");
        let chunk: StreamChunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(_) if is_error_event => {
                return Err(from_stream_error(&ApiError::Text(data.to_owned())));
            }
            Err(err) => return Err(invalid(err)),
        };
        let (groq_usage, groq_error) = chunk
            .x_groq
            .map_or((None, None), |extra| (extra.usage, extra.error));
        if let Some(error) = chunk.error.as_ref().or(groq_error.as_ref()) {
            return Err(from_stream_error(error));
        }
        if is_error_event {
            return Err(from_stream_error(&ApiError::Text(data.to_owned())));
        }
        if let Some(usage) = chunk.usage.or(groq_usage) {
            self.usage = Some(usage.into());
        }
        for choice in chunk.choices {
            // `n` is always 1; a finished reply takes nothing more.
            if choice.index != 0 || self.finish.is_some() {
                continue;
            }
            if let Some(text) = choice.delta.content
                && !text.is_empty()
            {
                self.pending.push_back(ChatChunk::Text { delta: text });
            }
            for fragment in choice.delta.tool_calls {
                self.add_fragment(fragment)?;
            }
            if let Some(reason) = choice.finish_reason {
                let reason = self.flush_calls(finish_reason(&reason))?;
                self.finish = Some(reason);
            }
        }
        Ok(())
    }

    /// The body ended; `trailing` is an event the body ended without
    /// dispatching, if any.
    ///
    /// # Errors
    /// [`ProviderError::StreamClosed`] when the reply was cut: neither
    /// `[DONE]` nor a `finish_reason` arrived.
    pub(crate) fn end_of_body(&mut self, trailing: Option<SseEvent>) -> Result<(), ProviderError> {
        if let Some(event) = trailing {
            match self.event(&event) {
                Ok(()) => {}
                // The last event was cut mid-way: a cut stream, not an invalid one.
                Err(ProviderError::InvalidResponse { source, .. }) => {
                    tracing::debug!(provider = PROVIDER, error = %source, "reply ended in a partial event");
                    return Err(ProviderError::StreamClosed { provider: PROVIDER });
                }
                // A complete error event the server sent last.
                Err(err) => return Err(err),
            }
        }
        if self.done {
            Ok(())
        } else if self.finish.is_some() {
            // The reply was complete; only the `[DONE]` sentinel is missing.
            self.end()
        } else {
            Err(ProviderError::StreamClosed { provider: PROVIDER })
        }
    }

    /// `[DONE]`: whatever is still open, then `Finished`.
    fn end(&mut self) -> Result<(), ProviderError> {
        let reason = match self.finish {
            Some(reason) => reason,
            None => {
                tracing::debug!(provider = PROVIDER, "reply ended without a finish_reason");
                self.flush_calls(FinishReason::Stop)?
            }
        };
        self.pending.push_back(ChatChunk::Finished {
            reason,
            usage: self.usage,
        });
        self.done = true;
        Ok(())
    }

    fn add_fragment(&mut self, fragment: ToolCallDelta) -> Result<(), ProviderError> {
        let last = self.calls.keys().next_back().copied();
        let slot = match (fragment.index, fragment.id.as_deref()) {
            (Some(index), _) => index,
            // Servers that omit `index`: a new id starts a new call, anything
            // else continues the last one.
            (None, Some(id)) if !id.is_empty() && !self.calls.values().any(|c| c.id == id) => {
                last.map_or(0, |i| i.saturating_add(1))
            }
            (None, _) => last.unwrap_or(0),
        };
        if !self.calls.contains_key(&slot) && self.calls.len() >= MAX_TOOL_CALLS {
            return Err(invalid(format!(
                "more than {MAX_TOOL_CALLS} tool calls in one reply"
            )));
        }
        let call = self.calls.entry(slot).or_default();
        if let Some(id) = fragment.id
            && call.id.is_empty()
        {
            call.id = id;
        }
        if let Some(function) = fragment.function {
            // The name comes whole in one fragment; a server repeating it in
            // every fragment must not double it.
            if let Some(name) = function.name
                && name != call.name
            {
                call.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
        if call.arguments.len() > self.max_arguments {
            return Err(invalid(format!(
                "tool call arguments longer than {} bytes",
                self.max_arguments
            )));
        }
        Ok(())
    }

    /// Emits every assembled tool call, in index order. A reply that called
    /// tools but says `stop` (some compatible servers do) finished for its
    /// tool calls.
    fn flush_calls(&mut self, reason: FinishReason) -> Result<FinishReason, ProviderError> {
        let calls = std::mem::take(&mut self.calls);
        let called = !calls.is_empty();
        for (index, call) in calls {
            if call.name.is_empty() {
                return Err(invalid(format!("tool call {index} has no name")));
            }
            let arguments = if call.arguments.trim().is_empty() {
                serde_json::Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(&call.arguments).map_err(invalid)?
            };
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            self.pending.push_back(ChatChunk::ToolCall {
                call: ToolCall {
                    id,
                    name: call.name,
                    arguments,
                },
            });
        }
        Ok(if called && reason == FinishReason::Stop {
            FinishReason::ToolCalls
        } else {
            reason
        })
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => {
            tracing::debug!(
                provider = PROVIDER,
                finish_reason = other,
                "unknown finish_reason, read as stop"
            );
            FinishReason::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use iace_http::BreakerConfig;
    use serde_json::json;

    use super::*;

    fn data(value: &serde_json::Value) -> SseEvent {
        SseEvent {
            event: None,
            data: value.to_string(),
        }
    }

    fn done() -> SseEvent {
        SseEvent {
            event: None,
            data: DONE.to_owned(),
        }
    }

    fn text(delta: &str) -> serde_json::Value {
        json!({"choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": null}]})
    }

    fn finish(reason: &str) -> serde_json::Value {
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    }

    fn call_fragment(
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        args: &str,
    ) -> serde_json::Value {
        let mut function = json!({"arguments": args});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "type": "function", "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]})
    }

    /// Decodes `events` and returns every chunk, or the first error.
    fn decode(events: &[SseEvent]) -> Result<Vec<ChatChunk>, ProviderError> {
        let mut decoder = Decoder::new(1_024);
        let mut chunks = Vec::new();
        for event in events {
            decoder.event(event)?;
            while let Some(chunk) = decoder.pop() {
                chunks.push(chunk);
            }
        }
        Ok(chunks)
    }

    fn text_chunk(delta: &str) -> ChatChunk {
        ChatChunk::Text {
            delta: delta.to_owned(),
        }
    }

    #[test]
    fn text_streams_and_finishes_with_the_usage_of_the_last_chunk() {
        let chunks = decode(&[
            data(
                &json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            ),
            data(&text("Hello")),
            data(&text(", world")),
            data(&finish("stop")),
            data(&json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}})),
            done(),
        ])
        .expect("decodes");
        assert_eq!(
            chunks,
            vec![
                text_chunk("Hello"),
                text_chunk(", world"),
                ChatChunk::Finished {
                    reason: FinishReason::Stop,
                    usage: Some(TokenUsage {
                        prompt_tokens: 12,
                        completion_tokens: 3
                    }),
                },
            ]
        );
    }

    #[test]
    fn groq_usage_is_read_from_x_groq() {
        let mut last = finish("length");
        last["x_groq"] =
            json!({"id": "req_1", "usage": {"prompt_tokens": 5, "completion_tokens": 200}});
        let chunks = decode(&[data(&text("a")), data(&last), done()]).expect("decodes");
        assert_eq!(
            chunks.last(),
            Some(&ChatChunk::Finished {
                reason: FinishReason::Length,
                usage: Some(TokenUsage {
                    prompt_tokens: 5,
                    completion_tokens: 200
                }),
            })
        );
    }

    #[test]
    fn tool_call_fragments_are_assembled_per_index() {
        let chunks = decode(&[
            data(&call_fragment(0, Some("call_a"), Some("lookup_order"), "")),
            data(&call_fragment(
                1,
                Some("call_b"),
                Some("transfer"),
                "{\"reason\"",
            )),
            data(&call_fragment(0, None, None, "{\"order\":")),
            data(&call_fragment(0, None, None, " 42}")),
            data(&call_fragment(1, None, None, ": \"billing\"}")),
            data(&finish("tool_calls")),
            done(),
        ])
        .expect("decodes");
        assert_eq!(
            chunks,
            vec![
                ChatChunk::ToolCall {
                    call: ToolCall {
                        id: "call_a".into(),
                        name: "lookup_order".into(),
                        arguments: json!({"order": 42}),
                    }
                },
                ChatChunk::ToolCall {
                    call: ToolCall {
                        id: "call_b".into(),
                        name: "transfer".into(),
                        arguments: json!({"reason": "billing"}),
                    }
                },
                ChatChunk::Finished {
                    reason: FinishReason::ToolCalls,
                    usage: None
                },
            ]
        );
    }

    #[test]
    fn tool_calls_without_index_or_id_still_come_out_whole() {
        let no_index = |id: &str, name: &str, args: &str| {
            json!({"choices": [{"delta": {"tool_calls": [
                {"id": id, "function": {"name": name, "arguments": args}}
            ]}}]})
        };
        let chunks = decode(&[
            data(&no_index("c1", "a", "{}")),
            data(&no_index("c2", "b", "")),
            // A server repeating the name in a later fragment.
            data(&json!({"choices": [{"delta": {"tool_calls": [
                {"function": {"name": "b", "arguments": "{\"x\":1}"}}
            ]}}]})),
            data(&call_fragment(7, None, Some("c"), "")),
            data(&finish("stop")),
            done(),
        ])
        .expect("decodes");
        let calls: Vec<&ToolCall> = chunks
            .iter()
            .filter_map(|c| match c {
                ChatChunk::ToolCall { call } => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 3);
        assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("c1", "a"));
        assert_eq!(calls[1].arguments, json!({"x": 1}));
        assert_eq!(calls[1].name, "b");
        assert_eq!(calls[2].id, "call_7", "a missing id is made up");
        assert_eq!(calls[2].arguments, json!({}), "empty arguments are {{}}");
        assert!(
            matches!(
                chunks.last(),
                Some(ChatChunk::Finished {
                    reason: FinishReason::ToolCalls,
                    ..
                })
            ),
            "stop with tool calls reads as tool_calls"
        );
    }

    #[test]
    fn unparsable_or_oversized_tool_arguments_are_invalid() {
        let err = decode(&[
            data(&call_fragment(0, Some("c"), Some("f"), "{\"a\": ")),
            data(&finish("tool_calls")),
        ])
        .expect_err("cut json");
        assert!(
            matches!(err, ProviderError::InvalidResponse { .. }),
            "{err:?}"
        );

        let big = "x".repeat(2_000);
        let err = decode(&[data(&call_fragment(0, Some("c"), Some("f"), &big))])
            .expect_err("over the bound");
        assert!(matches!(err, ProviderError::InvalidResponse { .. }));
    }

    #[test]
    fn errors_in_the_stream_are_reported() {
        let err = decode(&[
            data(&text("Hel")),
            data(&json!({"choices": [], "x_groq": {"error": "upstream overloaded"}})),
        ])
        .expect_err("x_groq error");
        assert_eq!(err.kind(), "unavailable");

        let err = decode(&[data(
            &json!({"error": {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}}),
        )])
        .expect_err("error object");
        assert_eq!(err.kind(), "rate_limited");

        let err = decode(&[SseEvent {
            event: Some("error".into()),
            data: "internal failure".into(),
        }])
        .expect_err("error event");
        assert_eq!(err.kind(), "unavailable");

        let err = decode(&[SseEvent {
            event: None,
            data: "not json".into(),
        }])
        .expect_err("garbage");
        assert_eq!(err.kind(), "invalid_response");
    }

    #[test]
    fn the_end_of_the_body_decides_between_finished_and_cut() {
        let mut decoder = Decoder::new(1_024);
        decoder.event(&data(&text("We are open"))).expect("text");
        let err = decoder.end_of_body(None).expect_err("cut");
        assert!(matches!(
            err,
            ProviderError::StreamClosed { provider: "groq" }
        ));

        let mut decoder = Decoder::new(1_024);
        decoder.event(&data(&finish("stop"))).expect("finish");
        decoder
            .end_of_body(None)
            .expect("finished, only [DONE] missing");
        assert!(matches!(decoder.pop(), Some(ChatChunk::Finished { .. })));

        let mut decoder = Decoder::new(1_024);
        decoder.event(&data(&text("a"))).expect("text");
        decoder
            .end_of_body(Some(done()))
            .expect("[DONE] without its blank line");
        assert!(decoder.is_done());

        let mut decoder = Decoder::new(1_024);
        let cut = SseEvent {
            event: None,
            data: "{\"choices\": [{\"delta\": {\"cont".into(),
        };
        let err = decoder.end_of_body(Some(cut)).expect_err("cut mid-event");
        assert!(matches!(err, ProviderError::StreamClosed { .. }), "{err:?}");

        let mut decoder = Decoder::new(1_024);
        let last = data(&json!({"error": {"message": "m", "type": "invalid_request_error"}}));
        let err = decoder
            .end_of_body(Some(last))
            .expect_err("the server's error");
        assert_eq!(
            err.kind(),
            "rejected",
            "a complete error event keeps its meaning"
        );
    }

    #[test]
    fn done_without_finish_reason_still_finishes_once() {
        let chunks =
            decode(&[data(&text("Hi")), done(), data(&text("ignored")), done()]).expect("decodes");
        assert_eq!(
            chunks,
            vec![
                text_chunk("Hi"),
                ChatChunk::Finished {
                    reason: FinishReason::Stop,
                    usage: None
                }
            ]
        );
    }

    fn limits(first_event_ms: u64, idle_ms: u64) -> StreamLimits {
        StreamLimits {
            first_event: Duration::from_millis(first_event_ms),
            idle: Duration::from_millis(idle_ms),
            max_tool_arguments: 1_024,
        }
    }

    fn breaker() -> Arc<CircuitBreaker> {
        Arc::new(CircuitBreaker::new(PROVIDER, &BreakerConfig::default()))
    }

    #[tokio::test]
    async fn a_body_in_odd_pieces_streams_its_chunks() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n: ping\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let pieces: Vec<Result<Bytes, BoxError>> = body
            .as_bytes()
            .chunks(7)
            .map(|piece| Ok(Bytes::copy_from_slice(piece)))
            .collect();
        let stream = open(
            futures::stream::iter(pieces).boxed(),
            limits(1_000, 1_000),
            breaker(),
        );
        let chunks: Vec<_> = stream.collect().await;
        let chunks: Vec<ChatChunk> = chunks
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("no error");
        assert_eq!(
            chunks,
            vec![
                text_chunk("Hel"),
                text_chunk("lo"),
                ChatChunk::Finished {
                    reason: FinishReason::Stop,
                    usage: None
                }
            ]
        );
    }

    #[tokio::test]
    async fn a_stalled_stream_times_out_and_counts_against_the_breaker() {
        let first: Result<Bytes, BoxError> = Ok(Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        ));
        let body = futures::stream::iter([first])
            .chain(futures::stream::pending())
            .boxed();
        let breaker = Arc::new(CircuitBreaker::new(
            PROVIDER,
            &BreakerConfig {
                failure_threshold: 1,
                ..BreakerConfig::default()
            },
        ));
        let mut stream = open(body, limits(1_000, 50), breaker.clone());
        assert_eq!(
            stream.next().await.map(Result::ok),
            Some(Some(text_chunk("Hi")))
        );
        let err = stream
            .next()
            .await
            .expect("an item")
            .expect_err("idle timeout");
        assert!(matches!(err, ProviderError::Timeout { .. }), "{err:?}");
        assert!(
            stream.next().await.is_none(),
            "the stream ends after an error"
        );
        assert_eq!(breaker.state(), iace_http::BreakerState::Open);
    }

    #[tokio::test]
    async fn keep_alives_do_not_extend_the_wait_for_the_first_event() {
        let pings = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Some((Ok::<_, BoxError>(Bytes::from_static(b": ping\n\n")), ()))
        })
        .boxed();
        let mut stream = open(pings, limits(100, 1_000), breaker());
        let err = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("gives up by itself")
            .expect("an item")
            .expect_err("first-event timeout");
        assert!(matches!(err, ProviderError::Timeout { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_broken_body_is_a_closed_stream() {
        let pieces: Vec<Result<Bytes, BoxError>> = vec![
            Ok(Bytes::from_static(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            )),
            Err("connection reset".into()),
        ];
        let items: Vec<_> = open(
            futures::stream::iter(pieces).boxed(),
            limits(1_000, 1_000),
            breaker(),
        )
        .collect()
        .await;
        assert_eq!(items.len(), 2);
        assert!(matches!(
            &items[1],
            Err(ProviderError::StreamClosed { provider: "groq" })
        ));
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_event_stream_is_invalid() {
        let pieces: Vec<Result<Bytes, BoxError>> =
            vec![Ok(Bytes::from_static(b"<html>Bad gateway</html>"))];
        let items: Vec<_> = open(
            futures::stream::iter(pieces).boxed(),
            limits(1_000, 1_000),
            breaker(),
        )
        .collect()
        .await;
        assert!(
            matches!(
                items.as_slice(),
                [Err(ProviderError::InvalidResponse { .. })]
            ),
            "{items:?}"
        );
    }
}
