//! `RefreshTokenRepository`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iace_domain::ports::{RefreshTokenRepository, StoreError};
use iace_domain::{RefreshToken, RefreshTokenId, SecretHash, UserId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::refresh_tokens::{self as token, Entity as RefreshTokens};
use crate::error::on;

const ENTITY: &str = "refresh token";

fn to_domain(row: token::Model) -> RefreshToken {
    RefreshToken {
        id: RefreshTokenId::from_uuid(row.id),
        user_id: UserId::from_uuid(row.user_id),
        family_id: RefreshTokenId::from_uuid(row.family_id),
        token_hash: SecretHash::new(row.token_hash),
        issued_at: row.issued_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
    }
}

fn to_active(t: &RefreshToken) -> token::ActiveModel {
    token::ActiveModel {
        id: Set(t.id.into_uuid()),
        user_id: Set(t.user_id.into_uuid()),
        family_id: Set(t.family_id.into_uuid()),
        token_hash: Set(t.token_hash.expose().to_owned()),
        issued_at: Set(t.issued_at),
        expires_at: Set(t.expires_at),
        revoked_at: Set(t.revoked_at),
    }
}

#[async_trait]
impl RefreshTokenRepository for SqlStore {
    async fn create(&self, t: &RefreshToken) -> Result<(), StoreError> {
        to_active(t).insert(&self.db).await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn find_by_hash(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError> {
        Ok(RefreshTokens::find()
            .filter(token::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await
            .map_err(on(ENTITY))?
            .map(to_domain))
    }

    async fn rotate(
        &self,
        old: RefreshTokenId,
        new: &RefreshToken,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(on(ENTITY))?;
        // The conditional update is the race arbiter: of two concurrent rotations
        // of one token, the second blocks on the row (Postgres) or the writer lock
        // (SQLite), then sees `revoked_at` set and updates nothing.
        let revoked = RefreshTokens::update_many()
            .col_expr(token::Column::RevokedAt, Some(at).into())
            .filter(token::Column::Id.eq(old.into_uuid()))
            .filter(token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await
            .map_err(on(ENTITY))?;
        if revoked.rows_affected == 0 {
            // Already rotated or revoked (or never issued): a reused token.
            // Dropping the transaction rolls it back; nothing is written.
            return Err(StoreError::Conflict {
                entity: ENTITY,
                expected: 0,
            });
        }
        to_active(new).insert(&txn).await.map_err(on(ENTITY))?;
        txn.commit().await.map_err(on(ENTITY))?;
        Ok(())
    }

    async fn revoke_family(
        &self,
        family: RefreshTokenId,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let result = RefreshTokens::update_many()
            .col_expr(token::Column::RevokedAt, Some(at).into())
            .filter(token::Column::FamilyId.eq(family.into_uuid()))
            .filter(token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        Ok(result.rows_affected)
    }

    async fn revoke_user(&self, user: UserId, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = RefreshTokens::update_many()
            .col_expr(token::Column::RevokedAt, Some(at).into())
            .filter(token::Column::UserId.eq(user.into_uuid()))
            .filter(token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(on(ENTITY))?;
        Ok(result.rows_affected)
    }
}
