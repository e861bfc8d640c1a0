//! `/`, `/terms`, `/healthz` and the stylesheet.

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use http::{StatusCode, header};

use crate::deauth::outbox;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::pages;
use crate::session::CurrentUser;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/terms", get(terms))
        .route("/healthz", get(healthz))
        .route("/static/style.css", get(style))
}

async fn home(lang: Lang, user: Option<CurrentUser>) -> Html<String> {
    Html(pages::home(lang, user.as_ref().map(|u| &u.account)))
}

async fn terms(lang: Lang, user: Option<CurrentUser>) -> Html<String> {
    Html(pages::terms(lang, user.is_some()))
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE_CSS,
    )
        .into_response()
}

/// Liveness plus the deauthorization outbox: pending and failed jobs, age of the oldest.
/// `outbound`: how the LINE rate limit is kept (`local`, `shared` through Redis, or
/// `degraded`: Redis unreachable, the local share is used) and since when (Unix seconds).
async fn healthz(State(state): State<AppState>) -> Result<Response, AppError> {
    let limit = state.client().policy().limiter().check().await;
    let outbound = serde_json::json!({
        "limit": limit.mode.as_str(),
        "since": limit.since.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
    });
    let limit_degraded = limit.mode == line_login::policy::LimitMode::Degraded;
    match outbox::stats(&state).await {
        Ok(stats) => {
            let status = if stats.failed > 0 || limit_degraded {
                "degraded"
            } else {
                "ok"
            };
            Ok(Json(serde_json::json!({
                "status": status,
                "database": "ok",
                "deauthorization": {
                    "pending": stats.pending,
                    "failed": stats.failed,
                    "oldest_pending_age_secs": stats.oldest_pending_age_secs,
                },
                "outbound": outbound,
            }))
            .into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            Ok((
                StatusCode::SERVICE_UNAVAILABLE,
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
