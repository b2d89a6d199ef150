//! Organisation telephony settings: the numbers an organisation answers on
//! (so an inbound call finds its organisation), its Telnyx connection, the
//! base URL of its media endpoint and its voicemail message.

use sea_orm_migration::prelude::*;

/// Adds `org_telephony` and `org_phone_numbers`.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000002_org_telephony"
    }
}

fn org_fk(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_org_id"))
        .from(table, "org_id")
        .to("organizations", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

// The trait's signature (from sea-orm-migration) elides SchemaManager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("org_telephony")
                    .if_not_exists()
                    .col(ColumnDef::new("org_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("connection_id").text().null())
                    .col(ColumnDef::new("media_base_url").text().null())
                    .col(ColumnDef::new("voicemail_message").text().null())
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut org_fk("org_telephony"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("org_phone_numbers")
                    .if_not_exists()
                    // A number belongs to one organisation at most.
                    .col(ColumnDef::new("number").text().not_null().primary_key())
                    .col(ColumnDef::new("org_id").uuid().not_null())
                    .foreign_key(&mut org_fk("org_phone_numbers"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_org_phone_numbers_org")
                    .table("org_phone_numbers")
                    .col("org_id")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("org_phone_numbers").if_exists().take())
            .await?;
        manager
            .drop_table(Table::drop().table("org_telephony").if_exists().take())
            .await
    }
}
