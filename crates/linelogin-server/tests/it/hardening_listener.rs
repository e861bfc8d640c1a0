//! The server's listener under slow and idle clients (attack-and-fault run; catalogue case
//! LOAD-04): slowloris heads and idle keep-alive connections are closed, a stalled body ends
//! with 408, oversized heads get 431 and oversized bodies 413, the connection cap answers a
//! clear 503, and a healthy client keeps being served throughout. Raw TCP on 127.0.0.1:0.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use linelogin_server::config::HttpConfig;

use crate::fake_line::FakeLine;
use crate::harness::{Harness, Opts, cookie_value};

/// The raw-TCP readers of `line-listener`'s own tests.
#[path = "../../../line-listener/tests/it/raw_http.rs"]
mod raw_http;
use raw_http::{assert_refused_at_cap, read_response, read_until_closed};

/// The server (no worker) with `[http]` changed by `http`.
async fn start(http: impl FnOnce(&mut HttpConfig) + Send + 'static) -> Harness {
    let opts = Opts {
        worker: false,
        ..Opts::default()
    }
    .config(|c| http(&mut c.http));
    Harness::start_with(FakeLine::start().await, opts).await
}

fn addr(h: &Harness) -> String {
    h.base.trim_start_matches("http://").to_owned()
}

const GET_HOME: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A healthy client: a fresh connection, `GET /`, 200.
async fn healthy_get(h: &Harness) {
    let r = reqwest::get(h.url("/")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn slowloris_head_is_closed_after_the_header_timeout() {
    let h = start(|http| http.header_read_timeout_ms = 400).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr(&h)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    // One more byte each 100 ms (the head never ends); all must be closed in time.
    let mut open = slow.len();
    while open > 0 && started.elapsed() < Duration::from_secs(3) {
        sleep(Duration::from_millis(100)).await;
        open = 0;
        for s in &mut slow {
            let _ = s.write_all(b"X").await;
            let mut probe = [0u8; 16];
            match timeout(Duration::from_millis(1), s.read(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {}
                _ => open += 1,
            }
        }
    }
    assert_eq!(
        open,
        0,
        "{open} slowloris connections still open after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_millis(1_500));
    healthy_get(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_is_closed_after_the_idle_timeout() {
    let h = start(|http| {
        http.header_read_timeout_ms = 300;
        http.idle_timeout_ms = 800;
    })
    .await;
    let mut s = TcpStream::connect(addr(&h)).await.unwrap();
    s.write_all(GET_HOME).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let read = read_until_closed(&mut s, Duration::from_secs(4)).await;
    assert_eq!(read, Ok(Vec::new()), "the idle connection is closed");
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(700) && idle < Duration::from_millis(2_000),
        "closed after {idle:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn stalled_body_is_ended_with_408() {
    let h = start(|http| http.body_read_timeout_ms = 500).await;
    // Logged in, so that the handler reads the body.
    let c = h.client();
    let r = h.login(&c).await;
    let session = cookie_value(&r, "ll_session").expect("a session cookie");
    let mut s = TcpStream::connect(addr(&h)).await.unwrap();
    let started = Instant::now();
    let head = format!(
        "POST /account/unregister HTTP/1.1\r\nHost: x\r\nOrigin: {}\r\nCookie: ll_session={session}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf_token=",
        h.base
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let read = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("the stalled request is ended and its connection closed");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    healthy_get(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn load04_oversized_head_gets_431_oversized_body_413_and_healthy_clients_are_served() {
    let h = start(|_| {}).await;
    // 64 KiB of headers.
    let mut s = TcpStream::connect(addr(&h)).await.unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let read = match read_until_closed(&mut s, Duration::from_secs(5)).await {
        Ok(r) | Err(r) => r,
    };
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // A 10 MiB body on POST /account/unregister: refused from its Content-Length.
    let mut s = TcpStream::connect(addr(&h)).await.unwrap();
    s.write_all(
        b"POST /account/unregister HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10485760\r\n\r\n",
    )
    .await
    .unwrap();
    let _ = s.write_all(&[b'a'; 64 * 1024]).await;
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    healthy_get(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_with_retry_after_while_connected_clients_are_served() {
    let h = start(|http| {
        http.max_connections = 4;
        http.header_read_timeout_ms = 10_000;
    })
    .await;
    let mut healthy = TcpStream::connect(addr(&h)).await.unwrap();
    healthy.write_all(GET_HOME).await.unwrap();
    assert!(
        read_response(&mut healthy)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&h)).await.unwrap());
    }
    sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        assert_refused_at_cap(addr(&h), GET_HOME, Duration::from_secs(3)).await;
    }
    healthy.write_all(GET_HOME).await.unwrap();
    assert!(
        read_response(&mut healthy)
            .await
            .starts_with("HTTP/1.1 200")
    );
    drop(held);
    drop(healthy);
    sleep(Duration::from_millis(200)).await;
    healthy_get(&h).await;
    h.stop().await;
}
