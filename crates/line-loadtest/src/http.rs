//! A virtual user's HTTP client: one HTTP/1.1 keep-alive connection per origin (scheme, host,
//! port), kept across the user's flows, the way a browser keeps its sockets.
//!
//! The per-flow hot path runs on plain hyper client connections, each driven inside the task
//! that sends on it (no connection task, no pool lock, no cross-task wake-ups), which costs far
//! less CPU per request than a general-purpose pooled client. A connection is dropped when the
//! response says so (`Connection: close`, or HTTP/1.0 without keep-alive), when the server
//! closed it, and after any error or timeout. A request that fails on a *reused* connection
//! before any response arrives is retried once on a fresh connection, as browsers do (the
//! server may have closed the idle connection just as the request left). URLs other than
//! `http:` go through a `reqwest` client instead.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, CONTENT_TYPE, COOKIE, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::{Host, Position, Url};

/// The largest response body read; a longer one fails the request as [`HttpError::Body`].
pub const MAX_BODY: usize = 1024 * 1024;

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The request (connecting, sending and reading the body) took longer than the timeout.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The connection failed before a response arrived.
    Transport,
    /// The response body could not be read, or was longer than [`MAX_BODY`].
    Body,
}

/// A response, its body read in full.
#[derive(Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Bytes,
}

/// A request body: empty, or an `application/x-www-form-urlencoded` form.
type ReqBody = Full<Bytes>;

/// One open connection.
struct Conn {
    host: String,
    port: u16,
    sender: SendRequest<ReqBody>,
    driver: Connection<TokioIo<TcpStream>, ReqBody>,
    /// The driver has completed (the connection is closed): never poll it again.
    closed: bool,
}

/// A virtual user's connections (see the module documentation).
#[derive(Debug)]
pub struct Agent {
    conns: Vec<Conn>,
    timeout: Duration,
    fallback: reqwest::Client,
    connects: u64,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Whether a connection may carry another request after this response (RFC 9112 §9.3):
/// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
pub fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &str| {
        headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match version {
        Version::HTTP_11 => !has("close"),
        Version::HTTP_10 => has("keep-alive") && !has("close"),
        _ => false,
    }
}

/// Reads a whole body, failing if it is longer than `limit` bytes.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, HttpError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| HttpError::Body)
}

/// Polls `fut` to completion while also driving the connection it runs on.
async fn drive<F: Future>(
    driver: &mut Connection<TokioIo<TcpStream>, ReqBody>,
    closed: &mut bool,
    fut: F,
) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if !*closed && std::pin::Pin::new(&mut *driver).poll(cx).is_ready() {
            *closed = true;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// What one attempt on one connection gave.
enum Attempt {
    /// A response, and whether the connection can be kept.
    Done(Response, bool),
    /// The connection failed before any response arrived.
    NoResponse,
    /// The body failed.
    Body,
}

async fn exchange(conn: &mut Conn, req: Request<ReqBody>) -> Attempt {
    let Conn {
        sender,
        driver,
        closed,
        ..
    } = conn;
    if drive(driver, closed, sender.ready()).await.is_err() {
        return Attempt::NoResponse;
    }
    let sent = sender.send_request(req);
    let Ok(resp) = drive(driver, closed, sent).await else {
        return Attempt::NoResponse;
    };
    let (parts, body) = resp.into_parts();
    let keep = keeps_alive(parts.version, &parts.headers);
    match drive(driver, closed, read_limited(body, MAX_BODY)).await {
        Ok(body) => Attempt::Done(
            Response {
                status: parts.status,
                headers: parts.headers,
                body,
            },
            keep && !*closed,
        ),
        Err(_) => Attempt::Body,
    }
}

/// The host (as in the URL, IPv6 in brackets) and port of an `http:` URL.
fn host_port(url: &Url) -> Option<(&str, u16)> {
    Some((url.host_str()?, url.port_or_known_default()?))
}

async fn connect(url: &Url) -> Result<Conn, HttpError> {
    let (host, port) = host_port(url).ok_or(HttpError::Connect)?;
    let stream = match url.host() {
        Some(Host::Ipv4(ip)) => TcpStream::connect(SocketAddr::from((ip, port))).await,
        Some(Host::Ipv6(ip)) => TcpStream::connect(SocketAddr::from((ip, port))).await,
        Some(Host::Domain(d)) => TcpStream::connect((d, port)).await,
        None => return Err(HttpError::Connect),
    }
    .map_err(|_| HttpError::Connect)?;
    stream.set_nodelay(true).map_err(|_| HttpError::Connect)?;
    let (sender, driver) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| HttpError::Connect)?;
    Ok(Conn {
        host: host.to_owned(),
        port,
        sender,
        driver,
        closed: false,
    })
}

/// Builds a request for an `http:` URL: origin-form target, `Host`, `Accept`, the cookies, and
/// for a form its content type and `Origin`.
fn build_request(
    method: &Method,
    url: &Url,
    cookie: Option<&HeaderValue>,
    form: Option<&Bytes>,
) -> Result<Request<ReqBody>, HttpError> {
    let target = Uri::try_from(&url[Position::BeforePath..Position::AfterQuery])
        .map_err(|_| HttpError::Transport)?;
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let mut req = Request::new(form.cloned().map(Full::new).unwrap_or_default());
    *req.method_mut() = method.clone();
    *req.uri_mut() = target;
    let h = req.headers_mut();
    h.insert(
        HOST,
        HeaderValue::from_str(authority).map_err(|_| HttpError::Transport)?,
    );
    h.insert(ACCEPT, HeaderValue::from_static("*/*"));
    if let Some(c) = cookie {
        h.insert(COOKIE, c.clone());
    }
    if form.is_some() {
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h.insert(
            ORIGIN,
            HeaderValue::try_from(url.origin().ascii_serialization())
                .map_err(|_| HttpError::Transport)?,
        );
    }
    Ok(req)
}

impl Agent {
    /// A user with no connections yet. `timeout` bounds each request (connect, send, body);
    /// `fallback` serves URLs that are not `http:`.
    pub fn new(timeout: Duration, fallback: reqwest::Client) -> Self {
        Self {
            conns: Vec::with_capacity(2),
            timeout,
            fallback,
            connects: 0,
        }
    }

    /// Connections opened so far.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// Sends one request and reads the whole response. `form` is an urlencoded body (sent
    /// with its content type and the URL's `Origin`).
    pub async fn send(
        &mut self,
        method: &Method,
        url: &Url,
        cookie: Option<HeaderValue>,
        form: Option<Bytes>,
    ) -> Result<Response, HttpError> {
        if url.scheme() != "http" {
            return self.send_fallback(method, url, cookie, form).await;
        }
        let req = build_request(method, url, cookie.as_ref(), form.as_ref())?;
        // On timeout the connection in use is dropped with the future: it is not in `conns`.
        tokio::time::timeout(
            self.timeout,
            self.send_http(method, url, req, cookie.as_ref(), form.as_ref()),
        )
        .await
        .unwrap_or(Err(HttpError::Timeout))
    }

    async fn send_http(
        &mut self,
        method: &Method,
        url: &Url,
        req: Request<ReqBody>,
        cookie: Option<&HeaderValue>,
        form: Option<&Bytes>,
    ) -> Result<Response, HttpError> {
        let (host, port) = host_port(url).ok_or(HttpError::Connect)?;
        let idle = self
            .conns
            .iter()
            .position(|c| c.port == port && c.host == host);
        let (mut conn, reused) = match idle {
            Some(i) => (self.conns.swap_remove(i), true),
            None => {
                self.connects += 1;
                (connect(url).await?, false)
            }
        };
        let mut attempt = exchange(&mut conn, req).await;
        if reused && matches!(attempt, Attempt::NoResponse) {
            self.connects += 1;
            conn = connect(url).await?;
            let req = build_request(method, url, cookie, form)?;
            attempt = exchange(&mut conn, req).await;
        }
        match attempt {
            Attempt::Done(resp, keep) => {
                if keep {
                    self.conns.push(conn);
                }
                Ok(resp)
            }
            Attempt::NoResponse => Err(HttpError::Transport),
            Attempt::Body => Err(HttpError::Body),
        }
    }

    /// `https:` and anything else not `http:`: through `reqwest` (which has its own timeout).
    async fn send_fallback(
        &mut self,
        method: &Method,
        url: &Url,
        cookie: Option<HeaderValue>,
        form: Option<Bytes>,
    ) -> Result<Response, HttpError> {
        let mut req = self
            .fallback
            .request(method.clone(), url.clone())
            .timeout(self.timeout);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        if let Some(body) = form {
            req = req
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ORIGIN, url.origin().ascii_serialization())
                .body(body);
        }
        let mut resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                HttpError::Timeout
            } else if e.is_connect() {
                HttpError::Connect
            } else {
                HttpError::Transport
            }
        })?;
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => {
                    body.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => return Err(HttpError::Body),
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(HttpError::Timeout),
                Err(_) => return Err(HttpError::Body),
            }
        }
        Ok(Response {
            status: resp.status(),
            headers: std::mem::take(resp.headers_mut()),
            body: body.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn keep_alive_decision() {
        assert!(keeps_alive(Version::HTTP_11, &headers(&[])));
        assert!(!keeps_alive(
            Version::HTTP_11,
            &headers(&[("connection", "close")])
        ));
        assert!(!keeps_alive(
            Version::HTTP_11,
            &headers(&[("connection", "Upgrade, Close")])
        ));
        assert!(keeps_alive(
            Version::HTTP_11,
            &headers(&[("connection", "keep-alive")])
        ));
        assert!(!keeps_alive(Version::HTTP_10, &headers(&[])));
        assert!(keeps_alive(
            Version::HTTP_10,
            &headers(&[("connection", "Keep-Alive")])
        ));
        assert!(!keeps_alive(Version::HTTP_2, &headers(&[])));
    }

    #[tokio::test]
    async fn bodies_are_bounded() {
        let at_limit = Full::new(Bytes::from(vec![b'x'; MAX_BODY]));
        assert_eq!(
            read_limited(at_limit, MAX_BODY).await.unwrap().len(),
            MAX_BODY
        );
        let over = Full::new(Bytes::from(vec![b'x'; MAX_BODY + 1]));
        assert_eq!(
            read_limited(over, MAX_BODY).await.unwrap_err(),
            HttpError::Body
        );
    }

    #[test]
    fn requests_are_origin_form_with_host_and_form_headers() {
        let url = Url::parse("http://127.0.0.1:8080/a/b?x=1&y=2#frag").unwrap();
        let cookie = HeaderValue::from_static("a=1; b=2");
        let form = Bytes::from_static(b"k=v");
        let req = build_request(&Method::POST, &url, Some(&cookie), Some(&form)).unwrap();
        assert_eq!(req.uri(), "/a/b?x=1&y=2");
        assert_eq!(req.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(req.headers()[COOKIE], "a=1; b=2");
        assert_eq!(
            req.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(req.headers()[ORIGIN], "http://127.0.0.1:8080");
        let req = build_request(
            &Method::GET,
            &Url::parse("http://[::1]/").unwrap(),
            None,
            None,
        )
        .unwrap();
        assert_eq!(req.uri(), "/");
        assert_eq!(req.headers()[HOST], "[::1]");
        assert!(req.headers().get(ORIGIN).is_none());
        assert!(req.headers().get(COOKIE).is_none());
    }

    /// A server answering each connection's requests with `reply(n)` (n counts requests on the
    /// connection; an empty reply closes the connection without answering) and closing a
    /// connection after `per_conn` answers without saying so.
    async fn server(per_conn: usize, reply: fn(usize) -> Vec<u8>) -> (Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    for n in 0..per_conn {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(k) => buf.extend_from_slice(&chunk[..k]),
                            }
                        }
                        buf.clear();
                        let answer = reply(n);
                        if answer.is_empty() || s.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn agent() -> Agent {
        Agent::new(Duration::from_secs(5), reqwest::Client::new())
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn one_connection_is_reused_across_requests() {
        let (url, accepted) = server(100, |_| OK.into()).await;
        let mut a = agent();
        for _ in 0..5 {
            let r = a.send(&Method::GET, &url, None, None).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"ok"[..]));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(a.connects(), 1);
    }

    #[tokio::test]
    async fn connection_close_opens_a_new_connection() {
        let (url, accepted) = server(100, |_| {
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec()
        })
        .await;
        let mut a = agent();
        for _ in 0..3 {
            a.send(&Method::GET, &url, None, None).await.unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_silently_closed_connection_is_retried_once_on_a_fresh_one() {
        // The server drops each connection after one answer, without `Connection: close`.
        let (url, accepted) = server(1, |_| OK.into()).await;
        let mut a = agent();
        for _ in 0..4 {
            let r = a.send(&Method::GET, &url, None, None).await.unwrap();
            assert_eq!(r.status, StatusCode::OK);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_request_lost_on_a_reused_connection_is_retried_once_on_a_fresh_one() {
        // The server reads the second request on each connection, then closes it unanswered.
        let (url, accepted) = server(100, |n| if n == 0 { OK.into() } else { Vec::new() }).await;
        let mut a = agent();
        for _ in 0..3 {
            let r = a.send(&Method::GET, &url, None, None).await.unwrap();
            assert_eq!(r.status, StatusCode::OK);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_lost_on_a_fresh_connection_is_not_retried() {
        let (url, accepted) = server(100, |_| Vec::new()).await;
        let mut a = agent();
        assert_eq!(
            a.send(&Method::GET, &url, None, None).await.unwrap_err(),
            HttpError::Transport
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn oversized_bodies_and_timeouts_fail_with_their_kind() {
        let (url, _) = server(100, |_| {
            let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 2000000\r\n\r\n".to_vec();
            r.resize(r.len() + 2_000_000, b'x');
            r
        })
        .await;
        let mut a = agent();
        assert_eq!(
            a.send(&Method::GET, &url, None, None).await.unwrap_err(),
            HttpError::Body
        );
        // A body that never ends times out.
        let (url, _) = server(100, |_| {
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab".to_vec()
        })
        .await;
        let mut a = Agent::new(Duration::from_millis(200), reqwest::Client::new());
        assert_eq!(
            a.send(&Method::GET, &url, None, None).await.unwrap_err(),
            HttpError::Timeout
        );
    }

    #[tokio::test]
    async fn refused_connections_fail_as_connect() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        assert_eq!(
            agent()
                .send(&Method::GET, &url, None, None)
                .await
                .unwrap_err(),
            HttpError::Connect
        );
    }
}
