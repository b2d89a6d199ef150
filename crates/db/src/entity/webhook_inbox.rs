//! The `webhook_inbox` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_inbox")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) provider: String,
    pub(crate) provider_event_id: String,
    pub(crate) event_type: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) payload: Json,
    pub(crate) occurred_at: Option<DateTimeUtc>,
    pub(crate) received_at: DateTimeUtc,
    pub(crate) status: String,
    pub(crate) attempts: i32,
    pub(crate) last_error: Option<String>,
    pub(crate) next_attempt_at: Option<DateTimeUtc>,
    pub(crate) processed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
