//! Everything redb. The rest of leadbase sees typed functions on [`Store`] and never a table.
//!
//! Reads open short read transactions on the caller's thread (callers on the async executor go
//! through `web::block`). Every write goes through one writer thread ([`writer`]) that batches
//! the writes queued at a moment into one durable commit. The store reads the time from the
//! [`Clock`] it was opened with.

pub mod api_keys;
pub mod backup;
pub mod catalog;
mod catalog_edits;
pub mod check;
mod codec;
pub mod delivery_log;
pub mod delivery_queue;
pub mod dispatch;
pub mod event_log;
mod file;
pub mod idempotency;
pub mod interactions;
mod lead_index;
pub mod lead_query;
pub mod lead_record;
pub mod leads;
mod meta;
pub mod outbox;
mod recovery;
pub mod stats;
pub mod tables;
pub mod telemetry;
pub mod tenants;
mod wakeup;
pub mod webhooks;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadTransaction, ReadableDatabase, WriteTransaction};

pub use catalog::{CustomField, Owner, Stage};
pub use codec::Record;
pub use tenants::Tenant;
pub use wakeup::Wakeup;

use crate::domain::ids::WebhookId;
use crate::domain::time::{Clock, Timestamp};

/// The schema this build writes. Older files are migrated forward at open; newer ones refused.
/// 2: the leads-by-stage and leads-by-owner indexes. 3: due deliveries indexed per webhook.
/// 4: lead versions, events in format 2 (envelope members, delivery counts), the event log.
/// 5: webhooks with filters, headers and their own limits; held deliveries.
/// 6: every stored event of a lead indexed by lead, for erasure.
/// 7: lead ordinals and the filter, search and sort indexes built on them (`lead_index`).
/// 8: per-minute activity counts (`stats`).
/// 9: a tenant's open lead chunk has no search sets until it is full (`lead_index::seal`).
pub const SCHEMA_VERSION: u64 = 9;

/// Records pruned per call at most (finished deliveries, old event log entries): each batch is
/// one short write, so pruning a backlog never holds the writer long.
pub const PRUNE_BATCH: usize = 5_000;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// What was asked for existed once and was removed (an event log cursor past retention).
    #[error("{0}")]
    Gone(String),
    /// A conditional write whose condition (`If-Match`) no longer holds.
    #[error("{0}")]
    Precondition(String),
    #[error("storage error: {0}")]
    Storage(String),
    /// The data file cannot be read or written now (a full disk, an I/O error); the writer
    /// reopens it and writes resume.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
}

impl StoreError {
    /// Whether this error means the write transaction may hold partial writes and must not be
    /// committed. Domain refusals (not found, conflict, invalid) are raised before any write.
    fn poisons_batch(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_) | StoreError::Corrupt(_) | StoreError::Unavailable(_)
        )
    }

    fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        match e {
            // An I/O error latches in redb: the failed `Database` answers every later write
            // with `PreviousIo`, and only a reopen recovers.
            redb::StorageError::Io(_) | redb::StorageError::PreviousIo => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Storage(other.to_string()),
        }
    }
}

macro_rules! storage_errors {
    ($($t:ident),*) => {$(
        impl From<redb::$t> for StoreError {
            fn from(e: redb::$t) -> Self {
                match e {
                    redb::$t::Storage(e) => StoreError::from(e),
                    other => StoreError::Storage(other.to_string()),
                }
            }
        }
    )*};
}
storage_errors!(TableError, TransactionError, CommitError, DatabaseError);

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(_) | redb::Error::PreviousIo => StoreError::Unavailable(e.to_string()),
            other => StoreError::Storage(other.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the data file {0} is in use by another process (is `leadbase serve` running?); stop it, or use another storage.path"
    )]
    Locked(PathBuf),
    #[error(
        "the data file {path} was written by a newer leadbase (schema {found}, this build knows {SCHEMA_VERSION}); upgrade leadbase"
    )]
    NewerSchema { path: PathBuf, found: u64 },
    #[error(
        "the data file {0} is empty (0 bytes), which leadbase never leaves it: probably a truncated copy or an interrupted restore; restore it from a backup, or delete it to start a new, empty database"
    )]
    Empty(PathBuf),
    #[error("cannot open the data file {path}: {reason}")]
    Other { path: PathBuf, reason: String },
}

/// A handle on the data file. Cheap to clone; all clones share one writer thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Closed at shutdown, so the file is released even while clones of the store live on in
    /// threads that have not been dropped yet; replaced by the writer after a storage error.
    db: Arc<recovery::Handle>,
    writer: writer::Writer,
    path: PathBuf,
    deliveries: Arc<Wakeup>,
    /// Counts committed edits of webhooks' settings (update, delete), for the engine to notice
    /// that what it leased ahead was read before one.
    webhook_edits: AtomicU64,
    /// Each edited webhook's latest edit, by that count.
    last_edits: parking_lot::Mutex<HashMap<WebhookId, u64>>,
    clock: Clock,
    telemetry: Arc<telemetry::Telemetry>,
}

impl Store {
    /// Opens (creating when absent, with its directory, both private to the owner) the data file,
    /// takes its exclusive lock, checks or migrates the schema and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        let cache_mb = crate::config::StorageConfig::default().cache_mb;
        Store::open_with(path, Clock::default(), cache_mb)
    }

    /// As [`Store::open`], reading the time from `clock`, with a page cache of `cache_mb` MiB.
    pub fn open_with(path: &Path, clock: Clock, cache_mb: u32) -> Result<Store, OpenError> {
        let cache_bytes = cache_mb as usize * 1024 * 1024;
        let other = |reason: String| OpenError::Other {
            path: path.to_path_buf(),
            reason,
        };
        let created = file::prepare(path)?;
        let db = match recovery::open_database(path, cache_bytes) {
            Ok(db) => db,
            Err(e) => {
                created.undo();
                return Err(match e {
                    redb::DatabaseError::DatabaseAlreadyOpen => {
                        OpenError::Locked(path.to_path_buf())
                    }
                    other_err => other(other_err.to_string()),
                });
            }
        };
        meta::prepare(&db).map_err(|e| match e {
            meta::PrepareError::Newer(found) => OpenError::NewerSchema {
                path: path.to_path_buf(),
                found,
            },
            meta::PrepareError::Store(e) => other(e.to_string()),
        })?;
        let db = Arc::new(recovery::Handle::new(db, cache_bytes));
        let telemetry = Arc::new(telemetry::Telemetry::default());
        let writer =
            writer::Writer::start(Arc::clone(&db), path.to_path_buf(), Arc::clone(&telemetry));
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                writer,
                path: path.to_path_buf(),
                deliveries: Arc::new(Wakeup::default()),
                webhook_edits: AtomicU64::new(0),
                last_edits: parking_lot::Mutex::new(HashMap::new()),
                clock,
                telemetry,
            }),
        })
    }

    /// What the writer and the delivery recorder counted, for `/metrics`.
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.inner.telemetry
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock.clone()
    }

    /// Runs `f` in a fresh read transaction on the calling thread.
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let db = self.inner.db.current()?;
        let txn = db.begin_read()?;
        f(&txn)
    }

    /// `Unavailable` while writes cannot commit: since a commit failed for want of storage, until
    /// the writer has reopened the file.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        if self.inner.db.writable() {
            Ok(())
        } else {
            Err(recovery::unavailable())
        }
    }

    /// Runs `f` inside the writer's next batch and waits until that batch is durable on disk.
    /// `f` must check before it writes: an `Err` it returns after writing would leave its writes
    /// in the batch (a storage error aborts the whole batch instead).
    pub(crate) fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.inner.writer.run(f)
    }

    /// As [`Store::write`], with the time read when the batch runs `f`.
    pub(crate) fn write_now<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction, Timestamp) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let clock = self.clock();
        self.write(move |txn| f(txn, clock.now()))
    }

    /// Runs `f` in a transaction of its own that is then rolled back: a dry run that sees
    /// exactly what a real write would, and leaves nothing.
    pub(crate) fn write_discarded<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.inner.writer.run_discarded(f)
    }

    /// The delivery engine's doorbell: rung once a write that queued or requeued deliveries has
    /// committed (by the store method that made it, after the commit), and by the engine's own
    /// workers when one frees up.
    pub fn delivery_wakeup(&self) -> Arc<Wakeup> {
        Arc::clone(&self.inner.deliveries)
    }

    /// How many edits of webhooks' settings have committed since the store opened. A webhook
    /// read after this returned `n` is stale once [`Store::last_edit_of`] it passes `n`.
    pub fn webhook_edits(&self) -> u64 {
        self.inner.webhook_edits.load(Ordering::SeqCst)
    }

    /// The number of the webhook's latest edit in [`Store::webhook_edits`]'s count (0: none
    /// since the store opened).
    pub fn last_edit_of(&self, webhook: WebhookId) -> u64 {
        self.inner
            .last_edits
            .lock()
            .get(&webhook)
            .copied()
            .unwrap_or(0)
    }

    /// Called once a write that changed the webhook's settings has committed.
    pub(crate) fn note_webhook_edit(&self, webhook: WebhookId) {
        let mut last = self.inner.last_edits.lock();
        let n = self.inner.webhook_edits.fetch_add(1, Ordering::SeqCst) + 1;
        last.insert(webhook, n);
    }

    pub(crate) fn wake_deliveries(&self) {
        self.inner.deliveries.notify();
    }

    /// Queues `f` without waiting for it: for bookkeeping whose loss is harmless
    /// (`last_used_at`). A failure is logged; a refusal while the file is down is not (the
    /// writer logs the outage once).
    pub(crate) fn write_detached(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.write_then(f, |result| {
            if let Err(e) = result
                && !e.is_unavailable()
            {
                tracing::warn!(error = %e, "background write failed");
            }
        });
    }

    /// Queues `f` without waiting for it; `done` hears its outcome, committed or not, on the
    /// writer thread (keep it short).
    pub(crate) fn write_then<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        done: impl FnOnce(Result<R, StoreError>) + Send + 'static,
    ) {
        self.inner.writer.submit(f, done);
    }

    /// Finishes queued writes, stops the writer and closes the file (once reads in progress
    /// end). Later calls fail with `Closed`.
    pub fn shutdown(&self) {
        self.inner.writer.stop();
        self.inner.db.close();
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Store;
    use crate::domain::catalog::Name;
    use crate::domain::ids::TenantId;
    use crate::domain::url_policy::WebhookUrl;
    use crate::domain::webhook::{
        Description, EventTypes, RetryAttempts, TimeoutSeconds, WebhookSettings,
    };

    /// An active webhook's settings: a public IP literal, every event, 5 s, one retry.
    pub(crate) fn webhook_settings() -> WebhookSettings {
        WebhookSettings {
            url: WebhookUrl::literal("https://8.8.8.8/hook"),
            event_types: EventTypes::default(),
            is_active: true,
            timeout_seconds: TimeoutSeconds::parse(5).expect("in range"),
            retry_attempts: RetryAttempts::parse(1).expect("in range"),
            description: Description::default(),
            filter: None,
            headers: Default::default(),
            max_concurrency: None,
            rate_limit_per_minute: None,
        }
    }

    /// A store on a temporary file with one tenant, "Acme".
    pub(crate) fn store_with_tenant() -> (tempfile::TempDir, Store, TenantId) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(&dir.path().join("t.redb")).expect("the store opens");
        let name = Name::parse("name", "Acme").expect("a name");
        let tenant = store.create_tenant(name).expect("a tenant").id;
        (dir, store, tenant)
    }
}
