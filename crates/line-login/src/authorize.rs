//! Building the authorization request (`GET /oauth2/v2.1/authorize`).
//!
//! [`AuthorizationRequest`] carries every documented parameter. [`AuthorizationRequest::build`]
//! generates a fresh random `state`, `nonce` (when `openid` is requested) and PKCE verifier,
//! and returns a [`PendingAuthorization`]: the URL to redirect the browser to, plus the values
//! the caller must keep (server-side or in an encrypted cookie) until the callback arrives.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::pkce::{CodeChallenge, random_verifier};
use crate::secret::CodeVerifier;
use crate::types::{ChannelId, Nonce, Scope, Scopes, State};

/// LINE's authorization host.
pub const DEFAULT_AUTH_BASE_URL: &str = "https://access.line.me";
/// The authorization endpoint path.
pub const AUTHORIZE_PATH: &str = "/oauth2/v2.1/authorize";

/// Length of generated `state` values: 43 alphanumerics ≈ 256 bits.
pub const STATE_LEN: usize = 43;
/// Length of generated `nonce` values: 32 alphanumerics ≈ 190 bits (OIDC tools warn above 43).
pub const NONCE_LEN: usize = 32;

/// `prompt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    /// Always show the consent screen.
    Consent,
    /// Never show UI; the callback gets `LOGIN_REQUIRED`/`INTERACTION_REQUIRED` if that is impossible.
    None,
    /// Force re-authentication, even with an SSO session; disables auto login.
    Login,
}

impl Prompt {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::Consent => "consent",
            Prompt::None => "none",
            Prompt::Login => "login",
        }
    }
}

/// `bot_prompt`: offer to add the channel's linked LINE Official Account as a friend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BotPrompt {
    /// An add-friend option on the consent screen.
    Normal,
    /// A separate add-friend screen after the consent screen.
    Aggressive,
}

impl BotPrompt {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            BotPrompt::Normal => "normal",
            BotPrompt::Aggressive => "aggressive",
        }
    }
}

/// Errors in building an authorization request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// Neither `profile` nor `openid` was requested.
    #[error("the scope must include profile or openid")]
    MissingBaseScope,
    /// `email` was requested without `openid`.
    #[error("the email scope requires openid")]
    EmailWithoutOpenId,
    /// The base URL cannot carry a path (e.g. `mailto:`), or is not http(s).
    #[error("the authorization base URL must be an http or https URL")]
    BadBaseUrl,
    /// The redirect URI is not an absolute http(s) URL.
    #[error("the redirect URI must be an absolute http or https URL")]
    BadRedirectUri,
}

/// Everything the caller must keep until the callback: the state to compare, the nonce to
/// expect in the ID token, the PKCE verifier for the code exchange, and the redirect URI
/// (which must be sent again, identically, with the code).
///
/// Serializable so it can be stored in a pending-login record or an encrypted cookie. Its
/// `Debug` output never shows the verifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The URL to redirect the browser to.
    pub url: Url,
    /// The state sent; compare the callback's state with it.
    pub state: State,
    /// The nonce sent (when `openid` was requested); the ID token must echo it.
    pub nonce: Option<Nonce>,
    /// The PKCE verifier (`None` only if PKCE was switched off).
    pub code_verifier: Option<CodeVerifier>,
    /// The redirect URI sent.
    pub redirect_uri: Url,
    /// The `max_age` sent, if any; the ID token's `auth_time` is checked against it.
    pub max_age: Option<u64>,
    /// The scopes requested.
    pub scopes: Scopes,
}

/// A builder for the authorization request, with every documented parameter.
///
/// ```
/// use line_login::authorize::{AuthorizationRequest, Prompt};
/// use line_login::types::{ChannelId, Scope, Scopes};
///
/// let pending = AuthorizationRequest::new(
///     ChannelId::new("1234567890"),
///     "https://app.example/callback".parse().unwrap(),
/// )
/// .scopes(Scopes::new().with(Scope::Profile).with(Scope::OpenId))
/// .prompt(Prompt::Consent)
/// .build()
/// .unwrap();
/// assert!(pending.url.as_str().starts_with("https://access.line.me/oauth2/v2.1/authorize?"));
/// assert!(pending.url.as_str().contains("code_challenge_method=S256"));
/// ```
#[derive(Clone)]
pub struct AuthorizationRequest {
    base_url: Url,
    client_id: ChannelId,
    redirect_uri: Url,
    scopes: Scopes,
    state: Option<State>,
    nonce: Option<Nonce>,
    generate_nonce: bool,
    prompt: Option<Prompt>,
    max_age: Option<u64>,
    ui_locales: Vec<String>,
    bot_prompt: Option<BotPrompt>,
    initial_amr_display_qr: bool,
    switch_amr: Option<bool>,
    disable_auto_login: bool,
    disable_ios_auto_login: bool,
    pkce: bool,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("scopes", &self.scopes)
            .field("prompt", &self.prompt)
            .finish_non_exhaustive()
    }
}

impl AuthorizationRequest {
    /// A request for `profile openid` with PKCE, against `https://access.line.me`.
    pub fn new(client_id: ChannelId, redirect_uri: Url) -> Self {
        Self {
            base_url: default_auth_base(),
            client_id,
            redirect_uri,
            scopes: Scopes::new().with(Scope::Profile).with(Scope::OpenId),
            state: None,
            nonce: None,
            generate_nonce: true,
            prompt: None,
            max_age: None,
            ui_locales: Vec::new(),
            bot_prompt: None,
            initial_amr_display_qr: false,
            switch_amr: None,
            disable_auto_login: false,
            disable_ios_auto_login: false,
            pkce: true,
        }
    }

    /// The authorization base URL (scheme, host and optional path prefix), e.g. an emulator's.
    pub fn base_url(mut self, base: Url) -> Self {
        self.base_url = base;
        self
    }

    /// The scopes (default `profile openid`).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Use this state instead of a generated one (it must be random per login; alphanumeric).
    pub fn state(mut self, state: State) -> Self {
        self.state = Some(state);
        self
    }

    /// Use this nonce instead of a generated one.
    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Don't send a nonce at all (not recommended; the ID token then carries none).
    pub fn without_nonce(mut self) -> Self {
        self.nonce = None;
        self.generate_nonce = false;
        self
    }

    /// `prompt`.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// `max_age` in seconds; the ID token then carries `auth_time`, which is checked.
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// `ui_locales`: BCP 47 tags in order of preference.
    pub fn ui_locales<I, S>(mut self, locales: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ui_locales = locales.into_iter().map(Into::into).collect();
        self
    }

    /// `bot_prompt`.
    pub fn bot_prompt(mut self, bot_prompt: BotPrompt) -> Self {
        self.bot_prompt = Some(bot_prompt);
        self
    }

    /// `initial_amr_display=lineqr`: show QR-code login first.
    pub fn initial_amr_display_qr(mut self, on: bool) -> Self {
        self.initial_amr_display_qr = on;
        self
    }

    /// `switch_amr` (LINE's default is `true`; `false` hides the login-method switch).
    pub fn switch_amr(mut self, on: bool) -> Self {
        self.switch_amr = Some(on);
        self
    }

    /// `disable_auto_login=true`: the retry to offer after a state mismatch.
    pub fn disable_auto_login(mut self, on: bool) -> Self {
        self.disable_auto_login = on;
        self
    }

    /// `disable_ios_auto_login=true` (older, iOS only; prefer `disable_auto_login`).
    pub fn disable_ios_auto_login(mut self, on: bool) -> Self {
        self.disable_ios_auto_login = on;
        self
    }

    /// Switches PKCE off (it is on by default, with S256; LINE supports nothing else).
    pub fn without_pkce(mut self) -> Self {
        self.pkce = false;
        self
    }

    /// Validates the request, generates the random values, and builds the URL.
    pub fn build(self) -> Result<PendingAuthorization, AuthorizeError> {
        if !(self.scopes.contains(&Scope::Profile) || self.scopes.contains(&Scope::OpenId)) {
            return Err(AuthorizeError::MissingBaseScope);
        }
        if self.scopes.contains(&Scope::Email) && !self.scopes.contains(&Scope::OpenId) {
            return Err(AuthorizeError::EmailWithoutOpenId);
        }
        if !matches!(self.redirect_uri.scheme(), "http" | "https")
            || self.redirect_uri.cannot_be_a_base()
        {
            return Err(AuthorizeError::BadRedirectUri);
        }
        let mut url =
            endpoint_url(&self.base_url, AUTHORIZE_PATH).ok_or(AuthorizeError::BadBaseUrl)?;

        let state = self
            .state
            .unwrap_or_else(|| State::new(random_alphanumeric(STATE_LEN)));
        let nonce = match (
            self.nonce,
            self.generate_nonce && self.scopes.contains(&Scope::OpenId),
        ) {
            (Some(n), _) => Some(n),
            (None, true) => Some(Nonce::new(random_alphanumeric(NONCE_LEN))),
            (None, false) => None,
        };
        let code_verifier = self.pkce.then(|| random_verifier(64));

        let mut q = QueryBuilder::default();
        q.push("response_type", "code");
        q.push("client_id", self.client_id.as_str());
        q.push("redirect_uri", self.redirect_uri.as_str());
        q.push("state", state.as_str());
        q.push("scope", &self.scopes.to_wire());
        if let Some(n) = &nonce {
            q.push("nonce", n.as_str());
        }
        if let Some(p) = self.prompt {
            q.push("prompt", p.as_str());
        }
        if let Some(m) = self.max_age {
            q.push("max_age", &m.to_string());
        }
        if !self.ui_locales.is_empty() {
            q.push("ui_locales", &self.ui_locales.join(" "));
        }
        if let Some(b) = self.bot_prompt {
            q.push("bot_prompt", b.as_str());
        }
        if self.initial_amr_display_qr {
            q.push("initial_amr_display", "lineqr");
        }
        if let Some(s) = self.switch_amr {
            q.push("switch_amr", if s { "true" } else { "false" });
        }
        if self.disable_auto_login {
            q.push("disable_auto_login", "true");
        }
        if self.disable_ios_auto_login {
            q.push("disable_ios_auto_login", "true");
        }
        if let Some(v) = &code_verifier {
            q.push("code_challenge", CodeChallenge::s256(v).as_str());
            q.push("code_challenge_method", "S256");
        }
        url.set_query(Some(&q.finish()));

        Ok(PendingAuthorization {
            url,
            state,
            nonce,
            code_verifier,
            redirect_uri: self.redirect_uri,
            max_age: self.max_age,
            scopes: self.scopes,
        })
    }
}

fn default_auth_base() -> Url {
    // A constant, known-good URL.
    Url::parse(DEFAULT_AUTH_BASE_URL).unwrap_or_else(|_| unreachable!("constant URL parses"))
}

/// Joins a base URL (which may carry a path prefix) and an absolute endpoint path.
/// Returns `None` for URLs that are not http(s) or cannot be a base.
pub(crate) fn endpoint_url(base: &Url, path: &str) -> Option<Url> {
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return None;
    }
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}

/// Builds a query string with `%20` for spaces (LINE documents `%20` in `scope`).
#[derive(Default)]
struct QueryBuilder(String);

impl QueryBuilder {
    fn push(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(key);
        self.0.push('=');
        for chunk in url::form_urlencoded::byte_serialize(value.as_bytes()) {
            // byte_serialize writes a space as '+' and a literal '+' as "%2B".
            self.0.push_str(&chunk.replace('+', "%20"));
        }
    }

    fn finish(self) -> String {
        self.0
    }
}

/// `len` random characters of `[A-Za-z0-9]` from the OS-seeded CSPRNG.
pub(crate) fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn req() -> AuthorizationRequest {
        AuthorizationRequest::new(
            ChannelId::new("1234567890"),
            Url::parse("https://app.example/callback?x=1").unwrap(),
        )
    }

    fn params(url: &Url) -> HashMap<String, String> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn every_parameter_is_encoded() {
        let p = req()
            .scopes(Scopes::parse("profile openid email"))
            .prompt(Prompt::Consent)
            .max_age(600)
            .ui_locales(["ja-JP", "en-US"])
            .bot_prompt(BotPrompt::Aggressive)
            .initial_amr_display_qr(true)
            .switch_amr(false)
            .disable_auto_login(true)
            .disable_ios_auto_login(true)
            .build()
            .unwrap();
        let q = params(&p.url);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "1234567890");
        assert_eq!(q["redirect_uri"], "https://app.example/callback?x=1");
        assert_eq!(q["state"], p.state.as_str());
        assert_eq!(q["scope"], "profile openid email");
        assert_eq!(q["nonce"], p.nonce.as_ref().unwrap().as_str());
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["max_age"], "600");
        assert_eq!(q["ui_locales"], "ja-JP en-US");
        assert_eq!(q["bot_prompt"], "aggressive");
        assert_eq!(q["initial_amr_display"], "lineqr");
        assert_eq!(q["switch_amr"], "false");
        assert_eq!(q["disable_auto_login"], "true");
        assert_eq!(q["disable_ios_auto_login"], "true");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(
            q["code_challenge"],
            CodeChallenge::s256(p.code_verifier.as_ref().unwrap()).as_str()
        );
        assert!(p.url.as_str().contains("scope=profile%20openid%20email"));
        assert!(!p.url.as_str().contains('+'));
    }

    #[test]
    fn scope_rules() {
        assert_eq!(
            req().scopes(Scopes::parse("email")).build().unwrap_err(),
            AuthorizeError::MissingBaseScope
        );
        assert_eq!(
            req()
                .scopes(Scopes::parse("profile email"))
                .build()
                .unwrap_err(),
            AuthorizeError::EmailWithoutOpenId
        );
        let p = req().scopes(Scopes::parse("profile")).build().unwrap();
        assert!(p.nonce.is_none(), "no openid, no nonce");
    }

    #[test]
    fn base_url_with_prefix() {
        let p = req()
            .base_url(Url::parse("http://127.0.0.1:9000/line/").unwrap())
            .build()
            .unwrap();
        assert!(
            p.url
                .as_str()
                .starts_with("http://127.0.0.1:9000/line/oauth2/v2.1/authorize?")
        );
        assert_eq!(
            req()
                .base_url(Url::parse("mailto:x@y").unwrap())
                .build()
                .unwrap_err(),
            AuthorizeError::BadBaseUrl
        );
    }

    #[test]
    fn random_values_are_unique_and_well_formed() {
        let mut states = HashSet::new();
        for _ in 0..2000 {
            let p = req().build().unwrap();
            assert_eq!(p.state.as_str().len(), STATE_LEN);
            assert!(p.state.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(p.nonce.as_ref().unwrap().as_str().len() <= 43);
            assert!(crate::pkce::is_valid_verifier(
                p.code_verifier.as_ref().unwrap().secret()
            ));
            assert!(states.insert(p.state.as_str().to_owned()));
        }
    }

    #[test]
    fn pending_debug_hides_verifier() {
        let p = req().build().unwrap();
        let dbg = format!("{p:?}");
        assert!(!dbg.contains(p.code_verifier.as_ref().unwrap().secret()));
    }
}
