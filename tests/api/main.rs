//! Integration tests: the real server on 127.0.0.1:0 with a temporary data file, over HTTP.

mod admin;
mod admin_meta;
mod architecture;
mod auth;
mod crash;
mod deliveries;
mod erasure;
mod errors;
mod events;
mod export;
mod helpers;
mod idempotency;
mod interactions;
mod isolation;
mod leads_bulk;
mod leads_pull;
mod leads_push;
mod lifecycle;
mod openapi;
mod protocol;
mod ratelimit;
mod receive;
mod storage;
mod webhook_controls;
mod webhooks;
