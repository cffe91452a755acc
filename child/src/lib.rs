//! A Meridian site (the *child*): orchestrator, site API and, in single-process mode,
//! its workers. `main.rs` parses flags and calls [`Site::build`] then [`Site::run`].
//!
//! Dependencies run one way: `api → engine → store`, `worker → scan`, all → `shared`.

pub mod api;
pub mod app;
pub mod config;
pub mod engine;
pub mod failpoints;
pub mod health;
pub mod metrics;
pub mod protocol;
pub mod scan;
pub mod serve;
pub mod site;
pub mod store;
pub mod supervisor;
pub mod worker;

pub use app::App;
pub use site::{Site, SiteOptions};

/// Which parts of a site this process runs (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunMode {
    /// Orchestrator, site API and in-process workers (the default).
    Single,
    /// Site API, engine and the worker API, no workers (distributed model; PostgreSQL).
    Orchestrator,
    /// Workers only, long-polling an orchestrator; no API, no database (distributed model).
    Worker,
}
