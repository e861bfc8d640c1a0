//! The client's error type.
//!
//! One enum, [`Error`], for every API call, with one variant per failure kind. No variant's
//! `Display` (or `Debug`) contains a secret, a token or a URL with a query: LINE's error
//! descriptions are shown only when they are on the list of strings LINE documents, and
//! transport errors never carry the request URL.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::endpoint::Endpoint;
use crate::id_token::IdTokenError;
use crate::wire::{MessageErrorBody, OAuthErrorBody};

/// The body of a non-2xx answer from LINE, in whichever shape it came.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineErrorBody {
    /// `{"error", "error_description"}` (OAuth-style endpoints).
    OAuth(OAuthErrorBody),
    /// `{"message", "details"}` (platform-style endpoints).
    Message(MessageErrorBody),
    /// JSON of another shape (not kept: it could echo secrets).
    OtherJson,
    /// Not JSON at all (e.g. an HTML page from an edge proxy); only its size is kept.
    NotJson {
        /// Body length in bytes.
        len: usize,
    },
    /// No body.
    Empty,
}

impl LineErrorBody {
    /// Classifies a raw error body. Tries `{error, error_description}` first, then `{message}`.
    pub fn parse(body: &[u8]) -> Self {
        if body.iter().all(u8::is_ascii_whitespace) {
            return LineErrorBody::Empty;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return LineErrorBody::NotJson { len: body.len() };
        };
        if let Ok(b) = serde_json::from_value::<OAuthErrorBody>(value.clone()) {
            return LineErrorBody::OAuth(b);
        }
        if let Ok(b) = serde_json::from_value::<MessageErrorBody>(value) {
            return LineErrorBody::Message(b);
        }
        LineErrorBody::OtherJson
    }

    /// The OAuth error code (`invalid_grant`, …), if the body has that shape.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            LineErrorBody::OAuth(b) => Some(&b.error),
            _ => None,
        }
    }

    /// The human-readable text: `error_description` or `message`.
    pub fn description(&self) -> Option<&str> {
        match self {
            LineErrorBody::OAuth(b) => b.error_description.as_deref(),
            LineErrorBody::Message(b) => Some(&b.message),
            _ => None,
        }
    }
}

/// LINE's documented error texts. Only these are ever shown in an error's `Display`;
/// any other text could echo a request value and is withheld.
const KNOWN_TEXTS: &[&str] = &[
    "invalid_request",
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid refresh token",
    "invalid refresh_token",
    "redirect_uri does not match",
    "The access token not JWS",
    "The access token expired",
    "The access token revoked",
    "The access token malformed",
    "access token expired",
    "Invalid IdToken.",
    "Invalid IdToken Issuer.",
    "IdToken expired.",
    "Invalid IdToken Audience.",
    "Invalid IdToken Nonce.",
    "Invalid IdToken Subject Identifier.",
    "invalid token",
    "Invalid 'client_credentials'.",
    "The maximum number of access tokens has already been issued",
    "iss and clientId of key do not match",
    "Cannot find channel key that satisfies the conditions",
    "Invalid exp",
    "invalid client_id",
    "invalid client_secret",
    "access_token invalid",
    "access_token in invalid format",
    "The API rate limit has been exceeded. Try again later.",
    "Not allowed to use the API",
];

fn shown(text: &str) -> &str {
    if KNOWN_TEXTS.contains(&text) {
        text
    } else {
        "(text withheld)"
    }
}

impl fmt::Display for LineErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineErrorBody::OAuth(b) => {
                write!(f, "{}", shown(&b.error))?;
                if let Some(d) = &b.error_description {
                    write!(f, ": {}", shown(d))?;
                }
                Ok(())
            }
            LineErrorBody::Message(b) => write!(f, "{}", shown(&b.message)),
            LineErrorBody::OtherJson => f.write_str("an unrecognised JSON error body"),
            LineErrorBody::NotJson { len } => write!(f, "a non-JSON body of {len} bytes"),
            LineErrorBody::Empty => f.write_str("an empty body"),
        }
    }
}

/// A non-2xx answer from LINE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The endpoint called.
    pub endpoint: Endpoint,
    /// The status.
    pub status: StatusCode,
    /// `x-line-request-id`, if present.
    pub request_id: Option<String>,
    /// The parsed body.
    pub body: LineErrorBody,
    /// `Retry-After`, if present (seconds or HTTP date).
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LINE answered {} to {}: {}",
            self.status.as_u16(),
            self.endpoint,
            self.body
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " (x-line-request-id {id})")?;
        }
        Ok(())
    }
}

/// How a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be established (the request was not sent).
    Connect,
    /// The connection failed after the request may have been sent.
    Io,
    /// The request could not be built (e.g. an invalid header value).
    Request,
}

/// Everything that can go wrong in a LINE Login API call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LINE answered with a non-2xx status (after any retries the policy allowed).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The call would have waited longer than allowed for the process-wide outbound rate
    /// limit, so it failed fast without being sent.
    #[error("outbound rate limit reached for {endpoint}: the call would wait {wait:?}")]
    RateLimited {
        /// The endpoint.
        endpoint: Endpoint,
        /// How long it would have had to wait.
        wait: Duration,
    },
    /// The circuit breaker is open after repeated failures; the call was not sent.
    #[error("LINE is unavailable (circuit open) for {endpoint}; retry in {retry_after:?}")]
    CircuitOpen {
        /// The endpoint.
        endpoint: Endpoint,
        /// When the breaker will let a probe through.
        retry_after: Duration,
    },
    /// LINE answered an earlier call `429` with `Retry-After`, and the channel-wide cool-down
    /// (clamped to the policy's `retry_after_ceiling`) has not run out; the call was not sent.
    #[error("LINE asked to slow down; {endpoint} is held back for {retry_after:?}")]
    CoolingDown {
        /// The endpoint.
        endpoint: Endpoint,
        /// How long the cool-down still runs.
        retry_after: Duration,
    },
    /// The per-attempt or per-call deadline passed.
    #[error("{endpoint} timed out")]
    Timeout {
        /// The endpoint.
        endpoint: Endpoint,
    },
    /// The connection failed.
    #[error("{endpoint} failed: {message}")]
    Transport {
        /// The endpoint.
        endpoint: Endpoint,
        /// What kind of failure.
        kind: TransportErrorKind,
        /// A description without URL.
        message: String,
    },
    /// The response body exceeded the read bound.
    #[error("{endpoint} answered with a body over {limit} bytes")]
    BodyTooLarge {
        /// The endpoint.
        endpoint: Endpoint,
        /// The bound.
        limit: usize,
    },
    /// A 2xx answer whose body is not what LINE documents.
    #[error("{endpoint} answered {status} with an unexpected body: {reason}")]
    Decode {
        /// The endpoint.
        endpoint: Endpoint,
        /// The status.
        status: u16,
        /// `x-line-request-id`, if present.
        request_id: Option<String>,
        /// What was wrong (never the body itself).
        reason: String,
    },
    /// An ID token failed verification.
    #[error("ID token rejected: {0}")]
    IdToken(#[from] IdTokenError),
    /// The client is misconfigured (e.g. a base URL that is not http(s)). The cause is the
    /// underlying error where there is one (kept as the `source`), else a fixed message.
    #[error("configuration error: {0}")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    pub(crate) fn api(err: ApiError) -> Self {
        Error::Api(Box::new(err))
    }

    /// The HTTP status LINE answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } => StatusCode::from_u16(*status).ok(),
            _ => None,
        }
    }

    /// The `x-line-request-id`, if a response carried one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            Error::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The error body, if LINE answered with a non-2xx status.
    pub fn line_body(&self) -> Option<&LineErrorBody> {
        match self {
            Error::Api(e) => Some(&e.body),
            _ => None,
        }
    }

    /// Whether LINE (or the path to it) is unavailable right now — 429, 5xx, timeout,
    /// connection failure, open breaker or local rate limit. A web app answers these with
    /// `503` and [`retry_after`](Self::retry_after).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Api(e) => {
                e.status == StatusCode::TOO_MANY_REQUESTS || e.status.is_server_error()
            }
            Error::RateLimited { .. }
            | Error::CircuitOpen { .. }
            | Error::CoolingDown { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// A hint for `Retry-After` when [`is_unavailable`](Self::is_unavailable) holds.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(e) if self.is_unavailable() => {
                Some(e.retry_after.unwrap_or(Duration::from_secs(5)))
            }
            Error::RateLimited { wait, .. } => Some(*wait),
            Error::CircuitOpen { retry_after, .. } | Error::CoolingDown { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::Timeout { .. } | Error::Transport { .. } => Some(Duration::from_secs(5)),
            _ => None,
        }
    }

    /// Whether the outbound policy refused the call locally — rate limit, open breaker or
    /// cool-down — so that **nothing of the call was sent to LINE** (a call that sent an
    /// attempt and was then refused a retry returns the attempt's error instead). Such a
    /// refusal says nothing about the request itself: try again after
    /// [`retry_after`](Self::retry_after); it should not count as an attempt of a job.
    pub fn is_local_refusal(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::CircuitOpen { .. } | Error::CoolingDown { .. }
        )
    }

    /// Whether LINE said the grant is invalid (`invalid_grant`): an expired or used code, a
    /// dead refresh token. The user must log in again.
    pub fn is_invalid_grant(&self) -> bool {
        self.line_body().and_then(LineErrorBody::error_code) == Some("invalid_grant")
    }

    /// Whether LINE rejected a user access token as invalid, expired or revoked (401 from the
    /// resource endpoints, or 400 `invalid_request` with an access-token description).
    pub fn is_invalid_token(&self) -> bool {
        match self {
            Error::Api(e) => {
                e.status == StatusCode::UNAUTHORIZED
                    || e.body
                        .description()
                        .is_some_and(|d| d.starts_with("The access token") || d == "invalid token")
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_and_non_json() {
        assert_eq!(
            LineErrorBody::parse(
                br#"{"error":"invalid_grant","error_description":"invalid refresh token"}"#
            )
            .error_code(),
            Some("invalid_grant")
        );
        assert_eq!(
            LineErrorBody::parse(br#"{"error":"invalid_request"}"#).description(),
            None
        );
        assert_eq!(
            LineErrorBody::parse(
                br#"{"message":"invalid token","details":[{"message":"m","property":"p"}]}"#
            )
            .description(),
            Some("invalid token")
        );
        assert_eq!(
            LineErrorBody::parse(b"<html>502</html>"),
            LineErrorBody::NotJson { len: 16 }
        );
        assert_eq!(LineErrorBody::parse(b""), LineErrorBody::Empty);
        assert_eq!(LineErrorBody::parse(b"[1]"), LineErrorBody::OtherJson);
    }

    #[test]
    fn unknown_descriptions_are_withheld() {
        let body = LineErrorBody::parse(
            br#"{"error":"invalid_request","error_description":"bad client_secret=CANARY_S"}"#,
        );
        let shown = body.to_string();
        assert!(!shown.contains("CANARY"));
        assert!(shown.contains("invalid_request"));
    }
}
