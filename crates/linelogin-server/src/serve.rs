//! Running the server: bind, start the worker, serve until shut down.
//!
//! The listener is `line-listener`'s hardened accept loop, with the limits of `[http]`:
//! header-read, keep-alive idle and body-read timeouts, a connection cap (a clear 503
//! beyond it), 431 for oversized heads, graceful shutdown, `TCP_NODELAY`. (It replaced
//! `axum::serve`, which had none of these: slowloris, idle and stalled-body connections
//! stayed open forever.)

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::deauth::worker::{self, WorkerHandle};
use crate::routes::app;
use crate::state::{AppState, StartError};

/// A server running on the current runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    worker: Option<WorkerHandle>,
}

impl RunningServer {
    /// The base URL (`http://addr`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests, stops the worker.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some(w) = self.worker {
            w.stop().await;
        }
    }
}

/// Binds `addr` and starts serving `state` (and, when configured, the deauthorization worker).
pub async fn start(state: AppState, addr: SocketAddr) -> Result<RunningServer, StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
    start_on(state, listener)
}

/// Starts serving on an already bound listener.
pub fn start_on(state: AppState, listener: TcpListener) -> Result<RunningServer, StartError> {
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: "listener".into(),
        message: e.to_string(),
    })?;
    let worker = state
        .settings()
        .deauth
        .worker
        .then(|| worker::spawn(state.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state_limits = state.settings().listener;
    let router = app(state);
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
    })
}

/// Serves until `shutdown` completes.
pub async fn serve_until(
    state: AppState,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let server = start(state, addr).await?;
    shutdown.await;
    server.stop().await;
    Ok(())
}
