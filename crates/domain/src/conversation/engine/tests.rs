use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::escalation::EscalationPolicy;

const GREETING: &str = "Hi, this is Sam from Acme. How can I help?";

fn policy() -> Arc<CompiledEscalationPolicy> {
    Arc::new(
        EscalationPolicy::default()
            .compile()
            .expect("default policy"),
    )
}

fn engine_with(config: EngineConfig, tier: CustomerTier) -> ConversationEngine {
    ConversationEngine::new(config, policy(), tier, GREETING)
}

fn engine() -> ConversationEngine {
    engine_with(EngineConfig::default(), CustomerTier::Standard)
}

/// Drives an engine and keeps what it did.
struct Call {
    engine: ConversationEngine,
    now: Millis,
    all: Vec<Action>,
}

impl Call {
    fn new(engine: ConversationEngine) -> Self {
        Self {
            engine,
            now: 0,
            all: Vec::new(),
        }
    }

    /// Starts the call and plays the greeting to the end.
    fn greeted() -> Self {
        let mut call = Self::new(engine());
        let actions = call.send(|at| Event::Started { at });
        let greeting = said(&actions, LineKind::Greeting).expect("greeting");
        call.play_line(greeting);
        call
    }

    fn send(&mut self, event: impl FnOnce(Millis) -> Event) -> Vec<Action> {
        let actions = self.engine.on_event(event(self.now));
        self.all.extend(actions.iter().cloned());
        actions
    }

    fn wait(&mut self, ms: Millis) -> Vec<Action> {
        self.now += ms;
        self.send(|at| Event::Tick { at })
    }

    fn play_line(&mut self, speech: SpeechId) -> Vec<Action> {
        self.now += 10;
        let mut actions = self.send(|at| Event::AudioDone {
            at,
            speech,
            chunks: 1,
        });
        self.now += 10;
        actions.extend(self.send(|at| Event::Played { at, speech, seq: 0 }));
        actions
    }

    /// The caller says `text` as one final segment ending the turn, then the
    /// grace passes.
    fn caller_says(&mut self, text: &str) -> Vec<Action> {
        self.now += 50;
        let mut actions = self.send(|at| Event::SpeechStarted { at });
        self.now += 300;
        let text = text.to_owned();
        actions.extend(self.send(|at| Event::Final {
            at,
            text,
            speech_final: true,
        }));
        actions
    }

    /// Answers every context request so far.
    fn context_ready(&mut self, actions: &[Action]) -> Vec<Action> {
        let mut out = Vec::new();
        for action in actions {
            if let Action::FetchContext { request, .. } = action {
                let request = *request;
                out.extend(self.send(|at| Event::ContextReady { at, request }));
            }
        }
        out
    }

    /// A reply streams `chunks` and is played to the end.
    fn reply(&mut self, speech: SpeechId, chunks: &[&str]) -> Vec<Action> {
        let mut out = Vec::new();
        for (seq, text) in chunks.iter().enumerate() {
            let (seq, text) = (seq as u32, (*text).to_owned());
            self.now += 5;
            out.extend(self.send(|at| Event::ReplyChunk {
                at,
                speech,
                seq,
                text,
            }));
        }
        let chunks_n = chunks.len() as u32;
        out.extend(self.send(|at| Event::AudioDone {
            at,
            speech,
            chunks: chunks_n,
        }));
        for seq in 0..chunks_n {
            self.now += 400;
            out.extend(self.send(|at| Event::Played { at, speech, seq }));
        }
        out
    }

    fn turns(&self) -> Vec<(Speaker, String, bool)> {
        self.engine
            .turns()
            .iter()
            .map(|t| (t.speaker, t.text.clone(), t.interrupted))
            .collect()
    }
}

fn said(actions: &[Action], kind: LineKind) -> Option<SpeechId> {
    actions.iter().find_map(|a| match a {
        Action::Say {
            speech, kind: k, ..
        } if *k == kind => Some(*speech),
        _ => None,
    })
}

fn started_reply(actions: &[Action]) -> Option<(SpeechId, u32, ContextUse)> {
    actions.iter().find_map(|a| match a {
        Action::StartReply {
            speech,
            turn,
            context,
        } => Some((*speech, *turn, *context)),
        _ => None,
    })
}

#[test]
fn the_greeting_is_said_first_and_recorded_once_heard() {
    let mut call = Call::new(engine());
    let actions = call.send(|at| Event::Started { at });
    assert!(matches!(
        actions.as_slice(),
        [Action::Say { kind: LineKind::Greeting, text, .. }] if text == GREETING
    ));
    let greeting = said(&actions, LineKind::Greeting).expect("greeting");
    let played = call.play_line(greeting);
    assert!(played.contains(&Action::SpeechFinished { speech: greeting }));
    assert_eq!(call.turns(), vec![(Speaker::Bot, GREETING.into(), false)]);
    // A second start changes nothing.
    assert!(call.send(|at| Event::Started { at }).is_empty());
}

#[test]
fn a_turn_ends_after_the_grace_and_the_reply_starts_with_fresh_context() {
    let mut call = Call::greeted();
    let actions = call.caller_says("I'd like to check my order.");
    let fetch = actions
        .iter()
        .find(|a| matches!(a, Action::FetchContext { .. }))
        .cloned();
    assert!(
        matches!(&fetch, Some(Action::FetchContext { text, .. }) if text == "I'd like to check my order."),
        "context is asked for as soon as the turn may end: {actions:?}"
    );
    assert!(started_reply(&actions).is_none(), "not before the grace");
    // The context arrives during the grace; nothing starts yet.
    let ready = call.context_ready(&actions);
    assert!(started_reply(&ready).is_none());
    let after = call.wait(200);
    let (reply, turn, context) = started_reply(&after).expect("reply after the grace");
    assert_eq!(turn, 1, "the greeting is turn 0");
    assert!(matches!(context, ContextUse::Fresh { .. }));
    assert!(after.contains(&Action::AnalyzeSentiment {
        turn: 1,
        text: "I'd like to check my order.".into()
    }));
    call.reply(reply, &["Sure.", "What is the order number?"]);
    assert_eq!(
        call.turns(),
        vec![
            (Speaker::Bot, GREETING.into(), false),
            (Speaker::Caller, "I'd like to check my order.".into(), false),
            (
                Speaker::Bot,
                "Sure. What is the order number?".into(),
                false
            ),
        ]
    );
    assert!(call.all.contains(&Action::SpeechFinished { speech: reply }));
}

#[test]
fn more_words_during_the_grace_keep_the_turn_open() {
    let mut call = Call::greeted();
    call.caller_says("I want to");
    call.now += 100;
    call.send(|at| Event::Final {
        at,
        text: "cancel my subscription".into(),
        speech_final: true,
    });
    let after = call.wait(150);
    assert!(started_reply(&after).is_none(), "the grace restarted");
    let actions = call.wait(60);
    let _ = actions;
    let caller_turns: Vec<_> = call
        .turns()
        .into_iter()
        .filter(|t| t.0 == Speaker::Caller)
        .collect();
    assert_eq!(
        caller_turns,
        vec![(
            Speaker::Caller,
            "I want to cancel my subscription".into(),
            false
        )]
    );
}

#[test]
fn a_late_context_falls_back_after_the_timeout() {
    let mut call = Call::greeted();
    call.caller_says("Hello?");
    let after_grace = call.wait(200);
    assert!(
        started_reply(&after_grace).is_none(),
        "waits for the context"
    );
    assert_eq!(
        call.engine.next_deadline(),
        Some(call.now + 1_500),
        "the filler is the next deadline"
    );
    let filler = call.wait(1_500);
    assert!(said(&filler, LineKind::Filler).is_some(), "{filler:?}");
    let later = call.wait(3_500);
    let (_, _, context) = started_reply(&later).expect("reply without context");
    assert_eq!(context, ContextUse::Stale);
}

#[test]
fn barge_in_cancels_the_reply_clears_audio_and_records_what_was_heard() {
    let mut call = Call::greeted();
    let actions = call.caller_says("What are your opening hours?");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    for (seq, text) in [
        "We open at nine.",
        "We close at five.",
        "On Sundays we rest.",
    ]
    .iter()
    .enumerate()
    {
        let text = (*text).to_owned();
        call.send(|at| Event::ReplyChunk {
            at,
            speech: reply,
            seq: seq as u32,
            text,
        });
    }
    call.now += 400;
    call.send(|at| Event::Played {
        at,
        speech: reply,
        seq: 0,
    });
    // The caller speaks over the agent.
    call.now += 100;
    call.send(|at| Event::SpeechStarted { at });
    let one_word = call.send(|at| Event::Interim {
        at,
        text: "wait".into(),
    });
    assert!(one_word.is_empty(), "one word is not enough: {one_word:?}");
    let two_words = call.send(|at| Event::Interim {
        at,
        text: "wait what".into(),
    });
    assert_eq!(
        &two_words[..2],
        &[Action::CancelSpeech { speech: reply }, Action::ClearAudio]
    );
    assert!(
        call.turns()
            .contains(&(Speaker::Bot, "We open at nine.".into(), true))
    );
    assert_eq!(call.engine.reply_in_flight(), None);
    // Late marks of the cancelled reply change nothing.
    assert!(
        call.send(|at| Event::Played {
            at,
            speech: reply,
            seq: 2
        })
        .is_empty()
    );
}

#[test]
fn a_cough_does_not_interrupt_but_long_speech_does() {
    let mut call = Call::greeted();
    let actions = call.caller_says("Tell me about the plans.");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    call.send(|at| Event::ReplyChunk {
        at,
        speech: reply,
        seq: 0,
        text: "We have three plans.".into(),
    });
    call.send(|at| Event::SpeechStarted { at });
    let cough = call.send(|at| Event::Interim {
        at,
        text: "hm".into(),
    });
    assert!(cough.is_empty());
    // No words for a while: still no barge-in, however long.
    call.send(|at| Event::UtteranceEnd { at });
    assert!(
        call.wait(2_000)
            .iter()
            .all(|a| !matches!(a, Action::CancelSpeech { .. }))
    );
    // A single word held for the minimum duration does interrupt.
    call.send(|at| Event::SpeechStarted { at });
    call.send(|at| Event::Interim {
        at,
        text: "sorry".into(),
    });
    assert_eq!(call.engine.next_deadline(), Some(call.now + 600));
    let held = call.wait(600);
    assert!(
        held.contains(&Action::CancelSpeech { speech: reply }),
        "{held:?}"
    );
}

#[test]
fn a_short_word_over_the_agent_is_answered_after_it_finishes() {
    let mut call = Call::greeted();
    let actions = call.caller_says("What does the premium plan include?");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    for (seq, text) in ["It includes support.", "And backups."].iter().enumerate() {
        let text = (*text).to_owned();
        call.send(|at| Event::ReplyChunk {
            at,
            speech: reply,
            seq: seq as u32,
            text,
        });
    }
    call.send(|at| Event::AudioDone {
        at,
        speech: reply,
        chunks: 2,
    });
    call.send(|at| Event::Played {
        at,
        speech: reply,
        seq: 0,
    });
    // "Okay." over the agent: too short to interrupt, and a turn of its own.
    let okay = call.caller_says("Okay.");
    assert!(
        okay.iter()
            .all(|a| !matches!(a, Action::CancelSpeech { .. })),
        "{okay:?}"
    );
    call.context_ready(&okay);
    let after = call.wait(200);
    assert!(started_reply(&after).is_none(), "not while the agent talks");
    assert_eq!(call.engine.reply_in_flight(), Some(reply));
    let done = call.send(|at| Event::Played {
        at,
        speech: reply,
        seq: 1,
    });
    assert_eq!(done[0], Action::SpeechFinished { speech: reply });
    let (next, turn, _) = started_reply(&done).expect("then the answer");
    assert_ne!(next, reply);
    assert_eq!(call.engine.turns()[turn as usize].text, "Okay.");
}

#[test]
fn silence_reprompts_then_says_goodbye_and_hangs_up() {
    let mut call = Call::greeted();
    let first = call.wait(8_000);
    let reprompt = said(&first, LineKind::Reprompt).expect("first re-prompt");
    call.play_line(reprompt);
    let second = call.wait(8_000);
    let reprompt = said(&second, LineKind::Reprompt).expect("second re-prompt");
    call.play_line(reprompt);
    let third = call.wait(8_000);
    let goodbye = said(&third, LineKind::Goodbye).expect("goodbye");
    let end = call.play_line(goodbye);
    assert_eq!(
        end.last(),
        Some(&Action::HangUp {
            reason: HangUpReason::NoResponse
        })
    );
    assert!(call.engine.is_over());
    assert!(call.wait(60_000).is_empty(), "nothing after the hang-up");
}

#[test]
fn answering_a_reprompt_resets_the_count() {
    let mut call = Call::greeted();
    let reprompt = said(&call.wait(8_000), LineKind::Reprompt).expect("re-prompt");
    call.play_line(reprompt);
    let actions = call.caller_says("Yes, sorry.");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    call.reply(reply, &["No problem."]);
    for _ in 0..2 {
        let reprompt = said(&call.wait(8_000), LineKind::Reprompt).expect("re-prompt again");
        call.play_line(reprompt);
    }
    assert!(said(&call.wait(8_000), LineKind::Goodbye).is_some());
}

#[test]
fn asking_for_a_human_escalates_and_transfers_after_the_handover_line() {
    let mut call = Call::greeted();
    call.caller_says("Can I speak to a real person please?");
    let after = call.wait(200);
    assert!(started_reply(&after).is_none(), "no reply when escalating");
    let find = after
        .iter()
        .find(|a| matches!(a, Action::FindAgent { .. }))
        .cloned();
    assert!(matches!(
        find,
        Some(Action::FindAgent {
            reason: EscalationReason::HumanRequested,
            ..
        })
    ));
    let agent = AgentId::new();
    let found = call.send(|at| Event::AgentFound {
        at,
        agent: Some(agent),
    });
    let handover = said(&found, LineKind::Handover).expect("hand-over line");
    // The caller talking over the hand-over line does not stop it.
    call.send(|at| Event::Interim {
        at,
        text: "okay thank you".into(),
    });
    let end = call.play_line(handover);
    assert_eq!(
        end.last(),
        Some(&Action::Transfer {
            agent,
            reason: EscalationReason::HumanRequested
        })
    );
    assert!(call.engine.is_over());
}

#[test]
fn talking_over_the_handover_line_sets_no_deadline_in_the_past() {
    let mut call = Call::greeted();
    call.caller_says("Can I speak to a real person please?");
    call.wait(200);
    let found = call.send(|at| Event::AgentFound {
        at,
        agent: Some(AgentId::new()),
    });
    said(&found, LineKind::Handover).expect("hand-over line");
    call.send(|at| Event::SpeechStarted { at });
    call.send(|at| Event::Interim {
        at,
        text: "okay".into(),
    });
    call.wait(1_000);
    assert!(
        call.engine.next_deadline().is_none_or(|d| d > call.now),
        "no deadline in the past while the hand-over line plays"
    );
}

#[test]
fn keep_ai_after_a_vip_escalation_greets_the_caller() {
    let policy = EscalationPolicy {
        vip_direct_to_human: true,
        ..EscalationPolicy::default()
    };
    let engine = ConversationEngine::new(
        EngineConfig {
            no_agent: NoAgentFallback::KeepAi,
            ..EngineConfig::default()
        },
        Arc::new(policy.compile().expect("policy")),
        CustomerTier::Vip,
        GREETING,
    );
    let mut call = Call::new(engine);
    call.send(|at| Event::Started { at });
    let found = call.send(|at| Event::AgentFound { at, agent: None });
    assert!(said(&found, LineKind::Greeting).is_some(), "{found:?}");
}

#[test]
fn with_no_agent_free_a_message_is_taken() {
    let mut call = Call::greeted();
    call.caller_says("I want to talk to a human.");
    call.wait(200);
    let found = call.send(|at| Event::AgentFound { at, agent: None });
    let line = said(&found, LineKind::TakeMessage).expect("take a message");
    call.play_line(line);
    let message = call.caller_says("Please call me back about my bill.");
    assert!(
        message
            .iter()
            .all(|a| !matches!(a, Action::FetchContext { .. })),
        "no reply is prepared for a message"
    );
    let after = call.wait(200);
    assert!(started_reply(&after).is_none());
    let goodbye = said(&after, LineKind::Goodbye).expect("thanks, goodbye");
    let end = call.play_line(goodbye);
    assert_eq!(
        end.last(),
        Some(&Action::HangUp {
            reason: HangUpReason::MessageTaken
        })
    );
    assert!(call.turns().contains(&(
        Speaker::Caller,
        "Please call me back about my bill.".into(),
        false
    )));
}

#[test]
fn with_keep_ai_the_escalating_turn_is_answered_and_there_is_no_second_escalation() {
    let config = EngineConfig {
        no_agent: NoAgentFallback::KeepAi,
        ..EngineConfig::default()
    };
    let mut call = Call::new(engine_with(config, CustomerTier::Standard));
    let greeting = said(&call.send(|at| Event::Started { at }), LineKind::Greeting).expect("hi");
    call.play_line(greeting);
    call.caller_says("Get me a manager.");
    call.wait(200);
    let found = call.send(|at| Event::AgentFound { at, agent: None });
    let (reply, turn, _) = started_reply(&found).expect("the AI answers");
    assert_eq!(turn, 1);
    call.reply(reply, &["I can help you myself."]);
    call.caller_says("I said get me a manager!");
    let after = call.wait(200);
    assert!(
        after.iter().all(|a| !matches!(a, Action::FindAgent { .. })),
        "{after:?}"
    );
}

#[test]
fn a_vip_goes_to_a_human_before_any_greeting() {
    let policy = EscalationPolicy {
        vip_direct_to_human: true,
        ..EscalationPolicy::default()
    };
    let engine = ConversationEngine::new(
        EngineConfig::default(),
        Arc::new(policy.compile().expect("policy")),
        CustomerTier::Vip,
        GREETING,
    );
    let mut call = Call::new(engine);
    let actions = call.send(|at| Event::Started { at });
    assert!(matches!(
        actions.as_slice(),
        [Action::FindAgent {
            reason: EscalationReason::VipCustomer,
            ..
        }]
    ));
}

#[test]
fn negative_sentiment_arriving_later_escalates_and_cancels_an_unheard_reply() {
    let mut call = Call::greeted();
    for text in [
        "This is the third time I'm calling.",
        "Nothing works, this is awful.",
    ] {
        let actions = call.caller_says(text);
        call.context_ready(&actions);
        let after = call.wait(200);
        let turn = after
            .iter()
            .find_map(|a| match a {
                Action::AnalyzeSentiment { turn, .. } => Some(*turn),
                _ => None,
            })
            .expect("scored");
        let sentiment = Sentiment::new(-0.8).expect("score");
        let scored = call.send(|at| Event::Sentiment {
            at,
            turn,
            sentiment: Some(sentiment),
        });
        assert!(scored.contains(&Action::RecordSentiment { turn, sentiment }));
        if let Some((reply, _, _)) = started_reply(&after) {
            if scored.iter().any(|a| matches!(a, Action::FindAgent { .. })) {
                assert!(
                    scored.contains(&Action::CancelSpeech { speech: reply }),
                    "{scored:?}"
                );
                return;
            }
            call.reply(reply, &["I'm sorry to hear that."]);
        }
    }
    panic!("two negative turns in a row escalate");
}

#[test]
fn the_human_key_escalates() {
    let mut call = Call::greeted();
    let actions = call.send(|at| Event::Dtmf { at, digit: '0' });
    assert_eq!(actions[0], Action::RecordKey { digit: '0' });
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::FindAgent {
            reason: EscalationReason::HumanRequested,
            ..
        }
    )));
    let mut other = Call::greeted();
    let actions = other.send(|at| Event::Dtmf { at, digit: '5' });
    assert_eq!(actions, vec![Action::RecordKey { digit: '5' }]);
}

#[test]
fn a_failed_reply_is_apologised_for_and_repeated_failures_go_to_a_human() {
    let mut call = Call::greeted();
    let actions = call.caller_says("Hi there.");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    let failed = call.send(|at| Event::ProviderFailed {
        at,
        stage: Stage::LanguageModel,
        speech: Some(reply),
    });
    assert_eq!(failed[0], Action::CancelSpeech { speech: reply });
    let apology = said(&failed, LineKind::Apology).expect("apology");
    call.play_line(apology);
    let actions = call.caller_says("I said hi there.");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("second reply");
    let failed = call.send(|at| Event::ProviderFailed {
        at,
        stage: Stage::LanguageModel,
        speech: Some(reply),
    });
    assert!(failed.iter().any(|a| matches!(
        a,
        Action::FindAgent {
            reason: EscalationReason::ServiceFailure,
            ..
        }
    )));
    // No human and a policy of keeping the AI: the AI cannot go on, so goodbye.
    let mut keep = Call::new(engine_with(
        EngineConfig {
            no_agent: NoAgentFallback::KeepAi,
            ..EngineConfig::default()
        },
        CustomerTier::Standard,
    ));
    keep.send(|at| Event::Started { at });
    keep.send(|at| Event::ProviderFailed {
        at,
        stage: Stage::SpeechToText,
        speech: None,
    });
    let found = keep.send(|at| Event::AgentFound { at, agent: None });
    assert!(said(&found, LineKind::Goodbye).is_some(), "{found:?}");
}

#[test]
fn replies_that_cannot_be_voiced_again_and_again_go_to_a_human() {
    let mut call = Call::greeted();
    for attempt in 1..=2 {
        let actions = call.caller_says("Hi there.");
        call.context_ready(&actions);
        let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
        call.send(|at| Event::ReplyChunk {
            at,
            speech: reply,
            seq: 0,
            text: "Hello.".into(),
        });
        let failed = call.send(|at| Event::ProviderFailed {
            at,
            stage: Stage::TextToSpeech,
            speech: Some(reply),
        });
        assert_eq!(failed[0], Action::CancelSpeech { speech: reply });
        let escalated = failed.iter().any(|a| {
            matches!(
                a,
                Action::FindAgent {
                    reason: EscalationReason::ServiceFailure,
                    ..
                }
            )
        });
        assert_eq!(escalated, attempt == 2, "attempt {attempt}: {failed:?}");
    }
    // Nothing unheard was recorded as said (the greeting was heard).
    assert!(
        call.turns().iter().all(|(_, text, _)| text != "Hello."),
        "{:?}",
        call.turns()
    );
}

#[test]
fn a_line_that_cannot_be_voiced_is_not_a_failed_reply() {
    let mut call = Call::new(engine_with(EngineConfig::default(), CustomerTier::Standard));
    let started = call.send(|at| Event::Started { at });
    let greeting = said(&started, LineKind::Greeting).expect("greeting");
    let failed = call.send(|at| Event::ProviderFailed {
        at,
        stage: Stage::TextToSpeech,
        speech: Some(greeting),
    });
    assert_eq!(failed, vec![Action::CancelSpeech { speech: greeting }]);
}

#[test]
fn a_reply_that_fails_midway_plays_what_it_produced() {
    let mut call = Call::greeted();
    let actions = call.caller_says("Tell me a story.");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    call.send(|at| Event::ReplyChunk {
        at,
        speech: reply,
        seq: 0,
        text: "Once upon a time.".into(),
    });
    let failed = call.send(|at| Event::ProviderFailed {
        at,
        stage: Stage::LanguageModel,
        speech: Some(reply),
    });
    assert!(failed.is_empty(), "{failed:?}");
    let played = call.send(|at| Event::Played {
        at,
        speech: reply,
        seq: 0,
    });
    assert!(played.contains(&Action::SpeechFinished { speech: reply }));
    assert!(
        call.turns()
            .contains(&(Speaker::Bot, "Once upon a time.".into(), false))
    );
}

#[test]
fn hanging_up_mid_reply_cancels_it_and_records_the_partial_reply() {
    let mut call = Call::greeted();
    let actions = call.caller_says("How much is it?");
    call.context_ready(&actions);
    let (reply, _, _) = started_reply(&call.wait(200)).expect("reply");
    call.send(|at| Event::ReplyChunk {
        at,
        speech: reply,
        seq: 0,
        text: "It is ten dollars.".into(),
    });
    call.send(|at| Event::Played {
        at,
        speech: reply,
        seq: 0,
    });
    call.send(|at| Event::ReplyChunk {
        at,
        speech: reply,
        seq: 1,
        text: "Per month.".into(),
    });
    let ended = call.send(|at| Event::Ended { at });
    assert_eq!(ended[0], Action::CancelSpeech { speech: reply });
    assert!(
        !ended.contains(&Action::ClearAudio),
        "no one to clear audio for"
    );
    assert!(
        call.turns()
            .contains(&(Speaker::Bot, "It is ten dollars.".into(), true))
    );
    assert!(call.engine.is_over());
    assert_eq!(call.engine.next_deadline(), None);
    assert!(call.wait(10_000).is_empty());
}

#[test]
fn hanging_up_mid_sentence_keeps_the_callers_last_words() {
    let mut call = Call::greeted();
    call.send(|at| Event::Final {
        at,
        text: "Never mind".into(),
        speech_final: false,
    });
    let ended = call.send(|at| Event::Ended { at });
    assert!(
        call.turns()
            .contains(&(Speaker::Caller, "Never mind".into(), false))
    );
    assert!(
        ended
            .iter()
            .any(|a| matches!(a, Action::AnalyzeSentiment { .. }))
    );
}

#[test]
fn events_arriving_late_do_not_move_time_back() {
    let mut call = Call::greeted();
    call.now = 10_000;
    call.send(|at| Event::Tick { at });
    let late = call.engine.on_event(Event::Final {
        at: 5_000,
        text: "hello".into(),
        speech_final: true,
    });
    assert!(
        late.iter()
            .any(|a| matches!(a, Action::FetchContext { .. }))
    );
    assert_eq!(
        call.engine.next_deadline(),
        Some(10_200),
        "grace from the engine's now"
    );
}

// ------------------------------------------------------------ properties

/// One step of a random call: an event with some of its fields left to the
/// harness (which picks real speech ids and requests).
#[derive(Debug, Clone)]
enum Step {
    Wait(Millis),
    SpeechStarted,
    Interim(u8),
    Final(u8, bool),
    UtteranceEnd,
    Chunk,
    AudioDone,
    Played,
    Dtmf(char),
    Sentiment(i8),
    ContextReady,
    AgentFound(bool),
    Failed(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u64..9_000).prop_map(Step::Wait),
        1 => Just(Step::SpeechStarted),
        2 => (0u8..5).prop_map(Step::Interim),
        2 => ((0u8..5), any::<bool>()).prop_map(|(w, f)| Step::Final(w, f)),
        1 => Just(Step::UtteranceEnd),
        3 => Just(Step::Chunk),
        2 => Just(Step::AudioDone),
        4 => Just(Step::Played),
        1 => prop::sample::select(vec!['0', '1', '#']).prop_map(Step::Dtmf),
        1 => (-10i8..=10).prop_map(Step::Sentiment),
        2 => Just(Step::ContextReady),
        1 => any::<bool>().prop_map(Step::AgentFound),
        1 => (0u8..3).prop_map(Step::Failed),
    ]
}

fn words(n: u8) -> String {
    ["please", "help", "me", "now", "thanks"]
        .iter()
        .take(n as usize)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the runtime would know: the speeches started and their progress.
#[derive(Default)]
struct World {
    now: Millis,
    open: BTreeMap<SpeechId, (bool, u32, Option<u32>)>, // (is reply, chunks, total)
    played: BTreeMap<SpeechId, u32>,
    requests: Vec<u32>,
    turns_to_score: Vec<u32>,
}

impl World {
    fn event(&mut self, step: &Step, pick: usize) -> Event {
        let at = self.now;
        let speech = self.open.keys().nth(pick % self.open.len().max(1)).copied();
        match step.clone() {
            Step::Wait(ms) => {
                self.now += ms;
                Event::Tick { at: self.now }
            }
            Step::SpeechStarted => Event::SpeechStarted { at },
            Step::Interim(n) => Event::Interim { at, text: words(n) },
            Step::Final(n, f) => Event::Final {
                at,
                text: words(n),
                speech_final: f,
            },
            Step::UtteranceEnd => Event::UtteranceEnd { at },
            Step::Chunk => match speech.and_then(|s| self.open.get_mut(&s).map(|o| (s, o))) {
                Some((speech, (true, chunks, None))) => {
                    let seq = *chunks;
                    *chunks += 1;
                    Event::ReplyChunk {
                        at,
                        speech,
                        seq,
                        text: format!("part {seq}."),
                    }
                }
                _ => Event::Tick { at },
            },
            Step::AudioDone => match speech.and_then(|s| self.open.get_mut(&s).map(|o| (s, o))) {
                Some((speech, (is_reply, chunks, total))) if total.is_none() => {
                    let n = if *is_reply { *chunks } else { 1 };
                    *total = Some(n);
                    Event::AudioDone {
                        at,
                        speech,
                        chunks: n,
                    }
                }
                _ => Event::Tick { at },
            },
            Step::Played => match speech {
                Some(speech) => {
                    let (is_reply, chunks, _) = self.open[&speech];
                    let available = if is_reply { chunks } else { 1 };
                    let next = self.played.get(&speech).copied().unwrap_or(0);
                    if next < available {
                        self.played.insert(speech, next + 1);
                        Event::Played {
                            at,
                            speech,
                            seq: next,
                        }
                    } else {
                        Event::Tick { at }
                    }
                }
                None => Event::Tick { at },
            },
            Step::Dtmf(digit) => Event::Dtmf { at, digit },
            Step::Sentiment(score) => match self.turns_to_score.pop() {
                Some(turn) => Event::Sentiment {
                    at,
                    turn,
                    sentiment: Sentiment::new(f64::from(score) / 10.0).ok(),
                },
                None => Event::Tick { at },
            },
            Step::ContextReady => match self.requests.pop() {
                Some(request) => Event::ContextReady { at, request },
                None => Event::Tick { at },
            },
            Step::AgentFound(yes) => Event::AgentFound {
                at,
                agent: yes.then(AgentId::new),
            },
            Step::Failed(stage) => Event::ProviderFailed {
                at,
                stage: match stage {
                    0 => Stage::SpeechToText,
                    1 => Stage::LanguageModel,
                    _ => Stage::TextToSpeech,
                },
                speech,
            },
        }
    }

    fn saw(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Say { speech, .. } => {
                    self.open.insert(*speech, (false, 1, None));
                }
                Action::StartReply { speech, .. } => {
                    self.open.insert(*speech, (true, 0, None));
                }
                Action::CancelSpeech { speech } | Action::SpeechFinished { speech } => {
                    self.open.remove(speech);
                }
                Action::FetchContext { request, .. } => self.requests.push(*request),
                Action::AnalyzeSentiment { turn, .. } => self.turns_to_score.push(*turn),
                _ => {}
            }
        }
    }
}

/// Checks the invariants over one call's whole action stream.
fn check(actions: &[Action], engine: &ConversationEngine) -> Result<(), TestCaseError> {
    let mut open_replies = BTreeSet::new();
    let mut open = BTreeSet::new();
    let mut over = false;
    let mut sequences = Vec::new();
    for action in actions {
        match action {
            Action::Say { speech, .. } => {
                prop_assert!(!over, "speaks after the end: {action:?}");
                prop_assert!(open.insert(*speech), "speech id reused");
            }
            Action::StartReply { speech, .. } => {
                prop_assert!(!over, "replies after the end");
                prop_assert!(open_replies.is_empty(), "two replies at once");
                open_replies.insert(*speech);
                prop_assert!(open.insert(*speech), "speech id reused");
            }
            Action::CancelSpeech { speech } | Action::SpeechFinished { speech } => {
                prop_assert!(
                    open.remove(speech),
                    "ended a speech twice or never started: {speech}"
                );
                open_replies.remove(speech);
            }
            Action::RecordTurn { turn, .. } => {
                prop_assert!(!turn.text.trim().is_empty(), "empty turn");
                prop_assert!(turn.started_ms <= turn.ended_ms);
                sequences.push(turn.sequence);
            }
            Action::HangUp { .. } | Action::Transfer { .. } => {
                prop_assert!(!over, "ended twice");
                prop_assert!(open.is_empty(), "left speeches open: {open:?}");
                over = true;
            }
            _ => {}
        }
    }
    prop_assert!(
        sequences.iter().enumerate().all(|(i, s)| *s as usize == i),
        "turn sequences run 0, 1, 2…: {sequences:?}"
    );
    prop_assert_eq!(sequences.len(), engine.turns().len());
    prop_assert!(open.is_empty(), "speeches never ended: {:?}", open);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_calls_keep_the_invariants(
        steps in prop::collection::vec((step(), any::<usize>()), 0..120),
        tier in prop::sample::select(vec![CustomerTier::Standard, CustomerTier::Vip]),
        keep_ai in any::<bool>(),
    ) {
        let config = EngineConfig {
            no_agent: if keep_ai { NoAgentFallback::KeepAi } else { NoAgentFallback::TakeMessage },
            ..EngineConfig::default()
        };
        let policy = Arc::new(EscalationPolicy { vip_direct_to_human: true, ..EscalationPolicy::default() }
            .compile().expect("policy"));
        let mut engine = ConversationEngine::new(config.clone(), policy.clone(), tier, GREETING);
        let mut twin = ConversationEngine::new(config, policy, tier, GREETING);
        let mut world = World::default();
        let mut actions = Vec::new();
        let first = engine.on_event(Event::Started { at: 0 });
        prop_assert_eq!(&first, &twin.on_event(Event::Started { at: 0 }));
        world.saw(&first);
        actions.extend(first);
        for (step, pick) in &steps {
            let event = world.event(step, *pick);
            let out = engine.on_event(event.clone());
            prop_assert_eq!(&out, &twin.on_event(event), "deterministic");
            world.saw(&out);
            actions.extend(out);
            // A deadline that has passed is served by a tick, after which the
            // next one lies ahead (no busy loop).
            if let Some(deadline) = engine.next_deadline()
                && deadline <= world.now
            {
                let ticked = engine.on_event(Event::Tick { at: world.now });
                prop_assert_eq!(&ticked, &twin.on_event(Event::Tick { at: world.now }));
                world.saw(&ticked);
                actions.extend(ticked);
                if let Some(next) = engine.next_deadline() {
                    prop_assert!(next > world.now, "deadline {} not after now {} after a tick", next, world.now);
                }
            }
        }
        let end = world.now + 1;
        let last = engine.on_event(Event::Ended { at: end });
        actions.extend(last);
        prop_assert!(engine.is_over());
        prop_assert!(engine.on_event(Event::Tick { at: end + 60_000 }).is_empty(), "silent after the end");
        check(&actions, &engine)?;
    }
}
