//! The open database, shared by readers and the writer, and its reopening after a storage error.
//!
//! After a commit fails for want of storage (a full disk, an I/O error), redb refuses every later
//! operation on that `Database` ("previous I/O error"), even once the cause is gone; only a new
//! `Database` on the same file recovers, rolling back to the last durable commit. So the writer
//! marks the store unwritable, refuses writes, and reopens the file after a wait that doubles
//! while the error persists. Nothing acknowledged is lost: a batch whose commit failed told every
//! caller so, and every batch that committed is durable.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use redb::Database;

use super::StoreError;

/// The first wait before a reopen, and the longest: a disk that stays full is probed less often,
/// since a reopen after a failed commit rebuilds redb's allocator state, reading the whole file.
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Opens the file with leadbase's settings (a page cache of `cache_bytes`); at first start and
/// at every reopen.
pub(super) fn open_database(
    path: &Path,
    cache_bytes: usize,
) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(cache_bytes).create(path)
}

enum State {
    Open(Arc<Database>),
    /// Closed for a reopen, or a reopen failed.
    Reopening,
    /// The store was shut down.
    Closed,
}

pub(super) struct Handle {
    state: RwLock<State>,
    writable: AtomicBool,
    cache_bytes: usize,
}

impl Handle {
    pub(super) fn new(db: Database, cache_bytes: usize) -> Handle {
        Handle {
            state: RwLock::new(State::Open(Arc::new(db))),
            writable: AtomicBool::new(true),
            cache_bytes,
        }
    }

    /// The database to read or write in. A failed one stays open for reads (most pages are in
    /// its cache) until the writer closes it to reopen.
    pub(super) fn current(&self) -> Result<Arc<Database>, StoreError> {
        match &*self.state.read() {
            State::Open(db) => Ok(Arc::clone(db)),
            State::Reopening => Err(unavailable()),
            State::Closed => Err(StoreError::Closed),
        }
    }

    /// Whether writes can commit, as far as the last commit showed.
    pub(super) fn writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    pub(super) fn close(&self) {
        *self.state.write() = State::Closed;
    }

    /// Closes the failed database and opens the file again. Refuses, leaving the failed one
    /// serving reads, while the disk still cannot take a write, or while readers hold it past a
    /// moment (redb locks the file once per `Database`: it must be gone before another opens).
    fn reopen(&self, path: &Path) -> Result<(), Reopen> {
        if let Err(e) = space_for_a_write(path) {
            return Err(Reopen::NoSpace(e));
        }
        let old = {
            let mut state = self.state.write();
            std::mem::replace(&mut *state, State::Reopening)
        };
        if let State::Open(db) = old {
            let deadline = Instant::now() + READERS_LET_GO;
            let mut db = db;
            loop {
                match Arc::try_unwrap(db) {
                    Ok(only) => {
                        drop(only);
                        break;
                    }
                    Err(shared) if Instant::now() >= deadline => {
                        *self.state.write() = State::Open(shared);
                        return Err(Reopen::InUse);
                    }
                    Err(shared) => {
                        db = shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        let db = open_database(path, self.cache_bytes).map_err(Reopen::Open)?;
        *self.state.write() = State::Open(Arc::new(db));
        self.writable.store(true, Ordering::Release);
        Ok(())
    }
}

/// How long a reopen waits for reads in progress on the failed database to finish.
const READERS_LET_GO: Duration = Duration::from_secs(1);

enum Reopen {
    NoSpace(std::io::Error),
    InUse,
    Open(redb::DatabaseError),
}

/// Whether the data file's file system takes a small write now: written, synced and removed
/// beside the data file, so a reopen does not trade a working read cache for a second failure.
fn space_for_a_write(path: &Path) -> std::io::Result<()> {
    let probe = path.with_extension("space-check");
    let result = (|| {
        let mut file = std::fs::File::create(&probe)?;
        std::io::Write::write_all(&mut file, &[0u8; 64 * 1024])?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    result
}

/// What writes see while the file cannot be written.
pub(super) fn unavailable() -> StoreError {
    StoreError::Unavailable(
        "writes are refused until the data file is reopened after a storage error".into(),
    )
}

/// The writer's side: when it reopens the file next.
pub(super) struct Recovery {
    retry_at: Option<Instant>,
    wait: Duration,
}

impl Recovery {
    pub(super) fn new() -> Recovery {
        Recovery {
            retry_at: None,
            wait: FIRST_WAIT,
        }
    }

    /// When the writer must wake to reopen the file, if it is down.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// A commit failed for want of storage: writes are refused until the file is reopened.
    pub(super) fn failed(&mut self, handle: &Handle, cause: &StoreError) {
        handle.writable.store(false, Ordering::Release);
        let wait = self.schedule();
        tracing::error!(
            error = %cause,
            retry_in = ?wait,
            "the data file cannot be written; writes are refused until it is reopened"
        );
    }

    /// A commit succeeded: the next failure starts again from the first wait.
    pub(super) fn committed(&mut self) {
        self.wait = FIRST_WAIT;
    }

    /// Reopens the file if the store is down and the wait is over.
    pub(super) fn reopen_if_due(&mut self, handle: &Handle, path: &Path) {
        if self.retry_at.is_none_or(|at| Instant::now() < at) {
            return;
        }
        match handle.reopen(path) {
            Ok(()) => {
                self.retry_at = None;
                tracing::warn!("reopened the data file after a storage error; writes resume");
            }
            Err(Reopen::InUse) => {
                // Reads in progress: try again in a moment, without growing the wait.
                self.retry_at = Some(Instant::now() + Duration::from_millis(50));
            }
            Err(Reopen::NoSpace(e)) => {
                let wait = self.schedule();
                tracing::error!(error = %e, retry_in = ?wait, "the data file's disk still refuses writes");
            }
            Err(Reopen::Open(e)) => {
                let wait = self.schedule();
                tracing::error!(error = %e, retry_in = ?wait, "cannot reopen the data file");
            }
        }
    }

    fn schedule(&mut self) -> Duration {
        let wait = self.wait;
        self.retry_at = Some(Instant::now() + wait);
        self.wait = (wait * 2).min(LONGEST_WAIT);
        wait
    }
}
