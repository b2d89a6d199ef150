//! # iace-domain — the pure core of IACE
//!
//! IACE is a backend for AI phone agents: it answers and places calls, listens,
//! decides what to say, speaks, watches the caller's sentiment, hands the call to
//! a human when it should, A/B tests personas and learns from every call. This
//! crate holds everything about that which can be decided without touching the
//! outside world. Every other crate either implements one of its ports (the
//! adapters) or drives its rules (the application layer and the API).
//!
//! **Must not depend on** anything that performs I/O: no tokio, sqlx, sea-orm,
//! reqwest, fred, axum or hyper. It uses serde, thiserror, uuid, chrono,
//! async-trait, futures (streams and sinks, no executor) and bytes.
//! `just check-boundaries` fails the build if that ever changes.
//!
//! ## How the model fits together
//!
//! - **Values that parse at the edge** — [`PhoneNumber`] (E.164), [`Email`],
//!   [`Sentiment`] (−1..=1 with a label), [`Plan`], [`Language`], and typed ids
//!   ([`OrgId`], [`CallId`], … UUID v7). An invalid value cannot be constructed,
//!   so nothing inside the core re-checks them. Phone numbers and e-mails print
//!   masked.
//! - **Tenancy** — an [`Organization`] owns [`User`]s (with a [`Role`]),
//!   [`ApiKey`]s, human agents ([`HumanAgent`] with [`Skill`]s and capacity),
//!   [`Customer`]s (with a [`CustomerTier`]), [`Persona`]s, [`Experiment`]s and
//!   [`call::Call`]s. Every repository method takes the [`OrgId`].
//! - **Calls** ([`call`]) move through a state machine:
//!   `Pending → Ringing → InProgress → {Completed, Failed, NoAnswer, Busy,
//!   Canceled, Transferred}` with `Escalating` between `InProgress` and
//!   `Transferred`. [`call::Call::apply`] is the only way a status changes: a
//!   redelivered webhook is a no-op, a late one cannot reopen an ended call, and
//!   the version it bumps lets storage refuse a concurrent write instead of
//!   losing it. Provider hang-up causes map to end states
//!   ([`call::HangupCause::end_state`]).
//! - **Policies** are pure functions over plain data:
//!   [`escalation`] (when to hand a call to a human, and which skills that human
//!   needs), [`routing`] (which human), [`experiment`] (which persona a caller
//!   gets — deterministic bucketing — and which variant is winning — Wilson
//!   intervals and a two-proportion z-test), [`learning`] (ranking learned
//!   patterns by similarity and smoothed success), [`memory`] (ranking a
//!   customer's memories by similarity, age and importance into a bounded
//!   prompt context) and [`sentiment`] (per-call rolling score and trend).
//! - **Ports** ([`ports`]) are the traits adapters implement: repositories and
//!   stores, telephony, speech-to-text, text-to-speech, language model,
//!   sentiment, embeddings, rate limiter, cache, event bus and clock. Each is an
//!   `#[async_trait]` trait held as `Arc<dyn Port>`; each method documents its
//!   errors. The `mock` feature generates mockall doubles for all of them.
//!
//! ## A taste
//!
//! ```
//! use chrono::Utc;
//! use iace_domain::call::{Call, CallDirection, CallEvent, CallStatus, HangupCause, NewCall};
//! use iace_domain::{OrgId, PhoneNumber};
//!
//! let mut call = Call::new(
//!     NewCall {
//!         org_id: OrgId::new(),
//!         direction: CallDirection::Outbound,
//!         from: PhoneNumber::parse("+1 (415) 555-0100")?,
//!         to: PhoneNumber::parse("0044 20 7946 0958")?,
//!         customer_id: None,
//!         persona_id: None,
//!         assignment: None,
//!         provider_call_id: None,
//!         provider_session_id: None,
//!     },
//!     Utc::now(),
//! );
//! assert_eq!(call.to.as_str(), "+442079460958");
//! assert_eq!(call.to.to_string(), "+4420******58"); // masked for logs
//!
//! // The hang-up arrives before the answer: the call still ends correctly ...
//! call.apply(CallEvent::HungUp { cause: HangupCause::UserBusy }, Utc::now())?;
//! assert_eq!(call.status, CallStatus::Busy);
//! // ... and the late answer cannot resurrect it.
//! assert!(call.apply(CallEvent::Answered, Utc::now()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/embedded_call.rs` embeds the crate in a host service with in-memory
//! doubles of two ports and drives a call through webhooks, a concurrent write,
//! the escalation policy, routing and a transfer
//! (`cargo run -p iace-domain --example embedded_call`).

pub mod audio;
pub mod billing;
pub mod call;
pub mod conversation;
pub mod email;
pub mod escalation;
pub mod experiment;
pub mod id;
pub mod learning;
pub mod memory;
pub mod model;
pub mod phone;
pub mod plan;
pub mod ports;
pub mod ratelimit;
pub mod routing;
pub mod sentiment;

pub use email::{Email, EmailError};
pub use id::*;
pub use model::*;
pub use phone::{PhoneNumber, PhoneNumberError};
pub use plan::{InvalidLanguage, Language, Plan, UnknownPlan};
pub use sentiment::{InvalidSentiment, Sentiment, SentimentLabel};
