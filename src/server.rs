//! Starting and stopping a server: used by `leadbase serve` and by the integration tests, which
//! pass a listener bound to `127.0.0.1:0` and a temporary data file.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::admin_token::{self, AdminTokenError, AdminTokenSource};
use crate::config::Config;
use crate::delivery::client::{Client, Lookup};
use crate::delivery::lanes::Limits;
use crate::delivery::{self, Engine, EngineConfig};
use crate::domain::retry::{Next, RetryPolicy};
use crate::domain::time::{Clock, Timestamp};
use crate::http;
use crate::http::state::AppState;
use crate::store::{OpenError, PRUNE_BATCH, Store, StoreError};

/// How long a graceful stop waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often idle rate-limit state is reclaimed and expired idempotency keys are swept.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// How often old deliveries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    AdminToken(#[from] AdminTokenError),
    #[error("cannot start the HTTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid config: webhooks.extra_ca_file: {0}")]
    Tls(String),
}

#[derive(Clone, Default)]
pub struct Options {
    /// Stop gracefully on SIGTERM / ctrl-c. Off for servers embedded in tests.
    pub handle_signals: bool,
    /// Name resolution for webhook hosts instead of the system's: a seam for tests that must
    /// make a host resolve somewhere without DNS.
    pub lookup: Option<Lookup>,
    /// Where the server reads the time. Tests keep a clone and move it forward instead of
    /// waiting for keys to expire, overlaps to end or retries to come due.
    pub clock: Clock,
    pub deliveries: Deliveries,
}

/// Who makes delivery attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deliveries {
    /// The engine's threads, as soon as deliveries are due.
    #[default]
    Engine,
    /// Nobody until [`Running::deliver_due`] is called: tests that decide when each step
    /// happens.
    Manual,
}

/// A running server. Dropping it does not stop it; call [`Running::stop`] or [`Running::wait`].
pub struct Running {
    addr: SocketAddr,
    admin_token: AdminTokenSource,
    handle: ServerHandle,
    thread: JoinHandle<()>,
    store: Store,
    client: Arc<Client>,
    engine_config: Arc<EngineConfig>,
}

pub fn start(
    config: Config,
    listener: TcpListener,
    options: Options,
) -> Result<Running, StartError> {
    let store = Store::open_with(
        &config.storage.path,
        options.clock.clone(),
        config.storage.cache_mb,
    )?;
    let (admin_hash, admin_token) = admin_token::ensure(&config, &store)?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n as usize,
    };
    let url_policy = config.url_policy();
    let client = Client::new(
        url_policy.clone(),
        options.lookup.clone(),
        config.webhooks.extra_ca_file.as_deref(),
    )
    .map_err(StartError::Tls)?;
    let client = Arc::new(client);
    let engine_config = Arc::new(engine_config(&config));
    delivery::take_back_leases(&store);
    let engine = match options.deliveries {
        Deliveries::Engine => Some(Engine::start(
            store.clone(),
            Arc::clone(&client),
            Arc::clone(&engine_config),
        )),
        Deliveries::Manual => None,
    };
    let server_store = store.clone();
    let state = web::Data::new(AppState::new(
        config,
        store.clone(),
        admin_hash,
        url_policy,
        options.lookup.clone(),
    ));

    let (handle_tx, handle_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("leadbase-http".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            let served = system.block_on(serve(state, listener, workers, options, handle_tx));
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
            // Every request has finished; attempts in progress finish within their timeout.
            if let Some(engine) = engine {
                engine.stop();
            }
            // Flush queued writes and release the data file.
            server_store.shutdown();
            tracing::info!("stopped; data file closed");
        })?;
    let handle = handle_rx
        .recv()
        .map_err(|_| std::io::Error::other("the HTTP server thread exited during start"))?;
    Ok(Running {
        addr,
        admin_token,
        handle,
        thread,
        store,
        client,
        engine_config,
    })
}

fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        threads: config.webhooks.delivery_threads as usize,
        limits: Limits {
            per_webhook: config.webhooks.max_in_flight_per_webhook,
            per_tenant: config.webhooks.max_in_flight_per_tenant,
        },
        retry: Arc::new(RetryPolicy {
            schedule: config.webhooks.retry_schedule_seconds.clone(),
            disable_after_failing_ms: i64::from(config.webhooks.disable_after_failing_hours)
                * 3_600_000,
        }),
    }
}

async fn serve(
    state: web::Data<AppState>,
    listener: TcpListener,
    workers: usize,
    options: Options,
    handle_tx: mpsc::Sender<ServerHandle>,
) -> std::io::Result<()> {
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap(from_fn(http::request_context))
            .configure(http::configure)
            .default_service(web::to(http::no_route))
    })
    .workers(workers)
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .listen(listener)?;
    if !options.handle_signals {
        server = server.disable_signals();
    }
    actix_web::rt::spawn(housekeeping(state.clone()));
    actix_web::rt::spawn(pruning(state));
    http::run_server(server.run(), |handle| {
        let _ = handle_tx.send(handle);
    })
    .await
}

/// Every minute: idle rate-limit state reclaimed, expired idempotency keys swept.
async fn housekeeping(state: web::Data<AppState>) {
    let mut tick = actix_web::rt::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tick.tick().await;
        state.limits.reclaim();
        let store = state.store.clone();
        match web::block(move || store.sweep_idempotency(store.now())).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(keys = n, "expired idempotency keys swept"),
            Ok(Err(e)) => tracing::warn!(error = %e, "idempotency sweep failed"),
            _ => {}
        }
    }
}

/// Every hour: deliveries, then event log entries, older than their retention pruned, batch
/// after batch, each its own short write, until the backlog is gone; then the per-minute stats
/// older than two days (one write: at most an hour's minutes per tenant).
async fn pruning(state: web::Data<AppState>) {
    let mut tick = actix_web::rt::time::interval(PRUNE_EVERY);
    let days = |d: u32| i64::from(d) * 86_400_000;
    let deliveries_ms = days(state.config.webhooks.delivery_retention_days);
    let events_ms = days(state.config.events.retention_days);
    loop {
        tick.tick().await;
        let now = state.store.now();
        let cutoff = now.plus_ms(-deliveries_ms);
        let pruned = prune_all(&state, "deliveries", move |s| s.prune_deliveries(cutoff)).await;
        if pruned > 0 {
            tracing::info!(deliveries = pruned, "old deliveries pruned");
        }
        let cutoff = now.plus_ms(-events_ms);
        let pruned = prune_all(&state, "event log", move |s| s.prune_events(cutoff)).await;
        if pruned > 0 {
            tracing::info!(events = pruned, "old event log entries pruned");
        }
        let store = state.store.clone();
        if let Ok(Err(e)) = web::block(move || store.prune_stats()).await {
            tracing::warn!(error = %e, "stats pruning failed");
        }
    }
}

/// Runs one pruning batch after another until one prunes less than a full batch.
async fn prune_all(
    state: &web::Data<AppState>,
    what: &'static str,
    batch: impl Fn(&Store) -> Result<usize, StoreError> + Send + Clone + 'static,
) -> usize {
    let mut total = 0;
    loop {
        let (store, batch) = (state.store.clone(), batch.clone());
        match web::block(move || batch(&store)).await {
            Ok(Ok(n)) => {
                total += n;
                if n < PRUNE_BATCH {
                    return total;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "{what} pruning failed");
                return total;
            }
            Err(_) => return total,
        }
    }
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_token(&self) -> &AdminTokenSource {
        &self.admin_token
    }

    /// Runs one step of the delivery engine on this thread: every delivery due now is leased,
    /// attempted in turn and its outcome recorded before this returns (one at a time, so the
    /// engine's concurrency limits do not arise). Meant for servers started with
    /// [`Deliveries::Manual`].
    pub fn deliver_due(&self) -> Vec<Next> {
        delivery::deliver_due(&self.store, &self.client, &self.engine_config, usize::MAX)
    }

    /// The time as the server sees it.
    pub fn now(&self) -> Timestamp {
        self.store.now()
    }

    /// Moves the server's clock forward and lets the engine look at the queue again.
    pub fn advance_clock(&self, ms: u32) {
        self.store.clock().advance(ms);
        self.store.wake_deliveries();
    }

    /// Stops accepting, lets in-flight requests finish, closes the data file, and returns.
    pub fn stop(self) {
        // The stop command is sent when `stop` is called; its future only reports completion,
        // which joining the thread observes as well.
        drop(self.handle.stop(true));
        let _ = self.thread.join();
    }

    /// Blocks until the server stops (SIGTERM or ctrl-c when signals are handled).
    pub fn wait(self) {
        let _ = self.thread.join();
    }
}
