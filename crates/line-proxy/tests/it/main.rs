//! The proxy between a real client and a real upstream, all on 127.0.0.1:0: the proxy is
//! served the way the gateway serves it (an axum fallback on `line-listener`).
#![allow(missing_docs)]
// Tests bound real waits and measure real timeouts (the root clippy.toml's clock rule is for
// library code).
#![allow(clippy::disallowed_methods)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use line_listener::{Limits, Server};
use line_proxy::{ForwardContext, Proxy, ProxyConfig, ProxyError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

const WITHIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Harness

/// What the front adds and strips, as the gateway would.
#[derive(Clone, Default)]
struct FrontOpts {
    prefix: &'static str,
    cookies: &'static [&'static str],
    add: HeaderMap,
    scheme: &'static str,
}

#[derive(Clone)]
struct FrontState {
    proxy: Proxy,
    opts: FrontOpts,
}

async fn fallback(
    State(state): State<FrontState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let ctx = ForwardContext {
        peer,
        scheme: if state.opts.scheme.is_empty() {
            "http"
        } else {
            state.opts.scheme
        },
        add: state.opts.add.clone(),
        strip_header_prefix: state.opts.prefix,
        strip_cookies: state.opts.cookies,
    };
    match state.proxy.forward(req, ctx).await {
        Ok(response) => response.map(Body::new),
        Err(e) => (e.status(), e.to_string()).into_response(),
    }
}

/// Serves the proxy on 127.0.0.1:0; the server stops when the test's runtime ends.
async fn front(config: ProxyConfig, opts: FrontOpts) -> SocketAddr {
    let proxy = Proxy::new(config).unwrap_or_else(|e| panic!("proxy: {e}"));
    let app = Router::new()
        .fallback(fallback)
        .with_state(FrontState { proxy, opts });
    let listener = bind().await;
    let addr = local(&listener);
    let limits = Limits {
        body_read_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    tokio::spawn(Server::new(limits).serve(listener, app, std::future::pending()));
    addr
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"))
}

fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
}

fn config(upstream: SocketAddr) -> ProxyConfig {
    let uri: Uri = format!("http://{upstream}")
        .parse()
        .unwrap_or_else(|e| panic!("uri: {e}"));
    ProxyConfig::new(uri)
}

/// An axum upstream, counting the TCP connections it accepts.
async fn upstream(app: Router) -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::serve::ListenerExt as _;
    let listener = bind().await;
    let addr = local(&listener);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, accepted)
}

/// An upstream that answers every request with what it received: the request line, then
/// each header as `name: value`, one a line.
fn echo_app() -> Router {
    Router::new().fallback(|req: Request| async move {
        let mut out = format!("{} {}\n", req.method(), req.uri());
        for (name, value) in req.headers() {
            out.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        out
    })
}

/// The values of header `name` in an echo.
fn echoed<'a>(echo: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    echo.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

async fn send(req: http::Request<TestBody>) -> (StatusCode, HeaderMap, String) {
    let response = timeout(WITHIN, client().request(req))
        .await
        .unwrap_or_else(|_| panic!("no response in time"))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let (parts, body) = response.into_parts();
    let body = timeout(WITHIN, body.collect())
        .await
        .unwrap_or_else(|_| panic!("no body in time"))
        .unwrap_or_else(|e| panic!("body: {e}"))
        .to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, HeaderMap, String) {
    let req = http::Request::get(format!("http://{addr}{path}"))
        .body(full(""))
        .unwrap_or_else(|e| panic!("{e}"));
    send(req).await
}

/// Writes `raw` on a new connection and reads until the peer closes (or 10 s pass).
async fn raw(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    s.write_all(raw)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut out = Vec::new();
    let _ = timeout(WITHIN, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------
// Never an open proxy

#[tokio::test]
async fn absolute_form_host_and_forwarding_headers_never_choose_the_destination() {
    let (up, _) = upstream(echo_app()).await;
    let proxy = front(config(up), FrontOpts::default()).await;

    let answer = raw(
        proxy,
        b"GET http://evil.invalid:81/p?q=1 HTTP/1.1\r\nHost: other.invalid\r\n\
          X-Forwarded-Host: evil3.invalid\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\r\n\r\nGET /p?q=1\n"), "{answer}");
    // RFC 9112 §3.2.2: the target's host replaces Host; the untrusted X-Forwarded-Host is
    // dropped.
    assert_eq!(echoed(&answer, "host"), ["evil.invalid:81"]);
    assert_eq!(echoed(&answer, "x-forwarded-host"), ["evil.invalid:81"]);

    // Origin-form: the client's Host is passed (apps build URLs from it); path and query
    // byte for byte.
    let answer = raw(
        proxy,
        b"GET /a/../b/%2e%2E//c;x?x=%20&y=/../ HTTP/1.1\r\nHost: app.example:8080\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\r\n\r\nGET /a/../b/%2e%2E//c;x?x=%20&y=/../\n"),
        "{answer}"
    );
    assert_eq!(echoed(&answer, "host"), ["app.example:8080"]);
}

#[tokio::test]
async fn connect_and_other_target_forms_are_refused_without_contacting_the_upstream() {
    let (up, accepted) = upstream(echo_app()).await;
    let proxy = front(config(up), FrontOpts::default()).await;
    for request in [
        &b"CONNECT evil.invalid:443 HTTP/1.1\r\nHost: evil.invalid:443\r\n\r\n"[..],
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET ftp://evil.invalid/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(proxy, request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{}: {answer}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------
// Headers

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways_and_set_cookie_passes() {
    let app = echo_app().route(
        "/hop",
        axum::routing::get(|| async {
            (
                [
                    ("connection", "x-up-hop"),
                    ("x-up-hop", "1"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-authenticate", "Basic"),
                    ("trailer", "x-sum"),
                    ("upgrade", "h2c"),
                    ("set-cookie", "app=1; Path=/; HttpOnly"),
                    ("x-app", "kept"),
                ],
                "hop",
            )
        }),
    );
    let (up, _) = upstream(app).await;
    let proxy = front(config(up), FrontOpts::default()).await;

    let req = http::Request::get(format!("http://{proxy}/echo"))
        .header("connection", "keep-alive, X-Client-Hop")
        .header("x-client-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("te", "gzip, trailers")
        .header("trailer", "x-sum")
        .header("upgrade", "h2c")
        .header("x-app", "kept")
        .body(full(""))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, _, echo) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    for gone in [
        "x-client-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "trailer",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(echoed(&echo, gone).is_empty(), "{gone} passed: {echo}");
    }
    assert_eq!(echoed(&echo, "te"), ["trailers"]);
    assert_eq!(echoed(&echo, "x-app"), ["kept"]);
    // hyper's client adds its own `connection` only when it closes; none here.
    assert!(echoed(&echo, "connection").is_empty(), "{echo}");

    let (status, headers, body) = get(proxy, "/hop").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hop"));
    for gone in [
        "connection",
        "x-up-hop",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
        "upgrade",
    ] {
        assert!(headers.get(gone).is_none(), "{gone} passed: {headers:?}");
    }
    assert_eq!(
        headers.get("set-cookie"),
        Some(&HeaderValue::from_static("app=1; Path=/; HttpOnly"))
    );
    assert_eq!(
        headers.get("x-app"),
        Some(&HeaderValue::from_static("kept"))
    );
}

fn spoofing_request(proxy: SocketAddr) -> http::Request<TestBody> {
    http::Request::get(format!("http://{proxy}/"))
        .header("host", "app.example")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-port", "1")
        .header("x-real-ip", "203.0.113.9")
        .header("forwarded", "for=203.0.113.9;proto=https")
        .body(full(""))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn forwarding_headers_of_an_untrusted_client_are_replaced() {
    let (up, _) = upstream(echo_app()).await;
    let proxy = front(config(up), FrontOpts::default()).await;
    let (_, _, echo) = send(spoofing_request(proxy)).await;
    assert_eq!(echoed(&echo, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(echoed(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(echoed(&echo, "x-forwarded-host"), ["app.example"]);
    assert_eq!(
        echoed(&echo, "forwarded"),
        ["for=127.0.0.1;host=\"app.example\";proto=http"]
    );
    assert!(echoed(&echo, "x-forwarded-port").is_empty(), "{echo}");
    assert!(echoed(&echo, "x-real-ip").is_empty(), "{echo}");
    assert_eq!(echoed(&echo, "host"), ["app.example"]);
}

#[tokio::test]
async fn forwarding_headers_of_a_trusted_proxy_are_kept_and_extended() {
    let (up, _) = upstream(echo_app()).await;
    let mut config = config(up);
    config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    let proxy = front(config, FrontOpts::default()).await;
    let (_, _, echo) = send(spoofing_request(proxy)).await;
    assert_eq!(echoed(&echo, "x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
    assert_eq!(echoed(&echo, "x-forwarded-proto"), ["https"]);
    assert_eq!(echoed(&echo, "x-forwarded-host"), ["evil.example"]);
    assert_eq!(echoed(&echo, "x-forwarded-port"), ["1"]);
    assert_eq!(
        echoed(&echo, "forwarded"),
        ["for=203.0.113.9;proto=https, for=127.0.0.1;host=\"app.example\";proto=http"]
    );
}

#[tokio::test]
async fn the_gateways_headers_and_cookies_cannot_be_forged() {
    let (up, _) = upstream(echo_app()).await;
    let mut add = HeaderMap::new();
    add.insert("x-linelogin-user", HeaderValue::from_static("Ureal"));
    let opts = FrontOpts {
        prefix: "x-linelogin-",
        cookies: &["linelogin_session", "linelogin_csrf"],
        add,
        scheme: "https",
    };
    let proxy = front(config(up), opts).await;
    let req = http::Request::get(format!("http://{proxy}/"))
        .header("X-LineLogin-User", "Uforged")
        .header("x-linelogin-assertion", "forged")
        .header(
            "cookie",
            "theme=dark; linelogin_session=s3cret; linelogin_csrf=c; cart=\"a;b\"",
        )
        .body(full(""))
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, _, echo) = send(req).await;
    assert_eq!(echoed(&echo, "x-linelogin-user"), ["Ureal"]);
    assert!(echoed(&echo, "x-linelogin-assertion").is_empty(), "{echo}");
    // The quoted value is split at its `;` by cookie syntax, and both halves pass unchanged.
    assert_eq!(echoed(&echo, "cookie"), ["theme=dark; cart=\"a; b\""]);
    assert!(!echo.contains("s3cret"), "{echo}");
    assert_eq!(echoed(&echo, "x-forwarded-proto"), ["https"]);
}

// ---------------------------------------------------------------------------------------
// Bodies

/// An upstream that counts the bytes of each request body as they stream in, and answers
/// `<bytes> <content-length or chunked>`.
fn counting_app() -> Router {
    Router::new().fallback(|req: Request| async move {
        let declared = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("chunked")
            .to_owned();
        let mut body = req.into_body().into_data_stream();
        let mut n: u64 = 0;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => n += chunk.len() as u64,
                Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
            }
        }
        format!("{n} {declared}").into_response()
    })
}

/// A request body of `total` bytes in 64 KiB frames, made as it is read.
fn generated(total: u64) -> TestBody {
    const FRAME: u64 = 64 * 1024;
    let chunk = Bytes::from(vec![b'x'; FRAME as usize]);
    let frames = futures::stream::unfold(0u64, move |sent| {
        let chunk = chunk.clone();
        async move {
            (sent < total).then(|| {
                let n = FRAME.min(total - sent);
                (
                    Ok::<_, BoxError>(Frame::data(chunk.slice(..n as usize))),
                    sent + n,
                )
            })
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

#[tokio::test]
async fn a_large_chunked_upload_streams_through_with_every_byte() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    let (up, _) = upstream(counting_app()).await;
    let proxy = front(config(up), FrontOpts::default()).await;
    let req = http::Request::post(format!("http://{proxy}/upload"))
        .body(generated(TOTAL))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let response = timeout(Duration::from_secs(120), client().request(req))
        .await
        .unwrap_or_else(|_| panic!("no response in 120 s"))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .to_bytes();
    assert_eq!(body, format!("{TOTAL} chunked"));
    eprintln!("256 MiB through the proxy in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_slow_response_arrives_as_it_is_produced() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(std::sync::Mutex::new(Some(release_rx)));
    let app = Router::new().fallback(move || {
        let release = release.lock().ok().and_then(|mut r| r.take());
        async move {
            let first = futures::stream::once(async { Ok::<_, Infallible>(Bytes::from("first;")) });
            let last = futures::stream::once(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                Ok::<_, Infallible>(Bytes::from("last"))
            });
            Body::from_stream(first.chain(last))
        }
    });
    let (up, _) = upstream(app).await;
    let proxy = front(config(up), FrontOpts::default()).await;
    let response = timeout(
        WITHIN,
        client().request(
            http::Request::get(format!("http://{proxy}/"))
                .body(full(""))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("no response in time"))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut body = response.into_body();
    // The upstream makes its last chunk only once the client has the first.
    let first = timeout(WITHIN, body.frame())
        .await
        .unwrap_or_else(|_| panic!("the first chunk did not arrive before the last was made"))
        .unwrap_or_else(|| panic!("no first frame"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.into_data().ok(), Some(Bytes::from("first;")));
    let _ = release_tx.send(());
    let rest = timeout(WITHIN, body.collect())
        .await
        .unwrap_or_else(|_| panic!("no end in time"))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_bytes();
    assert_eq!(rest, Bytes::from("last"));
}

#[tokio::test]
async fn a_declared_body_above_the_limit_gets_413_without_contacting_the_upstream() {
    let (up, accepted) = upstream(counting_app()).await;
    let mut config = config(up);
    config.max_request_body_bytes = Some(1000);
    let proxy = front(config, FrontOpts::default()).await;

    let req = http::Request::post(format!("http://{proxy}/"))
        .body(full(vec![0u8; 1001]))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, _, _) = send(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);

    let req = http::Request::post(format!("http://{proxy}/"))
        .body(full(vec![0u8; 1000]))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, _, body) = send(req).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1000 1000"));
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_is_cut_off_with_413() {
    let (up, _) = upstream(counting_app()).await;
    let mut config = config(up);
    config.max_request_body_bytes = Some(1024 * 1024);
    let proxy = front(config, FrontOpts::default()).await;
    let req = http::Request::post(format!("http://{proxy}/"))
        .body(generated(8 * 1024 * 1024))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = timeout(WITHIN, client().request(req))
        .await
        .unwrap_or_else(|_| panic!("no response in time"));
    match response {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // The proxy may answer and close before the client has finished sending.
        Err(e) => panic!("the client got no 413: {e}"),
    }
    let req = http::Request::post(format!("http://{proxy}/"))
        .body(generated(1024 * 1024))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, _, body) = send(req).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1048576 chunked"));
}

// ---------------------------------------------------------------------------------------
// WebSocket

#[tokio::test]
async fn a_websocket_passes_through() {
    // A tungstenite echo server as the upstream.
    let listener = bind().await;
    let up = local(&listener);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_close() || ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let proxy = front(config(up), FrontOpts::default()).await;
    let (mut ws, response) = timeout(
        WITHIN,
        tokio_tungstenite::connect_async(format!("ws://{proxy}/socket")),
    )
    .await
    .unwrap_or_else(|_| panic!("no handshake in time"))
    .unwrap_or_else(|e| panic!("handshake: {e}"));
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    use tokio_tungstenite::tungstenite::Message;
    for text in ["hello", "through the gateway"] {
        ws.send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        let echo = timeout(WITHIN, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no echo in time"))
            .unwrap_or_else(|| panic!("closed"))
            .unwrap_or_else(|e| panic!("echo: {e}"));
        assert_eq!(echo, Message::text(text));
    }
    let big = vec![7u8; 1024 * 1024];
    ws.send(Message::binary(big.clone()))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let echo = timeout(WITHIN, ws.next())
        .await
        .unwrap_or_else(|_| panic!("no echo in time"))
        .unwrap_or_else(|| panic!("closed"))
        .unwrap_or_else(|e| panic!("echo: {e}"));
    assert_eq!(echo.into_data().as_ref(), big.as_slice());
    ws.close(None)
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
}

// ---------------------------------------------------------------------------------------
// Failures: bounded, 502/504, never a hang

#[tokio::test]
async fn an_upstream_that_is_down_gives_502_at_once() {
    let gone = local(&bind().await); // bound, then closed: connection refused
    let proxy = front(config(gone), FrontOpts::default()).await;
    let started = Instant::now();
    let (status, _, body) = get(proxy, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("connect"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A listener whose accept queue is full, so that a new connection gets no answer to its
/// SYN; and the connections that fill it (kept open).
async fn unanswering_listener() -> (SocketAddr, Vec<TcpStream>, TcpListener) {
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .bind("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let listener = socket.listen(1).unwrap_or_else(|e| panic!("{e}"));
    let addr = local(&listener);
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => return (addr, fillers, listener),
        }
    }
    panic!("the accept queue never filled: connect timeouts cannot be tested here");
}

#[tokio::test]
async fn a_connect_that_gets_no_answer_gives_502_after_the_connect_timeout() {
    let (addr, _fillers, _listener) = unanswering_listener().await;
    let mut config = config(addr);
    config.connect_timeout = Duration::from_millis(300);
    let proxy = front(config, FrontOpts::default()).await;
    let started = Instant::now();
    let (status, _, body) = get(proxy, "/").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("cannot connect to the upstream"), "{body}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_never_answers_gives_504_after_the_header_timeout() {
    let listener = bind().await;
    let addr = local(&listener);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // read nothing, answer nothing
        }
    });
    let mut config = config(addr);
    config.response_header_timeout = Duration::from_millis(400);
    let proxy = front(config, FrontOpts::default()).await;
    let started = Instant::now();
    let (status, _, body) = get(proxy, "/").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_slow_upload_is_not_cut_off_by_the_header_timeout_while_it_moves() {
    let (up, _) = upstream(counting_app()).await;
    let mut config = config(up);
    config.response_header_timeout = Duration::from_millis(300);
    let proxy = front(config, FrontOpts::default()).await;
    // 8 frames, 100 ms apart: 800 ms in all, each gap well within the timeout.
    let frames = futures::stream::unfold(0u8, |i| async move {
        if i == 8 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"0123456789"))),
            i + 1,
        ))
    });
    let req = http::Request::post(format!("http://{proxy}/"))
        .body(StreamBody::new(frames).boxed_unsync())
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, _, body) = send(req).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "80 chunked"));
}

#[tokio::test]
async fn an_upstream_closing_mid_body_makes_the_clients_body_fail() {
    let listener = bind().await;
    let addr = local(&listener);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
                .await;
            // dropped: closed with 95 bytes missing
        }
    });
    let proxy = front(config(addr), FrontOpts::default()).await;
    let response = timeout(
        WITHIN,
        client().request(
            http::Request::get(format!("http://{proxy}/"))
                .body(full(""))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("no response in time"))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    let body = timeout(WITHIN, response.into_body().collect())
        .await
        .unwrap_or_else(|_| panic!("the client's body hangs"));
    assert!(body.is_err(), "a short body looked complete");
}

#[tokio::test]
async fn the_proxy_error_says_its_status() {
    assert_eq!(ProxyError::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        ProxyError::BodyTooLarge.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        ProxyError::Connect("x".into()).status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        ProxyError::Upstream("x".into()).status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        ProxyError::BadRequest("x").status(),
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------------------------------
// Pooling

#[tokio::test]
async fn sequential_requests_reuse_pooled_upstream_connections() {
    let (up, accepted) = upstream(echo_app()).await;
    let proxy = front(config(up), FrontOpts::default()).await;
    for i in 0..50 {
        let (status, _, _) = get(proxy, &format!("/{i}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let n = accepted.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&n),
        "{n} upstream connections for 50 requests"
    );
}

#[tokio::test]
async fn an_upstream_that_stalls_mid_body_is_cut_off_after_the_idle_timeout() {
    let listener = bind().await;
    let addr = local(&listener);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
                .await;
            held.push(stream); // open, silent
        }
    });
    let mut config = config(addr);
    config.response_idle_timeout = Some(Duration::from_millis(400));
    let proxy = front(config, FrontOpts::default()).await;
    let response = timeout(
        WITHIN,
        client().request(
            http::Request::get(format!("http://{proxy}/"))
                .body(full(""))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("no response in time"))
    .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let body = timeout(WITHIN, response.into_body().collect())
        .await
        .unwrap_or_else(|_| panic!("the client's body hangs"));
    let took = started.elapsed();
    assert!(body.is_err(), "a short body looked complete");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
