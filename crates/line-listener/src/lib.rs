//! A hardened HTTP/1.1 accept loop, shared by the linelogin server and the LINE emulator (and
//! meant for the gateway listener later).
//!
//! `axum::serve` exposes none of the limits a server facing the internet needs: a client
//! that sends its request head a byte at a time, a keep-alive connection that never sends its
//! next request, or a request body that stops half way each held a connection (and a file
//! descriptor) forever, and nothing capped how many connections were open. An attack-and-fault
//! run found 200 such slowloris connections, 50 idle ones and 20 with a half-sent body all
//! still open after 75 s, and with a file limit of 256, 400 idle connections made the server
//! refuse everyone else. This crate serves a tower service (an `axum::Router`) with:
//!
//! - **a header-read timeout** ([`Limits::header_read_timeout`], default 5 s): the whole
//!   request head must arrive within it, counted from the accept for a new connection and
//!   from the first byte of the next request on a kept-alive one; else the connection is
//!   closed;
//! - **a keep-alive idle timeout** ([`Limits::idle_timeout`], default 60 s): a connection
//!   that has answered its requests and sends nothing more is closed;
//! - **a body-read timeout** ([`Limits::body_read_timeout`], default 20 s): a request body
//!   that has not arrived in full within it ends the request with `408 Request Timeout` and
//!   `Connection: close`;
//! - **a cap on open connections** ([`Limits::max_connections`], default 1024): one more is
//!   answered at once with a fixed `503 Service Unavailable`, `Retry-After: 1`,
//!   `Connection: close`, and closed; clients already connected keep being served. The cap is
//!   kept below the process's open-file limit ([`effective_max_connections`]), so that it, not
//!   a failing `accept`, is what refuses;
//! - **oversized heads refused** ([`Limits::max_header_bytes`], default 16 KiB): `431 Request
//!   Header Fields Too Large` (hyper's `max_header_size`). Oversized bodies are the
//!   application's to refuse (413): the server and the emulator both cap them in their routers;
//! - **graceful shutdown**: stop accepting, close idle connections, let requests in flight
//!   finish, wait at most [`Limits::shutdown_grace`];
//! - `TCP_NODELAY` on every connection (responses go out at once, not behind Nagle).
//! - **upgrades** (`101 Switching Protocols`, e.g. a WebSocket the gateway passes through)
//!   hand the connection to the handler's `hyper::upgrade::on`; from then on it is no longer
//!   counted against the cap nor timed by the listener.
//!
//! # Decisions
//!
//! *Why not a ready crate.* Checked: `axum::serve` (only `tap_io` and graceful shutdown),
//! `axum-server` 0.7 (exposes hyper's builder, so a header timeout, and has a shutdown
//! handle, but no connection cap, no idle timeout and no body timeout), `tower-http`'s
//! `RequestBodyTimeoutLayer` (a per-frame body timeout as a middleware: a body that trickles a
//! byte per interval never times out, and the request ends in the handler's 400, not a 408
//! that closes the connection), `hyper-util`'s `server::conn::auto` + `GracefulShutdown`
//! (building blocks, no limits). None gives all of the above, so this crate puts them
//! together on hyper's own HTTP/1 connection (`hyper::server::conn::http1`) in about 500
//! lines.
//!
//! *HTTP/1.1 only.* `axum::serve` also spoke HTTP/2 with prior knowledge (h2c); nothing here
//! uses it (browsers speak HTTP/2 only over TLS, which a proxy in front terminates), and
//! HTTP/2's idle and stream limits are a separate set of knobs. Left out until a listener
//! needs it.
//!
//! *The timers are ours, not hyper's `header_read_timeout`.* In hyper 1.x (read in
//! `proto/h1/conn.rs`, `Conn::poll_read_head`) that timer is armed whenever the connection
//! waits for a request head, including the wait for the *next* request on a kept-alive
//! connection: so it would close idle keep-alive connections after the (short) header
//! timeout, with no way to give the idle wait a longer one. Hyper's timer is therefore off
//! here, and each connection has one watchdog: its deadline moves with the connection's
//! phase (waiting for a head: header timeout; serving a request: none, the body timeout and
//! the application govern; answered: idle timeout), driven by the reads of the wrapped socket
//! and by the request and response passing through. One timer per connection, re-armed only
//! when it fires; the per-read cost is an atomic load.
//!
//! *The body timeout is a total, not per read* (unless [`Limits::body_timeout_on_progress`],
//! which the gateway's proxy mode sets so that long uploads pass). A body must arrive in full
//! within [`Limits::body_read_timeout`] of its request head, however it trickles. The timer is made
//! only when the body is not immediately ready, so a request whose body is already buffered
//! (or empty) costs nothing.
//!
//! *Refusing beyond the cap.* The fixed 503 is written by a short task (at most 64 at once,
//! each done within half a second: write, shut down the write side, read and discard what the
//! client sent so that closing does not reset the connection before the client has read the
//! answer); beyond 64 refusals in progress the 503 is written without waiting (into the new
//! socket's empty send buffer) and the connection closed at once.
//!
//! # Measured (2 shared cores, the `linelogin` release binary, 2026-12-04)
//!
//! - 200 slowloris heads (a byte every 2 s), 50 idle keep-alive connections and 20 half-sent
//!   bodies, looked at 10 s later: before (`axum::serve`) 200/200, 50/50 and 20/20 still open;
//!   after (`idle_timeout_ms = 5000`, `body_read_timeout_ms = 8000`, the rest default) 0, 0
//!   and 0. A healthy `GET /healthz` each second meanwhile: 10/10 answered both times, at most
//!   12 ms.
//! - Open-file limit 256 (`prlimit --nofile=256`), 400 connections that send nothing: before,
//!   `accept` failed with EMFILE and a healthy request timed out (5 s) at once and 6 s later;
//!   after, the cap was lowered to 128, the healthy request got the 503 at once (in one run of
//!   two it was reset: all 64 refusal slots were busy) and 200 OK 6 s later (the silent
//!   connections were closed by the header timeout).
//! - Login flows (`RUNS=3 bench/flows.sh`, both builds alternating, on a machine shared with
//!   other builds, so runs varied from 1,480 to 2,680 flows/s): median 1,991 flows/s before,
//!   2,043 after; server CPU per flow 0.268 ms before, 0.292 ms after (runs: 0.249, 0.344,
//!   0.268 before; 0.292, 0.294, 0.260 after), no difference beyond the noise.
// `Instant::now` here is only deadline bookkeeping for tokio's timers (header-read, idle and
// body timeouts), never a time anyone reads: the workspace's clock rule does not apply.
#![allow(clippy::disallowed_methods)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceExt as _};

/// An error any body or service may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The limits of a listener. See the crate documentation for what each does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a request head may take to arrive (default 5 s).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (default 60 s).
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive in full, from its head (default 20 s);
    /// with [`body_timeout_on_progress`](Self::body_timeout_on_progress), how long it may go
    /// without a byte arriving.
    pub body_read_timeout: Duration,
    /// Measure [`body_read_timeout`](Self::body_read_timeout) from the body's last progress
    /// instead of from the request head (default false). A reverse proxy sets it: an upload
    /// may then take as long as it keeps moving, while a stalled one still ends with 408.
    pub body_timeout_on_progress: bool,
    /// Connections open at once; more are refused with a 503 (default 1024).
    pub max_connections: usize,
    /// The largest request head (request line and headers) in bytes; larger gets 431
    /// (default 16 KiB).
    pub max_header_bytes: usize,
    /// How long a graceful shutdown waits for connections to finish (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(20),
            body_timeout_on_progress: false,
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Counters of a listener (all since it started).
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections refused beyond the cap.
    pub refused: u64,
    /// Connections closed because a request head did not arrive in time.
    pub header_timeouts: u64,
    /// Kept-alive connections closed after the idle timeout.
    pub idle_timeouts: u64,
    /// Requests ended with 408 because their body did not arrive in time.
    pub body_timeouts: u64,
}

impl Counters {
    /// The current values.
    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            accepted: get(&self.accepted),
            open: get(&self.open),
            refused: get(&self.refused),
            header_timeouts: get(&self.header_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            body_timeouts: get(&self.body_timeouts),
        }
    }
}

/// The error a request body yields when it did not arrive within
/// [`Limits::body_read_timeout`]; the request is then answered with 408.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A server: [`Limits`] and its [`Counters`].
#[derive(Debug, Clone, Default)]
pub struct Server {
    limits: Limits,
    counters: Arc<Counters>,
}

/// Refusals being written at once, at most.
const MAX_REFUSALS: usize = 64;
/// How long a refusal may take.
const REFUSAL_TIME: Duration = Duration::from_millis(500);
/// What a refusal reads and discards, at most.
const REFUSAL_DRAIN: usize = 64 * 1024;
/// The fixed answer beyond the cap.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Retry-After: 1\r\n\
Connection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 28\r\n\
\r\n\
too many connections; retry\n";
/// After an accept error (such as too many open files), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one warning about refusals per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

impl Server {
    /// A server with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            counters: Arc::default(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The counters (shared: they keep counting while the server runs).
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Serves `service` on `listener` until `signal` completes, then shuts down gracefully:
    /// stops accepting, closes idle connections, lets requests in flight finish, and returns
    /// once every connection is closed or [`Limits::shutdown_grace`] has passed.
    pub async fn serve<S, B>(
        self,
        listener: TcpListener,
        service: S,
        signal: impl Future<Output = ()> + Send,
    ) where
        S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let limits = self.limits;
        let counters = self.counters;
        let open_files = open_files_limit();
        let max = effective_max_connections(limits.max_connections, open_files)
            .min(Semaphore::MAX_PERMITS);
        if max < limits.max_connections {
            tracing::warn!(
                configured = limits.max_connections,
                open_files_limit = open_files,
                max_connections = max,
                "the connection cap is lowered below the open-file limit (raise `ulimit -n`)"
            );
        }
        let slots = Arc::new(Semaphore::new(max));
        let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut last_warning: Option<Instant> = None;
        tokio::pin!(signal);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut signal => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors, typically: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(slot) => {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    counters.open.fetch_add(1, Ordering::Relaxed);
                    let conn = Connection {
                        limits,
                        counters: Arc::clone(&counters),
                        stop: stop_rx.clone(),
                        peer,
                    };
                    let service = service.clone();
                    tokio::spawn(async move {
                        conn.run(stream, service).await;
                        drop(slot);
                    });
                }
                Err(_) => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    if last_warning.is_none_or(|t| t.elapsed() >= WARN_INTERVAL) {
                        last_warning = Some(Instant::now());
                        tracing::warn!(
                            max_connections = max,
                            refused_so_far = counters.refused.load(Ordering::Relaxed),
                            "connection cap reached: refusing new connections with 503"
                        );
                    }
                    match Arc::clone(&refusals).try_acquire_owned() {
                        Ok(permit) => {
                            tokio::spawn(async move {
                                refuse(stream).await;
                                drop(permit);
                            });
                        }
                        // Too many refusals in progress: the answer goes into the empty send
                        // buffer of the new socket without waiting, and the socket is closed.
                        Err(_) => {
                            let _ = stream.try_write(REFUSAL);
                        }
                    }
                }
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                open = counters.open.load(Ordering::Relaxed),
                grace_ms = limits.shutdown_grace.as_millis() as u64,
                "connections still open after the shutdown grace period; stopped anyway"
            );
        }
    }
}

/// File descriptors kept free for everything else the process opens (database and log
/// files, outbound connections, refusals in progress).
pub const RESERVED_FDS: usize = 64 + MAX_REFUSALS;

/// The cap actually applied: the configured one, but below the process's open-file limit
/// (less [`RESERVED_FDS`]), so that connections beyond it get the clear 503 instead of the
/// kernel's backlog (with a file limit of 256, 400 idle connections made the old server's
/// `accept` fail and everyone else time out connecting). At least 1.
pub fn effective_max_connections(configured: usize, open_files_limit: Option<usize>) -> usize {
    let cap = match open_files_limit {
        Some(limit) => configured.min(limit.saturating_sub(RESERVED_FDS)),
        None => configured,
    };
    cap.max(1)
}

/// Parses a listen address: `IP:PORT`, `[IPv6]:PORT`, or `localhost:PORT` for 127.0.0.1
/// (without asking a resolver, so `localhost` never turns into an address beyond loopback).
/// Shared by the server's and the emulator's configurations, which accept the same forms.
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = s.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err(format!(
        "expected \"IP:PORT\" or \"localhost:PORT\", got {s:?}"
    ))
}

/// The soft limit on open files of this process, from `/proc/self/limits` (Linux; `None`
/// elsewhere, or when unlimited). Read once per [`Server::serve`].
pub fn open_files_limit() -> Option<usize> {
    parse_open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit of the `Max open files` row of a `/proc/<pid>/limits` text.
fn parse_open_files_limit(limits: &str) -> Option<usize> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Errors of one connection that do not concern the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Writes the fixed 503, then reads and discards what the client sent (so that the close is
/// a FIN, not a reset that could destroy the answer before the client reads it).
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < REFUSAL_DRAIN {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

/// What a connection is doing, for its watchdog.
const FRESH: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;
/// No deadline (a request is being served).
const NO_DEADLINE: u64 = u64::MAX;

/// The shared state of one connection: its phase and the watchdog's deadline, moved by the
/// socket's reads, the request and the response.
#[derive(Debug)]
struct ConnClock {
    base: Instant,
    limits: Limits,
    phase: AtomicU8,
    /// Milliseconds after `base`, or [`NO_DEADLINE`].
    deadline_ms: AtomicU64,
    /// The current request's body timed out.
    body_timed_out: AtomicBool,
}

impl ConnClock {
    fn new(limits: Limits) -> Self {
        let clock = Self {
            base: Instant::now(),
            limits,
            phase: AtomicU8::new(FRESH),
            deadline_ms: AtomicU64::new(NO_DEADLINE),
            body_timed_out: AtomicBool::new(false),
        };
        clock.set_deadline(limits.header_read_timeout);
        clock
    }

    fn set_deadline(&self, after: Duration) {
        let at = self.base.elapsed().saturating_add(after).as_millis();
        self.deadline_ms.store(
            u64::try_from(at).unwrap_or(NO_DEADLINE - 1),
            Ordering::Relaxed,
        );
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline_ms.load(Ordering::Relaxed) {
            NO_DEADLINE => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }

    /// Bytes arrived: on an idle connection, the next request's head has begun.
    fn on_read(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.phase.store(HEAD, Ordering::Relaxed);
            self.set_deadline(self.limits.header_read_timeout);
        }
    }

    /// A request head arrived.
    fn begin_request(&self) {
        self.phase.store(BUSY, Ordering::Relaxed);
        self.deadline_ms.store(NO_DEADLINE, Ordering::Relaxed);
        self.body_timed_out.store(false, Ordering::Relaxed);
    }

    /// The response has been handed to the connection.
    fn end_request(&self) {
        self.phase.store(IDLE, Ordering::Relaxed);
        self.set_deadline(self.limits.idle_timeout);
    }
}

/// One accepted connection.
struct Connection {
    limits: Limits,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    /// The client's address, handed to every request as `axum::extract::ConnectInfo`.
    peer: std::net::SocketAddr,
}

impl Connection {
    async fn run<S, B>(mut self, stream: TcpStream, service: S)
    where
        S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let clock = Arc::new(ConnClock::new(self.limits));
        let io = TokioIo::new(WatchedIo {
            inner: stream,
            clock: Arc::clone(&clock),
        });
        let service = ConnService {
            inner: service,
            clock: Arc::clone(&clock),
            counters: Arc::clone(&self.counters),
            peer: self.peer,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .keep_alive(true)
            .header_read_timeout(None)
            .max_header_size(self.limits.max_header_bytes);
        // With upgrades: a `101 Switching Protocols` response (a WebSocket passed through by
        // the gateway's proxy) hands the socket to the handler's `hyper::upgrade::on`. The
        // connection's slot is then released and its timers stop: the upgraded stream is the
        // handler's to bound.
        let conn = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(conn);
        let mut stopping = *self.stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            // While a request is served there is no deadline; look again a header timeout
            // later.
            let wake = clock
                .deadline()
                .unwrap_or_else(|| Instant::now() + self.limits.header_read_timeout);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                changed = self.stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if clock.deadline().is_some_and(|d| d <= Instant::now()) {
                        let counter = match clock.phase.load(Ordering::Relaxed) {
                            IDLE => &self.counters.idle_timeouts,
                            _ => &self.counters.header_timeouts,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            phase = clock.phase.load(Ordering::Relaxed),
                            "closing a connection: timed out"
                        );
                        break;
                    }
                }
            }
        }
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// The socket, telling the connection's watchdog when bytes arrive.
    struct WatchedIo {
        #[pin]
        inner: TcpStream,
        clock: Arc<ConnClock>,
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.on_read();
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// The hyper service of one connection: times the request body, marks the request's start
/// and end for the watchdog, and answers 408 when the body timed out.
struct ConnService<S> {
    inner: S,
    clock: Arc<ConnClock>,
    counters: Arc<Counters>,
    peer: std::net::SocketAddr,
}

type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, Infallible>> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = Infallible;
    type Future = ResponseFuture<B>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.clock.begin_request();
        let deadline = Instant::now() + self.clock.limits.body_read_timeout;
        let clock = Arc::clone(&self.clock);
        let window = self
            .clock
            .limits
            .body_timeout_on_progress
            .then_some(self.clock.limits.body_read_timeout);
        let mut req = req.map(|body| RequestBody {
            inner: body,
            deadline,
            window,
            sleep: None,
            clock: Arc::clone(&clock),
        });
        // The peer address, as axum's `ConnectInfo` extractor reads it (per-client limits).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let service = self.inner.clone();
        let counters = Arc::clone(&self.counters);
        Box::pin(async move {
            let response = match service.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let guard = EndOfResponse(Arc::clone(&clock));
            if clock.body_timed_out.load(Ordering::Relaxed) {
                counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
                return Ok(body_timeout_response(guard));
            }
            Ok(response.map(|body| ResponseBody {
                inner: Either::Left(body),
                _guard: guard,
            }))
        })
    }
}

/// `408 Request Timeout`, closing the connection.
fn body_timeout_response<B>(guard: EndOfResponse) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody {
        inner: Either::Right(Full::new(Bytes::from_static(
            b"the request body did not arrive in time\n",
        ))),
        _guard: guard,
    });
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyTimeout`] when it has not arrived in full within
    /// [`Limits::body_read_timeout`] of the request head.
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        deadline: Instant,
        // With `body_timeout_on_progress`: the window each frame that arrives opens again.
        window: Option<Duration>,
        // Made only when the body is not immediately ready.
        sleep: Option<Pin<Box<Sleep>>>,
        clock: Arc<ConnClock>,
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").finish_non_exhaustive()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                if let (Some(window), Some(Ok(_))) = (*this.window, &frame) {
                    *this.deadline = Instant::now() + window;
                    if let Some(sleep) = this.sleep.as_mut() {
                        sleep.as_mut().reset(*this.deadline);
                    }
                }
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let deadline = *this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.clock.body_timed_out.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(BoxError::from(BodyTimeout))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Marks the end of a request for the watchdog when the response body is done with.
#[derive(Debug)]
struct EndOfResponse(Arc<ConnClock>);

impl Drop for EndOfResponse {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

pin_project_lite::pin_project! {
    /// A response body: the application's, or the fixed 408.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Either<B, Full<Bytes>>,
        _guard: EndOfResponse,
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            256                  524288               files     \n\
Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn listen_addresses_take_localhost_and_refuse_other_names() {
        assert_eq!(
            parse_listen("127.0.0.1:9000"),
            Ok(([127, 0, 0, 1], 9000).into())
        );
        assert_eq!(
            parse_listen("localhost:8085"),
            Ok(([127, 0, 0, 1], 8085).into())
        );
        assert!(parse_listen("[::1]:1").is_ok_and(|a| a.ip().is_loopback()));
        for bad in [
            "nowhere",
            "example.com:80",
            "localhost",
            "localhost:x",
            "127.0.0.1",
        ] {
            let e = parse_listen(bad).unwrap_err();
            assert!(e.contains("localhost:PORT") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(parse_open_files_limit(PROC_LIMITS), Some(256));
        assert_eq!(
            parse_open_files_limit("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(parse_open_files_limit(""), None);
        // The fault run's case: a file limit of 256 and the default cap of 1024.
        assert_eq!(
            effective_max_connections(1024, Some(256)),
            256 - RESERVED_FDS
        );
        assert_eq!(effective_max_connections(100, Some(20_000)), 100);
        assert_eq!(effective_max_connections(1024, None), 1024);
        assert_eq!(effective_max_connections(1024, Some(10)), 1);
        assert_eq!(effective_max_connections(0, None), 1);
        // This process's own limit is readable on Linux.
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
