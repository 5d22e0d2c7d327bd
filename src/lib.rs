//! leadbase: a self-hosted, single-binary lead CRM API with signed webhooks.
//!
//! `main.rs` parses the command line and calls [`cli::run`]; tests call [`start`] with a listener
//! on `127.0.0.1:0` and a temporary data file. `ARCHITECTURE.md` maps every module.
//!
//! Layers, each importing only from its own and the ones below it (`tests/api/architecture.rs`
//! checks this, and that no modules import each other):
//! 1. [`domain`]: the product's types and rules (no HTTP, no storage, the time an argument);
//! 2. [`config`], [`logging`];
//! 3. [`store`]: everything redb;
//! 4. [`delivery`]: the webhook delivery engine, its HTTP client and signatures; [`dto`]: what
//!    the admin API and the CLI show of tenants and keys;
//! 5. [`http`]: actix routes, extractors, rate limits, metrics, the error envelope;
//! 6. [`admin_token`], the server ([`start`]), [`receive`] and [`cli`], which wire them up.

pub mod admin_token;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod dto;
pub mod http;
pub mod logging;
pub mod receive;
mod server;
pub mod store;

pub use server::{Deliveries, Options, Running, StartError, start};
