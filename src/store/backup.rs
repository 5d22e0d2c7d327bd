//! Online backup (spec §14): every table as one read transaction sees it, copied into a new
//! data file while writes go on. redb has no backup call; a read transaction is a snapshot,
//! so the copy is the file at one commit, whatever commits meanwhile. The copy is written in
//! transactions of [`BATCH`] entries that need not reach the disk one by one, and one durable
//! commit at the end: memory stays bounded and only the finished copy is ever on disk.

use std::path::Path;

use redb::{Database, Durability, ReadTransaction, ReadableTable, TableDefinition, TableHandle};

use super::{Store, StoreError};

/// Entries copied per transaction of the copy.
const BATCH: usize = 50_000;

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub tables: usize,
    pub entries: u64,
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the whole data file to `to`, a new file (an existing one is
    /// refused): a normal data file, private to this user like the original.
    pub fn backup_to(&self, to: &Path) -> Result<BackupSummary, StoreError> {
        if to.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists; a backup writes a new file",
                to.display()
            )));
        }
        let out = create_private(to)?;
        let copied = self.read(|txn| copy_all(txn, &out));
        drop(out);
        match copied {
            Ok((tables, entries)) => Ok(BackupSummary {
                tables,
                entries,
                bytes: std::fs::metadata(to).map_or(0, |m| m.len()),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(to);
                Err(e)
            }
        }
    }
}

/// A new redb file only this user can read (the data's mode: its secrets are hashed, but its
/// leads are personal data), with a small cache (it is written once, in order). A file of
/// that name is refused; a failure leaves none behind.
pub(crate) fn create_private(path: &Path) -> Result<Database, StoreError> {
    let io =
        |e: std::io::Error| StoreError::Storage(format!("cannot create {}: {e}", path.display()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(io)?;
    }
    redb::Builder::new()
        .set_cache_size(64 << 20)
        .create(path)
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            StoreError::from(e)
        })
}

/// Copies every table of `txn` into `out`; returns (tables, entries).
fn copy_all(txn: &ReadTransaction, out: &Database) -> Result<(usize, u64), StoreError> {
    let mut tables = 0;
    let mut entries = 0;
    for handle in txn.list_tables()? {
        entries += copy_table(txn, out, handle.name())?;
        tables += 1;
    }
    let mut last = out.begin_write()?;
    last.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Storage(e.to_string()))?;
    last.commit()?;
    Ok((tables, entries))
}

/// Copies one table whatever its layout (each of leadbase's is tried until one fits; a table
/// of another layout is an error, so a new one cannot be left out silently).
fn copy_table(txn: &ReadTransaction, out: &Database, name: &str) -> Result<u64, StoreError> {
    macro_rules! try_layout {
        ($k:ty, $v:ty) => {
            let def: TableDefinition<$k, $v> = TableDefinition::new(name);
            if let Ok(source) = txn.open_table(def) {
                let mut n = 0u64;
                let mut entries = source.iter()?;
                let mut more = true;
                // At least one transaction: the table exists in the copy even when empty.
                while more {
                    let mut w = out.begin_write()?;
                    w.set_durability(Durability::None)
                        .map_err(|e| StoreError::Storage(e.to_string()))?;
                    {
                        let mut table = w.open_table(def)?;
                        more = false;
                        for entry in entries.by_ref() {
                            let (k, v) = entry?;
                            table.insert(k.value(), v.value())?;
                            n += 1;
                            if n % BATCH as u64 == 0 {
                                more = true;
                                break;
                            }
                        }
                    }
                    w.commit()?;
                }
                return Ok(n);
            }
        };
    }
    try_layout!(&[u8], &[u8]);
    try_layout!(&[u8], ());
    try_layout!(&[u8], u64);
    try_layout!(&[u8], u32);
    try_layout!(&str, &[u8]);
    Err(StoreError::Storage(format!(
        "table {name} has a layout the backup does not copy"
    )))
}
