//! `leadbase check` (spec §14): every record decodes, and every index entry agrees with the
//! records. The lead indexes are checked exactly: they are built afresh from the records into
//! a scratch file next to the data file (through the same code every write uses, keeping each
//! lead's number) and compared table by table. Event and delivery indexes are checked entry by
//! entry: each points at a record that exists and says the same. `--repair` rebuilds the lead
//! indexes from the records.

use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use super::api_keys::ApiKey;
use super::catalog::{CustomField, Owner, Stage};
use super::codec::{Record, decode};
use super::delivery_queue::{Attempt, Delivery, DeliveryStatus};
use super::outbox::Event;
use super::tables::*;
use super::tenants::Tenant;
use super::{Store, StoreError};
use crate::domain::interaction::Interaction;
use crate::domain::lead::Lead;
use crate::domain::webhook::Webhook;

/// Problems listed at most; the rest are counted.
const LISTED: usize = 50;

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// `(what, how many)` read, in the order checked.
    pub checked: Vec<(String, u64)>,
    /// Each problem in plain words.
    pub problems: Vec<String>,
    /// Problems found beyond those listed.
    pub unlisted: u64,
    /// Whether a problem is in the lead indexes (what `--repair` rebuilds).
    pub lead_indexes_damaged: bool,
    /// Whether a problem is elsewhere (a record that does not decode, a delivery index).
    pub other_damage: bool,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.unlisted
    }

    fn problem(&mut self, lead_index: bool, text: String) {
        if lead_index {
            self.lead_indexes_damaged = true;
        } else {
            self.other_damage = true;
        }
        if self.problems.len() < LISTED {
            self.problems.push(text);
        } else {
            self.unlisted += 1;
        }
    }
}

impl Store {
    /// Checks the whole file; run it offline (a server writing meanwhile makes the lead index
    /// comparison report what changed).
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        self.read(|txn| {
            decode_records(txn, &mut report)?;
            check_event_indexes(txn, &mut report)?;
            check_delivery_indexes(txn, &mut report)
        })?;
        check_lead_indexes(self, &mut report)?;
        Ok(report)
    }

    /// Rebuilds every lead index from the lead records (numbering the leads anew); returns
    /// how many leads were indexed.
    pub fn repair_lead_indexes(&self) -> Result<u64, StoreError> {
        self.write(|txn| super::lead_record::rebuild_lead_indexes(txn, None))
    }
}

fn decode_all<T: Record>(
    txn: &ReadTransaction,
    def: TableDefinition<&'static [u8], &'static [u8]>,
    what: &str,
    report: &mut CheckReport,
) -> Result<u64, StoreError> {
    let mut n = 0;
    let mut bad = 0;
    for entry in txn.open_table(def)?.iter()? {
        let (_, v) = entry?;
        n += 1;
        if let Err(e) = decode::<T>(v.value()) {
            bad += 1;
            if bad <= 3 {
                report.problem(false, format!("{what}: a record does not decode: {e}"));
            }
        }
    }
    if bad > 3 {
        report.problem(
            false,
            format!("{what}: {} more records do not decode", bad - 3),
        );
    }
    report.checked.push((what.to_string(), n));
    Ok(n)
}

fn decode_records(txn: &ReadTransaction, report: &mut CheckReport) -> Result<(), StoreError> {
    decode_all::<Tenant>(txn, TENANTS, "tenants", report)?;
    decode_all::<ApiKey>(txn, API_KEYS, "api keys", report)?;
    decode_all::<Stage>(txn, STAGES, "stages", report)?;
    decode_all::<CustomField>(txn, CUSTOM_FIELDS, "custom fields", report)?;
    decode_all::<Owner>(txn, OWNERS, "owners", report)?;
    decode_all::<Lead>(txn, LEADS, "leads", report)?;
    decode_all::<Interaction>(txn, INTERACTIONS, "interactions", report)?;
    decode_all::<Webhook>(txn, WEBHOOKS, "webhooks", report)?;
    decode_all::<Event>(txn, EVENTS, "events", report)?;
    decode_all::<Delivery>(txn, DELIVERIES, "deliveries", report)?;
    decode_all::<Attempt>(txn, ATTEMPTS, "attempts", report)?;
    let n = super::idempotency::check_records(txn, &mut |e| {
        report.problem(false, format!("idempotency records: {e}"))
    })?;
    report.checked.push(("idempotency records".into(), n));
    let mut n = 0;
    for entry in txn.open_table(STATS_BY_MINUTE)?.iter()? {
        let (k, v) = entry?;
        n += 1;
        if let Err(e) = super::stats::check_row(k.value(), v.value()) {
            report.problem(false, format!("per-minute stats: {e}"));
        }
    }
    report.checked.push(("per-minute stats".into(), n));
    Ok(())
}

/// Walks an index table, counting its entries into `n`; each entry `agrees` finds wrong is
/// reported as `{what}: entry … {wrong}`.
fn each_entry<V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<&'static [u8], V>,
    (what, wrong): (&str, &str),
    n: &mut u64,
    report: &mut CheckReport,
    mut agrees: impl FnMut(&[u8], V::SelfType<'_>) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for entry in txn.open_table(def)?.iter()? {
        let (k, v) = entry?;
        *n += 1;
        if !agrees(k.value(), v.value())? {
            report.problem(
                false,
                format!("{what}: entry {} {wrong}", hex_head(k.value())),
            );
        }
    }
    Ok(())
}

fn check_event_indexes(txn: &ReadTransaction, report: &mut CheckReport) -> Result<(), StoreError> {
    let events = txn.open_table(EVENTS)?;
    let gone = "names an event that is gone";
    let mut n = 0;
    each_entry(
        txn,
        EVENT_LOG,
        ("event log", gone),
        &mut n,
        report,
        |_, v| Ok(id_at(v, 0).is_some_and(|id| events.get(id.as_slice()).ok().flatten().is_some())),
    )?;
    each_entry(
        txn,
        EVENTS_BY_LEAD,
        ("events by lead", gone),
        &mut n,
        report,
        |_, v| Ok(events.get(v)?.is_some()),
    )?;
    report.checked.push(("event index entries".into(), n));
    Ok(())
}

fn check_delivery_indexes(
    txn: &ReadTransaction,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let deliveries = txn.open_table(DELIVERIES)?;
    let delivery = |id: Option<[u8; 16]>| -> Result<Option<Delivery>, StoreError> {
        match id {
            Some(id) => load(&deliveries, &id),
            None => Ok(None),
        }
    };
    let mut n = 0;
    let what = ("deliveries by webhook", "has no such delivery");
    each_entry(txn, DELIVERIES_BY_WEBHOOK, what, &mut n, report, |k, ()| {
        let found = delivery(id_at(k, 16))?;
        Ok(found.is_some_and(|d| Some(d.webhook_id.bytes()) == id_at(k, 0)))
    })?;
    let what = ("due deliveries", "is not a delivery due then");
    each_entry(txn, DELIVERIES_DUE, what, &mut n, report, |k, ()| {
        let due = i64_from_key(k.get(16..24).unwrap_or_default());
        Ok(delivery(id_at(k, 24))?.is_some_and(|d| {
            Some(d.webhook_id.bytes()) == id_at(k, 0) && d.next_attempt_at.map(|t| t.ms()) == due
        }))
    })?;
    let what = ("held deliveries", "is not a held delivery");
    each_entry(txn, DELIVERIES_HELD, what, &mut n, report, |k, ()| {
        Ok(delivery(id_at(k, 16))?.is_some_and(|d| d.status == DeliveryStatus::Held))
    })?;
    let what = ("attempts", "belongs to no delivery");
    each_entry(txn, ATTEMPTS, what, &mut n, report, |k, _| {
        Ok(delivery(id_at(k, 0))?.is_some())
    })?;
    let webhooks = txn.open_table(WEBHOOKS)?;
    let what = ("due webhooks", "names no webhook");
    each_entry(txn, WEBHOOKS_DUE, what, &mut n, report, |k, tenant| {
        Ok(match id_at(k, 8) {
            Some(w) => webhooks.get(key(&[tenant, &w]).as_slice())?.is_some(),
            None => false,
        })
    })?;
    report.checked.push(("delivery index entries".into(), n));
    Ok(())
}

/// The first bytes of a key in hex (a tenant id, mostly): enough to find it, without printing
/// the personal data some keys hold.
fn hex_head(k: &[u8]) -> String {
    format!(
        "{}… ({} bytes)",
        hex::encode(&k[..k.len().min(16)]),
        k.len()
    )
}

/// A scratch file beside `data`, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn beside(data: &Path) -> Scratch {
        let mut name = data.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".check-{}", std::process::id()));
        Scratch(data.with_file_name(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn check_lead_indexes(store: &Store, report: &mut CheckReport) -> Result<(), StoreError> {
    let scratch = Scratch::beside(store.path());
    let _ = std::fs::remove_file(&scratch.0);
    // A small cache: the scratch is written once and read once, in order.
    // Private like the data file: it holds a copy of every lead.
    let built = super::backup::create_private(&scratch.0)?;
    store.read(|real| {
        let txn = built.begin_write()?;
        let leads = super::lead_record::rebuild_lead_indexes(&txn, Some(real))?;
        txn.commit()?;
        report
            .checked
            .push(("leads indexed afresh to compare".into(), leads));
        let fresh = built.begin_read()?;
        let mut compared = 0;
        compared += compare(real, &fresh, LEADS_BY_EMAIL, "leads by e-mail", report)?;
        compared += compare(real, &fresh, LEADS_BY_PHONE, "leads by phone", report)?;
        compared += compare(real, &fresh, LEADS_BY_STAGE, "leads by stage", report)?;
        compared += compare(real, &fresh, LEADS_BY_OWNER, "leads by owner", report)?;
        compared += compare(
            real,
            &fresh,
            LEADS_BY_CREATED,
            "leads by created_at",
            report,
        )?;
        compared += compare(
            real,
            &fresh,
            LEADS_BY_UPDATED,
            "leads by updated_at",
            report,
        )?;
        compared += compare(real, &fresh, LEAD_COUNTS, "lead counts", report)?;
        compared += compare(real, &fresh, LEAD_ROWS, "lead rows", report)?;
        compared += compare(real, &fresh, LEAD_TEXT, "lead search text", report)?;
        compared += compare(
            real,
            &fresh,
            LEAD_TERMS,
            "lead filter and search sets",
            report,
        )?;
        compared += compare(
            real,
            &fresh,
            LEADS_BY_FIELD_UPDATED,
            "leads by status or stage, then updated_at",
            report,
        )?;
        compared += compare(
            real,
            &fresh,
            LEAD_UPDATED_COUNTS,
            "lead updated_at counts",
            report,
        )?;
        for problem in super::lead_index::compare_ordinals(real, &fresh)? {
            report.problem(true, problem);
        }
        report.checked.push(("lead index entries".into(), compared));
        Ok(())
    })?;
    drop(built);
    Ok(())
}

/// A key and its value, as bytes.
type Pair = (Vec<u8>, Vec<u8>);

/// Compares one table of the file with the same table built afresh: entries missing, extra,
/// or with another value, counted (the first of each named by its key's head).
fn compare<V: redb::Value + 'static>(
    real: &ReadTransaction,
    fresh: &ReadTransaction,
    def: TableDefinition<&'static [u8], V>,
    what: &str,
    report: &mut CheckReport,
) -> Result<u64, StoreError> {
    let bytes =
        |v: redb::AccessGuard<'_, V>| -> Vec<u8> { V::as_bytes(&v.value()).as_ref().to_vec() };
    let (a, b) = (real.open_table(def)?, fresh.open_table(def)?);
    let (mut a, mut b) = (a.iter()?, b.iter()?);
    let next = |it: &mut redb::Range<'_, &'static [u8], V>| -> Result<Option<Pair>, StoreError> {
        Ok(match it.next() {
            Some(e) => {
                let (k, v) = e?;
                Some((k.value().to_vec(), bytes(v)))
            }
            None => None,
        })
    };
    let (mut x, mut y) = (next(&mut a)?, next(&mut b)?);
    let (mut missing, mut extra, mut differ, mut n) = (0u64, 0u64, 0u64, 0u64);
    let mut first: Option<String> = None;
    loop {
        let step = match (&x, &y) {
            (None, None) => break,
            (Some((ka, va)), Some((kb, vb))) if ka == kb => {
                if va != vb {
                    differ += 1;
                    first.get_or_insert_with(|| format!("{} differs", hex_head(ka)));
                }
                (true, true)
            }
            (Some((ka, _)), Some((kb, _))) if ka < kb => {
                extra += 1;
                first.get_or_insert_with(|| format!("{} should not be there", hex_head(ka)));
                (true, false)
            }
            (Some(_), None) => {
                extra += 1;
                (true, false)
            }
            (_, Some((kb, _))) => {
                missing += 1;
                first.get_or_insert_with(|| format!("{} is missing", hex_head(kb)));
                (false, true)
            }
        };
        n += 1;
        if step.0 {
            x = next(&mut a)?;
        }
        if step.1 {
            y = next(&mut b)?;
        }
    }
    if missing + extra + differ > 0 {
        report.problem(
            true,
            format!(
                "{what}: {missing} entries missing, {extra} that should not be there, {differ} with another value (first: {})",
                first.unwrap_or_default()
            ),
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use crate::domain::contact::Email;
    use crate::domain::lead::LeadInput;
    use crate::store::idempotency::{Outcome, StoredResponse};
    use crate::store::testing::store_with_tenant;

    #[test]
    fn a_tenant_whose_leads_were_all_deleted_checks_clean() {
        let (_dir, store, tenant) = store_with_tenant();
        let input = LeadInput {
            contact_email: Some(Email::parse("gone@example.com").unwrap()),
            ..LeadInput::default()
        };
        let outcome = store
            .create_lead(tenant, input, None, |r| StoredResponse {
                status: 201,
                body: r.map(|a| a.view.lead.id.to_string()).unwrap_or_default(),
                ..StoredResponse::default()
            })
            .unwrap();
        let Outcome::Fresh(created) = outcome else {
            panic!("created")
        };
        let id = crate::domain::ids::LeadId::parse(&created.body).unwrap();
        assert!(store.check().unwrap().is_clean());
        store
            .delete_lead(tenant, id, None, None, |_| StoredResponse::default())
            .unwrap();
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        store.shutdown();
    }
}
