//! The initial schema: every table, key and index the repositories use.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Creates the whole schema.
pub(crate) struct Migration {
    /// Dimension of the `embedding` columns on Postgres.
    pub(crate) embedding_dimension: u32,
}

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_initial"
    }
}

fn id() -> ColumnDef {
    ColumnDef::new("id").uuid().not_null().primary_key().take()
}

fn uuid(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().take()
}

fn uuid_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().null().take()
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().not_null().take()
}

fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().null().take()
}

fn ts(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .take()
}

fn ts_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .null()
        .take()
}

fn json(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).json_binary().not_null().take()
}

fn json_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).json_binary().null().take()
}

fn big(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .default(0)
        .take()
}

fn int(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).integer().not_null().default(0).take()
}

fn fk(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(from_table, from_col)
        .to(to_table, "id")
        .on_delete(on_delete)
        .take()
}

fn org_fk(table: &'static str) -> ForeignKeyCreateStatement {
    fk(table, "org_id", "organizations", ForeignKeyAction::Cascade)
}

fn index(table: &'static str, name: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.if_not_exists().name(name).table(table);
    for col in cols {
        stmt.col(*col);
    }
    stmt.take()
}

fn unique(table: &'static str, name: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = index(table, name, cols);
    stmt.unique();
    stmt
}

impl Migration {
    fn embedding(&self, backend: DbBackend) -> ColumnDef {
        let mut col = ColumnDef::new("embedding");
        match backend {
            DbBackend::Postgres => {
                col.custom(Alias::new(format!("vector({})", self.embedding_dimension)))
            }
            _ => col.blob(),
        };
        col.null().take()
    }

    fn tables(&self, backend: DbBackend) -> Vec<TableCreateStatement> {
        vec![
            Table::create()
                .table("organizations")
                .if_not_exists()
                .col(id())
                .col(text("name"))
                .col(text("plan"))
                .col(text_null("billing_customer_ref").unique_key())
                .col(ts("created_at"))
                .take(),
            Table::create()
                .table("users")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("email").unique_key())
                .col(text("password_hash"))
                .col(text("role"))
                .col(ts("created_at"))
                .col(ts_null("last_login_at"))
                .foreign_key(&mut org_fk("users"))
                .take(),
            Table::create()
                .table("refresh_tokens")
                .if_not_exists()
                .col(id())
                .col(uuid("user_id"))
                .col(uuid("family_id"))
                .col(text("token_hash").unique_key())
                .col(ts("issued_at"))
                .col(ts("expires_at"))
                .col(ts_null("revoked_at"))
                .foreign_key(&mut fk(
                    "refresh_tokens",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            Table::create()
                .table("api_keys")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("name"))
                .col(text("prefix"))
                .col(text("key_hash").unique_key())
                .col(text("role"))
                .col(ts("created_at"))
                .col(ts_null("last_used_at"))
                .col(ts_null("revoked_at"))
                .col(ts_null("expires_at"))
                .foreign_key(&mut org_fk("api_keys"))
                .take(),
            Table::create()
                .table("agents")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("name"))
                .col(text_null("email"))
                .col(text_null("phone"))
                .col(text_null("sip_uri"))
                .col(json("skills"))
                .col(text("availability"))
                .col(int("max_concurrent_calls"))
                .col(int("active_calls"))
                .col(ts("created_at"))
                .foreign_key(&mut org_fk("agents"))
                .take(),
            Table::create()
                .table("customers")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("phone"))
                .col(text_null("name"))
                .col(text_null("email"))
                .col(text("tier"))
                .col(text_null("language"))
                .col(json("attributes"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut org_fk("customers"))
                .take(),
            Table::create()
                .table("personas")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("name"))
                .col(text("voice_name"))
                .col(ColumnDef::new("voice_speed").double().not_null())
                .col(text("system_prompt"))
                .col(text("greeting"))
                .col(text("style"))
                .col(text("language"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut org_fk("personas"))
                .take(),
            Table::create()
                .table("experiments")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("name"))
                .col(text("salt"))
                .col(text("status"))
                .col(text("metric"))
                .col(ts("created_at"))
                .col(ts_null("started_at"))
                .col(ts_null("ended_at"))
                .foreign_key(&mut org_fk("experiments"))
                .take(),
            Table::create()
                .table("experiment_variants")
                .if_not_exists()
                .col(id())
                .col(uuid("experiment_id"))
                .col(int("position"))
                .col(text("name"))
                .col(uuid("persona_id"))
                .col(big("weight"))
                .col(
                    ColumnDef::new("is_control")
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(big("trials"))
                .col(big("conversions"))
                .foreign_key(&mut fk(
                    "experiment_variants",
                    "experiment_id",
                    "experiments",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "experiment_variants",
                    "persona_id",
                    "personas",
                    ForeignKeyAction::Restrict,
                ))
                .take(),
            Table::create()
                .table("experiment_assignments")
                .if_not_exists()
                .col(uuid("experiment_id"))
                .col(text("subject_key"))
                .col(uuid("variant_id"))
                .col(ts("assigned_at"))
                .primary_key(Index::create().col("experiment_id").col("subject_key"))
                .foreign_key(&mut fk(
                    "experiment_assignments",
                    "experiment_id",
                    "experiments",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "experiment_assignments",
                    "variant_id",
                    "experiment_variants",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            Table::create()
                .table("calls")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("direction"))
                .col(text("status"))
                .col(text("from_number"))
                .col(text("to_number"))
                .col(uuid_null("customer_id"))
                .col(uuid_null("persona_id"))
                .col(uuid_null("experiment_id"))
                .col(uuid_null("variant_id"))
                .col(text_null("provider_call_id").unique_key())
                .col(text_null("provider_session_id"))
                .col(json_null("end_reason"))
                .col(text_null("outcome"))
                .col(json_null("sentiment"))
                .col(text_null("escalation_reason"))
                .col(uuid_null("transferred_to"))
                .col(text_null("recording_url"))
                .col(ts("created_at"))
                .col(ts_null("answered_at"))
                .col(ts_null("ended_at"))
                .col(big("version"))
                // The client's `Idempotency-Key` for calls placed through the API.
                .col(text_null("idempotency_key"))
                .foreign_key(&mut org_fk("calls"))
                .foreign_key(&mut fk(
                    "calls",
                    "customer_id",
                    "customers",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "calls",
                    "persona_id",
                    "personas",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "calls",
                    "experiment_id",
                    "experiments",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "calls",
                    "variant_id",
                    "experiment_variants",
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "calls",
                    "transferred_to",
                    "agents",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
            Table::create()
                .table("call_events")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(uuid("call_id"))
                .col(ColumnDef::new("version").big_integer().null())
                .col(json("event"))
                .col(text("event_kind"))
                .col(text("from_status"))
                .col(text("to_status"))
                .col(text("result"))
                .col(json("detail"))
                .col(json("source"))
                .col(text_null("provider_event_id"))
                .col(ts("occurred_at"))
                .col(ts("recorded_at"))
                .foreign_key(&mut fk(
                    "call_events",
                    "call_id",
                    "calls",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            Table::create()
                .table("transcript_entries")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(uuid("call_id"))
                .col(int("sequence"))
                .col(text("speaker"))
                .col(text("text"))
                .col(big("started_ms"))
                .col(big("ended_ms"))
                .col(ColumnDef::new("sentiment").double().null())
                .col(
                    ColumnDef::new("interrupted")
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .foreign_key(&mut fk(
                    "transcript_entries",
                    "call_id",
                    "calls",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            Table::create()
                .table("learned_patterns")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(text("kind"))
                .col(text("trigger"))
                .col(text("response"))
                .col(self.embedding(backend))
                .col(big("uses"))
                .col(big("successes"))
                .col(ts("created_at"))
                .col(ts_null("last_used_at"))
                .foreign_key(&mut org_fk("learned_patterns"))
                .take(),
            Table::create()
                .table("customer_memories")
                .if_not_exists()
                .col(id())
                .col(uuid("org_id"))
                .col(uuid("customer_id"))
                .col(uuid_null("call_id"))
                .col(text("summary"))
                .col(json("facts"))
                .col(ColumnDef::new("importance").double().not_null())
                .col(self.embedding(backend))
                .col(ts("created_at"))
                .foreign_key(&mut org_fk("customer_memories"))
                .foreign_key(&mut fk(
                    "customer_memories",
                    "customer_id",
                    "customers",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "customer_memories",
                    "call_id",
                    "calls",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
            // One row per counted call: makes outcome counting idempotent.
            Table::create()
                .table("experiment_outcomes")
                .if_not_exists()
                .col(uuid("experiment_id"))
                .col(uuid("call_id"))
                .col(uuid("variant_id"))
                .col(ColumnDef::new("converted").boolean().not_null())
                .col(ts("recorded_at"))
                .primary_key(Index::create().col("experiment_id").col("call_id"))
                .foreign_key(&mut fk(
                    "experiment_outcomes",
                    "experiment_id",
                    "experiments",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "experiment_outcomes",
                    "variant_id",
                    "experiment_variants",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            // One row per (pattern, call): makes usage counting idempotent.
            Table::create()
                .table("pattern_uses")
                .if_not_exists()
                .col(uuid("pattern_id"))
                .col(uuid("call_id"))
                .col(ColumnDef::new("success").boolean().not_null())
                .col(ts("used_at"))
                .primary_key(Index::create().col("pattern_id").col("call_id"))
                .foreign_key(&mut fk(
                    "pattern_uses",
                    "pattern_id",
                    "learned_patterns",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            Table::create()
                .table("webhook_inbox")
                .if_not_exists()
                .col(id())
                .col(text("provider"))
                .col(text("provider_event_id"))
                .col(text("event_type"))
                .col(json("payload"))
                .col(ts_null("occurred_at"))
                .col(ts("received_at"))
                .col(text("status"))
                .col(int("attempts"))
                .col(text_null("last_error"))
                .col(ts_null("next_attempt_at"))
                .col(ts_null("processed_at"))
                .take(),
        ]
    }
}

/// Every index, named; each supports a query a repository runs.
fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index("users", "idx_users_org", &["org_id", "id"]),
        index(
            "refresh_tokens",
            "idx_refresh_tokens_family",
            &["family_id"],
        ),
        index("refresh_tokens", "idx_refresh_tokens_user", &["user_id"]),
        index("api_keys", "idx_api_keys_org", &["org_id", "id"]),
        index("agents", "idx_agents_org", &["org_id", "id"]),
        index(
            "agents",
            "idx_agents_org_availability",
            &["org_id", "availability"],
        ),
        unique("customers", "uq_customers_org_phone", &["org_id", "phone"]),
        index("customers", "idx_customers_org", &["org_id", "id"]),
        index("personas", "idx_personas_org", &["org_id", "id"]),
        index("experiments", "idx_experiments_org", &["org_id", "id"]),
        index(
            "experiments",
            "idx_experiments_org_status",
            &["org_id", "status"],
        ),
        unique(
            "experiment_variants",
            "uq_variants_experiment_name",
            &["experiment_id", "name"],
        ),
        index(
            "experiment_variants",
            "idx_variants_persona",
            &["persona_id"],
        ),
        index("calls", "idx_calls_org", &["org_id", "id"]),
        index("calls", "idx_calls_org_status", &["org_id", "status"]),
        index(
            "calls",
            "idx_calls_org_customer",
            &["org_id", "customer_id"],
        ),
        index("calls", "idx_calls_org_created", &["org_id", "created_at"]),
        // One call per client idempotency key (NULLs, calls without a key, are distinct).
        unique(
            "calls",
            "uq_calls_org_idempotency_key",
            &["org_id", "idempotency_key"],
        ),
        index(
            "calls",
            "idx_calls_org_agent",
            &["org_id", "transferred_to"],
        ),
        // One applied transition per version: no duplicates in a call's history.
        unique(
            "call_events",
            "uq_call_events_call_version",
            &["call_id", "version"],
        ),
        index("call_events", "idx_call_events_call", &["call_id", "id"]),
        unique(
            "transcript_entries",
            "uq_transcript_call_sequence",
            &["call_id", "sequence"],
        ),
        index(
            "learned_patterns",
            "idx_patterns_org_kind",
            &["org_id", "kind"],
        ),
        index("learned_patterns", "idx_patterns_org", &["org_id", "id"]),
        index(
            "customer_memories",
            "idx_memories_customer",
            &["org_id", "customer_id", "created_at"],
        ),
        unique(
            "webhook_inbox",
            "uq_inbox_provider_event",
            &["provider", "provider_event_id"],
        ),
        index(
            "webhook_inbox",
            "idx_inbox_due",
            &["status", "next_attempt_at"],
        ),
    ]
}

// The trait's signature (from sea-orm-migration) elides SchemaManager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let conn = manager.get_connection();
        if backend == DbBackend::Postgres {
            conn.execute_unprepared("CREATE EXTENSION IF NOT EXISTS vector")
                .await?;
        }
        for table in self.tables(backend) {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        if backend == DbBackend::Postgres {
            // HNSW (pgvector >= 0.5) for cosine-distance search; ef_construction
            // 64 / m 16 are pgvector's defaults, stated so they are deliberate.
            for table in ["learned_patterns", "customer_memories"] {
                conn.execute_unprepared(&format!(
                    "CREATE INDEX IF NOT EXISTS idx_{table}_embedding ON {table} \
                     USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                ))
                .await?;
            }
        }
        Ok(())
    }
}
