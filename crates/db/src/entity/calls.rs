//! The `calls` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "calls")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) org_id: Uuid,
    pub(crate) direction: String,
    pub(crate) status: String,
    pub(crate) from_number: String,
    pub(crate) to_number: String,
    pub(crate) customer_id: Option<Uuid>,
    pub(crate) persona_id: Option<Uuid>,
    pub(crate) experiment_id: Option<Uuid>,
    pub(crate) variant_id: Option<Uuid>,
    pub(crate) provider_call_id: Option<String>,
    pub(crate) provider_session_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) end_reason: Option<Json>,
    pub(crate) outcome: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) sentiment: Option<Json>,
    pub(crate) escalation_reason: Option<String>,
    pub(crate) transferred_to: Option<Uuid>,
    pub(crate) recording_url: Option<String>,
    pub(crate) created_at: DateTimeUtc,
    pub(crate) answered_at: Option<DateTimeUtc>,
    pub(crate) ended_at: Option<DateTimeUtc>,
    pub(crate) version: i64,
    pub(crate) idempotency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
