//! Raw-TCP readers for tests that speak HTTP/1.1 by hand to a listener (slow heads, idle
//! keep-alives, stalled bodies). Shared by `line-listener`'s own tests and the login server's
//! listener tests (included there with `#[path]`), so that both read responses the same way.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::{Instant, timeout};

/// Reads until the peer closes (Ok: what was read) or `within` passes (Err: what was read).
pub async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
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

/// Reads one response (its head and a Content-Length body; enough for these tests).
pub async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a full response: {out:?}");
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if out.len() >= head_end + 4 + len {
                return text;
            }
        }
    }
}

/// Opens one more connection to `addr` and sends `request`: the listener is at its connection
/// cap, so it answers 503 with `Retry-After: 1` and closes, within `within`.
pub async fn assert_refused_at_cap(addr: impl ToSocketAddrs, request: &[u8], within: Duration) {
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra.write_all(request).await;
    let read = read_until_closed(&mut extra, within)
        .await
        .expect("refused and closed at once");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("Retry-After: 1"), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
}
