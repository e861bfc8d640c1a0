//! Sessions and cookies, the [`CurrentUser`] extractor, and the CSRF check.
//!
//! ## CSRF, in depth (OWASP)
//!
//! Every state-changing POST takes the [`CsrfChecked`] extractor, which refuses with a
//! `403` page, before the session is even loaded, a request
//! - whose body is not `application/x-www-form-urlencoded` (a cross-site `text/plain` or
//!   `multipart` post is a "simple request" that needs no CORS preflight; our forms never
//!   send one),
//! - whose `Sec-Fetch-Site` is `cross-site` (or `same-site`: a sibling subdomain is not us),
//! - that carries none of `Origin`, `Referer` and `Sec-Fetch-Site` (every current browser
//!   sends `Origin` on a POST, and `Sec-Fetch-Site`; a request with none of them did not come
//!   from a browser page of ours),
//! - whose `Origin` is another origin (`null` is accepted only with `Sec-Fetch-Site:
//!   same-origin`, see [`check_origin`]) or, without `Origin`, whose `Referer` is;
//!
//! then loads the session and compares the form's `csrf_token` with the session's in constant
//! time. A handler that takes [`CsrfChecked`] (or `Option<CsrfChecked>`) cannot forget a
//! check; refusals are counted (`routes::limits::Rejections::csrf`).
//!
//! A session id is its creation time and 256 random bits in an `HttpOnly; SameSite=Lax;
//! Path=/` cookie (plus `Secure` and the `__Host-` prefix behind https). The database keeps
//! only the time and the id's SHA-256 ([`session_key`]), so a database dump holds no usable
//! session. Sessions live in the store, so several server instances share them; they have an
//! absolute lifetime and an idle timeout, both enforced server-side. A new id is issued at
//! every login (fixation defence) and the old one ends.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{
    FromRequest, FromRequestParts, OptionalFromRequest, OptionalFromRequestParts, Request,
};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, CookieBuilder, SameSite};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};

use crate::crypto::{ct_eq, hash_id, random_id};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::Account;

/// The session cookie's base name.
pub const SESSION_COOKIE: &str = "ll_session";
/// The pre-login cookie's base name (holds the pending-login handle, 10 minutes).
pub const LOGIN_COOKIE: &str = "ll_login";
/// Set at logout (value `1`, not a secret): `/` says "You are logged out" and the next
/// `/login` adds `disable_auto_login=true`, then clears it.
pub const LOGGED_OUT_COOKIE: &str = "ll_logged_out";
/// How long [`LOGGED_OUT_COOKIE`] lives (10 minutes).
pub const LOGGED_OUT_TTL_SECS: i64 = 600;
/// The verified email of the session's ID token (scope `email`), sealed with the token
/// cipher and bound to the session (see [`seal_email`]); the store keeps no email.
pub const EMAIL_COOKIE: &str = "ll_email";

fn email_binding(session_hash: &str) -> String {
    // Never a hex id hash (the pending-login binding): the prefix keeps the two apart.
    format!("email:{session_hash}")
}

/// The [`EMAIL_COOKIE`] value for a session id: the email sealed (XChaCha20-Poly1305) and
/// bound to that session, base64url.
pub fn seal_email(state: &AppState, session_id: &str, email: &str) -> String {
    use base64::Engine as _;
    let sealed = state.inner.cipher.seal(
        crate::crypto::TokenKind::PendingLogin,
        &email_binding(&session_key(session_id)),
        email.as_bytes(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
}

impl CurrentUser {
    /// The email of this session's ID token, from the [`EMAIL_COOKIE`] (`None` when the
    /// cookie is absent, foreign to this session or tampered with).
    pub fn email(&self, state: &AppState, headers: &HeaderMap) -> Option<String> {
        use base64::Engine as _;
        let value = read_cookie(headers, &cookie_name(state, EMAIL_COOKIE))?;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .ok()?;
        let plain = state
            .inner
            .cipher
            .open(
                crate::crypto::TokenKind::PendingLogin,
                &email_binding(&self.session_hash),
                &sealed,
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// How long a pending login lives (≤ LINE's 10-minute code lifetime).
pub const LOGIN_TTL_SECS: i64 = 600;

/// The cookie name, with the `__Host-` prefix behind https.
pub fn cookie_name(state: &AppState, base: &str) -> String {
    if state.settings().secure_cookies {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// A cookie with the attributes every cookie of ours carries: `HttpOnly`, `SameSite=Lax`,
/// `Path=/` and a `Max-Age` (no `Secure`, no name prefix: [`set_cookie`] adds those).
pub fn cookie_builder(
    name: impl Into<Cow<'static, str>>,
    value: impl Into<Cow<'static, str>>,
    max_age_secs: i64,
) -> CookieBuilder<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
}

/// A `Set-Cookie` header value for `cookie` (a cookie that cannot be a header value, which
/// none of ours is, becomes a harmless deleted one).
pub fn set_cookie_header(cookie: impl Into<Cookie<'static>>) -> HeaderValue {
    HeaderValue::from_str(&cookie.into().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value with the fixed attributes, plus `Secure` and the `__Host-` prefix
/// behind https.
pub fn set_cookie(state: &AppState, base: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    set_cookie_header(
        cookie_builder(cookie_name(state, base), value.to_owned(), max_age_secs)
            .secure(state.settings().secure_cookies),
    )
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(state: &AppState, base: &str) -> HeaderValue {
    set_cookie(state, base, "", 0)
}

/// The cookies of the request's `Cookie` headers, in order (pairs that do not parse are
/// skipped; values are not percent-decoded, none of ours is encoded).
pub fn request_cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'_>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
}

/// The first value of a cookie in the request's `Cookie` headers (only the cookie is ever
/// accepted as a session carrier; never a query parameter or custom header). Empty values
/// and values over 128 bytes (none of ours) are skipped.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    request_cookies(headers)
        .find(|c| c.name() == name && !c.value().is_empty() && c.value().len() <= 128)
        .map(|c| c.value().to_owned())
}

/// Length of a session id's creation-time prefix: Unix milliseconds, 12 lowercase hex digits.
const SESSION_TIME_DIGITS: usize = 12;
/// Length of a session id: the time prefix and 256 random bits in URL-safe base64.
const SESSION_ID_LEN: usize = SESSION_TIME_DIGITS + 43;

/// A new session id for a session created at `now_ms`: the creation time in hex, then 256
/// random bits. The time prefix only orders ids (it adds nothing to guess, and tells the
/// cookie's holder nothing they did not know); see [`session_key`].
pub fn new_session_id(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{ms:012x}{}", random_id(32))
}

/// The key a session is stored under: its id's time prefix followed by the SHA-256 of the
/// whole id, so the database never holds a usable id, and sessions sort by creation time.
/// New sessions then go to the end of the sessions B-tree (one hot page, however many
/// sessions there are) instead of a random page each, and expired ones sit together at its
/// start. An id without the prefix (issued before it existed) is keyed by its hash alone.
pub fn session_key(id: &str) -> String {
    let prefix = id.get(..SESSION_TIME_DIGITS).filter(|p| {
        id.len() == SESSION_ID_LEN && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    match prefix {
        Some(p) => format!("{p}{}", hash_id(id)),
        None => hash_id(id),
    }
}

/// The logged-in user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The account.
    pub account: Account,
    /// The session's CSRF token (goes into forms as `csrf_token`).
    pub csrf_token: String,
    /// The session's key in the store ([`session_key`]).
    pub(crate) session_hash: String,
}

impl CurrentUser {
    /// Loads the session of the request, if valid (exists, not expired, not idle too long).
    pub async fn load(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<CurrentUser>, AppError> {
        let Some(id) = read_cookie(headers, &cookie_name(state, SESSION_COOKIE)) else {
            return Ok(None);
        };
        let hash = session_key(&id);
        let now = state.now_ms();
        let Some(rec) = state.store().session(&hash, now).await? else {
            return Ok(None);
        };
        let idle_ms = i64::try_from(state.settings().session_idle.as_millis()).unwrap_or(i64::MAX);
        if rec.last_seen_at.saturating_add(idle_ms) <= now {
            state.store().delete_session(&hash).await?;
            return Ok(None);
        }
        if now - rec.last_seen_at > 60_000 {
            state.store().touch_session(&hash, now).await?;
        }
        Ok(Some(CurrentUser {
            account: rec.account,
            csrf_token: rec.csrf_token,
            session_hash: hash,
        }))
    }

    /// Checks a state-changing request: the `csrf_token` form field must equal the session's
    /// token (constant time), and the request must not come from another origin (`Origin`,
    /// else `Sec-Fetch-Site`).
    pub fn check_csrf(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<(), AppError> {
        check_origin(state, headers)?;
        match token {
            Some(t) if ct_eq(t, &self.csrf_token) => Ok(()),
            Some(_) => Err(AppError::Csrf("token mismatch")),
            None => Err(AppError::Csrf("token missing")),
        }
    }
}

/// Rejects requests that come from another origin.
///
/// `Origin` must be ours. Under `Referrer-Policy: no-referrer` browsers send `Origin: null`
/// even for same-origin form posts; then the Fetch Metadata header `Sec-Fetch-Site` must say
/// `same-origin`. Without `Origin`, a `Sec-Fetch-Site` other than `same-origin`/`none` is
/// refused. (The CSRF token is required in every case.)
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""))
    {
        Some("null") => match site {
            Some("same-origin") => Ok(()),
            _ => Err(AppError::Csrf("opaque origin")),
        },
        Some(origin) if origin == state.settings().public_origin => match site {
            Some("cross-site" | "same-site") => Err(AppError::Csrf("cross-site fetch")),
            _ => Ok(()),
        },
        Some(_) => Err(AppError::Csrf("foreign origin")),
        None => match site {
            None | Some("same-origin" | "none") => Ok(()),
            Some(_) => Err(AppError::Csrf("cross-site fetch")),
        },
    }
}

/// Checks the headers of a state-changing form post (see the [module docs](self)): the body
/// type, Fetch Metadata, and `Origin` or else `Referer`.
pub fn check_form_post(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(AppError::Csrf("not a urlencoded form"));
    }
    let site = headers.get("sec-fetch-site");
    if site.is_some_and(|s| s.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Err(AppError::Csrf("cross-site fetch"));
    }
    let origin = headers.get(header::ORIGIN);
    let referer = headers.get(header::REFERER);
    if origin.is_none() && referer.is_none() && site.is_none() {
        return Err(AppError::Csrf("no origin, referer or fetch metadata"));
    }
    check_origin(state, headers)?;
    if origin.is_none()
        && let Some(referer) = referer
    {
        let ours = referer
            .to_str()
            .ok()
            .and_then(|r| url::Url::parse(r).ok())
            .is_some_and(|u| u.origin().ascii_serialization() == state.settings().public_origin);
        if !ours {
            return Err(AppError::Csrf("foreign referer"));
        }
    }
    Ok(())
}

/// A state-changing form post that passed every CSRF check, with its logged-in user. As
/// `Option<CsrfChecked>` a request without a session is `None` (the header checks still
/// apply). It reads the body, so it must be a handler's last argument.
#[derive(Debug, Clone)]
pub struct CsrfChecked(pub CurrentUser);

impl CsrfChecked {
    async fn check(req: Request, state: &AppState) -> Result<Option<CurrentUser>, Response> {
        let path = req.uri().path().to_owned();
        let result = async {
            check_form_post(state, req.headers())?;
            let Some(user) = CurrentUser::load(state, req.headers()).await? else {
                return Ok(None);
            };
            let headers = req.headers().clone();
            let body = Bytes::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            user.check_csrf(state, &headers, crate::routes::csrf_field(&body).as_deref())?;
            Ok::<_, CsrfRefusal>(Some(user))
        }
        .await;
        result.map_err(|e: CsrfRefusal| match e {
            CsrfRefusal::App(e) => {
                if matches!(e, AppError::Csrf(_)) {
                    state
                        .limits()
                        .rejections
                        .record(&path, e.reason(), state.now_ms());
                }
                e.into_response()
            }
            CsrfRefusal::Body(r) => r,
        })
    }
}

/// Why [`CsrfChecked`] refused: a check, or a body that could not be read (e.g. too large).
enum CsrfRefusal {
    App(AppError),
    Body(Response),
}

impl From<AppError> for CsrfRefusal {
    fn from(e: AppError) -> Self {
        CsrfRefusal::App(e)
    }
}

impl From<Response> for CsrfRefusal {
    fn from(r: Response) -> Self {
        CsrfRefusal::Body(r)
    }
}

impl FromRequest<AppState> for CsrfChecked {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Self::check(req, state).await? {
            Some(user) => Ok(CsrfChecked(user)),
            None => Err(AppError::LoginRequired.into_response()),
        }
    }
}

impl OptionalFromRequest<AppState> for CsrfChecked {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::check(req, state).await?.map(CsrfChecked))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        CurrentUser::load(state, &parts.headers)
            .await?
            .ok_or(AppError::LoginRequired)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        CurrentUser::load(state, &parts.headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_the_named_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ll_session=abc; b=2"),
        );
        assert_eq!(read_cookie(&h, "ll_session").as_deref(), Some("abc"));
        assert_eq!(read_cookie(&h, "ll_login"), None);
        h.insert(header::COOKIE, HeaderValue::from_static("ll_session="));
        assert_eq!(read_cookie(&h, "ll_session"), None);
        // Several headers: the first non-empty value wins; an oversized one is skipped.
        let mut h = HeaderMap::new();
        let long = format!("ll_session={}", "x".repeat(129));
        h.append(header::COOKIE, HeaderValue::from_str(&long).unwrap());
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x; ll_session= one ;"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("ll_session=two"));
        assert_eq!(read_cookie(&h, "ll_session").as_deref(), Some("one"));
        let values: Vec<_> = request_cookies(&h).map(|c| c.value().len()).collect();
        assert_eq!(values, [129, 3, 3], "the pair without `=` is skipped");
    }

    #[test]
    fn cookies_carry_the_fixed_attributes() {
        let plain = set_cookie_header(cookie_builder("ll_login", "h", 600));
        assert_eq!(
            plain,
            "ll_login=h; HttpOnly; SameSite=Lax; Path=/; Max-Age=600"
        );
        let secure = set_cookie_header(cookie_builder("__Host-ll_login", "", 0).secure(true));
        assert_eq!(
            secure,
            "__Host-ll_login=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0"
        );
        // Not a header value: a harmless deleted cookie instead of a panic.
        let bad = set_cookie_header(cookie_builder("a", "x\ny", 1));
        assert_eq!(bad, "invalid=; Max-Age=0");
    }

    #[test]
    fn session_ids_carry_their_creation_time_and_keys_sort_by_it() {
        let now = 1_764_000_000_123;
        let id = new_session_id(now);
        assert_eq!(id.len(), SESSION_ID_LEN);
        assert_eq!(&id[..12], &format!("{now:012x}"));
        assert_eq!(session_key(&id), format!("{now:012x}{}", hash_id(&id)));
        assert_ne!(
            new_session_id(now)[12..],
            id[12..],
            "the random part differs"
        );
        // Keys of later sessions sort after earlier ones, whatever their random parts.
        let mut keys: Vec<String> = (0..50)
            .map(|i| session_key(&new_session_id(now + i * 7)))
            .collect();
        let created = keys.clone();
        keys.sort();
        assert_eq!(keys, created);
    }

    #[test]
    fn ids_without_a_time_prefix_are_keyed_by_their_hash_alone() {
        // Issued before the prefix existed: 256 random bits.
        let old = random_id(32);
        assert_eq!(session_key(&old), hash_id(&old));
        // The right length but no hex prefix, or a prefix on an id of the wrong length.
        let not_hex = format!("zzzzzzzzzzzz{old}");
        assert_eq!(session_key(&not_hex), hash_id(&not_hex));
        let upper = format!("ABCDEF012345{old}");
        assert_eq!(session_key(&upper), hash_id(&upper));
        let short = format!("0123456789ab{}", &old[1..]);
        assert_eq!(session_key(&short), hash_id(&short));
        // Multi-byte input never splits a character.
        let wide = "é".repeat(SESSION_ID_LEN / 2);
        assert_eq!(session_key(&wide), hash_id(&wide));
    }
}
