//! Account operations: the login flow, logout, unregister and unlink, and the user's access
//! token. The routes are thin wrappers around these; another Rust app can call them from its
//! own handlers.

use line_login::callback::{AuthErrorCode, CallbackOutcome, verify_callback};
use line_login::secret::{AccessToken, RefreshToken};
use line_login::types::Scope;
use line_login::wire::TokenResponse;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::crypto::{TokenKind, hash_id, random_id, user_binding};
use crate::error::{AppError, context};
use crate::session::{CurrentUser, LOGIN_TTL_SECS, new_session_id, session_key};
use crate::state::AppState;
use crate::store::{Account, DeauthReason, LoginWrite, NewSession, StoreError, StoredTokens};

/// Refresh tokens die this long after the grant (refreshing does not extend it).
pub const REFRESH_TOKEN_LIFETIME_MS: i64 = 90 * 24 * 3600 * 1000;
/// Tokens this close to expiry count as expired.
const EXPIRY_MARGIN_MS: i64 = 60_000;

/// What a login is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// A normal login.
    Login,
    /// A fresh login needed to unregister or unlink this account (no usable token was held).
    Reauth {
        /// Unregister or unlink.
        unlink: bool,
        /// The account that asked.
        account_id: String,
    },
}

/// The server-side record of a login in progress (sealed in the store).
#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    auth: line_login::authorize::PendingAuthorization,
    next: Option<String>,
    purpose: Purpose,
}

/// A started login: send the browser to `url` and set the pre-login cookie to `cookie_value`.
#[derive(Debug)]
pub struct StartedLogin {
    /// The authorization URL.
    pub url: Url,
    /// The pre-login cookie value (a random handle of the pending-login record).
    pub cookie_value: String,
}

/// Validates a post-login target: a relative path on this site, or nothing.
///
/// Accepts only `/` followed by a conservative set of characters; rejects `//host`, `/\host`,
/// backslashes, whitespace, control characters, encoded slashes or backslashes, and schemes.
pub fn safe_next(next: &str) -> Option<String> {
    if next.len() > 512 || !next.starts_with('/') || next.starts_with("//") {
        return None;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/?=&%+:@,;!".contains(c);
    if !next.chars().all(allowed) {
        return None;
    }
    let lower = next.to_ascii_lowercase();
    if lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%25")
        || lower.contains("%0")
        || lower.contains("%1")
    {
        return None;
    }
    Some(next.to_owned())
}

/// Starts a login: builds the authorization request (state, nonce, PKCE S256), stores the
/// pending login for 10 minutes, and writes the authorization-request log.
pub async fn start_login(
    state: &AppState,
    next: Option<&str>,
    purpose: Purpose,
    disable_auto_login: bool,
) -> Result<StartedLogin, AppError> {
    let options = &state.settings().login_options;
    let mut request = state
        .client()
        .authorization_request(state.settings().callback_url.clone())
        .scopes(options.scopes.clone())
        .ui_locales(options.ui_locales.iter().cloned())
        .disable_auto_login(disable_auto_login);
    if let Some(p) = options.prompt {
        request = request.prompt(p);
    }
    if let Some(b) = options.bot_prompt {
        request = request.bot_prompt(b);
    }
    let auth = request
        .build()
        .map_err(|e| AppError::Internal(context("authorization request", e)))?;
    let pending = PendingLogin {
        next: next.and_then(safe_next),
        purpose,
        auth,
    };
    let handle = random_id(32);
    let id_hash = hash_id(&handle);
    let json = serde_json::to_vec(&pending)
        .map_err(|e| AppError::Internal(context("encode pending login", e)))?;
    let sealed = state
        .inner
        .cipher
        .seal(TokenKind::PendingLogin, &id_hash, &json);
    let expires = state.now_ms() + LOGIN_TTL_SECS * 1000;
    state
        .store()
        .put_pending_login(&id_hash, &sealed, expires)
        .await?;
    state.inner.audit.authorization_request(&pending.auth.url);
    Ok(StartedLogin {
        url: pending.auth.url,
        cookie_value: handle,
    })
}

/// How a callback ended.
#[derive(Debug)]
pub enum LoginFinish {
    /// Logged in: set the session cookie and answer 303 to `redirect`.
    SignedIn {
        /// The new session id (cookie value).
        session_id: String,
        /// A relative path.
        redirect: String,
        /// The verified ID token's `email` claim (scope `email`, when LINE gave it).
        email: Option<String>,
    },
    /// A re-authentication for unregister/unlink completed and the job is enqueued.
    Deauthorizing {
        /// Unlink (`true`) or unregister.
        unlink: bool,
    },
}

/// Handles `/callback`: logs the response, checks the state against this browser's pending
/// login, exchanges the code, verifies the ID token (HS256, pinned, nonce), takes the display
/// name from it (or from the profile endpoint when the token has none), stores the account and tokens and starts a new session in one transaction.
pub async fn finish_login(
    state: &AppState,
    path_and_query: &str,
    query: &str,
    login_cookie: Option<&str>,
    old_session: Option<&str>,
) -> Result<LoginFinish, AppError> {
    state
        .inner
        .audit
        .authorization_response("GET", path_and_query);
    let Some(handle) = login_cookie else {
        return Err(AppError::StateMismatch);
    };
    let id_hash = hash_id(handle);
    let now = state.now_ms();
    let Some(sealed) = state.store().take_pending_login(&id_hash, now).await? else {
        return Err(AppError::StateMismatch);
    };
    let pending: PendingLogin = state
        .inner
        .cipher
        .open(TokenKind::PendingLogin, &id_hash, &sealed)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(AppError::StateMismatch)?;
    let response = match verify_callback(query, &pending.auth.state) {
        Err(e) => return Err(AppError::BadCallback(e.to_string())),
        Ok(CallbackOutcome::StateMismatch { .. }) => return Err(AppError::StateMismatch),
        Ok(CallbackOutcome::Failed(err)) => {
            return Err(match err.error {
                AuthErrorCode::AccessDenied => AppError::LoginCancelled,
                other => AppError::LoginFailed(other.as_str()),
            });
        }
        Ok(CallbackOutcome::Authorized(r)) => r,
    };
    let login = state
        .client()
        .complete_login(&pending.auth, &response)
        .await?;
    let claims = login
        .claims
        .ok_or_else(|| AppError::BadUpstream("no ID token".into()))?;
    if !pending.auth.scopes.contains(&Scope::OpenId) {
        return Err(AppError::Internal("openid scope missing".into()));
    }
    // With the `profile` scope the verified ID token carries the display name and picture, so
    // the profile endpoint is asked only when it does not: one LINE API call fewer per login.
    let (display_name, picture_url) = match &claims.name {
        Some(name) => (name.clone(), claims.picture.clone()),
        None => {
            let profile = state.client().profile(&login.tokens.access_token).await?;
            if profile.user_id.as_str() != claims.sub.as_str() {
                return Err(AppError::IdentityRejected(
                    "profile user id differs from the ID token subject".into(),
                ));
            }
            (profile.display_name, profile.picture_url)
        }
    };
    let issuer = claims.iss.clone();
    let sub = claims.sub.as_str().to_owned();
    let email = claims.email.clone();
    let now = state.now_ms();
    let tokens = seal_tokens(state, &issuer, &sub, &login.tokens, now, now);
    let session_id = new_session_id(now);
    let ttl_ms = i64::try_from(state.settings().session_ttl.as_millis()).unwrap_or(i64::MAX);
    let write = LoginWrite {
        new_account_id: format!("a_{}", random_id(16)),
        issuer,
        sub,
        display_name,
        picture_url,
        tokens,
        session: NewSession {
            id_hash: session_key(&session_id),
            csrf_token: random_id(32),
            expires_at: now.saturating_add(ttl_ms),
        },
        replaces_session: old_session.map(session_key),
        linked_event: state.new_event_id(),
        now,
    };
    if let Purpose::Reauth { account_id, .. } = &pending.purpose {
        let existing = state
            .store()
            .account_by_sub(&write.issuer, &write.sub)
            .await?;
        if existing.as_ref().map(|a| a.id.as_str()) != Some(account_id.as_str()) {
            return Err(AppError::AccountMismatch);
        }
    }
    let account = state.store().complete_login(&write).await?;
    if write.linked_event.is_some() {
        state.wake_webhooks();
    }
    match pending.purpose {
        Purpose::Login => Ok(LoginFinish::SignedIn {
            session_id,
            redirect: pending.next.unwrap_or_else(|| state.settings().path("/me")),
            email,
        }),
        Purpose::Reauth { unlink, .. } => {
            let reason = if unlink {
                DeauthReason::Unlink
            } else {
                DeauthReason::Unregister
            };
            enqueue(state, &account, reason).await?;
            Ok(LoginFinish::Deauthorizing { unlink })
        }
    }
}

fn seal_tokens(
    state: &AppState,
    issuer: &str,
    sub: &str,
    tokens: &TokenResponse,
    now: i64,
    refresh_issued_at: i64,
) -> StoredTokens {
    let binding = user_binding(issuer, sub);
    let expires_in = i64::try_from(tokens.expires_in).unwrap_or(i64::MAX / 2000);
    StoredTokens {
        access_ct: state.inner.cipher.seal_str(
            TokenKind::Access,
            &binding,
            tokens.access_token.secret(),
        ),
        refresh_ct: state.inner.cipher.seal_str(
            TokenKind::Refresh,
            &binding,
            tokens.refresh_token.secret(),
        ),
        access_expires_at: now.saturating_add(expires_in.saturating_mul(1000)),
        refresh_issued_at,
    }
}

/// Decrypted tokens of a user.
pub(crate) struct OpenTokens {
    pub(crate) access: AccessToken,
    pub(crate) refresh: RefreshToken,
    pub(crate) access_expires_at: i64,
    pub(crate) refresh_issued_at: i64,
}

impl OpenTokens {
    pub(crate) fn access_valid(&self, now: i64) -> bool {
        self.access_expires_at > now + EXPIRY_MARGIN_MS
    }

    pub(crate) fn refresh_alive(&self, now: i64) -> bool {
        self.refresh_issued_at
            .saturating_add(REFRESH_TOKEN_LIFETIME_MS)
            > now + EXPIRY_MARGIN_MS
    }
}

pub(crate) fn open_tokens(
    state: &AppState,
    issuer: &str,
    sub: &str,
    t: &StoredTokens,
) -> Option<OpenTokens> {
    let binding = user_binding(issuer, sub);
    let access = state
        .inner
        .cipher
        .open_str(TokenKind::Access, &binding, &t.access_ct);
    let refresh = state
        .inner
        .cipher
        .open_str(TokenKind::Refresh, &binding, &t.refresh_ct);
    match (access, refresh) {
        (Ok(a), Ok(r)) => Some(OpenTokens {
            access: AccessToken::new(a),
            refresh: RefreshToken::new(r),
            access_expires_at: t.access_expires_at,
            refresh_issued_at: t.refresh_issued_at,
        }),
        _ => {
            tracing::warn!(
                "stored tokens did not decrypt (wrong key or binding); treating them as missing"
            );
            None
        }
    }
}

/// Refreshes a user's tokens and returns the new sealed form.
pub(crate) async fn refresh_tokens(
    state: &AppState,
    issuer: &str,
    sub: &str,
    tokens: &OpenTokens,
) -> Result<(OpenTokens, StoredTokens), line_login::Error> {
    let fresh = state.client().refresh(&tokens.refresh).await?;
    let now = state.now_ms();
    let sealed = seal_tokens(state, issuer, sub, &fresh, now, tokens.refresh_issued_at);
    let open = OpenTokens {
        access: fresh.access_token,
        refresh: fresh.refresh_token,
        access_expires_at: sealed.access_expires_at,
        refresh_issued_at: sealed.refresh_issued_at,
    };
    Ok((open, sealed))
}

/// The user's access token, refreshed first when it has expired. `None` when no usable token
/// is held (the user must log in again).
pub async fn user_access_token(
    state: &AppState,
    account: &Account,
) -> Result<Option<AccessToken>, AppError> {
    let Some(stored) = state.store().tokens(&account.id).await? else {
        return Ok(None);
    };
    let Some(open) = open_tokens(state, &account.issuer, &account.sub, &stored) else {
        return Ok(None);
    };
    let now = state.now_ms();
    if open.access_valid(now) {
        return Ok(Some(open.access));
    }
    if !open.refresh_alive(now) {
        return Ok(None);
    }
    match refresh_tokens(state, &account.issuer, &account.sub, &open).await {
        Ok((fresh, sealed)) => {
            state.store().put_tokens(&account.id, &sealed, now).await?;
            Ok(Some(fresh.access))
        }
        Err(e) if e.is_invalid_grant() => {
            state.store().delete_tokens(&account.id).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Logs out: revokes the access token at LINE (best effort, never blocking the logout), forgets
/// the stored tokens and ends the session.
pub async fn logout(state: &AppState, user: &CurrentUser) -> Result<(), AppError> {
    let account = &user.account;
    if let Some(stored) = state.store().tokens(&account.id).await?
        && let Some(open) = open_tokens(state, &account.issuer, &account.sub, &stored)
    {
        let revoke = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            state.client().revoke(&open.access),
        );
        match revoke.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "revoke at logout failed (ignored)"),
            Err(_) => tracing::warn!("revoke at logout timed out (ignored)"),
        }
        state.store().delete_tokens(&account.id).await?;
    }
    state.store().delete_session(&user.session_hash).await?;
    if let Some(gw) = state.gateway() {
        gw.forget(&user.session_hash);
    }
    Ok(())
}

/// How an unregister / unlink request went.
#[derive(Debug)]
pub enum DeauthStart {
    /// Done locally; the deauthorization job is durable and the worker is on it.
    Enqueued {
        /// The job id.
        job_id: String,
    },
    /// No usable LINE token is held: send the browser through this fresh login first.
    NeedsReauth(StartedLogin),
}

/// Unregisters (deletes the account) or unlinks (keeps it, marked unlinked). In one
/// transaction: the tokens move into a durable deauthorization job, every session of the user
/// ends, and the account is deleted or unlinked. Without a usable token, a fresh LINE login
/// (bound to this purpose) comes first: deauthorization is never skipped.
pub async fn request_deauthorization(
    state: &AppState,
    account: &Account,
    reason: DeauthReason,
) -> Result<DeauthStart, AppError> {
    let now = state.now_ms();
    let usable = match state.store().tokens(&account.id).await? {
        Some(stored) => open_tokens(state, &account.issuer, &account.sub, &stored)
            .is_some_and(|t| t.access_valid(now) || t.refresh_alive(now)),
        None => false,
    };
    if usable {
        match enqueue(state, account, reason).await {
            Ok(job_id) => return Ok(DeauthStart::Enqueued { job_id }),
            // The tokens went away in between (logout elsewhere): log in again first.
            Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let purpose = Purpose::Reauth {
        unlink: reason == DeauthReason::Unlink,
        account_id: account.id.clone(),
    };
    Ok(DeauthStart::NeedsReauth(
        start_login(state, None, purpose, false).await?,
    ))
}

async fn enqueue(
    state: &AppState,
    account: &Account,
    reason: DeauthReason,
) -> Result<String, AppError> {
    let job_id = format!("j_{}", random_id(16));
    let event = state.new_event_id();
    match state
        .store()
        .deauthorize_account(
            &account.id,
            &job_id,
            reason,
            state.now_ms(),
            event.as_deref(),
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(AppError::NotFound),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(job = %job_id, reason = reason.as_str(), "deauthorization job committed");
    if let Some(gw) = state.gateway() {
        gw.forget_account(&account.id);
    }
    state.failpoint("unregister-after-commit");
    state.wake_worker();
    if event.is_some() {
        state.wake_webhooks();
    }
    Ok(job_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rd01_open_redirects_are_refused() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\t/evil.com",
            "/%09/evil.com",
            "/ /evil.com",
            "/\r/evil.com",
            "/./\\evil.com",
            "/%2F%2Fevil.com",
            "/%252F%252Fevil.com",
            "https:evil.com",
            "https://app.example@evil.com",
            "javascript:alert(1)",
            "data:text/html,x",
            "/%0d%0aSet-Cookie:x=y",
            "／／evil.com",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(10 * 1024))), None);
        assert_eq!(safe_next("/me").as_deref(), Some("/me"));
        assert_eq!(safe_next("/a/b?x=1&y=2").as_deref(), Some("/a/b?x=1&y=2"));
    }
}
