//! One API call: policy, attempts, observation, classification.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;
use url::Url;

use super::LineClient;
use crate::endpoint::{Endpoint, RetryClass};
use crate::error::{ApiError, Error, LineErrorBody, TransportErrorKind};
use crate::http::{HttpRequest, HttpResponse, TransportError};
use crate::observer::{ApiCall, CallOutcome};
use crate::policy::{LimitReason, backoff_delay};
use crate::redact;

/// The response header carrying LINE's request ID.
pub const REQUEST_ID_HEADER: &str = "x-line-request-id";

/// How the request body is encoded (for redaction in observer records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    None,
    Form,
    Json,
}

/// A prepared call.
pub(crate) struct Call {
    pub endpoint: Endpoint,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub body_kind: BodyKind,
}

impl Call {
    pub fn new(endpoint: Endpoint, url: Url) -> Self {
        Self {
            endpoint,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            body_kind: BodyKind::None,
        }
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self.body = Bytes::from(body);
        self.body_kind = BodyKind::Form;
        self
    }

    pub fn json(mut self, body: Vec<u8>) -> Self {
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.body = Bytes::from(body);
        self.body_kind = BodyKind::Json;
        self
    }

    pub fn bearer(mut self, token: &str) -> Result<Self, Error> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::Transport {
                endpoint: self.endpoint,
                kind: TransportErrorKind::Request,
                message: "the token holds characters not allowed in a header".into(),
            })?;
        value.set_sensitive(true);
        self.headers.insert(header::AUTHORIZATION, value);
        Ok(self)
    }
}

enum Attempt {
    Done(Result<HttpResponse, Error>),
    Retry {
        error: Error,
        retry_after: Option<Duration>,
        sent_maybe: bool,
    },
}

impl LineClient {
    /// Sends a call under the outbound policy and returns its 2xx response.
    pub(crate) async fn execute(&self, call: Call) -> Result<HttpResponse, Error> {
        let policy = &self.inner.policy;
        let config = policy.config();
        let clock = policy.clock().clone();
        let endpoint = call.endpoint;
        let started = clock.monotonic();
        let request = HttpRequest {
            method: endpoint.method(),
            url: call.url,
            headers: call.headers,
            body: call.body,
        };
        let request_body_for_log =
            (self.inner.wants_bodies && !request.body.is_empty()).then(|| match call.body_kind {
                BodyKind::Form => redact::form_body(&String::from_utf8_lossy(&request.body)),
                BodyKind::Json | BodyKind::None => redact::json_body(&request.body),
            });
        let endpoint_for_log = strip_query(&request.url);

        policy.budget().deposit();
        let breaker = policy.breaker_for(endpoint.class());
        let mut attempt: u32 = 1;
        // The error of the last attempt that was sent: a retry the policy then refuses
        // returns it, so a local refusal always means "nothing of this call was sent".
        let mut last_error: Option<Error> = None;
        loop {
            let elapsed = clock.monotonic().saturating_sub(started);
            let Some(mut remaining) = config
                .call_deadline
                .checked_sub(elapsed)
                .filter(|d| !d.is_zero())
            else {
                return Err(Error::Timeout { endpoint });
            };
            if let Some(wait) = policy.cool_down().remaining() {
                if wait > config.max_wait.min(remaining) {
                    policy.record_limited(LimitReason::Cooldown);
                    return Err(last_error.unwrap_or(Error::CoolingDown {
                        endpoint,
                        retry_after: wait,
                    }));
                }
                clock.sleep(wait).await;
                remaining = remaining.saturating_sub(wait);
                // Another 429 may have extended it meanwhile: then LINE still says "slow down".
                if let Some(wait) = policy.cool_down().remaining() {
                    policy.record_limited(LimitReason::Cooldown);
                    return Err(last_error.unwrap_or(Error::CoolingDown {
                        endpoint,
                        retry_after: wait,
                    }));
                }
            }
            let admission = match breaker.admit() {
                Ok(admission) => admission,
                Err(retry_after) => {
                    policy.record_limited(LimitReason::Breaker);
                    return Err(last_error.unwrap_or(Error::CircuitOpen {
                        endpoint,
                        retry_after,
                    }));
                }
            };
            if let Err(wait) = policy
                .limiter()
                .acquire(config.max_wait.min(remaining))
                .await
            {
                if admission == crate::policy::Admission::Probe {
                    breaker.release_probe();
                }
                policy.record_limited(LimitReason::RateLimit);
                return Err(last_error.unwrap_or(Error::RateLimited { endpoint, wait }));
            }

            let sent_at = clock.now();
            let t0 = clock.monotonic();
            let deadline = config.attempt_timeout.min(remaining);
            let result = self
                .inner
                .transport
                .execute(request.clone(), deadline, config.max_response_body)
                .await;
            let duration = clock.monotonic().saturating_sub(t0);

            if !self.inner.observers.is_empty() {
                let record = ApiCall {
                    request_id: result.as_ref().ok().and_then(request_id),
                    started_at: sent_at,
                    method: request.method.clone(),
                    endpoint: endpoint_for_log.clone(),
                    status: result.as_ref().ok().map(|r| r.status),
                    duration,
                    attempt,
                    outcome: outcome_of(&result),
                    request_body: request_body_for_log.clone(),
                    response_body: match (&result, self.inner.wants_bodies) {
                        (Ok(r), true) if !r.body.is_empty() => Some(redact::any_body(&r.body)),
                        _ => None,
                    },
                };
                self.inner.observers.emit(&record);
            }

            let step = self.classify(endpoint, result, sent_at);
            let (error, retry_after, sent_maybe) = match step {
                Attempt::Done(r) => return r,
                Attempt::Retry {
                    error,
                    retry_after,
                    sent_maybe,
                } => (error, retry_after, sent_maybe),
            };
            let may_repeat = endpoint.retry_class() == RetryClass::Idempotent || !sent_maybe;
            if !may_repeat || attempt >= config.max_attempts {
                return Err(error);
            }
            if retry_after.is_some_and(|ra| ra > config.max_retry_after) {
                return Err(error);
            }
            let delay = backoff_delay(
                attempt,
                config.backoff_base,
                config.backoff_max,
                retry_after,
                &mut rand::rng(),
            );
            let elapsed = clock.monotonic().saturating_sub(started);
            if elapsed + delay >= config.call_deadline {
                return Err(error);
            }
            if !policy.budget().try_withdraw() {
                return Err(error);
            }
            last_error = Some(error);
            tracing::debug!(
                endpoint = endpoint.name(),
                attempt,
                ?delay,
                "retrying LINE call"
            );
            clock.sleep(delay).await;
            attempt += 1;
        }
    }

    fn classify(
        &self,
        endpoint: Endpoint,
        result: Result<HttpResponse, TransportError>,
        sent_at: std::time::SystemTime,
    ) -> Attempt {
        let policy = &self.inner.policy;
        let breaker = policy.breaker_for(endpoint.class());
        match result {
            Ok(resp) if resp.status.is_success() => {
                breaker.record_success();
                Attempt::Done(Ok(resp))
            }
            Ok(resp) => {
                let retry_after = parse_retry_after(&resp.headers, sent_at)
                    .map(|ra| policy.clamp_retry_after(endpoint, ra));
                let error = Error::api(ApiError {
                    endpoint,
                    status: resp.status,
                    request_id: request_id(&resp),
                    body: LineErrorBody::parse(&resp.body),
                    retry_after,
                });
                if resp.status == StatusCode::TOO_MANY_REQUESTS && retry_after.is_some() {
                    // A channel-wide "slow down", not a broken endpoint: every class cools
                    // down; the breaker neither counts it nor keeps a probe slot for it.
                    policy.cool_down().start(retry_after.unwrap_or_default());
                    breaker.release_probe();
                    Attempt::Retry {
                        error,
                        retry_after,
                        sent_maybe: true,
                    }
                } else if resp.status == StatusCode::TOO_MANY_REQUESTS
                    || resp.status.is_server_error()
                {
                    breaker.record_failure(retry_after);
                    Attempt::Retry {
                        error,
                        retry_after,
                        sent_maybe: true,
                    }
                } else {
                    breaker.record_success();
                    Attempt::Done(Err(error))
                }
            }
            Err(TransportError::Timeout) => {
                breaker.record_failure(None);
                Attempt::Retry {
                    error: Error::Timeout { endpoint },
                    retry_after: None,
                    sent_maybe: true,
                }
            }
            Err(TransportError::Connect(message)) => {
                breaker.record_failure(None);
                Attempt::Retry {
                    error: Error::Transport {
                        endpoint,
                        kind: TransportErrorKind::Connect,
                        message,
                    },
                    retry_after: None,
                    sent_maybe: false,
                }
            }
            Err(TransportError::Io(message)) => {
                breaker.record_failure(None);
                Attempt::Retry {
                    error: Error::Transport {
                        endpoint,
                        kind: TransportErrorKind::Io,
                        message,
                    },
                    retry_after: None,
                    sent_maybe: true,
                }
            }
            Err(TransportError::BodyTooLarge(limit)) => {
                // LINE answered: it is up, whatever the body.
                breaker.record_success();
                Attempt::Done(Err(Error::BodyTooLarge { endpoint, limit }))
            }
            Err(TransportError::Request(message)) => {
                // Nothing was sent: says nothing about LINE (frees a half-open probe slot).
                breaker.release_probe();
                Attempt::Done(Err(Error::Transport {
                    endpoint,
                    kind: TransportErrorKind::Request,
                    message,
                }))
            }
        }
    }
}

fn outcome_of(result: &Result<HttpResponse, TransportError>) -> CallOutcome {
    match result {
        Ok(r) if r.status.is_success() => CallOutcome::Success,
        Ok(_) => CallOutcome::HttpError,
        Err(TransportError::Timeout) => CallOutcome::Timeout,
        Err(TransportError::BodyTooLarge(_)) => CallOutcome::BodyTooLarge,
        Err(_) => CallOutcome::Transport,
    }
}

/// `x-line-request-id`, if present and printable.
pub(crate) fn request_id(resp: &HttpResponse) -> Option<String> {
    resp.headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_owned)
}

fn strip_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// `Retry-After` as delta-seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(
    headers: &HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(24 * 3600)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Decodes a 2xx JSON body.
pub(crate) fn decode<T: DeserializeOwned>(
    endpoint: Endpoint,
    resp: &HttpResponse,
) -> Result<T, Error> {
    serde_json::from_slice(&resp.body).map_err(|e| Error::Decode {
        endpoint,
        status: resp.status.as_u16(),
        request_id: request_id(resp),
        // The category and position only: serde messages can quote input values.
        reason: format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}

/// Checks that a body LINE documents as empty is empty or `{}` (some mocks send `{}`).
pub(crate) fn expect_empty(endpoint: Endpoint, resp: &HttpResponse) -> Result<(), Error> {
    let trimmed: Vec<u8> = resp
        .body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if trimmed.is_empty() || trimmed == b"{}" {
        Ok(())
    } else {
        // Tolerate any JSON object: forward compatibility.
        decode::<serde_json::Map<String, serde_json::Value>>(endpoint, resp).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_both_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn query_is_stripped_for_logs() {
        let u = Url::parse("https://api.line.me/oauth2/v2.1/verify?access_token=SECRET").unwrap();
        assert_eq!(strip_query(&u), "https://api.line.me/oauth2/v2.1/verify");
    }
}
