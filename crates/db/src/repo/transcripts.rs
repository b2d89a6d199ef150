//! `TranscriptRepository`.

use std::collections::BTreeSet;

use async_trait::async_trait;
use iace_domain::ports::{StoreError, TranscriptRepository};
use iace_domain::{CallId, OrgId, Sentiment, TranscriptEntry, TranscriptEntryId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use crate::SqlStore;
use crate::convert::{enum_from, enum_text};
use crate::entity::calls::{self as call, Entity as Calls};
use crate::entity::transcript_entries::{self as entry, Entity as Entries};
use crate::error::{corrupt, on};

const ENTITY: &str = "transcript entry";

fn to_domain(row: entry::Model) -> Result<TranscriptEntry, StoreError> {
    Ok(TranscriptEntry {
        id: TranscriptEntryId::from_uuid(row.id),
        call_id: CallId::from_uuid(row.call_id),
        sequence: u32::try_from(row.sequence).map_err(|e| corrupt(ENTITY, e))?,
        speaker: enum_from(ENTITY, &row.speaker)?,
        text: row.text,
        started_ms: u64::try_from(row.started_ms).map_err(|e| corrupt(ENTITY, e))?,
        ended_ms: u64::try_from(row.ended_ms).map_err(|e| corrupt(ENTITY, e))?,
        sentiment: row
            .sentiment
            .map(|s| Sentiment::new(s).map_err(|e| corrupt(ENTITY, e)))
            .transpose()?,
        interrupted: row.interrupted,
    })
}

fn too_large(field: &str) -> StoreError {
    StoreError::Invalid {
        entity: ENTITY,
        reason: format!("{field} is too large to store"),
    }
}

fn to_active(org: OrgId, e: &TranscriptEntry) -> Result<entry::ActiveModel, StoreError> {
    Ok(entry::ActiveModel {
        id: Set(e.id.into_uuid()),
        org_id: Set(org.into_uuid()),
        call_id: Set(e.call_id.into_uuid()),
        sequence: Set(i32::try_from(e.sequence).map_err(|_| too_large("sequence"))?),
        speaker: Set(enum_text(&e.speaker)),
        text: Set(e.text.clone()),
        started_ms: Set(i64::try_from(e.started_ms).map_err(|_| too_large("started_ms"))?),
        ended_ms: Set(i64::try_from(e.ended_ms).map_err(|_| too_large("ended_ms"))?),
        sentiment: Set(e.sentiment.map(Sentiment::score)),
        interrupted: Set(e.interrupted),
    })
}

#[async_trait]
impl TranscriptRepository for SqlStore {
    async fn append(&self, org: OrgId, entries: &[TranscriptEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let calls: BTreeSet<_> = entries.iter().map(|e| e.call_id.into_uuid()).collect();
        let rows = entries
            .iter()
            .map(|e| to_active(org, e))
            .collect::<Result<Vec<_>, _>>()?;
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        let owned = Calls::find()
            .filter(call::Column::OrgId.eq(org.into_uuid()))
            .filter(call::Column::Id.is_in(calls.iter().copied()))
            .count(&txn)
            .await
            .map_err(on(ENTITY))?;
        if owned != calls.len() as u64 {
            return Err(StoreError::NotFound { entity: "call" });
        }
        // Idempotent by entry id: a retried append writes nothing twice.
        Entries::insert_many(rows)
            .on_conflict_do_nothing_on([entry::Column::Id])
            .exec_without_returning(&txn)
            .await
            .map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn for_call(
        &self,
        org: OrgId,
        call_id: CallId,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        let rows = Entries::find()
            .filter(entry::Column::CallId.eq(call_id.into_uuid()))
            .filter(entry::Column::OrgId.eq(org.into_uuid()))
            .order_by_asc(entry::Column::Sequence)
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?;
        // Filtered by org: only an empty result needs the ownership check.
        if rows.is_empty() {
            let owned = Calls::find_by_id(call_id.into_uuid())
                .filter(call::Column::OrgId.eq(org.into_uuid()))
                .count(&self.db)
                .await
                .map_err(on(ENTITY))?;
            if owned == 0 {
                return Err(StoreError::NotFound { entity: "call" });
            }
        }
        rows.into_iter().map(to_domain).collect()
    }

    async fn set_sentiment(
        &self,
        org: OrgId,
        call_id: CallId,
        sequence: u32,
        sentiment: Sentiment,
    ) -> Result<bool, StoreError> {
        let sequence = i32::try_from(sequence).map_err(|_| too_large("sequence"))?;
        let updated = Entries::update_many()
            .col_expr(entry::Column::Sentiment, Expr::value(sentiment.score()))
            .filter(entry::Column::CallId.eq(call_id.into_uuid()))
            .filter(entry::Column::OrgId.eq(org.into_uuid()))
            .filter(entry::Column::Sequence.eq(sequence))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if updated.rows_affected > 0 {
            return Ok(true);
        }
        let owned = Calls::find_by_id(call_id.into_uuid())
            .filter(call::Column::OrgId.eq(org.into_uuid()))
            .count(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if owned == 0 {
            Err(StoreError::NotFound { entity: "call" })
        } else {
            Ok(false)
        }
    }
}
