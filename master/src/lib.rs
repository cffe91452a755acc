//! The Meridian federation master: a catalog of every site's data
//! sources, jobs split by site and dispatched to each child over mutual TLS, status
//! polled with one request per site per round, one unified view, cancel fan-out,
//! and a JWT-protected user API. Everything it knows is in its own store.

pub mod api;
pub mod app;
pub mod auth;
pub mod canceller;
pub mod catalog;
pub mod certs;
pub mod clients;
pub mod config;
pub mod console;
pub mod dispatch;
pub mod poller;
pub mod server;
pub mod site_reply;
pub mod store;
pub mod view;

pub use config::MasterConfig;
pub use server::MasterServer;
