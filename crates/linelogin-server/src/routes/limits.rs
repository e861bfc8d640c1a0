//! Anonymous requests must not amplify: the per-client inbound limit on `/login` and
//! `/callback`, the cap on pending logins, and exact counters of refused requests.
//!
//! ## Why
//!
//! An attack run found that 1,000 anonymous `/login` requests from one client were all
//! accepted (826/s), each creating a pending login (a database row for 10 minutes) and a
//! guideline-log line; and that bogus callbacks each wrote an application-log line (catalogue
//! case LOG-05, "log flooding").
//!
//! ## The per-client limit ([`InboundLimiter`], the [`Inbound`] extractor)
//!
//! `/login` and `/callback` take the [`Inbound`] extractor first, so a refused request costs
//! no pending login, no guideline-log record and no database access: it is answered `429`
//! with `Retry-After` (a small HTML page) and counted. Keys are client addresses: an IPv4
//! address, or the /64 of an IPv6 address (one host usually owns a whole /64). The rate is a
//! GCRA from the `governor` crate (already the outbound limiter of `line-login`; keyed, no
//! background task, a few hundred nanoseconds per check), `[inbound] per_client_per_second`
//! (default 10) with `per_client_burst` (default 40): a person needs two requests per login.
//!
//! The client address is the peer address of the connection, read from the request extension
//! [`axum::extract::ConnectInfo<SocketAddr>`] (so the server must be served with
//! `into_make_service_with_connect_info::<SocketAddr>()`, or insert that extension itself).
//! A request without it is not limited (a router mounted in an app that does not provide
//! it), and a warning says so once. When the peer is one of `[inbound] trusted_proxies`, the
//! client is read from `[inbound] client_ip_header` instead (`X-Forwarded-For`: the right-most
//! address that is not a trusted proxy); the header of any other peer is ignored, so a client
//! cannot choose its own key.
//!
//! **Loopback clients are not limited by default** (`limit_loopback = false`): the load-test
//! runner drives ~7,000 logins/s from 127.0.0.1 (`bench/flows.sh`, `linelogin loadtest`), and
//! a reverse proxy on the same host that is not listed in `trusted_proxies` would otherwise
//! make all users one client and lock them out together. Behind a local proxy, list it in
//! `trusted_proxies` and set `client_ip_header`: the forwarded clients are then limited.
//!
//! Memory is bounded: the limiter holds at most `[inbound] max_clients` keys (default
//! 100,000, about 60 bytes each in the map). Past half of it, every 1,024th check forgets the
//! keys whose state has decayed to "idle" (`retain_recent`); if the map still overflows (a
//! spread-out flood of fresh addresses), it is replaced by an empty one, which is counted
//! ([`InboundLimiter::resets`]) and logged.
//!
//! ## Pending logins ([`PendingLogins`])
//!
//! A pending login lives at most [`crate::session::LOGIN_TTL_SECS`] (10 minutes: the store
//! ignores it afterwards and the worker's purge removes it). At most `[inbound]
//! max_pending_logins` (default 100,000) unexpired ones may exist store-wide; beyond that
//! `/login` answers `503` with `Retry-After` and starts nothing. Counting rows on every login
//! would cost a scan, so the gauge keeps an estimate in memory: it counts the logins this
//! process started since the last exact count, and recounts from the store
//! ([`crate::store::Store::count_pending_logins`]) only when the estimate reaches the cap (at
//! most once a second; requests arriving meanwhile wait for that count instead of being
//! refused, so a load test never sees a 503 from it). In one process the cap is exact (callbacks only lower the real
//! number); with several processes on one database each may add up to the cap before its
//! next recount. Under the load test (pending logins are consumed within milliseconds) the
//! recount runs about once per 100,000 logins.
//!
//! ## Counters and LOG-05 ([`Rejections`])
//!
//! Refused callbacks (bad state, malformed, …), CSRF refusals and limited requests are
//! routine and anyone can cause them at any rate, so they are logged at `debug` only (see
//! [`crate::error::AppError`]); each is counted exactly in an atomic counter per reason
//! ([`Rejections::callback`], public for a metrics exporter:
//! `linelogin_callback_rejected_total{reason}`), and at most one `info` summary line with the
//! totals is written per 10 seconds. The guideline log keeps one (capped, see
//! `line_audit::escape`) record per callback that passed the per-client limit.
//!
//! ## Measured (`tests/it/inbound.rs`, `log05_…`)
//!
//! `LOG05_CALLBACKS=50000 cargo test -p linelogin-server --test it log05 -- --nocapture`
//! (debug build, 2 shared cores; 16 keep-alive connections from 127.0.0.1 to the router
//! served with `into_make_service_with_connect_info`, `GET /` timed every 5 ms from another
//! thread):
//!
//! | case | time | guideline log | counted | `GET /` p50 / p99 |
//! |---|---|---|---|---|
//! | one client, limited (defaults, `limit_loopback = true`) | 11.7 s | 13,104 bytes (156 records) | 156 `state_mismatch` + 49,844 `too_many_requests` | 0.69 / 9.5 ms |
//! | not limited (loopback default, or a flood from many addresses) | 11.2 s | 4,200,000 bytes (84 per record) | 50,000 `state_mismatch` | 1.04 / 11.1 ms |
//!
//! That is 4,300 callbacks/s, 258,000 a minute, five times LOG-05's 50,000 a minute. At
//! LOG-05's rate a spread-out flood writes 4.2 MB a minute of guideline log (a junk query
//! costs at most ~2.1 KB a record, so at most 105 MB a minute), and no application-log line
//! per request; a single client's flood writes 10 records a second at most.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderMap;
use http::request::Parts;

use crate::config::InboundConfig;
use crate::error::AppError;
use crate::state::AppState;

type Keyed = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>;

/// The per-client inbound rate limit (see the [module docs](self)).
pub struct InboundLimiter {
    config: InboundConfig,
    quota: Option<Quota>,
    clock: DefaultClock,
    limiter: RwLock<Arc<Keyed>>,
    checks: AtomicU64,
    limited: AtomicU64,
    resets: AtomicU64,
    warned_no_peer: AtomicBool,
}

impl std::fmt::Debug for InboundLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundLimiter")
            .field("config", &self.config)
            .field("limited", &self.limited())
            .finish_non_exhaustive()
    }
}

impl InboundLimiter {
    /// A limiter for `[inbound]`.
    pub fn new(config: &InboundConfig) -> Self {
        let quota = NonZeroU32::new(config.per_client_per_second).map(|rate| {
            Quota::per_second(rate).allow_burst(
                NonZeroU32::new(config.per_client_burst.max(1)).unwrap_or(NonZeroU32::MIN),
            )
        });
        let clock = DefaultClock::default();
        let limiter = RwLock::new(Arc::new(Self::fresh(quota, &clock)));
        Self {
            config: config.clone(),
            quota,
            clock,
            limiter,
            checks: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            warned_no_peer: AtomicBool::new(false),
        }
    }

    fn fresh(quota: Option<Quota>, clock: &DefaultClock) -> Keyed {
        // With the limit off the map stays empty; any quota will do.
        let quota = quota.unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
        RateLimiter::new(quota, HashMapStateStore::default(), clock.clone())
    }

    /// Requests refused so far.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// How often the key map overflowed `max_clients` and was replaced by an empty one.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }

    /// Clients currently remembered.
    pub fn clients(&self) -> usize {
        self.current().len()
    }

    fn current(&self) -> Arc<Keyed> {
        match self.limiter.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The key of a request's client, or `None` when it is not limited (limit off, no peer
    /// address, or a loopback client with `limit_loopback` off).
    pub fn client_key(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        self.quota?;
        let Some(peer) = peer else {
            if !self.warned_no_peer.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "requests carry no peer address (ConnectInfo<SocketAddr>): the per-client \
                     inbound limit is inactive; serve with into_make_service_with_connect_info"
                );
            }
            return None;
        };
        let peer_ip = canonical(peer.ip());
        let client = if self
            .config
            .trusted_proxies
            .iter()
            .any(|p| canonical(*p) == peer_ip)
        {
            self.forwarded_client(headers).unwrap_or(peer_ip)
        } else {
            peer_ip
        };
        if client.is_loopback() && !self.config.limit_loopback {
            return None;
        }
        Some(key_of(client))
    }

    /// The client a trusted proxy names in `client_ip_header`.
    fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let name = self.config.client_ip_header.as_deref()?;
        // Several header lines count as one comma-separated list, in order.
        let mut addrs: Vec<IpAddr> = Vec::new();
        for value in headers.get_all(name) {
            let value = value.to_str().ok()?;
            for item in value.split(',') {
                addrs.push(canonical(parse_addr(item.trim())?));
            }
        }
        // Right to left: the first address that is not one of our proxies is the client.
        let trusted = |ip: &IpAddr| {
            self.config
                .trusted_proxies
                .iter()
                .any(|p| canonical(*p) == *ip)
        };
        addrs
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(addrs.first())
            .copied()
    }

    /// Checks one request of `key`: `Err(retry_after)` when refused.
    pub fn check_key(&self, key: IpAddr) -> Result<(), Duration> {
        let limiter = self.current();
        let result = limiter.check_key(&key);
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        let max = self.config.max_clients.max(1);
        if (n.is_multiple_of(1024) && limiter.len() > max / 2) || limiter.len() > max {
            self.shrink(&limiter, max);
        }
        match result {
            Ok(()) => Ok(()),
            Err(not_until) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                Err(not_until.wait_time_from(self.clock.now()))
            }
        }
    }

    fn shrink(&self, limiter: &Arc<Keyed>, max: usize) {
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() <= max {
            return;
        }
        let resets = self.resets.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            clients = limiter.len(),
            max_clients = max,
            resets,
            "inbound limiter: too many active clients; starting over with an empty map"
        );
        let fresh = Arc::new(Self::fresh(self.quota, &self.clock));
        match self.limiter.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// Checks a request: `Err` is the 429 to answer.
    pub fn check(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Result<(), AppError> {
        let Some(key) = self.client_key(peer, headers) else {
            return Ok(());
        };
        self.check_key(key)
            .map_err(|wait| AppError::TooManyRequests {
                retry_after: wait.max(Duration::from_secs(1)),
            })
    }
}

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The limiter's key of an address: IPv4 as is, IPv6 as its /64.
fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// An address from a forwarding header item: `1.2.3.4`, `1.2.3.4:5`, `::1`, `[::1]:5`.
fn parse_addr(item: &str) -> Option<IpAddr> {
    item.parse::<IpAddr>()
        .ok()
        .or_else(|| item.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Extractor that applies the per-client inbound limit: put it first in a handler's
/// arguments; it rejects with `429` and `Retry-After` and counts the refusal.
#[derive(Debug, Clone, Copy)]
pub struct Inbound;

impl FromRequestParts<AppState> for Inbound {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        match state.limits().inbound.check(peer, &parts.headers) {
            Ok(()) => Ok(Inbound),
            Err(e) => {
                state
                    .limits()
                    .rejections
                    .record(parts.uri.path(), e.reason(), state.now_ms());
                Err(e)
            }
        }
    }
}

/// The store-wide cap on pending logins (see the [module docs](self)).
#[derive(Debug)]
pub struct PendingLogins {
    cap: u64,
    /// The last exact count plus the logins admitted since.
    estimate: AtomicU64,
    /// Over the cap by the estimate, requests take turns here; one recounts.
    recount: tokio::sync::Mutex<i64>,
    refused: AtomicU64,
}

impl PendingLogins {
    /// A gauge with this cap (0: no cap).
    pub fn new(cap: u64) -> Self {
        Self {
            cap,
            estimate: AtomicU64::new(0),
            recount: tokio::sync::Mutex::new(i64::MIN),
            refused: AtomicU64::new(0),
        }
    }

    /// Logins refused because the cap was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes one place if the estimate is below the cap.
    fn take(&self) -> bool {
        if self.estimate.fetch_add(1, Ordering::Relaxed) < self.cap {
            return true;
        }
        self.estimate.fetch_sub(1, Ordering::Relaxed);
        false
    }

    /// Admits one new pending login, or refuses it (`503`) when the cap is reached.
    pub async fn admit(&self, state: &AppState) -> Result<(), AppError> {
        if self.cap == 0 || self.take() {
            return Ok(());
        }
        // Over the cap by the estimate. One request at a time recounts (at most once a
        // second); the others wait for its count rather than being refused meanwhile.
        let mut last_recount = self.recount.lock().await;
        if self.take() {
            return Ok(());
        }
        let now = state.now_ms();
        if now.saturating_sub(*last_recount) >= 1_000 {
            *last_recount = now;
            let n = state.store().count_pending_logins(now).await?;
            self.estimate.store(n, Ordering::Relaxed);
            if self.take() {
                return Ok(());
            }
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(AppError::PendingLoginsFull)
    }
}

/// The reasons a callback is refused for, in the order of [`Rejections::callback`].
pub const CALLBACK_REASONS: [&str; 12] = [
    "state_mismatch",
    "bad_callback",
    "login_cancelled",
    "login_failed",
    "identity_rejected",
    "code_rejected",
    "line_unavailable",
    "bad_upstream",
    "busy",
    "too_many_requests",
    "internal",
    "other",
];

/// Exact counters of refused requests, per reason, and the rate-limited summary log line.
#[derive(Debug, Default)]
pub struct Rejections {
    callback: [AtomicU64; CALLBACK_REASONS.len()],
    login_limited: AtomicU64,
    csrf: AtomicU64,
    last_summary_ms: AtomicI64,
}

/// At most one summary line per this many milliseconds.
const SUMMARY_EVERY_MS: i64 = 10_000;

impl Rejections {
    /// Counts a refusal of a request to `path` for `reason` ([`AppError::reason`]), and
    /// writes the summary line when the last one is old enough.
    pub fn record(&self, path: &str, reason: &str, now_ms: i64) {
        if path == "/callback" {
            let i = CALLBACK_REASONS
                .iter()
                .position(|r| *r == reason)
                .unwrap_or(CALLBACK_REASONS.len() - 1);
            self.callback[i].fetch_add(1, Ordering::Relaxed);
        } else if reason == "csrf" {
            self.csrf.fetch_add(1, Ordering::Relaxed);
        } else if reason == "too_many_requests" {
            self.login_limited.fetch_add(1, Ordering::Relaxed);
        }
        let last = self.last_summary_ms.load(Ordering::Relaxed);
        if (last == 0 || now_ms.saturating_sub(last) >= SUMMARY_EVERY_MS)
            && self
                .last_summary_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let callbacks: Vec<String> = self
                .callback()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| format!("{r}={n}"))
                .collect();
            tracing::info!(
                callbacks = %callbacks.join(" "),
                login_limited = self.login_limited.load(Ordering::Relaxed),
                csrf = self.csrf.load(Ordering::Relaxed),
                "refused requests so far (exact totals; one line per 10 s at most)"
            );
        }
    }

    /// Refused callbacks so far, per reason ([`CALLBACK_REASONS`]):
    /// `linelogin_callback_rejected_total{reason}`.
    pub fn callback(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CALLBACK_REASONS
            .iter()
            .zip(&self.callback)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
    }

    /// Refused callbacks so far for one reason.
    pub fn callback_count(&self, reason: &str) -> u64 {
        self.callback()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    }

    /// `/login` requests refused by the per-client limit.
    pub fn login_limited(&self) -> u64 {
        self.login_limited.load(Ordering::Relaxed)
    }

    /// State-changing requests refused by the CSRF checks.
    pub fn csrf(&self) -> u64 {
        self.csrf.load(Ordering::Relaxed)
    }
}

/// Everything in this module, as the state holds it.
#[derive(Debug)]
pub struct Limits {
    /// The per-client inbound limit.
    pub inbound: InboundLimiter,
    /// The cap on pending logins.
    pub pending: PendingLogins,
    /// Counters of refused requests.
    pub rejections: Rejections,
}

impl Limits {
    /// The limits of `[inbound]`.
    pub fn new(config: &InboundConfig) -> Self {
        Self {
            inbound: InboundLimiter::new(config),
            pending: PendingLogins::new(config.max_pending_logins),
            rejections: Rejections::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(f: impl FnOnce(&mut InboundConfig)) -> InboundLimiter {
        let mut c = InboundConfig::default();
        f(&mut c);
        InboundLimiter::new(&c)
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn keys_loopback_proxies_and_ipv6_prefixes() {
        let h = HeaderMap::new();
        let l = limiter(|_| {});
        assert_eq!(
            l.client_key(peer("127.0.0.1:5"), &h),
            None,
            "loopback exempt"
        );
        assert_eq!(l.client_key(peer("[::1]:5"), &h), None);
        assert_eq!(l.client_key(None, &h), None, "no peer address");
        assert_eq!(
            l.client_key(peer("[2001:db8:1:2:aaaa::1]:5"), &h),
            Some("2001:db8:1:2::".parse().unwrap()),
            "an IPv6 client is its /64"
        );
        assert_eq!(
            l.client_key(peer("[::ffff:192.0.2.7]:5"), &h),
            Some("192.0.2.7".parse().unwrap())
        );
        let l = limiter(|c| c.limit_loopback = true);
        assert_eq!(
            l.client_key(peer("127.0.0.1:5"), &h),
            Some("127.0.0.1".parse().unwrap())
        );
        let l = limiter(|c| c.per_client_per_second = 0);
        assert_eq!(l.client_key(peer("192.0.2.1:5"), &h), None, "limit off");
    }

    #[test]
    fn forwarded_header_is_believed_only_from_trusted_proxies() {
        let l = limiter(|c| {
            c.trusted_proxies = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
            c.client_ip_header = Some("x-forwarded-for".into());
        });
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 198.51.100.9, 10.0.0.2".parse().unwrap(),
        );
        assert_eq!(
            l.client_key(peer("10.0.0.1:5"), &h),
            Some("198.51.100.9".parse().unwrap()),
            "right-most untrusted address"
        );
        assert_eq!(
            l.client_key(peer("192.0.2.1:5"), &h),
            Some("192.0.2.1".parse().unwrap()),
            "an untrusted peer's header is ignored"
        );
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(
            l.client_key(peer("10.0.0.1:5"), &h),
            Some("10.0.0.1".parse().unwrap()),
            "unparsable: the proxy itself"
        );
    }

    #[test]
    fn memory_stays_bounded_under_many_clients() {
        let l = limiter(|c| c.max_clients = 1000);
        for i in 0..20_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = l.check_key(ip);
            assert!(l.clients() <= 1001, "{} clients at {i}", l.clients());
        }
        assert!(l.resets() > 0);
    }

    #[test]
    fn burst_then_refused_with_a_retry_after() {
        let l = limiter(|c| {
            c.per_client_per_second = 1;
            c.per_client_burst = 3;
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check_key(ip).is_ok());
        }
        let wait = l.check_key(ip).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            l.check_key("192.0.2.2".parse().unwrap()).is_ok(),
            "others unaffected"
        );
        assert_eq!(l.limited(), 1);
    }

    #[test]
    fn summary_lines_are_rate_limited_but_counts_exact() {
        let r = Rejections::default();
        for i in 0..1000 {
            r.record("/callback", "state_mismatch", 1_000 + i);
        }
        r.record("/callback", "weird", 5_000);
        r.record("/logout", "csrf", 5_000);
        assert_eq!(r.callback_count("state_mismatch"), 1000);
        assert_eq!(r.callback_count("other"), 1);
        assert_eq!(r.csrf(), 1);
    }
}
