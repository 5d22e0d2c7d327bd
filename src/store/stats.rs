//! Per-minute activity counts for the admin page's charts (spec §15): leads created, events,
//! and delivery attempts by outcome, per tenant and for the whole server, kept for two days.
//!
//! They are written with the activity they count, so they survive a restart and a rolled-back
//! write counts nothing. A job notes its counts in a per-thread list; the writer adds them up
//! once per batch just before the commit ([`flush`], one read and write per tenant and minute
//! however many leads the batch created), and drops them with a batch that does not commit
//! ([`discard`]), as it does the lead index's notes.

use std::cell::RefCell;
use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use super::tables::{STATS_BY_MINUTE, Txn, i64_from_key, i64_key};
use super::{Store, StoreError};
use crate::domain::ids::TenantId;
use crate::domain::time::Timestamp;

/// How long the counts are kept: the page asks for a day at most.
pub const KEPT_MINUTES: i64 = 2 * 24 * 60;

const SERVER: [u8; 16] = [0; 16];
const MINUTE_MS: i64 = 60_000;

/// What happened in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub leads_created: u64,
    pub events: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// Whether `k`, `v` is a well-formed stats row (for `leadbase check`).
pub(crate) fn check_row(k: &[u8], v: &[u8]) -> Result<(), StoreError> {
    minute_in(k).ok_or_else(|| StoreError::Corrupt("a stats key of the wrong size".into()))?;
    Counts::decode(v).map(drop)
}

/// One thing to count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counted {
    LeadCreated,
    Event,
    /// An attempt that delivered.
    Delivered,
    /// An attempt that did not (whether or not it will be retried).
    Failed,
}

impl Counts {
    fn add(&mut self, counted: Counted, n: u64) {
        let field = match counted {
            Counted::LeadCreated => &mut self.leads_created,
            Counted::Event => &mut self.events,
            Counted::Delivered => &mut self.delivered,
            Counted::Failed => &mut self.failed,
        };
        *field = field.saturating_add(n);
    }

    fn plus(mut self, other: Counts) -> Counts {
        self.leads_created = self.leads_created.saturating_add(other.leads_created);
        self.events = self.events.saturating_add(other.events);
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.failed = self.failed.saturating_add(other.failed);
        self
    }

    fn encode(&self) -> [u8; 32] {
        let mut out = [0; 32];
        for (i, n) in [self.leads_created, self.events, self.delivered, self.failed]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&n.to_be_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Counts, StoreError> {
        let n = |i: usize| -> Result<u64, StoreError> {
            bytes
                .get(i * 8..i * 8 + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("a minute's stats of the wrong size".into()))
        };
        if bytes.len() != 32 {
            return Err(StoreError::Corrupt(
                "a minute's stats of the wrong size".into(),
            ));
        }
        Ok(Counts {
            leads_created: n(0)?,
            events: n(1)?,
            delivered: n(2)?,
            failed: n(3)?,
        })
    }
}

fn key(tenant: &[u8; 16], minute: i64) -> [u8; 24] {
    let mut k = [0; 24];
    k[..16].copy_from_slice(tenant);
    k[16..].copy_from_slice(&i64_key(minute));
    k
}

/// The minute of a key, if it is one.
fn minute_in(k: &[u8]) -> Option<i64> {
    (k.len() == 24).then(|| i64_from_key(&k[16..])).flatten()
}

/// A row's counts. The counts are telemetry: a row that does not decode (a damaged file;
/// `leadbase check` names it) reads as nothing and is written over, rather than failing the
/// writes that count into it.
fn counts_or_nothing(bytes: &[u8]) -> Counts {
    Counts::decode(bytes).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "a minute's stats did not decode; counted from zero");
        Counts::default()
    })
}

fn minute_of(at: Timestamp) -> i64 {
    at.ms().div_euclid(MINUTE_MS)
}

thread_local! {
    static PENDING: RefCell<BTreeMap<[u8; 24], Counts>> = const { RefCell::new(BTreeMap::new()) };
}

/// Counts one `counted` for `tenant` (and the server) in the minute of `at`, when this
/// thread's batch commits.
pub(crate) fn note(tenant: TenantId, at: Timestamp, counted: Counted) {
    let minute = minute_of(at);
    PENDING.with_borrow_mut(|p| {
        for who in [tenant.bytes(), SERVER] {
            p.entry(key(&who, minute)).or_default().add(counted, 1);
        }
    });
}

/// Adds this thread's noted counts to `txn`; the writer calls it before every commit.
pub(crate) fn flush(txn: &WriteTransaction) -> Result<(), StoreError> {
    let pending = PENDING.with_borrow_mut(std::mem::take);
    if pending.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(STATS_BY_MINUTE)?;
    for (k, add) in pending {
        let now = match table.get(k.as_slice())? {
            Some(v) => counts_or_nothing(v.value()),
            None => Counts::default(),
        };
        table.insert(k.as_slice(), now.plus(add).encode().as_slice())?;
    }
    Ok(())
}

/// Forgets this thread's noted counts: their batch did not commit.
pub(crate) fn discard() {
    PENDING.with_borrow_mut(BTreeMap::clear);
}

/// A run of minutes, oldest first, the current one last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The first minute's start.
    pub start: Timestamp,
    pub minutes: Vec<Counts>,
}

impl Store {
    /// The last `minutes` minutes up to now, for `tenant` or (`None`) the server; minutes with
    /// nothing in them are zeros.
    pub fn stats(&self, tenant: Option<TenantId>, minutes: u32) -> Result<Series, StoreError> {
        let last = minute_of(self.now());
        let first = last - i64::from(minutes.max(1)) + 1;
        let who = tenant.map_or(SERVER, |t| t.bytes());
        self.read(|txn| {
            let table = txn.table(STATS_BY_MINUTE)?;
            let mut counts = vec![Counts::default(); (last - first + 1) as usize];
            let (from, to) = (key(&who, first), key(&who, last));
            for entry in table.range(from.as_slice()..=to.as_slice())? {
                let (k, v) = entry?;
                if let Some(minute) = minute_in(k.value()) {
                    counts[(minute - first) as usize] = counts_or_nothing(v.value());
                }
            }
            Ok(Series {
                start: Timestamp(first * MINUTE_MS),
                minutes: counts,
            })
        })
    }

    /// Drops the counts of minutes more than [`KEPT_MINUTES`] old; returns how many went.
    /// Keys are tenant first: each tenant's old minutes are the start of its range, found by
    /// skipping from one tenant to the next, so the kept minutes are never read.
    pub fn prune_stats(&self) -> Result<usize, StoreError> {
        let cutoff = minute_of(self.now()) - KEPT_MINUTES;
        self.write(move |txn| {
            let mut table = txn.open_table(STATS_BY_MINUTE)?;
            let (mut pruned, mut from) = (0, Some(key(&SERVER, i64::MIN)));
            while let Some(start) = from.take() {
                let Some(first) = table.range(start.as_slice()..)?.next().transpose()? else {
                    break;
                };
                let tenant: [u8; 16] = first.0.value()[..16]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("a stats key of the wrong size".into()))?;
                drop(first);
                let old = key(&tenant, i64::MIN)..key(&tenant, cutoff);
                let range = old.start.as_slice()..old.end.as_slice();
                for gone in table.extract_from_if(range, |_, _| true)? {
                    gone?;
                    pruned += 1;
                }
                from = u128::from_be_bytes(tenant)
                    .checked_add(1)
                    .map(|next| key(&next.to_be_bytes(), i64::MIN));
            }
            Ok(pruned)
        })
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;
    use crate::store::testing::store_with_tenant;

    fn rows(store: &Store) -> u64 {
        store
            .read(|txn| Ok(txn.open_table(STATS_BY_MINUTE)?.len()?))
            .unwrap()
    }

    #[test]
    fn a_committed_write_counts_in_its_minute_and_a_discarded_one_does_not() {
        let (_dir, store, tenant) = store_with_tenant();
        // A second into a minute: what follows stays within it on the slowest machine.
        let into = store.now().ms().rem_euclid(MINUTE_MS) as u32;
        store.clock().advance(MINUTE_MS as u32 - into + 1_000);
        let event = move |_: &WriteTransaction, now| {
            note(tenant, now, Counted::Event);
            Ok(())
        };
        store.write_now(event).unwrap();
        store.write_now(event).unwrap();
        let at = store.now();
        store
            .write_discarded(move |_| {
                note(tenant, at, Counted::LeadCreated);
                Ok(())
            })
            .unwrap();
        store.clock().advance(60_000);
        store.write_now(event).unwrap();
        let series = store.stats(Some(tenant), 3).unwrap();
        let events: Vec<u64> = series.minutes.iter().map(|c| c.events).collect();
        assert_eq!(events, [0, 2, 1]);
        assert!(
            series.minutes.iter().all(|c| c.leads_created == 0),
            "discarded"
        );
        assert_eq!(series.start.ms() % MINUTE_MS, 0);
        assert_eq!(store.stats(None, 3).unwrap(), series, "the server's sums");
        let other = TenantId::parse("01900000-0000-7000-8000-000000000000").unwrap();
        assert!(
            store
                .stats(Some(other), 3)
                .unwrap()
                .minutes
                .iter()
                .all(|c| *c == Counts::default())
        );
    }

    #[test]
    fn a_damaged_row_reads_as_nothing_and_the_next_count_writes_it_over() {
        let (_dir, store, tenant) = store_with_tenant();
        let k = key(&tenant.bytes(), minute_of(store.now()));
        store
            .write(move |txn| {
                txn.open_table(STATS_BY_MINUTE)?
                    .insert(k.as_slice(), [1u8, 2, 3].as_slice())?;
                Ok(())
            })
            .unwrap();
        assert!(check_row(&k, &[1, 2, 3]).is_err(), "check names it");
        assert_eq!(
            store.stats(Some(tenant), 1).unwrap().minutes[0],
            Counts::default()
        );
        store
            .write_now(move |_, now| {
                note(tenant, now, Counted::LeadCreated);
                Ok(())
            })
            .unwrap();
        let two = store.stats(Some(tenant), 2).unwrap();
        assert_eq!(two.minutes.iter().map(|c| c.leads_created).sum::<u64>(), 1);
    }

    #[test]
    fn minutes_older_than_two_days_are_pruned_for_every_tenant() {
        let (_dir, store, tenant) = store_with_tenant();
        let second = store
            .create_tenant(crate::domain::catalog::Name::parse("name", "Beta").unwrap())
            .unwrap()
            .id;
        let count = |store: &Store| {
            store
                .write_now(move |_, now| {
                    note(tenant, now, Counted::Delivered);
                    note(second, now, Counted::Failed);
                    Ok(())
                })
                .unwrap()
        };
        count(&store);
        store.clock().advance(60_000);
        count(&store);
        assert_eq!(rows(&store), 6, "two minutes of two tenants and the server");
        assert_eq!(store.prune_stats().unwrap(), 0, "nothing is two days old");
        store.clock().advance(2 * 24 * 3_600_000);
        count(&store);
        assert_eq!(store.prune_stats().unwrap(), 3, "the first minute of each");
        assert_eq!(rows(&store), 6);
        let kept = store.stats(Some(second), 1).unwrap();
        assert_eq!(kept.minutes[0].failed, 1);
    }

    #[test]
    fn counts_round_trip_and_add_up() {
        let mut c = Counts::default();
        c.add(Counted::LeadCreated, 3);
        c.add(Counted::Failed, u64::MAX);
        c.add(Counted::Failed, 1);
        let d = Counts::decode(&c.encode()).unwrap();
        assert_eq!(d, c);
        assert_eq!(d.failed, u64::MAX, "saturates");
        assert!(Counts::decode(&[0; 31]).is_err());
        let sum = d.plus(Counts {
            events: 2,
            ..Counts::default()
        });
        assert_eq!((sum.leads_created, sum.events), (3, 2));
    }
}
