//! Pure types and rules: no I/O, no HTTP, no storage.

pub mod catalog;
pub mod contact;
pub mod cursor;
pub mod event;
pub mod ids;
pub mod lead;
pub mod time;
pub mod token;
pub mod url_policy;
