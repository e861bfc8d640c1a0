//! Request parsing that cannot panic: form and query parameters, bodies, bearer tokens.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;

use crate::error::ApiError;

/// Decoded `application/x-www-form-urlencoded` (or query) parameters.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses form-encoded bytes (invalid UTF-8 is replaced, never a panic).
    pub fn parse(bytes: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` appears more than once.
    pub fn repeated(&self, name: &str) -> bool {
        self.0.iter().filter(|(k, _)| k == name).count() > 1
    }
}

/// The body bytes, or 413 / a 400 in the endpoint's shape.
pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    bad: impl FnOnce() -> ApiError,
) -> Result<Bytes, ApiError> {
    match body {
        Ok(b) => Ok(b),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
        Err(_) => Err(bad()),
    }
}

/// Requires a form content type and parses the form (OAuth-shaped errors).
pub(crate) fn form(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, ApiError> {
    let bytes = body_bytes(body, || {
        ApiError::invalid_request("The request body could not be read")
    })?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_form = ct.split(';').next().is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Err(ApiError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    Ok(Params::parse(&bytes))
}

/// The bearer token of the `Authorization` header, if well formed.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The message LINE's platform answers when the Authorization header is missing.
pub(crate) const AUTH_HEADER_REQUIRED: &str =
    "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'";
