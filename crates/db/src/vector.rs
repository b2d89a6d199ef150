//! Embedding columns: `vector(N)` on Postgres, a blob of little-endian `f32`s on
//! SQLite. They are not mapped in the entities (their SQL type differs per
//! backend); these helpers read and write them with plain statements.

use std::collections::HashMap;

use iace_domain::Embedding;
use iace_domain::ports::StoreError;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::error::{corrupt, on};

/// Rejects an embedding of the wrong dimension before it reaches SQL.
pub(crate) fn check_dimension(
    entity: &'static str,
    embedding: &Embedding,
    dimension: usize,
) -> Result<(), StoreError> {
    if embedding.dimension() == dimension {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            entity,
            reason: format!(
                "embedding has dimension {}, the store holds dimension {dimension}",
                embedding.dimension()
            ),
        })
    }
}

/// pgvector's text form: `[0.1,0.2,...]`.
pub(crate) fn to_pg_text(embedding: &Embedding) -> String {
    let mut out = String::with_capacity(embedding.dimension() * 10 + 2);
    out.push('[');
    for (i, v) in embedding.as_slice().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v.to_string());
    }
    out.push(']');
    out
}

fn from_pg_text(text: &str) -> Result<Embedding, Box<dyn std::error::Error + Send + Sync>> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let values = inner
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Embedding::new(values)?)
}

fn to_blob(embedding: &Embedding) -> Vec<u8> {
    embedding
        .as_slice()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn from_blob(bytes: &[u8]) -> Result<Embedding, Box<dyn std::error::Error + Send + Sync>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "embedding blob of {} bytes is not a whole number of f32s",
            bytes.len()
        )
        .into());
    }
    let values = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Embedding::new(values)?)
}

/// The SQL placeholder for parameter `n` (1-based) on `backend`.
pub(crate) fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// The bound value and its SQL expression for an embedding parameter `n`.
pub(crate) fn param(backend: DbBackend, n: usize, embedding: &Embedding) -> (String, Value) {
    match backend {
        DbBackend::Postgres => (
            format!("CAST(${n} AS vector)"),
            Value::from(to_pg_text(embedding)),
        ),
        _ => ("?".to_owned(), Value::from(to_blob(embedding))),
    }
}

/// Reads the embeddings of rows `ids` in `table` (rows without one are absent).
pub(crate) async fn read_many<C: ConnectionTrait>(
    db: &C,
    entity: &'static str,
    table: &'static str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Embedding>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let column = match backend {
        DbBackend::Postgres => "embedding::text AS embedding",
        _ => "embedding",
    };
    let marks: Vec<String> = (1..=ids.len()).map(|n| placeholder(backend, n)).collect();
    let sql = format!(
        "SELECT id, {column} FROM {table} WHERE embedding IS NOT NULL AND id IN ({})",
        marks.join(", ")
    );
    let values: Vec<Value> = ids.iter().map(|id| (*id).into()).collect();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map_err(on(entity))?;
    for row in rows {
        let id: Uuid = row.try_get("", "id").map_err(|e| corrupt(entity, e))?;
        let embedding = match backend {
            DbBackend::Postgres => {
                let text: String = row
                    .try_get("", "embedding")
                    .map_err(|e| corrupt(entity, e))?;
                from_pg_text(&text)
            }
            _ => {
                let bytes: Vec<u8> = row
                    .try_get("", "embedding")
                    .map_err(|e| corrupt(entity, e))?;
                from_blob(&bytes)
            }
        }
        .map_err(|e| corrupt(entity, e))?;
        out.insert(id, embedding);
    }
    Ok(out)
}

/// Reads every embedding of an org's rows in `table` matching an extra SQL
/// condition (SQLite's exact search scans these in Rust).
pub(crate) async fn read_sqlite_candidates<C: ConnectionTrait>(
    db: &C,
    entity: &'static str,
    table: &'static str,
    condition: &str,
    values: Vec<Value>,
) -> Result<Vec<(Uuid, Embedding)>, StoreError> {
    let backend = db.get_database_backend();
    let sql =
        format!("SELECT id, embedding FROM {table} WHERE embedding IS NOT NULL AND {condition}");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map_err(on(entity))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("", "id").map_err(|e| corrupt(entity, e))?;
        let bytes: Vec<u8> = row
            .try_get("", "embedding")
            .map_err(|e| corrupt(entity, e))?;
        out.push((id, from_blob(&bytes).map_err(|e| corrupt(entity, e))?));
    }
    Ok(out)
}

/// Bound values for a raw statement, numbered in the order they are bound
/// (`$n` on Postgres, `?` on SQLite — so a value used twice is bound twice).
#[derive(Debug)]
pub(crate) struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    /// No values yet.
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// Binds `value`; returns its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        placeholder(self.backend, self.values.len())
    }

    /// Binds an embedding; returns its SQL expression (`CAST($n AS vector)` on
    /// Postgres).
    pub(crate) fn embedding(&mut self, embedding: &Embedding) -> String {
        let (expr, value) = param(self.backend, self.values.len() + 1, embedding);
        self.values.push(value);
        expr
    }

    /// Binds an optional embedding; `NULL` (a literal, so no text-typed NULL
    /// meets a `vector` column) when there is none.
    pub(crate) fn optional_embedding(&mut self, embedding: Option<&Embedding>) -> String {
        embedding.map_or_else(|| "NULL".to_owned(), |e| self.embedding(e))
    }

    /// The statement `sql` with these values.
    pub(crate) fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }

    /// The values alone (for [`read_sqlite_candidates`]).
    pub(crate) fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// pgvector's HNSW search settings for the rest of transaction `txn`: a
/// candidate list of `ef_search` (at least `k`, at most pgvector's 1000), and
/// iterative scans in strict distance order, so that rows removed by the
/// query's filters (other orgs, other kinds) do not leave fewer than `k`
/// results (pgvector >= 0.8).
pub(crate) async fn pg_search_settings<C: ConnectionTrait>(
    txn: &C,
    entity: &'static str,
    ef_search: u32,
    k: u32,
) -> Result<(), StoreError> {
    let ef = ef_search.max(k).clamp(1, 1000);
    // SET takes no bound parameters; `ef` is an integer, so formatting is safe.
    txn.execute_unprepared(&format!(
        "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = strict_order"
    ))
    .await
    .map_err(on(entity))?;
    Ok(())
}

/// The `k` candidates most similar to `query` by exact cosine similarity, most
/// similar first (ties by id), with their similarity. A stored embedding of
/// another dimension is corrupt.
pub(crate) fn nearest(
    entity: &'static str,
    query: &Embedding,
    candidates: Vec<(Uuid, Embedding)>,
    k: usize,
) -> Result<Vec<(Uuid, f64, Embedding)>, StoreError> {
    let mut scored = Vec::with_capacity(candidates.len());
    for (id, embedding) in candidates {
        let similarity = query
            .cosine_similarity(&embedding)
            .map_err(|e| corrupt(entity, e))?;
        scored.push((id, similarity, embedding));
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    scored.truncate(k);
    Ok(scored)
}

/// The rows of `ranked` (from [`nearest`]) in rank order, each with its
/// similarity and embedding. A row deleted since the scan is simply absent.
pub(crate) fn in_rank_order<M, T>(
    ranked: Vec<(Uuid, f64, Embedding)>,
    mut rows: HashMap<Uuid, M>,
    to_domain: impl Fn(M, Option<Embedding>) -> Result<T, StoreError>,
) -> Result<Vec<iace_domain::ports::ScoredMatch<T>>, StoreError> {
    let mut out = Vec::with_capacity(ranked.len());
    for (id, similarity, embedding) in ranked {
        if let Some(row) = rows.remove(&id) {
            out.push(iace_domain::ports::ScoredMatch {
                item: to_domain(row, Some(embedding))?,
                similarity,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_text_round_trips() {
        let e = Embedding::new(vec![0.25, -1.5, 3.0e-7]).expect("valid");
        assert_eq!(from_pg_text(&to_pg_text(&e)).expect("parse"), e);
        assert!(from_pg_text("[1,x]").is_err());
    }

    #[test]
    fn blob_round_trips_and_rejects_torn_values() {
        let e = Embedding::new(vec![0.25, -1.5, 3.0e-7]).expect("valid");
        assert_eq!(from_blob(&to_blob(&e)).expect("parse"), e);
        assert!(from_blob(&[0, 0, 128]).is_err());
        assert!(
            from_blob(&[]).is_err(),
            "an empty embedding is not an embedding"
        );
    }

    #[test]
    fn wrong_dimension_is_rejected_with_both_numbers() {
        let e = Embedding::new(vec![1.0; 3]).expect("valid");
        let err = check_dimension("pattern", &e, 768).expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            "invalid pattern: embedding has dimension 3, the store holds dimension 768"
        );
        assert!(check_dimension("pattern", &e, 3).is_ok());
    }
}
