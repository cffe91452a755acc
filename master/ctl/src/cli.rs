//! The command line: global connection flags, `-o`, and the commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "meridianctl",
    version,
    about = "Command-line client of the Meridian master: create, follow and cancel federated jobs.",
    after_help = exit::HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Base URL of the master (default http://127.0.0.1:8400).
    #[arg(long, global = true, env = "MERIDIAN_SERVER")]
    pub server: Option<String>,
    /// PEM file of the CA to trust for an https:// master (the only trust root then).
    #[arg(long, global = true, env = "MERIDIAN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Bearer token (JWT); prefer MERIDIAN_TOKEN or the config file, which other
    /// users cannot see in the process list.
    #[arg(long, global = true, env = "MERIDIAN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Config file instead of $XDG_CONFIG_HOME/meridian/config.yaml.
    #[arg(long, global = true, env = "MERIDIAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output: text for people, json (one document), jsonl (one value per line).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, show, watch and cancel jobs; read their findings.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The master's sites: reachability, latency, last error.
    Sites(SiteScope),
    /// The data-source catalog the master learned from its sites.
    DataSources(SiteScope),
    /// The master's /health: overall state and each component (no token needed).
    Health,
    /// Who the master says the token makes you: subject, roles, permissions, expiry.
    Whoami,
    /// Print a shell completion script, e.g. `meridianctl completions bash > /etc/bash_completion.d/meridianctl`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct SiteScope {
    /// Only rows of this site.
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Create a job over data sources of any sites; the master splits it by site.
    Create(CreateArgs),
    /// List jobs, newest first.
    List(ListArgs),
    /// The unified view of one job; exits with the job's code.
    #[command(after_help = exit::HELP)]
    Show { job: String },
    /// Follow a job until it reaches a final state; exits with the job's code.
    #[command(after_help = exit::HELP)]
    Watch(WatchArgs),
    /// Cancel jobs by id or by filter.
    Cancel(CancelArgs),
    /// Every finding of a job, fetched page by page from its sites (masked).
    Findings(FindingsArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The job's name.
    #[arg(long)]
    pub name: String,
    /// A data source id (repeat or comma-separate); `meridianctl data-sources` lists them.
    #[arg(
        long = "data-source",
        short = 'd',
        required = true,
        value_delimiter = ','
    )]
    pub data_sources: Vec<String>,
    /// Classifier to run (repeat or comma-separate); all built-in ones when absent.
    #[arg(long = "classifier", value_delimiter = ',')]
    pub classifiers: Vec<String>,
    /// OCR of images (true/false); the site's setting when absent.
    #[arg(long)]
    pub ocr: Option<bool>,
    /// Tables and images inside documents (true/false); the site's setting when absent.
    #[arg(long)]
    pub tables: Option<bool>,
    /// Skip files larger than this many MB.
    #[arg(long)]
    pub max_file_size_mb: Option<u64>,
    /// Discover at most this many objects per data source.
    #[arg(long)]
    pub max_objects: Option<u64>,
    /// Weight under the WEIGHTED fair-sharing policy, 1..=100.
    #[arg(long)]
    pub priority: Option<u32>,
    /// Repeating a create with the same key returns the first job.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// The filter flags `list` and `cancel` share.
#[derive(Debug, Args, Default)]
pub struct FilterArgs {
    /// Only jobs in this state (PENDING, RUNNING, CANCELLING, COMPLETED,
    /// PARTIALLY_COMPLETED, FAILED, CANCELLED).
    #[arg(long)]
    pub state: Option<String>,
    /// Only jobs with a part at this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Only jobs whose name matches this glob (`*`, `?`), e.g. 'nightly*'.
    #[arg(long)]
    pub name: Option<String>,
    /// Only jobs created at or after this RFC 3339 time (or date, e.g. 2026-05-01).
    #[arg(long)]
    pub since: Option<String>,
    /// Only jobs created before this RFC 3339 time (or date).
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many jobs (all pages otherwise).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub job: String,
    /// Give up after this long (e.g. 90s, 5m, 1h); exit 5, or 9 when a site is unreachable.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Time between two looks at the job.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Job ids; or select jobs with the filter flags instead.
    #[arg(conflicts_with_all = ["state", "site", "name", "since", "until"])]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only count what would be cancelled.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindingsFormat {
    Table,
    Csv,
    Json,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct FindingsArgs {
    pub job: String,
    /// table, csv, json or jsonl; follows -o when absent (text → table).
    #[arg(long, value_enum)]
    pub format: Option<FindingsFormat>,
    /// Only findings of this site.
    #[arg(long)]
    pub site: Option<String>,
}

/// `500ms`, `30s`, `5m`, `2h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 30s, 5m, 1h or 500ms"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unit `{other}` is unknown; use ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
