//! Fakes of an OpenAI-compatible chat server (Groq's dialect) for wiremock:
//! streamed chunks, event-stream bodies, completions, sentiment verdicts and
//! error bodies, as `POST …/chat/completions` answers them.

use std::sync::Mutex;

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

/// A `chat.completion.chunk` with `choices[0]` built from `delta` and
/// `finish_reason`.
pub fn chunk(delta: &Value, finish_reason: Option<&str>) -> Value {
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
pub fn role_chunk() -> Value {
    chunk(&json!({"role": "assistant", "content": ""}), None)
}

/// A content delta.
pub fn text_chunk(text: &str) -> Value {
    chunk(&json!({"content": text}), None)
}

/// The finishing chunk, with Groq's usage in `x_groq`.
pub fn finish_chunk(reason: &str) -> Value {
    let mut chunk = chunk(&json!({}), Some(reason));
    chunk["x_groq"] = json!({
        "id": "req_test",
        "usage": {"prompt_tokens": 21, "completion_tokens": 13, "total_tokens": 34}
    });
    chunk
}

/// The `include_usage` chunk: no choices, OpenAI's usage.
pub fn usage_chunk(prompt_tokens: u32, completion_tokens: u32) -> Value {
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
pub fn pieces(text: &str) -> Vec<String> {
    text.split_inclusive(' ')
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|words| words.concat())
        .collect()
}

/// The chunks of a complete streamed reply of `text`.
pub fn reply_chunks(text: &str) -> Vec<Value> {
    let mut chunks = vec![role_chunk()];
    chunks.extend(pieces(text).iter().map(|piece| text_chunk(piece)));
    chunks.push(finish_chunk("stop"));
    chunks.push(usage_chunk(21, 13));
    chunks
}

/// The chunks of a reply calling `name` with `arguments`, the arguments
/// split across three fragments as servers stream them.
pub fn tool_call_chunks(name: &str, arguments: &Value) -> Vec<Value> {
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
pub fn sse_body(chunks: &[Value], done: bool) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

/// A 200 event-stream response.
pub fn sse(chunks: &[Value], done: bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(sse_body(chunks, done), "text/event-stream")
}

/// A non-streamed completion whose message content is `content`.
pub fn completion(content: &str) -> ResponseTemplate {
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
pub fn verdict(score: f64, label: &str, reasons: &[&str]) -> ResponseTemplate {
    completion(&json!({"score": score, "label": label, "reasons": reasons}).to_string())
}

/// Groq's error body.
pub fn error_body(message: &str, kind: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

/// Answers with each template in turn, then repeats the last.
pub struct Sequence(Mutex<Vec<ResponseTemplate>>);

impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence").finish_non_exhaustive()
    }
}

impl Sequence {
    /// Answers with `templates` in order, the last one from then on.
    pub fn new(mut templates: Vec<ResponseTemplate>) -> Self {
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
