//! Listing leads: filters, sort, keyset cursors and `total`.
//!
//! The filters become one set of the tenant's lead ordinals (`lead_index`): the status, stage
//! and `lead_line` sets, each read whole (their sizes pick the smallest to intersect first and
//! the status or stage whose own order to walk), then the `*_since` bounds and the search
//! (read only where the set so far has members). `total` is the set's size. The page then comes one of
//! two ways: walking the sort index from the cursor and keeping the entries in the set (the
//! cost is the page divided by the set's share of the tenant), or, for a small set (or a walk
//! that runs long because the matches sit at the far end of the order), reading the sort
//! values of the set's members and keeping the best `offset + limit + 1`. With no filter at
//! all the walk keeps every entry and the count is kept per tenant.

use std::collections::BinaryHeap;
use std::ops::Bound;

use redb::ReadTransaction;

use super::catalog::{Catalog, load_catalog};
use super::codec::decode;
use super::lead_index::{Column, ROW_COST, Row, RowsAlong, Set, TenantIndex, Term, field_of, term};
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

impl LeadQuery {
    /// How many matches in order a page reads: `offset` skipped, `limit`, and one more to
    /// know whether another page follows.
    fn wanted(&self) -> u64 {
        self.offset.saturating_add(self.limit + 1) as u64
    }
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

/// A cursor's sort value for a lead without one (`last_interaction_at` of a lead with no
/// interaction): no real time is this far back, and nulls sort last.
const NULL_VALUE: i64 = i64::MIN;

fn sort_value(lead: &Lead, sort_by: SortBy) -> Option<i64> {
    match sort_by {
        SortBy::CreatedAt => Some(lead.created_at.ms()),
        SortBy::UpdatedAt => Some(lead.updated_at.ms()),
        SortBy::LastInteractionAt => lead.last_interaction_at.map(Timestamp::ms),
    }
}

fn row_value(row: &Row, sort_by: SortBy) -> Option<i64> {
    match sort_by {
        SortBy::CreatedAt => Some(row.created_at),
        SortBy::UpdatedAt => Some(row.updated_at),
        SortBy::LastInteractionAt => row.last_interaction_at,
    }
}

/// Index entries a walk reads at least before it may give up for reading the set's members.
const WALK_BUDGET: u64 = 50_000;

struct Filter<'a> {
    query: &'a LeadQuery,
    stage: Option<StageId>,
}

impl<'a> Filter<'a> {
    /// The query's filters, its stage filter resolved against the tenant's stages.
    fn new(query: &'a LeadQuery, catalog: &Catalog) -> Result<Filter<'a>, StoreError> {
        let stage = match &query.stage {
            None => None,
            Some(StageFilter::Id(id)) => Some(*id),
            Some(StageFilter::Slug(slug)) => Some(catalog.stage_by_slug(slug)?.id),
        };
        Ok(Filter { query, stage })
    }

    fn search(&self) -> Option<&SearchQuery> {
        self.query.search.as_ref().filter(|s| !s.text().is_empty())
    }

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

    /// The matching leads as a plan: their set of ordinals (None: every lead), how many, and
    /// where the page is best walked.
    fn matching(
        &self,
        ix: &TenantIndex<'_, ReadTransaction>,
        tenant_size: u64,
    ) -> Result<Matching, StoreError> {
        let q = self.query;
        // Each field's set alone first, to intersect the smallest first and to know which
        // status or stage to walk the composite index of.
        let mut sets: Vec<(Option<Term>, Set)> = Vec::new();
        for (t, composite) in [
            (q.status.map(term::status), true),
            (self.stage.map(term::stage), true),
            (q.lead_line.map(|l| term::lead_line(l.as_str())), false),
        ] {
            if let Some(t) = t {
                let set = ix.term(&t, None)?;
                sets.push((composite.then_some(t), set));
            }
        }
        sets.sort_by_key(|(_, s)| s.len());
        let mut walk = Walk::Sorted;
        if let Some((t, s)) = sets.iter().find(|(t, _)| t.is_some()) {
            walk = Walk::Field(t.expect("found"), s.len());
        }
        let mut set: Option<Set> = None;
        for (_, s) in sets {
            set = Some(intersect(set, s));
        }
        if let Some(since) = q.created_since {
            let bound = match ix.created_since(since)? {
                Some(range) => range,
                None => ix.since(Column::Created, since, set.as_ref())?,
            };
            set = Some(intersect(set, bound));
        }
        let mut check_updated = None;
        let mut total = None;
        if let Some(since) = q.updated_since {
            if set.is_none() && self.search().is_none() && q.sort_by != SortBy::LastInteractionAt {
                // Only this bound: counted from the updated-at counts; the walk starts at it
                // (sorted by updated_at) or checks each lead's row (by created_at).
                let n = ix.count_updated_since(since, tenant_size)?;
                let wanted = q.wanted();
                // Checking rows costs some ten index steps each: with few matches, reading
                // the matches off the updated-at index is cheaper than looking for them.
                if q.sort_by != SortBy::UpdatedAt
                    && n.saturating_mul(n) < wanted.saturating_mul(tenant_size).saturating_mul(10)
                {
                    set = Some(ix.since(Column::Updated, since, None)?);
                } else {
                    total = Some(n);
                    check_updated = (q.sort_by != SortBy::UpdatedAt).then_some(since);
                }
            } else {
                let bound = ix.since(Column::Updated, since, set.as_ref())?;
                set = Some(intersect(set, bound));
            }
        }
        if let Some(search) = self.search() {
            let within = match set {
                Some(s) => s,
                None => ix.all()?,
            };
            set = Some(ix.search(search, within)?);
        }
        let total = match (&set, total) {
            (Some(s), _) => s.len(),
            (None, Some(n)) => n,
            (None, None) => tenant_size,
        };
        Ok(Matching {
            set,
            total,
            walk,
            check_updated,
        })
    }

    /// A lead's `updated_at` is never before its `created_at` (it only grows), so a
    /// `created_since` bound holds for the updated-at order too.
    fn sort_bound(&self) -> Option<Timestamp> {
        let q = self.query;
        match q.sort_by {
            SortBy::CreatedAt => q.created_since,
            SortBy::UpdatedAt => q.updated_since.max(q.created_since),
            SortBy::LastInteractionAt => None,
        }
    }
}

/// A query's matches, and how to page through them.
struct Matching {
    /// None: every lead, or every lead passing `check_updated`.
    set: Option<Set>,
    total: u64,
    walk: Walk,
    /// Walked entries must have been updated at or after this (their rows say).
    check_updated: Option<Timestamp>,
}

/// Which index a walk reads.
#[derive(Clone, Copy)]
enum Walk {
    /// The tenant's sort index.
    Sorted,
    /// By updated_at: the composite index's part for this status or stage, which holds this
    /// many leads (by created_at the sort index is walked).
    Field(Term, u64),
}

fn intersect(set: Option<Set>, with: Set) -> Set {
    match set {
        Some(mut s) => {
            s.and(&with);
            s
        }
        None => with,
    }
}

/// What an export hears, in order: the custom field slugs, then each lead.
pub enum Exported<'a> {
    Fields(&'a [String]),
    Lead(&'a LeadView),
}

impl Store {
    /// Every lead of the tenant matching `query`'s filters (its sort, cursor, limit and offset
    /// are not used), oldest first, from one read transaction: `sink` hears the tenant's custom
    /// field slugs first, then each lead, and returns whether to go on. Memory stays flat
    /// whatever the tenant's size: one lead at a time.
    pub fn export_leads(
        &self,
        tenant: TenantId,
        query: &LeadQuery,
        mut sink: impl FnMut(Exported<'_>) -> bool,
    ) -> Result<(), StoreError> {
        self.read(|txn| {
            let catalog = load_catalog(txn, tenant)?;
            let filter = Filter::new(query, &catalog)?;
            let slugs: Vec<String> = catalog.fields.iter().map(|f| f.slug.clone()).collect();
            if !sink(Exported::Fields(&slugs)) {
                return Ok(());
            }
            let index = txn.open_table(LEADS_BY_CREATED)?;
            let leads = txn.open_table(LEADS)?;
            let prefix = tenant.bytes();
            for entry in prefixed(&index, &prefix)? {
                let (k, _) = entry?;
                let Some(id) = id_at(k.value(), 16 + 8) else {
                    continue;
                };
                let Some(lead) = load::<Lead>(&leads, &lead_key(tenant, LeadId::from_bytes(id)))?
                else {
                    continue;
                };
                if !filter.matches(&lead) {
                    continue;
                }
                if !sink(Exported::Lead(&LeadView::new(lead, &catalog)?)) {
                    break;
                }
            }
            Ok(())
        })
    }

    pub fn list_leads(&self, tenant: TenantId, query: &LeadQuery) -> Result<LeadPage, StoreError> {
        self.read(|txn| {
            let catalog = load_catalog(txn, tenant)?;
            let filter = Filter::new(query, &catalog)?;
            let ix = TenantIndex::open(txn, tenant)?;
            let tenant_size = txn
                .open_table(LEAD_COUNTS)?
                .get(tenant.bytes().as_slice())?
                .map_or(0, |v| v.value());
            let matching = filter.matching(&ix, tenant_size)?;
            let ids = page(txn, &ix, &filter, &matching, tenant_size)?;
            let total = matching.total;
            let leads_table = txn.open_table(LEADS)?;
            let mut leads = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(v) = leads_table.get(lead_key(tenant, id).as_slice())? {
                    leads.push(decode::<Lead>(v.value())?);
                }
            }
            let more = leads.len() > query.limit;
            leads.truncate(query.limit);
            let next_cursor = match (more, leads.last()) {
                (true, Some(last)) => Some(Cursor {
                    sort_by: query.sort_by,
                    sort_dir: query.sort_dir,
                    last_value_ms: sort_value(last, query.sort_by).unwrap_or(NULL_VALUE),
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

/// The ids of the page (`offset` skipped, then `limit + 1`) among the matches, in order.
fn page(
    txn: &ReadTransaction,
    ix: &TenantIndex<'_, ReadTransaction>,
    filter: &Filter<'_>,
    matching: &Matching,
    tenant_size: u64,
) -> Result<Vec<LeadId>, StoreError> {
    let query = filter.query;
    if matching.total == 0 {
        return Ok(Vec::new());
    }
    if query.sort_by == SortBy::CreatedAt && ix.in_created_order() {
        if let Some(set) = &matching.set {
            let ids = by_number(txn, ix, query, set, None, u64::MAX)?;
            return Ok(ids.expect("an unbounded read finishes"));
        }
        if let Some(since) = matching.check_updated {
            // Every lead's row is looked at in number order until the page is full; when the
            // matches sit far along, the set read off the updated-at index is cheaper.
            let estimate = query.wanted().saturating_mul(tenant_size) / matching.total;
            let budget = estimate
                .saturating_mul(4)
                .max(matching.total.min(WALK_BUDGET) / 2);
            if let Some(ids) = by_number(txn, ix, query, &ix.all()?, Some(since), budget)? {
                return Ok(ids);
            }
            let set = ix.since(Column::Updated, since, None)?;
            return Ok(by_number(txn, ix, query, &set, None, u64::MAX)?
                .expect("an unbounded read finishes"));
        }
    }
    let Some(set) = &matching.set else {
        if query.sort_by == SortBy::LastInteractionAt {
            return fetch(ix, query, &ix.all()?);
        }
        let Some(since) = matching.check_updated else {
            return Ok(
                walk(txn, ix, query, filter.sort_bound(), matching, u64::MAX)?
                    .expect("an unbounded walk finishes"),
            );
        };
        // Each walked lead's row is read: when the matches sit far along the order, the set
        // read off the updated-at index is cheaper to walk with.
        let wanted = query.wanted();
        let estimate = wanted.saturating_mul(tenant_size) / matching.total;
        let budget = estimate.saturating_mul(4).max(WALK_BUDGET / ROW_COST / 4);
        return match walk(txn, ix, query, filter.sort_bound(), matching, budget)? {
            Some(ids) => Ok(ids),
            None => {
                let set = ix.since(Column::Updated, since, None)?;
                let matching = Matching {
                    total: set.len(),
                    set: Some(set),
                    walk: Walk::Sorted,
                    check_updated: None,
                };
                page(txn, ix, filter, &matching, tenant_size)
            }
        };
    };
    if query.sort_by == SortBy::LastInteractionAt {
        return fetch(ix, query, set);
    }
    let wanted = query.wanted();
    // Entries a walk is expected to read if the matches are spread evenly over its index.
    let walked = match (matching.walk, query.sort_by) {
        (Walk::Field(_, n), SortBy::UpdatedAt) => n,
        _ => tenant_size,
    };
    let walk_estimate = wanted.saturating_mul(walked.max(matching.total)) / matching.total;
    let fetch_cost = matching.total.saturating_mul(ix.row_cost(set));
    if fetch_cost < walk_estimate {
        return fetch(ix, query, set);
    }
    // Never walk further than a quarter of what reading the members' rows would cost (a walk
    // runs long when the matches sit at the far end of the order).
    let budget = walk_estimate
        .saturating_mul(4)
        .max(WALK_BUDGET.min(fetch_cost / 4));
    match walk(txn, ix, query, filter.sort_bound(), matching, budget)? {
        Some(ids) => Ok(ids),
        None => fetch(ix, query, set),
    }
}

/// Walks the sort index (or a status's or stage's part of the composite one) from the cursor,
/// never before the `*_since` bound on the sort column, keeping the matching entries: the
/// page's ids, or None when `budget` entries were read first.
fn walk(
    txn: &ReadTransaction,
    ix: &TenantIndex<'_, ReadTransaction>,
    query: &LeadQuery,
    since: Option<Timestamp>,
    matching: &Matching,
    budget: u64,
) -> Result<Option<Vec<LeadId>>, StoreError> {
    let tenant = ix.tenant();
    let (index, prefix) = match (matching.walk, query.sort_by) {
        (Walk::Field(t, _), SortBy::UpdatedAt) => (
            LEADS_BY_FIELD_UPDATED,
            key(&[&tenant.bytes(), &field_of(&t)]),
        ),
        (_, SortBy::CreatedAt) => (LEADS_BY_CREATED, tenant.bytes().to_vec()),
        _ => (LEADS_BY_UPDATED, tenant.bytes().to_vec()),
    };
    let index = txn.open_table(index)?;
    let (lower, upper) = since_bounds(&prefix, since.map_or(i64::MIN, Timestamp::ms));
    let after = query
        .cursor
        .as_ref()
        .map(|c| key(&[&prefix, &i64_key(c.last_value_ms), c.last_id.as_bytes()]));
    let (start, end) = match (query.sort_dir, &after) {
        // A cursor before the `*_since` bound (descending) leaves nothing.
        (SortDir::Desc, Some(after)) if after.as_slice() <= lower.as_slice() => {
            return Ok(Some(Vec::new()));
        }
        // After the cursor, but never before the `*_since` bound: a cursor from before it (or
        // forged) must not bring back what the bound leaves out.
        (SortDir::Asc, Some(after)) if after.as_slice() >= lower.as_slice() => (
            Bound::Excluded(after.as_slice()),
            Bound::Excluded(upper.as_slice()),
        ),
        (SortDir::Desc, Some(after)) => (
            Bound::Included(lower.as_slice()),
            Bound::Excluded(after.as_slice()),
        ),
        _ => (
            Bound::Included(lower.as_slice()),
            Bound::Excluded(upper.as_slice()),
        ),
    };
    let range = index.range::<&[u8]>((start, end))?;
    let entries: Box<dyn Iterator<Item = _>> = match query.sort_dir {
        SortDir::Asc => Box::new(range),
        SortDir::Desc => Box::new(range.rev()),
    };
    // The rows are read only to check `updated_since`, a lookup each.
    let mut rows = match matching.check_updated {
        Some(since) => Some((since, RowsAlong::new(txn, tenant, false, false)?)),
        None => None,
    };
    let (mut skip, take) = (query.offset, query.limit + 1);
    let mut ids = Vec::with_capacity(take);
    let mut read = 0u64;
    for entry in entries {
        let (k, ordinal) = entry?;
        read += 1;
        if read > budget {
            return Ok(None);
        }
        let ordinal = ordinal.value();
        if matching.set.as_ref().is_some_and(|s| !s.contains(ordinal)) {
            continue;
        }
        if let Some((since, rows)) = &mut rows
            && rows.get(ordinal)?.is_none_or(|r| r.updated_at < since.ms())
        {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let id = id_at(k.value(), prefix.len() + 8)
            .ok_or_else(|| StoreError::Corrupt("short index key".into()))?;
        ids.push(LeadId::from_bytes(id));
        if ids.len() == take {
            break;
        }
    }
    Ok(Some(ids))
}

/// Sorted by created_at while numbers follow creation: `set`'s members in number order are in
/// created order, but for leads created in the same millisecond, which are put in id order as
/// a group. So the page is read from the cursor's number on, a row per member (along the
/// rows when the members are dense), never before `created_since`, and only leads updated at
/// or after `updated_since` (given) kept: the page's ids, or None when `budget` members were
/// looked at first.
fn by_number(
    txn: &ReadTransaction,
    ix: &TenantIndex<'_, ReadTransaction>,
    query: &LeadQuery,
    set: &Set,
    updated_since: Option<Timestamp>,
    budget: u64,
) -> Result<Option<Vec<LeadId>>, StoreError> {
    let descending = query.sort_dir == SortDir::Desc;
    let lowest = query.created_since.map_or(i64::MIN, Timestamp::ms);
    let after = query.cursor.as_ref().map(|c| {
        let position = Position::new(
            Some(c.last_value_ms),
            LeadId::from_uuid(c.last_id),
            query.sort_dir,
        );
        (c.last_value_ms, position)
    });
    // The first number to look at: the first lead created at or after the bound and the
    // cursor's time, or (descending) the last created at or before the cursor's time.
    let start = match (descending, after) {
        (false, after) => {
            let from = lowest.max(after.map_or(i64::MIN, |(at, _)| at));
            ix.first_number_created_from(from)?
        }
        (true, Some((at, _))) => match ix.first_number_created_from(at.saturating_add(1))? {
            0 => return Ok(Some(Vec::new())),
            n => n - 1,
        },
        (true, None) => u32::MAX,
    };
    let mut rows = RowsAlong::new(txn, ix.tenant(), descending, ix.row_cost(set) == 1)?;
    let wanted = query.wanted() as usize;
    let mut page: Vec<(Position, LeadId)> = Vec::new();
    // The leads created in one millisecond, put in order once it is complete.
    let mut tie: Vec<(Position, LeadId)> = Vec::new();
    let mut tie_at = None;
    let mut looked = 0u64;
    for ordinal in set.members_from(start, descending) {
        looked += 1;
        if looked > budget {
            return Ok(None);
        }
        let Some(row) = rows.get(ordinal)? else {
            continue;
        };
        if row.created_at < lowest {
            if descending {
                break;
            }
            continue;
        }
        if tie_at != Some(row.created_at) {
            tie.sort_unstable();
            page.append(&mut tie);
            if page.len() >= wanted {
                break;
            }
            tie_at = Some(row.created_at);
        }
        if updated_since.is_some_and(|t| row.updated_at < t.ms()) {
            continue;
        }
        let position = Position::new(Some(row.created_at), row.id, query.sort_dir);
        if after.is_none_or(|(_, a)| position > a) {
            tie.push((position, row.id));
        }
    }
    tie.sort_unstable();
    page.append(&mut tie);
    Ok(Some(
        page.into_iter()
            .skip(query.offset)
            .take(query.limit + 1)
            .map(|(_, id)| id)
            .collect(),
    ))
}

/// The page's ids from the sort values of `set`'s members: keeps the best `offset + limit + 1`
/// positions after the cursor.
fn fetch(
    ix: &TenantIndex<'_, ReadTransaction>,
    query: &LeadQuery,
    set: &Set,
) -> Result<Vec<LeadId>, StoreError> {
    // An offset beyond the matches only makes the heap hold every match: never more.
    let wanted = query.wanted() as usize;
    let after = query.cursor.as_ref().map(|c| {
        let value = (c.last_value_ms != NULL_VALUE).then_some(c.last_value_ms);
        Position::new(value, LeadId::from_uuid(c.last_id), query.sort_dir)
    });
    let mut best: BinaryHeap<(Position, [u8; 16])> =
        BinaryHeap::with_capacity(wanted.min(4096) + 1);
    ix.rows(set, |_, row| {
        let position = Position::new(row_value(&row, query.sort_by), row.id, query.sort_dir);
        if after.is_some_and(|a| position <= a) {
            return;
        }
        best.push((position, row.id.bytes()));
        if best.len() > wanted {
            best.pop();
        }
    })?;
    Ok(best
        .into_sorted_vec()
        .into_iter()
        .skip(query.offset)
        .map(|(_, id)| LeadId::from_bytes(id))
        .collect())
}

#[cfg(test)]
mod tests {
    use redb::ReadableTable;

    use super::*;
    use crate::domain::contact::Email;
    use crate::domain::interaction::{InteractionInput, InteractionType};
    use crate::domain::lead::{LeadInput, LeadPatch};
    use crate::store::idempotency::{Outcome, StoredResponse};
    use crate::store::testing::store_with_tenant;

    /// xorshift64*: reproducible random data without a dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    fn id_of(outcome: Outcome) -> LeadId {
        match outcome {
            Outcome::Fresh(r) => LeadId::parse(&r.body).expect("the render put the id here"),
            other => panic!("{other:?}"),
        }
    }

    /// Random leads: created a few milliseconds apart (ties included), some touched later, some
    /// given another status.
    fn random_leads(store: &Store, tenant: TenantId, rng: &mut Rng) -> Vec<Lead> {
        let mut ids = Vec::new();
        for i in 0..60 {
            store.clock().advance(rng.below(3) as u32);
            let input = LeadInput {
                contact_email: Some(Email::parse(&format!("lead{i}@example.com")).unwrap()),
                ..LeadInput::default()
            };
            let render = |r: Result<&crate::store::leads::Applied, &StoreError>| StoredResponse {
                status: 201,
                body: r.map(|a| a.view.lead.id.to_string()).unwrap_or_default(),
                ..StoredResponse::default()
            };
            ids.push(id_of(
                store.create_lead(tenant, input, None, render).unwrap(),
            ));
        }
        for _ in 0..40 {
            store.clock().advance(rng.below(4) as u32);
            let id = ids[rng.below(ids.len() as u64) as usize];
            let patch = LeadPatch {
                status: Some(LeadStatus::ALL[rng.below(3) as usize]),
                score: Some(Some(rng.below(1_000) as i64)),
                ..LeadPatch::default()
            };
            store
                .patch_lead(tenant, id, patch, None, None, |_| StoredResponse {
                    status: 200,
                    body: String::new(),
                    ..StoredResponse::default()
                })
                .unwrap();
        }
        // Interactions on about half of them, at times that tie now and then: the rest sort
        // last by last_interaction_at.
        for _ in 0..50 {
            let id = ids[rng.below(ids.len() as u64) as usize];
            let at = store.now().plus_ms(-(rng.below(20) as i64) * 1000);
            let input = InteractionInput {
                kind: InteractionType::Note,
                direction: None,
                occurred_at: Some(at),
                summary: None,
                body: None,
                duration_seconds: None,
            };
            store
                .add_interaction(tenant, id, input, None, |_| StoredResponse {
                    status: 201,
                    body: String::new(),
                    ..StoredResponse::default()
                })
                .unwrap();
        }
        current(store, tenant, &ids)
    }

    /// The leads as stored now.
    fn current(store: &Store, tenant: TenantId, ids: &[LeadId]) -> Vec<Lead> {
        ids.iter()
            .map(|id| store.get_lead(tenant, *id).unwrap().unwrap().lead)
            .collect()
    }

    /// Every page of `query`, following the cursors (the first page keeps its offset): the
    /// ids in order, each page's total checked against `total` when given.
    fn walk_pages(
        store: &Store,
        tenant: TenantId,
        mut query: LeadQuery,
        most: usize,
        total: Option<u64>,
        round: usize,
    ) -> Vec<LeadId> {
        let mut got = Vec::new();
        loop {
            let page = store.list_leads(tenant, &query).unwrap();
            if let Some(total) = total {
                assert_eq!(page.total, total, "round {round}: total of {query:?}");
            }
            got.extend(page.leads.iter().map(|v| v.lead.id));
            match page.next_cursor {
                Some(cursor) => {
                    query.cursor = Some(cursor);
                    query.offset = 0;
                }
                None => break,
            }
            assert!(got.len() <= most, "round {round}: too many rows, {query:?}");
        }
        got
    }

    /// A lead's place in the query's order: by value then id, descending flips both, and a
    /// lead without a value comes last either way.
    fn place(lead: &Lead, q: &LeadQuery) -> (bool, u64, u128) {
        let value = sort_value(lead, q.sort_by);
        let v = value.map_or(0, |v| (v as u64) ^ (1 << 63));
        let id = u128::from_be_bytes(lead.id.bytes());
        match q.sort_dir {
            SortDir::Asc => (value.is_none(), v, id),
            SortDir::Desc => (value.is_none(), !v, !id),
        }
    }

    fn random_query(leads: &[Lead], rng: &mut Rng) -> LeadQuery {
        let mut since = |pick: fn(&Lead) -> Timestamp| match rng.below(3) {
            0 => None,
            _ => {
                let at = pick(&leads[rng.below(leads.len() as u64) as usize]);
                Some(at.plus_ms(rng.below(3) as i64 - 1))
            }
        };
        let created_since = since(|l| l.created_at);
        let updated_since = since(|l| l.updated_at);
        LeadQuery {
            status: (rng.below(3) == 0).then(|| LeadStatus::ALL[rng.below(3) as usize]),
            stage: None,
            search: None,
            created_since,
            updated_since,
            lead_line: None,
            sort_by: [
                SortBy::CreatedAt,
                SortBy::UpdatedAt,
                SortBy::LastInteractionAt,
            ][rng.below(3) as usize],
            sort_dir: [SortDir::Asc, SortDir::Desc][rng.below(2) as usize],
            cursor: None,
            limit: 1 + rng.below(7) as usize,
            offset: 0,
        }
    }

    /// What one unpaged query returns: the matches, sorted by value then id.
    fn expected(leads: &[Lead], q: &LeadQuery) -> Vec<LeadId> {
        let mut matching: Vec<&Lead> = leads
            .iter()
            .filter(|l| q.status.is_none_or(|s| l.status == s))
            .filter(|l| q.created_since.is_none_or(|t| l.created_at >= t))
            .filter(|l| q.updated_since.is_none_or(|t| l.updated_at >= t))
            .collect();
        matching.sort_by_key(|l| place(l, q));
        matching.iter().map(|l| l.id).collect()
    }

    /// A cursor at `lead`'s place in the query's order, as a client holds from an earlier page
    /// (of this query, or of one with other bounds).
    fn cursor_at(lead: &Lead, q: &LeadQuery) -> Cursor {
        Cursor {
            sort_by: q.sort_by,
            sort_dir: q.sort_dir,
            last_value_ms: sort_value(lead, q.sort_by).unwrap_or(NULL_VALUE),
            last_id: lead.id.uuid(),
        }
    }

    /// Whether `lead` comes after `at`, the lead a cursor was made at, in the query's order.
    fn after(lead: &Lead, at: &Lead, q: &LeadQuery) -> bool {
        place(lead, q) > place(at, q)
    }

    #[test]
    fn walking_the_cursor_returns_exactly_the_unpaged_query() {
        let (_dir, store, tenant) = store_with_tenant();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let leads = random_leads(&store, tenant, &mut rng);
        for round in 0..400 {
            let mut query = random_query(&leads, &mut rng);
            let mut want = expected(&leads, &query);
            // Half the walks start from a cursor anywhere, inside the bounds or not.
            if rng.below(2) == 0 {
                let at = &leads[rng.below(leads.len() as u64) as usize];
                let cursor = cursor_at(at, &query);
                let by_id: std::collections::HashMap<LeadId, &Lead> =
                    leads.iter().map(|l| (l.id, l)).collect();
                want.retain(|id| after(by_id[id], at, &query));
                query.cursor = Some(cursor);
            }
            let got = walk_pages(&store, tenant, query.clone(), want.len(), None, round);
            assert_eq!(got, want, "round {round}: {query:?}");
        }
        store.shutdown();
    }

    #[test]
    fn total_counts_every_match_whatever_the_cursor() {
        let (_dir, store, tenant) = store_with_tenant();
        let mut rng = Rng(42);
        let leads = random_leads(&store, tenant, &mut rng);
        for round in 0..100 {
            let mut query = random_query(&leads, &mut rng);
            let want = expected(&leads, &query).len() as u64;
            query.cursor = Some(cursor_at(
                &leads[rng.below(leads.len() as u64) as usize],
                &query,
            ));
            let page = store.list_leads(tenant, &query).unwrap();
            assert_eq!(page.total, want, "round {round}: {query:?}");
        }
        store.shutdown();
    }

    #[test]
    fn an_ascending_cursor_from_before_the_since_bound_keeps_the_bound() {
        let (_dir, store, tenant) = store_with_tenant();
        let leads = random_leads(&store, tenant, &mut Rng(7));
        let mut by_created = leads.clone();
        by_created.sort_by_key(|l| (l.created_at, l.id));
        let (first, bound) = (&by_created[0], by_created[30].created_at);
        let query = LeadQuery {
            created_since: Some(bound),
            cursor: Some(Cursor {
                sort_by: SortBy::CreatedAt,
                sort_dir: SortDir::Asc,
                last_value_ms: first.created_at.ms(),
                last_id: first.id.uuid(),
            }),
            ..random_query(&leads, &mut Rng(1))
        };
        let query = LeadQuery {
            status: None,
            updated_since: None,
            sort_by: SortBy::CreatedAt,
            sort_dir: SortDir::Asc,
            limit: 100,
            ..query
        };
        let page = store.list_leads(tenant, &query).unwrap();
        assert!(
            page.leads.iter().all(|v| v.lead.created_at >= bound),
            "rows before created_since came back"
        );
        assert_eq!(page.leads.len() as u64, page.total);
        store.shutdown();
    }

    /// Words that share trigrams ("an", "ana", "nan"), mixed case, and non-ASCII letters.
    const WORDS: [&str; 12] = [
        "Ana", "Nana", "Banana", "Élodie", "ZOË", "li", "Lin", "Anneli", "kaloran", "Ørsted", "da",
        "Dana",
    ];

    /// `n` random leads through bulk imports (ties in created_at within each), then PATCHes
    /// of status, stage, name, e-mail and phone, deletions and interactions.
    fn index_leads(store: &Store, tenant: TenantId, rng: &mut Rng, n: usize) -> Vec<LeadId> {
        use crate::domain::contact::Phone;
        use crate::store::leads::{BulkMode, Emit, OnDuplicate};
        let stages = ["new", "contacted", "qualified", "won", "lost"];
        let word = |rng: &mut Rng| WORDS[rng.below(WORDS.len() as u64) as usize];
        let mut ids = Vec::new();
        for batch in 0..n.div_ceil(500) {
            // Up to an hour apart: times spread over every span the updated-at counts keep.
            store.clock().advance(1 + rng.below(3_600_000) as u32);
            let rows = (0..500.min(n - batch * 500))
                .map(|i| {
                    let i = batch * 500 + i;
                    let mut input = LeadInput {
                        contact_name: (rng.below(5) > 0)
                            .then(|| format!("{} {}", word(rng), word(rng))),
                        contact_email: (rng.below(4) > 0).then(|| {
                            let domain = ["banana", "nana-co", "lin"][rng.below(3) as usize];
                            Email::parse(&format!("{}.{i}@{domain}.com", word(rng))).unwrap()
                        }),
                        contact_phone: (rng.below(3) > 0).then(|| {
                            Phone::parse(&format!("(206) 55{:05}", rng.below(100_000)), "1")
                                .unwrap()
                        }),
                        stage_slug: Some(stages[rng.below(5) as usize].into()),
                        ..LeadInput::default()
                    };
                    if input.contact_email.is_none() && input.contact_phone.is_none() {
                        input.contact_email = Some(Email::parse(&format!("x{i}@y.org")).unwrap());
                    }
                    match rng.below(3) {
                        0 => {}
                        k => {
                            let line = if k == 1 { "buyer" } else { "seller" };
                            input.custom_fields.insert("lead_line".into(), line.into());
                        }
                    }
                    Ok(input)
                })
                .collect();
            let mode = BulkMode {
                on_duplicate: OnDuplicate::Update,
                dry_run: false,
                emit: Emit::Nothing,
            };
            let outcome = store
                .bulk_import(tenant, rows, mode, None, |r| StoredResponse {
                    status: 200,
                    body: r
                        .unwrap()
                        .iter()
                        .filter_map(|row| row.lead_id.map(|id| id.to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                    ..StoredResponse::default()
                })
                .unwrap();
            let Outcome::Fresh(r) = outcome else {
                panic!("a fresh import")
            };
            for id in r.body.split(',') {
                let id = LeadId::parse(id).unwrap();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        for _ in 0..n / 5 {
            // Ties now and then, else up to a minute and a half apart.
            if rng.below(4) > 0 {
                store.clock().advance(rng.below(90_000) as u32);
            }
            let id = ids[rng.below(ids.len() as u64) as usize];
            let mut patch = LeadPatch::default();
            match rng.below(5) {
                0 => patch.contact_name = Some(Some(format!("{} {}", word(rng), word(rng)))),
                1 => patch.contact_phone = Some(None),
                2 => patch.stage_slug = Some(stages[rng.below(5) as usize].into()),
                3 => {
                    let line = ["buyer", "seller"][rng.below(2) as usize];
                    patch.custom_fields.insert("lead_line".into(), line.into());
                }
                _ => {}
            }
            patch.status = Some(LeadStatus::ALL[rng.below(5) as usize]);
            // A patch that would leave no contact is refused; that is fine here.
            let _ = store.patch_lead(tenant, id, patch, None, None, |_| StoredResponse::default());
        }
        for _ in 0..n / 20 {
            let id = ids.swap_remove(rng.below(ids.len() as u64) as usize);
            store
                .delete_lead(tenant, id, None, None, |_| StoredResponse::default())
                .unwrap();
        }
        for _ in 0..n / 10 {
            let id = ids[rng.below(ids.len() as u64) as usize];
            let input = InteractionInput {
                kind: InteractionType::Note,
                direction: None,
                occurred_at: Some(store.now().plus_ms(-(rng.below(50) as i64) * 1000)),
                summary: None,
                body: None,
                duration_seconds: None,
            };
            store
                .add_interaction(tenant, id, input, None, |_| StoredResponse::default())
                .unwrap();
        }
        ids
    }

    /// A search string: a piece of a lead's name, e-mail or phone (any case, 1 to 9
    /// characters), or something no lead has.
    fn random_search(leads: &[Lead], rng: &mut Rng) -> String {
        let lead = &leads[rng.below(leads.len() as u64) as usize];
        let source = match rng.below(4) {
            0 => lead.contact_name.clone(),
            1 => lead.contact_email.clone(),
            2 => lead.contact_phone.clone(),
            _ => Some("qqq zz".into()),
        }
        .unwrap_or_else(|| "an".into());
        let chars: Vec<char> = source.chars().collect();
        let len = 1 + rng.below(9.min(chars.len() as u64)) as usize;
        let start = rng.below((chars.len() - len + 1) as u64) as usize;
        let piece: String = chars[start..start + len].iter().collect();
        if rng.below(2) == 0 {
            piece.to_uppercase()
        } else {
            piece
        }
    }

    #[test]
    fn the_indexes_answer_exactly_what_reading_every_record_does() {
        let (_dir, store, tenant) = store_with_tenant();
        let mut rng = Rng(0x5eed_1dea_f00d_cafe);
        // A full chunk of 4,096 (its search sets written when it filled) and the open one.
        let ids = index_leads(&store, tenant, &mut rng, 5_000);
        let leads = current(&store, tenant, &ids);
        let stages = store.list_stages(tenant).unwrap();
        let catalog = store.read(|txn| load_catalog(txn, tenant)).unwrap();
        for round in 0..300 {
            if round == 200 {
                // As after a clock that stepped back: `created_since` can no longer be a range
                // of ordinals, and reads the created-at index instead.
                store
                    .write(move |txn| super::super::lead_index::forget_created_order(txn, tenant))
                    .unwrap();
            }
            let mut query = random_query(&leads, &mut rng);
            if rng.below(2) == 0 {
                query.stage = Some(match rng.below(2) {
                    0 => StageFilter::Id(stages[rng.below(5) as usize].id),
                    _ => StageFilter::Slug(stages[rng.below(5) as usize].slug.clone()),
                });
            }
            if rng.below(3) == 0 {
                query.lead_line = Some([LeadLine::Buyer, LeadLine::Seller][rng.below(2) as usize]);
            }
            if rng.below(2) == 0 {
                query.search = Some(SearchQuery::new(&random_search(&leads, &mut rng)));
            }
            if rng.below(4) == 0 {
                query.offset = rng.below(30) as usize;
            }
            query.limit = 10 + rng.below(90) as usize;
            let filter = Filter::new(&query, &catalog).unwrap();
            let mut want: Vec<&Lead> = leads.iter().filter(|l| filter.matches(l)).collect();
            want.sort_by_key(|l| place(l, &query));
            let want: Vec<LeadId> = want.iter().skip(query.offset).map(|l| l.id).collect();
            let total = leads.iter().filter(|l| filter.matches(l)).count() as u64;
            let got = walk_pages(
                &store,
                tenant,
                query.clone(),
                want.len(),
                Some(total),
                round,
            );
            assert_eq!(got, want, "round {round}: {query:?}");
        }
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        store.shutdown();
    }

    /// The newest leads of a full chunk deleted: a check rebuilds the indexes keeping the
    /// numbers, and must seal that chunk as the file did although no lead has its last number.
    #[test]
    fn a_full_chunk_whose_newest_leads_were_deleted_checks_clean() {
        let (_dir, store, tenant) = store_with_tenant();
        let ids = index_leads(&store, tenant, &mut Rng(41), 4_200);
        let mut leads = current(&store, tenant, &ids);
        leads.sort_by_key(|l| (l.created_at, l.id));
        // The 4,200 numbered 0 to 4,199, some deleted already: the last 200 left go beyond 4,095.
        let newest = leads.split_off(leads.len() - 200);
        for lead in &newest {
            store
                .delete_lead(tenant, lead.id, None, None, |_| StoredResponse::default())
                .unwrap();
        }
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        let name = leads
            .iter()
            .rev()
            .find_map(|l| l.contact_name.clone())
            .unwrap();
        let query = LeadQuery {
            search: Some(SearchQuery::new(&name)),
            limit: 100,
            ..random_query(&leads, &mut Rng(3))
        };
        let query = LeadQuery {
            status: None,
            created_since: None,
            updated_since: None,
            ..query
        };
        let want = leads
            .iter()
            .filter(|l| {
                query.search.as_ref().unwrap().matches(
                    l.contact_name.as_deref(),
                    l.contact_email.as_deref(),
                    l.contact_phone.as_deref(),
                )
            })
            .count() as u64;
        assert!(want > 0);
        assert_eq!(store.list_leads(tenant, &query).unwrap().total, want);
        store.shutdown();
    }

    /// Leads created in one millisecond whose numbers do not follow their ids (a job that made
    /// its id before another's but committed after it): by created_at, a page puts them in id
    /// order, whatever the filter and the page size.
    #[test]
    fn leads_of_one_millisecond_page_in_id_order_whatever_their_numbers() {
        let (_dir, store, tenant) = store_with_tenant();
        let stage = store.list_stages(tenant).unwrap()[0].id;
        let mut ids: Vec<LeadId> = (0..9).map(|_| LeadId::new()).collect();
        ids.sort();
        let at = store.now();
        let leads: Vec<Lead> = ids
            .iter()
            .rev()
            .enumerate()
            .map(|(i, id)| Lead {
                id: *id,
                tenant_id: tenant,
                status: LeadStatus::Active,
                source_platform: crate::domain::lead::SourcePlatform::Direct,
                source_type: crate::domain::lead::SourceType::Manual,
                // Numbered in descending id order: two milliseconds of four and five leads.
                created_at: at.plus_ms(i64::from(i >= 4)),
                updated_at: at.plus_ms(i64::from(i >= 4)),
                contact_name: None,
                contact_phone: None,
                contact_email: Some(format!("p{i}@example.com")),
                score: None,
                qualified: None,
                stage_id: stage,
                owner_id: None,
                last_interaction_at: None,
                interaction_count: 0,
                custom_fields_json: "{}".into(),
                version: 1,
            })
            .collect();
        let stored = leads.clone();
        store
            .write(move |txn| {
                let mut tables = crate::store::lead_record::LeadTables::open(txn)?;
                for lead in &stored {
                    tables.put(None, lead)?;
                }
                Ok(())
            })
            .unwrap();
        for dir in [SortDir::Asc, SortDir::Desc] {
            for limit in [1, 2, 3, 9] {
                for filtered in [false, true] {
                    let query = LeadQuery {
                        status: filtered.then_some(LeadStatus::Active),
                        stage: None,
                        search: None,
                        created_since: None,
                        updated_since: filtered.then_some(at),
                        lead_line: None,
                        sort_by: SortBy::CreatedAt,
                        sort_dir: dir,
                        cursor: None,
                        limit,
                        offset: 0,
                    };
                    let mut want = leads.clone();
                    want.sort_by_key(|l| place(l, &query));
                    let want: Vec<LeadId> = want.iter().map(|l| l.id).collect();
                    let got = walk_pages(&store, tenant, query.clone(), 9, Some(9), 0);
                    assert_eq!(got, want, "{query:?}");
                }
            }
        }
        store.shutdown();
    }

    #[test]
    fn a_tenant_of_one_lead_is_found_by_every_bound() {
        let (_dir, store, tenant) = store_with_tenant();
        let ids = index_leads(&store, tenant, &mut Rng(5), 1);
        let lead = current(&store, tenant, &ids).remove(0);
        let at = |q: LeadQuery| store.list_leads(tenant, &q).unwrap().total;
        let base = LeadQuery {
            status: Some(lead.status),
            created_since: None,
            updated_since: Some(lead.updated_at),
            ..random_query(std::slice::from_ref(&lead), &mut Rng(1))
        };
        for sort_by in [
            SortBy::CreatedAt,
            SortBy::UpdatedAt,
            SortBy::LastInteractionAt,
        ] {
            assert_eq!(
                at(LeadQuery {
                    sort_by,
                    ..base.clone()
                }),
                1,
                "{sort_by:?}"
            );
        }
        store
            .write(move |txn| super::super::lead_index::forget_created_order(txn, tenant))
            .unwrap();
        let created = LeadQuery {
            updated_since: None,
            created_since: Some(lead.created_at),
            ..base
        };
        assert_eq!(at(created), 1);
        store.shutdown();
    }

    #[test]
    fn updated_since_counts_match_the_leads() {
        let (_dir, store, tenant) = store_with_tenant();
        let mut rng = Rng(2024);
        let ids = index_leads(&store, tenant, &mut rng, 1_500);
        let times: Vec<i64> = ids
            .iter()
            .map(|id| {
                store
                    .get_lead(tenant, *id)
                    .unwrap()
                    .unwrap()
                    .lead
                    .updated_at
                    .ms()
            })
            .collect();
        let n = times.len() as u64;
        for round in 0..300 {
            let at = times[rng.below(n) as usize];
            // At a lead's time, next to it, and on the edges of every span the counts keep.
            let t = match rng.below(4) {
                0 => at,
                1 => at + rng.below(3) as i64 - 1,
                2 => (at >> 13) << 13,
                _ => ((at >> 19) << 19) - 1,
            };
            let want = times.iter().filter(|&&u| u >= t).count() as u64;
            let got = store
                .read(|txn| TenantIndex::open(txn, tenant)?.count_updated_since(Timestamp(t), n))
                .unwrap();
            assert_eq!(got, want, "round {round}: updated since {t}");
        }
        store.shutdown();
    }

    #[test]
    fn rebuilt_indexes_answer_as_the_ones_the_writes_kept() {
        let (_dir, store, tenant) = store_with_tenant();
        let mut rng = Rng(99);
        let ids = index_leads(&store, tenant, &mut rng, 1_200);
        let leads = current(&store, tenant, &ids);
        let queries: Vec<LeadQuery> = (0..100)
            .map(|_| LeadQuery {
                search: (rng.below(2) == 0)
                    .then(|| SearchQuery::new(&random_search(&leads, &mut rng))),
                lead_line: (rng.below(3) == 0).then_some(LeadLine::Seller),
                limit: 100,
                ..random_query(&leads, &mut rng)
            })
            .collect();
        let answers = |store: &Store| -> Vec<(u64, Vec<LeadId>)> {
            queries
                .iter()
                .map(|q| {
                    let page = store.list_leads(tenant, q).unwrap();
                    (page.total, page.leads.iter().map(|v| v.lead.id).collect())
                })
                .collect()
        };
        let kept = answers(&store);
        assert!(
            kept.iter().any(|(total, _)| *total > 50),
            "queries that find leads"
        );
        let terms_before = store
            .read(|txn| Ok(txn.open_table(LEAD_TERMS)?.iter()?.count()))
            .unwrap();
        store
            .write(|txn| super::super::lead_record::rebuild_lead_indexes(txn, None))
            .unwrap();
        assert_eq!(answers(&store), kept);
        let terms_after = store
            .read(|txn| Ok(txn.open_table(LEAD_TERMS)?.iter()?.count()))
            .unwrap();
        assert!(terms_after > 0 && terms_after <= terms_before);
        store.shutdown();
    }

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
