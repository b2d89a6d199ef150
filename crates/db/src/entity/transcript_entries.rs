//! The `transcript_entries` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "transcript_entries")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) org_id: Uuid,
    pub(crate) call_id: Uuid,
    pub(crate) sequence: i32,
    pub(crate) speaker: String,
    pub(crate) text: String,
    pub(crate) started_ms: i64,
    pub(crate) ended_ms: i64,
    pub(crate) sentiment: Option<f64>,
    pub(crate) interrupted: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
