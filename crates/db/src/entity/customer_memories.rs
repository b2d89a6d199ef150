//! The `customer_memories` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_memories")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) org_id: Uuid,
    pub(crate) customer_id: Uuid,
    pub(crate) call_id: Option<Uuid>,
    pub(crate) summary: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) facts: Json,
    pub(crate) importance: f64,
    pub(crate) created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
