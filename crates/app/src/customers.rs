//! Customers: CRUD, lookup by phone, and what IACE remembers about them.

use std::collections::BTreeMap;
use std::sync::Arc;

use iace_domain::memory::{MemoryConfig, MemoryContext};
use iace_domain::ports::{
    Cache, CacheKey, Clock, CustomerRepository, MemoryStore, MemoryStoreExt, Page, PageRequest,
};
use iace_domain::{Customer, CustomerId, CustomerTier, Email, Language, PhoneNumber, Role};

use crate::auth::Principal;
use crate::cached::ReadThrough;
use crate::error::AppError;

/// The fields a client sets on a customer (already parsed at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerInput {
    /// Phone number (unique in the organisation).
    pub phone: PhoneNumber,
    /// Name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<Email>,
    /// Tier.
    pub tier: CustomerTier,
    /// Preferred language.
    pub language: Option<Language>,
    /// CRM attributes.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Customer use cases.
#[derive(Clone)]
pub struct CustomerService {
    customers: Arc<dyn CustomerRepository>,
    memories: Arc<dyn MemoryStore>,
    clock: Arc<dyn Clock>,
    memory: MemoryConfig,
    cache: Option<ReadThrough>,
}

impl std::fmt::Debug for CustomerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerService").finish_non_exhaustive()
    }
}

fn check_name(name: Option<&str>) -> Result<(), AppError> {
    if name.is_some_and(|n| n.chars().count() > 200) {
        return Err(AppError::invalid(
            "name",
            "too_long",
            "names have at most 200 characters",
        ));
    }
    Ok(())
}

impl CustomerService {
    /// Builds the service.
    pub fn new(
        customers: Arc<dyn CustomerRepository>,
        memories: Arc<dyn MemoryStore>,
        clock: Arc<dyn Clock>,
        memory: MemoryConfig,
    ) -> Self {
        Self {
            customers,
            memories,
            clock,
            memory,
            cache: None,
        }
    }

    /// Serves lookups by phone number (the hot read of every inbound call)
    /// from `cache` for up to `ttl`; updates and deletes through this service
    /// invalidate them. Cache failures count as misses.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<dyn Cache>, ttl: std::time::Duration) -> Self {
        self.cache = Some(ReadThrough::new(cache, ttl));
        self
    }

    /// The cache key of a phone number: hashed, so no number is ever written
    /// into Redis keys in clear.
    fn phone_key(org: iace_domain::OrgId, phone: &PhoneNumber) -> CacheKey {
        CacheKey::new(
            org,
            "customer_by_phone",
            &crate::auth::token_hash(phone.as_str()),
        )
    }

    async fn forget_phone(&self, org: iace_domain::OrgId, phone: &PhoneNumber) {
        if let Some(cache) = &self.cache {
            cache.forget(&Self::phone_key(org, phone)).await;
        }
    }

    /// Creates a customer.
    ///
    /// # Errors
    /// Forbidden below member; Conflict when the phone is taken; store errors.
    pub async fn create(
        &self,
        who: &Principal,
        input: CustomerInput,
    ) -> Result<Customer, AppError> {
        who.require(Role::Member)?;
        check_name(input.name.as_deref())?;
        let now = self.clock.now();
        let customer = Customer {
            id: CustomerId::new(),
            org_id: who.org_id,
            phone: input.phone,
            name: input.name,
            email: input.email,
            tier: input.tier,
            language: input.language,
            attributes: input.attributes,
            created_at: now,
            updated_at: now,
        };
        self.customers.create(&customer).await?;
        Ok(customer)
    }

    /// One customer.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn get(&self, who: &Principal, id: CustomerId) -> Result<Customer, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.customers.get(who.org_id, id).await?)
    }

    /// The customer with this number.
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn by_phone(
        &self,
        who: &Principal,
        phone: &PhoneNumber,
    ) -> Result<Customer, AppError> {
        who.require(Role::Viewer)?;
        let key = Self::phone_key(who.org_id, phone);
        if let Some(cache) = &self.cache
            && let Some(customer) = cache.lookup::<Customer>(&key).await
        {
            return Ok(customer);
        }
        let customer = self
            .customers
            .find_by_phone(who.org_id, phone)
            .await?
            .ok_or(AppError::NotFound { entity: "customer" })?;
        if let Some(cache) = &self.cache {
            cache.store(&key, &customer).await;
        }
        Ok(customer)
    }

    /// Replaces a customer's fields.
    ///
    /// # Errors
    /// Forbidden below member; NotFound; Conflict when the phone is taken.
    pub async fn update(
        &self,
        who: &Principal,
        id: CustomerId,
        input: CustomerInput,
    ) -> Result<Customer, AppError> {
        who.require(Role::Member)?;
        check_name(input.name.as_deref())?;
        let mut customer = self.customers.get(who.org_id, id).await?;
        self.forget_phone(who.org_id, &customer.phone).await;
        customer.phone = input.phone;
        customer.name = input.name;
        customer.email = input.email;
        customer.tier = input.tier;
        customer.language = input.language;
        customer.attributes = input.attributes;
        customer.updated_at = self.clock.now();
        self.customers.update(&customer).await?;
        self.forget_phone(who.org_id, &customer.phone).await;
        Ok(customer)
    }

    /// Deletes a customer and their memories.
    ///
    /// # Errors
    /// Forbidden below admin; NotFound.
    pub async fn delete(&self, who: &Principal, id: CustomerId) -> Result<(), AppError> {
        who.require(Role::Admin)?;
        let customer = self.customers.get(who.org_id, id).await?;
        self.customers.delete(who.org_id, id).await?;
        self.forget_phone(who.org_id, &customer.phone).await;
        Ok(())
    }

    /// Customers, one page.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<Customer>, AppError> {
        who.require(Role::Viewer)?;
        Ok(self.customers.list(who.org_id, page).await?)
    }

    /// What IACE remembers about the customer now (the prompt's memory section).
    ///
    /// # Errors
    /// NotFound; store errors.
    pub async fn memory(&self, who: &Principal, id: CustomerId) -> Result<MemoryContext, AppError> {
        who.require(Role::Viewer)?;
        self.customers.get(who.org_id, id).await?;
        Ok(self
            .memories
            .context(who.org_id, id, None, self.clock.now(), &self.memory)
            .await?)
    }
}
