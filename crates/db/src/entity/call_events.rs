//! The `call_events` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "call_events")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) org_id: Uuid,
    pub(crate) call_id: Uuid,
    pub(crate) version: Option<i64>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) event: Json,
    pub(crate) event_kind: String,
    pub(crate) from_status: String,
    pub(crate) to_status: String,
    pub(crate) result: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) detail: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) source: Json,
    pub(crate) provider_event_id: Option<String>,
    pub(crate) occurred_at: DateTimeUtc,
    pub(crate) recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
