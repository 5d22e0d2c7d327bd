//! leadbase: a self-hosted, single-binary lead CRM API with signed webhooks.
//!
//! `main.rs` parses the command line and calls [`cli::run`]; tests call [`start`] with a listener
//! on `127.0.0.1:0` and a temporary data file.

pub mod admin_token;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod receive;
mod server;
pub mod store;

pub use server::{Options, Running, StartError, start};
