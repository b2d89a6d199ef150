//! `WebhookInbox`: idempotent intake of provider events. Tenant-less by design
//! (an event is recorded before the org it concerns is known).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::InboxEventId;
use iace_domain::ports::{
    InboxEvent, InboxOutcome, InboxStatus, MAX_INBOX_ATTEMPTS, NewInboxEvent, StoreError,
    WebhookInbox,
};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::SqlStore;
use crate::convert::{count_u32, enum_from, enum_text};
use crate::entity::webhook_inbox::{self as inbox, Entity as Inbox};
use crate::error::on;

const ENTITY: &str = "inbox event";

/// The longest `last_error` kept, in characters.
const MAX_ERROR_CHARS: usize = 2000;

fn to_domain(row: inbox::Model) -> Result<InboxEvent, StoreError> {
    Ok(InboxEvent {
        id: InboxEventId::from_uuid(row.id),
        event: NewInboxEvent {
            provider: row.provider,
            provider_event_id: row.provider_event_id,
            event_type: row.event_type,
            payload: row.payload,
            occurred_at: row.occurred_at,
            received_at: row.received_at,
        },
        status: enum_from(ENTITY, &row.status)?,
        attempts: count_u32(i64::from(row.attempts)),
        last_error: row.last_error,
        next_attempt_at: row.next_attempt_at,
    })
}

/// `error` cut to at most [`MAX_ERROR_CHARS`] characters, on a char boundary.
fn truncate(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => &error[..at],
        None => error,
    }
}

#[async_trait]
impl WebhookInbox for SqlStore {
    async fn record(
        &self,
        event: &NewInboxEvent,
        process_by: DateTime<Utc>,
    ) -> Result<InboxOutcome, StoreError> {
        let id = InboxEventId::new().into_uuid();
        let row = inbox::ActiveModel {
            id: Set(id),
            provider: Set(event.provider.clone()),
            provider_event_id: Set(event.provider_event_id.clone()),
            event_type: Set(event.event_type.clone()),
            payload: Set(event.payload.clone()),
            occurred_at: Set(event.occurred_at),
            received_at: Set(event.received_at),
            status: Set(enum_text(&InboxStatus::Pending)),
            attempts: Set(0),
            last_error: Set(None),
            next_attempt_at: Set(Some(process_by)),
            processed_at: Set(None),
        };
        // Insert-if-new in one statement: concurrent deliveries of the same event
        // cannot both insert, and neither fails.
        let inserted = Inbox::insert(row)
            .on_conflict_do_nothing_on([inbox::Column::Provider, inbox::Column::ProviderEventId])
            .exec_without_returning(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if matches!(inserted, sea_orm::TryInsertResult::Inserted(1)) {
            return Ok(InboxOutcome::New {
                id: InboxEventId::from_uuid(id),
            });
        }
        // Not inserted: the stored row is the first delivery.
        let stored = Inbox::find()
            .filter(inbox::Column::Provider.eq(event.provider.as_str()))
            .filter(inbox::Column::ProviderEventId.eq(event.provider_event_id.as_str()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })?;
        let stored_id = InboxEventId::from_uuid(stored.id);
        Ok(if stored.id == id {
            InboxOutcome::New { id: stored_id }
        } else {
            InboxOutcome::Duplicate { id: stored_id }
        })
    }

    async fn complete(
        &self,
        id: InboxEventId,
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_settled(status)?;
        let result = Inbox::update_many()
            .col_expr(inbox::Column::Status, Expr::value(enum_text(&status)))
            .col_expr(inbox::Column::ProcessedAt, Expr::value(at))
            .filter(inbox::Column::Id.eq(id.into_uuid()))
            .filter(open_statuses())
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return self.settled_or_missing(id).await;
        }
        Ok(())
    }

    async fn complete_many(
        &self,
        ids: &[InboxEventId],
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        check_settled(status)?;
        let mut marked = 0;
        // Bounded statements: a few hundred parameters each.
        for chunk in ids.chunks(COMPLETE_CHUNK) {
            let result = Inbox::update_many()
                .col_expr(inbox::Column::Status, Expr::value(enum_text(&status)))
                .col_expr(inbox::Column::ProcessedAt, Expr::value(at))
                .filter(inbox::Column::Id.is_in(chunk.iter().map(|id| id.into_uuid())))
                .filter(open_statuses())
                .exec(&self.db)
                .await
                .map_err(on(ENTITY))?;
            marked += result.rows_affected;
        }
        Ok(marked)
    }

    async fn fail(
        &self,
        id: InboxEventId,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = Inbox::update_many()
            .col_expr(
                inbox::Column::Status,
                Expr::value(enum_text(&InboxStatus::Failed)),
            )
            .col_expr(
                inbox::Column::Attempts,
                Expr::col(inbox::Column::Attempts).add(1),
            )
            .col_expr(inbox::Column::LastError, Expr::value(truncate(error)))
            .col_expr(inbox::Column::NextAttemptAt, Expr::value(retry_at))
            .filter(inbox::Column::Id.eq(id.into_uuid()))
            .filter(open_statuses())
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return self.settled_or_missing(id).await;
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        // Postgres: rows another claimer has locked are skipped, not waited for
        // (and re-checked after its commit, when their lease hides them). SQLite
        // has no row locks; its single connection serialises claimers.
        let rows = Inbox::find()
            .filter(inbox::Column::Status.is_in([
                enum_text(&InboxStatus::Pending),
                enum_text(&InboxStatus::Failed),
            ]))
            .filter(inbox::Column::NextAttemptAt.lte(now))
            .filter(inbox::Column::Attempts.lt(i64::from(MAX_INBOX_ATTEMPTS)))
            .order_by_asc(inbox::Column::ReceivedAt)
            .order_by_asc(inbox::Column::Id)
            .limit(u64::from(limit))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await
            .map_err(on(ENTITY))?;
        if rows.is_empty() {
            txn.commit().await.map_err(on(ENTITY))?;
            return Ok(Vec::new());
        }
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        Inbox::update_many()
            .col_expr(inbox::Column::NextAttemptAt, Expr::value(lease_until))
            .filter(inbox::Column::Id.is_in(ids))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        rows.into_iter()
            .map(|mut row| {
                row.next_attempt_at = Some(lease_until);
                to_domain(row)
            })
            .collect()
    }

    async fn backlog(&self, provider: &str) -> Result<u64, StoreError> {
        Inbox::find()
            .filter(inbox::Column::Provider.eq(provider))
            .filter(inbox::Column::Status.is_in([
                enum_text(&InboxStatus::Pending),
                enum_text(&InboxStatus::Failed),
            ]))
            .filter(inbox::Column::Attempts.lt(i64::from(MAX_INBOX_ATTEMPTS)))
            .count(&self.db)
            .await
            .map_err(on(ENTITY))
    }
}

/// Only pending and failed events may be settled: once processed or
/// ignored, an event stays so (a late failure report of a second, racing
/// processing must not reopen it).
/// At most this many ids per `complete_many` statement.
const COMPLETE_CHUNK: usize = 500;

/// An event is completed as processed or ignored, nothing else.
fn check_settled(status: InboxStatus) -> Result<(), StoreError> {
    if matches!(status, InboxStatus::Processed | InboxStatus::Ignored) {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            entity: ENTITY,
            reason: format!(
                "an event is completed as processed or ignored, not {}",
                enum_text(&status)
            ),
        })
    }
}

/// Not yet settled (pending or failed), for writes by id. Written as "not
/// settled" on purpose: an `IN (pending, failed)` lets the planner pick the
/// due index over the primary key, and that index holds an entry for every
/// event that was ever pending until vacuum removes it — under load, a scan
/// of thousands of entries per write instead of one look-up.
fn open_statuses() -> sea_orm::sea_query::SimpleExpr {
    inbox::Column::Status.is_not_in([
        enum_text(&InboxStatus::Processed),
        enum_text(&InboxStatus::Ignored),
    ])
}

impl SqlStore {
    /// After an update that matched nothing: fine when the event is already
    /// settled, NotFound when there is no such event.
    async fn settled_or_missing(&self, id: InboxEventId) -> Result<(), StoreError> {
        match Inbox::find_by_id(id.into_uuid())
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
        {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound { entity: ENTITY }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS);
        assert_eq!(truncate("short"), "short");
    }
}
