//! The contract every Meridian part speaks: the site API's bodies ([`site`]), the
//! worker API ([`worker`]) and the task vocabulary both kinds of worker report in
//! ([`task`]), job/task/phase states and their transitions, timestamps and the error
//! envelope. It knows no HTTP router and no database.

pub mod error;
pub mod site;
pub mod states;
pub mod task;
pub mod time;
pub mod worker;

pub use site::*;
