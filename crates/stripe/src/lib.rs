//! # iace-stripe — the Stripe adapter
//!
//! Stripe drives plans through webhooks. This crate checks them and turns
//! them into the domain's [`BillingEvent`](iace_domain::billing::BillingEvent):
//!
//! - [`WebhookVerifier`] checks `Stripe-Signature` (`t=…,v1=…[,v1=…]`), HMAC-SHA256
//!   of `"{t}.{raw body}"` keyed with the whole `whsec_…` secret, every `v1`
//!   value tried (secrets roll), compared in constant time, and a timestamp
//!   within the tolerance (300 s).
//! - [`parse_event`] reads `checkout.session.completed`,
//!   `customer.subscription.created/updated/deleted` and
//!   `invoice.payment_failed`; anything else parses to `Other`.
//!
//! **Must not depend on** other adapter crates, the app crate or axum; wire
//! structs stay private.

mod webhook;

pub use webhook::{StripeError, WebhookVerifier, parse_event};
