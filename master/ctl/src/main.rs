//! `meridianctl`: the command-line client of the Meridian master's user API. It
//! parses the command line, resolves where the master is, runs one command and
//! exits with that command's documented code (see `exit.rs`).

mod api;
mod cli;
mod client;
mod config;
mod exit;
mod info;
mod jobs;
mod output;
mod watch;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, JobsCommand};
use crate::client::Master;
use crate::exit::CliError;
use crate::output::Format;

fn main() -> ExitCode {
    // Bad flags exit here with clap's usage code, 2.
    let cli = Cli::parse();
    let fmt = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(
                fmt,
                &CliError::Other(format!("cannot start the runtime: {e}")),
            );
            return ExitCode::from(exit::ERROR);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(fmt, &e);
            e.code()
        }
    };
    ExitCode::from(code)
}

/// One line on stderr: a sentence, or the error as JSON under `-o json|jsonl`.
fn report(fmt: Format, e: &CliError) {
    match fmt {
        Format::Text => eprintln!("meridianctl: {e}"),
        Format::Json | Format::Jsonl => eprintln!("{}", e.to_json()),
    }
}

async fn run(cli: Cli) -> Result<u8, CliError> {
    let fmt = cli.global.output;
    if let Command::Completions { shell } = cli.command {
        let mut cmd = Cli::command();
        clap_complete::generate(shell, &mut cmd, "meridianctl", &mut std::io::stdout());
        return Ok(exit::OK);
    }
    let given = config::Given {
        server: cli.global.server,
        ca_file: cli.global.ca_file,
        token: cli.global.token,
        config: cli.global.config,
    };
    let settings = config::resolve(&given)?;
    let m = Master::new(&settings)?;
    match cli.command {
        Command::Jobs(JobsCommand::Create(a)) => jobs::create(&m, fmt, a).await,
        Command::Jobs(JobsCommand::List(a)) => jobs::list(&m, fmt, a).await,
        Command::Jobs(JobsCommand::Show { job }) => jobs::show(&m, fmt, &job).await,
        Command::Jobs(JobsCommand::Watch(a)) => watch::watch(&m, fmt, a).await,
        Command::Jobs(JobsCommand::Cancel(a)) => jobs::cancel(&m, fmt, a).await,
        Command::Jobs(JobsCommand::Findings(a)) => jobs::findings(&m, fmt, a).await,
        Command::Sites(s) => info::sites(&m, fmt, s.site.as_deref()).await,
        Command::DataSources(s) => info::data_sources(&m, fmt, s.site.as_deref()).await,
        Command::Health => info::health(&m, fmt).await,
        Command::Whoami => info::whoami(&m, fmt).await,
        Command::Completions { .. } => Ok(exit::OK),
    }
}
