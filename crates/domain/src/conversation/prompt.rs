//! The language model's prompt for the next reply, within a token budget.
//!
//! [`build_prompt`] lays the prompt out as one system message — the persona's
//! instructions, fixed rules for speaking on the phone, what we remember about
//! the caller and what has worked in similar calls — followed by the
//! conversation so far. A long call or a rich customer history must not push
//! the prompt past the model's context or slow every reply, so when the
//! [`estimate_tokens`] total exceeds the [`PromptBudget`], parts are dropped
//! in order of how little they are missed: the weakest patterns first, then the
//! least relevant memories, then the oldest turns. The persona's instructions,
//! the voice rules and the caller's latest words always stay.

use serde::{Deserialize, Serialize};

use super::Turn;
use crate::model::Speaker;
use crate::ports::{ChatMessage, ChatRole};

/// A learned pattern to suggest to the model: in a situation like `trigger`,
/// `response` worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternHint<'a> {
    /// The situation, e.g. "the caller asks about a late fee".
    pub trigger: &'a str,
    /// What worked, e.g. "offer to waive it once".
    pub response: &'a str,
}

/// What the prompt is built from.
#[derive(Debug, Clone, Copy)]
pub struct PromptInputs<'a> {
    /// The persona's instructions.
    pub system_prompt: &'a str,
    /// The persona's name, as the agent introduces itself.
    pub persona_name: &'a str,
    /// What we remember about the caller: one line per memory, best first
    /// ([`crate::memory::MemoryContext`]'s text); may be empty. Blank lines
    /// are ignored.
    pub memory: &'a str,
    /// Learned patterns, best first; may be empty.
    pub patterns: &'a [PatternHint<'a>],
    /// The conversation so far, oldest first.
    pub turns: &'a [Turn],
}

/// How large the prompt may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptBudget {
    /// Upper bound on [`Prompt::estimated_tokens`] (default 3000), kept unless
    /// the parts that are never dropped alone exceed it.
    pub max_tokens: usize,
}

impl Default for PromptBudget {
    fn default() -> Self {
        Self { max_tokens: 3000 }
    }
}

/// The prompt for the next reply, and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// One [`ChatRole::System`] message, then the conversation as alternating
    /// [`ChatRole::User`] (caller) and [`ChatRole::Assistant`] (agent)
    /// messages.
    pub messages: Vec<ChatMessage>,
    /// [`estimate_tokens`] summed over `messages`.
    pub estimated_tokens: usize,
    /// How many of the oldest turns were left out for the budget: the
    /// conversation in the prompt is `inputs.turns[turns_dropped..]` (turns
    /// skipped because they are empty or not by the caller or the agent do
    /// not count as dropped).
    pub turns_dropped: usize,
    /// The prompt holds `inputs.patterns[..patterns_used]`.
    pub patterns_used: usize,
    /// The prompt holds the first `memory_lines_used` non-blank lines of
    /// `inputs.memory`.
    pub memory_lines_used: usize,
}

/// A conservative token estimate for one message holding `text`:
/// `ceil(chars / 4) + 4`, the 4 standing for the message's framing.
///
/// Real tokenizers average about four characters per token on English; this
/// rounds up so the budget errs on the side of a shorter prompt.
#[must_use]
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

/// Builds the prompt for the next reply within `budget`.
///
/// The system message is the persona's prompt, a paragraph of voice rules
/// (you are `persona_name` on a phone call; one to three short spoken
/// sentences; no lists, markdown, emoji or URLs; ask the caller to repeat what
/// you did not understand), then — when there are any — "What you know about
/// this caller:" with the memory lines and "What has worked in similar calls:"
/// with a `- When <trigger>: <response>` line per pattern. The conversation
/// follows: caller turns as user messages, agent turns as assistant messages;
/// consecutive turns by the same speaker are merged, separated by a space; an
/// interrupted agent turn ends with ` —` so the model knows it was cut off;
/// empty turns and turns by a human agent or the system are left out. The
/// conversation may end with the agent's turn (the caller may have said
/// nothing).
///
/// While the estimate exceeds `budget.max_tokens`, parts are dropped in this
/// order: patterns, worst (last) first; memory lines, last first; the oldest
/// conversation messages, one at a time. The persona's prompt, the voice rules
/// and the latest caller message (with anything after it) are never dropped,
/// so with a tiny budget the result may still exceed it.
#[must_use]
pub fn build_prompt(inputs: &PromptInputs<'_>, budget: PromptBudget) -> Prompt {
    let memory: Vec<&str> = inputs
        .memory
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let patterns: Vec<String> = inputs.patterns.iter().map(pattern_line).collect();
    let conversation = conversation(inputs.turns);
    // Messages before the latest caller message may be dropped.
    let droppable = conversation
        .iter()
        .rposition(|m| m.message.role == ChatRole::User)
        .unwrap_or(conversation.len());

    let system_tokens_with = |patterns_used: usize, memory_used: usize| {
        estimate_tokens(&system_text(
            inputs,
            &memory[..memory_used],
            &patterns[..patterns_used],
        ))
    };
    let fits = |tokens: usize| tokens <= budget.max_tokens;

    let mut patterns_used = patterns.len();
    let mut memory_used = memory.len();
    let mut conversation_tokens: usize = conversation
        .iter()
        .map(|m| estimate_tokens(&m.message.content))
        .sum();
    while patterns_used > 0
        && !fits(system_tokens_with(patterns_used, memory_used) + conversation_tokens)
    {
        patterns_used -= 1;
    }
    while memory_used > 0
        && !fits(system_tokens_with(patterns_used, memory_used) + conversation_tokens)
    {
        memory_used -= 1;
    }
    let system = system_text(inputs, &memory[..memory_used], &patterns[..patterns_used]);
    let system_tokens = estimate_tokens(&system);
    let mut kept_from = 0;
    while kept_from < droppable && !fits(system_tokens + conversation_tokens) {
        conversation_tokens -= estimate_tokens(&conversation[kept_from].message.content);
        kept_from += 1;
    }

    let turns_dropped = if kept_from == 0 {
        0
    } else {
        conversation
            .get(kept_from)
            .map_or(inputs.turns.len(), |m| m.first_turn)
    };
    let mut messages = Vec::with_capacity(1 + conversation.len() - kept_from);
    messages.push(ChatMessage::new(ChatRole::System, system));
    messages.extend(conversation.into_iter().skip(kept_from).map(|m| m.message));
    Prompt {
        messages,
        estimated_tokens: system_tokens + conversation_tokens,
        turns_dropped,
        patterns_used,
        memory_lines_used: memory_used,
    }
}

/// The system message: persona prompt, voice rules, memory, patterns.
fn system_text(inputs: &PromptInputs<'_>, memory: &[&str], patterns: &[String]) -> String {
    let mut sections = Vec::with_capacity(4);
    let persona_prompt = inputs.system_prompt.trim();
    if !persona_prompt.is_empty() {
        sections.push(persona_prompt.to_owned());
    }
    sections.push(voice_rules(inputs.persona_name.trim()));
    if !memory.is_empty() {
        sections.push(format!(
            "What you know about this caller:\n{}",
            memory.join("\n")
        ));
    }
    if !patterns.is_empty() {
        sections.push(format!(
            "What has worked in similar calls:\n{}",
            patterns.join("\n")
        ));
    }
    sections.join("\n\n")
}

fn voice_rules(persona_name: &str) -> String {
    let who = if persona_name.is_empty() {
        "You are on a phone call.".to_owned()
    } else {
        format!("You are {persona_name}, on a phone call.")
    };
    format!(
        "{who} Everything you write is spoken aloud to the caller: reply in one to three \
         short spoken sentences, without lists, markdown, emoji or URLs. If you did not \
         understand the caller, ask them to repeat."
    )
}

fn pattern_line(pattern: &PatternHint<'_>) -> String {
    format!(
        "- When {}: {}",
        collapse_whitespace(pattern.trigger),
        collapse_whitespace(pattern.response)
    )
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A conversation message and the index of the first turn it stands for
/// (turns left out just before it count as its own).
struct ConversationMessage {
    message: ChatMessage,
    first_turn: usize,
}

/// The turns as chat messages: left-out turns skipped, same-speaker runs
/// merged, interruptions marked.
fn conversation(turns: &[Turn]) -> Vec<ConversationMessage> {
    let mut messages: Vec<ConversationMessage> = Vec::new();
    let mut first_turn = 0;
    for (index, turn) in turns.iter().enumerate() {
        let role = match turn.speaker {
            Speaker::Caller => ChatRole::User,
            Speaker::Bot => ChatRole::Assistant,
            Speaker::HumanAgent | Speaker::System => continue,
        };
        let text = turn.text.trim();
        if text.is_empty() {
            continue;
        }
        let text = if turn.interrupted && role == ChatRole::Assistant {
            format!("{text} —")
        } else {
            text.to_owned()
        };
        match messages.last_mut() {
            Some(last) if last.message.role == role => {
                last.message.content.push(' ');
                last.message.content.push_str(&text);
            }
            _ => messages.push(ConversationMessage {
                message: ChatMessage::new(role, text),
                first_turn,
            }),
        }
        first_turn = index + 1;
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn turn(speaker: Speaker, text: &str) -> Turn {
        Turn {
            sequence: 0,
            speaker,
            text: text.to_owned(),
            started_ms: 0,
            ended_ms: 0,
            sentiment: None,
            interrupted: false,
        }
    }

    fn caller(text: &str) -> Turn {
        turn(Speaker::Caller, text)
    }

    fn bot(text: &str) -> Turn {
        turn(Speaker::Bot, text)
    }

    fn interrupted(text: &str) -> Turn {
        Turn {
            interrupted: true,
            ..bot(text)
        }
    }

    fn inputs<'a>(
        memory: &'a str,
        patterns: &'a [PatternHint<'a>],
        turns: &'a [Turn],
    ) -> PromptInputs<'a> {
        PromptInputs {
            system_prompt: "You help customers of Acme Dental book appointments.",
            persona_name: "Ava",
            memory,
            patterns,
            turns,
        }
    }

    const RULES: &str = "You are Ava, on a phone call. Everything you write is spoken aloud to \
        the caller: reply in one to three short spoken sentences, without lists, markdown, \
        emoji or URLs. If you did not understand the caller, ask them to repeat.";

    const UNLIMITED: PromptBudget = PromptBudget {
        max_tokens: usize::MAX,
    };

    fn budget(max_tokens: usize) -> PromptBudget {
        PromptBudget { max_tokens }
    }

    fn conversation_of(prompt: &Prompt) -> Vec<(ChatRole, &str)> {
        prompt.messages[1..]
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect()
    }

    fn total(messages: &[ChatMessage]) -> usize {
        messages.iter().map(|m| estimate_tokens(&m.content)).sum()
    }

    const PATTERNS: [PatternHint<'static>; 2] = [
        PatternHint {
            trigger: "the caller asks about a late fee",
            response: "offer to waive it once",
        },
        PatternHint {
            trigger: "the caller\nis in a hurry",
            response: "  skip the small talk ",
        },
    ];

    #[test]
    fn estimates_a_quarter_token_per_char_plus_four() {
        assert_eq!(estimate_tokens(""), 4);
        assert_eq!(estimate_tokens("abcd"), 5);
        assert_eq!(estimate_tokens("abcde"), 6);
        assert_eq!(estimate_tokens("日本語です"), 6, "characters, not bytes");
        assert_eq!(PromptBudget::default().max_tokens, 3000);
    }

    #[test]
    fn lays_out_system_message_and_conversation() {
        let memory = "- 2025-05-20: Booked a cleaning (facts: prefers mornings)\n\n\
                      - 2025-04-02: Disputed a late fee\n";
        let turns = [
            bot("Hello, this is Ava from Acme Dental."),
            caller("Hi, I need to move my appointment."),
            bot("Of course. Which day suits you?"),
            caller("  Friday morning?  "),
        ];
        let prompt = build_prompt(&inputs(memory, &PATTERNS, &turns), UNLIMITED);
        let system = format!(
            "You help customers of Acme Dental book appointments.\n\n{RULES}\n\n\
             What you know about this caller:\n\
             - 2025-05-20: Booked a cleaning (facts: prefers mornings)\n\
             - 2025-04-02: Disputed a late fee\n\n\
             What has worked in similar calls:\n\
             - When the caller asks about a late fee: offer to waive it once\n\
             - When the caller is in a hurry: skip the small talk"
        );
        assert_eq!(
            prompt.messages,
            vec![
                ChatMessage::new(ChatRole::System, system),
                ChatMessage::new(ChatRole::Assistant, "Hello, this is Ava from Acme Dental."),
                ChatMessage::new(ChatRole::User, "Hi, I need to move my appointment."),
                ChatMessage::new(ChatRole::Assistant, "Of course. Which day suits you?"),
                ChatMessage::new(ChatRole::User, "Friday morning?"),
            ]
        );
        assert_eq!(prompt.estimated_tokens, total(&prompt.messages));
        assert_eq!(prompt.turns_dropped, 0);
        assert_eq!(prompt.patterns_used, 2);
        assert_eq!(prompt.memory_lines_used, 2);
    }

    #[test]
    fn leaves_out_empty_sections() {
        let turns = [caller("Hello?")];
        let prompt = build_prompt(&inputs(" \n", &[], &turns), UNLIMITED);
        assert_eq!(
            prompt.messages[0].content,
            format!("You help customers of Acme Dental book appointments.\n\n{RULES}")
        );
        let bare = PromptInputs {
            system_prompt: "  ",
            persona_name: "",
            ..inputs("", &[], &[])
        };
        let prompt = build_prompt(&bare, UNLIMITED);
        assert_eq!(prompt.messages.len(), 1);
        assert!(
            prompt.messages[0]
                .content
                .starts_with("You are on a phone call. Everything you write")
        );
        assert_eq!(prompt.memory_lines_used, 0);
        assert_eq!(prompt.patterns_used, 0);
    }

    #[test]
    fn merges_turns_by_the_same_speaker_and_skips_the_rest() {
        let turns = [
            turn(Speaker::System, "Call answered"),
            caller("Hi."),
            caller(" "),
            caller("Is anyone there?"),
            bot(""),
            bot("Yes, hello!"),
            turn(Speaker::HumanAgent, "(whispering)"),
            bot("How can I help?"),
            turn(Speaker::System, "Recording started"),
            caller("I have a question."),
        ];
        let prompt = build_prompt(&inputs("", &[], &turns), UNLIMITED);
        assert_eq!(
            conversation_of(&prompt),
            [
                (ChatRole::User, "Hi. Is anyone there?"),
                (ChatRole::Assistant, "Yes, hello! How can I help?"),
                (ChatRole::User, "I have a question."),
            ]
        );
    }

    #[test]
    fn marks_interrupted_agent_turns() {
        let turns = [
            bot("Your balance is one hundred"),
            caller("Wait, which account?"),
            interrupted("The savings"),
            interrupted("  "),
            bot("account."),
            Turn {
                interrupted: true,
                ..caller("Sorry,")
            },
        ];
        let prompt = build_prompt(&inputs("", &[], &turns), UNLIMITED);
        assert_eq!(
            conversation_of(&prompt),
            [
                (ChatRole::Assistant, "Your balance is one hundred"),
                (ChatRole::User, "Wait, which account?"),
                (ChatRole::Assistant, "The savings — account."),
                (ChatRole::User, "Sorry,"),
            ]
        );
    }

    #[test]
    fn the_conversation_may_end_with_the_agent() {
        let turns = [caller("Hello?"), bot("Hi! Are you still there?")];
        let prompt = build_prompt(&inputs("", &[], &turns), UNLIMITED);
        assert_eq!(
            conversation_of(&prompt),
            [
                (ChatRole::User, "Hello?"),
                (ChatRole::Assistant, "Hi! Are you still there?")
            ]
        );
    }

    /// A long call with memory and patterns, for the dropping tests.
    fn long_call() -> (String, Vec<Turn>) {
        let memory = (1..=4)
            .map(|i| format!("- 2025-05-0{i}: Memory number {i} about this caller"))
            .collect::<Vec<_>>()
            .join("\n");
        let turns = (0..10)
            .map(|i| {
                let text = format!("Message {i} of the call, padded with some words.");
                if i % 2 == 0 {
                    caller(&text)
                } else {
                    bot(&text)
                }
            })
            .collect();
        (memory, turns)
    }

    #[test]
    fn drops_patterns_first_worst_first() {
        let (memory, turns) = long_call();
        let inputs = inputs(&memory, &PATTERNS, &turns);
        let full = build_prompt(&inputs, UNLIMITED);
        let pattern_tokens = estimate_tokens(&full.messages[0].content)
            - estimate_tokens(&system_text(
                &inputs,
                &memory.lines().collect::<Vec<_>>(),
                &[],
            ));

        let prompt = build_prompt(&inputs, budget(full.estimated_tokens - 1));
        assert_eq!(prompt.patterns_used, 1);
        assert!(prompt.messages[0].content.contains("late fee"));
        assert!(!prompt.messages[0].content.contains("hurry"));
        assert_eq!((prompt.memory_lines_used, prompt.turns_dropped), (4, 0));

        let prompt = build_prompt(&inputs, budget(full.estimated_tokens - pattern_tokens));
        assert_eq!(prompt.patterns_used, 0);
        assert!(!prompt.messages[0].content.contains("What has worked"));
        assert_eq!((prompt.memory_lines_used, prompt.turns_dropped), (4, 0));
        assert!(prompt.estimated_tokens <= full.estimated_tokens - pattern_tokens);
    }

    #[test]
    fn then_memory_lines_last_first() {
        let (memory, turns) = long_call();
        let inputs = inputs(&memory, &PATTERNS, &turns);
        let no_patterns = build_prompt(
            &PromptInputs {
                patterns: &[],
                ..inputs
            },
            UNLIMITED,
        );

        let prompt = build_prompt(&inputs, budget(no_patterns.estimated_tokens - 1));
        assert_eq!(prompt.patterns_used, 0);
        assert_eq!(prompt.memory_lines_used, 3);
        assert!(prompt.messages[0].content.contains("Memory number 3"));
        assert!(!prompt.messages[0].content.contains("Memory number 4"));
        assert_eq!(prompt.turns_dropped, 0);
        assert_eq!(prompt.messages.len(), 11);
    }

    #[test]
    fn then_the_oldest_turns() {
        let (memory, turns) = long_call();
        let inputs = inputs(&memory, &PATTERNS, &turns);
        let bare = build_prompt(
            &PromptInputs {
                patterns: &[],
                memory: "",
                ..inputs
            },
            UNLIMITED,
        );
        let first_message = estimate_tokens(&turns[0].text);

        let prompt = build_prompt(&inputs, budget(bare.estimated_tokens - 1));
        assert_eq!((prompt.patterns_used, prompt.memory_lines_used), (0, 0));
        assert_eq!(prompt.turns_dropped, 1);
        assert_eq!(prompt.messages[1].content, turns[1].text);
        assert_eq!(
            prompt.estimated_tokens,
            bare.estimated_tokens - first_message
        );

        let prompt = build_prompt(&inputs, budget(bare.estimated_tokens - first_message));
        assert_eq!(prompt.turns_dropped, 1, "drops no more than needed");
    }

    #[test]
    fn turns_dropped_counts_input_turns() {
        let turns = [
            turn(Speaker::System, "Call answered"),
            caller("One."),
            caller("Two."),
            bot("Three."),
            turn(Speaker::HumanAgent, "Four."),
            caller("Five."),
        ];
        let inputs = inputs("", &[], &turns);
        let full = build_prompt(&inputs, UNLIMITED);
        assert_eq!(full.turns_dropped, 0, "a skipped turn is not a dropped one");
        let prompt = build_prompt(&inputs, budget(full.estimated_tokens - 1));
        assert_eq!(prompt.turns_dropped, 3);
        assert_eq!(conversation_of(&prompt)[0], (ChatRole::Assistant, "Three."));
        let prompt = build_prompt(&inputs, budget(0));
        assert_eq!(prompt.turns_dropped, 4);
        assert_eq!(conversation_of(&prompt), [(ChatRole::User, "Five.")]);
    }

    #[test]
    fn never_drops_the_persona_the_rules_or_the_latest_caller_turn() {
        let (memory, mut turns) = long_call();
        turns.push(bot("And one more thing from the agent."));
        let inputs = inputs(&memory, &PATTERNS, &turns);
        let prompt = build_prompt(&inputs, budget(0));
        // The agent's two last turns merge into the message after the caller's.
        let agent_says = format!("{} And one more thing from the agent.", turns[9].text);
        assert_eq!(
            prompt.messages[0].content,
            format!("You help customers of Acme Dental book appointments.\n\n{RULES}")
        );
        assert_eq!(
            conversation_of(&prompt),
            [
                (ChatRole::User, turns[8].text.as_str()),
                (ChatRole::Assistant, agent_says.as_str()),
            ]
        );
        assert_eq!(prompt.turns_dropped, 8);
        assert!(prompt.estimated_tokens > 0, "over a budget it cannot meet");
        assert_eq!(prompt.estimated_tokens, total(&prompt.messages));

        // Without a caller turn, every turn may go.
        let greeting = [bot("Hello, this is Ava.")];
        let prompt = build_prompt(
            &PromptInputs {
                turns: &greeting,
                ..inputs
            },
            budget(0),
        );
        assert_eq!(prompt.messages.len(), 1);
        assert_eq!(prompt.turns_dropped, 1);
    }

    fn any_turn() -> impl Strategy<Value = Turn> {
        (
            prop::sample::select(vec![
                Speaker::Caller,
                Speaker::Caller,
                Speaker::Bot,
                Speaker::Bot,
                Speaker::HumanAgent,
                Speaker::System,
            ]),
            "\\PC{0,60}",
            any::<bool>(),
        )
            .prop_map(|(speaker, text, interrupted)| Turn {
                interrupted,
                ..turn(speaker, &text)
            })
    }

    proptest! {
        #[test]
        fn fits_the_budget_whenever_the_fixed_parts_do(
            system_prompt in "\\PC{0,200}",
            memory in prop::collection::vec("\\PC{0,80}", 0..6),
            patterns in prop::collection::vec(("\\PC{0,40}", "\\PC{0,40}"), 0..5),
            turns in prop::collection::vec(any_turn(), 0..20),
            max_tokens in 0usize..600,
        ) {
            let memory = memory.join("\n");
            let patterns: Vec<PatternHint<'_>> = patterns
                .iter()
                .map(|(trigger, response)| PatternHint { trigger: trigger.as_str(), response: response.as_str() })
                .collect();
            let inputs = PromptInputs {
                system_prompt: &system_prompt,
                persona_name: "Ava",
                memory: &memory,
                patterns: &patterns,
                turns: &turns,
            };
            let full = build_prompt(&inputs, UNLIMITED);
            let prompt = build_prompt(&inputs, budget(max_tokens));

            prop_assert_eq!(prompt.estimated_tokens, total(&prompt.messages));
            // The fixed parts: the bare system message, and the conversation
            // from the latest caller message on.
            let bare = build_prompt(&PromptInputs { memory: "", patterns: &[], ..inputs }, UNLIMITED);
            let latest_caller = full.messages.iter().rposition(|m| m.role == ChatRole::User);
            let fixed = estimate_tokens(&bare.messages[0].content)
                + latest_caller.map_or(0, |i| total(&full.messages[i..]));
            if fixed <= max_tokens {
                prop_assert!(prompt.estimated_tokens <= max_tokens);
            }
            // Kept turns are a suffix of the conversation, and the one
            // `turns_dropped` names.
            let kept = &prompt.messages[1..];
            prop_assert!(full.messages[1..].ends_with(kept));
            let from_suffix = build_prompt(
                &PromptInputs { turns: &turns[prompt.turns_dropped..], ..inputs },
                UNLIMITED,
            );
            prop_assert_eq!(&from_suffix.messages[1..], kept);
            if let Some(i) = latest_caller {
                prop_assert!(kept.len() >= full.messages.len() - i);
            }
            // Dropping follows the order: patterns, memory, turns.
            if prompt.memory_lines_used < full.memory_lines_used {
                prop_assert_eq!(prompt.patterns_used, 0);
            }
            if kept.len() < full.messages.len() - 1 {
                prop_assert_eq!(prompt.patterns_used + prompt.memory_lines_used, 0);
            }
            prop_assert!(prompt.patterns_used <= patterns.len());
        }
    }
}
