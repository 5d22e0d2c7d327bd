//! leadbase's test kit, shared by the integration tests (`tests/api`) and the benchmarks: the
//! real server on 127.0.0.1:0 with a temporary data file, started from named presets
//! ([`TestApp::spawn`], [`TestApp::relaxed`], [`TestApp::delivering_to`], ...); a client with one
//! method per route whose responses are checked with [`Resp::expect`]; and a real HTTPS webhook
//! receiver ([`receiver::Receiver`]).

mod app;
mod client;
pub mod receiver;
mod routes;

pub use app::{
    ADMIN_TOKEN, ALL_SCOPES, TestApp, deliver_to, relax_limits, test_config, trust_receiver,
};
pub use client::{BULK, Client, HOOKS, Key, LEADS, Req, Resp, agent};
