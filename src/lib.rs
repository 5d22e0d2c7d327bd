//! leadbase: a self-hosted, single-binary lead CRM API with signed webhooks.
//!
//! `main.rs` parses the command line and calls [`cli::run`]; tests call [`start`] with a listener
//! on `127.0.0.1:0` and a temporary data file. `ARCHITECTURE.md` maps every module.
//!
//! Layers, each importing only the ones below it:
//! 1. [`domain`]: the product's types and rules (no HTTP, no storage, the time an argument);
//! 2. [`config`], [`metrics`], [`ratelimit`], [`logging`]: plumbing every upper layer reads;
//! 3. [`store`]: everything redb;
//! 4. [`delivery`]: the webhook delivery engine, its HTTP client and signatures;
//! 5. [`http`]: routes, extractors, the error envelope;
//! 6. [`admin_token`], the server ([`start`]), [`receive`] and [`cli`], which wire them up.

pub mod admin_token;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod dto;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod receive;
mod server;
pub mod store;

pub use server::{Deliveries, Options, Running, StartError, start};
