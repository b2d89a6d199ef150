//! `PatternStore`: learned patterns, their vector search and usage counters.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::learning::SuccessPrior;
use iace_domain::ports::store::PatternFilter;
use iace_domain::ports::{Page, PageRequest, PatternStore, ScoredMatch, StoreError};
use iace_domain::{CallId, Embedding, LearnedPattern, OrgId, PatternId};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryResult, TransactionTrait,
};
use uuid::Uuid;

use super::page;
use crate::SqlStore;
use crate::convert::{count_u32, enum_from, enum_text};
use crate::entity::learned_patterns::{self as pattern, Entity as Patterns};
use crate::entity::pattern_uses::{self as pattern_use, Entity as PatternUses};
use crate::error::{corrupt, on};
use crate::vector::{self, Params};

const ENTITY: &str = "pattern";
const TABLE: &str = "learned_patterns";
/// Every mapped column (the embedding is read separately).
const COLUMNS: &str =
    "id, org_id, kind, \"trigger\", response, uses, successes, created_at, last_used_at";

fn to_domain(
    row: pattern::Model,
    embedding: Option<Embedding>,
) -> Result<LearnedPattern, StoreError> {
    Ok(LearnedPattern {
        id: PatternId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        kind: enum_from(ENTITY, &row.kind)?,
        trigger: row.trigger,
        response: row.response,
        embedding,
        uses: count_u32(row.uses),
        successes: count_u32(row.successes),
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    })
}

/// Rows with their embeddings (read in one more query).
async fn with_embeddings<C: ConnectionTrait>(
    db: &C,
    rows: Vec<pattern::Model>,
) -> Result<Vec<LearnedPattern>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut embeddings = vector::read_many(db, ENTITY, TABLE, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let embedding = embeddings.remove(&row.id);
            to_domain(row, embedding)
        })
        .collect()
}

fn from_row(row: &QueryResult) -> Result<pattern::Model, StoreError> {
    pattern::Model::from_query_result(row, "").map_err(|e| corrupt(ENTITY, e))
}

/// `org_id = ? [AND kind = ?] [AND uses >= ?]`, binding into `params`.
fn filter_sql(params: &mut Params, org: OrgId, filter: &PatternFilter) -> String {
    let mut sql = format!("org_id = {}", params.bind(org.into_uuid()));
    if let Some(kind) = filter.kind {
        sql.push_str(&format!(" AND kind = {}", params.bind(enum_text(&kind))));
    }
    if filter.min_uses > 0 {
        sql.push_str(&format!(
            " AND uses >= {}",
            params.bind(i64::from(filter.min_uses))
        ));
    }
    sql
}

impl SqlStore {
    /// Postgres: one ordered query through the HNSW index (cosine distance).
    async fn find_similar_patterns_pg(
        &self,
        org: OrgId,
        query: &Embedding,
        k: u32,
        filter: &PatternFilter,
    ) -> Result<Vec<ScoredMatch<LearnedPattern>>, StoreError> {
        let mut params = Params::new(DbBackend::Postgres);
        let q = params.embedding(query);
        let condition = filter_sql(&mut params, org, filter);
        // `ORDER BY embedding <=> q LIMIT k` is the shape the HNSW index serves.
        let sql = format!(
            "SELECT {COLUMNS}, embedding <=> {q} AS distance FROM {TABLE} \
             WHERE {condition} AND embedding IS NOT NULL \
             ORDER BY embedding <=> {q} LIMIT {k}"
        );
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        vector::pg_search_settings(&txn, ENTITY, self.ef_search, k).await?;
        let rows = txn
            .query_all_raw(params.statement(sql))
            .await
            .map_err(on(ENTITY))?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let distance: f64 = row
                .try_get("", "distance")
                .map_err(|e| corrupt(ENTITY, e))?;
            found.push((from_row(row)?, 1.0 - distance));
        }
        let ids: Vec<Uuid> = found.iter().map(|(r, _)| r.id).collect();
        let mut embeddings = vector::read_many(&txn, ENTITY, TABLE, &ids).await?;
        txn.commit().await.map_err(on(ENTITY))?;
        found
            .into_iter()
            .map(|(row, similarity)| {
                let embedding = embeddings.remove(&row.id);
                Ok(ScoredMatch {
                    item: to_domain(row, embedding)?,
                    similarity,
                })
            })
            .collect()
    }

    /// SQLite: exact cosine similarity in Rust over the org's candidates.
    async fn find_similar_patterns_sqlite(
        &self,
        org: OrgId,
        query: &Embedding,
        k: u32,
        filter: &PatternFilter,
    ) -> Result<Vec<ScoredMatch<LearnedPattern>>, StoreError> {
        let mut params = Params::new(self.db.get_database_backend());
        let condition = filter_sql(&mut params, org, filter);
        let candidates = vector::read_sqlite_candidates(
            &self.db,
            ENTITY,
            TABLE,
            &condition,
            params.into_values(),
        )
        .await?;
        let best = vector::nearest(ENTITY, query, candidates, k as usize)?;
        let ids: Vec<Uuid> = best.iter().map(|(id, _, _)| *id).collect();
        let rows: HashMap<Uuid, pattern::Model> = Patterns::find()
            .filter(pattern::Column::OrgId.eq(org.into_uuid()))
            .filter(pattern::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        vector::in_rank_order(best, rows, to_domain)
    }
}

#[async_trait]
impl PatternStore for SqlStore {
    async fn upsert(&self, p: &LearnedPattern) -> Result<(), StoreError> {
        if let Some(e) = &p.embedding {
            vector::check_dimension(ENTITY, e, self.dimension)?;
        }
        let backend = self.db.get_database_backend();
        let mut params = Params::new(backend);
        let values = [
            params.bind(p.id.into_uuid()),
            params.bind(p.org_id.into_uuid()),
            params.bind(enum_text(&p.kind)),
            params.bind(p.trigger.clone()),
            params.bind(p.response.clone()),
            params.optional_embedding(p.embedding.as_ref()),
            params.bind(p.created_at),
        ]
        .join(", ");
        // One statement, so racing upserts cannot both insert. Counters start at
        // zero and are never written here (only `record_usage` moves them); the
        // update touches content only, and only within the same org.
        let sql = format!(
            "INSERT INTO {TABLE} (id, org_id, kind, \"trigger\", response, embedding, \
             created_at, uses, successes, last_used_at) VALUES ({values}, 0, 0, NULL) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, \
             \"trigger\" = excluded.\"trigger\", response = excluded.response, \
             embedding = excluded.embedding \
             WHERE {TABLE}.org_id = excluded.org_id"
        );
        let result = self
            .db
            .execute_raw(params.statement(sql))
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected() == 0 {
            // The id exists in another organisation: never overwrite it.
            return Err(StoreError::AlreadyExists {
                entity: ENTITY,
                field: "id",
            });
        }
        Ok(())
    }

    async fn get(&self, org: OrgId, id: PatternId) -> Result<LearnedPattern, StoreError> {
        let row = Patterns::find_by_id(id.into_uuid())
            .filter(pattern::Column::OrgId.eq(org.into_uuid()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })?;
        with_embeddings(&self.db, vec![row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound { entity: ENTITY })
    }

    async fn find_similar(
        &self,
        org: OrgId,
        query: &Embedding,
        k: u32,
        filter: &PatternFilter,
    ) -> Result<Vec<ScoredMatch<LearnedPattern>>, StoreError> {
        vector::check_dimension(ENTITY, query, self.dimension)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        match self.db.get_database_backend() {
            DbBackend::Postgres => self.find_similar_patterns_pg(org, query, k, filter).await,
            _ => {
                self.find_similar_patterns_sqlite(org, query, k, filter)
                    .await
            }
        }
    }

    async fn top(
        &self,
        org: OrgId,
        filter: &PatternFilter,
        prior: &SuccessPrior,
        limit: u32,
    ) -> Result<Vec<LearnedPattern>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let float = match backend {
            DbBackend::Postgres => "DOUBLE PRECISION",
            _ => "REAL",
        };
        let mut params = Params::new(backend);
        let condition = filter_sql(&mut params, org, filter);
        let (alpha, beta) = (prior.alpha(), prior.beta());
        let rate = format!(
            "(CAST(successes AS {float}) + {}) / (CAST(uses AS {float}) + {} + {})",
            params.bind(alpha),
            params.bind(alpha),
            params.bind(beta)
        );
        let sql = format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE {condition} \
             ORDER BY {rate} DESC, id LIMIT {limit}"
        );
        let rows = self
            .db
            .query_all_raw(params.statement(sql))
            .await
            .map_err(on(ENTITY))?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        with_embeddings(&self.db, rows).await
    }

    async fn record_usage(
        &self,
        org: OrgId,
        call: CallId,
        ids: &[PatternId],
        success: bool,
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        // Sorted: concurrent calls lock rows in the same order, so never deadlock.
        let mut ids: Vec<Uuid> = ids.iter().map(|id| id.into_uuid()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(0);
        }
        let backend = self.db.get_database_backend();
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        let mut counted = 0_u32;
        for id in ids {
            // The use row is the idempotency key: only its first insert counts.
            let mut params = Params::new(backend);
            let sql = format!(
                "INSERT INTO pattern_uses (pattern_id, call_id, success, used_at) \
                 SELECT id, {}, {}, {} FROM {TABLE} WHERE id = {} AND org_id = {} \
                 ON CONFLICT (pattern_id, call_id) DO NOTHING",
                params.bind(call.into_uuid()),
                params.bind(success),
                params.bind(at),
                params.bind(id),
                params.bind(org.into_uuid()),
            );
            let inserted = txn
                .execute_raw(params.statement(sql))
                .await
                .map_err(on(ENTITY))?
                .rows_affected();
            if inserted == 0 {
                continue;
            }
            let mut params = Params::new(backend);
            let sql = format!(
                "UPDATE {TABLE} SET uses = uses + 1, successes = successes + {}, \
                 last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < {} \
                 THEN {} ELSE last_used_at END \
                 WHERE id = {} AND org_id = {}",
                params.bind(i64::from(success)),
                params.bind(at),
                params.bind(at),
                params.bind(id),
                params.bind(org.into_uuid()),
            );
            txn.execute_raw(params.statement(sql))
                .await
                .map_err(on(ENTITY))?;
            counted += 1;
        }
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(counted)
    }

    async fn list(
        &self,
        org: OrgId,
        request: PageRequest,
    ) -> Result<Page<LearnedPattern>, StoreError> {
        let select = Patterns::find().filter(pattern::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, pattern::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        Ok(Page {
            items: with_embeddings(&self.db, rows.items).await?,
            next: rows.next,
        })
    }

    async fn delete(&self, org: OrgId, id: PatternId) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        let result = Patterns::delete_many()
            .filter(pattern::Column::Id.eq(id.into_uuid()))
            .filter(pattern::Column::OrgId.eq(org.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        // The foreign key cascades too; this keeps it explicit and backend-proof.
        PatternUses::delete_many()
            .filter(pattern_use::Column::PatternId.eq(id.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }
}
