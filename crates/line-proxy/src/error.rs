//! The one error surface of the proxy.

use std::fmt;

use http::StatusCode;

/// An error any body may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request could not be forwarded, or a response body broke. [`ProxyError::status`] is
/// the status to answer with; no variant carries a header or body of the request, so the
/// message is safe to log and to show.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream could not be connected to (refused, unreachable, or no answer to the
    /// connect within [`crate::ProxyConfig::connect_timeout`]): 502.
    #[error("cannot connect to the upstream: {}", Chain(&**.0))]
    Connect(BoxError),
    /// The upstream sent no response headers within
    /// [`crate::ProxyConfig::response_header_timeout`] of the last progress of the exchange:
    /// 504.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The request body is larger than [`crate::ProxyConfig::max_request_body_bytes`]: 413.
    #[error("the request body is larger than the configured limit")]
    BodyTooLarge,
    /// The upstream broke the exchange (closed the connection, sent an invalid response, or
    /// a `101` that was not asked for): 502. Also the error of a response body the upstream
    /// broke off.
    #[error("the upstream broke the exchange: {}", Chain(&**.0))]
    Upstream(BoxError),
    /// The request cannot be forwarded as it is (not origin-form or absolute-form, CONNECT,
    /// several `Host` headers): 400.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The client's own request body failed (it disconnected, or its server's body timeout
    /// fired) before the upstream answered: 400.
    #[error("the request body could not be read: {}", Chain(&**.0))]
    ClientBody(BoxError),
    /// [`crate::Proxy::new`] was given a configuration it cannot use. Never returned by
    /// [`crate::Proxy::forward`].
    #[error("invalid proxy configuration: {0}")]
    Config(&'static str),
}

impl ProxyError {
    /// The status to answer the client with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Connect(_) | Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) | Self::ClientBody(_) => StatusCode::BAD_REQUEST,
            Self::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error and its sources, `: `-separated, skipping a source whose text its parent already
/// shows (hyper's errors repeat their cause).
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            let text = e.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            next = e.source();
        }
        Ok(())
    }
}

/// Marks an error of the client's request body, so that it is told apart from the upstream's.
#[derive(Debug)]
pub(crate) struct ClientBodyError(pub(crate) BoxError);

impl fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The request body went past the configured limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than the configured limit")]
pub(crate) struct TooLarge;
