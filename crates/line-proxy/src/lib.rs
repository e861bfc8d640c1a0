//! A reverse proxy to one configured upstream, for the linelogin gateway (it knows nothing of
//! LINE or sessions: the gateway says which headers to strip and which to add).
//!
//! [`Proxy::forward`] takes a request as an axum/hyper server received it and answers with
//! the upstream's response, streamed. What it guarantees, and why:
//!
//! - **Never an open proxy.** The TCP connection always goes to [`ProxyConfig::upstream`],
//!   whatever the request says: an absolute-form target (`GET http://evil/ HTTP/1.1`), `Host`
//!   and `X-Forwarded-Host` never choose where the request goes. `CONNECT` and targets that
//!   are neither origin-form (`/path?query`) nor absolute-form (`OPTIONS *`, authority-form)
//!   are refused with 400. Path and query are passed byte for byte: no decoding, no dot-segment
//!   removal, no slash merging, since any of those can change what the upstream serves.
//! - **`Host` is the client's.** Apps build absolute URLs (redirects, links) from `Host`, and
//!   the gateway is meant to be invisible to them, so the upstream gets the `Host` the client
//!   sent, as nginx's `proxy_set_header Host $host` and oauth2-proxy's
//!   `--pass-host-header` (its default) do. For an absolute-form target the host of the target
//!   is used instead, as RFC 9112 §3.2.2 says a server must. Without a `Host`, the upstream's
//!   own authority is sent. Several `Host` headers are refused (400).
//! - **Hop-by-hop headers are removed both ways**: `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`
//!   (a request's `TE: trailers` is kept), `Trailer`, `Transfer-Encoding` and `Upgrade`
//!   (except a WebSocket upgrade, below). They describe one connection; passing
//!   `Proxy-Authorization` on would leak a credential meant for this hop.
//! - **Forwarding headers are set** (`X-Forwarded-For`, `X-Forwarded-Proto`,
//!   `X-Forwarded-Host`, RFC 7239 `Forwarded`). Only a peer in
//!   [`ProxyConfig::trusted_proxies`] is believed: its `X-Forwarded-For` chain is kept and the
//!   peer appended, its `X-Forwarded-Proto`/`-Host` are kept and an element is appended to its
//!   `Forwarded`. From anyone else every inbound `X-Forwarded-*`, `Forwarded` and `X-Real-IP`
//!   is dropped and the values come from the connection, so that a client cannot make the
//!   app log, rate-limit or redirect by an address or host of its choosing.
//! - **The gateway's headers and cookies cannot be forged**: [`ForwardContext`] names a header
//!   prefix (every inbound header with it is removed) and cookie names (removed from `Cookie`;
//!   other cookies pass intact); its own headers are added after that, replacing any of the
//!   same name.
//! - **Bodies stream both ways**, frame by frame, in bounded memory: nothing is buffered
//!   beyond hyper's own read buffers, and backpressure reaches the sender. A response arrives
//!   at the client as the upstream produces it. Measured with `bench/proxy-upload.sh`
//!   (2026-12-05, debug build, 2 shared cores): the proxy process rests at 5.0 MiB RSS and
//!   peaks at 8.3 MiB (VmHWM) while 1 GiB is uploaded through it (chunked, 2.7 s), 8.5 MiB
//!   after 1 GiB is also downloaded through it (4.2 s).
//! - **Request size limit** ([`ProxyConfig::max_request_body_bytes`]): a `Content-Length`
//!   above it is refused with 413 before the upstream is contacted; a chunked body that grows
//!   past it is cut off, which aborts the upstream request, and the client gets 413. If the
//!   upstream had already answered (it may answer before reading the whole body), its
//!   response headers have gone to the client; the upstream connection is then aborted, so the
//!   client's response ends with an error (its connection is closed) instead of a 413.
//! - **WebSocket upgrades pass through**: `Connection: upgrade` + `Upgrade: websocket` are
//!   forwarded, and when the upstream answers `101` both connections are taken over
//!   (`hyper::upgrade::on`) and bytes are copied both ways (`copy_bidirectional`) until
//!   either side closes. The server in front must serve connections with upgrades enabled
//!   (`line-listener` does). Other upgrades (`h2c`) are not passed.
//! - **Bounded waits, never a 500**: no TCP connection within
//!   [`ProxyConfig::connect_timeout`] or connection refused → 502 ([`ProxyError::Connect`]);
//!   no response headers within [`ProxyConfig::response_header_timeout`] → 504
//!   ([`ProxyError::Timeout`]), counted from the last progress of the request body, so that a
//!   long upload is not cut off while it moves; an upstream that breaks the exchange → 502
//!   ([`ProxyError::Upstream`]); one that closes in the middle of a response body, or sends
//!   nothing more of it for [`ProxyConfig::response_idle_timeout`] → the client's response
//!   body errors (its connection is aborted: it does not hang, and does not take a short
//!   body for a complete one).
//! - **Pooled upstream connections**: HTTP/1.1 keep-alive, idle connections closed after
//!   [`ProxyConfig::pool_idle_timeout`]. `forward` allocates no client; the header work is
//!   done in place on the request's own map.
//!
//! # Use
//!
//! The gateway calls [`Proxy::forward`] from an axum fallback handler; the server in front
//! (`line-listener`) provides the peer address and upgrades:
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::body::Body;
//! use axum::extract::{ConnectInfo, Request, State};
//! use axum::response::{IntoResponse, Response};
//! use http::HeaderValue;
//! use line_proxy::{ForwardContext, Proxy};
//!
//! async fn fallback(
//!     State(proxy): State<Proxy>,
//!     ConnectInfo(peer): ConnectInfo<SocketAddr>,
//!     req: Request,
//! ) -> Response {
//!     let mut ctx = ForwardContext::new(peer, "https");
//!     ctx.strip_header_prefix = "x-linelogin-";
//!     ctx.strip_cookies = &["linelogin_session"];
//!     ctx.add.insert("x-linelogin-user", HeaderValue::from_static("U4af4980629"));
//!     match proxy.forward(req, ctx).await {
//!         Ok(response) => response.map(Body::new),
//!         Err(e) => (e.status(), e.to_string()).into_response(),
//!     }
//! }
//! ```
//!
//! # Why hyper-util's legacy client, not reqwest
//!
//! `hyper_util::client::legacy::Client` is hyper's own pooled client: keep-alive pooling with
//! an idle timeout, HTTP/1 upgrades on the upstream response (`hyper::upgrade::on`), bodies
//! streamed as `http_body::Body` frames both ways, and the headers sent as given. reqwest is
//! built on it but is a client for applications: no upgrade passthrough, it may decompress
//! and rewrite headers (`Accept-Encoding`, redirects), and its body types would mean one more
//! conversion per frame. The upstream is spoken to in HTTP/1.1 (no h2c) and over plain HTTP
//! only (the upstream is normally on the same host or network; an `https` upstream is
//! refused by [`Proxy::new`]).
// `Instant::now` here is only deadline bookkeeping for tokio's timers (idle and upstream
// timeouts), never a time anyone reads: the workspace's clock rule does not apply.
#![allow(clippy::disallowed_methods)]

mod body;
mod error;
mod headers;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{Either, Empty};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::time::Instant;

pub use body::ProxyBody;
pub use error::{BoxError, ProxyError};

use body::{Progress, RequestBody};

/// Where and how to proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The upstream's origin, `http://host:port`: no path (other than `/`), query or user
    /// info. Every request goes there.
    pub upstream: Uri,
    /// The longest wait for the TCP connection to the upstream (default 5 s): beyond, 502.
    pub connect_timeout: Duration,
    /// The longest wait for the upstream's response headers after the request body last
    /// moved (default 60 s): beyond, 504.
    pub response_header_timeout: Duration,
    /// The longest wait for the next piece of a response body once its headers have come
    /// (default 60 s, nginx's `proxy_read_timeout`); beyond, the response is aborted.
    /// `None`: no limit (responses that stay silent longer, such as event streams without a
    /// heartbeat). WebSocket tunnels are not timed.
    pub response_idle_timeout: Option<Duration>,
    /// How long an idle pooled upstream connection is kept (default 90 s).
    pub pool_idle_timeout: Duration,
    /// The largest request body passed upstream; `None`: no limit. Beyond it:
    /// [`ProxyError::BodyTooLarge`] (413).
    pub max_request_body_bytes: Option<u64>,
    /// The peers whose `X-Forwarded-*`/`Forwarded` headers are believed (default: none).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ProxyConfig {
    /// The default timeouts and no body limit, trusting no proxy, for `upstream`.
    pub fn new(upstream: Uri) -> Self {
        Self {
            upstream,
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(60),
            response_idle_timeout: Some(Duration::from_secs(60)),
            pool_idle_timeout: Duration::from_secs(90),
            max_request_body_bytes: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What the caller knows about one request that the request does not say.
#[derive(Debug, Clone)]
pub struct ForwardContext<'a> {
    /// The TCP peer (axum's `ConnectInfo`).
    pub peer: SocketAddr,
    /// `"http"` or `"https"`: the scheme the client used (the gateway's public URL).
    pub scheme: &'a str,
    /// Headers added after stripping, replacing any of the same name (the identity headers).
    pub add: HeaderMap,
    /// Every inbound header whose name starts with this (ASCII case ignored) is removed, e.g.
    /// `"x-linelogin-"`. Empty: none.
    pub strip_header_prefix: &'a str,
    /// Cookies with these names are removed from the `Cookie` header (the gateway's own
    /// session cookies); the others pass intact.
    pub strip_cookies: &'a [&'a str],
}

impl<'a> ForwardContext<'a> {
    /// A context that adds and strips nothing.
    pub fn new(peer: SocketAddr, scheme: &'a str) -> Self {
        Self {
            peer,
            scheme,
            add: HeaderMap::new(),
            strip_header_prefix: "",
            strip_cookies: &[],
        }
    }
}

/// The body type sent upstream: empty, or the client's (boxed: the client's body type is
/// the caller's, the pooled client's is one).
type UpstreamBody = Either<Empty<Bytes>, UnsyncBoxBody<Bytes, BoxError>>;

/// A reverse proxy to one upstream. Cheap to clone (the pooled client is shared).
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client<HttpConnector, UpstreamBody>,
    scheme: Scheme,
    authority: Authority,
    config: ProxyConfig,
}

impl Proxy {
    /// A proxy to `config.upstream`, with its connection pool (no connection is made yet).
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let upstream = &config.upstream;
        let scheme = match upstream.scheme() {
            Some(s) if *s == Scheme::HTTP => s.clone(),
            Some(s) if *s == Scheme::HTTPS => {
                return Err(ProxyError::Config(
                    "an https upstream is not supported: use http://host:port",
                ));
            }
            _ => return Err(ProxyError::Config("the upstream must be http://host:port")),
        };
        let authority = match upstream.authority() {
            Some(a) if !a.as_str().contains('@') && !a.host().is_empty() => a.clone(),
            Some(_) => {
                return Err(ProxyError::Config(
                    "the upstream must be http://host:port, without user info",
                ));
            }
            None => return Err(ProxyError::Config("the upstream has no host")),
        };
        if !matches!(upstream.path(), "" | "/") || upstream.query().is_some() {
            return Err(ProxyError::Config(
                "the upstream is an origin only (http://host:port), without a path or query",
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                scheme,
                authority,
                config,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.inner.config
    }

    /// Whether `peer` is a trusted proxy (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.inner
            .config
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer))
    }

    /// The client's address: `peer`, or, when `peer` is a trusted proxy, the right-most
    /// address of `X-Forwarded-For` that is not a trusted proxy (the left-most when all are).
    /// Entries that are not IP addresses end the walk.
    pub fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.is_trusted(client) {
            return client;
        }
        let values: Vec<&HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
        for value in values.iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for entry in text.rsplit(',') {
                match entry.trim().parse::<IpAddr>() {
                    Ok(ip) => client = ip.to_canonical(),
                    Err(_) => return client,
                }
                if !self.is_trusted(client) {
                    return client;
                }
            }
        }
        client
    }

    /// Forwards `req` to the upstream and streams the response back.
    ///
    /// The body may be of any type (axum's, hyper's `Incoming`, ...). The response body is
    /// the upstream's, streamed ([`ProxyBody`]). The errors say which status to answer with
    /// ([`ProxyError::status`]); see the crate documentation for what is guaranteed.
    pub async fn forward<B>(
        &self,
        req: Request<B>,
        ctx: ForwardContext<'_>,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let (mut parts, body) = req.into_parts();

        if parts.method == Method::CONNECT {
            return Err(ProxyError::BadRequest(
                "CONNECT is not supported: this is a reverse proxy",
            ));
        }
        let (path_and_query, target_host) = request_target(&parts.uri)?;
        let mut hosts = parts.headers.get_all(header::HOST).iter();
        let client_host = hosts.next().cloned();
        if hosts.next().is_some() {
            return Err(ProxyError::BadRequest("several Host headers"));
        }
        let host = target_host.or(client_host);

        if let Some(limit) = inner.config.max_request_body_bytes {
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit) || body.size_hint().lower() > limit {
                return Err(ProxyError::BodyTooLarge);
            }
        }

        // A WebSocket upgrade, when the server in front can hand the connection over.
        let client_upgrade = if headers::is_websocket_upgrade(&parts.headers) {
            parts.extensions.remove::<OnUpgrade>().map(|on| {
                let protocol = parts.headers.get(header::UPGRADE).cloned();
                (on, protocol)
            })
        } else {
            None
        };

        let headers = &mut parts.headers;
        headers::remove_hop_by_hop(headers, true);
        headers::remove_prefixed(headers, ctx.strip_header_prefix);
        headers::remove_cookies(headers, ctx.strip_cookies);
        match &host {
            Some(host) => {
                headers.insert(header::HOST, host.clone());
            }
            None => {
                headers.remove(header::HOST);
            }
        }
        let peer = ctx.peer.ip().to_canonical();
        headers::set_forwarding(
            headers,
            &headers::Forwarding {
                peer,
                trusted: self.is_trusted(peer),
                scheme: ctx.scheme,
                host: host.as_ref(),
            },
        );
        let mut last = None;
        for (name, value) in ctx.add {
            match name {
                Some(name) => {
                    headers.insert(name.clone(), value);
                    last = Some(name);
                }
                None => {
                    if let Some(name) = &last {
                        headers.append(name.clone(), value);
                    }
                }
            }
        }
        if let Some((_, protocol)) = &client_upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Some(protocol) = protocol {
                headers.insert(header::UPGRADE, protocol.clone());
            }
        }

        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(inner.scheme.clone());
        uri.authority = Some(inner.authority.clone());
        uri.path_and_query = Some(path_and_query);
        parts.uri = Uri::from_parts(uri)
            .map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded"))?;
        parts.version = Version::HTTP_11;
        parts.extensions = http::Extensions::new();

        let progress = (!body.is_end_stream()).then(|| Arc::new(Progress::new()));
        let upstream_body = match &progress {
            None => Either::Left(Empty::new()),
            Some(progress) => Either::Right(UnsyncBoxBody::new(RequestBody::new(
                body,
                inner.config.max_request_body_bytes,
                Arc::clone(progress),
            ))),
        };
        let request = Request::from_parts(parts, upstream_body);

        let timeout = inner.config.response_header_timeout;
        let started = Instant::now();
        let sent = inner.client.request(request);
        tokio::pin!(sent);
        let result = loop {
            let since = progress.as_ref().map_or(started, |p| p.last().max(started));
            match tokio::time::timeout_at(since + timeout, &mut sent).await {
                Ok(result) => break result,
                Err(_) => {
                    let moved = progress.as_ref().is_some_and(|p| p.last() > since);
                    if !moved {
                        return Err(ProxyError::Timeout);
                    }
                }
            }
        };
        let mut response = match result {
            Ok(response) => response,
            Err(e) => return Err(classify(e, progress.as_deref())),
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some((client_on, _)) = client_upgrade else {
                return Err(ProxyError::Upstream(
                    "the upstream switched protocols without being asked to".into(),
                ));
            };
            let upstream_on = hyper::upgrade::on(&mut response);
            let protocol = response.headers().get(header::UPGRADE).cloned();
            tokio::spawn(tunnel(client_on, upstream_on));
            headers::remove_hop_by_hop(response.headers_mut(), false);
            let headers = response.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Some(protocol) = protocol {
                headers.insert(header::UPGRADE, protocol);
            }
        } else {
            headers::remove_hop_by_hop(response.headers_mut(), false);
        }
        let idle = inner.config.response_idle_timeout;
        Ok(response.map(|body| ProxyBody::new(body, idle)))
    }
}

/// The path and query to send, and the host of an absolute-form target.
fn request_target(uri: &Uri) -> Result<(PathAndQuery, Option<HeaderValue>), ProxyError> {
    match (uri.scheme(), uri.authority()) {
        // origin-form: `/path?query`
        (None, None) => match uri.path_and_query() {
            Some(pq) if pq.path().starts_with('/') => Ok((pq.clone(), None)),
            _ => Err(ProxyError::BadRequest(
                "the request target is not a path (origin-form) or an absolute URL",
            )),
        },
        // absolute-form: `http://host/path?query`; only the path and query are used.
        (Some(scheme), Some(authority)) if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS => {
            let pq = match uri.path_and_query() {
                Some(pq) if pq.path().starts_with('/') => pq.clone(),
                Some(pq) if pq.path().is_empty() => {
                    let with_slash = format!("/{}", pq.as_str());
                    PathAndQuery::try_from(with_slash).map_err(|_| {
                        ProxyError::BadRequest("the request target cannot be forwarded")
                    })?
                }
                None => PathAndQuery::from_static("/"),
                Some(_) => {
                    return Err(ProxyError::BadRequest(
                        "the request target cannot be forwarded",
                    ));
                }
            };
            // The host without any user info.
            let host = authority.as_str().rsplit('@').next().unwrap_or_default();
            let host = HeaderValue::from_str(host)
                .map_err(|_| ProxyError::BadRequest("the request target has an invalid host"))?;
            Ok((pq, Some(host)))
        }
        _ => Err(ProxyError::BadRequest(
            "the request target is not a path (origin-form) or an http(s) URL (absolute-form)",
        )),
    }
}

/// Which [`ProxyError`] an error of the pooled client is.
fn classify(e: hyper_util::client::legacy::Error, progress: Option<&Progress>) -> ProxyError {
    if progress.is_some_and(Progress::too_large) {
        return ProxyError::BodyTooLarge;
    }
    if e.is_connect() {
        return ProxyError::Connect(Box::new(e));
    }
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        if cause.is::<error::ClientBodyError>() {
            return ProxyError::ClientBody(Box::new(e));
        }
        source = cause.source();
    }
    ProxyError::Upstream(Box::new(e))
}

/// Copies bytes both ways between the client's and the upstream's upgraded connections
/// until either side closes.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => (client, upstream),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "an upgraded connection could not be taken over");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "an upgraded connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(trusted: &[&str]) -> Proxy {
        let mut config = ProxyConfig::new(Uri::from_static("http://127.0.0.1:9"));
        config.trusted_proxies = trusted
            .iter()
            .map(|n| n.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        Proxy::new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn only_an_http_origin_is_an_upstream() {
        for bad in [
            "https://127.0.0.1:1",
            "http://u:p@127.0.0.1:1",
            "http://127.0.0.1:1/app",
            "http://127.0.0.1:1/?q",
            "/relative",
        ] {
            let config = ProxyConfig::new(Uri::from_static(bad));
            assert!(
                matches!(Proxy::new(config), Err(ProxyError::Config(_))),
                "{bad}"
            );
        }
        for good in [
            "http://127.0.0.1:1",
            "http://localhost:1/",
            "http://[::1]:80",
        ] {
            let config = ProxyConfig::new(Uri::from_static(good));
            assert!(Proxy::new(config).is_ok(), "{good}");
        }
    }

    #[tokio::test]
    async fn the_client_address_is_believed_only_through_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"),
        );
        let p = proxy(&["10.0.0.0/8"]);
        assert_eq!(p.client_ip(&headers, ip("10.0.0.3")), ip("203.0.113.9"));
        assert_eq!(
            p.client_ip(&headers, ip("::ffff:10.0.0.3")),
            ip("203.0.113.9")
        );
        assert_eq!(p.client_ip(&headers, ip("192.0.2.1")), ip("192.0.2.1"));
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("junk, 10.0.0.2"),
        );
        assert_eq!(p.client_ip(&headers, ip("10.0.0.3")), ip("10.0.0.2"));
    }

    #[test]
    fn targets_other_than_origin_and_absolute_form_are_refused() {
        let ok = |s: &'static str| {
            request_target(&Uri::from_static(s)).unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        let (pq, host) = ok("/a/../b/%2e%2E//c?x=%20&y");
        assert_eq!(pq.as_str(), "/a/../b/%2e%2E//c?x=%20&y");
        assert!(host.is_none());
        let (pq, host) = ok("http://user:pw@evil.example:81/x?y");
        assert_eq!(pq.as_str(), "/x?y");
        assert_eq!(host, Some(HeaderValue::from_static("evil.example:81")));
        let (pq, _) = ok("http://evil.example");
        assert_eq!(pq.as_str(), "/");
        for bad in ["*", "evil.example:443", "ftp://evil.example/"] {
            assert!(
                matches!(
                    request_target(&Uri::from_static(bad)),
                    Err(ProxyError::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }
}
