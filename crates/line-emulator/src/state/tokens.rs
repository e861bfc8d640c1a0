//! Codes and tokens: authorization codes and the requests they come from (consent pages
//! waiting for an answer), user access, refresh and ID tokens, and channel access tokens.

use std::sync::atomic::Ordering;

use line_login::types::{ChannelId, UserId};
use line_login::wire::IdTokenClaims;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;

use super::*;
use crate::crypto::{self, AccessClaims, TokenShape};
use crate::pages::Lang;

/// The wire form of scope bits, without `email` (LINE never lists it).
pub(crate) fn scope_wire(bits: u8) -> &'static str {
    match (bits & SCOPE_PROFILE != 0, bits & SCOPE_OPENID != 0) {
        (true, true) => "profile openid",
        (true, false) => "profile",
        (false, true) => "openid",
        (false, false) => "",
    }
}

/// Human-readable scope names, including `email`.
pub(crate) fn scope_names(bits: u8) -> Vec<&'static str> {
    let mut v = Vec::new();
    if bits & SCOPE_PROFILE != 0 {
        v.push("profile");
    }
    if bits & SCOPE_OPENID != 0 {
        v.push("openid");
    }
    if bits & SCOPE_EMAIL != 0 {
        v.push("email");
    }
    v
}

/// An issued authorization code and everything it is bound to.
#[derive(Debug, Clone)]
pub(crate) struct CodeRecord {
    pub channel: u32,
    pub user: u32,
    pub redirect_uri: String,
    pub scopes: u8,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: &'static str,
    pub exp: i64,
    pub generation: u64,
}

impl CodeRecord {
    /// Heap bytes held by the record's strings.
    fn heap_bytes(&self) -> usize {
        self.redirect_uri.capacity()
            + self.nonce.as_ref().map_or(0, String::capacity)
            + self.code_challenge.as_ref().map_or(0, String::capacity)
    }
}

/// A refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshRecord {
    pub channel: u32,
    pub user: u32,
    pub scopes: u8,
    pub exp: i64,
    pub generation: u64,
    pub family: u64,
    pub last_access: [u8; 16],
}

/// A channel access token v2.1.
#[derive(Debug, Clone)]
pub(crate) struct ChannelTokenRecord {
    pub channel: u32,
    pub key_id: String,
    pub exp: i64,
}

/// A short-lived channel access token.
#[derive(Debug, Clone)]
pub(crate) struct ShortLivedRecord {
    pub channel: u32,
    pub exp: i64,
}

/// The validated parameters of an authorization request.
#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    pub channel: u32,
    pub redirect_uri: String,
    pub state: String,
    pub scopes: u8,
    pub email_requested: bool,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub max_age: Option<i64>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub prompt_none: bool,
    pub bot_prompt: Option<BotPrompt>,
    pub response_mode: ResponseMode,
    /// `disable_auto_login=true`: no silent single sign-on; the consent page confirms the user.
    pub disable_auto_login: bool,
    /// The pages' language (`ui_locales`, else `Accept-Language`).
    pub lang: Lang,
}

/// `bot_prompt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BotPrompt {
    Normal,
    Aggressive,
}

/// `response_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    FormPost,
    QueryJwt,
    FormPostJwt,
}

/// A consent page waiting for its answer.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub request: AuthRequest,
    pub session: String,
    pub created: i64,
    /// Set once the user allowed: the aggressive add-friend screen is showing.
    pub chosen_user: Option<u32>,
}

impl Pending {
    /// Heap bytes held by the page's strings.
    fn heap_bytes(&self) -> usize {
        let r = &self.request;
        self.session.capacity()
            + r.redirect_uri.capacity()
            + r.state.capacity()
            + r.nonce.as_ref().map_or(0, String::capacity)
            + r.code_challenge.as_ref().map_or(0, String::capacity)
    }
}

/// What a user access token turned out to be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccessCheck {
    Valid(AccessClaims),
    Expired,
    Revoked,
    Shape(TokenShape),
}

impl Inner {
    /// Issues an authorization code. When [`MAX_CODES`] codes or `codes_budget_bytes` are
    /// outstanding, expired codes go first, then the oldest (see the module doc).
    pub fn issue_code(&self, rec: CodeRecord) -> String {
        let code = crypto::random_alnum(20);
        let bytes = entry_bytes::<CodeRecord>(&code, rec.heap_bytes());
        let now = self.clock.now();
        make_room(
            &self.codes,
            &self.code_bytes,
            &self.code_room,
            Bounds {
                max_entries: MAX_CODES,
                max_bytes: self.config.codes_budget_bytes,
            },
            bytes,
            |c| c.exp <= now,
            |c| c.exp,
        );
        self.codes
            .insert(code.clone(), Charged::new(rec, bytes, &self.code_bytes));
        code
    }

    /// Stores a refresh token, forgetting the grant's oldest beyond [`MAX_REFRESH_PER_GRANT`].
    pub fn add_refresh(&self, token: String, rec: RefreshRecord) {
        let grant = (rec.user, rec.channel);
        self.refresh.insert(token.clone(), rec);
        let evicted: Vec<String> = {
            let mut order = self.refresh_order.entry(grant).or_default();
            order.push_back(token);
            let excess = order.len().saturating_sub(MAX_REFRESH_PER_GRANT);
            order.drain(..excess).collect()
        };
        for old in evicted {
            self.refresh.remove(&old);
        }
    }

    /// Stores an unanswered consent page. When [`MAX_PENDING`] pages or
    /// `pending_budget_bytes` are waiting, expired pages go first, then the oldest.
    pub fn add_pending(&self, id: String, pending: Pending) {
        let bytes = entry_bytes::<Pending>(&id, pending.heap_bytes());
        let now = self.clock.now();
        make_room(
            &self.pending,
            &self.pending_bytes,
            &self.pending_room,
            Bounds {
                max_entries: MAX_PENDING,
                max_bytes: self.config.pending_budget_bytes,
            },
            bytes,
            |p| p.created + PENDING_TTL <= now,
            |p| p.created,
        );
        self.pending
            .insert(id, Charged::new(pending, bytes, &self.pending_bytes));
    }

    /// Starts a new token family (one per code exchange).
    pub fn next_family(&self) -> u64 {
        self.family.fetch_add(1, Ordering::Relaxed)
    }

    /// Mints a user access token.
    pub fn mint_access(
        &self,
        channel: u32,
        user: u32,
        scopes: u8,
        generation: u64,
        family: u64,
    ) -> (String, AccessClaims) {
        let claims = AccessClaims {
            channel,
            user,
            scopes,
            exp: self.clock.now() + ACCESS_TTL,
            generation,
            family,
            id: crypto::random_bytes::<16>(),
        };
        (claims.mint(&self.key), claims)
    }

    /// Checks a user access token: shape, revocation (token, family, grant), expiry.
    pub fn check_access(&self, token: &str) -> AccessCheck {
        let claims = match crypto::parse_access_token(&self.key, token) {
            Ok(c) => c,
            Err(shape) => return AccessCheck::Shape(shape),
        };
        if self.revoked_access.contains_key(&claims.id)
            || self.revoked_families.contains_key(&claims.family)
        {
            return AccessCheck::Revoked;
        }
        let grant_ok = self
            .grants
            .get(&(claims.user, claims.channel))
            .is_some_and(|g| g.active && g.generation == claims.generation);
        if !grant_ok {
            return AccessCheck::Revoked;
        }
        if claims.exp <= self.clock.now() {
            return AccessCheck::Expired;
        }
        AccessCheck::Valid(claims)
    }

    /// Whether a refresh token record is still usable.
    pub fn refresh_usable(&self, rec: &RefreshRecord) -> bool {
        rec.exp > self.clock.now()
            && !self.revoked_families.contains_key(&rec.family)
            && !self.refresh_dead_families.contains_key(&rec.family)
            && self
                .grants
                .get(&(rec.user, rec.channel))
                .is_some_and(|g| g.active && g.generation == rec.generation)
    }

    /// The ID token for a login.
    #[allow(clippy::too_many_arguments)]
    pub fn id_token(
        &self,
        channel: &Channel,
        user: &User,
        scopes: u8,
        nonce: Option<String>,
        auth_time: Option<i64>,
        amr: &str,
        es256: bool,
    ) -> String {
        let now = self.clock.now();
        let profile = scopes & SCOPE_PROFILE != 0;
        let claims = IdTokenClaims {
            iss: self.config.issuer.to_string(),
            sub: UserId::new(user.ids[channel.idx as usize].clone()),
            aud: ChannelId::new(channel.cfg.id.clone()),
            exp: (now + ID_TOKEN_TTL).max(0) as u64,
            iat: now.max(0) as u64,
            auth_time: auth_time.map(|t| t.max(0) as u64),
            nonce,
            amr: Some(vec![amr.to_owned()]),
            name: profile.then(|| user.cfg.display_name.clone()),
            picture: if profile {
                user.cfg.picture_url.clone()
            } else {
                None
            },
            email: if scopes & SCOPE_EMAIL != 0 {
                user.cfg.email.clone()
            } else {
                None
            },
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        if es256 {
            let body = format!("{}.{}", self.es256_header, crypto::b64(&payload));
            let sig: Signature = self.es256.sign(body.as_bytes());
            format!("{body}.{}", crypto::b64(&sig.to_bytes()))
        } else {
            crypto::sign_hs256(
                crypto::JWT_HS256_HEADER,
                &payload,
                channel.cfg.secret.as_bytes(),
            )
        }
    }

    /// Verifies an ES256 token signed by this emulator; returns the payload bytes.
    pub fn verify_es256(&self, token: &str) -> Option<Vec<u8>> {
        use p256::ecdsa::signature::Verifier;
        let (h, p, s) = crypto::split_jws(token)?;
        let header: serde_json::Value = serde_json::from_slice(&crypto::b64_decode(h)?).ok()?;
        let kid = header.get("kid")?.as_str()?;
        if self.jwks.keys.first()?.kid.as_deref() != Some(kid) {
            return None;
        }
        let sig = Signature::from_slice(&crypto::b64_decode(s)?).ok()?;
        self.es256
            .verifying_key()
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .ok()?;
        crypto::b64_decode(p)
    }

    /// Mints a stateless channel access token (900 s), or a v2.1 one with a key ID.
    pub fn mint_channel_token(&self, channel: u32, kind: &str, exp: i64, key_id: &str) -> String {
        let ch = self
            .channel_at(channel)
            .map(|c| c.cfg.id.as_str())
            .unwrap_or("");
        let payload = serde_json::json!({
            "iss": "line-emulator",
            "sub": ch,
            "typ": kind,
            "kid": key_id,
            "iat": self.clock.now(),
            "exp": exp,
            "jti": crypto::random_hex(8),
        });
        crypto::sign_hs256(
            crypto::JWT_HS256_HEADER,
            payload.to_string().as_bytes(),
            &self.key,
        )
    }

    /// Checks a channel access token (stateless or v2.1): `(channel, exp, kind)`.
    pub fn check_channel_token(&self, token: &str) -> Result<(u32, i64, bool), ChannelTokenError> {
        let payload = crypto::verify_hs256(token, &self.key).ok_or(ChannelTokenError::Invalid)?;
        let v: serde_json::Value =
            serde_json::from_slice(&payload).map_err(|_| ChannelTokenError::Invalid)?;
        let ch = v
            .get("sub")
            .and_then(|s| s.as_str())
            .and_then(|s| self.channel(s))
            .ok_or(ChannelTokenError::Invalid)?;
        let exp = v
            .get("exp")
            .and_then(|e| e.as_i64())
            .ok_or(ChannelTokenError::Invalid)?;
        let v21 = v.get("typ").and_then(|t| t.as_str()) == Some("v2.1");
        // Expiry first: the sweep forgets expired v2.1 tokens, which must not then read as
        // revoked.
        if exp <= self.clock.now() {
            return Err(ChannelTokenError::Expired);
        }
        if v21 && !self.channel_tokens.contains_key(token) {
            return Err(ChannelTokenError::Revoked);
        }
        Ok((ch.idx, exp, v21))
    }
}

/// Why a channel access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelTokenError {
    Invalid,
    Expired,
    Revoked,
}
