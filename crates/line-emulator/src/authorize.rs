//! `GET /oauth2/v2.1/authorize` and the consent page's `POST /oauth2/v2.1/authorize/consent`.
//!
//! ## Parameter lengths
//! Every parameter the emulator keeps (in an outstanding code or a waiting consent page) or
//! echoes has a length cap, [`PARAM_LIMITS`] and [`MAX_REDIRECT_URI`], in bytes after
//! percent-decoding. LINE's authorize reference documents no length for any of them (it only
//! fixes `code_challenge` at 43 characters through PKCE), so the figures are this emulator's
//! choice: generous for real clients (a 43-character random `state`/`nonce` is the common
//! case; 2 KiB `state` leaves room for apps that pack a return URL into it, and a 2 KiB
//! callback URL fits every browser), and small enough that one record stays under about
//! 6 KiB. An over-long parameter is answered like any other malformed one: an
//! `INVALID_REQUEST` redirect to the callback (without echoing an over-long `state`), or, for
//! `redirect_uri`, the HTML 400 page of an unregistered callback URL. Before the caps, a
//! 60 KB `nonce` cost 60.8 KiB per outstanding code (11.9 GB at the 200 000-code cap).

use std::sync::atomic::Ordering;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::Shared;
use crate::crypto;
use crate::error::ApiError;
use crate::observe::{CallbackFault, tag_channel};
use crate::pages::{self, ConsentPage, Lang, Note, RegisterHelp, UserChoice};
use crate::params::Params;
use crate::state::{
    AuthRequest, BotPrompt, CODE_TTL, Channel, CodeRecord, Inner, Pending, ResponseMode,
    SCOPE_EMAIL, SCOPE_OPENID, SCOPE_PROFILE, Session, scope_names,
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

/// The emulator's session cookie on its own origin.
pub const SESSION_COOKIE: &str = "line_emulator_session";

/// A callback error (documented UPPER_CASE codes; lowercase under the switch).
#[derive(Debug, Clone, Copy)]
pub(crate) enum CallbackError {
    InvalidRequest,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    LoginRequired,
    InteractionRequired,
    ServerError,
}

impl CallbackError {
    fn from_name(name: &str) -> Self {
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

    fn description(self) -> &'static str {
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

/// Where a failed authorization request goes.
enum Failure {
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

fn parse_request(st: &Inner, q: &Params, headers: &HeaderMap) -> Result<AuthRequest, Failure> {
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
    tag_channel(ch.idx);
    let redirect_uri = match q.get("redirect_uri") {
        Some(r)
            if r.len() <= MAX_REDIRECT_URI
                && !q.repeated("redirect_uri")
                && ch.redirect_allowed(r) =>
        {
            r.to_owned()
        }
        other => {
            return Err(Failure::Page(ApiError::unregistered_redirect_uri(
                register_help(ch, other),
            )));
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
fn register_help(ch: &Channel, received: Option<&str>) -> RegisterHelp {
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

fn session_from(st: &Inner, headers: &HeaderMap) -> Option<Session> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == SESSION_COOKIE
                && let Some(s) = st.parse_session(val)
            {
                return Some(s);
            }
        }
    }
    None
}

fn new_session() -> Session {
    Session {
        id: crypto::random_alnum(22),
        user: None,
        auth_time: 0,
    }
}

fn set_cookie(resp: &mut Response, st: &Inner, s: &Session) {
    // Behind an https public URL the browser only ever talks https: mark the cookie Secure.
    let secure = st.config.public_url.as_deref().is_some_and(|u| {
        u.get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    });
    let v = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{}",
        st.session_cookie_value(s),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Sends the authorization response to the callback in the requested response mode.
fn deliver(
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
            claims.insert("iss".into(), st.config.issuer.clone().into());
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

fn deliver_error(
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
fn finish(
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

/// `GET /oauth2/v2.1/authorize`.
pub(crate) async fn authorize(
    State(st): State<Shared>,
    headers: HeaderMap,
    fault: Option<Extension<CallbackFault>>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Params::parse(query.as_deref().unwrap_or("").as_bytes());
    let req = match parse_request(&st, &q, &headers) {
        Ok(r) => r,
        Err(Failure::Page(e)) => return e.into_response(),
        Err(Failure::Callback {
            channel,
            redirect_uri,
            mode,
            state,
            error,
            description,
        }) => {
            let Some(ch) = st.channel_at(channel) else {
                return ApiError::page(StatusCode::BAD_REQUEST, "Bad Request", "Unknown channel")
                    .into_response();
            };
            return deliver_error(&st, ch, &redirect_uri, mode, state, error, &description);
        }
    };
    let Some(ch) = st.channel_at(req.channel) else {
        return ApiError::page(StatusCode::BAD_REQUEST, "Bad Request", "Unknown channel")
            .into_response();
    };
    if let Some(Extension(CallbackFault(code))) = fault {
        let error = CallbackError::from_name(&code);
        return deliver_error(
            &st,
            ch,
            &req.redirect_uri,
            req.response_mode,
            Some(req.state.clone()),
            error,
            error.description(),
        );
    }
    let now = st.clock.now();
    let existing = session_from(&st, &headers);
    let mut session = existing.clone().unwrap_or_else(new_session);

    if st.config.auto_consent {
        let user = match session.user {
            Some(u) if !req.prompt_login => u,
            _ => (st.auto_next.fetch_add(1, Ordering::Relaxed) % st.users.len().max(1)) as u32,
        };
        if session.user != Some(user) || req.prompt_login {
            session.user = Some(user);
            session.auth_time = now;
        }
        let generation = st.consent(user, ch.idx, req.scopes);
        let friendship = (req.bot_prompt.is_some() && ch.cfg.bot_linked).then_some(false);
        let mut resp = finish(
            &st,
            ch,
            &req,
            user,
            generation,
            session.auth_time,
            "lineautologin",
            friendship,
        );
        if existing.is_none() || session.user != existing.as_ref().and_then(|s| s.user) {
            set_cookie(&mut resp, &st, &session);
        }
        return resp;
    }

    // SSO: a logged-in browser that already consented to every requested scope logs in
    // without a page (LINE's auto login), unless the app asked for the screen.
    let sso_user = session.user.filter(|_| !req.prompt_login);
    let fresh_enough = req
        .max_age
        .is_none_or(|m| now.saturating_sub(session.auth_time) <= m);
    if let (Some(user), true, false, false) = (
        sso_user,
        fresh_enough,
        req.prompt_consent,
        req.disable_auto_login,
    ) && let Some(g) = st.active_grant(user, ch.idx)
        && g.scopes & req.scopes == req.scopes
    {
        return finish(
            &st,
            ch,
            &req,
            user,
            g.generation,
            session.auth_time,
            "linesso",
            None,
        );
    }
    if req.prompt_none {
        let description = if sso_user.is_none() || !fresh_enough {
            "The user is not logged in, and prompt=none forbids showing the login screen."
        } else if req.disable_auto_login {
            "disable_auto_login=true asks for the login screen, and prompt=none forbids showing it."
        } else {
            "The user has not consented to the requested permissions, and prompt=none forbids showing the consent screen."
        };
        return deliver_error(
            &st,
            ch,
            &req.redirect_uri,
            req.response_mode,
            Some(req.state.clone()),
            CallbackError::LoginRequired,
            description,
        );
    }

    let note = if req.prompt_login {
        Some(Note::PromptLogin)
    } else if req.prompt_consent {
        Some(Note::PromptConsent)
    } else if sso_user.is_some() && !fresh_enough {
        Some(Note::MaxAge)
    } else if sso_user.is_some() && req.disable_auto_login {
        Some(Note::NoAutoLogin)
    } else {
        None
    };
    // The browser's user when it has one; otherwise the first test user, except when the app
    // asked for a fresh login (prompt=login), which forces an explicit pick.
    let preselect = match sso_user.filter(|_| fresh_enough) {
        Some(u) => Some(u),
        None if req.prompt_login => None,
        None => Some(0),
    };
    let request_id = crypto::random_alnum(24);
    let mut resp = consent_page(&st, ch, &req, &request_id, &session, preselect, None, note);
    st.add_pending(
        request_id,
        Pending {
            request: req,
            session: session.id.clone(),
            created: now,
            chosen_user: None,
        },
    );
    if existing.is_none() {
        set_cookie(&mut resp, &st, &session);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
fn consent_page(
    st: &Inner,
    ch: &Channel,
    req: &AuthRequest,
    request_id: &str,
    session: &Session,
    preselect: Option<u32>,
    error: Option<Note>,
    note: Option<Note>,
) -> Response {
    let csrf = st.csrf_for(&session.id);
    let mut perms = scope_names(req.scopes);
    if req.email_requested && req.scopes & SCOPE_EMAIL == 0 {
        perms.retain(|p| *p != "email");
    }
    let users = st
        .users
        .iter()
        .map(|u| UserChoice {
            id: &u.ids[ch.idx as usize],
            name: &u.cfg.display_name,
            checked: preselect == Some(u.idx),
        })
        .collect();
    let oa_name = format!("{} (LINE Official Account)", ch.display_name);
    // The browser's single-sign-on user, when preselected, comes with "Not you?".
    let signed_in_as = session
        .user
        .filter(|u| preselect == Some(*u))
        .and_then(|u| st.user_at(u))
        .map(|u| u.cfg.display_name.as_str());
    let page = ConsentPage {
        channel_name: &ch.display_name,
        channel_id: &ch.cfg.id,
        permissions: &perms,
        users,
        signed_in_as,
        request: request_id,
        csrf: &csrf,
        add_friend: (req.bot_prompt == Some(BotPrompt::Normal) && ch.cfg.bot_linked)
            .then_some(oa_name.as_str()),
        error,
        note,
        lang: req.lang,
    };
    page.render()
}

/// `POST /oauth2/v2.1/authorize/consent`: the consent page's answer.
pub(crate) async fn consent(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bytes = match crate::params::body_bytes(body, || {
        ApiError::page(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "The form could not be read.",
        )
    }) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let form = Params::parse(&bytes);
    let expired = || {
        ApiError::page(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "This login request has expired or was already answered. Start the login again from the app.",
        )
        .into_response()
    };
    let Some(request_id) = form.get("request") else {
        return expired();
    };
    let Some((request_id, pending)) = st.pending.remove(request_id) else {
        return expired();
    };
    let now = st.clock.now();
    if pending.created + crate::state::PENDING_TTL <= now {
        return expired();
    }
    let Some(ch) = st.channel_at(pending.request.channel) else {
        return expired();
    };
    tag_channel(ch.idx);
    let session = session_from(&st, &headers);
    let csrf_ok = match (&session, form.get("csrf")) {
        (Some(s), Some(c)) => {
            s.id == pending.session
                && crate::state::subtle_eq(st.csrf_for(&s.id).as_bytes(), c.as_bytes())
        }
        _ => false,
    };
    let Some(mut session) = session.filter(|_| csrf_ok) else {
        st.pending.insert(request_id, pending);
        return ApiError::page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The form does not belong to this browser session (CSRF check failed). Start the login again.",
        )
        .into_response();
    };
    let req = pending.request.clone();

    // The aggressive add-friend screen.
    if let Some(user) = pending.chosen_user {
        let changed = match form.get("decision") {
            Some("add_friend") => {
                let was = st.is_friend(user, ch.idx);
                st.friendships.insert((user, ch.idx), true);
                !was
            }
            _ => false,
        };
        let generation = st.consent(user, ch.idx, req.scopes);
        return finish(
            &st,
            ch,
            &req,
            user,
            generation,
            session.auth_time,
            "pwd",
            Some(changed),
        );
    }

    match form.get("decision") {
        // "Not you? Choose another test user": the browser forgets its single-sign-on user
        // and the same request's page comes back with no one preselected.
        Some("switch") => {
            session.user = None;
            session.auth_time = 0;
            let mut resp = consent_page(&st, ch, &req, &request_id, &session, None, None, None);
            st.pending.insert(request_id, pending);
            set_cookie(&mut resp, &st, &session);
            resp
        }
        Some("cancel") => deliver_error(
            &st,
            ch,
            &req.redirect_uri,
            req.response_mode,
            Some(req.state.clone()),
            CallbackError::AccessDenied,
            "The resource owner denied the request.",
        ),
        Some("allow") => {
            let user = form
                .get("user")
                .and_then(|id| st.user_by_id(id))
                .map(|u| u.idx);
            let Some(user) = user else {
                let resp = consent_page(
                    &st,
                    ch,
                    &req,
                    &request_id,
                    &session,
                    None,
                    Some(Note::ChooseUser),
                    None,
                );
                st.pending.insert(request_id, pending);
                return resp;
            };
            session.user = Some(user);
            session.auth_time = now;
            let mut friendship = None;
            if ch.cfg.bot_linked {
                match req.bot_prompt {
                    Some(BotPrompt::Normal) => {
                        let was = st.is_friend(user, ch.idx);
                        let add = form.get("add_friend").is_some();
                        if add && !was {
                            st.friendships.insert((user, ch.idx), true);
                        }
                        friendship = Some(add && !was);
                    }
                    Some(BotPrompt::Aggressive) if !st.is_friend(user, ch.idx) => {
                        let next_id = crypto::random_alnum(24);
                        let csrf = st.csrf_for(&session.id);
                        let oa = format!("{} (LINE Official Account)", ch.display_name);
                        let mut resp = pages::friend_page(
                            req.lang,
                            &oa,
                            &next_id,
                            &csrf,
                            &st.users[user as usize].ids[ch.idx as usize],
                        );
                        st.add_pending(
                            next_id,
                            Pending {
                                chosen_user: Some(user),
                                created: now,
                                ..pending.into_inner()
                            },
                        );
                        set_cookie(&mut resp, &st, &session);
                        return resp;
                    }
                    Some(BotPrompt::Aggressive) => friendship = Some(false),
                    None => {}
                }
            }
            let generation = st.consent(user, ch.idx, req.scopes);
            let mut resp = finish(&st, ch, &req, user, generation, now, "pwd", friendship);
            set_cookie(&mut resp, &st, &session);
            resp
        }
        _ => {
            st.pending.insert(request_id, pending);
            ApiError::page(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "Choose Allow or Cancel.",
            )
            .into_response()
        }
    }
}
