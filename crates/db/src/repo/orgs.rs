//! `OrgRepository`.

use async_trait::async_trait;
use iace_domain::ports::{OrgRepository, StoreError};
use iace_domain::{OrgId, Organization, Plan};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::SqlStore;
use crate::convert::{enum_from, enum_text};
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
}
