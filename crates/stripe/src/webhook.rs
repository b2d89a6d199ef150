//! `Stripe-Signature` verification and event parsing.

use hmac::{Hmac, KeyInit, Mac};
use iace_domain::billing::{BillingEvent, BillingEventKind, SubscriptionStatus};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

/// Why a Stripe webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    /// The header has no timestamp or no `v1` signature.
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    MalformedHeader,
    /// The timestamp is outside the tolerance.
    #[error("the timestamp is {age_secs} s old (tolerance {tolerance_secs} s)")]
    OutsideTolerance {
        /// Age (negative: from the future).
        age_secs: i64,
        /// Allowed age.
        tolerance_secs: u64,
    },
    /// No `v1` signature matches.
    #[error("no signature matches the payload")]
    InvalidSignature,
    /// The body is not a Stripe event.
    #[error("the body is not a Stripe event")]
    Malformed(#[source] serde_json::Error),
}

impl StripeError {
    /// A stable snake_case code for problem responses.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_signature",
            Self::MalformedHeader | Self::InvalidSignature => "invalid_signature",
            Self::OutsideTolerance { .. } => "stale_timestamp",
            Self::Malformed(_) => "malformed_event",
        }
    }
}

/// Checks `Stripe-Signature` headers with the endpoint's signing secret.
#[derive(Clone)]
pub struct WebhookVerifier {
    secret: SecretString,
    tolerance_secs: u64,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("tolerance_secs", &self.tolerance_secs)
            .finish_non_exhaustive()
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl WebhookVerifier {
    /// A verifier for the endpoint secret (`whsec_…`, used whole as the key).
    #[must_use]
    pub const fn new(secret: SecretString, tolerance_secs: u64) -> Self {
        Self {
            secret,
            tolerance_secs,
        }
    }

    /// Verifies `body` against the `Stripe-Signature` header at `now` (Unix s).
    /// Stripe's libraries refuse only timestamps that are too old; a
    /// timestamp too far in the future is refused here too (a forger's way to
    /// make a replay last).
    ///
    /// # Errors
    /// [`StripeError`].
    pub fn verify(&self, header: Option<&str>, body: &[u8], now: i64) -> Result<(), StripeError> {
        let header = header.ok_or(StripeError::MissingHeader)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in header.split(',') {
            let Some((key, value)) = item.trim().split_once('=') else {
                continue;
            };
            match key {
                "t" => timestamp = value.parse::<i64>().ok(),
                "v1" => signatures.push(value),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(StripeError::MalformedHeader)?;
        if signatures.is_empty() {
            return Err(StripeError::MalformedHeader);
        }
        let age = now.saturating_sub(timestamp);
        if age.unsigned_abs() > self.tolerance_secs {
            return Err(StripeError::OutsideTolerance {
                age_secs: age,
                tolerance_secs: self.tolerance_secs,
            });
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|_| StripeError::InvalidSignature)?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // `verify_slice` compares in constant time; any v1 may match.
        let matches = signatures
            .iter()
            .filter_map(|s| hex_decode(s))
            .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
        if matches {
            Ok(())
        } else {
            Err(StripeError::InvalidSignature)
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: serde_json::Value,
}

fn text<'a>(object: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(serde_json::Value::as_str)
}

/// Parses a verified Stripe event. Events this version does not act on, and
/// handled ones missing the customer, parse to [`BillingEventKind::Other`].
///
/// # Errors
/// [`StripeError::Malformed`] when the body is not a Stripe event envelope.
pub fn parse_event(body: &[u8]) -> Result<BillingEvent, StripeError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(StripeError::Malformed)?;
    let object = &envelope.data.object;
    let customer = text(object, "customer").map(str::to_owned);
    let kind = match (envelope.event_type.as_str(), customer) {
        ("checkout.session.completed", Some(customer_ref)) => BillingEventKind::CheckoutCompleted {
            customer_ref,
            org_ref: text(object, "client_reference_id").map(str::to_owned),
        },
        ("customer.subscription.created" | "customer.subscription.updated", Some(customer_ref)) => {
            BillingEventKind::SubscriptionChanged {
                customer_ref,
                price_ref: object
                    .pointer("/items/data/0/price/id")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                status: SubscriptionStatus::from_provider(
                    text(object, "status").unwrap_or_default(),
                ),
            }
        }
        ("customer.subscription.deleted", Some(customer_ref)) => {
            BillingEventKind::SubscriptionEnded { customer_ref }
        }
        ("invoice.payment_failed", Some(customer_ref)) => {
            BillingEventKind::PaymentFailed { customer_ref }
        }
        _ => BillingEventKind::Other,
    };
    Ok(BillingEvent {
        id: envelope.id,
        event_type: envelope.event_type.chars().take(100).collect(),
        occurred_at: chrono::DateTime::from_timestamp(envelope.created, 0).unwrap_or_default(),
        kind,
    })
}
