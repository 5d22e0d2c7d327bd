//! The single writer thread. Every write is a job run inside a write transaction; the jobs queued
//! when the thread wakes share one transaction and one durable commit (group commit), so write
//! throughput is not one fsync per request. A job's caller hears back only after the commit, with
//! the commit's verdict.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use redb::{Database, WriteTransaction};

use super::StoreError;

/// Jobs taken into one transaction at most; bounds commit latency under a flood.
const MAX_BATCH: usize = 512;

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What running a job left behind: whether it may have written partially (then the batch must
/// not commit), and how to tell its caller once the batch's fate is known.
struct Ran {
    poisoned: bool,
    finish: Finish,
}

type Job = Box<dyn FnOnce(&WriteTransaction) -> Ran + Send>;

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
    pub(super) fn start(db: Arc<Database>) -> Writer {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("leadbase-writer".into())
            .spawn(move || run_loop(&db, &rx))
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
        let job: Job = Box::new(move |txn| {
            let result = catch(f, txn);
            let poisoned = result.as_ref().is_err_and(StoreError::poisons_batch);
            Ran {
                poisoned,
                finish: Box::new(move |commit| {
                    let _ = reply_tx.send(commit.and(result));
                }),
            }
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

    pub(super) fn submit(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(), StoreError> + Send + 'static,
    ) {
        let job: Job = Box::new(move |txn| {
            let result = catch(f, txn);
            if let Err(e) = &result {
                tracing::warn!(error = %e, "background write failed");
            }
            Ran {
                poisoned: result.is_err_and(|e| e.poisons_batch()),
                finish: Box::new(|_| {}),
            }
        });
        self.send(Msg::Job(job));
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

fn run_loop(db: &Database, rx: &Receiver<Msg>) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else { break };
        let mut jobs = Vec::new();
        let mut discarded = None;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Job(job) => jobs.push(job),
                Msg::Discarded(job) => discarded = Some(job),
                Msg::Stop => stopping = true,
            }
            let full = jobs.len() >= MAX_BATCH || discarded.is_some() || stopping;
            next = if full { None } else { rx.try_recv().ok() };
        }
        if !jobs.is_empty() {
            commit_batch(db, jobs);
        }
        if let Some(job) = discarded {
            run_and_roll_back(db, job);
        }
    }
}

fn run_and_roll_back(db: &Database, job: Job) {
    match db.begin_write() {
        Ok(txn) => {
            let ran = job(&txn);
            let verdict = txn.abort().map_err(StoreError::from);
            (ran.finish)(verdict);
        }
        Err(e) => tracing::error!(error = %StoreError::from(e), "cannot begin a write transaction"),
    }
}

fn commit_batch(db: &Database, jobs: Vec<Job>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "cannot begin a write transaction");
            // Dropping a job drops its reply channel: its caller hears that nothing was written.
            drop(jobs);
            return;
        }
    };
    let mut finishes = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        let ran = job(&txn);
        poisoned |= ran.poisoned;
        finishes.push(ran.finish);
    }
    let verdict = if poisoned {
        let _ = txn.abort();
        Err(StoreError::Storage(
            "a write in the same batch failed; nothing was written, retry".into(),
        ))
    } else {
        txn.commit().map_err(StoreError::from)
    };
    if let Err(e) = &verdict {
        tracing::error!(error = %e, jobs = finishes.len(), "write batch not committed");
    }
    for finish in finishes {
        finish(verdict.clone());
    }
}
