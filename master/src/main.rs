//! `meridian-master`: the federation's control plane. Not built yet: the federation
//! issue brings dispatch, polling and the user API. Until then it says so instead of
//! pretending to run.

use std::process::ExitCode;

use clap::Parser;

/// The Meridian master (federated model). This build does not include it yet.
#[derive(Debug, Parser)]
#[command(name = "meridian-master", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    let _ = Cli::parse();
    eprintln!(
        "meridian-master: the federation master is not part of this build yet; run meridian-child for a single site"
    );
    ExitCode::from(2)
}
