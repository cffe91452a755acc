//! A site's engine: assignment with fair sharing, leases and the reaper,
//! retries, the pipeliner, job completion, cancellation, back-pressure and live
//! configuration. Loops are `BackgroundLoop`s run by the supervisor; the functions in
//! `jobs` and `reports` are what the API and the workers call.

pub mod app;
pub mod assigner;
pub mod backpressure;
pub mod completer;
pub mod config_reload;
pub mod finisher;
pub mod jobs;
pub mod listen;
pub mod long_poll;
pub mod pipeliner;
pub mod policy;
pub mod queue_depth;
pub mod reaper;
pub mod registry;
pub mod reports;
