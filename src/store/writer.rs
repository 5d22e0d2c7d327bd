//! The single writer thread. Every write is a job run inside a write transaction; the jobs queued
//! when the thread wakes share one transaction and one durable commit (group commit), so write
//! throughput is not one fsync per request. A job's caller hears back only after the commit, with
//! the commit's verdict. After a storage error the writer refuses jobs until it has reopened the
//! file ([`super::recovery`]).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use redb::{Database, WriteTransaction};

use super::StoreError;
use super::recovery::{self, Handle, Recovery};
use super::telemetry::Telemetry;

/// Jobs taken into one transaction at most; bounds commit latency under a flood.
const MAX_BATCH: usize = 512;

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What running a job left behind: the error that means it may have written partially (then the
/// batch must not commit), and how to tell its caller once the batch's fate is known.
struct Ran {
    poison: Option<StoreError>,
    finish: Finish,
}

/// A write waiting for its batch.
struct Job {
    run: Box<dyn FnOnce(&WriteTransaction) -> Ran + Send>,
    /// Tells its caller why it was not run: there was no transaction to run it in.
    refuse: Box<dyn FnOnce(StoreError) + Send>,
}

enum Msg {
    Job(Job),
    /// Runs alone in a transaction that is rolled back.
    Discarded(Job),
    Stop,
}

pub(super) struct Writer {
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(super) fn start(handle: Arc<Handle>, path: PathBuf, telemetry: Arc<Telemetry>) -> Writer {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("leadbase-writer".into())
            .spawn(move || run_loop(&handle, &path, &rx, &telemetry))
            .expect("cannot spawn the writer thread");
        Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn send(&self, msg: Msg) -> bool {
        match self.tx.lock().as_ref() {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }

    pub(super) fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.call(f, Msg::Job)
    }

    pub(super) fn run_discarded<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.call(f, Msg::Discarded)
    }

    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        wrap: fn(Job) -> Msg,
    ) -> Result<R, StoreError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let job = job(f, move |outcome| {
            let _ = reply_tx.send(outcome);
        });
        if !self.send(wrap(job)) {
            return Err(StoreError::Closed);
        }
        reply_rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Storage(
                "the write could not be performed; see the server log".into(),
            ))
        })
    }

    /// Queues `f` without waiting for it; `done` hears what came of it once its batch's fate is
    /// known, or why it was not run. (If the writer has stopped, `done` is dropped uncalled.)
    pub(super) fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        done: impl FnOnce(Result<R, StoreError>) + Send + 'static,
    ) {
        self.send(Msg::Job(job(f, done)));
    }

    pub(super) fn stop(&self) {
        if let Some(tx) = self.tx.lock().take() {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `f` as a job whose caller, `done`, hears exactly one thing: the batch's verdict with `f`'s
/// result, or why it was not run.
fn job<R: Send + 'static>(
    f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    done: impl FnOnce(Result<R, StoreError>) + Send + 'static,
) -> Job {
    let done = Arc::new(Mutex::new(Some(done)));
    let refused = Arc::clone(&done);
    Job {
        run: Box::new(move |txn| {
            let result = catch(f, txn);
            Ran {
                poison: result.as_ref().err().filter(|e| e.poisons_batch()).cloned(),
                finish: Box::new(move |commit| {
                    if let Some(done) = done.lock().take() {
                        tell(|| done(commit.and(result)));
                    }
                }),
            }
        }),
        refuse: Box::new(move |e| {
            if let Some(done) = refused.lock().take() {
                tell(|| done(Err(e)));
            }
        }),
    }
}

/// Runs a caller's `done` on the writer thread; a panic in it must not take the writer down
/// either (the write it hears about has already committed or failed).
fn tell(done: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(done)).is_err() {
        tracing::error!("a write's caller panicked on hearing its outcome");
    }
}

/// A panicking job must not take the writer thread (and with it every later write) down.
fn catch<R>(
    f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError>,
    txn: &WriteTransaction,
) -> Result<R, StoreError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| f(txn))).unwrap_or_else(|_| {
        Err(StoreError::Storage(
            "a write panicked; its batch was rolled back".into(),
        ))
    })
}

/// Waits for jobs and runs them in batches; while the file cannot be written, refuses them and
/// wakes when its reopen is due.
fn run_loop(handle: &Handle, path: &Path, rx: &Receiver<Msg>, telemetry: &Telemetry) {
    let mut recovery = Recovery::new();
    let mut stopping = false;
    while !stopping {
        let first = match recovery.retry_at() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let first = match first {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => {
                recovery.reopen_if_due(handle, path);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let batch = take_batch(first, rx);
        stopping = batch.stop;
        let (jobs, discarded) = (batch.jobs, batch.discarded);
        recovery.reopen_if_due(handle, path);
        let db = match recovery.retry_at() {
            Some(_) => Err(recovery::unavailable()),
            None => handle.current(),
        };
        let db = match db {
            Ok(db) => db,
            Err(e) => {
                for job in jobs.into_iter().chain(discarded) {
                    (job.refuse)(e.clone());
                }
                continue;
            }
        };
        if !jobs.is_empty() {
            match commit_batch(&db, jobs, telemetry) {
                Ok(()) => recovery.committed(),
                Err(e) if e.is_unavailable() => recovery.failed(handle, &e),
                Err(_) => {}
            }
        }
        if let Some(job) = discarded {
            // The batch's commit may just have failed: the dry run is refused like any write
            // then, rather than failing again and doubling the wait.
            if recovery.retry_at().is_some() {
                (job.refuse)(recovery::unavailable());
            } else if let Err(e) = run_and_roll_back(&db, job)
                && e.is_unavailable()
            {
                recovery.failed(handle, &e);
            }
        }
    }
}

struct Batch {
    jobs: Vec<Job>,
    discarded: Option<Job>,
    stop: bool,
}

/// `first` and what is queued behind it, up to a full batch, a dry run or a stop.
fn take_batch(first: Msg, rx: &Receiver<Msg>) -> Batch {
    let mut batch = Batch {
        jobs: Vec::new(),
        discarded: None,
        stop: false,
    };
    let mut next = Some(first);
    while let Some(msg) = next {
        match msg {
            Msg::Job(job) => batch.jobs.push(job),
            Msg::Discarded(job) => batch.discarded = Some(job),
            Msg::Stop => batch.stop = true,
        }
        let full = batch.jobs.len() >= MAX_BATCH || batch.discarded.is_some() || batch.stop;
        next = if full { None } else { rx.try_recv().ok() };
    }
    batch
}

/// Returns whether the transaction could be begun and rolled back.
fn run_and_roll_back(db: &Database, job: Job) -> Result<(), StoreError> {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "cannot begin a write transaction");
            (job.refuse)(err.clone());
            return Err(err);
        }
    };
    let ran = (job.run)(&txn);
    discard_notes();
    let verdict = txn.abort().map_err(StoreError::from);
    (ran.finish)(verdict.clone());
    verdict
}

/// Writes what the batch's jobs noted on this thread to write once for all of them: the lead
/// index's set changes and the per-minute counts.
fn flush_notes(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::lead_index::flush(txn)?;
    super::stats::flush(txn)
}

/// Forgets those notes: their batch does not commit (or has written them).
fn discard_notes() {
    super::lead_index::discard();
    super::stats::discard();
}

/// Runs the jobs in one transaction and commits it unless one of them poisoned it; returns the
/// verdict every caller was told.
fn commit_batch(db: &Database, jobs: Vec<Job>, telemetry: &Telemetry) -> Result<(), StoreError> {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "cannot begin a write transaction");
            for job in jobs {
                (job.refuse)(err.clone());
            }
            return Err(err);
        }
    };
    let mut finishes = Vec::with_capacity(jobs.len());
    let mut poison: Option<StoreError> = None;
    for job in jobs {
        let ran = (job.run)(&txn);
        // A storage error says more than a failed record: keep it, it decides the outage.
        if poison.as_ref().is_none_or(|kept| !kept.is_unavailable()) {
            poison = ran.poison.or(poison);
        }
        finishes.push(ran.finish);
    }
    if poison.is_none()
        && let Err(e) = flush_notes(&txn)
    {
        poison = Some(e);
    }
    discard_notes();
    let verdict = match poison {
        Some(e) => {
            let _ = txn.abort();
            Err(if e.is_unavailable() {
                e
            } else {
                StoreError::Storage(
                    "a write in the same batch failed; nothing was written, retry".into(),
                )
            })
        }
        None => {
            let started = Instant::now();
            let committed = txn.commit().map_err(StoreError::from);
            telemetry.batch(finishes.len(), started.elapsed());
            committed
        }
    };
    if let Err(e) = &verdict {
        tracing::error!(error = %e, jobs = finishes.len(), "write batch not committed");
    }
    for finish in finishes {
        finish(verdict.clone());
    }
    verdict
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store_with_tenant;

    #[test]
    fn a_panic_in_a_callers_done_leaves_the_writer_running() {
        let (_dir, store, _tenant) = store_with_tenant();
        let (told, heard) = std::sync::mpsc::channel();
        store.write_then(|_| Ok(()), |_| panic!("the caller's bug"));
        store.write_then(
            |_| Ok(()),
            move |result| {
                let _ = told.send(result.is_ok());
            },
        );
        let later = heard.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(later, Ok(true), "the next write still commits");
        assert!(store.write(|_| Ok(())).is_ok());
        store.shutdown();
    }
}
