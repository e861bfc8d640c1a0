//! The emulator serves on the same hardened listener as the server (attack-and-fault run:
//! the emulator closed only stalled-body connections, after 30 s; slowloris and idle ones
//! stayed open); a shutdown does not wait for a half-sent request head; names from the
//! configuration are escaped on every page.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::common::*;

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

#[tokio::test]
async fn shutdown_does_not_wait_for_a_half_sent_request_head() {
    use tokio::io::AsyncWriteExt;
    let mut c = test_config();
    c.body_timeout_secs = 1;
    let env = start_with(c).await;
    let mut conn = env.connect().await;
    conn.write_all(b"GET /oauth2/v2.1/certs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let Env { running, .. } = env;
    tokio::time::timeout(std::time::Duration::from_secs(10), running.shutdown())
        .await
        .expect("shutdown finished")
        .unwrap();
    drop(conn);
}

#[tokio::test]
async fn hostile_names_from_the_config_are_escaped_on_every_page() {
    let mut c = test_config();
    c.channels[0].name = Some("<script>alert('ch')</script>".into());
    c.users[0].display_name = "\"><img src=x onerror=alert(1)>".into();
    let env = start_with(c).await;
    let raw = ["<script>alert(", "<img src=x"];
    // Consent page (with the add-friend checkbox).
    let resp = env
        .get_authorize(&env.browser, &[("bot_prompt", "normal")])
        .await;
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("&lt;script&gt;alert(&#39;ch&#39;)&lt;/script&gt;"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    for r in raw {
        assert!(!page.contains(r), "raw {r} on the consent page");
    }
    // The aggressive add-friend screen.
    let browser = client(true);
    let resp2 = env
        .get_authorize(&browser, &[("bot_prompt", "aggressive")])
        .await;
    let page = resp2.text().await.unwrap();
    let resp = env
        .answer(&browser, &page, Some(&env.user_ids()[1]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"friend\""), "{page}");
    for r in raw {
        assert!(!page.contains(r), "raw {r} on the add-friend page");
    }
    // The index page.
    let page = env.get("/").await.text().await.unwrap();
    for r in raw {
        assert!(!page.contains(r), "raw {r} on the index page");
    }
}
