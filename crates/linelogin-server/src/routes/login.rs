//! `/login`, `/callback` and `/logout`.
//!
//! `/login` and `/callback` are open to anyone, so they take the per-client
//! [`Inbound`] limit first, and `/login` starts a pending login only below the store-wide cap
//! (see [`super::limits`]). `/logout` takes [`CsrfChecked`].

use axum::Router;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};

use super::limits::Inbound;
use crate::accounts::{self, LoginFinish, Purpose};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::pages::{self, Action};
use crate::session::{
    CsrfChecked, CurrentUser, EMAIL_COOKIE, LOGGED_OUT_COOKIE, LOGGED_OUT_TTL_SECS, LOGIN_COOKIE,
    LOGIN_TTL_SECS, SESSION_COOKIE, clear_cookie, cookie_name, read_cookie, seal_email, set_cookie,
};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
}

#[derive(serde::Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    retry: Option<String>,
}

/// `GET /login[?next=/path][&retry=1]`: 302 to LINE's authorization page. `retry` adds
/// `disable_auto_login=true` (offered after a state mismatch). Limited per client; refused
/// with 503 when too many logins are pending.
async fn login(
    _: Inbound,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    state.limits().pending.admit(&state).await?;
    let q: LoginQuery = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let retry = q.retry.is_some_and(|r| r == "1" || r == "true");
    // The first login after a logout asks LINE to show its login screen
    // (`disable_auto_login=true`), so LINE's single sign-on does not log the same user
    // straight back in.
    let after_logout = read_cookie(&headers, &cookie_name(&state, LOGGED_OUT_COOKIE)).is_some();
    let started = accounts::start_login(
        &state,
        q.next.as_deref(),
        Purpose::Login,
        retry || after_logout,
    )
    .await?;
    let mut resp = (
        StatusCode::FOUND,
        [(header::LOCATION, started.url.as_str())],
    )
        .into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, &started.cookie_value, LOGIN_TTL_SECS),
    );
    if after_logout {
        resp.headers_mut()
            .append(header::SET_COOKIE, clear_cookie(&state, LOGGED_OUT_COOKIE));
    }
    Ok(resp)
}

/// `GET /callback`: the 8 steps of [`accounts::finish_login`]; the pre-login cookie is
/// cleared whatever the outcome. Limited per client; refusals are counted per reason.
async fn callback(
    _: Inbound,
    State(state): State<AppState>,
    lang: Lang,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("/callback", |p| p.as_str());
    let login_cookie = read_cookie(&headers, &cookie_name(&state, LOGIN_COOKIE));
    let old_session = read_cookie(&headers, &cookie_name(&state, SESSION_COOKIE));
    let result = accounts::finish_login(
        &state,
        path_and_query,
        query.as_deref().unwrap_or(""),
        login_cookie.as_deref(),
        old_session.as_deref(),
    )
    .await;
    let ttl = i64::try_from(state.settings().session_ttl.as_secs()).unwrap_or(i64::MAX);
    record_callback(&state, &result);
    let mut resp = match result {
        Ok(LoginFinish::SignedIn {
            session_id,
            redirect,
            email,
        }) => {
            let mut r = Redirect::to(&redirect).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &session_id, ttl),
            );
            let email_cookie = match email {
                Some(email) => set_cookie(
                    &state,
                    EMAIL_COOKIE,
                    &seal_email(&state, &session_id, &email),
                    ttl,
                ),
                None => clear_cookie(&state, EMAIL_COOKIE),
            };
            r.headers_mut().append(header::SET_COOKIE, email_cookie);
            r
        }
        Ok(LoginFinish::Deauthorizing { unlink }) => {
            let action = if unlink {
                Action::Unlink
            } else {
                Action::Unregister
            };
            let html = state.pages().done(lang, action).unwrap_or_else(|e| {
                tracing::error!(error = %e, "done page");
                pages::fallback_page_at(lang, &state.settings().base_path)
            });
            let mut r = axum::response::Html(html).into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, clear_cookie(&state, SESSION_COOKIE));
            r
        }
        Err(e) => {
            state
                .limits()
                .rejections
                .record("/callback", e.reason(), state.now_ms());
            // Back to a used or stale callback while logged in (the browser's Back button
            // after a login): the user is fine, so show their page, not an error.
            let reopened = matches!(
                e,
                AppError::StateMismatch | AppError::CodeRejected | AppError::BadCallback(_)
            );
            let logged_in = reopened
                && CurrentUser::load(&state, &headers)
                    .await
                    .ok()
                    .flatten()
                    .is_some();
            if logged_in {
                Redirect::to(&state.settings().path("/me")).into_response()
            } else {
                e.into_response()
            }
        }
    };
    if login_cookie.is_some() {
        resp.headers_mut()
            .append(header::SET_COOKIE, clear_cookie(&state, LOGIN_COOKIE));
    }
    resp
}

/// Counts the callback's outcome: a login (`success` or the refusal reason), or the
/// re-authentication that completes an unlink or unregister (`enqueued`).
fn record_callback(state: &AppState, result: &Result<LoginFinish, AppError>) {
    use crate::metrics::{Event, record_event};
    match result {
        Ok(LoginFinish::SignedIn { .. }) => record_event(state, Event::Login, "success"),
        Ok(LoginFinish::Deauthorizing { unlink: true }) => {
            record_event(state, Event::Unlink, "enqueued");
        }
        Ok(LoginFinish::Deauthorizing { unlink: false }) => {
            record_event(state, Event::Unregister, "enqueued");
        }
        Err(e) => record_event(state, Event::Login, e.reason()),
    }
}

/// `POST /logout` (CSRF-checked): revokes the access token (best effort), ends the session.
async fn logout(
    State(state): State<AppState>,
    checked: Option<CsrfChecked>,
) -> Result<Response, AppError> {
    if let Some(CsrfChecked(user)) = checked {
        let done = accounts::logout(&state, &user).await;
        let outcome = if done.is_ok() { "success" } else { "error" };
        crate::metrics::record_event(&state, crate::metrics::Event::Logout, outcome);
        done?;
    }
    let mut resp = Redirect::to(&state.settings().path("/")).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(&state, SESSION_COOKIE));
    resp.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(&state, EMAIL_COOKIE));
    // "You are logged out" on `/`, and the next `/login` disables LINE's auto login.
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, LOGGED_OUT_COOKIE, "1", LOGGED_OUT_TTL_SECS),
    );
    Ok(resp)
}
