//! The HTTP transport: the client builds [`HttpRequest`] values and a [`HttpTransport`]
//! sends them.
//!
//! [`ReqwestTransport`] (feature `reqwest`, on by default) is the production transport: one
//! shared connection pool, redirects off (a 307 from a token endpoint would resend the client
//! secret elsewhere), a deadline per attempt, and bounded body reads. Any other transport —
//! a test double, a different HTTP stack — implements the trait.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, StatusCode};
use url::Url;

/// A request, ready to send.
#[derive(Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Full URL (it may carry a token in its query: never log it).
    pub url: Url,
    /// Headers (may include `Authorization`: never log them).
    pub headers: HeaderMap,
    /// Body (may carry secrets: never log it unredacted).
    pub body: Bytes,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field(
                "endpoint",
                &format_args!(
                    "{}{}",
                    self.url.origin().ascii_serialization(),
                    self.url.path()
                ),
            )
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A response, with its body fully read (within the bound).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// A transport failure. Messages never contain the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The connection could not be established.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The body exceeded the bound.
    #[error("response body over {0} bytes")]
    BodyTooLarge(usize),
    /// Any other I/O or protocol failure.
    #[error("{0}")]
    Io(String),
    /// The request could not be built.
    #[error("invalid request: {0}")]
    Request(String),
}

/// Sends requests. Implementations must not follow redirects, must give up after `deadline`
/// (connection, headers and body together), and must stop reading a body past `max_body`.
pub trait HttpTransport: Send + Sync + fmt::Debug {
    /// Sends one request.
    fn execute(
        &self,
        request: HttpRequest,
        deadline: Duration,
        max_body: usize,
    ) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}

/// A transport backed by a closure, for tests and adapters.
pub struct FnTransport<F>(pub F);

impl<F> fmt::Debug for FnTransport<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTransport")
    }
}

impl<F> HttpTransport for FnTransport<F>
where
    F: Fn(HttpRequest) -> BoxFuture<'static, Result<HttpResponse, TransportError>> + Send + Sync,
{
    fn execute(
        &self,
        request: HttpRequest,
        _deadline: Duration,
        _max_body: usize,
    ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        (self.0)(request)
    }
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_transport::ReqwestTransport;

#[cfg(feature = "reqwest")]
mod reqwest_transport {
    use super::*;

    /// The production transport: one `reqwest::Client` (rustls, connection pool, no redirects).
    #[derive(Debug, Clone)]
    pub struct ReqwestTransport {
        client: reqwest::Client,
    }

    impl ReqwestTransport {
        /// A transport with a connect timeout of 5 s and redirects off.
        pub fn new() -> Result<Self, TransportError> {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
                .user_agent(concat!("linelogin/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| TransportError::Request(e.without_url().to_string()))?;
            Ok(Self { client })
        }

        /// Wraps an existing client. It must have redirects switched off.
        pub fn from_client(client: reqwest::Client) -> Self {
            Self { client }
        }

        async fn send(
            &self,
            request: HttpRequest,
            max_body: usize,
        ) -> Result<HttpResponse, TransportError> {
            let mut response = self
                .client
                .request(request.method, request.url)
                .headers(request.headers)
                .body(request.body)
                .send()
                .await
                .map_err(classify)?;
            let status = response.status();
            let headers = response.headers().clone();
            if response
                .content_length()
                .is_some_and(|len| len > max_body as u64)
            {
                return Err(TransportError::BodyTooLarge(max_body));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > max_body {
                    return Err(TransportError::BodyTooLarge(max_body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse {
                status,
                headers,
                body: Bytes::from(body),
            })
        }
    }

    fn classify(err: reqwest::Error) -> TransportError {
        let err = err.without_url();
        if err.is_timeout() {
            TransportError::Timeout
        } else if err.is_connect() {
            TransportError::Connect(err.to_string())
        } else if err.is_builder() {
            TransportError::Request(err.to_string())
        } else {
            TransportError::Io(err.to_string())
        }
    }

    impl HttpTransport for ReqwestTransport {
        fn execute(
            &self,
            request: HttpRequest,
            deadline: Duration,
            max_body: usize,
        ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            Box::pin(async move {
                match tokio::time::timeout(deadline, self.send(request, max_body)).await {
                    Ok(result) => result,
                    Err(_) => Err(TransportError::Timeout),
                }
            })
        }
    }
}
