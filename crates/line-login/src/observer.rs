//! The observer hook: one [`ApiCall`] record per HTTP attempt, whatever its outcome.
//!
//! LINE's development guidelines recommend logging, for every LINE Login API call, the
//! `x-line-request-id`, the time, the method, the endpoint and the status code. The client
//! hands exactly that (plus the duration, the attempt number and, on request, redacted bodies)
//! to every [`ApiObserver`] registered on it, after each attempt and before the call returns.
//! The guideline log writer (`line-audit`) and metrics both plug in here.
//!
//! A call that the outbound policy refuses locally (rate limit exceeded, circuit open) is never
//! sent to LINE and produces no record; it comes back to the caller as an error.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What happened to one HTTP attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// LINE answered with a 2xx status.
    Success,
    /// LINE answered with a non-2xx status (see [`ApiCall::status`]).
    HttpError,
    /// The connection failed before a status arrived.
    Transport,
    /// The per-call deadline passed.
    Timeout,
    /// The response body exceeded the configured read bound.
    BodyTooLarge,
}

impl CallOutcome {
    /// A short stable name (`success`, `http_error`, `transport`, `timeout`, `body_too_large`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::HttpError => "http_error",
            CallOutcome::Transport => "transport",
            CallOutcome::Timeout => "timeout",
            CallOutcome::BodyTooLarge => "body_too_large",
        }
    }
}

/// One attempt of one LINE Login API call, as the guideline logs want it.
///
/// Bodies are present only when an observer asked for them ([`ApiObserver::wants_bodies`]),
/// and they are always redacted first: every secret value (client secret, code verifier,
/// authorization code, user and channel tokens, ID tokens, client assertions) is replaced by a
/// short hash (see [`crate::redact`]). No field of this record ever holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// `x-line-request-id` of the response, if there was a response carrying one.
    pub request_id: Option<String>,
    /// When the attempt was sent (wall clock).
    pub started_at: SystemTime,
    /// HTTP method.
    pub method: http::Method,
    /// Endpoint URL without query string or fragment (the verify call carries an access
    /// token in its query, which must never be recorded).
    pub endpoint: String,
    /// The status code, if a response arrived.
    pub status: Option<http::StatusCode>,
    /// Time from sending to the end of the body read (or the failure).
    pub duration: Duration,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// What happened.
    pub outcome: CallOutcome,
    /// The redacted request body, when bodies were asked for and the request had one.
    pub request_body: Option<String>,
    /// The redacted response body, when bodies were asked for and one was read.
    pub response_body: Option<String>,
}

/// Receives an [`ApiCall`] after every attempt.
///
/// Called synchronously on the task making the call, before the call returns to its caller,
/// so a durable log record exists before the request that produced it completes. Implementations
/// should be quick (an append to a file, a counter increment); they may apply backpressure by
/// blocking briefly, but must not panic.
pub trait ApiObserver: Send + Sync {
    /// Record one attempt.
    fn on_api_call(&self, call: &ApiCall);

    /// Whether this observer wants the (redacted) request and response bodies.
    fn wants_bodies(&self) -> bool {
        false
    }
}

impl<F> ApiObserver for F
where
    F: Fn(&ApiCall) + Send + Sync,
{
    fn on_api_call(&self, call: &ApiCall) {
        self(call)
    }
}

/// A set of observers that all receive every record.
#[derive(Clone, Default)]
pub struct Observers {
    list: Vec<Arc<dyn ApiObserver>>,
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.list.len())
            .finish()
    }
}

impl Observers {
    /// Adds an observer.
    pub fn push(&mut self, observer: Arc<dyn ApiObserver>) {
        self.list.push(observer);
    }

    /// Whether any observer wants bodies.
    pub fn wants_bodies(&self) -> bool {
        self.list.iter().any(|o| o.wants_bodies())
    }

    /// Whether there are no observers.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sends one record to every observer.
    pub fn emit(&self, call: &ApiCall) {
        for o in &self.list {
            o.on_api_call(call);
        }
    }
}
