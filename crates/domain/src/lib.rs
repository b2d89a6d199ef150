//! # iace-domain — the pure core of IACE
//!
//! (Crate overview written at the end of the foundation work.)
//!
//! **Must not depend on** anything that performs I/O: no tokio, sqlx, sea-orm,
//! reqwest, fred, axum or hyper. `just check-boundaries` enforces it.

pub mod call;
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
pub mod routing;
pub mod sentiment;

pub use email::{Email, EmailError};
pub use id::*;
pub use model::*;
pub use phone::{PhoneNumber, PhoneNumberError};
pub use plan::{InvalidLanguage, Language, Plan, UnknownPlan};
pub use sentiment::{InvalidSentiment, Sentiment, SentimentLabel};
