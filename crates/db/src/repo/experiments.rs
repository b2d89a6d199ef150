//! `ExperimentRepository`.
//!
//! An experiment is one `experiments` row plus its arms in `experiment_variants`
//! (`position` keeps their order; `trials` / `conversions` are the counters).
//! `experiment_assignments` makes assignments sticky (one row per subject) and
//! `experiment_outcomes` makes outcome counting idempotent (one row per call).
//!
//! Choices the port leaves open:
//! - `update` never rewrites `salt`, `metric` or `created_at` (fixed at
//!   creation, like the identity columns). Variants are replaced only while the
//!   *stored* experiment is a draft; handing a non-draft experiment with
//!   different variants is refused with [`StoreError::Invalid`] (nothing is
//!   written). Unchanged variants are never touched, so counters survive.
//! - Every variant's persona must belong to the experiment's organisation
//!   (else [`StoreError::NotFound`] for `persona`): the foreign key alone would
//!   accept another tenant's persona.
//! - `assign` and `record_outcome` do not look at the status: deciding whether
//!   an experiment takes callers is the service's job.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::experiment::{VariantCounts, validate_variants};
use iace_domain::ports::{ExperimentRepository, Page, PageRequest, StoreError};
use iace_domain::{
    CallId, Experiment, ExperimentId, ExperimentStatus, OrgId, PersonaId, Variant, VariantId,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, TryInsertResult,
};
use uuid::Uuid;

use super::page;
use crate::SqlStore;
use crate::convert::{count_u64, enum_from, enum_text};
use crate::entity::experiment_assignments::{self as assignment, Entity as Assignments};
use crate::entity::experiment_outcomes::{self as outcome, Entity as Outcomes};
use crate::entity::experiment_variants::{self as variant, Entity as Variants};
use crate::entity::experiments::{self as experiment, Entity as Experiments};
use crate::entity::personas::{self as persona, Entity as Personas};
use crate::error::{corrupt, on};

const ENTITY: &str = "experiment";
const VARIANT: &str = "experiment variant";

fn variant_to_domain(row: variant::Model) -> Result<Variant, StoreError> {
    Ok(Variant {
        id: VariantId::from_uuid(row.id),
        name: row.name,
        persona_id: PersonaId::from_uuid(row.persona_id),
        weight: u32::try_from(row.weight).map_err(|e| corrupt(VARIANT, e))?,
        is_control: row.is_control,
    })
}

/// `row` with its variants (already in position order).
fn to_domain(
    row: experiment::Model,
    variants: Vec<variant::Model>,
) -> Result<Experiment, StoreError> {
    Ok(Experiment {
        id: ExperimentId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        name: row.name,
        salt: row.salt,
        status: enum_from(ENTITY, &row.status)?,
        metric: enum_from(ENTITY, &row.metric)?,
        variants: variants
            .into_iter()
            .map(variant_to_domain)
            .collect::<Result<_, _>>()?,
        created_at: row.created_at,
        started_at: row.started_at,
        ended_at: row.ended_at,
    })
}

fn to_active(e: &Experiment) -> experiment::ActiveModel {
    experiment::ActiveModel {
        id: Set(e.id.into_uuid()),
        org_id: Set(e.org_id.into_uuid()),
        name: Set(e.name.clone()),
        salt: Set(e.salt.clone()),
        status: Set(enum_text(&e.status)),
        metric: Set(enum_text(&e.metric)),
        created_at: Set(e.created_at),
        started_at: Set(e.started_at),
        ended_at: Set(e.ended_at),
    }
}

/// The variant rows of `e`, counters at zero, `position` from their order.
fn variant_rows(e: &Experiment) -> Result<Vec<variant::ActiveModel>, StoreError> {
    e.variants
        .iter()
        .enumerate()
        .map(|(position, v)| {
            let position = i32::try_from(position).map_err(|_| StoreError::Invalid {
                entity: ENTITY,
                reason: "too many variants".to_owned(),
            })?;
            Ok(variant::ActiveModel {
                id: Set(v.id.into_uuid()),
                experiment_id: Set(e.id.into_uuid()),
                position: Set(position),
                name: Set(v.name.clone()),
                persona_id: Set(v.persona_id.into_uuid()),
                weight: Set(i64::from(v.weight)),
                is_control: Set(v.is_control),
                trials: Set(0),
                conversions: Set(0),
            })
        })
        .collect()
}

/// Checks the arms' rules, so nothing invalid is ever stored.
fn validate(e: &Experiment) -> Result<(), StoreError> {
    validate_variants(&e.variants).map_err(|err| StoreError::Invalid {
        entity: ENTITY,
        reason: err.to_string(),
    })
}

/// Checks that every persona the variants use belongs to the experiment's org.
async fn check_personas<C: ConnectionTrait>(db: &C, e: &Experiment) -> Result<(), StoreError> {
    let ids: HashSet<Uuid> = e
        .variants
        .iter()
        .map(|v| v.persona_id.into_uuid())
        .collect();
    let found = Personas::find()
        .filter(persona::Column::OrgId.eq(e.org_id.into_uuid()))
        .filter(persona::Column::Id.is_in(ids.iter().copied()))
        .count(db)
        .await
        .map_err(on(ENTITY))?;
    if found != ids.len() as u64 {
        return Err(StoreError::NotFound { entity: "persona" });
    }
    Ok(())
}

/// Inserts the variant rows of `e`.
async fn insert_variants<C: ConnectionTrait>(db: &C, e: &Experiment) -> Result<(), StoreError> {
    let rows = variant_rows(e)?;
    if rows.is_empty() {
        return Ok(());
    }
    Variants::insert_many(rows)
        .exec_without_returning(db)
        .await
        .map_err(on(ENTITY))?;
    Ok(())
}

/// The variants of every experiment in `ids`, each list in position order, in
/// one query.
async fn variants_of<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<variant::Model>>, StoreError> {
    let mut by_experiment: HashMap<Uuid, Vec<variant::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_experiment);
    }
    let rows = Variants::find()
        .filter(variant::Column::ExperimentId.is_in(ids.iter().copied()))
        .order_by_asc(variant::Column::ExperimentId)
        .order_by_asc(variant::Column::Position)
        .all(db)
        .await
        .map_err(on(ENTITY))?;
    for row in rows {
        by_experiment
            .entry(row.experiment_id)
            .or_default()
            .push(row);
    }
    Ok(by_experiment)
}

/// Converts experiment rows, attaching their variants (one query for all).
async fn with_variants<C: ConnectionTrait>(
    db: &C,
    rows: Vec<experiment::Model>,
) -> Result<Vec<Experiment>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut variants = variants_of(db, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let own = variants.remove(&row.id).unwrap_or_default();
            to_domain(row, own)
        })
        .collect()
}

/// The experiment row `id` of `org`, or `NotFound`.
async fn find_in_org<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: ExperimentId,
) -> Result<experiment::Model, StoreError> {
    Experiments::find_by_id(id.into_uuid())
        .filter(experiment::Column::OrgId.eq(org.into_uuid()))
        .one(db)
        .await
        .map_err(on(ENTITY))?
        .ok_or(StoreError::NotFound { entity: ENTITY })
}

/// Checks that `experiment` is in `org` and `variant` in `experiment`.
async fn check_variant<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    experiment: ExperimentId,
    variant: VariantId,
) -> Result<(), StoreError> {
    find_in_org(db, org, experiment).await?;
    let found = Variants::find()
        .filter(variant::Column::Id.eq(variant.into_uuid()))
        .filter(variant::Column::ExperimentId.eq(experiment.into_uuid()))
        .count(db)
        .await
        .map_err(on(VARIANT))?;
    if found == 0 {
        return Err(StoreError::NotFound { entity: VARIANT });
    }
    Ok(())
}

#[async_trait]
impl ExperimentRepository for SqlStore {
    async fn create(&self, e: &Experiment) -> Result<(), StoreError> {
        validate(e)?;
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        check_personas(&txn, e).await?;
        Experiments::insert(to_active(e))
            .exec_without_returning(&txn)
            .await
            .map_err(on(ENTITY))?;
        insert_variants(&txn, e).await?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn get(&self, org: OrgId, id: ExperimentId) -> Result<Experiment, StoreError> {
        let row = find_in_org(&self.db, org, id).await?;
        let variants = Variants::find()
            .filter(variant::Column::ExperimentId.eq(row.id))
            .order_by_asc(variant::Column::Position)
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?;
        to_domain(row, variants)
    }

    async fn update(&self, e: &Experiment) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        // The stored state decides whether the variants may change; on Postgres
        // the row lock keeps a concurrent update from starting it in between.
        let stored = Experiments::find_by_id(e.id.into_uuid())
            .filter(experiment::Column::OrgId.eq(e.org_id.into_uuid()))
            .lock_exclusive()
            .one(&txn)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })?;
        let stored_variants = variants_of(&txn, &[stored.id])
            .await?
            .remove(&stored.id)
            .unwrap_or_default()
            .into_iter()
            .map(variant_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        if stored_variants != e.variants {
            let status: ExperimentStatus = enum_from(ENTITY, &stored.status)?;
            if status != ExperimentStatus::Draft {
                return Err(StoreError::Invalid {
                    entity: ENTITY,
                    reason: "variants can only be changed while the experiment is a draft"
                        .to_owned(),
                });
            }
            validate(e)?;
            check_personas(&txn, e).await?;
            // A draft has no counts, assignments or outcomes worth keeping.
            Variants::delete_many()
                .filter(variant::Column::ExperimentId.eq(stored.id))
                .exec(&txn)
                .await
                .map_err(on(ENTITY))?;
            insert_variants(&txn, e).await?;
        }
        let result = Experiments::update_many()
            .col_expr(experiment::Column::Name, Expr::value(e.name.clone()))
            .col_expr(
                experiment::Column::Status,
                Expr::value(enum_text(&e.status)),
            )
            .col_expr(experiment::Column::StartedAt, Expr::value(e.started_at))
            .col_expr(experiment::Column::EndedAt, Expr::value(e.ended_at))
            .filter(experiment::Column::Id.eq(e.id.into_uuid()))
            .filter(experiment::Column::OrgId.eq(e.org_id.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn list(&self, org: OrgId, request: PageRequest) -> Result<Page<Experiment>, StoreError> {
        let select = Experiments::find().filter(experiment::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, experiment::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        Ok(Page {
            items: with_variants(&self.db, rows.items).await?,
            next: rows.next,
        })
    }

    async fn running(&self, org: OrgId) -> Result<Vec<Experiment>, StoreError> {
        let rows = Experiments::find()
            .filter(experiment::Column::OrgId.eq(org.into_uuid()))
            .filter(experiment::Column::Status.eq(enum_text(&ExperimentStatus::Running)))
            .order_by_asc(experiment::Column::Id)
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?;
        with_variants(&self.db, rows).await
    }

    async fn record_outcome(
        &self,
        org: OrgId,
        experiment: ExperimentId,
        variant: VariantId,
        call: CallId,
        converted: bool,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        check_variant(&txn, org, experiment, variant).await?;
        let inserted = Outcomes::insert(outcome::ActiveModel {
            experiment_id: Set(experiment.into_uuid()),
            call_id: Set(call.into_uuid()),
            variant_id: Set(variant.into_uuid()),
            converted: Set(converted),
            recorded_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await
        .map_err(on(ENTITY))?;
        let counted = matches!(inserted, TryInsertResult::Inserted(n) if n > 0);
        if counted {
            // Atomic increments: concurrent outcomes never lose a count.
            Variants::update_many()
                .col_expr(
                    variant::Column::Trials,
                    Expr::col(variant::Column::Trials).add(1),
                )
                .col_expr(
                    variant::Column::Conversions,
                    Expr::col(variant::Column::Conversions).add(i64::from(converted)),
                )
                .filter(variant::Column::Id.eq(variant.into_uuid()))
                .exec(&txn)
                .await
                .map_err(on(VARIANT))?;
        }
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(counted)
    }

    async fn assign(
        &self,
        org: OrgId,
        experiment: ExperimentId,
        subject_key: &str,
        variant: VariantId,
        at: DateTime<Utc>,
    ) -> Result<VariantId, StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        check_variant(&txn, org, experiment, variant).await?;
        // Sticky: an existing assignment wins; then read back the one in force.
        Assignments::insert(assignment::ActiveModel {
            experiment_id: Set(experiment.into_uuid()),
            subject_key: Set(subject_key.to_owned()),
            variant_id: Set(variant.into_uuid()),
            assigned_at: Set(at),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await
        .map_err(on(ENTITY))?;
        let in_force = Assignments::find_by_id((experiment.into_uuid(), subject_key.to_owned()))
            .one(&txn)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound {
                entity: "experiment assignment",
            })?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(VariantId::from_uuid(in_force.variant_id))
    }

    async fn counts(
        &self,
        org: OrgId,
        experiment: ExperimentId,
    ) -> Result<Vec<VariantCounts>, StoreError> {
        find_in_org(&self.db, org, experiment).await?;
        Variants::find()
            .filter(variant::Column::ExperimentId.eq(experiment.into_uuid()))
            .order_by_asc(variant::Column::Position)
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?
            .into_iter()
            .map(|row| {
                VariantCounts::new(
                    VariantId::from_uuid(row.id),
                    count_u64(row.trials),
                    count_u64(row.conversions),
                )
                .map_err(|e| corrupt(VARIANT, e))
            })
            .collect()
    }
}
