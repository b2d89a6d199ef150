//! The `pattern_uses` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "pattern_uses")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) pattern_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) call_id: Uuid,
    pub(crate) success: bool,
    pub(crate) used_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
