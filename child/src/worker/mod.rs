//! Workers: the in-process pool of single-process mode. Each worker takes work
//! packets from the assigner's queue, runs the connector and classifiers on a
//! blocking thread, heartbeats while it runs, and reports through the same engine
//! calls a remote worker's HTTP requests will reach.

pub mod pool;
pub mod registry;
pub mod runner;
