//! Fakes of an OpenAI-compatible server, shared by the test binaries (each
//! uses a part of them).
#![allow(dead_code)]

use std::sync::Mutex;

use iace_groq::{GroqClient, GroqConfig};
use iace_http::HttpPolicy;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

/// The path the client posts to, under a base URL ending in `/openai/v1`
/// (as Groq's does).
pub(crate) const CHAT_PATH: &str = "/openai/v1/chat/completions";

/// The key the test clients send.
pub(crate) const API_KEY: &str = "gsk_test_key";

/// Quick retries, so failure cases stay fast.
pub(crate) fn policy(attempt_timeout_ms: u64, deadline_ms: u64) -> HttpPolicy {
    HttpPolicy {
        attempts: 2,
        attempt_timeout_ms,
        deadline_ms,
        backoff_min_ms: 1,
        backoff_max_ms: 10,
    }
}

/// A config pointing at `server_uri` with fast policies.
pub(crate) fn config(server_uri: &str) -> GroqConfig {
    GroqConfig {
        api_key: SecretString::from(API_KEY),
        base_url: format!("{server_uri}/openai/v1"),
        chat: policy(1_000, 3_000),
        sentiment: policy(1_000, 3_000),
        first_token_timeout_ms: 2_000,
        idle_timeout_ms: 2_000,
        ..GroqConfig::default()
    }
}

/// A client for `server_uri`; `slow_to_answer` gives it timeouts shorter than
/// a slow fake's delay (attempt 200 ms, deadline 500 ms).
pub(crate) fn client(server_uri: &str, short_timeouts: bool) -> GroqClient {
    let mut config = config(server_uri);
    if short_timeouts {
        config.chat = policy(200, 500);
        config.sentiment = policy(200, 500);
    }
    GroqClient::new(config).expect("client")
}

/// A `chat.completion.chunk` with `choices[0]` built from `delta` and
/// `finish_reason`.
pub(crate) fn chunk(delta: &Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "llama-3.3-70b-versatile",
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "x_groq": {"id": "req_test"}
    })
}

/// The chunks Groq sends first: the role, no text yet.
pub(crate) fn role_chunk() -> Value {
    chunk(&json!({"role": "assistant", "content": ""}), None)
}

/// A content delta.
pub(crate) fn text_chunk(text: &str) -> Value {
    chunk(&json!({"content": text}), None)
}

/// The finishing chunk, with Groq's usage in `x_groq`.
pub(crate) fn finish_chunk(reason: &str) -> Value {
    let mut chunk = chunk(&json!({}), Some(reason));
    chunk["x_groq"] = json!({
        "id": "req_test",
        "usage": {"prompt_tokens": 21, "completion_tokens": 13, "total_tokens": 34}
    });
    chunk
}

/// The `include_usage` chunk: no choices, OpenAI's usage.
pub(crate) fn usage_chunk(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "llama-3.3-70b-versatile",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
}

/// `text` in pieces of a few words.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    text.split_inclusive(' ')
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|words| words.concat())
        .collect()
}

/// The chunks of a complete streamed reply of `text`.
pub(crate) fn reply_chunks(text: &str) -> Vec<Value> {
    let mut chunks = vec![role_chunk()];
    chunks.extend(pieces(text).iter().map(|piece| text_chunk(piece)));
    chunks.push(finish_chunk("stop"));
    chunks.push(usage_chunk(21, 13));
    chunks
}

/// The chunks of a reply calling `name` with `arguments`, the arguments
/// split across three fragments as servers stream them.
pub(crate) fn tool_call_chunks(name: &str, arguments: &Value) -> Vec<Value> {
    let arguments = arguments.to_string();
    let third = arguments.len() / 3;
    let mut chunks = vec![
        role_chunk(),
        chunk(
            &json!({"tool_calls": [{
                "index": 0, "id": "call_test_1", "type": "function",
                "function": {"name": name, "arguments": ""}
            }]}),
            None,
        ),
    ];
    for fragment in [
        &arguments[..third],
        &arguments[third..2 * third],
        &arguments[2 * third..],
    ] {
        chunks.push(chunk(
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}),
            None,
        ));
    }
    chunks.push(finish_chunk("tool_calls"));
    chunks.push(usage_chunk(30, 9));
    chunks
}

/// An event-stream body: each chunk as a `data:` event, then `[DONE]` when
/// `done`.
pub(crate) fn sse_body(chunks: &[Value], done: bool) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

/// A 200 event-stream response.
pub(crate) fn sse(chunks: &[Value], done: bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(sse_body(chunks, done), "text/event-stream")
}

/// A non-streamed completion whose message content is `content`.
pub(crate) fn completion(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "llama-3.1-8b-instant",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        "x_groq": {"id": "req_test"}
    }))
}

/// A completion carrying a sentiment verdict.
pub(crate) fn verdict(score: f64, label: &str, reasons: &[&str]) -> ResponseTemplate {
    completion(&json!({"score": score, "label": label, "reasons": reasons}).to_string())
}

/// Groq's error body.
pub(crate) fn error_body(message: &str, kind: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

/// Answers with each template in turn, then repeats the last.
pub(crate) struct Sequence(Mutex<Vec<ResponseTemplate>>);

impl Sequence {
    pub(crate) fn new(mut templates: Vec<ResponseTemplate>) -> Self {
        templates.reverse();
        Self(Mutex::new(templates))
    }
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut left = self.0.lock().expect("lock");
        if left.len() > 1 {
            left.pop().expect("one left")
        } else {
            left.last().cloned().expect("a template")
        }
    }
}
