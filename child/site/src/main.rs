//! `meridian-child`: one Meridian site. Thin: flags → configuration → `Site`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use meridian_child::{RunMode, Site, SiteOptions};
use meridian_config::{ConfigError, ConfigLayers};
use meridian_service::failpoints::Failpoints;

/// Runs a Meridian site: the orchestrator, the site API and (in single-process mode)
/// a pool of workers that scan the site's data sources for sensitive data. In the
/// distributed model, `--mode orchestrator` runs the API and engine on PostgreSQL
/// and `--mode worker` runs remote workers that long-poll it (the same code as the
/// `meridian-worker` binary, which links no database driver).
///
/// Configuration layers, later wins: built-in defaults, the YAML file (--config or
/// MERIDIAN_CONFIG), MERIDIAN_SECTION__KEY environment variables (e.g.
/// MERIDIAN_WORKER__MAX_RETRIES=5), these flags, then the database's
/// system_parameters rows. See docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "meridian-child", version, about, long_about)]
struct Cli {
    /// Which parts of the site to run.
    #[arg(long, value_enum, default_value_t = RunMode::Single)]
    mode: RunMode,

    /// YAML configuration file.
    #[arg(long, env = "MERIDIAN_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Directory for the embedded SQLite database (`node.data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// This node's id (`node.id`); names its system_parameters rows.
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,

    /// Address of the site API (`api.listen`), e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

fn layers(cli: &Cli) -> Result<ConfigLayers, ConfigError> {
    let mut layers = ConfigLayers::new();
    if let Some(path) = &cli.config {
        layers = layers.with_file(path)?;
    }
    layers = layers.with_env();
    if let Some(dir) = &cli.data_dir {
        layers = layers.with_value("node.data_dir", dir);
    }
    if let Some(id) = &cli.node_id {
        layers = layers.with_value("node.id", id);
    }
    if let Some(listen) = &cli.listen {
        layers = layers.with_value("api.listen", listen);
    }
    Ok(layers)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for the whole process (rustls, sqlx's TLS).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let layers = match layers(&cli) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("meridian-child: {e}");
            return ExitCode::from(2);
        }
    };
    let preliminary = match layers.preliminary(cli.mode) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meridian-child: {e}");
            return ExitCode::from(2);
        }
    };
    meridian_service::telemetry::init(preliminary.log.format, &preliminary.log.level);
    let failpoints = match std::env::var("MERIDIAN_FAILPOINTS") {
        Ok(spec) => match Failpoints::parse(&spec) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("meridian-child: MERIDIAN_FAILPOINTS: {e}");
                return ExitCode::from(2);
            }
        },
        Err(_) => Failpoints::default(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian-child: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mode = cli.mode;
    let result = runtime.block_on(async {
        let shutdown = meridian_service::shutdown::on_signal();
        if mode == RunMode::Worker {
            // No API and no database: a worker only talks to its orchestrators.
            return meridian_worker::standalone::run(layers, shutdown).await;
        }
        if mode == RunMode::Migrate {
            // Opening the store applies the migrations (once, under a lock on
            // PostgreSQL); nothing else starts.
            let store = meridian_store::open(&preliminary.database_url(), 1).await?;
            store.close().await;
            eprintln!("meridian-child: migrations applied");
            return Ok(());
        }
        let opts = SiteOptions {
            layers,
            mode,
            failpoints,
        };
        let site = Site::build(opts).await?;
        site.run(shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("meridian-child: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("meridian-child: {e:#}");
            ExitCode::FAILURE
        }
    }
}
