//! Billing: what the payment provider reports (after its webhook was
//! verified and parsed), provider-neutral, and the rule that turns a
//! subscription into a plan.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Plan;

/// A verified billing event. Stored as JSON in the webhook inbox, so the
/// background worker can process it again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingEvent {
    /// The provider's event id (the deduplication key).
    pub id: String,
    /// The provider's event type (`customer.subscription.updated`).
    pub event_type: String,
    /// When the provider created it.
    pub occurred_at: DateTime<Utc>,
    /// What it reports.
    pub kind: BillingEventKind,
}

/// What a [`BillingEvent`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BillingEventKind {
    /// A checkout finished: links the provider's customer to the
    /// organisation named in the checkout's reference.
    CheckoutCompleted {
        /// The provider's customer id.
        customer_ref: String,
        /// Our organisation id, as passed to the checkout.
        org_ref: Option<String>,
    },
    /// A subscription was created or changed.
    SubscriptionChanged {
        /// The provider's customer id.
        customer_ref: String,
        /// The price subscribed to (mapped to a plan by configuration).
        price_ref: Option<String>,
        /// Its state.
        status: SubscriptionStatus,
    },
    /// A subscription ended.
    SubscriptionEnded {
        /// The provider's customer id.
        customer_ref: String,
    },
    /// A payment failed (the provider retries; the subscription's status
    /// follows).
    PaymentFailed {
        /// The provider's customer id.
        customer_ref: String,
    },
    /// An event this version does not act on.
    Other,
}

/// A subscription's state at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Paid up.
    Active,
    /// In its trial.
    Trialing,
    /// A payment failed; the provider is retrying.
    PastDue,
    /// Retries are exhausted.
    Unpaid,
    /// Cancelled.
    Canceled,
    /// Awaiting its first payment.
    Incomplete,
    /// The first payment never came.
    IncompleteExpired,
    /// Paused.
    Paused,
    /// A state this version does not know.
    Unknown,
}

impl SubscriptionStatus {
    /// Parses the provider's name; unknown names are [`Self::Unknown`].
    #[must_use]
    pub fn from_provider(raw: &str) -> Self {
        match raw {
            "active" => Self::Active,
            "trialing" => Self::Trialing,
            "past_due" => Self::PastDue,
            "unpaid" => Self::Unpaid,
            "canceled" => Self::Canceled,
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "paused" => Self::Paused,
            _ => Self::Unknown,
        }
    }

    /// Whether the subscription still grants its plan: while it is active,
    /// trialing, or past due (the provider is still retrying the payment —
    /// the plan goes when retries are exhausted and it turns unpaid or
    /// cancelled).
    #[must_use]
    pub const fn grants_plan(self) -> bool {
        matches!(self, Self::Active | Self::Trialing | Self::PastDue)
    }
}

/// The plan a subscription gives: the price's plan while the subscription
/// grants it (`priced` is `None` for a price no plan is configured for), the
/// free plan otherwise. `None`: leave the plan as it is (an unknown price on
/// a live subscription — an operator must map it).
#[must_use]
pub fn plan_for(status: SubscriptionStatus, priced: Option<Plan>) -> Option<Plan> {
    if status.grants_plan() {
        priced
    } else {
        Some(Plan::Free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_subscriptions_keep_their_price_plan_and_ended_ones_fall_to_free() {
        for live in ["active", "trialing", "past_due"] {
            let status = SubscriptionStatus::from_provider(live);
            assert_eq!(plan_for(status, Some(Plan::Pro)), Some(Plan::Pro), "{live}");
            assert_eq!(plan_for(status, None), None, "{live}: unmapped price");
        }
        for ended in [
            "unpaid",
            "canceled",
            "incomplete",
            "incomplete_expired",
            "paused",
            "new_state",
        ] {
            let status = SubscriptionStatus::from_provider(ended);
            assert_eq!(
                plan_for(status, Some(Plan::Enterprise)),
                Some(Plan::Free),
                "{ended}"
            );
        }
    }
}
