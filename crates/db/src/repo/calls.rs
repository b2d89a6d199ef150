//! `CallRepository`: calls and their event history.
//!
//! Status changes are a conditional `UPDATE ... WHERE version = expected`
//! written atomically with the history row (one statement on Postgres, a
//! transaction on SQLite), which is numbered with the new version
//! (unique per call): of two writers that read the same version, exactly one
//! wins, and the history can have neither gaps nor duplicates.

use async_trait::async_trait;
use chrono::Utc;
use iace_domain::call::{Call, CallEventRecord, CallStatus, EventSource};
use iace_domain::ports::{CallFilter, CallLocator, CallRepository, Page, PageRequest, StoreError};
use iace_domain::{
    AgentId, CallEventId, CallId, CustomerId, ExperimentId, OrgId, PersonaId, VariantId,
};
use sea_orm::sea_query::{CommonTableExpression, Expr, Query, UpdateStatement, WithClause};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    Iterable, PaginatorTrait, QueryFilter, QueryOrder, QueryTrait, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::{convert_page, page};
use crate::SqlStore;
use crate::convert::{enum_from, enum_text, from_json, parse, to_json};
use crate::entity::call_events::{self as event, Entity as CallEvents};
use crate::entity::calls::{self as call, Entity as Calls};
use crate::error::on;

const ENTITY: &str = "call";
const EVENT: &str = "call event";

const TERMINAL: [CallStatus; 6] = [
    CallStatus::Completed,
    CallStatus::Failed,
    CallStatus::NoAnswer,
    CallStatus::Busy,
    CallStatus::Canceled,
    CallStatus::Transferred,
];

fn to_domain(row: call::Model) -> Result<Call, StoreError> {
    Ok(Call {
        id: CallId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        direction: enum_from(ENTITY, &row.direction)?,
        status: parse(ENTITY, &row.status)?,
        from: parse(ENTITY, &row.from_number)?,
        to: parse(ENTITY, &row.to_number)?,
        customer_id: row.customer_id.map(CustomerId::from_uuid),
        persona_id: row.persona_id.map(PersonaId::from_uuid),
        experiment_id: row.experiment_id.map(ExperimentId::from_uuid),
        variant_id: row.variant_id.map(VariantId::from_uuid),
        provider_call_id: row.provider_call_id,
        provider_session_id: row.provider_session_id,
        end_reason: row.end_reason.map(|v| from_json(ENTITY, v)).transpose()?,
        outcome: row
            .outcome
            .as_deref()
            .map(|o| enum_from(ENTITY, o))
            .transpose()?,
        sentiment: row.sentiment.map(|v| from_json(ENTITY, v)).transpose()?,
        escalation_reason: row
            .escalation_reason
            .as_deref()
            .map(|r| enum_from(ENTITY, r))
            .transpose()?,
        transferred_to: row.transferred_to.map(AgentId::from_uuid),
        recording_url: row.recording_url,
        created_at: row.created_at,
        answered_at: row.answered_at,
        ended_at: row.ended_at,
        version: row.version,
    })
}

fn to_active(c: &Call) -> Result<call::ActiveModel, StoreError> {
    Ok(call::ActiveModel {
        id: Set(c.id.into_uuid()),
        org_id: Set(c.org_id.into_uuid()),
        direction: Set(enum_text(&c.direction)),
        status: Set(c.status.as_str().to_owned()),
        from_number: Set(c.from.as_str().to_owned()),
        to_number: Set(c.to.as_str().to_owned()),
        customer_id: Set(c.customer_id.map(CustomerId::into_uuid)),
        persona_id: Set(c.persona_id.map(PersonaId::into_uuid)),
        experiment_id: Set(c.experiment_id.map(ExperimentId::into_uuid)),
        variant_id: Set(c.variant_id.map(VariantId::into_uuid)),
        provider_call_id: Set(c.provider_call_id.clone()),
        provider_session_id: Set(c.provider_session_id.clone()),
        end_reason: Set(c
            .end_reason
            .as_ref()
            .map(|r| to_json(ENTITY, r))
            .transpose()?),
        outcome: Set(c.outcome.as_ref().map(enum_text)),
        sentiment: Set(c
            .sentiment
            .as_ref()
            .map(|s| to_json(ENTITY, s))
            .transpose()?),
        escalation_reason: Set(c.escalation_reason.as_ref().map(enum_text)),
        transferred_to: Set(c.transferred_to.map(AgentId::into_uuid)),
        recording_url: Set(c.recording_url.clone()),
        created_at: Set(c.created_at),
        answered_at: Set(c.answered_at),
        ended_at: Set(c.ended_at),
        version: Set(c.version),
        idempotency_key: Set(None),
    })
}

fn event_to_domain(row: event::Model) -> Result<CallEventRecord, StoreError> {
    Ok(CallEventRecord {
        id: CallEventId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        call_id: CallId::from_uuid(row.call_id),
        event: from_json(EVENT, row.event)?,
        from: parse(EVENT, &row.from_status)?,
        to: parse(EVENT, &row.to_status)?,
        result: from_json(EVENT, row.detail)?,
        source: from_json(EVENT, row.source)?,
        occurred_at: row.occurred_at,
    })
}

fn event_to_active(
    r: &CallEventRecord,
    version: Option<i64>,
) -> Result<event::ActiveModel, StoreError> {
    let provider_event_id = match &r.source {
        EventSource::Webhook { provider_event_id } => Some(provider_event_id.clone()),
        EventSource::Api | EventSource::Runtime => None,
    };
    Ok(event::ActiveModel {
        id: Set(r.id.into_uuid()),
        org_id: Set(r.org_id.into_uuid()),
        call_id: Set(r.call_id.into_uuid()),
        version: Set(version),
        event: Set(to_json(EVENT, &r.event)?),
        event_kind: Set(r.event.kind().to_owned()),
        from_status: Set(r.from.as_str().to_owned()),
        to_status: Set(r.to.as_str().to_owned()),
        result: Set(r.result.as_str().to_owned()),
        detail: Set(to_json(EVENT, &r.result)?),
        source: Set(to_json(EVENT, &r.source)?),
        provider_event_id: Set(provider_event_id),
        occurred_at: Set(r.occurred_at),
        recorded_at: Set(Utc::now()),
    })
}

fn check_bumped(call: &Call, expected_version: i64) -> Result<(), StoreError> {
    if call.version == expected_version.saturating_add(1) {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            entity: ENTITY,
            reason: format!(
                "version must be bumped by one (expected {}, got {})",
                expected_version.saturating_add(1),
                call.version
            ),
        })
    }
}

/// The conditional update of every mutable column. Identity columns (org,
/// direction, parties, creation time) are never written.
fn update_if_version(c: &Call, expected_version: i64) -> Result<UpdateStatement, StoreError> {
    let mut row = to_active(c)?;
    row.id = sea_orm::ActiveValue::NotSet;
    row.org_id = sea_orm::ActiveValue::NotSet;
    row.direction = sea_orm::ActiveValue::NotSet;
    row.from_number = sea_orm::ActiveValue::NotSet;
    row.to_number = sea_orm::ActiveValue::NotSet;
    row.created_at = sea_orm::ActiveValue::NotSet;
    row.idempotency_key = sea_orm::ActiveValue::NotSet;
    Ok(Calls::update_many()
        .set(row)
        .filter(call::Column::Id.eq(c.id.into_uuid()))
        .filter(call::Column::OrgId.eq(c.org_id.into_uuid()))
        .filter(call::Column::Version.eq(expected_version))
        .into_query())
}

async fn write_if_version<C: ConnectionTrait>(
    db: &C,
    c: &Call,
    expected_version: i64,
) -> Result<(), StoreError> {
    let statement = db
        .get_database_backend()
        .build(&update_if_version(c, expected_version)?);
    let result = db.execute_raw(statement).await.map_err(on(ENTITY))?;
    if result.rows_affected() == 1 {
        return Ok(());
    }
    Err(missing_or_conflict(db, c, expected_version).await)
}

/// Why a conditional write touched nothing: the call is not in its
/// organisation, or another writer moved its version on.
async fn missing_or_conflict<C: ConnectionTrait>(
    db: &C,
    c: &Call,
    expected_version: i64,
) -> StoreError {
    let exists = Calls::find_by_id(c.id.into_uuid())
        .filter(call::Column::OrgId.eq(c.org_id.into_uuid()))
        .count(db)
        .await;
    match exists {
        Err(err) => on(ENTITY)(err),
        Ok(0) => StoreError::NotFound { entity: ENTITY },
        Ok(_) => StoreError::Conflict {
            entity: ENTITY,
            expected: expected_version,
        },
    }
}

/// Postgres only: the conditional update and the history row in one
/// statement — `WITH updated AS (UPDATE calls … RETURNING id) INSERT INTO
/// call_events (…) SELECT … FROM updated` — so a lost race inserts nothing.
fn transition_statement(
    c: &Call,
    expected_version: i64,
    record: &CallEventRecord,
) -> Result<Statement, StoreError> {
    const UPDATED: &str = "updated";
    let update = update_if_version(c, expected_version)?
        .returning_col(call::Column::Id)
        .to_owned();
    let history = event_to_active(record, Some(c.version))?;
    let (mut columns, mut values) = (Vec::new(), Vec::new());
    for column in event::Column::iter() {
        if let Some(value) = history.get(column).into_value() {
            columns.push(column);
            values.push(Expr::val(value));
        }
    }
    let mut insert = Query::insert();
    insert
        .into_table(CallEvents)
        .columns(columns)
        .select_from(Query::select().exprs(values).from(UPDATED).to_owned())
        .map_err(|err| StoreError::Invalid {
            entity: EVENT,
            reason: err.to_string(),
        })?;
    let cte = CommonTableExpression::new()
        .query(update)
        .table_name(UPDATED)
        .to_owned();
    let query = insert.with(WithClause::new().cte(cte).to_owned());
    Ok(DbBackend::Postgres.build(&query))
}

async fn ensure_in_org<C: ConnectionTrait>(db: &C, org: OrgId, id: Uuid) -> Result<(), StoreError> {
    let found = Calls::find_by_id(id)
        .filter(call::Column::OrgId.eq(org.into_uuid()))
        .count(db)
        .await
        .map_err(on(ENTITY))?;
    if found == 0 {
        Err(StoreError::NotFound { entity: ENTITY })
    } else {
        Ok(())
    }
}

#[async_trait]
impl CallRepository for SqlStore {
    async fn create(&self, c: &Call) -> Result<(), StoreError> {
        to_active(c)?.insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn create_idempotent(&self, c: &Call, key: &str) -> Result<(Call, bool), StoreError> {
        let mut row = to_active(c)?;
        row.idempotency_key = Set(Some(key.to_owned()));
        // Insert first and let the unique index decide: a look-up before the
        // insert would leave a window for a concurrent request with the same key.
        match row.insert(&self.db).await.map_err(on(ENTITY)) {
            Ok(_) => Ok((c.clone(), true)),
            Err(taken @ StoreError::AlreadyExists { .. }) => {
                let existing = Calls::find()
                    .filter(call::Column::OrgId.eq(c.org_id.into_uuid()))
                    .filter(call::Column::IdempotencyKey.eq(key))
                    .one(&self.db)
                    .await
                    .map_err(on(ENTITY))?;
                match existing {
                    Some(row) => Ok((to_domain(row)?, false)),
                    // Another unique column (id, provider call id) refused it.
                    None => Err(taken),
                }
            }
            Err(other) => Err(other),
        }
    }

    async fn get(&self, org: OrgId, id: CallId) -> Result<Call, StoreError> {
        Calls::find_by_id(id.into_uuid())
            .filter(call::Column::OrgId.eq(org.into_uuid()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })
            .and_then(to_domain)
    }

    async fn locate(&self, locator: &CallLocator) -> Result<Option<Call>, StoreError> {
        let select = match locator {
            CallLocator::Id(id) => Calls::find_by_id(id.into_uuid()),
            CallLocator::ProviderCallId(pid) => {
                Calls::find().filter(call::Column::ProviderCallId.eq(pid.as_str()))
            }
        };
        select
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(to_domain)
            .transpose()
    }

    async fn save_transition(
        &self,
        c: &Call,
        expected_version: i64,
        record: &CallEventRecord,
    ) -> Result<(), StoreError> {
        check_bumped(c, expected_version)?;
        if record.call_id != c.id || record.org_id != c.org_id {
            return Err(StoreError::Invalid {
                entity: EVENT,
                reason: "the history record belongs to another call".to_owned(),
            });
        }
        // A history row for this version exists: another writer won.
        let history_taken = |e| match on(EVENT)(e) {
            StoreError::AlreadyExists { .. } => StoreError::Conflict {
                entity: ENTITY,
                expected: expected_version,
            },
            other => other,
        };
        if self.db.get_database_backend() == DbBackend::Postgres {
            // One statement, so one round trip and atomic by itself: the
            // history row is inserted only from the row the update returned.
            let statement = transition_statement(c, expected_version, record)?;
            let written = self
                .db
                .execute_raw(statement)
                .await
                .map_err(history_taken)?;
            if written.rows_affected() == 1 {
                return Ok(());
            }
            return Err(missing_or_conflict(&self.db, c, expected_version).await);
        }
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        write_if_version(&txn, c, expected_version).await?;
        event_to_active(record, Some(c.version))?
            .insert(&txn)
            .await
            .map_err(history_taken)?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn update(&self, c: &Call, expected_version: i64) -> Result<(), StoreError> {
        check_bumped(c, expected_version)?;
        write_if_version(&self.db, c, expected_version).await
    }

    async fn record_event(&self, record: &CallEventRecord) -> Result<(), StoreError> {
        ensure_in_org(&self.db, record.org_id, record.call_id.into_uuid()).await?;
        event_to_active(record, None)?
            .insert(&self.db)
            .await
            .map_err(on(EVENT))?;
        Ok(())
    }

    async fn events(&self, org: OrgId, id: CallId) -> Result<Vec<CallEventRecord>, StoreError> {
        let rows = CallEvents::find()
            .filter(event::Column::CallId.eq(id.into_uuid()))
            .filter(event::Column::OrgId.eq(org.into_uuid()))
            .order_by_asc(event::Column::RecordedAt)
            .order_by_asc(event::Column::Id)
            .all(&self.db)
            .await
            .map_err(on(EVENT))?;
        // Rows are filtered by org, so a foreign call yields none; only then is
        // it worth a second query to tell "no history yet" from "not yours".
        if rows.is_empty() {
            ensure_in_org(&self.db, org, id.into_uuid()).await?;
        }
        rows.into_iter().map(event_to_domain).collect()
    }

    async fn list(
        &self,
        org: OrgId,
        filter: &CallFilter,
        request: PageRequest,
    ) -> Result<Page<Call>, StoreError> {
        let mut select = Calls::find().filter(call::Column::OrgId.eq(org.into_uuid()));
        if let Some(status) = filter.status {
            select = select.filter(call::Column::Status.eq(status.as_str()));
        }
        if let Some(direction) = filter.direction {
            select = select.filter(call::Column::Direction.eq(enum_text(&direction)));
        }
        if let Some(customer) = filter.customer_id {
            select = select.filter(call::Column::CustomerId.eq(customer.into_uuid()));
        }
        if let Some(agent) = filter.agent_id {
            select = select.filter(call::Column::TransferredTo.eq(agent.into_uuid()));
        }
        if let Some(persona) = filter.persona_id {
            select = select.filter(call::Column::PersonaId.eq(persona.into_uuid()));
        }
        if let Some(experiment) = filter.experiment_id {
            select = select.filter(call::Column::ExperimentId.eq(experiment.into_uuid()));
        }
        if let Some(after) = filter.created_after {
            select = select.filter(call::Column::CreatedAt.gte(after));
        }
        if let Some(before) = filter.created_before {
            select = select.filter(call::Column::CreatedAt.lt(before));
        }
        let rows = page(&self.db, select, call::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        convert_page(rows, to_domain)
    }

    async fn count_live(&self, org: OrgId) -> Result<u64, StoreError> {
        Calls::find()
            .filter(call::Column::OrgId.eq(org.into_uuid()))
            .filter(call::Column::Status.is_not_in(TERMINAL.map(CallStatus::as_str)))
            .count(&self.db)
            .await
            .map_err(on(ENTITY))
    }
}
