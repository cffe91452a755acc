//! The contract every Meridian part speaks: wire types, states, the error envelope,
//! backoff, shutdown and telemetry. It knows no HTTP router and no database.

pub mod backoff;
pub mod config;
pub mod error;
pub mod shutdown;
pub mod states;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod wire;
