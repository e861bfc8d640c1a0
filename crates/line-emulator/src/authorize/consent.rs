//! The consent page: the request's permissions, the test users (the browser's own one
//! preselected, with "Not you?"), the add-friend option, and its answer
//! (`POST /oauth2/v2.1/authorize/consent`: allow, cancel, switch user, add friend).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::*;
use crate::Shared;
use crate::crypto;
use crate::error::ApiError;
use crate::extract::PageForm;
use crate::observe::ChannelTag;
use crate::pages::{self, ConsentPage, Note, UserChoice};
use crate::params::Params;
use crate::state::{
    AuthRequest, BotPrompt, Channel, Charged, Inner, Pending, SCOPE_EMAIL, Session, scope_names,
};

#[allow(clippy::too_many_arguments)]
pub(super) fn consent_page(
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
    PageForm(form): PageForm,
) -> Result<Response, ApiError> {
    let expired = || {
        ApiError::page(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "This login request has expired or was already answered. Start the login again from the app.",
        )
    };
    let Some(request_id) = form.get("request") else {
        return Err(expired());
    };
    let Some((request_id, pending)) = st.pending.remove(request_id) else {
        return Err(expired());
    };
    let now = st.clock.now();
    if pending.created + crate::state::PENDING_TTL <= now {
        return Err(expired());
    }
    let Some(ch) = st.channel_at(pending.request.channel) else {
        return Err(expired());
    };
    ChannelTag(ch.idx).on(answer(&st, &headers, &form, request_id, pending, ch, now))
}

/// The consent page's answer once its waiting request is found.
fn answer(
    st: &Inner,
    headers: &HeaderMap,
    form: &Params,
    request_id: String,
    pending: Charged<Pending>,
    ch: &Channel,
    now: i64,
) -> Result<Response, ApiError> {
    let session = session_from(st, headers);
    let csrf_ok = match (&session, form.get("csrf")) {
        (Some(s), Some(c)) => {
            s.id == pending.session
                && crate::state::subtle_eq(st.csrf_for(&s.id).as_bytes(), c.as_bytes())
        }
        _ => false,
    };
    let Some(mut session) = session.filter(|_| csrf_ok) else {
        st.pending.insert(request_id, pending);
        return Err(ApiError::page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The form does not belong to this browser session (CSRF check failed). Start the login again.",
        ));
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
        return Ok(finish(
            st,
            ch,
            &req,
            user,
            generation,
            session.auth_time,
            "pwd",
            Some(changed),
        ));
    }

    Ok(match form.get("decision") {
        // "Not you? Choose another test user": the browser forgets its single-sign-on user
        // and the same request's page comes back with no one preselected.
        Some("switch") => {
            session.user = None;
            session.auth_time = 0;
            let mut resp = consent_page(st, ch, &req, &request_id, &session, None, None, None);
            st.pending.insert(request_id, pending);
            set_cookie(&mut resp, st, &session);
            resp
        }
        Some("cancel") => deliver_error(
            st,
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
                    st,
                    ch,
                    &req,
                    &request_id,
                    &session,
                    None,
                    Some(Note::ChooseUser),
                    None,
                );
                st.pending.insert(request_id, pending);
                return Ok(resp);
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
                        set_cookie(&mut resp, st, &session);
                        return Ok(resp);
                    }
                    Some(BotPrompt::Aggressive) => friendship = Some(false),
                    None => {}
                }
            }
            let generation = st.consent(user, ch.idx, req.scopes);
            let mut resp = finish(st, ch, &req, user, generation, now, "pwd", friendship);
            set_cookie(&mut resp, st, &session);
            resp
        }
        _ => {
            st.pending.insert(request_id, pending);
            return Err(ApiError::page(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "Choose Allow or Cancel.",
            ));
        }
    })
}
