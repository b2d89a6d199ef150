//! The `customers` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) org_id: Uuid,
    pub(crate) phone: String,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) tier: String,
    pub(crate) language: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) attributes: Json,
    pub(crate) created_at: DateTimeUtc,
    pub(crate) updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
