//! `GET /oauth2/v2.1/authorize` and the consent page's `POST /oauth2/v2.1/authorize/consent`.
//!
//! ## Parameter lengths
//! Every parameter the emulator keeps (in an outstanding code or a waiting consent page) or
//! echoes has a length cap, [`request::PARAM_LIMITS`] and [`request::MAX_REDIRECT_URI`], in bytes after
//! percent-decoding. LINE's authorize reference documents no length for any of them (it only
//! fixes `code_challenge` at 43 characters through PKCE), so the figures are this emulator's
//! choice: generous for real clients (a 43-character random `state`/`nonce` is the common
//! case; 2 KiB `state` leaves room for apps that pack a return URL into it, and a 2 KiB
//! callback URL fits every browser), and small enough that one record stays under about
//! 6 KiB. An over-long parameter is answered like any other malformed one: an
//! `INVALID_REQUEST` redirect to the callback (without echoing an over-long `state`), or, for
//! `redirect_uri`, the HTML 400 page of an unregistered callback URL. Before the caps, a
//! 60 KB `nonce` cost 60.8 KiB per outstanding code (11.9 GB at the 200 000-code cap).

mod consent;
mod request;
mod respond;

pub(crate) use consent::consent;
use consent::consent_page;
use request::{Failure, parse_request};
use respond::{CallbackError, deliver_error, finish};

use std::sync::atomic::Ordering;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cookie::{Cookie, SameSite};

use crate::Shared;
use crate::crypto;
use crate::error::ApiError;
use crate::extract::Query;
use crate::observe::{CallbackFault, ChannelTag};
use crate::pages::Note;
use crate::state::{AuthRequest, Channel, Inner, Pending, Session};

/// The emulator's session cookie on its own origin.
pub const SESSION_COOKIE: &str = "line_emulator_session";

/// The first valid session among the request's [`SESSION_COOKIE`]s (parsed with the `cookie`
/// crate; a forged or stale one is skipped).
fn session_from(st: &Inner, headers: &HeaderMap) -> Option<Session> {
    let values = headers.get_all(header::COOKIE).iter();
    let cookies = values.flat_map(|v| Cookie::split_parse(v.to_str().unwrap_or_default()));
    cookies
        .flatten()
        .find_map(|c| (c.name() == SESSION_COOKIE).then(|| st.parse_session(c.value()))?)
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
    let cookie = Cookie::build((SESSION_COOKIE, st.session_cookie_value(s)))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `GET /oauth2/v2.1/authorize`.
pub(crate) async fn authorize(
    State(st): State<Shared>,
    headers: HeaderMap,
    fault: Option<Extension<CallbackFault>>,
    Query(q): Query,
) -> Result<Response, ApiError> {
    let req = match parse_request(&st, &q, &headers) {
        Ok(r) => r,
        Err(Failure::Page(e)) => return Err(e),
        Err(Failure::Callback {
            channel,
            redirect_uri,
            mode,
            state,
            error,
            description,
        }) => {
            let Some(ch) = st.channel_at(channel) else {
                return Err(ApiError::page(
                    StatusCode::BAD_REQUEST,
                    "Bad Request",
                    "Unknown channel",
                )
                .in_channel(ChannelTag(channel)));
            };
            return ChannelTag(channel).on(Ok(deliver_error(
                &st,
                ch,
                &redirect_uri,
                mode,
                state,
                error,
                &description,
            )));
        }
    };
    let Some(ch) = st.channel_at(req.channel) else {
        return Err(
            ApiError::page(StatusCode::BAD_REQUEST, "Bad Request", "Unknown channel")
                .in_channel(ChannelTag(req.channel)),
        );
    };
    ChannelTag(ch.idx).on(answer(&st, &headers, fault, req, ch))
}

/// The authorization request's answer once it is valid: a callback fault, auto consent, single
/// sign-on, `prompt=none`'s error or the consent page.
fn answer(
    st: &Inner,
    headers: &HeaderMap,
    fault: Option<Extension<CallbackFault>>,
    req: AuthRequest,
    ch: &Channel,
) -> Result<Response, ApiError> {
    if let Some(Extension(CallbackFault(code))) = fault {
        let error = CallbackError::from_name(&code);
        return Ok(deliver_error(
            st,
            ch,
            &req.redirect_uri,
            req.response_mode,
            Some(req.state.clone()),
            error,
            error.description(),
        ));
    }
    let now = st.clock.now();
    let existing = session_from(st, headers);
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
            st,
            ch,
            &req,
            user,
            generation,
            session.auth_time,
            "lineautologin",
            friendship,
        );
        if existing.is_none() || session.user != existing.as_ref().and_then(|s| s.user) {
            set_cookie(&mut resp, st, &session);
        }
        return Ok(resp);
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
        return Ok(finish(
            st,
            ch,
            &req,
            user,
            g.generation,
            session.auth_time,
            "linesso",
            None,
        ));
    }
    if req.prompt_none {
        let description = if sso_user.is_none() || !fresh_enough {
            "The user is not logged in, and prompt=none forbids showing the login screen."
        } else if req.disable_auto_login {
            "disable_auto_login=true asks for the login screen, and prompt=none forbids showing it."
        } else {
            "The user has not consented to the requested permissions, and prompt=none forbids showing the consent screen."
        };
        return Ok(deliver_error(
            st,
            ch,
            &req.redirect_uri,
            req.response_mode,
            Some(req.state.clone()),
            CallbackError::LoginRequired,
            description,
        ));
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
    let mut resp = consent_page(st, ch, &req, &request_id, &session, preselect, None, note);
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
        set_cookie(&mut resp, st, &session);
    }
    Ok(resp)
}
