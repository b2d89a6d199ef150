//! `AgentRepository`.

use std::collections::BTreeSet;

use async_trait::async_trait;
use iace_domain::ports::{AgentRepository, Page, PageRequest, StoreError};
use iace_domain::{AgentId, Availability, HumanAgent, OrgId, Skill};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set, Unchanged},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::{convert_page, page};
use crate::SqlStore;
use crate::convert::{count_u32, enum_from, enum_text, from_json, parse, to_json};
use crate::entity::agents::{self as agent, Entity as Agents};
use crate::error::on;

const ENTITY: &str = "agent";

fn to_domain(row: agent::Model) -> Result<HumanAgent, StoreError> {
    let skills: BTreeSet<Skill> = from_json(ENTITY, row.skills)?;
    Ok(HumanAgent {
        id: AgentId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        name: row.name,
        email: row.email.as_deref().map(|e| parse(ENTITY, e)).transpose()?,
        phone: row.phone.as_deref().map(|p| parse(ENTITY, p)).transpose()?,
        sip_uri: row.sip_uri,
        skills,
        availability: enum_from(ENTITY, &row.availability)?,
        max_concurrent_calls: count_u32(i64::from(row.max_concurrent_calls)),
        active_calls: count_u32(i64::from(row.active_calls)),
    })
}

/// A call count as an `INTEGER` column value.
fn count_i32(field: &str, value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Invalid {
        entity: ENTITY,
        reason: format!("{field} {value} is too large"),
    })
}

fn to_active(a: &HumanAgent) -> Result<agent::ActiveModel, StoreError> {
    Ok(agent::ActiveModel {
        id: Set(a.id.into_uuid()),
        org_id: Set(a.org_id.into_uuid()),
        name: Set(a.name.clone()),
        email: Set(a.email.as_ref().map(|e| e.as_str().to_owned())),
        phone: Set(a.phone.as_ref().map(|p| p.as_str().to_owned())),
        sip_uri: Set(a.sip_uri.clone()),
        skills: Set(to_json(ENTITY, &a.skills)?),
        availability: Set(enum_text(&a.availability)),
        max_concurrent_calls: Set(count_i32("max_concurrent_calls", a.max_concurrent_calls)?),
        active_calls: Set(count_i32("active_calls", a.active_calls)?),
        // Not part of the domain value: stamped once, never rewritten.
        created_at: Set(chrono::Utc::now()),
    })
}

/// The agent `id` of `org`, read on `db` (inside the caller's transaction).
async fn find<C: ConnectionTrait>(
    db: &C,
    org: OrgId,
    id: AgentId,
) -> Result<Option<agent::Model>, StoreError> {
    Agents::find_by_id(id.into_uuid())
        .filter(agent::Column::OrgId.eq(org.into_uuid()))
        .one(db)
        .await
        .map_err(on(ENTITY))
}

#[async_trait]
impl AgentRepository for SqlStore {
    async fn create(&self, a: &HumanAgent) -> Result<(), StoreError> {
        to_active(a)?.insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn get(&self, org: OrgId, id: AgentId) -> Result<HumanAgent, StoreError> {
        find(&self.db, org, id)
            .await?
            .ok_or(StoreError::NotFound { entity: ENTITY })
            .and_then(to_domain)
    }

    async fn update(&self, a: &HumanAgent) -> Result<(), StoreError> {
        let mut row = to_active(a)?;
        // Identity never changes; active calls only through `adjust_active_calls`.
        row.id = Unchanged(a.id.into_uuid());
        row.org_id = NotSet;
        row.created_at = NotSet;
        row.active_calls = NotSet;
        let result = Agents::update_many()
            .set(row)
            .filter(agent::Column::Id.eq(a.id.into_uuid()))
            .filter(agent::Column::OrgId.eq(a.org_id.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn delete(&self, org: OrgId, id: AgentId) -> Result<(), StoreError> {
        let result = Agents::delete_many()
            .filter(agent::Column::Id.eq(id.into_uuid()))
            .filter(agent::Column::OrgId.eq(org.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn list(&self, org: OrgId, request: PageRequest) -> Result<Page<HumanAgent>, StoreError> {
        let select = Agents::find().filter(agent::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, agent::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        convert_page(rows, to_domain)
    }

    async fn candidates(
        &self,
        org: OrgId,
        skills: &[Skill],
    ) -> Result<Vec<HumanAgent>, StoreError> {
        let rows = Agents::find()
            .filter(agent::Column::OrgId.eq(org.into_uuid()))
            .filter(agent::Column::Availability.eq(enum_text(&Availability::Available)))
            .filter(
                Expr::col(agent::Column::ActiveCalls)
                    .lt(Expr::col(agent::Column::MaxConcurrentCalls)),
            )
            .order_by_asc(agent::Column::Id)
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?;
        // Skills are a JSON array; matching them in Rust keeps the query the same
        // on both backends (the candidate set is one org's available agents).
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let agent = to_domain(row)?;
            if agent.has_skills(skills) {
                out.push(agent);
            }
        }
        Ok(out)
    }

    async fn adjust_active_calls(
        &self,
        org: OrgId,
        id: AgentId,
        delta: i32,
    ) -> Result<HumanAgent, StoreError> {
        // Bound as BIGINT so `active_calls + delta` cannot overflow the column type;
        // the WHERE clause keeps the stored value within 0..=max.
        let delta = i64::from(delta);
        let next = Expr::col(agent::Column::ActiveCalls).add(delta);
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        // One conditional statement: concurrent adjustments serialise on the row,
        // and each re-checks the bound against the value it finally sees.
        let result = Agents::update_many()
            .col_expr(agent::Column::ActiveCalls, next.clone())
            .filter(agent::Column::Id.eq(id.into_uuid()))
            .filter(agent::Column::OrgId.eq(org.into_uuid()))
            .filter(next.clone().gte(0))
            .filter(next.lte(Expr::col(agent::Column::MaxConcurrentCalls)))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        let row = find(&txn, org, id).await?;
        txn.commit().await.map_err(on(ENTITY))?;
        match row {
            None => Err(StoreError::NotFound { entity: ENTITY }),
            Some(row) if result.rows_affected == 0 => Err(StoreError::Conflict {
                entity: ENTITY,
                expected: i64::from(row.active_calls),
            }),
            Some(row) => to_domain(row),
        }
    }
}
