//! Response modes: the code, or a callback error, delivered to the callback as a query
//! (`query`, `query.jwt`) or an auto-submitting form (`form_post`, `form_post.jwt`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::crypto;
use crate::pages::{self};
use crate::state::{AuthRequest, CODE_TTL, Channel, CodeRecord, Inner, ResponseMode};

/// A callback error (documented UPPER_CASE codes; lowercase under the switch).
#[derive(Debug, Clone, Copy)]
pub(super) enum CallbackError {
    InvalidRequest,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    LoginRequired,
    InteractionRequired,
    ServerError,
}

impl CallbackError {
    pub(super) fn from_name(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "INVALID_REQUEST" => CallbackError::InvalidRequest,
            "ACCESS_DENIED" => CallbackError::AccessDenied,
            "UNSUPPORTED_RESPONSE_TYPE" => CallbackError::UnsupportedResponseType,
            "INVALID_SCOPE" => CallbackError::InvalidScope,
            "LOGIN_REQUIRED" => CallbackError::LoginRequired,
            "INTERACTION_REQUIRED" => CallbackError::InteractionRequired,
            _ => CallbackError::ServerError,
        }
    }

    pub(super) fn description(self) -> &'static str {
        match self {
            CallbackError::InvalidRequest => "The request is missing a parameter or is malformed.",
            CallbackError::AccessDenied => "The resource owner denied the request.",
            CallbackError::UnsupportedResponseType => "Unsupported response_type.",
            CallbackError::InvalidScope => "The requested scope is invalid.",
            CallbackError::LoginRequired => "The user is not logged in.",
            CallbackError::InteractionRequired => "Auto login is not possible on this device.",
            CallbackError::ServerError => "An unexpected error occurred on the server.",
        }
    }

    fn code(self, lowercase: bool) -> &'static str {
        match (self, lowercase) {
            (CallbackError::InvalidRequest, false) => "INVALID_REQUEST",
            (CallbackError::InvalidRequest, true) => "invalid_request",
            (CallbackError::AccessDenied, false) => "ACCESS_DENIED",
            (CallbackError::AccessDenied, true) => "access_denied",
            (CallbackError::UnsupportedResponseType, false) => "UNSUPPORTED_RESPONSE_TYPE",
            (CallbackError::UnsupportedResponseType, true) => "unsupported_response_type",
            (CallbackError::InvalidScope, false) => "INVALID_SCOPE",
            (CallbackError::InvalidScope, true) => "invalid_scope",
            (CallbackError::LoginRequired, false) => "LOGIN_REQUIRED",
            (CallbackError::LoginRequired, true) => "login_required",
            (CallbackError::InteractionRequired, false) => "INTERACTION_REQUIRED",
            (CallbackError::InteractionRequired, true) => "interaction_required",
            (CallbackError::ServerError, false) => "SERVER_ERROR",
            (CallbackError::ServerError, true) => "server_error",
        }
    }
}

/// Sends the authorization response to the callback in the requested response mode.
pub(super) fn deliver(
    st: &Inner,
    ch: &Channel,
    redirect_uri: &str,
    mode: ResponseMode,
    params: Vec<(&'static str, String)>,
) -> Response {
    let params = match mode {
        ResponseMode::Query | ResponseMode::FormPost => params,
        ResponseMode::QueryJwt | ResponseMode::FormPostJwt => {
            let now = st.clock.now();
            let mut claims = serde_json::Map::new();
            claims.insert("iss".into(), st.config.issuer.as_str().into());
            claims.insert("aud".into(), ch.cfg.id.clone().into());
            claims.insert("iat".into(), now.into());
            claims.insert("exp".into(), (now + CODE_TTL).into());
            for (k, v) in params {
                claims.insert(k.into(), v.into());
            }
            let jwt = crypto::sign_hs256(
                crypto::JWT_HS256_HEADER,
                serde_json::Value::Object(claims).to_string().as_bytes(),
                ch.cfg.secret.as_bytes(),
            );
            vec![("response", jwt)]
        }
    };
    match mode {
        ResponseMode::Query | ResponseMode::QueryJwt => match url::Url::parse(redirect_uri) {
            Ok(mut u) => {
                {
                    let mut pairs = u.query_pairs_mut();
                    for (k, v) in &params {
                        pairs.append_pair(k, v);
                    }
                }
                let mut resp = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(u.as_str()) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
            Err(_) => pages::error_page(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "Invalid redirect_uri value.",
                None,
            ),
        },
        ResponseMode::FormPost | ResponseMode::FormPostJwt => {
            pages::form_post_page(redirect_uri, &params)
        }
    }
}

pub(super) fn deliver_error(
    st: &Inner,
    ch: &Channel,
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<String>,
    error: CallbackError,
    description: &str,
) -> Response {
    let mut params = vec![
        ("error", error.code(ch.lowercase).to_owned()),
        ("error_description", description.to_owned()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    deliver(st, ch, redirect_uri, mode, params)
}

/// Issues the code and redirects to the callback.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    st: &Inner,
    ch: &Channel,
    req: &AuthRequest,
    user: u32,
    generation: u64,
    auth_time: i64,
    amr: &'static str,
    friendship_changed: Option<bool>,
) -> Response {
    let code = st.issue_code(CodeRecord {
        channel: ch.idx,
        user,
        redirect_uri: req.redirect_uri.clone(),
        scopes: req.scopes,
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: req.max_age.map(|_| auth_time),
        amr,
        exp: st.clock.now() + CODE_TTL,
        generation,
    });
    let mut params = vec![("code", code), ("state", req.state.clone())];
    if let Some(changed) = friendship_changed {
        params.push(("friendship_status_changed", changed.to_string()));
    }
    deliver(st, ch, &req.redirect_uri, req.response_mode, params)
}
