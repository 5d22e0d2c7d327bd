//! The ids in a route's path, typed.
//!
//! Why not `web::Path<WebhookId>`: actix polls a handler's extractors together, so a path that
//! fails to parse would answer 404 while the caller's authentication is still being looked up,
//! and a key without the route's scope would learn "404" instead of its 403 (spec §1 orders
//! authentication first). [`Ids`] always extracts; [`Ids::get`], called once the caller is
//! known, answers 404 for an id of the wrong shape, which names nothing that exists.

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

pub struct Ids<T>(Result<T, String>);

impl<T> Ids<T> {
    pub fn get(self) -> Result<T, ApiError> {
        self.0.map_err(ApiError::not_found)
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Ids<T> {
    type Error = Infallible;
    type Future = Ready<Result<Ids<T>, Infallible>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parsed = web::Path::<T>::from_request(req, payload)
            .into_inner()
            .map(web::Path::into_inner)
            .map_err(|_| format!("{} not found", req.path()));
        ready(Ok(Ids(parsed)))
    }
}
