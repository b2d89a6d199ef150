//! Customers: CRUD, lookup by phone, memory summary.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use iace_app::customers::CustomerInput;
use iace_app::{AppError, FieldError};
use iace_domain::{Customer, CustomerId, CustomerTier, Email, Language, PhoneNumber};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageParams, Paged};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// Treatment tier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Default.
    Standard,
    /// Paying more.
    Premium,
    /// Highest value; may go straight to a human.
    Vip,
}

impl From<Tier> for CustomerTier {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Standard => Self::Standard,
            Tier::Premium => Self::Premium,
            Tier::Vip => Self::Vip,
        }
    }
}

impl From<CustomerTier> for Tier {
    fn from(t: CustomerTier) -> Self {
        match t {
            CustomerTier::Standard => Self::Standard,
            CustomerTier::Premium => Self::Premium,
            CustomerTier::Vip => Self::Vip,
        }
    }
}

/// A customer as sent by clients (create and full replace).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRequest {
    /// Phone number; E.164 or an international form (`+1 (415) 555-0100`).
    #[schema(example = "+14155550100")]
    pub phone: String,
    /// Name.
    #[schema(example = "Jane Roe")]
    pub name: Option<String>,
    /// E-mail.
    #[schema(example = "jane@example.com")]
    pub email: Option<String>,
    /// Tier (default `standard`).
    pub tier: Option<Tier>,
    /// Preferred language, BCP 47 (`en-US`).
    #[schema(example = "en-US")]
    pub language: Option<String>,
    /// Free-form CRM attributes.
    #[schema(value_type = Object)]
    pub attributes: Option<BTreeMap<String, serde_json::Value>>,
}

impl CustomerRequest {
    /// Parses every field, reporting all invalid ones at once.
    fn parse(self) -> Result<CustomerInput, AppError> {
        let mut errors = Vec::new();
        let phone = PhoneNumber::parse(&self.phone)
            .map_err(|e| errors.push(FieldError::new("phone", "invalid_phone", e.to_string())))
            .ok();
        let email = match self.email.as_deref() {
            Some(raw) => match Email::parse(raw) {
                Ok(email) => Some(email),
                Err(e) => {
                    errors.push(FieldError::new("email", "invalid_email", e.to_string()));
                    None
                }
            },
            None => None,
        };
        let language = match self.language.as_deref() {
            Some(raw) => match Language::parse(raw) {
                Ok(language) => Some(language),
                Err(e) => {
                    errors.push(FieldError::new(
                        "language",
                        "invalid_language",
                        e.to_string(),
                    ));
                    None
                }
            },
            None => None,
        };
        match phone {
            Some(phone) if errors.is_empty() => Ok(CustomerInput {
                phone,
                name: self
                    .name
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                email,
                tier: self.tier.map_or(CustomerTier::Standard, CustomerTier::from),
                language,
                attributes: self.attributes.unwrap_or_default(),
            }),
            _ => Err(AppError::Validation { errors }),
        }
    }
}

/// A customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// E.164 phone number.
    pub phone: String,
    /// Name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Tier.
    pub tier: Tier,
    /// Preferred language.
    pub language: Option<String>,
    /// CRM attributes.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Customer> for CustomerResponse {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id.into_uuid(),
            phone: c.phone.as_str().to_owned(),
            name: c.name,
            email: c.email.map(|e| e.as_str().to_owned()),
            tier: c.tier.into(),
            language: c.language.map(|l| l.as_str().to_owned()),
            attributes: c.attributes,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Lookup by phone number.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PhoneQuery {
    /// The number, E.164 or international form.
    pub phone: String,
}

/// What IACE remembers about the customer now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryResponse {
    /// The memories used, most relevant first.
    pub memory_ids: Vec<uuid::Uuid>,
    /// The bounded summary given to the language model.
    pub summary: String,
}

/// Creates a customer (member).
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CustomerRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created", body = CustomerResponse),
        (status = 409, description = "the phone number is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_customer(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(body): Json<CustomerRequest>,
) -> ApiResult<(StatusCode, Json<CustomerResponse>)> {
    let customer = state.customers.create(&who, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(customer.into())))
}

/// Lists customers.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "a page", body = Paged<CustomerResponse>)))]
pub async fn list_customers(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Paged<CustomerResponse>>> {
    let page = state.customers.list(&who, params.to_request()?).await?;
    Ok(Json(Paged::from_page(page, CustomerResponse::from)))
}

/// Finds the customer with a phone number.
#[utoipa::path(get, path = "/v1/customers/lookup", tag = "customers", params(PhoneQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "found", body = CustomerResponse),
        (status = 404, description = "no customer with this number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not a phone number", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn lookup_customer(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<PhoneQuery>,
) -> ApiResult<Json<CustomerResponse>> {
    let phone = PhoneNumber::parse(&query.phone)
        .map_err(|e| AppError::invalid("phone", "invalid_phone", e.to_string()))?;
    Ok(Json(state.customers.by_phone(&who, &phone).await?.into()))
}

/// One customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the customer", body = CustomerResponse),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_customer(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<CustomerResponse>> {
    Ok(Json(
        state
            .customers
            .get(&who, CustomerId::from_uuid(id))
            .await?
            .into(),
    ))
}

/// Replaces a customer's fields (member).
#[utoipa::path(put, path = "/v1/customers/{id}", tag = "customers", request_body = CustomerRequest,
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "updated", body = CustomerResponse),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the phone number is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_customer(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<CustomerRequest>,
) -> ApiResult<Json<CustomerResponse>> {
    let customer = state
        .customers
        .update(&who, CustomerId::from_uuid(id), body.parse()?)
        .await?;
    Ok(Json(customer.into()))
}

/// Deletes a customer and their memories (admin).
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_customer(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    state
        .customers
        .delete(&who, CustomerId::from_uuid(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The memory summary the AI agent would get for this customer now.
#[utoipa::path(get, path = "/v1/customers/{id}/memory", tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the summary", body = MemoryResponse),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn customer_memory(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<MemoryResponse>> {
    let context = state
        .customers
        .memory(&who, CustomerId::from_uuid(id))
        .await?;
    Ok(Json(MemoryResponse {
        memory_ids: context.used.into_iter().map(|m| m.into_uuid()).collect(),
        summary: context.text,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(lookup_customer))
        .routes(routes!(get_customer, update_customer, delete_customer))
        .routes(routes!(customer_memory))
}
