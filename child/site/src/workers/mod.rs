//! The site's own workers (single-process mode): a pool of threads running the
//! worker crate's runner, reporting straight into the engine.

pub mod in_process;
pub mod pool;
