//! Billing: the organisation's plan follows its subscription at the payment
//! provider, as the provider's (verified) webhooks report it.

use std::collections::HashMap;
use std::sync::Arc;

use iace_domain::billing::{BillingEvent, BillingEventKind, plan_for};
use iace_domain::ports::{OrgRepository, StoreError};
use iace_domain::{OrgId, Organization, Plan, Role};

use crate::auth::Principal;
use crate::error::AppError;

/// What a billing event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingOutcome {
    /// It changed the organisation (plan or billing link).
    Applied,
    /// Nothing to do (an unknown customer, an event type not acted on, a
    /// payment failure — the subscription's own updates follow).
    Ignored,
}

/// Plans from billing.
#[derive(Clone)]
pub struct BillingService {
    orgs: Arc<dyn OrgRepository>,
    prices: HashMap<String, Plan>,
}

impl std::fmt::Debug for BillingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingService")
            .field("prices", &self.prices.len())
            .finish_non_exhaustive()
    }
}

impl BillingService {
    /// Builds the service; `prices` maps the provider's price ids to plans.
    pub fn new(orgs: Arc<dyn OrgRepository>, prices: HashMap<String, Plan>) -> Self {
        Self { orgs, prices }
    }

    /// The caller's organisation (its plan included).
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn organisation(&self, who: &Principal) -> Result<Organization, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.orgs.get(who.org_id).await?)
    }

    /// Applies a verified billing event: a completed checkout links the
    /// provider's customer to the organisation it names; a subscription's
    /// creation or change sets the plan its price maps to while it is live
    /// (active, trialing, past due), the free plan once it is unpaid,
    /// cancelled or expired; its deletion sets the free plan. A payment
    /// failure is logged (the provider retries, and the subscription update
    /// that follows decides). A checkout for an organisation already linked
    /// to another customer is ignored (relinking is an operator's decision).
    ///
    /// # Errors
    /// NotFound when a subscription's customer is linked to no organisation
    /// yet (its checkout may still be on its way); store errors. Either way
    /// the event is retried from the inbox.
    pub async fn on_billing_event(&self, event: &BillingEvent) -> Result<BillingOutcome, AppError> {
        match &event.kind {
            BillingEventKind::CheckoutCompleted {
                customer_ref,
                org_ref,
            } => {
                let Some(org) = org_ref.as_deref().and_then(|r| r.parse::<OrgId>().ok()) else {
                    tracing::warn!("checkout without an organisation reference; ignored");
                    return Ok(BillingOutcome::Ignored);
                };
                match self.orgs.get(org).await {
                    Ok(current) => {
                        if let Some(linked) = &current.billing_customer_ref {
                            if linked != customer_ref {
                                tracing::warn!(org_id = %org, "checkout for an organisation already linked to another customer; ignored (relink by hand)");
                            }
                            return Ok(BillingOutcome::Ignored);
                        }
                    }
                    Err(StoreError::NotFound { .. }) => {
                        tracing::warn!(org_id = %org, "checkout for an unknown organisation; ignored");
                        return Ok(BillingOutcome::Ignored);
                    }
                    Err(other) => return Err(other.into()),
                }
                match self.orgs.set_billing_ref(org, customer_ref).await {
                    Ok(()) => Ok(BillingOutcome::Applied),
                    Err(StoreError::NotFound { .. } | StoreError::AlreadyExists { .. }) => {
                        tracing::warn!(org_id = %org, "checkout for an unknown organisation, or a customer linked elsewhere; ignored");
                        Ok(BillingOutcome::Ignored)
                    }
                    Err(other) => Err(other.into()),
                }
            }
            BillingEventKind::SubscriptionChanged {
                customer_ref,
                price_ref,
                status,
            } => {
                let priced = price_ref.as_ref().and_then(|p| self.prices.get(p)).copied();
                if status.grants_plan() && priced.is_none() {
                    tracing::warn!(
                        price = price_ref.as_deref().unwrap_or("none"),
                        "a live subscription's price maps to no plan; the plan is unchanged (configure stripe.prices)"
                    );
                }
                self.set_plan(customer_ref, plan_for(*status, priced)).await
            }
            BillingEventKind::SubscriptionEnded { customer_ref } => {
                self.set_plan(customer_ref, Some(Plan::Free)).await
            }
            BillingEventKind::PaymentFailed { customer_ref } => {
                if let Some(org) = self.orgs.find_by_billing_ref(customer_ref).await? {
                    tracing::warn!(org_id = %org.id, "a payment failed; the provider retries");
                }
                Ok(BillingOutcome::Ignored)
            }
            BillingEventKind::Other => Ok(BillingOutcome::Ignored),
        }
    }

    async fn set_plan(
        &self,
        customer_ref: &str,
        plan: Option<Plan>,
    ) -> Result<BillingOutcome, AppError> {
        let Some(plan) = plan else {
            return Ok(BillingOutcome::Ignored);
        };
        let Some(org) = self.orgs.find_by_billing_ref(customer_ref).await? else {
            // Often the subscription arrives before its checkout: defer it
            // (retried from the inbox, a bounded number of times).
            return Err(AppError::NotFound {
                entity: "organisation linked to this billing customer",
            });
        };
        if org.plan == plan {
            return Ok(BillingOutcome::Ignored);
        }
        self.orgs.set_plan(org.id, plan).await?;
        tracing::info!(org_id = %org.id, from = %org.plan, to = %plan, "plan changed");
        Ok(BillingOutcome::Applied)
    }
}
