//! `OrgRepository`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{OrgRepository, StoreError};
use iace_domain::{OrgId, Organization, PhoneNumber, Plan, TelephonySettings};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use crate::SqlStore;
use crate::convert::{enum_from, enum_text};
use crate::entity::org_phone_numbers::{self as numbers, Entity as Numbers};
use crate::entity::org_telephony::{self as telephony, Entity as OrgTelephony};
use crate::entity::organizations::{self as org, Entity as Orgs};
use crate::error::on;

const ENTITY: &str = "organization";

fn to_domain(row: org::Model) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: OrgId::from_uuid(row.id),
        name: row.name,
        plan: enum_from(ENTITY, &row.plan)?,
        billing_customer_ref: row.billing_customer_ref,
        created_at: row.created_at,
    })
}

#[async_trait]
impl OrgRepository for SqlStore {
    async fn create(&self, o: &Organization) -> Result<(), StoreError> {
        org::ActiveModel {
            id: Set(o.id.into_uuid()),
            name: Set(o.name.clone()),
            plan: Set(enum_text(&o.plan)),
            billing_customer_ref: Set(o.billing_customer_ref.clone()),
            created_at: Set(o.created_at),
        }
        .insert(&self.db)
        .await
        .map_err(on(ENTITY))?;
        Ok(())
    }

    async fn get(&self, id: OrgId) -> Result<Organization, StoreError> {
        Orgs::find_by_id(id.into_uuid())
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })
            .and_then(to_domain)
    }

    async fn set_plan(&self, id: OrgId, plan: Plan) -> Result<(), StoreError> {
        let result = Orgs::update_many()
            .col_expr(org::Column::Plan, enum_text(&plan).into())
            .filter(org::Column::Id.eq(id.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn set_billing_ref(&self, id: OrgId, billing_ref: &str) -> Result<(), StoreError> {
        let result = Orgs::update_many()
            .col_expr(org::Column::BillingCustomerRef, billing_ref.into())
            .filter(org::Column::Id.eq(id.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn find_by_billing_ref(
        &self,
        billing_ref: &str,
    ) -> Result<Option<Organization>, StoreError> {
        Orgs::find()
            .filter(org::Column::BillingCustomerRef.eq(billing_ref))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(to_domain)
            .transpose()
    }

    async fn telephony(&self, id: OrgId) -> Result<TelephonySettings, StoreError> {
        self.get(id).await?;
        let settings = OrgTelephony::find_by_id(id.into_uuid())
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?;
        let numbers = Numbers::find()
            .filter(numbers::Column::OrgId.eq(id.into_uuid()))
            .order_by_asc(numbers::Column::Number)
            .all(&self.db)
            .await
            .map_err(on(ENTITY))?
            .into_iter()
            .map(|row| {
                PhoneNumber::parse(&row.number).map_err(|e| StoreError::Corrupt {
                    entity: "phone number",
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TelephonySettings {
            numbers,
            connection_id: settings.as_ref().and_then(|s| s.connection_id.clone()),
            media_base_url: settings.as_ref().and_then(|s| s.media_base_url.clone()),
            voicemail_message: settings.and_then(|s| s.voicemail_message),
        })
    }

    async fn set_telephony(
        &self,
        id: OrgId,
        settings: &TelephonySettings,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.get(id).await?;
        let org = id.into_uuid();
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        // Another organisation's number is refused before anything changes.
        // Sorted, so two transactions inserting overlapping numbers lock them
        // in the same order (no deadlock).
        let mut wanted: Vec<String> = settings
            .numbers
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        wanted.sort();
        if !wanted.is_empty() {
            let taken = Numbers::find()
                .filter(numbers::Column::Number.is_in(wanted.clone()))
                .filter(numbers::Column::OrgId.ne(org))
                .count(&txn)
                .await
                .map_err(on(ENTITY))?;
            if taken > 0 {
                return Err(StoreError::AlreadyExists {
                    entity: "phone number",
                    field: "number",
                });
            }
        }
        Numbers::delete_many()
            .filter(numbers::Column::OrgId.eq(org))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        if !wanted.is_empty() {
            Numbers::insert_many(wanted.into_iter().map(|number| numbers::ActiveModel {
                number: Set(number),
                org_id: Set(org),
            }))
            .exec(&txn)
            .await
            .map_err(on("phone number"))?;
        }
        OrgTelephony::delete_by_id(org)
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        telephony::ActiveModel {
            org_id: Set(org),
            connection_id: Set(settings.connection_id.clone()),
            media_base_url: Set(settings.media_base_url.clone()),
            voicemail_message: Set(settings.voicemail_message.clone()),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await
        .map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn org_for_number(&self, number: &PhoneNumber) -> Result<Option<OrgId>, StoreError> {
        Ok(Numbers::find_by_id(number.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(|row| OrgId::from_uuid(row.org_id)))
    }
}
