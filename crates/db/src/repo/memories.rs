//! `MemoryStore`: customer memories and their vector search. Ranking
//! (`find_relevant`, `context`) comes from the domain's `MemoryStoreExt`.

use std::collections::HashMap;

use async_trait::async_trait;
use iace_domain::ports::{MemoryStore, ScoredMatch, StoreError};
use iace_domain::{CallId, CustomerId, CustomerMemory, Embedding, Importance, MemoryId, OrgId};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::convert::{from_json, to_json};
use crate::entity::calls::{self as call, Entity as Calls};
use crate::entity::customer_memories::{self as memory, Entity as Memories};
use crate::entity::customers::{self as customer, Entity as Customers};
use crate::error::{corrupt, on};
use crate::vector::{self, Params};

const ENTITY: &str = "memory";
const TABLE: &str = "customer_memories";
/// Every mapped column (the embedding is read separately).
const COLUMNS: &str = "id, org_id, customer_id, call_id, summary, facts, importance, created_at";

fn to_domain(
    row: memory::Model,
    embedding: Option<Embedding>,
) -> Result<CustomerMemory, StoreError> {
    Ok(CustomerMemory {
        id: MemoryId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        customer_id: CustomerId::from_uuid(row.customer_id),
        call_id: row.call_id.map(CallId::from_uuid),
        summary: row.summary,
        facts: from_json(ENTITY, row.facts)?,
        importance: Importance::new(row.importance).map_err(|e| corrupt(ENTITY, e))?,
        embedding,
        created_at: row.created_at,
    })
}

/// Rows with their embeddings (read in one more query).
async fn with_embeddings<C: ConnectionTrait>(
    db: &C,
    rows: Vec<memory::Model>,
) -> Result<Vec<CustomerMemory>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut embeddings = vector::read_many(db, ENTITY, TABLE, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let embedding = embeddings.remove(&row.id);
            to_domain(row, embedding)
        })
        .collect()
}

impl SqlStore {
    /// Why `add` wrote nothing: a duplicate of the same memory (fine), an id
    /// taken in another org, or a customer (or call) outside the org.
    async fn explain_unwritten_memory(&self, m: &CustomerMemory) -> Result<(), StoreError> {
        if let Some(existing) = Memories::find_by_id(m.id.into_uuid())
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
        {
            return if existing.org_id == m.org_id.into_uuid() {
                Ok(())
            } else {
                Err(StoreError::AlreadyExists {
                    entity: ENTITY,
                    field: "id",
                })
            };
        }
        let customers = Customers::find_by_id(m.customer_id.into_uuid())
            .filter(customer::Column::OrgId.eq(m.org_id.into_uuid()))
            .count(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if customers == 0 {
            return Err(StoreError::NotFound { entity: "customer" });
        }
        if let Some(c) = m.call_id {
            let calls = Calls::find_by_id(c.into_uuid())
                .filter(call::Column::OrgId.eq(m.org_id.into_uuid()))
                .count(&self.db)
                .await
                .map_err(on(ENTITY))?;
            if calls == 0 {
                return Err(StoreError::NotFound { entity: "call" });
            }
        }
        // Deleted between the insert and this look-up: nothing to attach it to.
        Err(StoreError::NotFound { entity: "customer" })
    }

    /// Postgres: one ordered query (the HNSW index, or the customer index and an
    /// exact sort when the planner finds that cheaper — a customer has few).
    async fn find_similar_memories_pg(
        &self,
        org: OrgId,
        customer: CustomerId,
        query: &Embedding,
        k: u32,
    ) -> Result<Vec<ScoredMatch<CustomerMemory>>, StoreError> {
        let mut params = Params::new(DbBackend::Postgres);
        let q = params.embedding(query);
        let sql = format!(
            "SELECT {COLUMNS}, embedding <=> {q} AS distance FROM {TABLE} \
             WHERE org_id = {} AND customer_id = {} AND embedding IS NOT NULL \
             ORDER BY embedding <=> {q} LIMIT {k}",
            params.bind(org.into_uuid()),
            params.bind(customer.into_uuid()),
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
            let model =
                memory::Model::from_query_result(row, "").map_err(|e| corrupt(ENTITY, e))?;
            found.push((model, 1.0 - distance));
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

    /// SQLite: exact cosine similarity in Rust over the customer's memories.
    async fn find_similar_memories_sqlite(
        &self,
        org: OrgId,
        customer: CustomerId,
        query: &Embedding,
        k: u32,
    ) -> Result<Vec<ScoredMatch<CustomerMemory>>, StoreError> {
        let mut params = Params::new(self.db.get_database_backend());
        let condition = format!(
            "org_id = {} AND customer_id = {}",
            params.bind(org.into_uuid()),
            params.bind(customer.into_uuid())
        );
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
        let rows: HashMap<Uuid, memory::Model> = Memories::find()
            .filter(memory::Column::OrgId.eq(org.into_uuid()))
            .filter(memory::Column::Id.is_in(ids))
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
impl MemoryStore for SqlStore {
    async fn add(&self, m: &CustomerMemory) -> Result<(), StoreError> {
        if let Some(e) = &m.embedding {
            vector::check_dimension(ENTITY, e, self.dimension)?;
        }
        let backend = self.db.get_database_backend();
        let mut params = Params::new(backend);
        let values = [
            params.bind(m.id.into_uuid()),
            params.bind(m.org_id.into_uuid()),
            params.bind(m.customer_id.into_uuid()),
            params.bind(m.call_id.map(CallId::into_uuid)),
            params.bind(m.summary.clone()),
            params.bind(to_json(ENTITY, &m.facts)?),
            params.bind(m.importance.value()),
            params.optional_embedding(m.embedding.as_ref()),
            params.bind(m.created_at),
        ]
        .join(", ");
        // The customer (and the call, when there is one) must be in the org: the
        // foreign keys alone would accept another tenant's.
        let mut guard = format!(
            "EXISTS (SELECT 1 FROM customers WHERE id = {} AND org_id = {})",
            params.bind(m.customer_id.into_uuid()),
            params.bind(m.org_id.into_uuid())
        );
        if let Some(c) = m.call_id {
            guard.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM calls WHERE id = {} AND org_id = {})",
                params.bind(c.into_uuid()),
                params.bind(m.org_id.into_uuid())
            ));
        }
        let sql = format!(
            "INSERT INTO {TABLE} (id, org_id, customer_id, call_id, summary, facts, \
             importance, embedding, created_at) SELECT {values} WHERE {guard} \
             ON CONFLICT (id) DO NOTHING"
        );
        let result = self
            .db
            .execute_raw(params.statement(sql))
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected() == 0 {
            return self.explain_unwritten_memory(m).await;
        }
        Ok(())
    }

    async fn find_similar(
        &self,
        org: OrgId,
        customer: CustomerId,
        query: &Embedding,
        k: u32,
    ) -> Result<Vec<ScoredMatch<CustomerMemory>>, StoreError> {
        vector::check_dimension(ENTITY, query, self.dimension)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        match self.db.get_database_backend() {
            DbBackend::Postgres => self.find_similar_memories_pg(org, customer, query, k).await,
            _ => {
                self.find_similar_memories_sqlite(org, customer, query, k)
                    .await
            }
        }
    }

    async fn recent(
        &self,
        org: OrgId,
        customer: CustomerId,
        limit: u32,
    ) -> Result<Vec<CustomerMemory>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = Memories::find()
            .filter(memory::Column::OrgId.eq(org.into_uuid()))
            .filter(memory::Column::CustomerId.eq(customer.into_uuid()))
            .order_by_desc(memory::Column::CreatedAt)
            .order_by_desc(memory::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?;
        with_embeddings(&self.db, rows).await
    }

    async fn delete(&self, org: OrgId, id: MemoryId) -> Result<(), StoreError> {
        let result = Memories::delete_many()
            .filter(memory::Column::Id.eq(id.into_uuid()))
            .filter(memory::Column::OrgId.eq(org.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn forget_customer(&self, org: OrgId, customer: CustomerId) -> Result<u64, StoreError> {
        let result = Memories::delete_many()
            .filter(memory::Column::OrgId.eq(org.into_uuid()))
            .filter(memory::Column::CustomerId.eq(customer.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        Ok(result.rows_affected)
    }
}
