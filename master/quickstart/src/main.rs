//! `meridian-quickstart`: a whole local federation in one process, for trying
//! Meridian on a laptop. The one crate that links both the master and a site; no
//! other crate depends on it, so neither service's binary carries the other.

mod federation;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Start a local federation: a master and the sites london and tokyo in one
/// process, each on embedded SQLite, talking mutual TLS over dev certificates made
/// on the spot. Prints the master URL and an operator token; Ctrl-C stops it.
#[derive(Debug, Parser)]
#[command(name = "meridian-quickstart", version, about, long_about)]
struct Cli {
    /// Where certificates, databases and sample data go.
    #[arg(long, value_name = "DIR", default_value = ".data/quickstart")]
    dir: PathBuf,
    /// Address of the master's user API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8400")]
    listen: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for the whole process (rustls, sqlx's TLS).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    meridian_service::telemetry::init(
        meridian_service::telemetry::LogFormat::Text,
        "warn,meridian_master=info,meridian_quickstart=info",
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian-quickstart: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The signal handler is spawned, so it is set up inside the runtime.
    let result = rt.block_on(async {
        federation::run(
            &cli.dir,
            &cli.listen,
            meridian_service::shutdown::on_signal(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian-quickstart: {e:#}");
            ExitCode::FAILURE
        }
    }
}
