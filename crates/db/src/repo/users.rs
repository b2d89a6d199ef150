//! `UserRepository`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{Page, PageRequest, StoreError, UserRepository};
use iace_domain::{Email, OrgId, Role, SecretHash, User, UserId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};

use super::{convert_page, page};
use crate::SqlStore;
use crate::convert::{enum_from, enum_text, parse};
use crate::entity::refresh_tokens::{self as token, Entity as RefreshTokens};
use crate::entity::users::{self as user, Entity as Users};
use crate::error::on;

const ENTITY: &str = "user";

fn to_domain(row: user::Model) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        email: parse(ENTITY, &row.email)?,
        password_hash: SecretHash::new(row.password_hash),
        role: enum_from(ENTITY, &row.role)?,
        created_at: row.created_at,
        last_login_at: row.last_login_at,
    })
}

fn to_active(u: &User) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(u.id.into_uuid()),
        org_id: Set(u.org_id.into_uuid()),
        email: Set(u.email.as_str().to_owned()),
        password_hash: Set(u.password_hash.expose().to_owned()),
        role: Set(enum_text(&u.role)),
        created_at: Set(u.created_at),
        last_login_at: Set(u.last_login_at),
    }
}

impl SqlStore {
    /// Sets one column of one user of `org`; no row → `NotFound`.
    async fn set_user_column(
        &self,
        org: OrgId,
        id: UserId,
        column: user::Column,
        value: sea_orm::sea_query::SimpleExpr,
    ) -> Result<(), StoreError> {
        let result = Users::update_many()
            .col_expr(column, value)
            .filter(user::Column::Id.eq(id.into_uuid()))
            .filter(user::Column::OrgId.eq(org.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }
}

#[async_trait]
impl UserRepository for SqlStore {
    async fn create(&self, u: &User) -> Result<(), StoreError> {
        to_active(u).insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn get(&self, org: OrgId, id: UserId) -> Result<User, StoreError> {
        Users::find_by_id(id.into_uuid())
            .filter(user::Column::OrgId.eq(org.into_uuid()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .ok_or(StoreError::NotFound { entity: ENTITY })
            .and_then(to_domain)
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        // Tenant-less on purpose: sign-in does not know the organisation yet, and
        // e-mails are unique across organisations.
        Users::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, org: OrgId, request: PageRequest) -> Result<Page<User>, StoreError> {
        let select = Users::find().filter(user::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, user::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        convert_page(rows, to_domain)
    }

    async fn set_role(&self, org: OrgId, id: UserId, role: Role) -> Result<(), StoreError> {
        self.set_user_column(org, id, user::Column::Role, enum_text(&role).into())
            .await
    }

    async fn set_password_hash(
        &self,
        org: OrgId,
        id: UserId,
        hash: &str,
    ) -> Result<(), StoreError> {
        self.set_user_column(org, id, user::Column::PasswordHash, hash.into())
            .await
    }

    async fn record_login(
        &self,
        org: OrgId,
        id: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_user_column(org, id, user::Column::LastLoginAt, Some(at).into())
            .await
    }

    async fn delete(&self, org: OrgId, id: UserId) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        let result = Users::delete_many()
            .filter(user::Column::Id.eq(id.into_uuid()))
            .filter(user::Column::OrgId.eq(org.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        // The foreign key cascades too; this keeps it explicit and backend-proof.
        RefreshTokens::delete_many()
            .filter(token::Column::UserId.eq(id.into_uuid()))
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }
}
