//! The integration tests' kit: [`testkit`] (the server presets, the client with one method per
//! route, the HTTPS receiver), the webhook-delivery fixture, the `leadbase` binary as a process,
//! and a few JSON helpers.

mod delivery;
mod process;
mod raw;

use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use delivery::{ARRIVE, DeliveryEnv, Hook};
pub use process::{Served, leadbase, leadbase_under_umask, receive, run_json, serve};
pub use raw::{connect, exchange, read_response};
pub use testkit::receiver::{Behaviour, Receiver, Recorded};
pub use testkit::*;

/// `?a=b&...`, form-encoded; `""` for no parameters.
pub fn query(params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("?{query}")
}

/// A lead's (or any object's) `id`.
pub fn id_of(value: &Value) -> String {
    str_of(&value["id"])
}

/// A JSON string's text.
pub fn str_of(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_string()
}

/// A JSON array of strings, sorted.
pub fn sorted(values: &Value) -> Vec<String> {
    let mut v: Vec<String> = values
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    v.sort();
    v
}

/// An object's keys.
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Polls `check` until it returns Ok, or panics with its last complaint.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {timeout:?}; last seen: {last}")
            }
            Err(_) => sleep(Duration::from_millis(25)),
        }
    }
}
