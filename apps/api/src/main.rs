//! `iace-api`: serve the API (default), migrate the database, or bootstrap an
//! organisation.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use iace_api::{config, startup};
use iace_db::SqlStore;
use iace_domain::Email;
use secrecy::{ExposeSecret, SecretString};

/// A request allocates and frees many small buffers on every worker thread;
/// mimalloc's per-thread heaps do that with less CPU than the system allocator
/// (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// IACE: the backend for AI phone agents.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (keys as in docs/configuration.md). Values from
    /// IACE_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). With no configuration: SQLite file
    /// ./iace.db (migrated on start) and local providers.
    Serve {
        /// Address to listen on (overrides server.bind / IACE_BIND; default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
    },
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Exit 0 when the instance answers `GET /healthz` (a container
    /// HEALTHCHECK: the image has no shell or curl).
    Probe {
        /// The instance's address; default 127.0.0.1 and the configured port.
        #[arg(long, value_name = "ADDR")]
        addr: Option<SocketAddr>,
    },
    /// Play a whole simulated call in the terminal: a scripted caller talks
    /// to the AI agent through the media stream (text mode with the local
    /// providers, or μ-law audio with --audio; an in-memory database unless
    /// --config is given).
    Sim {
        /// A script: one caller line per line (`#` comments). Default: a
        /// short call that ends with a request for a human.
        #[arg(long, value_name = "FILE")]
        script: Option<PathBuf>,
        /// Speak μ-law audio in real time, synthesised with the configured
        /// text-to-speech (needs [deepgram]: the local providers speak text).
        #[arg(long)]
        audio: bool,
        /// With --audio: write both sides of the call to this WAV file.
        #[arg(long, value_name = "FILE", requires = "audio")]
        record: Option<PathBuf>,
    },
    /// Manage organisations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organisation with its owner; prints JSON {org_id, user_id, api_key}.
    /// The API key is shown only this once.
    Create {
        /// Organisation name.
        #[arg(long)]
        name: String,
        /// E-mail of the owner (signs in with it).
        #[arg(long, value_name = "EMAIL")]
        owner_email: String,
        /// Owner's password (at least 10 characters). Without it the owner can
        /// use only the API key until a password is set.
        #[arg(long, value_name = "PW")]
        owner_password: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One TLS crypto provider for every client in the process (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Configuration is read from the process environment here, once.
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = config::load(cli.config.as_deref(), &env)?;
    let telemetry = iace_telemetry::init(&config.log, &config.traces, &config.sentry);
    let result = Box::pin(run(cli, config)).await;
    // The spans still buffered go out before the process ends.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .ok();
    result
}

async fn run(cli: Cli, mut config: config::Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve { bind: None }) {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                config.server.bind = bind;
            }
            let app = startup::Application::build(config).await?;
            tracing::info!(port = app.port(), "listening");
            app.run_until(startup::shutdown_signal()).await?;
        }
        Command::Sim {
            script,
            audio,
            record,
        } => {
            let script = match script {
                Some(path) => iace_api::sim::read_script(&path)?,
                None => iace_api::sim::DEFAULT_SCRIPT
                    .iter()
                    .map(|l| (*l).to_owned())
                    .collect(),
            };
            let options = iace_api::sim::SimOptions { audio, record };
            Box::pin(iace_api::sim::run(
                config,
                script,
                cli.config.is_some(),
                options,
            ))
            .await?;
        }
        Command::Probe { addr } => {
            let addr = addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], config.server.bind.port())));
            probe(addr)?;
        }
        Command::Migrate => {
            config.database.migrate_on_connect = false;
            let store = SqlStore::connect(&config.database).await?;
            store.migrate(config.database.embedding_dimension).await?;
            tracing::info!("migrations applied");
        }
        Command::Org {
            command:
                OrgCommand::Create {
                    name,
                    owner_email,
                    owner_password,
                },
        } => {
            let email =
                Email::parse(&owner_email).context("--owner-email is not an e-mail address")?;
            let store = SqlStore::connect(&config.database).await?;
            let state = startup::state(&config, store)?;
            let password = owner_password.map(SecretString::from);
            let created = state
                .auth
                .bootstrap_org(&name, email, password.as_ref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {}", e.code()))?;
            let out = serde_json::json!({
                "org_id": created.org.id,
                "user_id": created.owner.id,
                "api_key": created.api_key.secret.expose_secret(),
            });
            #[allow(clippy::print_stdout)]
            {
                println!("{out}");
            }
        }
    }
    Ok(())
}

/// `GET /healthz` over a plain TCP connection, within two seconds.
fn probe(addr: SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};

    let timeout = std::time::Duration::from_secs(2);
    let mut socket = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("nothing answers on {addr}"))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    socket.read_exact(&mut head)?;
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "/healthz answered {}",
        String::from_utf8_lossy(&head)
    );
    Ok(())
}
