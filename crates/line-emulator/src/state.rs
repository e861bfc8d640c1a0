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
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use jsonwebtoken::DecodingKey;
use line_login::types::{ChannelId, UserId};
use line_login::wire::{IdTokenClaims, Jwk, JwkSet};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::{ChannelConfig, Config, DEFAULT_PROVIDER, UserConfig, derive_user_id};
use crate::crypto::{self, AccessClaims, TokenShape};
use crate::error::ApiError;
use crate::observe::Observer;
use crate::pages::Lang;

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

/// A configured channel with its derived, ready-to-use values.
pub(crate) struct Channel {
    pub idx: u32,
    pub cfg: ChannelConfig,
    pub web_only: bool,
    pub lowercase: bool,
    pub display_name: String,
    pub rate: Option<(u32, Mutex<(u64, u32)>)>,
    pub assertion_keys: Vec<(String, DecodingKey)>,
    pub short_lived: Mutex<VecDeque<String>>,
    /// Held while counting and issuing v2.1 tokens, so concurrent issues respect the quota.
    pub v21_issue: Mutex<()>,
}

impl Channel {
    /// Whether `redirect_uri` is registered: equal to a callback URL, or one with extra query
    /// parameters appended.
    pub fn redirect_allowed(&self, redirect_uri: &str) -> bool {
        self.cfg.callback_urls.iter().any(|cb| {
            if redirect_uri == cb {
                return true;
            }
            match redirect_uri.strip_prefix(cb.as_str()) {
                Some(rest) => {
                    let sep = if cb.contains('?') { '&' } else { '?' };
                    rest.starts_with(sep) && !rest.contains('#')
                }
                None => false,
            }
        })
    }

    /// Whether `secret` is this channel's secret (constant time).
    pub fn secret_ok(&self, secret: &str) -> bool {
        line_login::secret::ChannelSecret::new(secret.to_owned()).ct_eq(
            &line_login::secret::ChannelSecret::new(self.cfg.secret.clone()),
        )
    }
}

/// A configured test user, with its ID under each channel's provider.
pub(crate) struct User {
    pub idx: u32,
    pub cfg: UserConfig,
    /// The user's ID as seen by each channel (by channel index).
    pub ids: Vec<String>,
}

/// A user's consent to a channel.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub generation: u64,
    pub active: bool,
    pub scopes: u8,
    pub consented_at: i64,
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

/// Estimated bytes a map entry costs beyond its key's and value's own bytes: the hash table
/// slot's control byte and padding, the shard's spare capacity, allocator rounding of the two
/// or three heap blocks. A deliberately round figure; the README gives measured RSS.
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// The bytes a stored `key → Charged<V>` entry is charged: key, value, strings, overhead.
fn entry_bytes<V>(key: &str, heap: usize) -> usize {
    std::mem::size_of::<String>()
        + key.len()
        + std::mem::size_of::<Charged<V>>()
        + heap
        + ENTRY_OVERHEAD
}

/// Bytes charged against a store's meter, given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    bytes: usize,
    meter: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.meter.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A stored record and the bytes it is charged: however it leaves its map (removed, retained
/// away, cleared), its bytes leave the meter with it.
#[derive(Debug)]
pub(crate) struct Charged<T> {
    value: T,
    /// Insertion order (process-wide): ages are whole seconds, so records of one second are
    /// forgotten in the order they came.
    seq: u64,
    /// Held for its `Drop`.
    _charge: Charge,
}

/// The next [`Charged::seq`].
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

impl<T> Charged<T> {
    /// Charges `bytes` to `meter` for `value`.
    fn new(value: T, bytes: usize, meter: &Arc<AtomicUsize>) -> Self {
        meter.fetch_add(bytes, Ordering::Relaxed);
        Self {
            value,
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            _charge: Charge {
                bytes,
                meter: meter.clone(),
            },
        }
    }

    /// The record, its bytes given back.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Charged<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Charged<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// A store's bounds: entries and bytes.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_entries: usize,
    max_bytes: usize,
}

impl Bounds {
    /// Whether `entries` and `bytes` (plus an `incoming` record) fit.
    fn fit(&self, entries: usize, bytes: usize, incoming: usize) -> bool {
        entries < self.max_entries && bytes.saturating_add(incoming) <= self.max_bytes
    }
}

/// Makes room in a full store for a record of `incoming` bytes: drops expired records, then
/// forgets the oldest until the store is at 90% of both bounds. One caller at a time
/// (`lock`); a caller that finds another one at it goes on (the other is making room).
#[allow(clippy::too_many_arguments)]
fn make_room<V>(
    map: &DashMap<String, Charged<V>>,
    meter: &AtomicUsize,
    lock: &Mutex<()>,
    bounds: Bounds,
    incoming: usize,
    expired: impl Fn(&V) -> bool,
    age: impl Fn(&V) -> i64,
) {
    if bounds.fit(map.len(), meter.load(Ordering::Relaxed), incoming) {
        return;
    }
    let Some(_guard) = lock.try_lock() else {
        return;
    };
    map.retain(|_, v| !expired(v));
    if bounds.fit(map.len(), meter.load(Ordering::Relaxed), incoming) {
        return;
    }
    let target = Bounds {
        max_entries: bounds.max_entries / 10 * 9,
        max_bytes: bounds.max_bytes / 10 * 9,
    };
    let mut ages: Vec<(i64, u64, String)> = map
        .iter()
        .map(|e| (age(e.value()), e.value().seq, e.key().clone()))
        .collect();
    ages.sort_unstable();
    for (_, _, k) in ages {
        if target.fit(map.len(), meter.load(Ordering::Relaxed), incoming) {
            break;
        }
        map.remove(&k);
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

/// A browser session on the emulator origin, carried in a signed cookie.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub user: Option<u32>,
    pub auth_time: i64,
}

/// What a user access token turned out to be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccessCheck {
    Valid(AccessClaims),
    Expired,
    Revoked,
    Shape(TokenShape),
}

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
        Self {
            config,
            channels,
            channel_index,
            users,
            user_index,
            clock: Clock::new(),
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
            observer: Observer::new(journal_capacity),
            sso_epoch: AtomicU64::new(0),
        }
    }

    /// The channel with this ID.
    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channel_index
            .get(id)
            .and_then(|&i| self.channels.get(i as usize))
    }

    /// The channel by index.
    pub fn channel_at(&self, idx: u32) -> Option<&Channel> {
        self.channels.get(idx as usize)
    }

    /// The user by index.
    pub fn user_at(&self, idx: u32) -> Option<&User> {
        self.users.get(idx as usize)
    }

    /// The user with this ID (under any provider).
    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.user_index
            .get(id)
            .and_then(|&i| self.users.get(i as usize))
    }

    /// The next unique grant generation.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// The active grant generation covering `scopes`, if the user consented to all of them.
    pub fn active_grant(&self, user: u32, channel: u32) -> Option<Grant> {
        self.grants
            .get(&(user, channel))
            .filter(|g| g.active)
            .map(|g| g.clone())
    }

    /// Records consent (union of scopes); returns the grant's generation.
    pub fn consent(&self, user: u32, channel: u32, scopes: u8) -> u64 {
        let now = self.clock.now();
        let mut entry = self.grants.entry((user, channel)).or_insert_with(|| Grant {
            generation: 0,
            active: false,
            scopes: 0,
            consented_at: now,
        });
        if !entry.active {
            entry.generation = self.next_generation();
            entry.active = true;
            entry.scopes = 0;
        }
        entry.scopes |= scopes;
        entry.consented_at = now;
        entry.generation
    }

    /// Unlinks: every token of the grant dies, and the next login asks for consent again.
    /// Returns whether there was an active grant.
    pub fn unlink(&self, user: u32, channel: u32) -> bool {
        match self.grants.get_mut(&(user, channel)) {
            Some(mut g) if g.active => {
                g.active = false;
                g.generation = self.next_generation();
                true
            }
            _ => false,
        }
    }

    /// Whether the user is a friend of the channel's linked Official Account.
    pub fn is_friend(&self, user: u32, channel: u32) -> bool {
        let Some(ch) = self.channel_at(channel) else {
            return false;
        };
        if !ch.cfg.bot_linked {
            return false;
        }
        match self.friendships.get(&(user, channel)) {
            Some(f) => *f,
            None => self.user_at(user).is_some_and(|u| u.cfg.friend),
        }
    }

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
            iss: self.config.issuer.clone(),
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

    /// Enters a request concerning `channel`: records the channel for the journal, then
    /// counts the request and applies the channel's rate limit.
    pub fn admit(&self, channel: u32) -> Result<(), ApiError> {
        crate::observe::tag_channel(channel);
        let Some(ch) = self.channel_at(channel) else {
            return Ok(());
        };
        let Some((limit, window)) = &ch.rate else {
            return Ok(());
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut w = window.lock();
        if w.0 != now {
            *w = (now, 0);
        }
        if w.1 >= *limit {
            return Err(ApiError::RateLimited { retry_after: 1 });
        }
        w.1 += 1;
        Ok(())
    }

    /// Forgets every browser's single-sign-on user (the next authorize shows the login
    /// page); returns the new epoch.
    pub fn clear_sso(&self) -> u64 {
        self.sso_epoch.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The session cookie value for a session.
    pub fn session_cookie_value(&self, s: &Session) -> String {
        let user = s.user.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
        let epoch = self.sso_epoch.load(Ordering::Relaxed);
        let body = format!("{}.{}.{}.{epoch}", s.id, user, s.auth_time);
        let tag = crypto::hmac(&self.key, &[b"session|", body.as_bytes()]);
        format!("{body}.{}", crypto::b64(&tag[..16]))
    }

    /// Reads a session cookie value.
    pub fn parse_session(&self, value: &str) -> Option<Session> {
        let (body, tag) = value.rsplit_once('.')?;
        let tag = crypto::b64_decode(tag)?;
        let expect = crypto::hmac(&self.key, &[b"session|", body.as_bytes()]);
        if !subtle_eq(&tag, &expect[..16]) {
            return None;
        }
        let mut it = body.split('.');
        let id = it.next()?.to_owned();
        let user = match it.next()? {
            "-" => None,
            u => Some(
                u.parse::<u32>()
                    .ok()
                    .filter(|&i| (i as usize) < self.users.len())?,
            ),
        };
        let auth_time = it.next()?.parse().ok()?;
        let epoch: u64 = it.next()?.parse().ok()?;
        if epoch != self.sso_epoch.load(Ordering::Relaxed) {
            return Some(Session {
                id,
                user: None,
                auth_time: 0,
            });
        }
        Some(Session {
            id,
            user,
            auth_time,
        })
    }

    /// The CSRF value bound to a session.
    pub fn csrf_for(&self, session_id: &str) -> String {
        crypto::b64(&crypto::hmac(&self.key, &[b"csrf|", session_id.as_bytes()])[..16])
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

/// Why a channel access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelTokenError {
    Invalid,
    Expired,
    Revoked,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
