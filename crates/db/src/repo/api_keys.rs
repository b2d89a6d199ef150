//! `ApiKeyRepository`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{ApiKeyRepository, Page, PageRequest, StoreError};
use iace_domain::{ApiKey, ApiKeyId, OrgId, SecretHash};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter,
};

use super::{convert_page, page};
use crate::SqlStore;
use crate::convert::{enum_from, enum_text};
use crate::entity::api_keys::{self as key, Entity as ApiKeys};
use crate::error::on;

const ENTITY: &str = "API key";

fn to_domain(row: key::Model) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: ApiKeyId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        name: row.name,
        prefix: row.prefix,
        key_hash: SecretHash::new(row.key_hash),
        role: enum_from(ENTITY, &row.role)?,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        expires_at: row.expires_at,
    })
}

fn to_active(k: &ApiKey) -> key::ActiveModel {
    key::ActiveModel {
        id: Set(k.id.into_uuid()),
        org_id: Set(k.org_id.into_uuid()),
        name: Set(k.name.clone()),
        prefix: Set(k.prefix.clone()),
        key_hash: Set(k.key_hash.expose().to_owned()),
        role: Set(enum_text(&k.role)),
        created_at: Set(k.created_at),
        last_used_at: Set(k.last_used_at),
        revoked_at: Set(k.revoked_at),
        expires_at: Set(k.expires_at),
    }
}

#[async_trait]
impl ApiKeyRepository for SqlStore {
    async fn create(&self, k: &ApiKey) -> Result<(), StoreError> {
        to_active(k).insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        // Revoked and expired keys are returned too: the caller checks
        // `is_usable`, and can tell "revoked" from "unknown" in its logs.
        ApiKeys::find()
            .filter(key::Column::KeyHash.eq(key_hash))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, org: OrgId, request: PageRequest) -> Result<Page<ApiKey>, StoreError> {
        let select = ApiKeys::find().filter(key::Column::OrgId.eq(org.into_uuid()));
        let rows = page(&self.db, select, key::Column::Id, request)
            .await
            .map_err(on(ENTITY))?;
        convert_page(rows, to_domain)
    }

    async fn revoke(&self, org: OrgId, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError> {
        // Revoking twice keeps the first revocation time (and is not an error).
        let result = ApiKeys::update_many()
            .col_expr(
                key::Column::RevokedAt,
                Expr::col(key::Column::RevokedAt).if_null(at),
            )
            .filter(key::Column::Id.eq(id.into_uuid()))
            .filter(key::Column::OrgId.eq(org.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound { entity: ENTITY });
        }
        Ok(())
    }

    async fn touch(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError> {
        // Best effort: an unknown key is not an error (it may have just been
        // deleted with its organisation).
        ApiKeys::update_many()
            .col_expr(key::Column::LastUsedAt, Some(at).into())
            .filter(key::Column::Id.eq(id.into_uuid()))
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        Ok(())
    }
}
