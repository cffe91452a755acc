//! A Meridian site (the *child*): orchestrator, site API and, in single-process mode,
//! its workers. `main.rs` parses flags and calls [`Site::build`] then [`Site::run`].
//!
//! Dependencies run one way: site → engine → store, worker → scan, everything → the
//! `shared/` crates; the crate graph enforces it.

pub mod api;
pub mod serve;
pub mod site;
pub mod workers;

pub use meridian_config::RunMode;
pub use meridian_engine::app::App;
pub use site::{Site, SiteOptions};
