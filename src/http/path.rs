//! The ids in a route's path, typed.
//!
//! Why not `web::Path<WebhookId>`: actix polls a handler's extractors together, so a path that
//! fails to parse would answer 404 while the caller's authentication is still being looked up,
//! and a key without the route's scope would learn "404" instead of its 403 (spec §1 orders
//! authentication first). [`Ids`] always extracts; [`Ids::get`], called once the caller is
//! known (and the body read), answers 404 for an id of the wrong shape, which names nothing that
//! exists: `webhook not-a-uuid not found`. On the operator's mirror of a public route the
//! tenant segment is not one of the route's ids: [`crate::http::auth::Caller`] reads it.

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::domain::ids::{
    CustomFieldId, DeliveryId, KeyId, LeadId, OwnerId, StageId, TenantId, WebhookId,
};
use crate::http::auth::AS_TENANT;
use crate::http::error::ApiError;

/// An id type a route's path can hold, and what a 404 calls it.
pub trait PathId: Sized {
    const WHAT: &'static str;
    fn parse(raw: &str) -> Option<Self>;
}

macro_rules! path_ids {
    ($($id:ty => $what:literal),+ $(,)?) => {$(
        impl PathId for $id {
            const WHAT: &'static str = $what;
            fn parse(raw: &str) -> Option<Self> {
                <$id>::parse(raw)
            }
        }
    )+};
}

path_ids!(
    TenantId => "tenant",
    KeyId => "key",
    LeadId => "lead",
    StageId => "stage",
    CustomFieldId => "custom field",
    OwnerId => "owner",
    WebhookId => "webhook",
    DeliveryId => "delivery",
);

/// One id, or two, taken from the path's segments in order.
pub trait PathIds: Sized {
    fn from_segments(segments: &[&str]) -> Result<Self, String>;
}

fn one<T: PathId>(segments: &[&str], at: usize) -> Result<T, String> {
    let raw = segments.get(at).copied().unwrap_or("");
    T::parse(raw).ok_or_else(|| format!("{} {raw} not found", T::WHAT))
}

impl<A: PathId> PathIds for A {
    fn from_segments(segments: &[&str]) -> Result<Self, String> {
        one(segments, 0)
    }
}

impl<A: PathId, B: PathId> PathIds for (A, B) {
    fn from_segments(segments: &[&str]) -> Result<Self, String> {
        Ok((one(segments, 0)?, one(segments, 1)?))
    }
}

pub struct Ids<T>(Result<T, String>);

impl<T> Ids<T> {
    pub fn get(self) -> Result<T, ApiError> {
        self.0.map_err(ApiError::not_found)
    }
}

impl<T: PathIds + 'static> FromRequest for Ids<T> {
    type Error = Infallible;
    type Future = Ready<Result<Ids<T>, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let segments: Vec<&str> = req
            .match_info()
            .iter()
            .filter(|(name, _)| *name != AS_TENANT)
            .map(|(_, value)| value)
            .collect();
        ready(Ok(Ids(T::from_segments(&segments))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_is_named_with_its_kind() {
        let id = "01a2311d-974c-7559-8fe9-52ceded1481a";
        assert!(WebhookId::from_segments(&[id]).is_ok());
        assert!(
            WebhookId::from_segments(&[&format!(" {id} ")]).is_ok(),
            "trimmed"
        );
        assert_eq!(
            WebhookId::from_segments(&["not-a-uuid"]).map(drop),
            Err("webhook not-a-uuid not found".into())
        );
        assert_eq!(
            <(TenantId, StageId)>::from_segments(&[id, "x"]).map(drop),
            Err("stage x not found".into())
        );
        assert_eq!(
            <(TenantId, StageId)>::from_segments(&["y", "x"]).map(drop),
            Err("tenant y not found".into())
        );
    }
}
