//! The product's types and rules: what a lead, a webhook, a cursor or a URL may be, and what a
//! merge, a PATCH, a rotation or a failed attempt does. No HTTP, no storage and no clock here:
//! the time is an argument. (Ids draw random bits, and the URL policy asks a resolver it is
//! handed for a host's addresses.)

pub mod catalog;
pub mod contact;
pub mod cursor;
pub mod event;
pub mod event_cursor;
pub mod ids;
pub mod interaction;
pub mod lead;
pub mod retry;
pub mod time;
pub mod token;
pub mod url_policy;
pub mod webhook;
pub mod webhook_controls;
