//! Integration tests: the real server on 127.0.0.1:0 with a temporary data file, over HTTP.

mod admin;
mod errors;
mod helpers;
mod lifecycle;
