//! Running the server: bind, start the worker, serve until shut down.

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
    let router = app(state);
    let task = tokio::spawn(async move {
        // Responses go out at once (no Nagle delay behind an unacknowledged segment).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "server stopped with an error");
        }
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
