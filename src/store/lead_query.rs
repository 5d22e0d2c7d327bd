//! Listing leads: filters, sort, keyset cursors and `total`.
//!
//! Two plans. With no filter beyond a `*_since` bound on the sort column, the page is a range
//! scan of the `(tenant, sort value, id)` index starting right after the cursor: the cost is the
//! page, not the tenant. Any other filter needs the lead records, so the tenant's leads are read
//! once, in key order, counting matches and keeping only the best `offset + limit + 1` sort keys.

use std::collections::BinaryHeap;
use std::ops::Bound;

use redb::ReadTransaction;

use super::catalog::load_catalog;
use super::codec::decode;
use super::lead_record::{LeadView, lead_key};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::contact::SearchQuery;
use crate::domain::cursor::{Cursor, SortBy, SortDir};
use crate::domain::ids::{LeadId, StageId, TenantId};
use crate::domain::lead::{Lead, LeadLine, LeadStatus};
use crate::domain::time::Timestamp;

#[derive(Debug, Clone)]
pub enum StageFilter {
    Id(StageId),
    Slug(String),
}

#[derive(Debug, Clone)]
pub struct LeadQuery {
    pub status: Option<LeadStatus>,
    pub stage: Option<StageFilter>,
    pub search: Option<SearchQuery>,
    pub created_since: Option<Timestamp>,
    pub updated_since: Option<Timestamp>,
    pub lead_line: Option<LeadLine>,
    pub sort_by: SortBy,
    pub sort_dir: SortDir,
    pub cursor: Option<Cursor>,
    pub limit: usize,
    pub offset: usize,
}

pub struct LeadPage {
    pub leads: Vec<LeadView>,
    pub total: u64,
    pub next_cursor: Option<Cursor>,
}

/// A position in the requested order, comparable as a plain tuple: nulls last in both
/// directions, then the sort value, then the id; descending order flips the bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position(u8, u64, u128);

impl Position {
    fn new(value: Option<i64>, id: LeadId, dir: SortDir) -> Position {
        let v = value.map_or(u64::MAX, |v| (v as u64) ^ (1 << 63));
        let id = u128::from_be_bytes(id.bytes());
        match dir {
            SortDir::Asc => Position(u8::from(value.is_none()), v, id),
            SortDir::Desc => Position(u8::from(value.is_none()), !v, !id),
        }
    }
}

fn sort_value(lead: &Lead, sort_by: SortBy) -> Option<i64> {
    match sort_by {
        SortBy::CreatedAt => Some(lead.created_at.ms()),
        SortBy::UpdatedAt => Some(lead.updated_at.ms()),
        SortBy::LastInteractionAt => lead.last_interaction_at.map(Timestamp::ms),
    }
}

struct Filter<'a> {
    query: &'a LeadQuery,
    stage: Option<StageId>,
}

impl Filter<'_> {
    fn matches(&self, lead: &Lead) -> bool {
        let q = self.query;
        q.status.is_none_or(|s| lead.status == s)
            && self.stage.is_none_or(|s| lead.stage_id == s)
            && q.created_since.is_none_or(|t| lead.created_at >= t)
            && q.updated_since.is_none_or(|t| lead.updated_at >= t)
            // A lead whose custom fields do not decode matches no lead_line; rendering it, were
            // it on a page, reports the damage.
            && q.lead_line.is_none_or(
                |line| matches!(lead.lead_line(), Ok(Some(l)) if l == line.as_str()),
            )
            && q.search.as_ref().is_none_or(|s| {
                s.matches(
                    lead.contact_name.as_deref(),
                    lead.contact_email.as_deref(),
                    lead.contact_phone.as_deref(),
                )
            })
    }

    /// Whether the sort index alone can answer: only a `*_since` bound on the sort column.
    fn index_only(&self) -> Option<Option<Timestamp>> {
        let q = self.query;
        let plain = q.status.is_none()
            && self.stage.is_none()
            && q.lead_line.is_none()
            && q.search.is_none();
        match q.sort_by {
            SortBy::CreatedAt if plain && q.updated_since.is_none() => Some(q.created_since),
            SortBy::UpdatedAt if plain && q.created_since.is_none() => Some(q.updated_since),
            _ => None,
        }
    }
}

impl Store {
    pub fn list_leads(&self, tenant: TenantId, query: &LeadQuery) -> Result<LeadPage, StoreError> {
        self.read(|txn| {
            let catalog = load_catalog(txn, tenant)?;
            let stage = match &query.stage {
                None => None,
                Some(StageFilter::Id(id)) => Some(*id),
                Some(StageFilter::Slug(slug)) => Some(catalog.stage_by_slug(slug)?.id),
            };
            let filter = Filter { query, stage };
            let (leads, total) = match filter.index_only() {
                Some(since) => index_page(txn, tenant, query, since)?,
                None => scan_page(txn, tenant, &filter)?,
            };
            let mut leads = leads;
            let more = leads.len() > query.limit;
            leads.truncate(query.limit);
            let next_cursor = match (more, query.sort_by, leads.last()) {
                (true, SortBy::CreatedAt | SortBy::UpdatedAt, Some(last)) => Some(Cursor {
                    sort_by: query.sort_by,
                    sort_dir: query.sort_dir,
                    last_value_ms: sort_value(last, query.sort_by).unwrap_or_default(),
                    last_id: last.id.uuid(),
                }),
                _ => None,
            };
            let leads = leads
                .into_iter()
                .map(|lead| LeadView::new(lead, &catalog))
                .collect::<Result<_, _>>()?;
            Ok(LeadPage {
                leads,
                total,
                next_cursor,
            })
        })
    }
}

/// The page (`limit + 1` leads after `offset`) in order from the sort index, and the number matching.
fn index_page(
    txn: &ReadTransaction,
    tenant: TenantId,
    query: &LeadQuery,
    since: Option<Timestamp>,
) -> Result<(Vec<Lead>, u64), StoreError> {
    let index = txn.open_table(match query.sort_by {
        SortBy::CreatedAt => LEADS_BY_CREATED,
        _ => LEADS_BY_UPDATED,
    })?;
    let prefix = tenant.bytes();
    let lower = key(&[&prefix, &i64_key(since.map_or(i64::MIN, Timestamp::ms))]);
    let upper = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; 41]);
    let total = match since {
        None => txn
            .open_table(LEAD_COUNTS)?
            .get(prefix.as_slice())?
            .map_or(0, |v| v.value()),
        Some(_) => index.range(lower.as_slice()..upper.as_slice())?.count() as u64,
    };
    let after = query
        .cursor
        .as_ref()
        .map(|c| key(&[&prefix, &i64_key(c.last_value_ms), c.last_id.as_bytes()]));
    let (start, end) = match (query.sort_dir, &after) {
        (SortDir::Asc, Some(after)) => (
            Bound::Excluded(after.as_slice()),
            Bound::Excluded(upper.as_slice()),
        ),
        (SortDir::Desc, Some(after)) => (
            Bound::Included(lower.as_slice()),
            Bound::Excluded(after.as_slice()),
        ),
        (_, None) => (
            Bound::Included(lower.as_slice()),
            Bound::Excluded(upper.as_slice()),
        ),
    };
    let range = index.range::<&[u8]>((start, end))?;
    let keys: Vec<Vec<u8>> = match query.sort_dir {
        SortDir::Asc => page_keys(range, query)?,
        SortDir::Desc => page_keys(range.rev(), query)?,
    };
    let leads_table = txn.open_table(LEADS)?;
    let mut leads = Vec::with_capacity(keys.len());
    for k in &keys {
        let id = LeadId::from_bytes(
            id_at(k, 24).ok_or_else(|| StoreError::Corrupt("short index key".into()))?,
        );
        if let Some(v) = leads_table.get(lead_key(tenant, id).as_slice())? {
            leads.push(decode(v.value())?);
        }
    }
    Ok((leads, total))
}

/// The index keys of the page: `offset` skipped, then `limit + 1`.
fn page_keys<'a>(
    entries: impl Iterator<
        Item = Result<
            (
                redb::AccessGuard<'a, &'static [u8]>,
                redb::AccessGuard<'a, ()>,
            ),
            redb::StorageError,
        >,
    >,
    query: &LeadQuery,
) -> Result<Vec<Vec<u8>>, StoreError> {
    entries
        .skip(query.offset)
        .take(query.limit + 1)
        .map(|entry| Ok(entry?.0.value().to_vec()))
        .collect()
}

/// One pass over the tenant's leads: counts matches, keeps the best positions after the cursor.
fn scan_page(
    txn: &ReadTransaction,
    tenant: TenantId,
    filter: &Filter<'_>,
) -> Result<(Vec<Lead>, u64), StoreError> {
    let query = filter.query;
    // An offset beyond the matches only makes the heap hold every match: never more.
    let wanted = query.offset.saturating_add(query.limit + 1);
    let after = query.cursor.as_ref().map(|c| {
        Position::new(
            Some(c.last_value_ms),
            LeadId::from_uuid(c.last_id),
            query.sort_dir,
        )
    });
    let table = txn.open_table(LEADS)?;
    let prefix = tenant.bytes();
    let mut total = 0u64;
    let mut best: BinaryHeap<(Position, [u8; 16])> =
        BinaryHeap::with_capacity(wanted.min(4096) + 1);
    for entry in prefixed(&table, &prefix)? {
        let lead: Lead = decode(entry?.1.value())?;
        if !filter.matches(&lead) {
            continue;
        }
        total += 1;
        let position = Position::new(sort_value(&lead, query.sort_by), lead.id, query.sort_dir);
        if after.is_some_and(|a| position <= a) {
            continue;
        }
        best.push((position, lead.id.bytes()));
        if best.len() > wanted {
            best.pop();
        }
    }
    let ordered = best.into_sorted_vec();
    let mut leads = Vec::with_capacity(ordered.len());
    for (_, id) in ordered.into_iter().skip(query.offset) {
        if let Some(v) = table.get(lead_key(tenant, LeadId::from_bytes(id)).as_slice())? {
            leads.push(decode(v.value())?);
        }
    }
    Ok((leads, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_value_then_id_with_nulls_last() {
        let a = LeadId::new();
        let b = LeadId::new();
        for dir in [SortDir::Asc, SortDir::Desc] {
            let null = Position::new(None, a, dir);
            assert!(
                Position::new(Some(5), a, dir) < null,
                "nulls last ({dir:?})"
            );
            assert!(Position::new(Some(-5), b, dir) < null);
        }
        assert!(Position::new(Some(1), b, SortDir::Asc) < Position::new(Some(2), a, SortDir::Asc));
        assert!(
            Position::new(Some(1), a, SortDir::Asc) < Position::new(Some(1), b, SortDir::Asc),
            "ties by id"
        );
        assert!(
            Position::new(Some(2), a, SortDir::Desc) < Position::new(Some(1), b, SortDir::Desc)
        );
        assert!(
            Position::new(Some(1), b, SortDir::Desc) < Position::new(Some(1), a, SortDir::Desc)
        );
        assert!(Position::new(Some(-1), a, SortDir::Asc) < Position::new(Some(0), a, SortDir::Asc));
    }
}
