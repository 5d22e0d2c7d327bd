//! Idempotency keys: the response of a write, stored in the write's own transaction, replayed for
//! a retry of the same request.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::codec::{Record, decode, encode};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::ids::{LeadId, TenantId};
use crate::domain::time::Timestamp;

/// The write routes that honour `Idempotency-Key`; keys are scoped per tenant and route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdempotentRoute {
    CreateLead = 1,
    BulkImport = 2,
    PatchLead = 3,
    DeleteLead = 4,
    CreateInteraction = 5,
}

/// A request's claim on a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub tenant: TenantId,
    pub route: IdempotentRoute,
    pub key: String,
}

impl IdempotencyKey {
    fn table_key(&self) -> Vec<u8> {
        key(&[
            &self.tenant.bytes(),
            &[self.route as u8],
            self.key.as_bytes(),
        ])
    }
}

/// A response as sent: replayed byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    /// The version of the lead the body shows, for the `ETag` of a fresh answer; not stored
    /// (`serde(skip)` leaves the record's layout as it was), so a replay reads it from the body.
    #[serde(skip)]
    pub etag: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IdempotencyRecord {
    /// SHA-256 of the request (method, path, canonical JSON body).
    request_hash: [u8; 32],
    response: StoredResponse,
    created_at: Timestamp,
    expires_at: Timestamp,
}

/// Decodes every stored response (for `leadbase check`), telling `bad` of each that does not;
/// returns how many there are.
pub(crate) fn check_records(
    txn: &redb::ReadTransaction,
    bad: &mut dyn FnMut(StoreError),
) -> Result<u64, StoreError> {
    let mut n = 0;
    for entry in txn.open_table(IDEMPOTENCY)?.iter()? {
        n += 1;
        if let Err(e) = super::codec::decode::<IdempotencyRecord>(entry?.1.value()) {
            bad(e);
        }
    }
    Ok(n)
}

impl Record for IdempotencyRecord {
    const VERSION: u8 = 1;
    const NAME: &'static str = "idempotency record";
}

/// Erasure (spec §12.1): a stored create or PATCH response that shows this lead keeps its
/// status, and its `lead` reads `{"id", "erased": true}`; a replay tells the client the lead
/// is gone, not who it was. Returns how many were rewritten.
pub(crate) fn erase_lead_responses(
    txn: &WriteTransaction,
    tenant: TenantId,
    lead: LeadId,
) -> Result<usize, StoreError> {
    let mut table = txn.open_table(IDEMPOTENCY)?;
    let mut rewritten = Vec::new();
    let id = lead.to_string();
    for route in [IdempotentRoute::CreateLead, IdempotentRoute::PatchLead] {
        let prefix = key(&[&tenant.bytes(), &[route as u8]]);
        for entry in prefixed(&table, &prefix)? {
            let (k, v) = entry?;
            let mut record: IdempotencyRecord = decode(v.value())?;
            let Ok(mut body) = serde_json::from_str::<serde_json::Value>(&record.response.body)
            else {
                continue;
            };
            if body["lead"]["id"].as_str() != Some(id.as_str()) {
                continue;
            }
            body["lead"] = serde_json::json!({ "id": id, "erased": true });
            record.response.body = body.to_string();
            rewritten.push((k.value().to_vec(), record));
        }
    }
    for (k, record) in &rewritten {
        table.insert(k.as_slice(), encode(record)?.as_slice())?;
    }
    Ok(rewritten.len())
}

/// What to remember about a request made with a key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: IdempotencyKey,
    pub request_hash: [u8; 32],
    pub ttl_hours: u32,
}

/// The fate of a write made with an optional idempotency key.
#[derive(Debug)]
pub enum Outcome {
    /// The write ran; this is its response (stored when a key was given).
    Fresh(StoredResponse),
    /// The key was used before for the same request.
    Replayed(StoredResponse),
    /// The key was used before for a different request.
    Mismatch,
}

/// The answer a stored record gives this request, while it lives.
fn replay(record: &IdempotencyRecord, idem: &Idempotency, now: Timestamp) -> Option<Outcome> {
    (record.expires_at > now).then(|| {
        if record.request_hash == idem.request_hash {
            Outcome::Replayed(record.response.clone())
        } else {
            Outcome::Mismatch
        }
    })
}

fn expiry_key(expires_at: Timestamp, table_key: &[u8]) -> Vec<u8> {
    key(&[&i64_key(expires_at.ms()), table_key])
}

/// Stores `response` for `idem`, replacing `previous` (an expired record under the same key).
fn save(
    txn: &WriteTransaction,
    idem: &Idempotency,
    previous: Option<&IdempotencyRecord>,
    response: &StoredResponse,
    now: Timestamp,
) -> Result<(), StoreError> {
    let k = idem.key.table_key();
    let mut by_expiry = txn.open_table(IDEMPOTENCY_BY_EXPIRY)?;
    if let Some(old) = previous {
        by_expiry.remove(expiry_key(old.expires_at, &k).as_slice())?;
    }
    let record = IdempotencyRecord {
        request_hash: idem.request_hash,
        response: response.clone(),
        created_at: now,
        expires_at: now.plus_hours(idem.ttl_hours),
    };
    txn.open_table(IDEMPOTENCY)?
        .insert(k.as_slice(), encode(&record)?.as_slice())?;
    by_expiry.insert(expiry_key(record.expires_at, &k).as_slice(), ())?;
    Ok(())
}

/// The body of [`Store::write_rendered`], for a transaction that may be committed or discarded.
pub(crate) fn write_rendered_in<T>(
    txn: &WriteTransaction,
    idem: Option<&Idempotency>,
    now: Timestamp,
    work: impl FnOnce(&WriteTransaction, Timestamp) -> Result<T, StoreError>,
    render: impl FnOnce(Result<&T, &StoreError>) -> StoredResponse,
) -> Result<(Outcome, Option<T>), StoreError> {
    let previous = match idem {
        Some(idem) => {
            let previous: Option<IdempotencyRecord> =
                load(&txn.open_table(IDEMPOTENCY)?, &idem.key.table_key())?;
            if let Some(outcome) = previous.as_ref().and_then(|r| replay(r, idem, now)) {
                return Ok((outcome, None));
            }
            previous
        }
        None => None,
    };
    let result = work(txn, now);
    if let Err(e) = &result
        && e.poisons_batch()
    {
        return Err(e.clone());
    }
    let response = render(result.as_ref());
    if let Some(idem) = idem {
        save(txn, idem, previous.as_ref(), &response, now)?;
    }
    Ok((Outcome::Fresh(response), result.ok()))
}

impl Store {
    /// Runs `work` in a write transaction and renders its result into the response, storing the
    /// response with the write when `idem` is given. A key seen before short-cuts to a replay
    /// (or a mismatch) without running `work`. `work` must check before it writes; `render`
    /// maps its result, success or refusal, to what the client receives.
    pub(crate) fn write_rendered<T: Send + 'static>(
        &self,
        idem: Option<Idempotency>,
        work: impl FnOnce(&WriteTransaction, Timestamp) -> Result<T, StoreError> + Send + 'static,
        render: impl FnOnce(Result<&T, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<(Outcome, Option<T>), StoreError> {
        self.write_now(move |txn, now| write_rendered_in(txn, idem.as_ref(), now, work, render))
    }

    /// Deletes expired keys; returns how many.
    pub fn sweep_idempotency(&self, now: Timestamp) -> Result<usize, StoreError> {
        self.write(move |txn| {
            let mut by_expiry = txn.open_table(IDEMPOTENCY_BY_EXPIRY)?;
            let mut table = txn.open_table(IDEMPOTENCY)?;
            let end = i64_key(now.ms());
            let expired: Vec<Vec<u8>> = by_expiry
                .range(..end.as_slice())?
                .take(10_000)
                .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()?;
            for k in &expired {
                by_expiry.remove(k.as_slice())?;
                table.remove(&k[8..])?;
            }
            Ok(expired.len())
        })
    }
}

impl Store {
    /// Stores a refusal made before the store was reached (a body that failed validation), so a
    /// retry with the same key gets the same answer and a different body gets 409.
    pub fn remember_response(
        &self,
        idem: Idempotency,
        response: StoredResponse,
    ) -> Result<Outcome, StoreError> {
        Ok(self
            .write_rendered(Some(idem), |_, _| Ok(()), move |_| response)?
            .0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        (dir, store)
    }

    fn idem(tenant: TenantId, key: &str, hash: u8, ttl_hours: u32) -> Idempotency {
        Idempotency {
            key: IdempotencyKey {
                tenant,
                route: IdempotentRoute::CreateLead,
                key: key.into(),
            },
            request_hash: [hash; 32],
            ttl_hours,
        }
    }

    fn response(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            body: body.into(),
            etag: None,
        }
    }

    #[test]
    fn a_key_replays_its_response_and_refuses_another_request() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        assert!(matches!(
            store.remember_response(idem(tenant, "k", 1, 24), response("a")),
            Ok(Outcome::Fresh(_))
        ));
        match store.remember_response(idem(tenant, "k", 1, 24), response("b")) {
            Ok(Outcome::Replayed(r)) => assert_eq!(r.body, "a"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.remember_response(idem(tenant, "k", 2, 24), response("c")),
            Ok(Outcome::Mismatch)
        ));
        let other_tenant = TenantId::new();
        assert!(matches!(
            store.remember_response(idem(other_tenant, "k", 2, 24), response("d")),
            Ok(Outcome::Fresh(_))
        ));
    }

    #[test]
    fn expired_keys_are_swept_and_no_longer_replay() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        store
            .remember_response(idem(tenant, "old", 1, 0), response("a"))
            .unwrap();
        store
            .remember_response(idem(tenant, "live", 1, 24), response("b"))
            .unwrap();
        assert_eq!(store.sweep_idempotency(store.now().plus_ms(1)).unwrap(), 1);
        assert_eq!(store.sweep_idempotency(store.now().plus_ms(1)).unwrap(), 0);
        assert!(matches!(
            store.remember_response(idem(tenant, "old", 2, 24), response("c")),
            Ok(Outcome::Fresh(_))
        ));
        assert!(matches!(
            store.remember_response(idem(tenant, "live", 1, 24), response("d")),
            Ok(Outcome::Replayed(_))
        ));
        store.shutdown();
    }
}
