//! What both Meridian services (a site and the master) run on: the API error
//! envelope and its extractors, the health registry, metrics, supervised tick loops
//! with failpoints, configuration layering, TLS with certificate reload, telemetry,
//! shutdown, and the site-scoped worker credential.

pub mod api_error;
pub mod backoff;
pub mod config;
pub mod extract;
pub mod failpoints;
pub mod health;
pub mod metrics;
pub mod nul;
pub mod openapi;
pub mod request_id;
pub mod shutdown;
pub mod supervisor;
pub mod telemetry;
pub mod tls;
pub mod worker_token;

pub use api_error::ApiError;
