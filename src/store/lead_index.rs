//! The indexes a pull query reads instead of the lead records (spec §4): every lead of a tenant
//! has a small number, its *ordinal*, and each filter value is the set of ordinals that have it.
//!
//! - An ordinal is given at create, from a per-tenant counter ([`LEAD_ORDINALS`]), and never
//!   changes or comes back; the created-at index entry of a lead holds it.
//! - A set is stored in chunks of 4,096 ordinals, one table entry per (tenant, chunk, term): a
//!   sorted list of 16-bit offsets while it holds fewer than 256, else a 512-byte bitmap
//!   ([`Bits`]). Keys are chunk-major, so the terms a batch of new leads touches (they all go
//!   to the newest chunk) sit side by side in the tree, and an entry is at most 512 bytes.
//! - Terms: every lead (`a`), its status, stage, owner and `lead_line`, and trigrams of the
//!   lower-cased name and e-mail (`t`, bytes) and of the phone's digits (`p`). The trigram
//!   sets of a tenant's open chunk (the one new leads go to) are written only once it is
//!   full ([`seal`]); until then a search checks the text of all of its leads.
//! - The writer does not rewrite a chunk per lead: a job records its term changes in a
//!   per-thread list that the batch applies once, just before its commit ([`flush`]).
//! - [`LEAD_ROWS`] gives an ordinal's id and sort values; [`LEAD_TEXT`] keeps what search
//!   compares (lower-cased name and e-mail, phone digits) in blocks of 256 leads, so checking
//!   a million candidates reads four thousand entries rather than a million records.
//!
//! Trigrams are a superset filter: a 3-byte query is exactly a trigram, longer ones are checked
//! against the text blocks. A query under 3 bytes has no trigram and checks every text block.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::StoreError;
use super::tables::*;
use crate::domain::contact::{SearchFields, SearchQuery};
use crate::domain::ids::{LeadId, TenantId};
use crate::domain::lead::Lead;
use crate::domain::time::Timestamp;

/// Ordinals per chunk: 2^12.
pub(crate) const CHUNK_BITS: u32 = 12;
const CHUNK_WORDS: usize = 1 << (CHUNK_BITS - 6);
/// A chunk below this many members is stored as a list of offsets (2 bytes each).
const LIST_MAX: usize = 256;
/// Leads per text block: 2^8 (some 12 KiB; checking a million leads reads 4 thousand entries).
const TEXT_BITS: u32 = 8;

/// The members of one chunk: bit `i` is ordinal `chunk * 4096 + i`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bits(pub(crate) [u64; CHUNK_WORDS]);

impl Bits {
    pub(crate) fn empty() -> Box<Bits> {
        Box::new(Bits([0; CHUNK_WORDS]))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Box<Bits>, StoreError> {
        let mut bits = Bits::empty();
        match bytes.split_first() {
            Some((0, list)) if list.len() % 2 == 0 => {
                for pair in list.chunks_exact(2) {
                    bits.set(u16::from_be_bytes([pair[0], pair[1]]), true);
                }
            }
            Some((1, words)) if words.len() == CHUNK_WORDS * 8 => {
                for (word, raw) in bits.0.iter_mut().zip(words.chunks_exact(8)) {
                    *word = u64::from_le_bytes(raw.try_into().expect("8 bytes"));
                }
            }
            _ => {
                return Err(StoreError::Corrupt(
                    "a lead index chunk does not decode".into(),
                ));
            }
        }
        Ok(bits)
    }

    /// The stored form; None when the chunk is empty (its entry is removed).
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let count = self.count() as usize;
        if count == 0 {
            return None;
        }
        if count < LIST_MAX {
            let mut out = Vec::with_capacity(1 + 2 * count);
            out.push(0);
            for i in self.iter() {
                out.extend_from_slice(&i.to_be_bytes());
            }
            Some(out)
        } else {
            let mut out = Vec::with_capacity(1 + CHUNK_WORDS * 8);
            out.push(1);
            for word in &self.0 {
                out.extend_from_slice(&word.to_le_bytes());
            }
            Some(out)
        }
    }

    pub(crate) fn set(&mut self, i: u16, on: bool) {
        let (word, bit) = (usize::from(i >> 6), i & 63);
        if on {
            self.0[word] |= 1 << bit;
        } else {
            self.0[word] &= !(1 << bit);
        }
    }

    pub(crate) fn get(&self, i: u16) -> bool {
        self.0[usize::from(i >> 6)] & (1 << (i & 63)) != 0
    }

    pub(crate) fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    fn and(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a &= b;
        }
    }

    fn or(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    /// Offsets in descending order.
    fn iter_rev(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().rev().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = 63 - rest.leading_zeros() as u16;
                rest &= !(1 << bit);
                Some((w as u16) << 6 | bit)
            })
        })
    }

    /// Offsets in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as u16;
                rest &= rest - 1;
                Some((w as u16) << 6 | bit)
            })
        })
    }
}

/// A set of a tenant's ordinals, chunk by chunk.
#[derive(Clone, Default)]
pub(crate) struct Set {
    chunks: Vec<Option<Box<Bits>>>,
}

impl Set {
    fn with_chunks(n: u32) -> Set {
        Set {
            chunks: (0..n).map(|_| None).collect(),
        }
    }

    /// Every ordinal in `lo..hi`.
    pub(crate) fn range(lo: u32, hi: u32) -> Set {
        let mut set = Set::with_chunks(chunk_count(hi));
        if lo >= hi {
            return set;
        }
        // Whole words at a time: a range of a million ordinals is some 16,000 words.
        let (first, last) = (lo as usize / 64, (hi as usize - 1) / 64);
        for w in first..=last {
            let mut word = u64::MAX;
            if w == first {
                word &= u64::MAX << (lo % 64);
            }
            if w == last {
                word &= u64::MAX >> (63 - (hi - 1) % 64);
            }
            let (c, i) = (w / CHUNK_WORDS, w % CHUNK_WORDS);
            set.chunks[c].get_or_insert_with(Bits::empty).0[i] = word;
        }
        set
    }

    /// The numbers of the groups of `2^bits` ordinals (`bits` from 6 to the chunk's 12) that
    /// hold a member, ascending: read from whole words, not member by member.
    fn groups(&self, bits: u32) -> impl Iterator<Item = u32> + '_ {
        let words = 1usize << (bits - 6);
        let per_chunk = CHUNK_WORDS / words;
        self.chunks.iter().enumerate().flat_map(move |(c, chunk)| {
            chunk.iter().flat_map(move |b| {
                b.0.chunks(words)
                    .enumerate()
                    .filter(|(_, group)| group.iter().any(|w| *w != 0))
                    .map(move |(g, _)| (c * per_chunk + g) as u32)
            })
        })
    }

    pub(crate) fn insert(&mut self, ordinal: u32) {
        let c = (ordinal >> CHUNK_BITS) as usize;
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, || None);
        }
        self.chunks[c]
            .get_or_insert_with(Bits::empty)
            .set(offset(ordinal), true);
    }

    pub(crate) fn contains(&self, ordinal: u32) -> bool {
        self.chunks
            .get((ordinal >> CHUNK_BITS) as usize)
            .and_then(Option::as_ref)
            .is_some_and(|bits| bits.get(offset(ordinal)))
    }

    pub(crate) fn len(&self) -> u64 {
        self.chunks
            .iter()
            .flatten()
            .map(|b| u64::from(b.count()))
            .sum()
    }

    /// Keeps only what `other` holds too.
    pub(crate) fn and(&mut self, other: &Set) {
        for (i, chunk) in self.chunks.iter_mut().enumerate() {
            match (chunk.as_mut(), other.chunks.get(i).and_then(Option::as_ref)) {
                (Some(mine), Some(theirs)) => {
                    mine.and(theirs);
                    if mine.is_empty() {
                        *chunk = None;
                    }
                }
                _ => *chunk = None,
            }
        }
    }

    /// Adds everything `other` holds.
    pub(crate) fn or(&mut self, other: &Set) {
        if self.chunks.len() < other.chunks.len() {
            self.chunks.resize_with(other.chunks.len(), || None);
        }
        for (i, theirs) in other.chunks.iter().enumerate() {
            if let Some(theirs) = theirs {
                self.chunks[i].get_or_insert_with(Bits::empty).or(theirs);
            }
        }
    }

    /// Removes everything `other` holds.
    pub(crate) fn and_not(&mut self, other: &Set) {
        for (i, chunk) in self.chunks.iter_mut().enumerate() {
            if let (Some(mine), Some(theirs)) =
                (chunk.as_mut(), other.chunks.get(i).and_then(Option::as_ref))
            {
                for (a, b) in mine.0.iter_mut().zip(theirs.0.iter()) {
                    *a &= !b;
                }
                if mine.is_empty() {
                    *chunk = None;
                }
            }
        }
    }

    /// Moves the members of chunk `from` and after into a set of their own.
    fn split_off(&mut self, from: u32) -> Set {
        let mut rest = Set::with_chunks(self.chunks.len() as u32);
        for (mine, theirs) in self
            .chunks
            .iter_mut()
            .zip(rest.chunks.iter_mut())
            .skip(from as usize)
        {
            *theirs = mine.take();
        }
        rest
    }

    /// The chunks that hold anything, ascending.
    fn chunk_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| i as u32)
    }

    /// The smallest member.
    pub(crate) fn first(&self) -> Option<u32> {
        self.iter().next()
    }

    /// The largest member.
    pub(crate) fn last(&self) -> Option<u32> {
        let (c, bits) = self
            .chunks
            .iter()
            .enumerate()
            .rev()
            .find_map(|(c, b)| Some((c, b.as_ref()?)))?;
        let (w, word) = bits.0.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
        Some((c as u32) << CHUNK_BITS | (w as u32) << 6 | (63 - word.leading_zeros()))
    }

    /// The members from `start` up (ascending), or from `start` down (descending).
    pub(crate) fn members_from(
        &self,
        start: u32,
        descending: bool,
    ) -> Box<dyn Iterator<Item = u32> + '_> {
        let chunk = (start >> CHUNK_BITS) as usize;
        let at = |c: usize, o: u16| (c as u32) << CHUNK_BITS | u32::from(o);
        if descending {
            Box::new(
                self.chunks
                    .iter()
                    .enumerate()
                    .take(chunk.saturating_add(1))
                    .rev()
                    .flat_map(move |(c, b)| {
                        b.iter()
                            .flat_map(move |b| b.iter_rev().map(move |o| at(c, o)))
                    })
                    .skip_while(move |o| *o > start),
            )
        } else {
            Box::new(
                self.chunks
                    .iter()
                    .enumerate()
                    .skip(chunk)
                    .flat_map(move |(c, b)| {
                        b.iter().flat_map(move |b| b.iter().map(move |o| at(c, o)))
                    })
                    .skip_while(move |o| *o < start),
            )
        }
    }

    /// Every member, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, bits)| {
            bits.iter().flat_map(move |b| {
                b.iter()
                    .map(move |o| (c as u32) << CHUNK_BITS | u32::from(o))
            })
        })
    }
}

fn offset(ordinal: u32) -> u16 {
    (ordinal & ((1 << CHUNK_BITS) - 1)) as u16
}

fn chunk_count(ordinals: u32) -> u32 {
    ordinals.div_ceil(1 << CHUNK_BITS)
}

/// What a lead is indexed under: a kind byte and a value, at most 20 bytes, kept inline (the
/// writer makes some forty of them per lead).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Term {
    len: u8,
    bytes: [u8; 20],
}

impl Term {
    fn new(kind: u8, value: &[u8]) -> Term {
        // Every value is short (an id, a trigram, `buyer`/`seller`); a longer one is cut.
        let n = value.len().min(19);
        let mut bytes = [0u8; 20];
        bytes[0] = kind;
        bytes[1..=n].copy_from_slice(&value[..n]);
        Term {
            len: n as u8 + 1,
            bytes,
        }
    }
}

impl std::ops::Deref for Term {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

pub(crate) mod term {
    use super::Term;
    use crate::domain::ids::{OwnerId, StageId};
    use crate::domain::lead::LeadStatus;

    pub(crate) fn all() -> Term {
        Term::new(b'a', &[])
    }

    pub(crate) fn status(status: LeadStatus) -> Term {
        let code = LeadStatus::ALL
            .iter()
            .position(|s| *s == status)
            .unwrap_or(0);
        Term::new(b's', &[code as u8])
    }

    pub(crate) fn stage(id: StageId) -> Term {
        Term::new(b'g', &id.bytes())
    }

    pub(crate) fn owner(id: OwnerId) -> Term {
        Term::new(b'o', &id.bytes())
    }

    pub(crate) fn lead_line(line: &str) -> Term {
        Term::new(b'l', line.as_bytes())
    }

    pub(crate) fn text(trigram: &[u8]) -> Term {
        Term::new(b't', trigram)
    }

    pub(crate) fn phone(trigram: &[u8]) -> Term {
        Term::new(b'p', trigram)
    }
}

/// The terms of `lead`'s fields other than its contact text, sorted.
fn field_terms(lead: &Lead) -> Vec<Term> {
    let mut terms = vec![
        term::all(),
        term::status(lead.status),
        term::stage(lead.stage_id),
    ];
    terms.extend(lead.owner_id.map(term::owner));
    // A lead whose custom fields do not decode is under no lead_line; reading it reports that.
    if let Ok(Some(line)) = lead.lead_line() {
        terms.push(term::lead_line(&line));
    }
    terms.sort_unstable();
    terms
}

/// The trigram terms of a lead's contact text, sorted and without repeats.
fn text_terms(fields: &SearchFields) -> Vec<Term> {
    trigram_terms(
        [&fields.name, &fields.email].map(|s| s.as_bytes()),
        fields.digits.as_bytes(),
    )
}

/// [`text_terms`] of the lower-cased name and e-mail and the phone's digits, as bytes.
fn trigram_terms(texts: [&[u8]; 2], digits: &[u8]) -> Vec<Term> {
    let mut terms = Vec::new();
    for text in texts {
        terms.extend(text.windows(3).map(term::text));
    }
    terms.extend(digits.windows(3).map(term::phone));
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Notes `ordinal`'s move from the terms `old` to the terms `new` (both sorted).
fn note_moves(tenant: &[u8; 16], ordinal: u32, old: &[Term], new: &[Term]) {
    for gone in old.iter().filter(|x| new.binary_search(x).is_err()) {
        note(tenant, ordinal, gone, false);
    }
    for came in new.iter().filter(|x| old.binary_search(x).is_err()) {
        note(tenant, ordinal, came, true);
    }
}

fn search_fields(lead: &Lead) -> SearchFields {
    SearchFields::of(
        lead.contact_name.as_deref(),
        lead.contact_email.as_deref(),
        lead.contact_phone.as_deref(),
    )
}

/// The number after the tenant in a key of the rows or the text blocks (an ordinal, a block).
fn number_after_tenant(key: &[u8], what: &str) -> Result<u32, StoreError> {
    key.get(16..20)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("short {what}")))
}

fn term_key(tenant: &[u8; 16], chunk: u32, term: &[u8]) -> Vec<u8> {
    key(&[tenant, &chunk.to_be_bytes(), term])
}

pub(crate) fn ordinal_key(tenant: TenantId, ordinal: u32) -> Vec<u8> {
    key(&[&tenant.bytes(), &ordinal.to_be_bytes()])
}

fn text_key(tenant: TenantId, ordinal: u32) -> Vec<u8> {
    key(&[&tenant.bytes(), &(ordinal >> TEXT_BITS).to_be_bytes()])
}

/// Term changes made in this thread's open transaction, applied by [`flush`]: key → the final
/// membership of each ordinal offset it changed.
#[derive(Default)]
struct Pending {
    terms: HashMap<Vec<u8>, Vec<(u16, bool)>>,
    /// Text block key → each changed slot's new text (None: the slot is emptied).
    text: HashMap<Vec<u8>, BTreeMap<u8, Option<SearchFields>>>,
    /// Updated-at count key → change.
    counts: HashMap<Vec<u8>, i64>,
    /// (tenant, chunk) whose last ordinal was given out: its search sets are written whole.
    seals: BTreeSet<([u8; 16], u32)>,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

fn note(tenant: &[u8; 16], ordinal: u32, term: &[u8], member: bool) {
    PENDING.with_borrow_mut(|p| {
        p.terms
            .entry(term_key(tenant, ordinal >> CHUNK_BITS, term))
            .or_default()
            .push((offset(ordinal), member));
    });
}

fn note_text(tenant: TenantId, ordinal: u32, fields: Option<SearchFields>) {
    let slot = (ordinal & ((1 << TEXT_BITS) - 1)) as u8;
    PENDING.with_borrow_mut(|p| {
        p.text
            .entry(text_key(tenant, ordinal))
            .or_default()
            .insert(slot, fields);
    });
}

/// The spans the updated-at counts keep, as bits of milliseconds: 128 ms, 8 s, 9 min, 9 h,
/// 25 days, 4 years; each is 64 of the one below.
const COUNT_LEVELS: [u32; 6] = [7, 13, 19, 25, 31, 37];

fn count_key(tenant: &[u8; 16], level: usize, bucket: i64) -> Vec<u8> {
    key(&[tenant, &[level as u8], &i64_key(bucket)])
}

fn note_updated(tenant: &[u8; 16], at: i64, change: i64) {
    PENDING.with_borrow_mut(|p| {
        for (level, bits) in COUNT_LEVELS.iter().enumerate() {
            *p.counts
                .entry(count_key(tenant, level, at >> bits))
                .or_default() += change;
        }
    });
}

/// Applies the index changes this thread's jobs made in `txn`, each chunk and text block
/// once, in key order; the writer calls it before every commit, a migration before its own.
pub(crate) fn flush(txn: &WriteTransaction) -> Result<(), StoreError> {
    let pending = PENDING.with_borrow_mut(std::mem::take);
    if !pending.text.is_empty() {
        flush_text(txn, pending.text)?;
    }
    if !pending.counts.is_empty() {
        let mut table = txn.open_table(LEAD_UPDATED_COUNTS)?;
        for (k, change) in pending.counts {
            let now = table.get(k.as_slice())?.map_or(0, |v| v.value());
            match now.checked_add_signed(change) {
                Some(0) => table.remove(k.as_slice())?,
                Some(n) => table.insert(k.as_slice(), n)?,
                None => {
                    return Err(StoreError::Corrupt(
                        "a lead updated-at count went below zero".into(),
                    ));
                }
            };
        }
    }
    // After the text (a chunk's last leads may be in this batch), before the term changes
    // (which, for a chunk sealed here, agree with its text).
    for (tenant, chunk) in pending.seals {
        seal(txn, &tenant, chunk)?;
    }
    if pending.terms.is_empty() {
        return Ok(());
    }
    let mut edits: Vec<_> = pending.terms.into_iter().collect();
    edits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut table = txn.open_table(LEAD_TERMS)?;
    for (k, changes) in edits {
        let mut bits = match table.get(k.as_slice())? {
            Some(v) => Bits::decode(v.value())?,
            None => Bits::empty(),
        };
        for (i, member) in changes {
            bits.set(i, member);
        }
        match bits.encode() {
            Some(bytes) => table.insert(k.as_slice(), bytes.as_slice())?,
            None => table.remove(k.as_slice())?,
        };
    }
    Ok(())
}

fn flush_text(
    txn: &WriteTransaction,
    blocks: HashMap<Vec<u8>, BTreeMap<u8, Option<SearchFields>>>,
) -> Result<(), StoreError> {
    let mut edits: Vec<_> = blocks.into_iter().collect();
    edits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut table = txn.open_table(LEAD_TEXT)?;
    for (k, changes) in edits {
        let mut entries: BTreeMap<u8, SearchFields> = match table.get(k.as_slice())? {
            Some(v) => decode_text_block(v.value())?.into_iter().collect(),
            None => BTreeMap::new(),
        };
        for (slot, fields) in changes {
            match fields {
                Some(f) => entries.insert(slot, f),
                None => entries.remove(&slot),
            };
        }
        if entries.is_empty() {
            table.remove(k.as_slice())?;
        } else {
            table.insert(k.as_slice(), encode_text_block(&entries).as_slice())?;
        }
    }
    Ok(())
}

/// Writes the search sets (trigrams of name, e-mail and phone digits) of `tenant`'s `chunk`,
/// whose every ordinal has been given out, from its leads' text. Until then its leads had no
/// search sets: a search reads the text of the open chunk's leads (at most one chunk per
/// tenant), and a create or a contact change there writes no set entry. That saves the writer
/// some forty set entries a new lead; the chunk's sets are written once, in key order.
fn seal(txn: &WriteTransaction, tenant: &[u8; 16], chunk: u32) -> Result<(), StoreError> {
    let first_block = chunk << (CHUNK_BITS - TEXT_BITS);
    let block_key = |block: u32| key(&[tenant, &block.to_be_bytes()]);
    let (lo, hi) = (
        block_key(first_block),
        block_key(first_block + (1 << (CHUNK_BITS - TEXT_BITS))),
    );
    let mut members: BTreeMap<Term, Vec<u16>> = BTreeMap::new();
    for entry in txn
        .open_table(LEAD_TEXT)?
        .range::<&[u8]>(lo.as_slice()..hi.as_slice())?
    {
        let (k, v) = entry?;
        let block = number_after_tenant(k.value(), "lead search block key")?;
        for_each_text(v.value(), |slot, [name, email, digits]| {
            let o = offset(block << TEXT_BITS | u32::from(slot));
            for t in trigram_terms([name, email], digits) {
                members.entry(t).or_default().push(o);
            }
            true
        })?;
    }
    let mut table = txn.open_table(LEAD_TERMS)?;
    for (t, offsets) in members {
        let mut bits = Bits::empty();
        for o in offsets {
            bits.set(o, true);
        }
        if let Some(bytes) = bits.encode() {
            table.insert(term_key(tenant, chunk, &t).as_slice(), bytes.as_slice())?;
        }
    }
    Ok(())
}

/// Whether `ordinal`'s chunk has search sets: every ordinal of it was given out (`next` is
/// the tenant's counter).
fn sealed(ordinal: u32, next: u32) -> bool {
    ordinal >> CHUNK_BITS < next >> CHUNK_BITS
}

/// Notes the chunks a counter moving from `from` to `to` fills.
fn note_seals(tenant: &[u8; 16], from: u32, to: u32) {
    if to >> CHUNK_BITS > from >> CHUNK_BITS {
        PENDING.with_borrow_mut(|p| {
            p.seals
                .extend((from >> CHUNK_BITS..to >> CHUNK_BITS).map(|c| (*tenant, c)));
        });
    }
}

/// Forgets the index changes of a transaction that will not commit.
pub(crate) fn discard() {
    PENDING.with_borrow_mut(|p| {
        p.terms.clear();
        p.text.clear();
        p.counts.clear();
        p.seals.clear();
    });
}

/// A tenant's ordinal counter, and whether ordinals still follow `created_at` (a clock that
/// stepped back breaks that until the indexes are rebuilt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ordinals {
    next: u32,
    newest_created: i64,
    in_created_order: bool,
}

impl Ordinals {
    const FRESH: Ordinals = Ordinals {
        next: 0,
        newest_created: i64::MIN,
        in_created_order: true,
    };

    fn decode(bytes: &[u8]) -> Result<Ordinals, StoreError> {
        let bad = || StoreError::Corrupt("a tenant's lead ordinal counter does not decode".into());
        if bytes.len() != 13 {
            return Err(bad());
        }
        Ok(Ordinals {
            next: u32::from_be_bytes(bytes[..4].try_into().map_err(|_| bad())?),
            newest_created: i64::from_be_bytes(bytes[4..12].try_into().map_err(|_| bad())?),
            in_created_order: bytes[12] == 1,
        })
    }

    fn encode(&self) -> Vec<u8> {
        key(&[
            &self.next.to_be_bytes(),
            &self.newest_created.to_be_bytes(),
            &[u8::from(self.in_created_order)],
        ])
    }
}

fn read_ordinals(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tenant: TenantId,
) -> Result<Ordinals, StoreError> {
    match table.get(tenant.bytes().as_slice())? {
        Some(v) => Ordinals::decode(v.value()),
        None => Ok(Ordinals::FRESH),
    }
}

/// An ordinal's lead and the values it sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub id: LeadId,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_interaction_at: Option<i64>,
}

impl Row {
    fn of(lead: &Lead) -> Row {
        Row {
            id: lead.id,
            created_at: lead.created_at.ms(),
            updated_at: lead.updated_at.ms(),
            last_interaction_at: lead.last_interaction_at.map(Timestamp::ms),
        }
    }

    fn encode(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..16].copy_from_slice(&self.id.bytes());
        out[16..24].copy_from_slice(&self.created_at.to_be_bytes());
        out[24..32].copy_from_slice(&self.updated_at.to_be_bytes());
        out[32..].copy_from_slice(&self.last_interaction_at.unwrap_or(i64::MIN).to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Row, StoreError> {
        let bad = || StoreError::Corrupt("a lead index row does not decode".into());
        let bytes: &[u8; 40] = bytes.try_into().map_err(|_| bad())?;
        let int =
            |r: std::ops::Range<usize>| i64::from_be_bytes(bytes[r].try_into().expect("8 bytes"));
        let last = int(32..40);
        Ok(Row {
            id: LeadId::from_bytes(bytes[..16].try_into().expect("16 bytes")),
            created_at: int(16..24),
            updated_at: int(24..32),
            last_interaction_at: (last != i64::MIN).then_some(last),
        })
    }
}

/// A block of text entries: `(slot, name, email, digits)` sorted by slot, each string
/// length-prefixed (u16).
fn decode_text_block(bytes: &[u8]) -> Result<Vec<(u8, SearchFields)>, StoreError> {
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| StoreError::Corrupt("a lead search block does not decode".into()))
    };
    let mut out = Vec::new();
    let mut failed = None;
    for_each_text(bytes, |slot, [name, email, digits]| {
        match (text(name), text(email), text(digits)) {
            (Ok(name), Ok(email), Ok(digits)) => out.push((
                slot,
                SearchFields {
                    name,
                    email,
                    digits,
                },
            )),
            _ => {
                failed = Some(StoreError::Corrupt(
                    "a lead search block does not decode".into(),
                ))
            }
        }
        failed.is_none()
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Calls `f` with each entry of a text block (its slot, then name, e-mail and digits as
/// bytes, not checked to be UTF-8) until it returns false.
fn for_each_text(
    bytes: &[u8],
    mut f: impl FnMut(u8, [&[u8]; 3]) -> bool,
) -> Result<(), StoreError> {
    let mut rest = bytes;
    while let Some((&slot, tail)) = rest.split_first() {
        rest = tail;
        let name = take_field(&mut rest)?;
        let email = take_field(&mut rest)?;
        let digits = take_field(&mut rest)?;
        if !f(slot, [name, email, digits]) {
            break;
        }
    }
    Ok(())
}

/// One length-prefixed string off the front of `rest`.
fn take_field<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let bad = || StoreError::Corrupt("a lead search block does not decode".into());
    let (len, tail) = rest.split_at_checked(2).ok_or_else(bad)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let (s, tail) = tail.split_at_checked(len).ok_or_else(bad)?;
    *rest = tail;
    Ok(s)
}

fn encode_text_block(entries: &BTreeMap<u8, SearchFields>) -> Vec<u8> {
    let mut out = Vec::new();
    for (slot, f) in entries {
        out.push(*slot);
        for s in [&f.name, &f.email, &f.digits] {
            // Names and e-mails are far below 64 KiB (254 characters for an e-mail); a longer
            // one is cut at a character boundary and then simply matches less.
            let mut end = s.len().min(usize::from(u16::MAX));
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&(end as u16).to_be_bytes());
            out.extend_from_slice(&s.as_bytes()[..end]);
        }
    }
    out
}

/// The composite index's field part for a status or a stage: 17 bytes.
pub(crate) fn field_of(term: &Term) -> [u8; 17] {
    let mut field = [0u8; 17];
    let n = term.len().min(17);
    field[..n].copy_from_slice(&term[..n]);
    field
}

/// The fields a lead has an entry under in the composite indexes: its status and its stage.
fn fields(lead: &Lead) -> [[u8; 17]; 2] {
    [
        field_of(&term::status(lead.status)),
        field_of(&term::stage(lead.stage_id)),
    ]
}

fn field_key(tenant: TenantId, field: &[u8; 17], at: Timestamp, id: LeadId) -> Vec<u8> {
    key(&[&tenant.bytes(), field, &i64_key(at.ms()), &id.bytes()])
}

/// The index tables a lead write touches, opened once per job.
pub(crate) struct IndexTables<'txn> {
    ordinals: Table<'txn, &'static [u8], &'static [u8]>,
    rows: Table<'txn, &'static [u8], &'static [u8]>,
    by_field_updated: Table<'txn, &'static [u8], u32>,
    /// The last tenant's counter as this job read or wrote it (only these tables write it),
    /// so that a create reads it once.
    counter: Option<(TenantId, Ordinals)>,
}

impl<'txn> IndexTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(IndexTables {
            ordinals: txn.open_table(LEAD_ORDINALS)?,
            rows: txn.open_table(LEAD_ROWS)?,
            by_field_updated: txn.open_table(LEADS_BY_FIELD_UPDATED)?,
            counter: None,
        })
    }

    fn counter(&mut self, tenant: TenantId) -> Result<Ordinals, StoreError> {
        match self.counter {
            Some((t, ordinals)) if t == tenant => Ok(ordinals),
            _ => {
                let ordinals = read_ordinals(&self.ordinals, tenant)?;
                self.counter = Some((tenant, ordinals));
                Ok(ordinals)
            }
        }
    }

    /// Writes `tenant`'s counter, noting the chunks it fills by moving on from `before`.
    fn save_counter(
        &mut self,
        tenant: TenantId,
        before: u32,
        ordinals: Ordinals,
    ) -> Result<(), StoreError> {
        self.ordinals
            .insert(tenant.bytes().as_slice(), ordinals.encode().as_slice())?;
        note_seals(&tenant.bytes(), before, ordinals.next);
        self.counter = Some((tenant, ordinals));
        Ok(())
    }

    /// The next ordinal of `lead`'s tenant.
    pub(crate) fn allocate(&mut self, lead: &Lead) -> Result<u32, StoreError> {
        let tenant = lead.tenant_id;
        let mut ordinals = self.counter(tenant)?;
        let ordinal = ordinals.next;
        ordinals.next = ordinal.checked_add(1).ok_or_else(|| {
            StoreError::Storage(
                "this tenant has used every lead number; `leadbase check --repair` renumbers"
                    .into(),
            )
        })?;
        let created = lead.created_at.ms();
        if created < ordinals.newest_created {
            ordinals.in_created_order = false;
        }
        ordinals.newest_created = ordinals.newest_created.max(created);
        self.save_counter(tenant, ordinal, ordinals)?;
        Ok(ordinal)
    }

    /// Takes `ordinal` for `lead` (a rebuild that keeps the numbers a file has): the counter
    /// moves past it; created order holds while each claimed ordinal is above the last.
    pub(crate) fn claim(&mut self, lead: &Lead, ordinal: u32) -> Result<(), StoreError> {
        let tenant = lead.tenant_id;
        let mut ordinals = self.counter(tenant)?;
        if ordinal < ordinals.next || lead.created_at.ms() < ordinals.newest_created {
            ordinals.in_created_order = false;
        }
        let before = ordinals.next;
        ordinals.next = ordinals.next.max(ordinal.saturating_add(1));
        ordinals.newest_created = ordinals.newest_created.max(lead.created_at.ms());
        self.save_counter(tenant, before, ordinals)
    }

    /// Moves `tenant`'s counter on to `next` if it is behind (a rebuild into another file
    /// keeping the numbers of a file whose newest leads were deleted), so that the same
    /// chunks are sealed as there.
    pub(crate) fn advance(&mut self, tenant: TenantId, next: u32) -> Result<(), StoreError> {
        let mut ordinals = self.counter(tenant)?;
        if ordinals.next < next {
            let before = ordinals.next;
            ordinals.next = next;
            self.save_counter(tenant, before, ordinals)?;
        }
        Ok(())
    }

    /// Whether `ordinal` of `tenant` is in a sealed chunk (see [`seal`]).
    fn sealed(&mut self, tenant: TenantId, ordinal: u32) -> Result<bool, StoreError> {
        Ok(sealed(ordinal, self.counter(tenant)?.next))
    }

    /// Indexes `lead` at `ordinal`, replacing what `old` (the same lead before) had.
    pub(crate) fn put(
        &mut self,
        ordinal: u32,
        old: Option<&Lead>,
        lead: &Lead,
    ) -> Result<(), StoreError> {
        let tenant = lead.tenant_id;
        let t = tenant.bytes();
        // Most writes (a status, a score, an interaction) leave what the terms come from as it
        // was: then nothing is derived again, not even the custom fields' JSON parsed.
        let same_fields = old.is_some_and(|o| {
            (o.status, o.stage_id, o.owner_id) == (lead.status, lead.stage_id, lead.owner_id)
                && o.custom_fields_json == lead.custom_fields_json
        });
        if !same_fields {
            note_moves(
                &t,
                ordinal,
                &old.map(field_terms).unwrap_or_default(),
                &field_terms(lead),
            );
        }
        let same_contact = old.is_some_and(|o| {
            (&o.contact_name, &o.contact_email, &o.contact_phone)
                == (&lead.contact_name, &lead.contact_email, &lead.contact_phone)
        });
        if !same_contact {
            let fields = search_fields(lead);
            let old_fields = old.map(search_fields);
            if old_fields.as_ref() != Some(&fields) {
                if self.sealed(tenant, ordinal)? {
                    note_moves(
                        &t,
                        ordinal,
                        &old_fields.as_ref().map(text_terms).unwrap_or_default(),
                        &text_terms(&fields),
                    );
                }
                note_text(tenant, ordinal, Some(fields));
            }
        }
        self.put_fields(ordinal, old, lead)?;
        if old.is_none_or(|o| o.updated_at != lead.updated_at) {
            if let Some(old) = old {
                note_updated(&t, old.updated_at.ms(), -1);
            }
            note_updated(&t, lead.updated_at.ms(), 1);
        }
        let row = Row::of(lead);
        if old.map(Row::of) != Some(row) {
            self.rows.insert(
                ordinal_key(tenant, ordinal).as_slice(),
                row.encode().as_slice(),
            )?;
        }
        Ok(())
    }

    /// Takes `lead` (at `ordinal`) out of every index.
    pub(crate) fn remove(&mut self, ordinal: u32, lead: &Lead) -> Result<(), StoreError> {
        let t = lead.tenant_id.bytes();
        let mut terms = field_terms(lead);
        if self.sealed(lead.tenant_id, ordinal)? {
            terms.extend(text_terms(&search_fields(lead)));
        }
        for gone in terms {
            note(&t, ordinal, &gone, false);
        }
        self.rows
            .remove(ordinal_key(lead.tenant_id, ordinal).as_slice())?;
        note_text(lead.tenant_id, ordinal, None);
        note_updated(&t, lead.updated_at.ms(), -1);
        for field in fields(lead) {
            let (tenant, id) = (lead.tenant_id, lead.id);
            self.by_field_updated
                .remove(field_key(tenant, &field, lead.updated_at, id).as_slice())?;
        }
        Ok(())
    }

    /// The composite index entries of `lead`, replacing `old`'s where they differ.
    fn put_fields(
        &mut self,
        ordinal: u32,
        old: Option<&Lead>,
        lead: &Lead,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (lead.tenant_id, lead.id);
        let old_fields = old.map(|o| (fields(o), o.updated_at));
        for (i, field) in fields(lead).iter().enumerate() {
            // An entry that would be written again as it is stays; else the old one goes.
            if let Some((f, at)) = old_fields.map(|(f, at)| (f[i], at)) {
                if f == *field && at == lead.updated_at {
                    continue;
                }
                self.by_field_updated
                    .remove(field_key(tenant, &f, at, id).as_slice())?;
            }
            self.by_field_updated.insert(
                field_key(tenant, field, lead.updated_at, id).as_slice(),
                ordinal,
            )?;
        }
        Ok(())
    }
}

/// The places of one searcher's needle in a text block, met field by field in the block's
/// order: the next place at or after the fields asked about so far.
struct Places<'a> {
    finder: &'a memchr::memmem::Finder<'a>,
    block: &'a [u8],
    next: Option<usize>,
}

impl<'a> Places<'a> {
    fn new(finder: &'a memchr::memmem::Finder<'a>, block: &'a [u8]) -> Places<'a> {
        Places {
            finder,
            block,
            next: finder.find(block),
        }
    }

    /// Whether the needle is nowhere in the block.
    fn none(&self) -> bool {
        self.next.is_none()
    }

    /// Whether the needle is inside `field` (a piece of the block, after every field asked
    /// about before). A place before the field is searched past, from the field's start; a
    /// place that starts in the field and runs out of it means none is inside: a place
    /// wholly inside would start before it and have been found first.
    fn within(&mut self, field: &[u8]) -> bool {
        let start = field.as_ptr() as usize - self.block.as_ptr() as usize;
        let end = start + field.len();
        let needle = self.finder.needle().len();
        if field.len() < needle {
            return false;
        }
        loop {
            match self.next {
                None => return false,
                Some(at) if at < start => {
                    self.next = self.finder.find(&self.block[start..]).map(|p| start + p);
                }
                Some(at) => return at + needle <= end,
            }
        }
    }
}

/// What reading one member's row costs against stepping over one sort index entry (a point
/// read against an iterator step, roughly).
pub(crate) const ROW_COST: u64 = 8;

/// The rows a walk of the created-at index checks, one after another in the walk's direction.
/// While numbers follow creation that walk meets them in order (but for leads created in the
/// same millisecond), so one range over the rows serves nearly all of them: a step each
/// instead of a lookup each. A row the range has passed is looked up.
pub(crate) struct RowsAlong {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    tenant: TenantId,
    descending: bool,
    along: bool,
    /// Opened at the first row asked for; with the next row in the walk's direction.
    range: Option<(RowRange, Option<(u32, Row)>)>,
}

type RowRange = redb::Range<'static, &'static [u8], &'static [u8]>;

impl RowsAlong {
    /// `along`: numbers follow the walk (else every row is looked up).
    pub(crate) fn new(
        txn: &redb::ReadTransaction,
        tenant: TenantId,
        descending: bool,
        along: bool,
    ) -> Result<RowsAlong, StoreError> {
        Ok(RowsAlong {
            table: txn.open_table(LEAD_ROWS)?,
            tenant,
            descending,
            along,
            range: None,
        })
    }

    pub(crate) fn get(&mut self, ordinal: u32) -> Result<Option<Row>, StoreError> {
        if self.along && self.range.is_none() {
            let (here, end) = (
                ordinal_key(self.tenant, ordinal),
                ordinal_key(self.tenant, if self.descending { 0 } else { u32::MAX }),
            );
            let mut range = if self.descending {
                self.table
                    .range::<&[u8]>(end.as_slice()..=here.as_slice())?
            } else {
                self.table
                    .range::<&[u8]>(here.as_slice()..=end.as_slice())?
            };
            let head = step(&mut range, self.descending)?;
            self.range = Some((range, head));
        }
        if let Some((range, head)) = &mut self.range {
            while let Some((at, row)) = *head {
                if at == ordinal {
                    *head = step(range, self.descending)?;
                    return Ok(Some(row));
                }
                if (at > ordinal) != self.descending {
                    break;
                }
                *head = step(range, self.descending)?;
            }
        }
        self.table
            .get(ordinal_key(self.tenant, ordinal).as_slice())?
            .map(|v| Row::decode(v.value()))
            .transpose()
    }
}

/// The next row of `range`, forwards or backwards.
fn step(range: &mut RowRange, descending: bool) -> Result<Option<(u32, Row)>, StoreError> {
    let next = if descending {
        range.next_back()
    } else {
        range.next()
    };
    let Some(entry) = next else { return Ok(None) };
    let (k, v) = entry?;
    let ordinal = number_after_tenant(k.value(), "lead row key")?;
    Ok(Some((ordinal, Row::decode(v.value())?)))
}

/// An entry of a sort index: (tenant, at, id) -> ordinal.
type IndexEntry<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, u32>,
);

/// A time column with an index that holds ordinals.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Column {
    Created,
    Updated,
}

impl Column {
    fn index(self) -> TableDefinition<'static, &'static [u8], u32> {
        match self {
            Column::Created => LEADS_BY_CREATED,
            Column::Updated => LEADS_BY_UPDATED,
        }
    }

    fn of(self, row: &Row) -> i64 {
        match self {
            Column::Created => row.created_at,
            Column::Updated => row.updated_at,
        }
    }
}

/// One tenant's indexes as a read transaction (or a write one) sees them.
pub(crate) struct TenantIndex<'t, T: Txn> {
    txn: &'t T,
    tenant: TenantId,
    ordinals: Ordinals,
}

impl<'t, T: Txn> TenantIndex<'t, T> {
    pub(crate) fn open(txn: &'t T, tenant: TenantId) -> Result<Self, StoreError> {
        let ordinals = read_ordinals(&txn.table(LEAD_ORDINALS)?, tenant)?;
        Ok(TenantIndex {
            txn,
            tenant,
            ordinals,
        })
    }

    fn chunks(&self) -> u32 {
        chunk_count(self.ordinals.next)
    }

    /// The number the tenant's next lead gets.
    pub(crate) fn next_ordinal(&self) -> u32 {
        self.ordinals.next
    }

    /// Whether a lower number means a lead created no later (a clock that stepped back
    /// breaks that until the indexes are rebuilt).
    pub(crate) fn in_created_order(&self) -> bool {
        self.ordinals.in_created_order
    }

    /// The smallest number from which on every lead was created at or after `at` (the counter
    /// when none was), found by halving: numbers follow creation.
    pub(crate) fn first_number_created_from(&self, at: i64) -> Result<u32, StoreError> {
        let table = self.txn.table(LEAD_ROWS)?;
        let end = ordinal_key(self.tenant, u32::MAX);
        // The created_at of the first lead numbered `from` or after (None: there is none).
        let created_from = |from: u32| -> Result<Option<i64>, StoreError> {
            let start = ordinal_key(self.tenant, from);
            match table
                .range::<&[u8]>(start.as_slice()..=end.as_slice())?
                .next()
            {
                Some(entry) => Ok(Some(Row::decode(entry?.1.value())?.created_at)),
                None => Ok(None),
            }
        };
        let (mut lo, mut hi) = (0, self.ordinals.next);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match created_from(mid)? {
                Some(created) if created < at => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    pub(crate) fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Every lead of the tenant.
    pub(crate) fn all(&self) -> Result<Set, StoreError> {
        self.term(&term::all(), None)
    }

    /// The leads under `term`, only among `within` when given (only its chunks are read).
    pub(crate) fn term(&self, term: &[u8], within: Option<&Set>) -> Result<Set, StoreError> {
        let table = self.txn.table(LEAD_TERMS)?;
        let t = self.tenant.bytes();
        let mut set = Set::with_chunks(self.chunks());
        let mut read = |chunk: u32| -> Result<(), StoreError> {
            if let Some(v) = table.get(term_key(&t, chunk, term).as_slice())? {
                let mut bits = Bits::decode(v.value())?;
                if let Some(mask) = within.and_then(|w| w.chunks.get(chunk as usize)?.as_ref()) {
                    bits.and(mask);
                }
                if !bits.is_empty() {
                    set.chunks[chunk as usize] = Some(bits);
                }
            }
            Ok(())
        };
        match within {
            Some(w) => w.chunk_ids().try_for_each(&mut read)?,
            None => (0..self.chunks()).try_for_each(&mut read)?,
        }
        Ok(set)
    }

    /// The leads created at or after `since`, as one range of ordinals, when ordinals still
    /// follow creation (else None). The created-at index holds each lead's ordinal.
    pub(crate) fn created_since(&self, since: Timestamp) -> Result<Option<Set>, StoreError> {
        if !self.ordinals.in_created_order {
            return Ok(None);
        }
        let index = self.txn.table(LEADS_BY_CREATED)?;
        let prefix = self.tenant.bytes();
        let (lower, upper) = since_bounds(&prefix, since.ms());
        // Leads created in the same millisecond may have ordinals in another order than their
        // ids: the smallest ordinal of the first millisecond at or after `since` starts the range.
        let mut first: Option<(Vec<u8>, u32)> = None;
        for entry in index.range::<&[u8]>(lower.as_slice()..upper.as_slice())? {
            let (k, v) = entry?;
            let at = k
                .value()
                .get(16..24)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            match &mut first {
                None => first = Some((at, v.value())),
                Some((ms, lowest)) if *ms == at => *lowest = (*lowest).min(v.value()),
                Some(_) => break,
            }
        }
        let Some((_, lowest)) = first else {
            return Ok(Some(Set::default()));
        };
        let mut set = Set::range(lowest, self.ordinals.next);
        set.and(&self.all()?);
        Ok(Some(set))
    }

    /// The leads whose `column` is at or after `since`, among `within` when given: the
    /// members' rows when `within` is small, else the side of `since` in the column's index
    /// that holds fewer leads (by where `since` falls between the first and last value).
    pub(crate) fn since(
        &self,
        column: Column,
        since: Timestamp,
        within: Option<&Set>,
    ) -> Result<Set, StoreError> {
        let index = self.txn.table(column.index())?;
        let prefix = self.tenant.bytes();
        let (lower, upper) = since_bounds(&prefix, since.ms());
        let value = |entry: Option<Result<IndexEntry<'_>, redb::StorageError>>| {
            Ok::<_, StoreError>(match entry {
                Some(e) => e?.0.value().get(16..24).and_then(i64_from_key),
                None => None,
            })
        };
        let mut all = index.range::<&[u8]>(prefix.as_slice()..upper.as_slice())?;
        // One entry is both ends: the range gives it to `next` and then nothing to `next_back`.
        let first = value(all.next())?;
        let last = value(all.next_back())?.or(first);
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Set::default());
        };
        let t = since.ms();
        let share_after = if last > first {
            ((last - t) as f64 / (last - first) as f64).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let most_are_after = share_after > 0.5;
        let walk = f64::from(self.ordinals.next) * share_after.min(1.0 - share_after);
        if let Some(within) = within
            && (within.len() * self.row_cost(within)) as f64 <= walk
        {
            let mut set = Set::default();
            self.rows(within, |ordinal, row| {
                if column.of(&row) >= t {
                    set.insert(ordinal);
                }
            })?;
            return Ok(set);
        }
        let range = if most_are_after {
            index.range::<&[u8]>(prefix.as_slice()..lower.as_slice())?
        } else {
            index.range::<&[u8]>(lower.as_slice()..upper.as_slice())?
        };
        let mut set = Set::default();
        for entry in range {
            set.insert(entry?.1.value());
        }
        if most_are_after {
            let mut after = match within {
                Some(w) => w.clone(),
                None => self.all()?,
            };
            after.and_not(&set);
            set = after;
        }
        Ok(set)
    }

    /// How many of the tenant's `tenant_size` leads were updated at or after `since`, from the
    /// updated-at counts: the spans before `since` at every level (at most 64 at each), then
    /// the index entries of its own 128 ms.
    pub(crate) fn count_updated_since(
        &self,
        since: Timestamp,
        tenant_size: u64,
    ) -> Result<u64, StoreError> {
        let counts = self.txn.table(LEAD_UPDATED_COUNTS)?;
        let t = self.tenant.bytes();
        let ms = since.ms();
        let mut before = 0u64;
        let top = COUNT_LEVELS.len() - 1;
        let sum = |level: usize, from: i64, to: i64| -> Result<u64, StoreError> {
            let (lo, hi) = (count_key(&t, level, from), count_key(&t, level, to));
            let mut n = 0;
            for entry in counts.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
                n += entry?.1.value();
            }
            Ok(n)
        };
        before += sum(top, i64::MIN, ms >> COUNT_LEVELS[top])?;
        for level in (0..top).rev() {
            let shift = COUNT_LEVELS[level + 1] - COUNT_LEVELS[level];
            let parent = ms >> COUNT_LEVELS[level + 1];
            before += sum(level, parent << shift, ms >> COUNT_LEVELS[level])?;
        }
        let index = self.txn.table(LEADS_BY_UPDATED)?;
        let start = (ms >> COUNT_LEVELS[0]) << COUNT_LEVELS[0];
        let lo = key(&[&t, &i64_key(start)]);
        let hi = key(&[&t, &i64_key(ms)]);
        for entry in index.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
            entry?;
            before += 1;
        }
        Ok(tenant_size.saturating_sub(before))
    }

    /// The leads of `within` whose name, e-mail or phone matches `search`: trigram sets narrow
    /// the candidates, the text blocks decide.
    pub(crate) fn search(&self, search: &SearchQuery, within: Set) -> Result<Set, StoreError> {
        let text = search.text().as_bytes();
        let digits = search.digits().map(str::as_bytes);
        // The open chunk has no search sets yet (see [`seal`]): its leads are all candidates.
        let mut within = within;
        let open = within.split_off(self.ordinals.next >> CHUNK_BITS);
        let narrow = |kind: fn(&[u8]) -> Term, q: &[u8]| -> Result<Set, StoreError> {
            let mut set = within.clone();
            let mut size = set.len();
            let mut idle = 0;
            // Trigrams three apart first (they share no letter, so each tells the most), then
            // the rest; each read is bounded by `set`'s chunks (a lookup each). The text check
            // decides anyway: after two trigrams in a row that each took away less than an
            // eighth of many candidates (as the rest of "gmail.com" does after "gma"), the
            // next ones would cost more than they save.
            let windows = q.len() - 2;
            for i in (0..windows)
                .step_by(3)
                .chain((0..windows).filter(|i| i % 3 != 0))
            {
                set = self.term(&kind(&q[i..i + 3]), Some(&set))?;
                let n = set.len();
                if n == 0 {
                    break;
                }
                idle = match n > 1 << CHUNK_BITS && n * 8 > size * 7 {
                    true => idle + 1,
                    false => 0,
                };
                if idle == 2 {
                    break;
                }
                size = n;
            }
            Ok(set)
        };
        let mut candidates = if text.len() >= 3 {
            narrow(term::text, text)?
        } else {
            within.clone()
        };
        if let Some(digits) = digits {
            candidates.or(&narrow(term::phone, digits)?);
        }
        // A 3-byte query (and 3 digits) is a trigram: its set is the answer.
        if text.len() == 3 && digits.is_none_or(|d| d.len() == 3) {
            candidates.or(&self.check_text(search, open)?);
            return Ok(candidates);
        }
        candidates.or(&open);
        self.check_text(search, candidates)
    }

    /// The members of `candidates` whose text blocks match, compared as
    /// [`SearchQuery::matches_fields`] does (substring of the name or e-mail, or of the phone's
    /// digits for a query with three). Each block is searched whole, once per searcher, and
    /// the places found are matched to its fields: a block with no place is skipped, and a
    /// field is searched only when a place is in it or a place spanning from it was found.
    fn check_text(&self, search: &SearchQuery, candidates: Set) -> Result<Set, StoreError> {
        let text = memchr::memmem::Finder::new(search.text().as_bytes());
        let digits = search
            .digits()
            .map(|d| memchr::memmem::Finder::new(d.as_bytes()));
        let table = self.txn.table(LEAD_TEXT)?;
        let mut found = Set::with_chunks(self.chunks());
        for block in candidates.groups(TEXT_BITS) {
            let Some(v) = table.get(text_key(self.tenant, block << TEXT_BITS).as_slice())? else {
                continue;
            };
            let bytes = v.value();
            let mut texts = Places::new(&text, bytes);
            let mut phones = digits.as_ref().map(|d| Places::new(d, bytes));
            if texts.none() && phones.as_ref().is_none_or(Places::none) {
                continue;
            }
            for_each_text(bytes, |slot, [name, email, phone]| {
                let o = block << TEXT_BITS | u32::from(slot);
                if candidates.contains(o)
                    && (texts.within(name)
                        || texts.within(email)
                        || phones.as_mut().is_some_and(|p| p.within(phone)))
                {
                    found.insert(o);
                }
                true
            })?;
        }
        Ok(found)
    }

    /// What reading the row of each member of `set` costs against an index step: a point
    /// read each, or one step each when the members are dense enough in their span of
    /// ordinals to read the span in order.
    pub(crate) fn row_cost(&self, set: &Set) -> u64 {
        match (set.first(), set.last()) {
            (Some(lo), Some(hi)) if set.len() * 4 > u64::from(hi - lo) + 1 => 1,
            _ => ROW_COST,
        }
    }

    /// Calls `f` with the row of every member of `set` (reading its span of ordinals in order
    /// when the members are dense in it).
    pub(crate) fn rows(&self, set: &Set, mut f: impl FnMut(u32, Row)) -> Result<(), StoreError> {
        let table = self.txn.table(LEAD_ROWS)?;
        if self.row_cost(set) == 1
            && let (Some(lo), Some(hi)) = (set.first(), set.last())
        {
            let (lo, hi) = (ordinal_key(self.tenant, lo), ordinal_key(self.tenant, hi));
            for entry in table.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
                let (k, v) = entry?;
                let ordinal = number_after_tenant(k.value(), "lead row key")?;
                if set.contains(ordinal) {
                    f(ordinal, Row::decode(v.value())?);
                }
            }
        } else {
            for ordinal in set.iter() {
                if let Some(v) = table.get(ordinal_key(self.tenant, ordinal).as_slice())? {
                    f(ordinal, Row::decode(v.value())?);
                }
            }
        }
        Ok(())
    }
}

/// Marks the tenant's ordinals as no longer in created order (what a clock stepping back does).
#[cfg(test)]
pub(crate) fn forget_created_order(
    txn: &WriteTransaction,
    tenant: TenantId,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(LEAD_ORDINALS)?;
    let mut ordinals = read_ordinals(&table, tenant)?;
    ordinals.in_created_order = false;
    table.insert(tenant.bytes().as_slice(), ordinals.encode().as_slice())?;
    Ok(())
}

/// What is wrong with the file's ordinal counters, against those of `fresh` (the same leads
/// indexed afresh with their numbers kept): a counter must be past every number given, and
/// may say "in created order" only if the numbers are.
pub(crate) fn compare_ordinals(
    real: &redb::ReadTransaction,
    fresh: &redb::ReadTransaction,
) -> Result<Vec<String>, StoreError> {
    let (real, fresh) = (
        real.open_table(LEAD_ORDINALS)?,
        fresh.open_table(LEAD_ORDINALS)?,
    );
    let mut problems = Vec::new();
    for entry in fresh.iter()? {
        let (k, v) = entry?;
        let want = Ordinals::decode(v.value())?;
        let tenant = hex::encode(k.value());
        match real.get(k.value())? {
            None => problems.push(format!("lead numbering: tenant {tenant} has no counter")),
            Some(have) => {
                let have = Ordinals::decode(have.value())?;
                if have.next < want.next {
                    problems.push(format!(
                        "lead numbering: tenant {tenant}'s counter is at {} but a lead has number {}",
                        have.next,
                        want.next - 1
                    ));
                }
                if have.in_created_order && !want.in_created_order {
                    problems.push(format!(
                        "lead numbering: tenant {tenant} is marked in created order but is not"
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// Takes out the search sets of each tenant's open chunk, which [`seal`] writes once it is
/// full (the migration to schema 9: before, every chunk had them); returns how many entries.
pub(crate) fn unseal_open_chunks(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut open = Vec::new();
    for entry in txn.open_table(LEAD_ORDINALS)?.iter()? {
        let (k, v) = entry?;
        let next = Ordinals::decode(v.value())?.next;
        if !sealed(next.saturating_sub(1), next) {
            open.push((k.value().to_vec(), next >> CHUNK_BITS));
        }
    }
    let mut table = txn.open_table(LEAD_TERMS)?;
    let mut removed = 0;
    for (tenant, chunk) in open {
        for kind in [b'p', b't'] {
            let at = |kind: u8| key(&[&tenant, &chunk.to_be_bytes(), &[kind]]);
            let (lo, hi) = (at(kind), at(kind + 1));
            let keys = table
                .range::<&[u8]>(lo.as_slice()..hi.as_slice())?
                .map(|e| e.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<Vec<_>, _>>()?;
            for k in keys {
                table.remove(k.as_slice())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Opens (so creates) the tables only `flush` writes to, for a rebuild with nothing to flush.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for table in [LEAD_TEXT, LEAD_TERMS] {
        txn.open_table(table)?;
    }
    txn.open_table(LEAD_UPDATED_COUNTS)?;
    Ok(())
}

/// Drops every table this module keeps (a rebuild writes them anew).
pub(crate) fn drop_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for table in [LEAD_ORDINALS, LEAD_ROWS, LEAD_TEXT, LEAD_TERMS] {
        txn.delete_table(table)?;
    }
    txn.delete_table(LEADS_BY_FIELD_UPDATED)?;
    txn.delete_table(LEAD_UPDATED_COUNTS)?;
    discard();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_as_lists_and_bitmaps() {
        for members in [vec![0u16, 7, 4095], (0..300).map(|i| i * 13).collect()] {
            let mut bits = Bits::empty();
            for m in &members {
                bits.set(*m, true);
            }
            let bytes = bits.encode().unwrap();
            assert_eq!(bytes[0], u8::from(members.len() >= LIST_MAX));
            let back = Bits::decode(&bytes).unwrap();
            assert_eq!(back.iter().collect::<Vec<_>>(), members);
        }
        assert!(
            Bits::empty().encode().is_none(),
            "an empty chunk is no entry"
        );
        assert!(Bits::decode(&[2, 0]).is_err());
        assert!(Bits::decode(&[0, 1]).is_err());
    }

    #[test]
    fn sets_intersect_unite_and_subtract() {
        let mut a = Set::range(10, 9_000);
        let b = Set::range(4_000, 20_000);
        a.and(&b);
        assert_eq!(a.len(), 5_000);
        assert_eq!(a.iter().next(), Some(4_000));
        assert!(a.contains(8_999) && !a.contains(9_000) && !a.contains(3_999));
        let mut c = Set::range(0, 5);
        c.or(&Set::range(8_190, 8_200));
        assert_eq!(c.iter().collect::<Vec<_>>().len(), 15);
        c.and_not(&Set::range(0, 3));
        assert_eq!(c.iter().take(2).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!((c.first(), c.last()), (Some(3), Some(8_199)));
        for (lo, hi) in [
            (0, 1),
            (63, 64),
            (64, 65),
            (5, 4_200),
            (4_095, 8_193),
            (7, 7),
        ] {
            let set = Set::range(lo, hi);
            assert_eq!(set.iter().collect::<Vec<_>>(), (lo..hi).collect::<Vec<_>>());
        }
        assert_eq!(
            c.groups(8).collect::<Vec<_>>(),
            vec![0, 31, 32],
            "8,190..8,200 spans two"
        );
        assert_eq!(
            (Set::default().first(), Set::default().last()),
            (None, None)
        );
    }

    #[test]
    fn text_blocks_round_trip() {
        let entries = BTreeMap::from([
            (
                0,
                SearchFields::of(Some("Ada Lovelace"), None, Some("+12065550123")),
            ),
            (63, SearchFields::of(None, Some("élodie@example.fr"), None)),
        ]);
        let bytes = encode_text_block(&entries);
        let back: BTreeMap<u8, SearchFields> =
            decode_text_block(&bytes).unwrap().into_iter().collect();
        assert_eq!(back, entries);
        assert!(decode_text_block(&bytes[..bytes.len() - 1]).is_err());
    }

    /// A block's places of a needle, matched field by field: inside a field or not at all (a
    /// place across two fields, or in the bytes between them, counts for neither).
    #[test]
    fn places_in_a_text_block_belong_to_the_field_they_are_inside() {
        let fields = |name: &str, email: &str, digits: &str| SearchFields {
            name: name.into(),
            email: email.into(),
            digits: digits.into(),
        };
        let entries = BTreeMap::from([
            (0, fields("ab", "", "")),
            (1, fields("bab", "xab@ab.com", "")),
            (2, fields("a", "b", "")),
            (5, fields("", "", "0ab")),
            (9, fields("zzab", "ab", "")),
        ]);
        let block = encode_text_block(&entries);
        let finder = memchr::memmem::Finder::new(b"ab");
        let mut places = Places::new(&finder, &block);
        let mut seen = Vec::new();
        for_each_text(&block, |slot, [name, email, digits]| {
            let (n, e, d) = (
                places.within(name),
                places.within(email),
                places.within(digits),
            );
            seen.push((slot, n, e, d));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, true, false, false),
                (1, true, true, false),
                (2, false, false, false),
                (5, false, false, true),
                (9, true, true, false),
            ]
        );
        let absent = memchr::memmem::Finder::new(b"qq");
        assert!(Places::new(&absent, &block).none());
    }

    #[test]
    fn a_lead_created_before_the_newest_one_ends_the_created_order() {
        let (_dir, store, tenant) = crate::store::testing::store_with_tenant();
        let order = store
            .write(move |txn| {
                let mut tables = IndexTables::open(txn)?;
                let lead = |at: i64| Lead {
                    id: LeadId::new(),
                    tenant_id: tenant,
                    status: crate::domain::lead::LeadStatus::Active,
                    source_platform: crate::domain::lead::SourcePlatform::Direct,
                    source_type: crate::domain::lead::SourceType::Manual,
                    created_at: Timestamp(at),
                    updated_at: Timestamp(at),
                    contact_name: None,
                    contact_phone: None,
                    contact_email: Some("a@b.co".into()),
                    score: None,
                    qualified: None,
                    stage_id: crate::domain::ids::StageId::new(),
                    owner_id: None,
                    last_interaction_at: None,
                    interaction_count: 0,
                    custom_fields_json: "{}".into(),
                    version: 1,
                };
                let first = tables.allocate(&lead(1_000))?;
                let second = tables.allocate(&lead(1_000))?;
                let in_order = read_ordinals(&tables.ordinals, tenant)?.in_created_order;
                tables.allocate(&lead(999))?;
                let after = read_ordinals(&tables.ordinals, tenant)?;
                Ok((first, second, in_order, after.in_created_order, after.next))
            })
            .unwrap();
        assert_eq!(order, (0, 1, true, false, 3));
        store.shutdown();
    }

    #[test]
    fn rows_round_trip() {
        let row = Row {
            id: LeadId::new(),
            created_at: -5,
            updated_at: 1_700_000_000_000,
            last_interaction_at: None,
        };
        assert_eq!(Row::decode(&row.encode()).unwrap(), row);
        let row = Row {
            last_interaction_at: Some(3),
            ..row
        };
        assert_eq!(Row::decode(&row.encode()).unwrap(), row);
    }
}
