//! Running the server: the one composition root every binary calls.
//!
//! [`start`] takes a configuration and does everything a running server needs, in one place:
//! opens the guideline logs and starts their retention, opens the store, binds the listener,
//! and starts the deauthorization worker (when `[deauth] worker`) and the purge of expired
//! rows (always). [`RunningServer::stop`] stops all of it. `linelogin serve` and `linelogin
//! demo` both call it, so they cannot drift apart (they had: one never ran log retention, and
//! an instance without the worker never purged). [`start_on`] is the lower layer for an
//! already built [`AppState`] (tests, embedding apps): it serves, and starts the worker and the
//! purge.
//!
//! The listener is `line-listener`'s hardened accept loop, with the limits of `[http]`:
//! header-read, keep-alive idle and body-read timeouts, a connection cap (a clear 503
//! beyond it), 431 for oversized heads, graceful shutdown, `TCP_NODELAY`. (It replaced
//! `axum::serve`, which had none of these: slowloris, idle and stalled-body connections
//! stayed open forever.)

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::audit::GuidelineLogs;
use crate::config::Config;
use crate::deauth::worker::{self, WorkerHandle};
use crate::maintenance::{self, PurgeHandle};
use crate::routes::app;
use crate::state::{AppState, StartError};

/// How often the guideline logs are rotated and pruned past retention.
pub const LOG_MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// What [`start`] needs besides the configuration. `StartOptions::default()` is what a
/// production binary wants: bind `config.listen`, write the guideline logs.
#[derive(Debug, Default)]
pub struct StartOptions {
    /// Serve on this already bound listener instead of binding `config.listen`.
    pub listener: Option<TcpListener>,
    /// Do not write the guideline logs (benchmarks and tests only: LINE's guidelines ask for
    /// them).
    pub without_guideline_logs: bool,
    /// A failpoint to arm (crash tests; needs the `failpoints` feature, see
    /// [`crate::state::AppStateBuilder::failpoint`]).
    pub failpoint: Option<String>,
}

/// A server running on the current runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    worker: Option<WorkerHandle>,
    webhooks: Option<crate::webhook::worker::WebhookWorker>,
    purge: PurgeHandle,
    log_maintenance: Option<tokio::task::JoinHandle<()>>,
    metrics: Option<MetricsListener>,
    state: AppState,
}

/// The `[metrics]` listener of a running server.
#[derive(Debug)]
struct MetricsListener {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The base URL (`http://addr`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state the server serves (its store, client and settings).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The bound address of the `[metrics]` listener (`/metrics`), when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// Whether the deauthorization worker runs in this process.
    pub fn runs_worker(&self) -> bool {
        self.worker.is_some()
    }

    /// How often the purge ticked here, and how many of its passes this instance ran (the
    /// others went to another instance of the fleet).
    pub fn purge_stats(&self) -> maintenance::PurgeStats {
        self.purge.stats()
    }

    /// Stops accepting, finishes in-flight requests, stops the worker, the purge and the
    /// guideline-log maintenance.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some(m) = self.metrics {
            let _ = m.stop.send(());
            let _ = m.task.await;
        }
        if let Some(w) = self.worker {
            w.stop().await;
        }
        if let Some(w) = self.webhooks {
            w.stop().await;
        }
        self.purge.stop().await;
        if let Some(m) = self.log_maintenance {
            m.abort();
        }
    }
}

/// The composition root: from a configuration to a running server, with its guideline logs
/// and their retention, its store, its worker (when configured) and its purge. Errors say what
/// could not be started; nothing is left running after one.
pub async fn start(config: &Config, options: StartOptions) -> Result<RunningServer, StartError> {
    let logs_error = |e: line_audit::AuditError| StartError::Logs {
        dir: config.logs.dir.display().to_string(),
        message: e.to_string(),
    };
    let mut builder = AppState::builder(config);
    let mut audit_log = None;
    if !options.without_guideline_logs {
        let logs = GuidelineLogs::open(&config.logs).map_err(logs_error)?;
        audit_log = Some(logs.log().clone());
        builder = builder.audit(Arc::new(logs));
    }
    if let Some(name) = options.failpoint {
        builder = builder.failpoint(Some(name))?;
    }
    let state = builder.build().await?;
    let listener = match options.listener {
        Some(l) => l,
        None => bind(config.listen).await?,
    };
    let mut server = start_on(state, listener)?;
    if let Some(log) = audit_log {
        match log.spawn_maintenance(LOG_MAINTENANCE_EVERY) {
            Ok(task) => server.log_maintenance = Some(task),
            Err(e) => {
                server.stop().await;
                return Err(logs_error(e));
            }
        }
    }
    Ok(server)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            message: e.to_string(),
        })
}

/// Binds `addr` and starts serving `state` (and the worker, when configured, and the purge).
pub async fn start_state(state: AppState, addr: SocketAddr) -> Result<RunningServer, StartError> {
    start_on(state, bind(addr).await?)
}

/// Starts serving `state` on an already bound listener, with the deauthorization worker (when
/// `[deauth] worker`), the purge of expired rows (always) and the `[metrics]` listener (when
/// configured).
pub fn start_on(state: AppState, listener: TcpListener) -> Result<RunningServer, StartError> {
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: "listener".into(),
        message: e.to_string(),
    })?;
    let metrics = match state.metrics() {
        Some(m) => Some(start_metrics(&state, m.listen())?),
        None => None,
    };
    let worker = state
        .settings()
        .deauth
        .worker
        .then(|| worker::spawn(state.clone()));
    // Webhook deliveries run where the deauthorization worker runs, on a loop of their own.
    let webhooks = state
        .settings()
        .deauth
        .worker
        .then(|| crate::webhook::worker::spawn(state.clone()))
        .flatten();
    let purge = maintenance::spawn_purge(state.clone(), maintenance::PURGE_EVERY);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state_limits = state.settings().listener;
    let router = app(state.clone());
    let server = line_listener::Server::new(state_limits);
    let task = tokio::spawn(async move {
        server
            .serve(listener, router, async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(RunningServer {
        addr,
        stop,
        task,
        worker,
        webhooks,
        purge,
        log_maintenance: None,
        metrics,
        state,
    })
}

/// Binds the `[metrics]` address and serves `/metrics` there, with the same hardened
/// listener as the public port.
fn start_metrics(state: &AppState, listen: SocketAddr) -> Result<MetricsListener, StartError> {
    let listen_error = |e: std::io::Error| StartError::Listen {
        addr: listen.to_string(),
        message: e.to_string(),
    };
    let std_listener = std::net::TcpListener::bind(listen).map_err(listen_error)?;
    std_listener.set_nonblocking(true).map_err(listen_error)?;
    let addr = std_listener.local_addr().map_err(listen_error)?;
    let listener = TcpListener::from_std(std_listener).map_err(listen_error)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = line_listener::Server::new(state.settings().listener);
    let router = crate::metrics::router(state.clone());
    let task = tokio::spawn(async move {
        server
            .serve(listener, router, async {
                let _ = stopped.await;
            })
            .await;
    });
    tracing::info!(%addr, "metrics listener: GET /metrics");
    Ok(MetricsListener { addr, stop, task })
}

/// Serves until `shutdown` completes.
pub async fn serve_until(
    state: AppState,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let server = start_state(state, addr).await?;
    shutdown.await;
    server.stop().await;
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (what a service manager sends): the
/// signal a server binary waits for before [`RunningServer::stop`].
///
/// The handlers are installed when this is called, not when the future is first polled, so a
/// binary that prints "Press Ctrl-C to stop" after calling it cannot be killed by a signal that
/// arrives in between (call it inside the runtime).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {}
                _ = wait(term) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
