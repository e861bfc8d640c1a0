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

/// A JSON body of the `{"message"}`-shaped endpoints (the admin API, deauthorize): 413, a 400
/// saying it could not be read, or `bad_json`'s error when it does not parse as `T`.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    bad_json: impl FnOnce(serde_json::Error) -> ApiError,
) -> Result<T, ApiError> {
    let bytes = body_bytes(body, || {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            "The request body could not be read",
        )
    })?;
    serde_json::from_slice(&bytes).map_err(bad_json)
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

/// The client credentials of a request, from exactly one place: `Authorization: Basic`
/// (`client_secret_basic`, the default of openid-client, Auth.js and Authlib) or the form body
/// (`client_secret_post`, LINE's documented way).
#[derive(Debug)]
pub(crate) struct ClientCredentials {
    /// The channel ID (`client_id`).
    pub id: String,
    /// The channel secret, if one was sent (an empty one counts as none, as in the body).
    pub secret: Option<String>,
}

/// The description of every malformed-Basic answer (never echoes the header: it holds a secret).
pub(crate) const BAD_BASIC: &str = "The Authorization header is not valid HTTP Basic credentials.";

/// The description when a client authenticates in the header and in the body at once.
pub(crate) const TWO_CLIENT_AUTH_METHODS: &str = "Client credentials must be sent either in the \
Authorization header or in the request body, not both.";

/// Decodes one `application/x-www-form-urlencoded` component of Basic credentials
/// (RFC 6749 §2.3.1 encodes the id and the secret before joining them with `:`): `+` is a
/// space, `%XX` a byte; the result must be UTF-8.
fn form_component(raw: &str) -> Option<String> {
    // `form_urlencoded` splits on `&` and `=`; inside one component they are data.
    let escaped = raw.replace('&', "%26").replace('=', "%3D");
    let decoded = url::form_urlencoded::parse(escaped.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default();
    // The decoder replaces invalid UTF-8 with U+FFFD; `raw` (UTF-8 already) had none, so
    // one in the result means percent-encoded bytes that are not UTF-8.
    (!decoded.contains('\u{FFFD}') || raw.contains('\u{FFFD}')).then_some(decoded)
}

/// Parses `Basic <base64>` into `(id, secret)`; `Ok(None)` without an `Authorization` header
/// or with another scheme (e.g. `Bearer`), which client authentication does not look at.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    /// Standard base64, with or without padding (clients differ).
    const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bad = || ApiError::invalid_request(BAD_BASIC);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| bad())?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bytes = STANDARD_ANY_PAD.decode(rest.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let id = form_component(id).ok_or_else(bad)?;
    let secret = form_component(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

/// The client credentials of a request: `client_secret_basic` or `client_secret_post`, the
/// one place every client-authenticating endpoint reads them (token, revoke, and the channel
/// access token endpoints). `Ok(None)` when neither the header nor the body names a client.
///
/// - A malformed `Basic` header (not base64, no `:`, not UTF-8, empty id) is a 400
///   `invalid_request`, whatever the body holds.
/// - Basic plus a `client_secret` in the body is a 400 `invalid_request` (RFC 6749 §2.3: a
///   client "MUST NOT use more than one authentication method in each request"); Basic plus
///   the same `client_id` in the body is fine (RFC 6749 §4.1.3 lets clients send it), a
///   different one is a 400 `invalid_request`.
///
/// Checking the secret is the caller's business: endpoints differ in whether it is required.
pub(crate) fn client_credentials_opt(
    headers: &HeaderMap,
    p: &Params,
) -> Result<Option<ClientCredentials>, ApiError> {
    match basic_credentials(headers)? {
        Some((id, secret)) => {
            if p.get("client_secret").is_some() {
                return Err(ApiError::invalid_request(TWO_CLIENT_AUTH_METHODS));
            }
            if p.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(ApiError::invalid_request(
                    "The client_id in the body differs from the one in the Authorization header.",
                ));
            }
            Ok(Some(ClientCredentials {
                id,
                secret: (!secret.is_empty()).then_some(secret),
            }))
        }
        None => Ok(p.get("client_id").map(|id| ClientCredentials {
            id: id.to_owned(),
            secret: p.get("client_secret").map(str::to_owned),
        })),
    }
}

/// [`client_credentials_opt`], with `'client_id' is not specified.` (400 `invalid_request`)
/// when no client is named: the OAuth endpoints' answer.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    p: &Params,
) -> Result<ClientCredentials, ApiError> {
    client_credentials_opt(headers, p)?
        .ok_or_else(|| ApiError::invalid_request("'client_id' is not specified."))
}
