//! The worker: runs a work packet (connector and classifiers) under a lease, with
//! heartbeats while it runs, and reports through a [`reporter::Reporter`]. The site's
//! in-process workers report straight into the engine; the remote worker
//! (`meridian-worker`, or `meridian-child --mode worker`) long-polls an orchestrator
//! and reports over the worker API. It holds no database credentials and links no
//! database driver for the site's store.

pub mod client;
pub mod heartbeat;
pub mod memory;
pub mod ops;
pub mod reporter;
pub mod runner;
pub mod standalone;
