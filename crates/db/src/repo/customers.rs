//! `CustomerRepository`.

use async_trait::async_trait;
use iace_domain::ports::{CustomerRepository, Page, PageRequest, StoreError};
use iace_domain::{Customer, CustomerId, OrgId, PhoneNumber};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};

use super::{convert_page, page};
use crate::SqlStore;
use crate::convert::{enum_from, enum_text, from_json, parse, to_json};
use crate::entity::customer_memories::{self as memories, Entity as Memories};
use crate::entity::customers::{self as customer, Entity as Customers};
use crate::error::on;

const ENTITY: &str = "customer";

fn to_domain(row: customer::Model) -> Result<Customer, StoreError> {
    Ok(Customer {
        id: CustomerId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        phone: parse(ENTITY, &row.phone)?,
        name: row.name,
        email: row.email.as_deref().map(|e| parse(ENTITY, e)).transpose()?,
        tier: enum_from(ENTITY, &row.tier)?,
        language: row
            .language
            .as_deref()
            .map(|l| parse(ENTITY, l))
            .transpose()?,
        attributes: from_json(ENTITY, row.attributes)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn to_active(c: &Customer) -> Result<customer::ActiveModel, StoreError> {
    Ok(customer::ActiveModel {
        id: Set(c.id.into_uuid()),
        org_id: Set(c.org_id.into_uuid()),
        phone: Set(c.phone.as_str().to_owned()),
        name: Set(c.name.clone()),
        email: Set(c.email.as_ref().map(|e| e.as_str().to_owned())),
        tier: Set(enum_text(&c.tier)),
        language: Set(c.language.as_ref().map(|l| l.as_str().to_owned())),
        attributes: Set(to_json(ENTITY, &c.attributes)?),
        created_at: Set(c.created_at),
        updated_at: Set(c.updated_at),
    })
}

#[async_trait]
impl CustomerRepository for SqlStore {
    async fn create(&self, c: &Customer) -> Result<(), StoreError> {
        to_active(c)?.insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn get(&self, org: OrgId, id: CustomerId) -> Result<Customer, StoreError> {
        Customers::find_by_id(id.into_uuid())
            .filter(customer::Column::OrgId.eq(org.into_uuid()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })
            .and_then(to_domain)
    }

    async fn find_by_phone(
        &self,
        org: OrgId,
        phone: &PhoneNumber,
    ) -> Result<Option<Customer>, StoreError> {
        Customers::find()
            .filter(customer::Column::OrgId.eq(org.into_uuid()))
            .filter(customer::Column::Phone.eq(phone.as_str()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(to_domain)
            .transpose()
    }

    async fn update(&self, c: &Customer) -> Result<(), StoreError> {
        let mut row = to_active(c)?;
        // Identity never changes.
        row.id = sea_orm::ActiveValue::Unchanged(c.id.into_uuid());
        row.org_id = sea_orm::ActiveValue::NotSet;
        row.created_at = sea_orm::ActiveValue::NotSet;
        let result = Customers::update_many()
            .set(row)
            .filter(customer::Column::Id.eq(c.id.into_uuid()))
            .filter(customer::Column::OrgId.eq(c.org_id.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn delete(&self, org: OrgId, id: CustomerId) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        let result = Customers::delete_many()
            .filter(customer::Column::Id.eq(id.into_uuid()))
            .filter(customer::Column::OrgId.eq(org.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        // The foreign key cascades too; this keeps it explicit and backend-proof.
        Memories::delete_many()
            .filter(memories::Column::CustomerId.eq(id.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn list(&self, org: OrgId, request: PageRequest) -> Result<Page<Customer>, StoreError> {
        let select = Customers::find().filter(customer::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, customer::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        convert_page(rows, to_domain)
    }
}
