//! `/me`, `/api/me`, `/account/unregister` and `/account/unlink`. The POSTs take
//! [`CsrfChecked`].

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};

use crate::accounts::{self, DeauthStart};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::pages::{Action, HeaderUser};
use crate::session::{
    CsrfChecked, CurrentUser, EMAIL_COOKIE, LOGIN_COOKIE, LOGIN_TTL_SECS, SESSION_COOKIE,
    clear_cookie, set_cookie,
};
use crate::state::AppState;
use crate::store::{AccountStatus, DeauthReason};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/api/me", get(api_me))
        .route("/account/unregister", get(unregister_page).post(unregister))
        .route("/account/unlink", get(unlink_page).post(unlink))
}

fn to_login(state: &AppState, next: &str) -> Response {
    let s = state.settings();
    Redirect::to(&format!("{}?next={}", s.path("/login"), s.path(next))).into_response()
}

async fn me(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    user: Option<CurrentUser>,
) -> Result<Response, AppError> {
    Ok(match user {
        Some(u) => {
            let email = u.email(&state, &headers);
            let html = state
                .pages()
                .me(lang, &u.account, email.as_deref(), &u.csrf_token)?;
            Html(html).into_response()
        }
        None => to_login(&state, "/me"),
    })
}

/// `GET /api/me`: `{userId, displayName, pictureUrl, linked}`, plus `email` when the login's
/// verified ID token carried one (scope `email`); 401 without a session.
async fn api_me(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
) -> Result<Response, AppError> {
    let user = user.ok_or(AppError::LoginRequired)?;
    let a = &user.account;
    let mut body = serde_json::json!({
        "userId": a.sub,
        "displayName": a.display_name,
        "pictureUrl": a.picture_url,
        "linked": a.status == AccountStatus::Linked,
    });
    if let Some(email) = user.email(&state, &headers) {
        body["email"] = serde_json::Value::String(email);
    }
    Ok(Json(body).into_response())
}

async fn unregister_page(
    State(state): State<AppState>,
    lang: Lang,
    user: Option<CurrentUser>,
) -> Result<Response, AppError> {
    confirm_page(&state, lang, user.as_ref(), Action::Unregister)
}

async fn unlink_page(
    State(state): State<AppState>,
    lang: Lang,
    user: Option<CurrentUser>,
) -> Result<Response, AppError> {
    confirm_page(&state, lang, user.as_ref(), Action::Unlink)
}

/// The confirmation page: the form for a logged-in user; without a session, the same notice
/// (the guidelines ask to say beforehand what the action does) and a link to log in and
/// come back, but no form.
fn confirm_page(
    state: &AppState,
    lang: Lang,
    user: Option<&CurrentUser>,
    action: Action,
) -> Result<Response, AppError> {
    let header = user.map(|u| HeaderUser::of(&u.account));
    let csrf = user.map(|u| u.csrf_token.as_str());
    let html = state.pages().confirm(lang, action, header.as_ref(), csrf)?;
    Ok(Html(html).into_response())
}

async fn unregister(
    State(state): State<AppState>,
    lang: Lang,
    CsrfChecked(user): CsrfChecked,
) -> Result<Response, AppError> {
    act(&state, lang, user, DeauthReason::Unregister).await
}

async fn unlink(
    State(state): State<AppState>,
    lang: Lang,
    CsrfChecked(user): CsrfChecked,
) -> Result<Response, AppError> {
    act(&state, lang, user, DeauthReason::Unlink).await
}

/// Unregister or unlink; `user` passed every CSRF check ([`CsrfChecked`]).
async fn act(
    state: &AppState,
    lang: Lang,
    user: CurrentUser,
    reason: DeauthReason,
) -> Result<Response, AppError> {
    if reason == DeauthReason::Unlink && user.account.status == AccountStatus::Unlinked {
        return Ok(Redirect::to(&state.settings().path("/me")).into_response());
    }
    let action = if reason == DeauthReason::Unlink {
        Action::Unlink
    } else {
        Action::Unregister
    };
    let event = if reason == DeauthReason::Unlink {
        crate::metrics::Event::Unlink
    } else {
        crate::metrics::Event::Unregister
    };
    let started = accounts::request_deauthorization(state, &user.account, reason).await;
    let outcome = match &started {
        Ok(DeauthStart::Enqueued { .. }) => "enqueued",
        Ok(DeauthStart::NeedsReauth(_)) => "reauth_required",
        Err(_) => "error",
    };
    crate::metrics::record_event(state, event, outcome);
    match started? {
        DeauthStart::Enqueued { .. } => {
            let mut r = (StatusCode::OK, Html(state.pages().done(lang, action)?)).into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, clear_cookie(state, SESSION_COOKIE));
            r.headers_mut()
                .append(header::SET_COOKIE, clear_cookie(state, EMAIL_COOKIE));
            Ok(r)
        }
        DeauthStart::NeedsReauth(started) => {
            let mut r = Redirect::to(started.url.as_str()).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(state, LOGIN_COOKIE, &started.cookie_value, LOGIN_TTL_SECS),
            );
            Ok(r)
        }
    }
}
