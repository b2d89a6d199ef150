//! `PersonaRepository`.
//!
//! Deleting a persona that an experiment's variant uses is refused with
//! [`StoreError::Conflict`] (`expected: 0`, as there is no version): checked up
//! front for running experiments, and enforced for every other experiment by
//! the `RESTRICT` foreign key, whose violation maps to the same error. Calls
//! that used the persona keep their history (their `persona_id` is cleared).

use async_trait::async_trait;
use iace_domain::ports::{Page, PageRequest, PersonaRepository, StoreError};
use iace_domain::{ExperimentStatus, OrgId, Persona, PersonaId, Voice};
use sea_orm::sea_query::Query;
use sea_orm::sqlx::error::ErrorKind;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, RuntimeErr, SqlErr, TransactionTrait,
};

use super::{convert_page, page};
use crate::SqlStore;
use crate::convert::{enum_from, enum_text, parse};
use crate::entity::experiment_variants::{self as variant, Entity as Variants};
use crate::entity::experiments::{self as experiment, Entity as Experiments};
use crate::entity::personas::{self as persona, Entity as Personas};
use crate::error::{corrupt, on};

const ENTITY: &str = "persona";

fn to_domain(row: persona::Model) -> Result<Persona, StoreError> {
    // Written from an `f32`, so narrowing back is exact; anything that is not a
    // finite `f32` was not written by us.
    let speed = row.voice_speed as f32;
    if !speed.is_finite() {
        return Err(corrupt(ENTITY, "voice speed is not a finite number"));
    }
    Ok(Persona {
        id: PersonaId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        name: row.name,
        voice: Voice {
            name: row.voice_name,
            speed,
        },
        system_prompt: row.system_prompt,
        greeting: row.greeting,
        style: enum_from(ENTITY, &row.style)?,
        language: parse(ENTITY, &row.language)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn to_active(p: &Persona) -> persona::ActiveModel {
    persona::ActiveModel {
        id: Set(p.id.into_uuid()),
        org_id: Set(p.org_id.into_uuid()),
        name: Set(p.name.clone()),
        voice_name: Set(p.voice.name.clone()),
        voice_speed: Set(f64::from(p.voice.speed)),
        system_prompt: Set(p.system_prompt.clone()),
        greeting: Set(p.greeting.clone()),
        style: Set(enum_text(&p.style)),
        language: Set(p.language.as_str().to_owned()),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    }
}

/// Whether deleting failed because a row still references the persona. sea-orm
/// only recognises the plain foreign-key codes, not a `RESTRICT` action: that
/// is SQLSTATE 23001 on Postgres and `SQLITE_CONSTRAINT_TRIGGER` (1811) on
/// SQLite (787 is `SQLITE_CONSTRAINT_FOREIGNKEY`).
fn is_reference_violation(err: &DbErr) -> bool {
    if matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    ) {
        return true;
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    e.as_database_error().is_some_and(|db| {
        matches!(db.kind(), ErrorKind::ForeignKeyViolation)
            || matches!(
                db.code().as_deref(),
                Some("23001" | "23503" | "1811" | "787")
            )
    })
}

/// Maps a failed delete: a remaining reference → `Conflict`, else as usual.
fn on_delete(err: DbErr) -> StoreError {
    if is_reference_violation(&err) {
        in_use()
    } else {
        on(ENTITY)(err)
    }
}

/// A persona still referenced by a variant.
const fn in_use() -> StoreError {
    StoreError::Conflict {
        entity: ENTITY,
        expected: 0,
    }
}

#[async_trait]
impl PersonaRepository for SqlStore {
    async fn create(&self, p: &Persona) -> Result<(), StoreError> {
        to_active(p).insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn get(&self, org: OrgId, id: PersonaId) -> Result<Persona, StoreError> {
        Personas::find_by_id(id.into_uuid())
            .filter(persona::Column::OrgId.eq(org.into_uuid()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })
            .and_then(to_domain)
    }

    async fn update(&self, p: &Persona) -> Result<(), StoreError> {
        let mut row = to_active(p);
        // Identity never changes.
        row.id = sea_orm::ActiveValue::Unchanged(p.id.into_uuid());
        row.org_id = sea_orm::ActiveValue::NotSet;
        row.created_at = sea_orm::ActiveValue::NotSet;
        let result = Personas::update_many()
            .set(row)
            .filter(persona::Column::Id.eq(p.id.into_uuid()))
            .filter(persona::Column::OrgId.eq(p.org_id.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn delete(&self, org: OrgId, id: PersonaId) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        let exists = Personas::find_by_id(id.into_uuid())
            .filter(persona::Column::OrgId.eq(org.into_uuid()))
            .count(&txn)
            .await
            .map_err(on(ENTITY))?;
        if exists == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        let running = Variants::find()
            .filter(variant::Column::PersonaId.eq(id.into_uuid()))
            .filter(
                variant::Column::ExperimentId.in_subquery(
                    Query::select()
                        .column(experiment::Column::Id)
                        .from(Experiments)
                        .and_where(
                            experiment::Column::Status.eq(enum_text(&ExperimentStatus::Running)),
                        )
                        .to_owned(),
                ),
            )
            .count(&txn)
            .await
            .map_err(on(ENTITY))?;
        if running > 0 {
            return Err(in_use());
        }
        let result = Personas::delete_many()
            .filter(persona::Column::Id.eq(id.into_uuid()))
            .filter(persona::Column::OrgId.eq(org.into_uuid()))
            .exec(&txn)
            .await
            // A variant of a draft, paused or completed experiment uses it (or
            // one started running since the check above).
            .map_err(on_delete)?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        // Deferred constraint checks would report at commit.
        txn.commit().await.map_err(on_delete)?;
        Ok(())
    }

    async fn list(&self, org: OrgId, request: PageRequest) -> Result<Page<Persona>, StoreError> {
        let select = Personas::find().filter(persona::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, persona::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        convert_page(rows, to_domain)
    }
}
