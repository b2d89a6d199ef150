//! Vector-search benchmark: latency and recall of `PatternStore::find_similar`
//! on Postgres + pgvector (HNSW, cosine).
//!
//! ```text
//! eval "$(scripts/test-services.sh start)"     # or pass --url
//! just bench-vector                            # 100 000 rows, 200 queries
//! cargo run --release -p iace-db --example bench_vector -- \
//!     --rows 20000 --queries 100 --ef-search 40,100,200
//! ```
//!
//! It drops and recreates its own database (`iace_bench_vector`) on the server
//! of `--url` / `TEST_DATABASE_URL`, migrates it at dimension 768, drops the
//! HNSW index, bulk-inserts `--rows` patterns of one org (multi-row INSERTs,
//! embeddings as `CAST(text AS vector)`), rebuilds the index (timed), then runs
//! `--queries` searches (k = 10) through `PatternStore::find_similar` for each
//! `--ef-search` value, timing each one end to end (transaction, settings,
//! search, embeddings of the matches), and measures recall@10 against exact
//! cosine search done in Rust over the same vectors, kept in memory.
//!
//! The data has the structure of real embeddings: 200 cluster centres (topics),
//! each row its centre plus noise (cosine ≈ 0.8 to the centre); each query is a
//! random row moved slightly (cosine ≈ 0.97), i.e. a paraphrase of a known
//! trigger.

// A command-line tool: it reports on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use iace_db::{DbConfig, SqlStore};
use iace_domain::ports::store::PatternFilter;
use iace_domain::ports::{OrgRepository, PatternStore};
use iace_domain::{Embedding, OrgId};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait, Value};

const DIMENSION: usize = 768;
const DATABASE: &str = "iace_bench_vector";
const CLUSTERS: usize = 200;
const K: u32 = 10;
const BATCH: usize = 500;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Debug)]
struct Args {
    url: String,
    rows: usize,
    queries: usize,
    ef_search: Vec<u32>,
    keep: bool,
}

fn args() -> Result<Args> {
    let mut out = Args {
        // A benchmark, not the server: it reads its target like the tests do.
        #[allow(clippy::disallowed_methods)]
        url: std::env::var("TEST_DATABASE_URL").unwrap_or_default(),
        rows: 100_000,
        queries: 200,
        ef_search: vec![40, 100, 200],
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => out.url = value()?,
            "--rows" => out.rows = value()?.parse()?,
            "--queries" => out.queries = value()?.parse()?,
            "--ef-search" => {
                out.ef_search = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?;
            }
            "--keep" => out.keep = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; use --url URL --rows N --queries Q \
                     --ef-search A,B,.. --keep"
                )
                .into());
            }
        }
    }
    if !out.url.starts_with("postgres") {
        return Err(
            "a Postgres URL is needed: --url postgres://… or TEST_DATABASE_URL \
                    (eval \"$(scripts/test-services.sh start)\")"
                .into(),
        );
    }
    if out.rows == 0 || out.queries == 0 || out.ef_search.is_empty() {
        return Err("--rows, --queries and --ef-search must not be empty".into());
    }
    Ok(out)
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let slash = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..slash]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// xorshift64*: deterministic, dependency-free pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// `base` plus Gaussian noise of total length ≈ `spread`, unit length.
fn jitter(rng: &mut Rng, base: &[f32], spread: f32) -> Vec<f32> {
    let sigma = spread / (base.len() as f32).sqrt();
    let mut v: Vec<f32> = base.iter().map(|b| b + sigma * rng.normal()).collect();
    normalise(&mut v);
    v
}

fn pg_text(v: &[f32]) -> String {
    let mut out = String::with_capacity(v.len() * 12 + 2);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{x}");
    }
    out.push(']');
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums: lets the compiler vectorise the loop.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for i in (0..chunks).step_by(8) {
        for j in 0..8 {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

/// Indices of the `k` rows most similar to `query` (all rows are unit length,
/// so the dot product is the cosine).
fn exact_top_k(rows: &[Vec<f32>], query: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (dot(r, query), i))
        .collect();
    let k = k.min(scored.len());
    scored.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.0.total_cmp(&a.0));
    scored.truncate(k);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, i)| i).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn recreate_database(admin_url: &str) -> Result<()> {
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {DATABASE}"))
        .await?;
    admin.close().await?;
    Ok(())
}

async fn drop_database(admin_url: &str) -> Result<()> {
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}

async fn insert_rows(store: &SqlStore, org: OrgId, rows: &[Vec<f32>]) -> Result<Vec<uuid::Uuid>> {
    let db = store.connection();
    let mut ids = Vec::with_capacity(rows.len());
    let created_at = chrono::Utc::now();
    for (b, batch) in rows.chunks(BATCH).enumerate() {
        let mut sql = String::from(
            "INSERT INTO learned_patterns (id, org_id, kind, \"trigger\", response, embedding, \
             uses, successes, created_at) VALUES ",
        );
        let mut values: Vec<Value> = Vec::with_capacity(batch.len() * 4 + 2);
        values.push(org.into_uuid().into());
        values.push(created_at.into());
        for (i, v) in batch.iter().enumerate() {
            let id = uuid::Uuid::now_v7();
            ids.push(id);
            let n = values.len();
            if i > 0 {
                sql.push(',');
            }
            let _ = write!(
                sql,
                "(${}, $1, 'objection_handling', ${}, 'Offer to waive the fee once.', \
                 CAST(${} AS vector), 0, 0, $2)",
                n + 1,
                n + 2,
                n + 3
            );
            values.push(id.into());
            values.push(format!("caller disputes a late fee #{}", b * BATCH + i).into());
            values.push(pg_text(v).into());
        }
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(ids)
}

async fn explain(store: &SqlStore, org: OrgId, query: &[f32], ef_search: u32) -> Result<String> {
    let txn = store.connection().begin().await?;
    txn.execute_unprepared(&format!(
        "SET LOCAL hnsw.ef_search = {ef_search}; SET LOCAL hnsw.iterative_scan = strict_order"
    ))
    .await?;
    let sql = "EXPLAIN (ANALYZE, BUFFERS OFF, COSTS OFF) SELECT id, embedding <=> CAST($1 AS vector) AS distance \
               FROM learned_patterns WHERE org_id = $2 AND embedding IS NOT NULL \
               ORDER BY embedding <=> CAST($1 AS vector) LIMIT 10";
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [pg_text(query).into(), org.into_uuid().into()],
        ))
        .await?;
    txn.commit().await?;
    let mut plan = String::new();
    for row in rows {
        let line: String = row.try_get_by_index(0)?;
        plan.push_str("    ");
        // The query vector is long: keep the start of its line.
        if line.chars().count() > 120 {
            plan.extend(line.chars().take(117));
            plan.push_str("...");
        } else {
            plan.push_str(&line);
        }
        plan.push('\n');
    }
    Ok(plan)
}

#[derive(Debug)]
struct Figures {
    ef_search: u32,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    mean: Duration,
    recall: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let bench_url = with_database(&args.url, DATABASE)?;
    println!(
        "bench_vector: {} rows × dimension {DIMENSION}, {CLUSTERS} clusters, {} queries, k = {K}",
        args.rows, args.queries
    );

    recreate_database(&args.url).await?;
    let config = DbConfig {
        embedding_dimension: DIMENSION as u32,
        migrate_on_connect: true,
        max_connections: 4,
        ..DbConfig::default()
    }
    .with_url(bench_url);
    let store = SqlStore::connect(&config).await?;
    let org = iace_testkit::fixtures::org();
    OrgRepository::create(&store, &org).await?;

    // Data.
    let started = Instant::now();
    let mut rng = Rng(0x5EED_1ACE_2026_0001);
    let centres: Vec<Vec<f32>> = (0..CLUSTERS)
        .map(|_| {
            let mut c: Vec<f32> = (0..DIMENSION).map(|_| rng.normal()).collect();
            normalise(&mut c);
            c
        })
        .collect();
    let rows: Vec<Vec<f32>> = (0..args.rows)
        .map(|_| {
            let c = &centres[rng.below(CLUSTERS)];
            jitter(&mut rng, c, 0.75)
        })
        .collect();
    println!(
        "generated vectors in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Bulk load without the index, then build it once.
    let db = store.connection();
    db.execute_unprepared("DROP INDEX IF EXISTS idx_learned_patterns_embedding")
        .await?;
    let started = Instant::now();
    let ids = insert_rows(&store, org.id, &rows).await?;
    let insert_time = started.elapsed();
    println!(
        "inserted {} rows in {:.1} s ({:.0} rows/s)",
        ids.len(),
        insert_time.as_secs_f64(),
        ids.len() as f64 / insert_time.as_secs_f64()
    );
    let started = Instant::now();
    let txn = db.begin().await?;
    txn.execute_unprepared(
        "SET LOCAL maintenance_work_mem = '1GB'; SET LOCAL max_parallel_maintenance_workers = 1",
    )
    .await?;
    // The same definition as the migration.
    txn.execute_unprepared(
        "CREATE INDEX idx_learned_patterns_embedding ON learned_patterns \
         USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
    )
    .await?;
    txn.commit().await?;
    let build_time = started.elapsed();
    println!("built the HNSW index in {:.1} s", build_time.as_secs_f64());
    db.execute_unprepared("VACUUM ANALYZE learned_patterns")
        .await?;

    // Queries: paraphrases of random rows, and their exact answers.
    let started = Instant::now();
    let queries: Vec<Vec<f32>> = (0..args.queries)
        .map(|_| {
            let r = &rows[rng.below(rows.len())];
            jitter(&mut rng, r, 0.25)
        })
        .collect();
    let exact: Vec<Vec<uuid::Uuid>> = queries
        .iter()
        .map(|q| {
            exact_top_k(&rows, q, K as usize)
                .into_iter()
                .map(|i| ids[i])
                .collect()
        })
        .collect();
    println!(
        "exact top-{K} in Rust for {} queries in {:.1} s",
        queries.len(),
        started.elapsed().as_secs_f64()
    );
    let embeddings: Vec<Embedding> = queries
        .iter()
        .map(|q| Embedding::new(q.clone()))
        .collect::<std::result::Result<_, _>>()?;

    let filter = PatternFilter::default();
    let mut figures = Vec::new();
    for &ef in &args.ef_search {
        let store = store.clone().with_hnsw_ef_search(ef);
        // Warm-up: the index pages into shared buffers / the page cache.
        for q in embeddings.iter().take(20) {
            store.find_similar(org.id, q, K, &filter).await?;
        }
        let mut latencies = Vec::with_capacity(embeddings.len());
        let mut hits = 0usize;
        let mut max_error = 0f64;
        for (q, truth) in embeddings.iter().zip(&exact) {
            let started = Instant::now();
            let found = store.find_similar(org.id, q, K, &filter).await?;
            latencies.push(started.elapsed());
            hits += found
                .iter()
                .filter(|m| truth.contains(&m.item.id.into_uuid()))
                .count();
            for m in &found {
                let e = m
                    .item
                    .embedding
                    .as_ref()
                    .ok_or("a match without its embedding")?;
                max_error = max_error.max((q.cosine_similarity(e)? - m.similarity).abs());
            }
        }
        if max_error > 1e-4 {
            return Err(format!("similarities differ from Rust's by {max_error}").into());
        }
        latencies.sort();
        let total: Duration = latencies.iter().sum();
        figures.push(Figures {
            ef_search: ef,
            p50: percentile(&latencies, 50.0),
            p95: percentile(&latencies, 95.0),
            p99: percentile(&latencies, 99.0),
            mean: total / latencies.len() as u32,
            recall: hits as f64 / (embeddings.len() * K as usize) as f64,
        });
    }

    let plan_ef = args.ef_search.iter().copied().max().unwrap_or(100);
    println!(
        "\nplan (ef_search = {plan_ef}):\n{}",
        explain(&store, org.id, &queries[0], plan_ef).await?
    );
    println!(
        "rows {}  dimension {DIMENSION}  insert {:.1} s  index build {:.1} s  queries {}  k {K}",
        args.rows,
        insert_time.as_secs_f64(),
        build_time.as_secs_f64(),
        args.queries
    );
    println!("| ef_search | p50 ms | p95 ms | p99 ms | mean ms | recall@10 |");
    println!("|----------:|-------:|-------:|-------:|--------:|----------:|");
    for f in &figures {
        println!(
            "| {:>9} | {:>6.2} | {:>6.2} | {:>6.2} | {:>7.2} | {:>9.3} |",
            f.ef_search,
            ms(f.p50),
            ms(f.p95),
            ms(f.p99),
            ms(f.mean),
            f.recall
        );
    }

    store.close().await?;
    if args.keep {
        println!("kept database {DATABASE}");
    } else {
        drop_database(&args.url).await?;
    }
    Ok(())
}
