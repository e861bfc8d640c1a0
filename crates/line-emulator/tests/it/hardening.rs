//! The emulator serves on the same hardened listener as the server (attack-and-fault run:
//! the emulator closed only stalled-body connections, after 30 s; slowloris and idle ones
//! stayed open).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::common::{start_with, test_config};

/// Reads until the peer closes (Ok: what was read) or `within` passes (Err).
async fn read_until_closed(
    s: &mut tokio::net::TcpStream,
    within: Duration,
) -> Result<Vec<u8>, Vec<u8>> {
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return Err(out),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn idle_keep_alive_and_slow_head_connections_are_closed() {
    let mut c = test_config();
    c.header_read_timeout_ms = 300;
    c.idle_timeout_ms = 700;
    let env = start_with(c).await;
    let addr = env.running.local_addr();
    // Idle after a request: closed after the idle timeout.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /oauth2/v2.1/certs HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /oauth2/v2.1/certs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let read = read_until_closed(&mut idle, Duration::from_secs(4))
        .await
        .expect("the idle connection is closed");
    assert!(
        String::from_utf8_lossy(&read).starts_with("HTTP/1.1 200"),
        "answered first"
    );
    let idle_closed = started.elapsed();
    assert!(
        idle_closed >= Duration::from_millis(600) && idle_closed < Duration::from_millis(2_500),
        "idle connection closed after {idle_closed:?}"
    );
    // The half-sent head was closed after the header timeout (by now, long since).
    assert_eq!(
        read_until_closed(&mut slow, Duration::from_millis(100)).await,
        Ok(Vec::new()),
        "the slow head's connection is closed"
    );
    env.running.shutdown().await.unwrap();
}
