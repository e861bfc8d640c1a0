//! `/`, `/terms`, `/healthz` and the stylesheet.

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};

use crate::deauth::outbox;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::pages::HeaderUser;
use crate::session::{CurrentUser, LOGGED_OUT_COOKIE, cookie_name, read_cookie};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/terms", get(terms))
        .route("/healthz", get(healthz))
        .route("/static/style.css", get(style))
}

/// `GET /`: the start page; after a logout it says "You are logged out".
async fn home(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    user: Option<CurrentUser>,
) -> Result<Html<String>, AppError> {
    let logged_out =
        user.is_none() && read_cookie(&headers, &cookie_name(&state, LOGGED_OUT_COOKIE)).is_some();
    let header = user.as_ref().map(|u| HeaderUser::of(&u.account));
    Ok(Html(state.pages().home(
        lang,
        header.as_ref(),
        logged_out,
    )?))
}

async fn terms(
    State(state): State<AppState>,
    lang: Lang,
    user: Option<CurrentUser>,
) -> Result<Html<String>, AppError> {
    let header = user.as_ref().map(|u| HeaderUser::of(&u.account));
    Ok(Html(state.pages().terms(lang, header.as_ref())?))
}

async fn style(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        state.pages().style_css(),
    )
        .into_response()
}

/// Liveness plus the deauthorization outbox: pending and failed jobs, age of the oldest (and,
/// with `[webhook]`, the same for the webhook outbox under `webhooks`; a failed event makes the
/// status `degraded`).
/// The outbox query is the database check: it runs on the store like any request, bounded by
/// `[database]`'s timeouts (and here by their sum once more, should a driver not honour
/// them); a failure or a timeout answers 503 `"database": "unavailable"` with `Retry-After`.
/// `outbound`: how the LINE rate limit is kept (`local`, `shared` through Redis, or
/// `degraded`: Redis unreachable, the local share is used) and since when (Unix seconds).
/// `keys.undecryptable_jobs`: deauthorization jobs whose tokens no configured key decrypts
/// (they wait, pending; the status is `degraded` with `keys.problem` saying why).
async fn healthz(State(state): State<AppState>) -> Result<Response, AppError> {
    let limit = state.client().policy().limiter().check().await;
    let outbound = serde_json::json!({
        "limit": limit.mode.as_str(),
        "since": limit.since.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
    });
    let limit_degraded = limit.mode == line_login::policy::LimitMode::Degraded;
    let checked = outbox::all_stats(&state).await;
    let undecryptable = crate::deauth::keys::undecryptable_jobs(&state);
    let keys = if undecryptable > 0 {
        serde_json::json!({
            "undecryptable_jobs": undecryptable,
            "problem": "deauthorization jobs hold tokens that no configured key decrypts: \
                        put the old key back in previous_token_encryption_keys",
        })
    } else {
        serde_json::json!({ "undecryptable_jobs": 0 })
    };
    match checked {
        Ok((stats, webhooks)) => {
            let webhooks_failed = webhooks.is_some_and(|w| w.failed > 0);
            let status =
                if stats.failed > 0 || limit_degraded || webhooks_failed || undecryptable > 0 {
                    "degraded"
                } else {
                    "ok"
                };
            let mut body = serde_json::json!({
                "status": status,
                "database": "ok",
                "deauthorization": {
                    "pending": stats.pending,
                    "failed": stats.failed,
                    "oldest_pending_age_secs": stats.oldest_pending_age_secs,
                },
                "outbound": outbound,
                "keys": keys,
            });
            if let (Some(w), Some(map)) = (webhooks, body.as_object_mut()) {
                map.insert(
                    "webhooks".into(),
                    serde_json::json!({
                        "pending": w.pending,
                        "failed": w.failed,
                        "oldest_pending_age_secs": w.oldest_pending_age_secs,
                    }),
                );
            }
            Ok(Json(body).into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::RETRY_AFTER,
                    crate::error::DATABASE_RETRY_AFTER_SECS.to_string(),
                )],
                Json(serde_json::json!({
                    "status": "unavailable",
                    "database": "unavailable",
                    "outbound": outbound,
                })),
            )
                .into_response())
        }
    }
}
