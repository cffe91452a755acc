//! Workers: the in-process pool of single-process mode and the remote worker of
//! `--mode worker`. Both run the same runner (connector and classifiers on a blocking
//! thread, heartbeats while it runs); in-process workers report straight into the
//! engine, remote ones over the worker API (`report::Reporter`).

pub mod memory;
pub mod pool;
pub mod registry;
pub mod remote;
pub mod remote_client;
pub mod report;
pub mod runner;
