//! `meridian-master`: the federation's control plane. Thin: flags → configuration →
//! `MasterServer`, plus the dev commands `certs init` and `token`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meridian_master::app::FAILPOINTS_ENV;
use meridian_master::auth::{Role, mint};
use meridian_master::{MasterConfig, MasterServer, certs};
use meridian_service::config::ConfigError;
use meridian_service::failpoints::Failpoints;

/// The Meridian master: splits jobs by site, dispatches them to each site over
/// mutual TLS, polls their status and serves one unified view under /api/v1.
///
/// Configuration layers, later wins: built-in defaults, the YAML file (--config or
/// MERIDIAN_MASTER_CONFIG), MERIDIAN_MASTER_SECTION__KEY environment variables
/// (e.g. MERIDIAN_MASTER_MASTER__POLL_INTERVAL_SECONDS=2), then flags. See
/// docs/federation.md.
#[derive(Debug, Parser)]
#[command(name = "meridian-master", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the master.
    Serve {
        /// YAML configuration file.
        #[arg(long, env = "MERIDIAN_MASTER_CONFIG", value_name = "PATH")]
        config: Option<PathBuf>,
        /// Address of the user API (`master.listen`), e.g. 127.0.0.1:8400.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply the master database's migrations and exit (a Kubernetes Job before a
    /// rollout; `serve` also migrates at start-up).
    Migrate {
        /// YAML configuration file.
        #[arg(long, env = "MERIDIAN_MASTER_CONFIG", value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Development certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Mint a JWT for local use with the configured `auth.signing_key_file`.
    Token {
        #[arg(long, env = "MERIDIAN_MASTER_CONFIG", value_name = "PATH")]
        config: Option<PathBuf>,
        /// viewer, operator or admin.
        #[arg(long, default_value = "operator")]
        role: String,
        /// The token's `sub`.
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: u64,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Make a dev mesh CA, a certificate for the master and one per site, and a
    /// key pair for signing dev JWTs.
    Init {
        /// Comma-separated site names, e.g. london,tokyo.
        #[arg(long, value_delimiter = ',', required = true)]
        sites: Vec<String>,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("meridian-master: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

fn config(
    path: Option<&std::path::Path>,
    listen: Option<String>,
) -> Result<MasterConfig, ExitCode> {
    let overrides: Vec<(&str, String)> = listen.into_iter().map(|l| ("master.listen", l)).collect();
    MasterConfig::load(path, &overrides).map_err(|e| {
        eprintln!("meridian-master: {e}");
        ExitCode::from(2)
    })
}

fn run(cli: Cli) -> Result<(), ExitCode> {
    match cli.command {
        Command::Serve {
            config: path,
            listen,
        } => {
            let cfg = config(path.as_deref(), listen)?;
            meridian_service::telemetry::init(cfg.log.format, &cfg.log.level);
            let failpoints = match std::env::var(FAILPOINTS_ENV) {
                Ok(spec) => Failpoints::parse(&spec).map_err(|e| {
                    eprintln!("meridian-master: {FAILPOINTS_ENV}: {e}");
                    ExitCode::from(2)
                })?,
                Err(_) => Failpoints::default(),
            };
            let rt = runtime()?;
            rt.block_on(async {
                let server = MasterServer::build_with(cfg, failpoints).await?;
                server.run(meridian_service::shutdown::on_signal()).await
            })
            .map_err(|e| {
                eprintln!("meridian-master: {e:#}");
                if e.downcast_ref::<ConfigError>().is_some() {
                    ExitCode::from(2)
                } else {
                    ExitCode::FAILURE
                }
            })
        }
        Command::Certs {
            command: CertsCommand::Init { sites, out },
        } => {
            let written = certs::init(&out, &sites).map_err(|e| {
                eprintln!("meridian-master: {e:#}");
                ExitCode::FAILURE
            })?;
            println!(
                "wrote a dev mesh CA, certificates for master and {} and a JWT key pair to {}",
                sites.join(", "),
                written.dir.display()
            );
            Ok(())
        }
        Command::Migrate { config: path } => {
            let cfg = config(path.as_deref(), None)?;
            let rt = runtime()?;
            rt.block_on(async {
                let store = meridian_master::store::Store::open(
                    &cfg.database_url(),
                    cfg.database.max_connections,
                )
                .await?;
                store.close().await;
                anyhow::Ok(())
            })
            .map_err(|e| {
                eprintln!("meridian-master: {e:#}");
                ExitCode::FAILURE
            })?;
            eprintln!("meridian-master: migrations applied");
            Ok(())
        }
        Command::Token {
            config: path,
            role,
            subject,
            ttl_seconds,
        } => {
            let cfg = config(path.as_deref(), None)?;
            let role: Role = role.parse().map_err(|e| {
                eprintln!("meridian-master: --role: {e}");
                ExitCode::from(2)
            })?;
            let token = mint(&cfg.auth, &subject, &[role], ttl_seconds).map_err(|e| {
                eprintln!("meridian-master: {e}");
                ExitCode::from(2)
            })?;
            println!("{token}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for the whole process (rustls, sqlx's TLS).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
