//! Table definitions and key encoding. Keys are fixed-width big-endian byte tuples, so that the
//! byte order of a key is the order of its parts and a prefix range is a keyset page.

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::StoreError;
use super::codec::{Record, decode, encode};
use crate::domain::ids::TenantId;

pub type Bytes = &'static [u8];

/// `schema_version`, `admin_token_sha256`, `event_seq` (the last event log number given out).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// tenant_id -> Tenant
pub const TENANTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tenants");
/// key_id -> ApiKey
pub const API_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("api_keys");
/// sha256(token) -> key_id
pub const API_KEYS_BY_HASH: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("api_keys_by_hash");
/// (tenant_id, key_id) -> ()
pub const API_KEYS_BY_TENANT: TableDefinition<&[u8], ()> =
    TableDefinition::new("api_keys_by_tenant");
/// (tenant_id, stage_id) -> Stage
pub const STAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stages");
/// (tenant_id, field_id) -> CustomField
pub const CUSTOM_FIELDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("custom_fields");
/// (tenant_id, owner_id) -> Owner
pub const OWNERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("owners");

/// (tenant_id, lead_id) -> Lead
pub const LEADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leads");
/// (tenant_id, normalised email) -> lead_id; unique.
pub const LEADS_BY_EMAIL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leads_by_email");
/// (tenant_id, last 10 phone digits, lead_id) -> (); several leads may share a phone, the
/// oldest is the one a request merges into.
pub const LEADS_BY_PHONE: TableDefinition<&[u8], ()> = TableDefinition::new("leads_by_phone");
/// Schema 1–6's sort indexes, (tenant_id, at, lead_id) -> (); replaced by the two below.
pub const LEADS_BY_UPDATED_V6: TableDefinition<&[u8], ()> =
    TableDefinition::new("leads_by_updated");
pub const LEADS_BY_CREATED_V6: TableDefinition<&[u8], ()> =
    TableDefinition::new("leads_by_created");
/// (tenant_id, updated_at, lead_id) -> ordinal
pub const LEADS_BY_UPDATED: TableDefinition<&[u8], u32> =
    TableDefinition::new("leads_by_updated_at");
/// (tenant_id, created_at, lead_id) -> ordinal: where a lead's ordinal is found.
pub const LEADS_BY_CREATED: TableDefinition<&[u8], u32> =
    TableDefinition::new("leads_by_created_at");
/// tenant_id -> (next ordinal u32, newest created_at i64, ordinals in created order u8): each
/// tenant's lead numbering (see `lead_index`).
pub const LEAD_ORDINALS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lead_ordinals");
/// (tenant_id, ordinal) -> (lead_id, created_at, updated_at, last_interaction_at)
pub const LEAD_ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lead_rows");
/// (tenant_id, ordinal >> 6) -> the search text of 64 leads.
pub const LEAD_TEXT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lead_text");
/// (tenant_id, field, updated_at, lead_id) -> ordinal: the default order within each status
/// and each stage (`field` is 17 bytes: `s` and the status code, or `g` and the stage id), so
/// a filter on either pages through its own leads only, however its leads are spread.
pub const LEADS_BY_FIELD_UPDATED: TableDefinition<&[u8], u32> =
    TableDefinition::new("leads_by_field_updated_at");
/// (tenant_id, level, updated_at >> bits of the level) -> leads updated in that span: a count
/// of `updated_since` reads some hundred of these instead of the leads.
pub const LEAD_UPDATED_COUNTS: TableDefinition<&[u8], u64> =
    TableDefinition::new("lead_updated_counts");
/// (tenant_id, ordinal >> 12, term) -> the chunk's members under the term.
pub const LEAD_TERMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lead_terms");
/// (tenant_id, minute since the epoch, sign-flipped big-endian) -> the minute's counts
/// (`stats::Counts`): the admin page's charts; the nil tenant holds the server's sums.
pub const STATS_BY_MINUTE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stats_by_minute");
/// (tenant_id, stage_id, lead_id) -> (): the leads at each stage.
pub const LEADS_BY_STAGE: TableDefinition<&[u8], ()> = TableDefinition::new("leads_by_stage");
/// (tenant_id, owner_id, lead_id) -> (): the leads assigned to each owner.
pub const LEADS_BY_OWNER: TableDefinition<&[u8], ()> = TableDefinition::new("leads_by_owner");
/// tenant_id -> number of leads
pub const LEAD_COUNTS: TableDefinition<&[u8], u64> = TableDefinition::new("lead_counts");
/// (tenant_id, lead_id, occurred_at, interaction_id) -> Interaction: each lead's timeline.
pub const INTERACTIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("interactions");
/// (tenant_id, route, key) -> IdempotencyRecord
pub const IDEMPOTENCY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("idempotency");
/// (expires_at, tenant_id, route, key) -> ()
pub const IDEMPOTENCY_BY_EXPIRY: TableDefinition<&[u8], ()> =
    TableDefinition::new("idempotency_by_expiry");
/// (tenant_id, webhook_id) -> Webhook
pub const WEBHOOKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("webhooks");
/// event_id -> Event: what deliveries send and the event log shows.
pub const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events");
/// (tenant_id, seq) -> (event_id, occurred_at, type code): each tenant's event log in commit
/// order. `seq` comes from one counter that only the writer moves (`meta.event_seq`).
pub const EVENT_LOG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("event_log");
/// Schema 4–5's index of one lead's logged events, (tenant_id, lead_id, seq) -> (); replaced by
/// [`EVENTS_BY_LEAD`] and dropped at open.
pub const EVENT_LOG_BY_LEAD_V4: TableDefinition<&[u8], ()> =
    TableDefinition::new("event_log_by_lead");
/// (tenant_id, lead_id, seq) -> event_id: every stored event of a lead, for as long as its
/// record lives (the log's `lead_id` filter reads it, and so does erasure).
pub const EVENTS_BY_LEAD: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events_by_lead");
/// tenant_id -> the highest seq pruned from its log: a cursor below it has missed events.
pub const EVENT_LOG_PRUNED: TableDefinition<&[u8], u64> = TableDefinition::new("event_log_pruned");
/// delivery_id -> Delivery
pub const DELIVERIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("deliveries");
/// (webhook_id, delivery_id) -> ()
pub const DELIVERIES_BY_WEBHOOK: TableDefinition<&[u8], ()> =
    TableDefinition::new("deliveries_by_webhook");
/// Schema 2's due index, (due_at, delivery_id, webhook_id) -> (); migrated and dropped at open.
pub const DELIVERIES_DUE_V2: TableDefinition<&[u8], ()> = TableDefinition::new("deliveries_due");
/// (webhook_id, due_at, delivery_id) -> (): each webhook's deliveries by when they are due, so
/// one webhook's backlog is a range of its own that no other webhook's lease has to read.
pub const DELIVERIES_DUE: TableDefinition<&[u8], ()> =
    TableDefinition::new("deliveries_due_by_webhook");
/// (due_at, webhook_id) -> tenant_id: every webhook with a delivery queued, at its earliest due
/// time. A lease reads this, one entry per webhook however long its backlog.
pub const WEBHOOKS_DUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("webhooks_due");
/// (webhook_id, delivery_id) -> (): the deliveries a turned-off webhook holds, oldest first.
pub const DELIVERIES_HELD: TableDefinition<&[u8], ()> = TableDefinition::new("deliveries_held");
/// (delivery_id, attempt number) -> Attempt
pub const ATTEMPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("attempts");

/// Reading a byte-keyed table the same way in a read or a write transaction.
pub(crate) trait Txn {
    fn table<V: redb::Value + 'static>(
        &self,
        def: TableDefinition<&'static [u8], V>,
    ) -> Result<impl ReadableTable<&'static [u8], V> + '_, StoreError>;
}

impl Txn for WriteTransaction {
    fn table<V: redb::Value + 'static>(
        &self,
        def: TableDefinition<&'static [u8], V>,
    ) -> Result<impl ReadableTable<&'static [u8], V> + '_, StoreError> {
        Ok(self.open_table(def)?)
    }
}

impl Txn for ReadTransaction {
    fn table<V: redb::Value + 'static>(
        &self,
        def: TableDefinition<&'static [u8], V>,
    ) -> Result<impl ReadableTable<&'static [u8], V> + '_, StoreError> {
        Ok(self.open_table(def)?)
    }
}

/// Concatenates key parts.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// The first key after every key that starts with `prefix` (None when there is none, i.e. the
/// prefix is all 0xff), so `prefix..end` is exactly the keys with that prefix.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The bounds of the keys `(prefix, time, ...)` of a time index at or after `since` (ms):
/// the first key, and the first key past the prefix.
pub fn since_bounds(prefix: &[u8], since: i64) -> (Vec<u8>, Vec<u8>) {
    let lower = key(&[prefix, &i64_key(since)]);
    // (A prefix of all 0xff has no end: past every key of time and id after it.)
    let upper = prefix_end(prefix).unwrap_or_else(|| vec![0xff; prefix.len() + 25]);
    (lower, upper)
}

/// The entries whose keys start with `prefix`, in key order.
pub fn prefixed<'t, V: redb::Value + 'static>(
    table: &'t impl ReadableTable<&'static [u8], V>,
    prefix: &[u8],
) -> Result<redb::Range<'t, &'static [u8], V>, StoreError> {
    Ok(match prefix_end(prefix) {
        Some(end) => table.range::<&[u8]>(prefix..end.as_slice())?,
        None => table.range::<&[u8]>(prefix..)?,
    })
}

/// The record under `k`, if any.
pub fn load<T: Record>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    k: &[u8],
) -> Result<Option<T>, StoreError> {
    table.get(k)?.map(|v| decode(v.value())).transpose()
}

pub fn put_record<T: Record>(
    table: &mut Table<&[u8], &[u8]>,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    table.insert(key, encode(value)?.as_slice())?;
    Ok(())
}

/// How many keys of an index start with `prefix`, counted without reading any record.
pub fn count_under(
    index: &impl ReadableTable<&'static [u8], ()>,
    prefix: &[u8],
) -> Result<usize, StoreError> {
    let mut count = 0;
    for entry in prefixed(index, prefix)? {
        entry?;
        count += 1;
    }
    Ok(count)
}

/// Refuses work on a tenant that does not exist (or no longer does).
pub(crate) fn require_tenant(txn: &WriteTransaction, tenant: TenantId) -> Result<(), StoreError> {
    match txn.open_table(TENANTS)?.get(tenant.bytes().as_slice())? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("tenant {tenant} not found"))),
    }
}

/// Every record whose key starts with `prefix` (a tenant's rows, a delivery's attempts).
pub fn records_under<T: Record>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<Vec<T>, StoreError> {
    prefixed(table, prefix)?
        .map(|entry| decode(entry?.1.value()))
        .collect()
}

/// The id found right after `prefix` in every key of an index table that starts with it.
pub fn ids_under(
    index: &impl ReadableTable<&'static [u8], ()>,
    prefix: &[u8],
) -> Result<Vec<[u8; 16]>, StoreError> {
    let mut ids = Vec::new();
    for entry in prefixed(index, prefix)? {
        ids.extend(id_at(entry?.0.value(), prefix.len()));
    }
    Ok(ids)
}

/// Big-endian with the sign bit flipped, so signed values sort correctly as bytes.
pub fn i64_key(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn i64_from_key(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

pub fn id_at(bytes: &[u8], offset: usize) -> Option<[u8; 16]> {
    bytes.get(offset..offset + 16)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_keys_sort_as_numbers() {
        let values = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for pair in values.windows(2) {
            assert!(i64_key(pair[0]) < i64_key(pair[1]));
        }
        for v in values {
            assert_eq!(i64_from_key(&i64_key(v)), Some(v));
        }
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        let end = prefix_end(&[7, 7]).unwrap();
        assert!(key(&[&[7, 7], &[0xff; 16]]) < end);
        assert!(key(&[&[7, 8]]) >= end);
    }
}
