//! Scripted replies: a [`LanguageModel`] for demos, simulations and tests.
//!
//! **This is not an AI.** [`ScriptedReplies`] reads the caller's last message,
//! looks for a handful of English keywords and answers a canned sentence, so
//! that a laptop install can run a whole call (and tests can drive the
//! runtime) with no model and no network. It understands nothing else:
//!
//! | The caller says…                                  | It answers                              |
//! |---------------------------------------------------|-----------------------------------------|
//! | "human", "agent", "manager", "representative"…    | a call to the `transfer_to_agent` tool, `{"reason": …}`, when the request offers that tool; otherwise that it cannot transfer |
//! | "bye", "goodbye", "that's all"                    | thanks and goodbye                      |
//! | "hours", "open", "close", "what time"             | the opening hours                       |
//! | "price", "bill", "invoice", "charge", "refund"…   | asks for the account or invoice         |
//! | "hello", "hi", "good morning"… (or nothing yet)   | a greeting, with the persona's name when the system prompt says "You are &lt;Name&gt;" |
//! | anything else                                     | "Sorry, could you say that again?"      |
//!
//! A request whose system prompt starts with "Summarise" (the work after a
//! call) is answered with what its `Caller:` lines said, joined — an extract,
//! not a summary.
//!
//! After a tool result it says it is connecting the caller. Keywords are
//! checked in the order of the table. The reply streams word by word as
//! [`ChatChunk::Text`], then [`ChatChunk::Finished`] (`stop`, or
//! `tool_calls` after a [`ChatChunk::ToolCall`]); an optional per-chunk delay
//! makes simulations pace like a real model.
//!
//! [`ScriptedReplies::always`] and [`ScriptedReplies::always_calling`] fix the
//! answer whatever is said: for tests and scripted demos.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use iace_domain::ports::{
    ChatChunk, ChatMessage, ChatRequest, ChatRole, ChatStream, FinishReason, LanguageModel,
    ProviderError, ToolCall,
};

/// The tool called when the caller asks for a person.
pub const TRANSFER_TOOL: &str = "transfer_to_agent";

/// The answer when nothing was understood.
pub const FALLBACK: &str = "Sorry, could you say that again?";

/// What the scripted model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A spoken reply.
    Text(String),
    /// A tool call (streamed as [`ChatChunk::ToolCall`]).
    ToolCall(ToolCall),
}

/// How replies are chosen.
#[derive(Debug, Clone, PartialEq)]
enum Script {
    /// By keywords (see the module documentation).
    Intents,
    /// Always this text.
    Always(String),
    /// This tool call when the request offers the tool, else by keywords.
    Calling {
        name: String,
        arguments: serde_json::Value,
    },
}

/// What the caller wants, by keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Transfer,
    Goodbye,
    Hours,
    Billing,
    Greeting,
    Fallback,
}

const TRANSFER_WORDS: &[&str] = &[
    "agent",
    "agents",
    "human",
    "manager",
    "operator",
    "person",
    "representative",
    "rep",
    "supervisor",
    "transfer",
];
const GOODBYE_WORDS: &[&str] = &["bye", "goodbye", "farewell"];
const GOODBYE_PHRASES: &[&str] = &["that's all", "that is all", "hang up"];
const HOURS_WORDS: &[&str] = &[
    "hours", "open", "opening", "opens", "close", "closing", "closed", "closes",
];
const HOURS_PHRASES: &[&str] = &["what time"];
const BILLING_WORDS: &[&str] = &[
    "bill",
    "billed",
    "billing",
    "charge",
    "charged",
    "charges",
    "cost",
    "costs",
    "fee",
    "fees",
    "invoice",
    "pay",
    "payment",
    "price",
    "prices",
    "pricing",
    "refund",
    "subscription",
];
const GREETING_WORDS: &[&str] = &[
    "hello",
    "hi",
    "hey",
    "greetings",
    "morning",
    "afternoon",
    "evening",
];

/// The keyword intent of a caller's words.
fn intent(text: &str) -> Intent {
    let lower = text.to_lowercase().replace('\u{2019}', "'");
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let any = |set: &[&str]| words.iter().any(|w| set.contains(w));
    let phrase = |set: &[&str]| set.iter().any(|p| lower.contains(p));
    if any(TRANSFER_WORDS) {
        Intent::Transfer
    } else if any(GOODBYE_WORDS) || phrase(GOODBYE_PHRASES) {
        Intent::Goodbye
    } else if any(HOURS_WORDS) || phrase(HOURS_PHRASES) {
        Intent::Hours
    } else if any(BILLING_WORDS) {
        Intent::Billing
    } else if words.is_empty() || any(GREETING_WORDS) {
        Intent::Greeting
    } else {
        Intent::Fallback
    }
}

/// The persona's name from a system prompt saying "You are `Name`" (up to
/// three capitalised words: "You are Sam, a helpful agent" → `Sam`).
fn persona_name(messages: &[ChatMessage]) -> Option<String> {
    let system = messages.iter().find(|m| m.role == ChatRole::System)?;
    let (_, rest) = system.content.split_once("You are ")?;
    let mut name = Vec::new();
    for word in rest.split_whitespace().take(3) {
        let trimmed = word.trim_end_matches(|c: char| !c.is_alphanumeric());
        if !trimmed.chars().next().is_some_and(char::is_uppercase) {
            break;
        }
        name.push(trimmed);
        if trimmed.len() != word.len() {
            break; // "Sam," ends the name
        }
    }
    (!name.is_empty()).then(|| name.join(" "))
}

/// A fresh tool-call id.
fn call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

/// The scripted language model (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedReplies {
    script: Script,
    chunk_delay: Duration,
}

impl Default for ScriptedReplies {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedReplies {
    /// Replies by keywords, with no delay between chunks.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            script: Script::Intents,
            chunk_delay: Duration::ZERO,
        }
    }

    /// Always replies `text`, whatever is said (for tests and demos).
    #[must_use]
    pub fn always(text: impl Into<String>) -> Self {
        Self {
            script: Script::Always(text.into()),
            chunk_delay: Duration::ZERO,
        }
    }

    /// Always calls tool `name` with `arguments` when the request offers that
    /// tool, and replies by keywords when it does not (for tests and demos).
    #[must_use]
    pub fn always_calling(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self {
            script: Script::Calling {
                name: name.into(),
                arguments,
            },
            chunk_delay: Duration::ZERO,
        }
    }

    /// Waits `delay` before each streamed chunk (default none), to pace
    /// simulations like a real model.
    #[must_use]
    pub const fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// The reply to `request`, without streaming it.
    #[must_use]
    pub fn reply(&self, request: &ChatRequest) -> Reply {
        match &self.script {
            Script::Always(text) => Reply::Text(text.clone()),
            Script::Calling { name, arguments }
                if request.tools.iter().any(|t| t.name == *name) =>
            {
                Reply::ToolCall(ToolCall {
                    id: call_id(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                })
            }
            Script::Calling { .. } | Script::Intents => Self::by_intent(request),
        }
    }

    fn by_intent(request: &ChatRequest) -> Reply {
        if let Some(summary) = summary(request) {
            return Reply::Text(summary);
        }
        if request
            .messages
            .last()
            .is_some_and(|m| m.role == ChatRole::Tool)
        {
            return Reply::Text("Thank you for holding. I'm connecting you now.".to_owned());
        }
        let said = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == ChatRole::User)
            .map_or("", |m| m.content.as_str());
        let intent = intent(said);
        tracing::debug!(?intent, "scripted reply");
        let text = match intent {
            Intent::Transfer if request.tools.iter().any(|t| t.name == TRANSFER_TOOL) => {
                return Reply::ToolCall(ToolCall {
                    id: call_id(),
                    name: TRANSFER_TOOL.to_owned(),
                    arguments: serde_json::json!({
                        "reason": "the caller asked to speak to a person"
                    }),
                });
            }
            Intent::Transfer => {
                "I can't transfer calls right now, but I'm happy to help you myself. What do you need?"
                    .to_owned()
            }
            Intent::Goodbye => "Thank you for calling. Goodbye!".to_owned(),
            Intent::Hours => {
                "We are open from nine to five, Monday to Friday. Is there anything else I can help with?"
                    .to_owned()
            }
            Intent::Billing => {
                "I can help with billing. Could you tell me the account number or the invoice you are calling about?"
                    .to_owned()
            }
            Intent::Greeting => match persona_name(&request.messages) {
                Some(name) => format!("Hello, this is {name}. How can I help you today?"),
                None => "Hello! How can I help you today?".to_owned(),
            },
            Intent::Fallback => FALLBACK.to_owned(),
        };
        Reply::Text(text)
    }
}

/// A request to summarise a call (its system prompt starts with
/// "Summarise"): what the lines starting `Caller:` said, joined.
fn summary(request: &ChatRequest) -> Option<String> {
    let system = request
        .messages
        .first()
        .filter(|m| m.role == ChatRole::System)?;
    if !system.content.trim_start().starts_with("Summarise") {
        return None;
    }
    let said: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == ChatRole::User)
        .flat_map(|m| m.content.lines())
        .filter_map(|line| line.strip_prefix("Caller:"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    Some(if said.is_empty() {
        "The caller said nothing.".to_owned()
    } else {
        format!("The caller said: {}", said.join(" / "))
    })
}

/// The chunks that stream `reply`: a delta per word (each keeping the space
/// after it, so the deltas add up to the text), then the end.
fn chunks(reply: Reply) -> Vec<ChatChunk> {
    match reply {
        Reply::Text(text) => text
            .split_inclusive(' ')
            .map(|word| ChatChunk::Text {
                delta: word.to_owned(),
            })
            .chain(std::iter::once(ChatChunk::Finished {
                reason: FinishReason::Stop,
                usage: None,
            }))
            .collect(),
        Reply::ToolCall(call) => vec![
            ChatChunk::ToolCall { call },
            ChatChunk::Finished {
                reason: FinishReason::ToolCalls,
                usage: None,
            },
        ],
    }
}

#[async_trait]
impl LanguageModel for ScriptedReplies {
    /// # Errors
    /// Never: there is always a reply.
    async fn stream_chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let chunks = chunks(self.reply(request));
        let delay = self.chunk_delay;
        Ok(futures::stream::iter(chunks)
            .then(move |chunk| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(chunk)
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;
    use iace_domain::ports::ToolSpec;

    use super::*;

    fn request(system: &str, said: &str, tools: &[&str]) -> ChatRequest {
        ChatRequest {
            model: None,
            messages: vec![
                ChatMessage::new(ChatRole::System, system),
                ChatMessage::new(ChatRole::Assistant, "Hello, how can I help?"),
                ChatMessage::new(ChatRole::User, said),
            ],
            tools: tools
                .iter()
                .map(|name| ToolSpec {
                    name: (*name).to_owned(),
                    description: String::new(),
                    parameters: serde_json::json!({"type": "object"}),
                })
                .collect(),
            temperature: None,
            max_tokens: None,
        }
    }

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Text(text) => text,
            Reply::ToolCall(call) => panic!("a tool call: {call:?}"),
        }
    }

    async fn collect(model: &ScriptedReplies, request: &ChatRequest) -> Vec<ChatChunk> {
        model
            .stream_chat(request)
            .await
            .expect("stream")
            .try_collect()
            .await
            .expect("chunks")
    }

    #[test]
    fn intents_are_found_by_keywords_in_order() {
        let cases = [
            ("Can I speak to a human please?", Intent::Transfer),
            ("I want your MANAGER, now. Bye.", Intent::Transfer),
            ("ok that's all, bye", Intent::Goodbye),
            ("That\u{2019}s all", Intent::Goodbye),
            ("When do you open on Saturday?", Intent::Hours),
            ("What time do you close?", Intent::Hours),
            ("Why was I charged twice on my invoice?", Intent::Billing),
            ("Hi there", Intent::Greeting),
            ("", Intent::Greeting),
            ("The weather is odd today", Intent::Fallback),
        ];
        for (said, expected) in cases {
            assert_eq!(intent(said), expected, "{said}");
        }
    }

    #[test]
    fn the_persona_name_comes_from_the_system_prompt() {
        let name = |system: &str| persona_name(&[ChatMessage::new(ChatRole::System, system)]);
        assert_eq!(name("You are Sam, a helpful agent."), Some("Sam".into()));
        assert_eq!(
            name("Be brief. You are Mary Ann from Acme"),
            Some("Mary Ann".into())
        );
        assert_eq!(name("You are a helpful agent."), None);
        assert_eq!(name("Answer politely."), None);
        assert_eq!(
            persona_name(&[ChatMessage::new(ChatRole::User, "You are Sam")]),
            None
        );
    }

    #[test]
    fn greetings_use_the_persona_name() {
        let model = ScriptedReplies::new();
        assert_eq!(
            text(model.reply(&request("You are Sam, a helpful agent.", "Hello?", &[]))),
            "Hello, this is Sam. How can I help you today?"
        );
        assert_eq!(
            text(model.reply(&request("Be helpful.", "good morning", &[]))),
            "Hello! How can I help you today?"
        );
        let opening = ChatRequest {
            messages: vec![ChatMessage::new(ChatRole::System, "You are Ana.")],
            ..request("", "", &[])
        };
        assert_eq!(
            text(model.reply(&opening)),
            "Hello, this is Ana. How can I help you today?",
            "with no caller message yet, it opens the call"
        );
    }

    #[test]
    fn asking_for_a_person_calls_the_transfer_tool_when_offered() {
        let model = ScriptedReplies::new();
        let offered = request("You are Sam.", "Let me talk to an agent", &[TRANSFER_TOOL]);
        match model.reply(&offered) {
            Reply::ToolCall(call) => {
                assert_eq!(call.name, TRANSFER_TOOL);
                assert!(call.id.starts_with("call_"));
                assert!(call.arguments["reason"].is_string());
            }
            Reply::Text(text) => panic!("{text}"),
        }
        let not_offered = request("You are Sam.", "Let me talk to an agent", &["other"]);
        assert!(text(model.reply(&not_offered)).starts_with("I can't transfer"));
        let mut after_tool = offered;
        after_tool
            .messages
            .push(ChatMessage::new(ChatRole::Tool, "{\"ok\":true}"));
        assert!(text(model.reply(&after_tool)).contains("connecting you"));
    }

    #[test]
    fn other_intents_have_their_canned_answer() {
        let model = ScriptedReplies::new();
        let reply = |said: &str| text(model.reply(&request("You are Sam.", said, &[])));
        assert!(reply("what are your opening hours").contains("nine to five"));
        assert!(reply("I have a question about my bill").contains("billing"));
        assert_eq!(reply("goodbye"), "Thank you for calling. Goodbye!");
        assert_eq!(reply("purple elephants"), FALLBACK);
    }

    #[test]
    fn fixed_replies_ignore_what_is_said() {
        let always = ScriptedReplies::always("Fixed answer.");
        assert_eq!(
            always.reply(&request(
                "",
                "Put me through to a manager",
                &[TRANSFER_TOOL]
            )),
            Reply::Text("Fixed answer.".into())
        );
        let calling = ScriptedReplies::always_calling("lookup", serde_json::json!({"id": 7}));
        match calling.reply(&request("", "hello", &["lookup"])) {
            Reply::ToolCall(call) => {
                assert_eq!(call.name, "lookup");
                assert_eq!(call.arguments, serde_json::json!({"id": 7}));
            }
            Reply::Text(text) => panic!("{text}"),
        }
        assert_eq!(
            text(calling.reply(&request("", "bye", &[]))),
            "Thank you for calling. Goodbye!",
            "a tool the request does not offer is never called"
        );
    }

    #[tokio::test]
    async fn replies_stream_word_by_word_then_finish() {
        let model = ScriptedReplies::always("We are open today.");
        let chunks = collect(&model, &request("", "", &[])).await;
        assert_eq!(
            chunks,
            vec![
                ChatChunk::Text {
                    delta: "We ".into()
                },
                ChatChunk::Text {
                    delta: "are ".into()
                },
                ChatChunk::Text {
                    delta: "open ".into()
                },
                ChatChunk::Text {
                    delta: "today.".into()
                },
                ChatChunk::Finished {
                    reason: FinishReason::Stop,
                    usage: None
                },
            ]
        );
        let model = ScriptedReplies::new();
        let chunks = collect(&model, &request("", "a human please", &[TRANSFER_TOOL])).await;
        assert_eq!(chunks.len(), 2);
        assert!(matches!(chunks[0], ChatChunk::ToolCall { .. }));
        assert_eq!(
            chunks[1],
            ChatChunk::Finished {
                reason: FinishReason::ToolCalls,
                usage: None
            }
        );
    }

    #[tokio::test]
    async fn the_chunk_delay_paces_the_stream() {
        let model =
            ScriptedReplies::always("one two three").with_chunk_delay(Duration::from_millis(20));
        let started = tokio::time::Instant::now();
        let chunks = collect(&model, &request("", "", &[])).await;
        assert_eq!(chunks.len(), 4);
        assert!(
            started.elapsed() >= Duration::from_millis(80),
            "a delay before each chunk"
        );
    }

    #[test]
    fn a_summary_request_gets_an_extract_of_the_callers_lines() {
        let request = ChatRequest {
            model: None,
            messages: vec![
                ChatMessage::new(ChatRole::System, "Summarise the call below."),
                ChatMessage::new(
                    ChatRole::User,
                    "Agent: Hello!\nCaller: What time do you open?\nAgent: Nine.\nCaller: Thanks\n",
                ),
            ],
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
        };
        assert_eq!(
            ScriptedReplies::new().reply(&request),
            Reply::Text("The caller said: What time do you open? / Thanks".into())
        );
    }
}
