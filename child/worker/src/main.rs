//! `meridian-worker`: the remote worker of the distributed model. Thin: flags →
//! configuration layers → [`meridian_worker::standalone::run`]. No API, no database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use meridian_config::{ConfigError, ConfigLayers, RunMode};

/// Runs remote workers that long-poll a site's orchestrators for work packets, scan
/// the site's data sources and report counts and masked samples back. Holds no
/// database credentials.
///
/// Configuration layers, later wins: built-in defaults, the YAML file (--config or
/// MERIDIAN_CONFIG), then MERIDIAN_SECTION__KEY environment variables (e.g.
/// MERIDIAN_WORKER__IN_PROCESS_THREAD_COUNT=8). The orchestrators and the worker
/// credential are under `worker.*`; see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "meridian-worker", version, about, long_about)]
struct Cli {
    /// YAML configuration file.
    #[arg(long, env = "MERIDIAN_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
}

fn layers(cli: &Cli) -> Result<ConfigLayers, ConfigError> {
    let mut layers = ConfigLayers::new();
    if let Some(path) = &cli.config {
        layers = layers.with_file(path)?;
    }
    Ok(layers.with_env())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let layers = match layers(&cli) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("meridian-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let preliminary = match layers.preliminary(RunMode::Worker) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meridian-worker: {e}");
            return ExitCode::from(2);
        }
    };
    meridian_service::telemetry::init(preliminary.log.format, &preliminary.log.level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian-worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `on_signal` spawns its listener, so it must run inside the runtime.
    let result = runtime.block_on(async {
        meridian_worker::standalone::run(layers, meridian_service::shutdown::on_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("meridian-worker: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("meridian-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
