//! The listener's limits, driven over raw TCP on 127.0.0.1:0 with short timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Tests bound real waits and measure real timeouts (the root clippy.toml's clock rule is for
// library code).
#![allow(clippy::disallowed_methods)]

mod raw_http;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use line_listener::{Counters, Limits, Server};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};

use raw_http::{assert_refused_at_cap, read_response, read_until_closed};

/// A served router, its address, and a way to stop it.
struct Running {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl Running {
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops")
            .unwrap();
        started.elapsed()
    }
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                sleep(Duration::from_millis(400)).await;
                "slow"
            }),
        )
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
        .route("/upgrade", get(upgrade_to_echo))
}

/// Answers `101 Switching Protocols` and echoes whatever the client then sends.
async fn upgrade_to_echo(mut req: axum::extract::Request) -> axum::response::Response {
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = on_upgrade.await.expect("the connection is handed over");
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    axum::response::Response::builder()
        .status(axum::http::StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(axum::body::Body::empty())
        .unwrap()
}

async fn start(limits: Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(limits);
    let counters = server.counters();
    let task = tokio::spawn(async move {
        server
            .serve(listener, app(), async {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(stop),
        task,
        counters,
    }
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1_500),
        body_read_timeout: Duration::from_millis(400),
        body_timeout_on_progress: false,
        max_connections: 64,
        max_header_bytes: 16 * 1024,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// Waits (at most 5 s) until `cond` holds.
async fn wait_until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        sleep(Duration::from_millis(10)).await;
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn slowloris_head_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    // A byte every 50 ms: the head would take 1.5 s; the header timeout is 300 ms.
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaa\r\n\r\n";
    let mut closed_after = None;
    for b in head {
        if s.write_all(&[*b]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(r) = timeout(Duration::from_millis(50), s.read(&mut probe)).await {
            assert!(matches!(r, Ok(0) | Err(_)), "no answer to a partial head");
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the slow head's connection was closed");
    assert!(
        closed_after >= Duration::from_millis(250) && closed_after < Duration::from_millis(1_200),
        "closed after {closed_after:?}"
    );
    assert_eq!(server.counters.snapshot().header_timeouts, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let read = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert_eq!(read, Ok(Vec::new()), "closed without an answer");
    assert!(
        started.elapsed() < Duration::from_millis(1_200),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_is_closed_after_the_idle_timeout() {
    let server = start(limits()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answered = Instant::now();
    // Longer than the header timeout (300 ms): the idle wait has its own, longer timeout,
    // so the kept-alive connection still serves.
    sleep(Duration::from_millis(700)).await;
    s.write_all(GET).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answered_again = Instant::now();
    let read = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_eq!(read, Ok(Vec::new()), "closed without more bytes");
    let idle = answered_again.elapsed();
    assert!(
        idle >= Duration::from_millis(1_400) && idle < Duration::from_millis(2_500),
        "closed after {idle:?} idle (first answer {:?} ago)",
        answered.elapsed()
    );
    assert_eq!(server.counters.snapshot().idle_timeouts, 1);
    server.stop().await;
}

#[tokio::test]
async fn stalled_body_is_ended_with_408_and_the_connection_closed() {
    let server = start(limits()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    let read = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("the connection is closed");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1_500),
        "{took:?}"
    );
    assert_eq!(server.counters.snapshot().body_timeouts, 1);
    // A body that arrives in time is fine.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let answer = read_response(&mut s).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_keeps_moving_passes_when_the_timeout_counts_from_progress() {
    /// Sends a 100-byte body ten bytes at a time, every 150 ms: 1.35 s in all, more than three
    /// times the 400 ms window, never 400 ms without a byte.
    async fn trickle(addr: std::net::SocketAddr) -> Result<Vec<u8>, Vec<u8>> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if s.write_all(b"0123456789").await.is_err() {
                break;
            }
        }
        read_until_closed(&mut s, Duration::from_secs(5)).await
    }
    let total = start(limits()).await;
    let read = trickle(total.addr).await.expect("closed");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 408"), "a total timeout: {text}");
    total.stop().await;

    let progress = start(Limits {
        body_timeout_on_progress: true,
        ..limits()
    })
    .await;
    let read = trickle(progress.addr).await.expect("closed");
    let text = String::from_utf8_lossy(&read);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with(&"0123456789".repeat(10)),
        "{text}"
    );
    assert_eq!(progress.counters.snapshot().body_timeouts, 0);
    progress.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_clearly_while_connected_clients_are_served() {
    let server = start(Limits {
        max_connections: 3,
        idle_timeout: Duration::from_secs(10),
        header_read_timeout: Duration::from_secs(10),
        ..limits()
    })
    .await;
    // A healthy client with a kept-alive connection, and two that hold theirs.
    let mut healthy = TcpStream::connect(server.addr).await.unwrap();
    healthy.write_all(GET).await.unwrap();
    assert!(
        read_response(&mut healthy)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let _held: Vec<TcpStream> = vec![
        TcpStream::connect(server.addr).await.unwrap(),
        TcpStream::connect(server.addr).await.unwrap(),
    ];
    wait_until(|| server.counters.snapshot().open == 3).await;
    // Beyond the cap: a clear, immediate 503 and a close.
    for _ in 0..5 {
        assert_refused_at_cap(server.addr, GET, Duration::from_secs(2)).await;
    }
    // The connected client keeps being served.
    healthy.write_all(GET).await.unwrap();
    let answer = read_response(&mut healthy).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let stats = server.counters.snapshot();
    assert_eq!((stats.open, stats.refused), (3, 5), "{stats:?}");
    // A slot that frees up is used again.
    drop(_held);
    wait_until(|| server.counters.snapshot().open == 1).await;
    let mut again = TcpStream::connect(server.addr).await.unwrap();
    again.write_all(GET).await.unwrap();
    assert!(read_response(&mut again).await.starts_with("HTTP/1.1 200"));
    server.stop().await;
}

#[tokio::test]
async fn oversized_head_gets_431() {
    let server = start(limits()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let read = match read_until_closed(&mut s, Duration::from_secs(3)).await {
        Ok(r) | Err(r) => r,
    };
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
    let server = start(limits()).await;
    let addr = server.addr;
    // An idle kept-alive connection and a request in flight.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(GET).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.stop());
    let answer = read_response(&mut busy).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow"),
        "{answer}"
    );
    assert_eq!(
        read_until_closed(&mut idle, Duration::from_secs(1)).await,
        Ok(Vec::new()),
        "the idle connection is closed at once"
    );
    let took = stopping.await.unwrap();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_slow_head_longer_than_the_header_timeout() {
    let server = start(Limits {
        shutdown_grace: Duration::from_secs(20),
        ..limits()
    })
    .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    sleep(Duration::from_millis(50)).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[tokio::test]
async fn an_upgrade_hands_the_connection_to_the_handler() {
    let running = start(limits()).await;
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("the echo in time")
        .expect("the upgraded connection echoes");
    assert_eq!(&buf, b"ping");
    running.stop().await;
}
