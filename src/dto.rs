//! What the admin API and the CLI show of a tenant and of a key: the same JSON from both, and
//! never a key's hash.

use serde::Serialize;

use crate::domain::ids::{KeyId, TenantId};
use crate::domain::time::Timestamp;
use crate::domain::token::Scope;
use crate::store::Tenant;
use crate::store::api_keys::ApiKey;

#[derive(Serialize)]
pub struct TenantDto {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Tenant> for TenantDto {
    fn from(t: &Tenant) -> Self {
        TenantDto {
            id: t.id,
            name: t.name.clone(),
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct KeyDto {
    pub id: KeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl From<&ApiKey> for KeyDto {
    fn from(k: &ApiKey) -> Self {
        KeyDto {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}
