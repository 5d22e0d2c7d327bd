//! Authentication of API keys and of the admin token, as request extractors.
//!
//! Order (spec §1): token missing/malformed/unknown/revoked/expired → 401; `x-customer-id`
//! missing or not a UUID → 401; key locked to another tenant → 403; scope missing → 403. The
//! key's rate-limit bucket is charged once the key is authenticated, so every authenticated
//! response carries its `RateLimit-*` headers. Failed authentications are charged to the
//! client's IP instead, and only they can be refused by that bucket.

use std::future::Future;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use ipnet::IpNet;

use crate::domain::ids::{KeyId, TenantId};
use crate::domain::token::{Pat, Scope, ct_eq, sha256};
use crate::http::error::ApiError;
use crate::http::ratelimit::{Bucket, Verdict};
use crate::http::state::AppState;
use crate::store::api_keys::ApiKey;

/// What a route needs from the caller's key.
pub trait Access {
    const SCOPE: Scope;
    const BUCKET: Bucket;
}

pub struct LeadsRead;
pub struct LeadsWrite;
pub struct LeadsBulk;
pub struct WebhooksManage;

impl Access for LeadsRead {
    const SCOPE: Scope = Scope::LeadsRead;
    const BUCKET: Bucket = Bucket::Default;
}
impl Access for LeadsWrite {
    const SCOPE: Scope = Scope::LeadsWrite;
    const BUCKET: Bucket = Bucket::Default;
}
impl Access for LeadsBulk {
    const SCOPE: Scope = Scope::LeadsWrite;
    const BUCKET: Bucket = Bucket::Bulk;
}
impl Access for WebhooksManage {
    const SCOPE: Scope = Scope::WebhooksManage;
    const BUCKET: Bucket = Bucket::Default;
}

/// An authenticated, authorised, rate-limited API caller: a tenant's key on the public routes,
/// or the operator on their mirror under `/admin/api/tenants/{tenant}/…` (spec §15), who holds
/// every scope for every tenant and has no key (and no key's rate limit).
pub struct Caller<A> {
    pub tenant: TenantId,
    pub key: Option<KeyId>,
    access: PhantomData<A>,
}

/// The path segment naming the tenant on the operator's mirror of the public routes; the
/// route's own ids ([`crate::http::path::Ids`]) are the segments after it.
pub const AS_TENANT: &str = "as_tenant";

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

/// The client address: the socket peer, or the nearest untrusted hop of `X-Forwarded-For` when
/// the peer is a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn remember(req: &HttpRequest, verdict: Verdict) {
    req.extensions_mut().insert(verdict);
}

/// Charges a failed authentication to the client IP; past its quota the answer is 429.
fn refuse(req: &HttpRequest, state: &AppState, err: ApiError) -> ApiError {
    let Some(ip) = client_ip(req, &state.trusted_proxies) else {
        return err;
    };
    let verdict = state.limits.check_failed_auth(ip);
    remember(req, verdict);
    match verdict.retry_after {
        Some(seconds) => ApiError::rate_limited(seconds),
        None => err,
    }
}

/// The bearer token, well formed.
fn token(req: &HttpRequest) -> Result<Pat, &'static str> {
    bearer(req).and_then(Pat::parse).ok_or(
        if req.headers().contains_key(header::AUTHORIZATION) {
            "malformed Authorization header; expected `Bearer mega_` followed by 64 lowercase hex digits"
        } else {
            "missing Authorization header; expected `Bearer mega_<token>`"
        },
    )
}

/// The key the token belongs to, if it exists and may be used now.
async fn usable_key(
    state: &AppState,
    token: &Pat,
) -> Result<Result<ApiKey, &'static str>, ApiError> {
    let hash = token.hash();
    let store = state.store.clone();
    let found = web::block(move || store.key_by_token_hash(&hash)).await??;
    let Some(key) = found.filter(|k| ct_eq(&k.token_sha256, &hash)) else {
        return Ok(Err("invalid API key"));
    };
    Ok(match key.unusable_reason(state.store.now()) {
        Some(reason) => Err(reason),
        None => Ok(key),
    })
}

/// `x-customer-id`, a hyphenated UUID.
fn customer(req: &HttpRequest) -> Result<TenantId, &'static str> {
    let raw = req
        .headers()
        .get("x-customer-id")
        .ok_or("missing x-customer-id header")?;
    raw.to_str()
        .ok()
        .and_then(TenantId::parse_hyphenated)
        .ok_or("x-customer-id must be a UUID in its hyphenated form (8-4-4-4-12 hex digits)")
}

/// A known key may still be the wrong one for this request.
fn authorize(key: &ApiKey, customer: TenantId, scope: Scope) -> Result<(), ApiError> {
    if key.tenant_id != customer {
        return Err(ApiError::forbidden(
            "this API key is locked to another customer",
        ));
    }
    if !key.scopes.contains(&scope) {
        return Err(ApiError::forbidden(format!(
            "this API key lacks the scope {scope}"
        )));
    }
    Ok(())
}

async fn authenticate(
    req: HttpRequest,
    scope: Scope,
    bucket: Bucket,
) -> Result<(TenantId, KeyId), ApiError> {
    let state = state(&req)?;
    let unauthenticated = |message| refuse(&req, &state, ApiError::unauthenticated(message));
    let token = token(&req).map_err(unauthenticated)?;
    let key = usable_key(&state, &token).await?.map_err(unauthenticated)?;
    let customer = customer(&req).map_err(unauthenticated)?;
    let verdict = state.limits.check_key(key.id, bucket);
    remember(&req, verdict);
    state.key_used(key.id);
    authorize(&key, customer, scope)?;
    if let Some(seconds) = verdict.retry_after {
        return Err(ApiError::rate_limited(seconds));
    }
    Ok((customer, key.id))
}

impl<A: Access + 'static> FromRequest for Caller<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (tenant, key) = match req.match_info().get(AS_TENANT) {
                Some(raw) => (operator(&req, raw).await?, None),
                None => {
                    let (tenant, key) = authenticate(req, A::SCOPE, A::BUCKET).await?;
                    (tenant, Some(key))
                }
            };
            Ok(Caller {
                tenant,
                key,
                access: PhantomData,
            })
        })
    }
}

/// The operator acting for the tenant `raw` names: the admin token first, then the tenant,
/// 404 when it is not one.
async fn operator(req: &HttpRequest, raw: &str) -> Result<TenantId, ApiError> {
    check_admin(req)?;
    named_tenant(&*state(req)?, raw).await
}

/// The tenant whose id `raw` is (from a path or a query), or 404 naming `raw`.
pub async fn named_tenant(state: &AppState, raw: &str) -> Result<TenantId, ApiError> {
    let not_found = || ApiError::not_found(format!("tenant {raw} not found"));
    let id = TenantId::parse(raw).ok_or_else(not_found)?;
    let store = state.store.clone();
    match web::block(move || store.get_tenant(id)).await?? {
        Some(_) => Ok(id),
        None => Err(not_found()),
    }
}

/// The operator, holding the admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(check_admin(req))
    }
}

fn check_admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = state(req)?;
    match bearer(req) {
        Some(token) if ct_eq(&sha256(token.as_bytes()), &state.admin_token_hash) => Ok(Admin),
        Some(_) => Err(refuse(
            req,
            &state,
            ApiError::unauthenticated("invalid admin token"),
        )),
        None => Err(refuse(
            req,
            &state,
            ApiError::unauthenticated(
                "missing Authorization header; expected `Bearer <admin token>`",
            ),
        )),
    }
}
