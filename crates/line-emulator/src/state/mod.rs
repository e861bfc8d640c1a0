//! The emulator's in-memory state: configuration-derived channels and users, and the
//! dynamic grants, codes and tokens, in sharded maps so no request waits on a global lock.
//!
//! User access tokens carry their channel, user, scopes, expiry, grant generation and family
//! inside their (client-opaque) HMAC-protected payload, so issuing one stores nothing; only
//! revocations are stored. Revoking a grant (unlink, deauthorize) bumps its generation, which
//! kills every access and refresh token minted under the old generation at once.
//!
//! ## Memory bounded by bytes
//! Outstanding authorization codes and unanswered consent pages are the two stores a client
//! fills just by calling authorize, so each is bounded twice: by count ([`MAX_CODES`],
//! [`MAX_PENDING`]) and by bytes (`codes_budget_bytes`, default 64 MiB, and
//! `pending_budget_bytes`, default 16 MiB, in the configuration). Every stored record is a
//! [`Charged`] value: its estimated footprint (key, record, its strings, a per-entry overhead
//! for the hash table slot) is added to the store's meter when it goes in and given back by
//! `Drop` however it leaves (exchange, sweep, eviction, reset), so code that removes records
//! directly (the token endpoint) keeps the meter right without knowing about it.
//!
//! When a new record would pass either bound, expired records are dropped first, then the
//! oldest are forgotten until the store is at 90% of both bounds (the count cap always
//! behaved this way). Forgetting rather than refusing is deliberate: LINE never refuses an
//! authorization request for lack of room, and a forgotten code answers the token endpoint
//! exactly as an unknown or expired one does (`invalid_grant`), which every client already
//! handles, while a load test that abandons codes keeps running instead of failing every
//! login until the abandoned ones expire. The parameter length caps in `authorize.rs` bound
//! one record (about 6 KiB at most), so a store never holds more than its budget plus one
//! record per concurrent request.
//!
//! Measured (debug build, `linelogin emulator --auto-consent`, 20 000 authorize requests with
//! a 60 000-byte `nonce`, RSS from `/proc/PID/status`): see the figures in
//! `crates/line-emulator/README.md`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use jsonwebtoken::DecodingKey;
use line_login::wire::{Jwk, JwkSet};
use p256::ecdsa::SigningKey;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::{Config, DEFAULT_PROVIDER, derive_user_id};
use crate::crypto::{self};
use crate::observe::Observer;

mod budget;
mod directory;
mod grants;
mod tokens;

pub(crate) use budget::*;
pub(crate) use directory::*;
pub(crate) use grants::*;
pub(crate) use tokens::*;

/// Scope bit: `profile`.
pub(crate) const SCOPE_PROFILE: u8 = 1;
/// Scope bit: `openid`.
pub(crate) const SCOPE_OPENID: u8 = 2;
/// Scope bit: `email`.
pub(crate) const SCOPE_EMAIL: u8 = 4;

/// Authorization code lifetime (10 minutes).
pub(crate) const CODE_TTL: i64 = 600;
/// User access token lifetime (30 days).
pub(crate) const ACCESS_TTL: i64 = 30 * 24 * 3600;
/// Refresh token lifetime, anchored to the grant's first token (90 days).
pub(crate) const REFRESH_TTL: i64 = 90 * 24 * 3600;
/// ID token lifetime (1 hour).
pub(crate) const ID_TOKEN_TTL: i64 = 3600;
/// Stateless channel token lifetime (15 minutes).
pub(crate) const STATELESS_TTL: i64 = 900;
/// Short-lived channel token lifetime (30 days).
pub(crate) const SHORT_LIVED_TTL: i64 = 30 * 24 * 3600;
/// Valid v2.1 / short-lived channel tokens per channel.
pub(crate) const CHANNEL_TOKEN_QUOTA: usize = 30;
/// How long an unanswered consent page stays usable.
pub(crate) const PENDING_TTL: i64 = 1800;
/// The most unanswered consent pages kept; beyond it the oldest tenth is forgotten, so a
/// flood of abandoned authorize requests cannot grow memory without bound.
pub(crate) const MAX_PENDING: usize = 20_000;
/// The most unused authorization codes kept; beyond it the oldest tenth is forgotten (a
/// flood of authorize requests whose codes are never exchanged stays bounded).
pub(crate) const MAX_CODES: usize = 200_000;
/// The most refresh tokens kept per grant (user × channel); issuing more forgets the
/// oldest, so long load tests (one refresh token per login, 90 days each) stay bounded.
pub(crate) const MAX_REFRESH_PER_GRANT: usize = 10_000;

/// The shared state behind [`crate::Emulator`].
pub(crate) struct Inner {
    pub config: Config,
    pub channels: Vec<Channel>,
    pub channel_index: HashMap<String, u32>,
    pub users: Vec<User>,
    pub user_index: HashMap<String, u32>,
    pub clock: Clock,
    pub key: [u8; 32],
    es256: SigningKey,
    es256_header: String,
    pub jwks: JwkSet,
    pub base_url: RwLock<Option<String>>,
    pub grants: DashMap<(u32, u32), Grant>,
    generation: AtomicU64,
    pub codes: DashMap<String, Charged<CodeRecord>>,
    /// Bytes charged by `codes`.
    pub code_bytes: Arc<AtomicUsize>,
    code_room: Mutex<()>,
    pub refresh: DashMap<String, RefreshRecord>,
    /// Refresh tokens per grant, oldest first (may name tokens already gone).
    refresh_order: DashMap<(u32, u32), VecDeque<String>>,
    pub revoked_access: DashMap<[u8; 16], i64>,
    pub revoked_families: DashMap<u64, i64>,
    /// Families whose refresh token died with a revoked access token (their other access
    /// tokens live on).
    pub refresh_dead_families: DashMap<u64, i64>,
    family: AtomicU64,
    pub channel_tokens: DashMap<String, ChannelTokenRecord>,
    pub short_lived: DashMap<String, ShortLivedRecord>,
    pub friendships: DashMap<(u32, u32), bool>,
    pub pending: DashMap<String, Charged<Pending>>,
    /// Bytes charged by `pending`.
    pub pending_bytes: Arc<AtomicUsize>,
    pending_room: Mutex<()>,
    pub auto_next: AtomicUsize,
    pub observer: Observer,
    /// Bumped by `POST /_emulator/sso/clear`: a session cookie signed under an older epoch
    /// keeps its id (and the CSRF of its open consent pages) but loses its user.
    sso_epoch: AtomicU64,
}

/// The ES256 signing key: random, or derived from `key_seed`.
fn es256_key(seed: Option<&str>) -> SigningKey {
    let mut counter = 0u32;
    loop {
        let bytes: [u8; 32] = match seed {
            Some(s) => Sha256::digest(format!("line-emulator es256 {counter} {s}")).into(),
            None => crypto::random_bytes::<32>(),
        };
        if let Ok(k) = SigningKey::from_slice(&bytes) {
            return k;
        }
        counter += 1;
    }
}

/// The HMAC key for access and channel tokens and session cookies: random, or derived from
/// `key_seed`.
fn server_key(seed: Option<&str>) -> [u8; 32] {
    match seed {
        Some(s) => Sha256::digest(format!("line-emulator hmac {s}")).into(),
        None => crypto::random_bytes::<32>(),
    }
}

impl Inner {
    pub fn new(config: Config) -> Self {
        let channels: Vec<Channel> = config
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| Channel {
                idx: i as u32,
                web_only: !c.app_types.iter().any(|t| t == "mobile"),
                lowercase: c.lowercase_errors.unwrap_or(config.lowercase_errors),
                display_name: c
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("LINE Login channel {}", c.id)),
                rate: c
                    .rate_limit_per_second
                    .map(|n| (n, Mutex::new((0u64, 0u32)))),
                assertion_keys: c
                    .assertion_keys
                    .iter()
                    .filter_map(|k| {
                        DecodingKey::from_rsa_components(&k.jwk.n, &k.jwk.e)
                            .ok()
                            .map(|d| (k.kid.clone(), d))
                    })
                    .collect(),
                short_lived: Mutex::new(VecDeque::new()),
                v21_issue: Mutex::new(()),
                cfg: c.clone(),
            })
            .collect();
        let channel_index = channels.iter().map(|c| (c.cfg.id.clone(), c.idx)).collect();
        let users: Vec<User> = config
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| User {
                idx: i as u32,
                ids: channels
                    .iter()
                    .map(|c| {
                        if c.cfg.provider == DEFAULT_PROVIDER {
                            u.id.clone()
                        } else {
                            derive_user_id(&format!("{}|{}", c.cfg.provider, u.id))
                        }
                    })
                    .collect(),
                cfg: u.clone(),
            })
            .collect();
        let mut user_index = HashMap::new();
        for u in &users {
            user_index.insert(u.cfg.id.clone(), u.idx);
            for id in &u.ids {
                user_index.insert(id.clone(), u.idx);
            }
        }
        let es256 = es256_key(config.key_seed.as_deref());
        let key = server_key(config.key_seed.as_deref());
        let point = es256.verifying_key().to_encoded_point(false);
        let (x, y) = (
            point.x().map(|x| x.to_vec()).unwrap_or_default(),
            point.y().map(|y| y.to_vec()).unwrap_or_default(),
        );
        let kid = crypto::hex(&Sha256::digest([x.as_slice(), y.as_slice()].concat()));
        let es256_header =
            crypto::b64(format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#).as_bytes());
        let jwks = JwkSet {
            keys: vec![Jwk {
                kty: "EC".into(),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
                kid: Some(kid),
                crv: Some("P-256".into()),
                x: Some(crypto::b64(&x)),
                y: Some(crypto::b64(&y)),
            }],
        };
        let journal_capacity = config.journal_capacity;
        let clock = Clock::new();
        let observer = Observer::new(journal_capacity, Arc::clone(clock.base()));
        Self {
            config,
            channels,
            channel_index,
            users,
            user_index,
            clock,
            key,
            es256,
            es256_header,
            jwks,
            base_url: RwLock::new(None),
            grants: DashMap::new(),
            generation: AtomicU64::new(1),
            codes: DashMap::new(),
            code_bytes: Arc::new(AtomicUsize::new(0)),
            code_room: Mutex::new(()),
            refresh: DashMap::new(),
            refresh_order: DashMap::new(),
            revoked_access: DashMap::new(),
            revoked_families: DashMap::new(),
            refresh_dead_families: DashMap::new(),
            family: AtomicU64::new(1),
            channel_tokens: DashMap::new(),
            short_lived: DashMap::new(),
            friendships: DashMap::new(),
            pending: DashMap::new(),
            pending_bytes: Arc::new(AtomicUsize::new(0)),
            pending_room: Mutex::new(()),
            auto_next: AtomicUsize::new(0),
            observer,
            sso_epoch: AtomicU64::new(0),
        }
    }

    /// The base URL other documents point at.
    pub fn base_url(&self, host: Option<&str>) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        if let Some(u) = self.base_url.read().as_ref() {
            return u.clone();
        }
        match host {
            Some(h) => format!("http://{h}"),
            None => format!("http://{}", self.config.listen),
        }
    }

    /// Forgets every grant, code, token, session answer, journal entry, stat, fault and the
    /// clock offset. Configuration, keys and user IDs stay.
    pub fn reset(&self) {
        self.grants.clear();
        self.codes.clear();
        self.refresh.clear();
        self.refresh_order.clear();
        self.revoked_access.clear();
        self.revoked_families.clear();
        self.refresh_dead_families.clear();
        self.channel_tokens.clear();
        self.short_lived.clear();
        for c in &self.channels {
            c.short_lived.lock().clear();
            if let Some((_, w)) = &c.rate {
                *w.lock() = (0, 0);
            }
        }
        self.friendships.clear();
        self.pending.clear();
        self.auto_next.store(0, Ordering::Relaxed);
        self.clock.set_offset(0);
        self.observer.reset();
    }

    /// Drops expired or dead records so long load tests do not grow memory without bound.
    pub fn sweep(&self) {
        let now = self.clock.now();
        self.codes.retain(|_, c| c.exp > now);
        self.pending.retain(|_, p| p.created + PENDING_TTL > now);
        self.revoked_access.retain(|_, exp| *exp > now);
        self.revoked_families.retain(|_, exp| *exp > now);
        self.refresh_dead_families.retain(|_, exp| *exp > now);
        self.channel_tokens.retain(|_, t| t.exp > now);
        self.short_lived.retain(|_, t| t.exp > now);
        let dead: Vec<String> = self
            .refresh
            .iter()
            .filter(|r| !self.refresh_usable(r.value()))
            .map(|r| r.key().clone())
            .collect();
        for k in dead {
            self.refresh.remove(&k);
        }
        // A family's dead-refresh mark only matters while its refresh token is stored.
        let live: std::collections::HashSet<u64> =
            self.refresh.iter().map(|r| r.value().family).collect();
        self.refresh_dead_families.retain(|f, _| live.contains(f));
        self.refresh_order.retain(|_, order| {
            order.retain(|t| self.refresh.contains_key(t));
            !order.is_empty()
        });
    }
}

/// Constant-time equality (for equal lengths).
pub(crate) fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::pages::Lang;

    fn inner() -> Inner {
        Inner::new(Config::default_demo())
    }

    fn request() -> AuthRequest {
        AuthRequest {
            channel: 0,
            redirect_uri: "http://127.0.0.1:8080/callback".into(),
            state: "s".into(),
            scopes: SCOPE_PROFILE,
            email_requested: false,
            nonce: None,
            code_challenge: None,
            max_age: None,
            prompt_login: false,
            prompt_consent: false,
            prompt_none: false,
            bot_prompt: None,
            response_mode: ResponseMode::Query,
            disable_auto_login: false,
            lang: Lang::En,
        }
    }

    #[test]
    fn pending_consent_pages_are_bounded_and_the_oldest_go_first() {
        let st = inner();
        let now = st.clock.now();
        for i in 0..MAX_PENDING + 50 {
            st.add_pending(
                format!("p{i}"),
                Pending {
                    request: request(),
                    session: "x".into(),
                    // Older ids are older pages.
                    created: now - 1000 + (i / 1000) as i64,
                    chosen_user: None,
                },
            );
        }
        assert!(st.pending.len() <= MAX_PENDING, "{}", st.pending.len());
        assert!(
            !st.pending.contains_key("p0"),
            "the oldest page is forgotten"
        );
        let newest = format!("p{}", MAX_PENDING + 49);
        assert!(st.pending.contains_key(&newest), "the newest page is kept");
    }

    #[test]
    fn outstanding_codes_are_bounded_and_the_oldest_go_first() {
        let st = inner();
        let now = st.clock.now();
        let rec = |exp| CodeRecord {
            channel: 0,
            user: 0,
            redirect_uri: "http://127.0.0.1:8080/callback".into(),
            scopes: SCOPE_PROFILE,
            nonce: None,
            code_challenge: None,
            auth_time: None,
            amr: "pwd",
            exp,
            generation: 1,
        };
        let first = st.issue_code(rec(now + 1));
        for _ in 0..MAX_CODES + 10 {
            st.issue_code(rec(now + CODE_TTL));
        }
        let last = st.issue_code(rec(now + CODE_TTL + 1));
        assert!(st.codes.len() <= MAX_CODES, "{}", st.codes.len());
        assert!(!st.codes.contains_key(&first));
        assert!(st.codes.contains_key(&last));
    }

    #[test]
    fn refresh_tokens_per_grant_are_bounded_and_swept_with_their_marks() {
        let st = inner();
        let rec = |family| RefreshRecord {
            channel: 0,
            user: 0,
            scopes: SCOPE_PROFILE,
            exp: st.clock.now() + REFRESH_TTL,
            generation: st.consent(0, 0, SCOPE_PROFILE),
            family,
            last_access: [0; 16],
        };
        for i in 0..MAX_REFRESH_PER_GRANT + 5 {
            st.add_refresh(format!("r{i}"), rec(i as u64));
        }
        assert_eq!(st.refresh.len(), MAX_REFRESH_PER_GRANT);
        assert!(!st.refresh.contains_key("r0"));
        assert!(
            st.refresh
                .contains_key(&format!("r{}", MAX_REFRESH_PER_GRANT + 4))
        );
        // Another grant has its own budget.
        st.add_refresh(
            "other".into(),
            RefreshRecord {
                user: 1,
                generation: st.consent(1, 0, SCOPE_PROFILE),
                ..rec(99_999)
            },
        );
        assert!(st.refresh.contains_key("other"));

        // A dead-refresh mark disappears once the sweep has dropped its refresh token.
        let far = st.clock.now() + REFRESH_TTL;
        st.refresh_dead_families.insert(7, far);
        st.refresh_dead_families.insert(123_456_789, far);
        st.sweep();
        assert!(!st.refresh.contains_key("r7"));
        assert!(st.refresh_dead_families.is_empty());
        // r7 swept, "other" kept.
        assert_eq!(st.refresh.len(), MAX_REFRESH_PER_GRANT);
        assert!(st.refresh.contains_key("other"));
    }

    #[test]
    fn byte_meters_follow_every_way_a_record_leaves() {
        let st = inner();
        let now = st.clock.now();
        let rec = |exp| CodeRecord {
            channel: 0,
            user: 0,
            redirect_uri: "http://127.0.0.1:8080/callback".into(),
            scopes: SCOPE_PROFILE,
            nonce: Some("n".repeat(500)),
            code_challenge: None,
            auth_time: None,
            amr: "pwd",
            exp,
            generation: 1,
        };
        let exchanged = st.issue_code(rec(now + CODE_TTL));
        st.issue_code(rec(now - 1));
        st.issue_code(rec(now + CODE_TTL));
        let used = st.code_bytes.load(Ordering::Relaxed);
        assert!(used >= 3 * 500, "{used}");
        // Exchanged (the token endpoint removes the record directly).
        let (_, r) = st.codes.remove(&exchanged).unwrap();
        drop(r);
        assert!(st.code_bytes.load(Ordering::Relaxed) < used);
        // Swept, then reset.
        st.sweep();
        assert_eq!(st.codes.len(), 1);
        st.reset();
        assert_eq!(st.code_bytes.load(Ordering::Relaxed), 0);

        let page = || Pending {
            request: request(),
            session: "x".into(),
            created: now,
            chosen_user: None,
        };
        st.add_pending("a".into(), page());
        st.add_pending("b".into(), page());
        assert!(st.pending_bytes.load(Ordering::Relaxed) > 0);
        let (_, p) = st.pending.remove("a").unwrap();
        let p = p.into_inner();
        assert_eq!(p.session, "x");
        st.pending.clear();
        assert_eq!(st.pending_bytes.load(Ordering::Relaxed), 0);
    }
}
