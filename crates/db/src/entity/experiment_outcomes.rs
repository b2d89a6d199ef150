//! The `experiment_outcomes` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "experiment_outcomes")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) experiment_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) call_id: Uuid,
    pub(crate) variant_id: Uuid,
    pub(crate) converted: bool,
    pub(crate) recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
