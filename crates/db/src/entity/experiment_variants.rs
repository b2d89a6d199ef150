//! The `experiment_variants` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "experiment_variants")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) experiment_id: Uuid,
    pub(crate) position: i32,
    pub(crate) name: String,
    pub(crate) persona_id: Uuid,
    pub(crate) weight: i64,
    pub(crate) is_control: bool,
    pub(crate) trials: i64,
    pub(crate) conversions: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
