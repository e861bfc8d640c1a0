//! Request validation: `client_id` and `redirect_uri` (a failure is an HTML page, never a
//! redirect), then every other parameter (a failure is a callback error), with the length
//! caps of the parent module's doc.

use axum::http::{HeaderMap, StatusCode};

use super::*;
use crate::error::ApiError;
use crate::observe::ChannelTag;
use crate::pages::{Lang, RegisterHelp};
use crate::params::Params;
use crate::state::{
    AuthRequest, BotPrompt, Channel, Inner, ResponseMode, SCOPE_EMAIL, SCOPE_OPENID, SCOPE_PROFILE,
};

/// Length caps (bytes) of the authorize parameters other than `redirect_uri` and
/// `client_id`: the emulator's own figures (LINE documents none; see the module doc).
pub(crate) const PARAM_LIMITS: &[(&str, usize)] = &[
    ("response_type", 32),
    ("state", 2048),
    ("scope", 256),
    ("nonce", 1024),
    ("prompt", 64),
    ("max_age", 20),
    ("bot_prompt", 32),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("response_mode", 32),
    ("ui_locales", 256),
    ("initial_amr_display", 32),
    ("switch_amr", 16),
    ("disable_auto_login", 16),
    ("disable_ios_auto_login", 16),
];

/// Length cap (bytes) of `redirect_uri`; a longer one gets the unregistered-callback page.
pub(crate) const MAX_REDIRECT_URI: usize = 2048;

/// Where a failed authorization request goes.
pub(super) enum Failure {
    /// An HTML page, no redirect (bad `client_id` / `redirect_uri`).
    Page(ApiError),
    /// A redirect to the callback with `error`.
    Callback {
        channel: u32,
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        error: CallbackError,
        description: String,
    },
}

pub(super) fn parse_request(
    st: &Inner,
    q: &Params,
    headers: &HeaderMap,
) -> Result<AuthRequest, Failure> {
    let Some(ch) = q
        .get("client_id")
        .filter(|_| !q.repeated("client_id"))
        .and_then(|id| st.channel(id))
    else {
        return Err(Failure::Page(ApiError::page(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "Invalid client_id value. Check that it is the channel ID of a LINE Login channel.",
        )));
    };
    let redirect_uri = match q.get("redirect_uri") {
        Some(r)
            if r.len() <= MAX_REDIRECT_URI
                && !q.repeated("redirect_uri")
                && ch.redirect_allowed(r) =>
        {
            r.to_owned()
        }
        other => {
            return Err(Failure::Page(
                ApiError::unregistered_redirect_uri(register_help(ch, other))
                    .in_channel(ChannelTag(ch.idx)),
            ));
        }
    };
    let over_long = PARAM_LIMITS
        .iter()
        .find(|(name, max)| q.get(name).is_some_and(|v| v.len() > *max));
    // An over-long state is not echoed back.
    let state = q
        .get("state")
        .filter(|_| !matches!(over_long, Some(("state", _))))
        .map(str::to_owned);
    let (mode, mode_ok) = match q.get("response_mode") {
        None | Some("query") => (ResponseMode::Query, true),
        Some("form_post") => (ResponseMode::FormPost, true),
        Some("query.jwt") | Some("jwt") => (ResponseMode::QueryJwt, true),
        Some("form_post.jwt") => (ResponseMode::FormPostJwt, true),
        Some(_) => (ResponseMode::Query, false),
    };
    let fail = |error: CallbackError, description: &str| Failure::Callback {
        channel: ch.idx,
        redirect_uri: redirect_uri.clone(),
        mode,
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    for p in [
        "response_type",
        "state",
        "scope",
        "nonce",
        "prompt",
        "max_age",
        "bot_prompt",
        "code_challenge",
        "code_challenge_method",
        "response_mode",
    ] {
        if q.repeated(p) {
            return Err(fail(
                CallbackError::InvalidRequest,
                &format!("'{p}' is specified more than once."),
            ));
        }
    }
    if let Some((name, max)) = over_long {
        return Err(fail(
            CallbackError::InvalidRequest,
            &format!("'{name}' is too long. It must be at most {max} bytes."),
        ));
    }
    if !mode_ok {
        return Err(fail(
            CallbackError::InvalidRequest,
            "Unsupported response_mode.",
        ));
    }
    match q.get("response_type") {
        None => {
            return Err(fail(
                CallbackError::InvalidRequest,
                "'response_type' is not specified.",
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                CallbackError::UnsupportedResponseType,
                "Unsupported response_type. Only 'code' is supported.",
            ));
        }
    }
    let Some(state_value) = state.clone() else {
        return Err(fail(
            CallbackError::InvalidRequest,
            "'state' is not specified.",
        ));
    };
    let Some(scope) = q.get("scope") else {
        return Err(fail(
            CallbackError::InvalidScope,
            "'scope' is not specified.",
        ));
    };
    let mut scopes = 0u8;
    let mut email_requested = false;
    for s in scope.split([' ', '+']).filter(|s| !s.is_empty()) {
        match s {
            "profile" => scopes |= SCOPE_PROFILE,
            "openid" => scopes |= SCOPE_OPENID,
            "email" => email_requested = true,
            other => {
                return Err(fail(
                    CallbackError::InvalidScope,
                    &format!("The scope '{other}' is not supported by this channel."),
                ));
            }
        }
    }
    if scopes & (SCOPE_PROFILE | SCOPE_OPENID) == 0 {
        return Err(fail(
            CallbackError::InvalidScope,
            "The scope must include 'profile' or 'openid'.",
        ));
    }
    if email_requested && scopes & SCOPE_OPENID == 0 {
        return Err(fail(
            CallbackError::InvalidScope,
            "The 'email' scope requires the 'openid' scope.",
        ));
    }
    if email_requested && ch.cfg.email_permission {
        scopes |= SCOPE_EMAIL;
    }
    let code_challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) => {
            let ok = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(fail(
                    CallbackError::InvalidRequest,
                    "Invalid code_challenge. It must be BASE64URL(SHA256(code_verifier)) without padding.",
                ));
            }
            Some(c.to_owned())
        }
        (Some(_), None) | (Some(_), Some(_)) => {
            return Err(fail(
                CallbackError::InvalidRequest,
                "Unsupported code_challenge_method. Only 'S256' is supported.",
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                CallbackError::InvalidRequest,
                "'code_challenge' is not specified.",
            ));
        }
    };
    let (mut prompt_login, mut prompt_consent, mut prompt_none) = (false, false, false);
    if let Some(p) = q.get("prompt") {
        for v in p.split([' ', '+']).filter(|s| !s.is_empty()) {
            match v {
                "login" => prompt_login = true,
                "consent" => prompt_consent = true,
                "none" => prompt_none = true,
                _ => {
                    return Err(fail(
                        CallbackError::InvalidRequest,
                        "Unsupported prompt value.",
                    ));
                }
            }
        }
        if prompt_none && (prompt_login || prompt_consent) {
            return Err(fail(
                CallbackError::InvalidRequest,
                "prompt=none cannot be combined with other values.",
            ));
        }
    }
    let bot_prompt = match q.get("bot_prompt") {
        None => None,
        Some("normal") => Some(BotPrompt::Normal),
        Some("aggressive") => Some(BotPrompt::Aggressive),
        Some(_) => {
            return Err(fail(
                CallbackError::InvalidRequest,
                "Unsupported bot_prompt value.",
            ));
        }
    };
    let max_age = match q.get("max_age") {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(fail(
                    CallbackError::InvalidRequest,
                    "Invalid max_age value.",
                ));
            }
        },
    };
    Ok(AuthRequest {
        channel: ch.idx,
        redirect_uri,
        state: state_value,
        scopes,
        email_requested,
        nonce: q.get("nonce").map(str::to_owned),
        code_challenge,
        max_age,
        prompt_login,
        prompt_consent,
        prompt_none,
        bot_prompt,
        response_mode: mode,
        disable_auto_login: q.get("disable_auto_login") == Some("true"),
        lang: Lang::pick(q.get("ui_locales"), headers),
    })
}

/// What the error page of a refused `redirect_uri` shows: the URI received (cut to
/// [`MAX_REDIRECT_URI`] bytes), the channel's callback URLs, and the URL to register (the
/// received one without its query and fragment, when it parses).
pub(super) fn register_help(ch: &Channel, received: Option<&str>) -> RegisterHelp {
    let received = received.unwrap_or("");
    let mut end = received.len().min(MAX_REDIRECT_URI);
    while !received.is_char_boundary(end) {
        end -= 1;
    }
    let received = &received[..end];
    let suggested = match url::Url::parse(received) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "CALLBACK_URL".to_owned(),
    };
    RegisterHelp {
        channel: ch.cfg.id.clone(),
        received: received.to_owned(),
        registered: ch.cfg.callback_urls.clone(),
        suggested,
    }
}
