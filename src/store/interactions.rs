//! A lead's interactions (spec §12.2): the records, newest first by when they happened. The
//! writes that add one are lead writes ([`super::leads`]): the lead's counters, version and
//! event move in the same transaction.

use redb::WriteTransaction;
use serde_json::{Value, json};

use super::codec::{Record, decode, encode};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::cursor::{Cursor, SortBy, SortDir};
use crate::domain::ids::{InteractionId, LeadId, TenantId};
use crate::domain::interaction::Interaction;

impl Record for Interaction {
    const VERSION: u8 = 1;
    const NAME: &'static str = "interaction";
}

fn interaction_key(i: &Interaction) -> Vec<u8> {
    key(&[
        &i.tenant_id.bytes(),
        &i.lead_id.bytes(),
        &i64_key(i.occurred_at.ms()),
        &i.id.bytes(),
    ])
}

pub(crate) fn insert_interaction(
    txn: &WriteTransaction,
    interaction: &Interaction,
) -> Result<(), StoreError> {
    txn.open_table(INTERACTIONS)?.insert(
        interaction_key(interaction).as_slice(),
        encode(interaction)?.as_slice(),
    )?;
    Ok(())
}

/// A deleted lead's timeline goes with it. Returns how many.
pub(crate) fn remove_interactions(
    txn: &WriteTransaction,
    tenant: TenantId,
    lead: LeadId,
) -> Result<usize, StoreError> {
    let mut table = txn.open_table(INTERACTIONS)?;
    let prefix = key(&[&tenant.bytes(), &lead.bytes()]);
    let keys: Vec<Vec<u8>> = prefixed(&table, &prefix)?
        .map(|e| e.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<_, _>>()?;
    for k in &keys {
        table.remove(k.as_slice())?;
    }
    Ok(keys.len())
}

/// An interaction as the API and the `interaction.created` event show it.
pub fn interaction_json(i: &Interaction) -> Value {
    json!({
        "id": i.id,
        "lead_id": i.lead_id,
        "type": i.kind,
        "direction": i.direction,
        "occurred_at": i.occurred_at,
        "summary": i.summary,
        "body": i.body,
        "duration_seconds": i.duration_seconds,
        "created_at": i.created_at,
    })
}

/// Where a page of a timeline ended: the cursor of the lead listings, for its one order
/// (newest `occurred_at` first, ties by id).
pub fn timeline_cursor(i: &Interaction) -> Cursor {
    Cursor {
        sort_by: SortBy::LastInteractionAt,
        sort_dir: SortDir::Desc,
        last_value_ms: i.occurred_at.ms(),
        last_id: i.id.uuid(),
    }
}

/// A page of a timeline and the cursor after it (`None` on the last page).
pub type TimelinePage = (Vec<Interaction>, Option<Cursor>);

impl Store {
    /// A page of the lead's interactions, newest first, after `cursor`; `None` when the lead
    /// is not the tenant's.
    pub fn list_interactions(
        &self,
        tenant: TenantId,
        lead: LeadId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Option<TimelinePage>, StoreError> {
        self.read(|txn| {
            let leads = txn.open_table(LEADS)?;
            if leads
                .get(key(&[&tenant.bytes(), &lead.bytes()]).as_slice())?
                .is_none()
            {
                return Ok(None);
            }
            let table = txn.open_table(INTERACTIONS)?;
            let prefix = key(&[&tenant.bytes(), &lead.bytes()]);
            let end = match &cursor {
                Some(c) => key(&[
                    &prefix,
                    &i64_key(c.last_value_ms),
                    &InteractionId::from_uuid(c.last_id).bytes(),
                ]),
                None => prefix_end(&prefix).expect("a tenant and lead prefix has an end"),
            };
            let mut page = Vec::with_capacity(limit + 1);
            for entry in table
                .range::<&[u8]>(prefix.as_slice()..end.as_slice())?
                .rev()
            {
                page.push(decode::<Interaction>(entry?.1.value())?);
                if page.len() > limit {
                    break;
                }
            }
            let more = page.len() > limit;
            page.truncate(limit);
            let next = more.then(|| page.last().map(timeline_cursor)).flatten();
            Ok(Some((page, next)))
        })
    }
}
