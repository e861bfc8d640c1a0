//! A JWKS cache for ES256 ID tokens: fetched on first use, refetched when a token names an
//! unknown `kid` (keys rotate), but never more often than a minimum interval, so a flood of
//! tokens with random `kid`s cannot turn into a flood of requests to LINE.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use jsonwebtoken::DecodingKey;

use super::IdTokenError;
use crate::clock::SharedClock;
use crate::wire::JwkSet;

/// Where a [`JwksCache`] gets the key set from (the client implements it with a GET of
/// `/oauth2/v2.1/certs` through its outbound policy).
pub trait JwksFetcher: Send + Sync {
    /// Fetches the current key set.
    fn fetch_jwks(&self) -> BoxFuture<'_, Result<JwkSet, crate::Error>>;
}

/// Default minimum time between two fetches.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Default age after which the cached set is refreshed on the next lookup.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

struct Keys {
    map: HashMap<String, DecodingKey>,
    fetched_at: Option<Duration>,
}

struct Inner {
    fetcher: Arc<dyn JwksFetcher>,
    clock: SharedClock,
    min_refetch_interval: Duration,
    max_age: Duration,
    keys: RwLock<Keys>,
    fetch_lock: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

/// A cache of ES256 verification keys by `kid`. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// An empty cache over a fetcher.
    pub fn new(fetcher: Arc<dyn JwksFetcher>, clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                fetcher,
                clock,
                min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
                max_age: DEFAULT_MAX_AGE,
                keys: RwLock::new(Keys {
                    map: HashMap::new(),
                    fetched_at: None,
                }),
                fetch_lock: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
            }),
        }
    }

    /// Sets the minimum interval between fetches (call before sharing the cache).
    pub fn with_min_refetch_interval(self, interval: Duration) -> Self {
        self.rebuild(|i| i.min_refetch_interval = interval)
    }

    /// Sets the maximum age of a fetched set (call before sharing the cache).
    pub fn with_max_age(self, max_age: Duration) -> Self {
        self.rebuild(|i| i.max_age = max_age)
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            fetcher: self.inner.fetcher.clone(),
            clock: self.inner.clock.clone(),
            min_refetch_interval: self.inner.min_refetch_interval,
            max_age: self.inner.max_age,
            keys: RwLock::new(Keys {
                map: HashMap::new(),
                fetched_at: None,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// How many times the key set was fetched.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The key for `kid` if it is cached and the set is fresh.
    pub fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        let now = self.inner.clock.monotonic();
        let keys = match self.inner.keys.read() {
            Ok(k) => k,
            Err(p) => p.into_inner(),
        };
        let fresh = keys
            .fetched_at
            .is_some_and(|t| now.saturating_sub(t) < self.inner.max_age);
        if fresh {
            keys.map.get(kid).cloned()
        } else {
            None
        }
    }

    /// The key for `kid`, fetching the set if the `kid` is unknown or the set is stale and the
    /// last fetch is older than the minimum interval. Concurrent misses share one fetch.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, IdTokenError> {
        if let Some(k) = self.cached_key(kid) {
            return Ok(k);
        }
        let _guard = self.inner.fetch_lock.lock().await;
        if let Some(k) = self.cached_key(kid) {
            return Ok(k);
        }
        let now = self.inner.clock.monotonic();
        let last = self.read_fetched_at();
        if last.is_some_and(|last| now.saturating_sub(last) < self.inner.min_refetch_interval) {
            // Fetched recently: the kid is simply unknown. Serve a stale key if we have it.
            return self.stale_key(kid).ok_or(IdTokenError::UnknownKey);
        }
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let set = match self.inner.fetcher.fetch_jwks().await {
            Ok(set) => set,
            Err(_) => {
                self.mark_fetched(now);
                return self.stale_key(kid).ok_or(IdTokenError::KeysUnavailable);
            }
        };
        let map = decode_keys(&set);
        let found = map.get(kid).cloned();
        {
            let mut keys = match self.inner.keys.write() {
                Ok(k) => k,
                Err(p) => p.into_inner(),
            };
            keys.map = map;
            keys.fetched_at = Some(now);
        }
        found.ok_or(IdTokenError::UnknownKey)
    }

    fn read_fetched_at(&self) -> Option<Duration> {
        match self.inner.keys.read() {
            Ok(k) => k.fetched_at,
            Err(p) => p.into_inner().fetched_at,
        }
    }

    fn mark_fetched(&self, now: Duration) {
        let mut keys = match self.inner.keys.write() {
            Ok(k) => k,
            Err(p) => p.into_inner(),
        };
        keys.fetched_at = Some(now);
    }

    fn stale_key(&self, kid: &str) -> Option<DecodingKey> {
        match self.inner.keys.read() {
            Ok(k) => k.map.get(kid).cloned(),
            Err(p) => p.into_inner().map.get(kid).cloned(),
        }
    }
}

/// Keeps the usable keys: `kty` EC, `crv` P-256, with a `kid`, and `alg` ES256 if stated.
/// Keys of other types (LINE's sets have held RSA keys) are ignored, as are unparseable ones.
fn decode_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|k| k.kty == "EC" && k.crv.as_deref() == Some("P-256"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == "ES256"))
        .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            let kid = k.kid.clone()?;
            let key = DecodingKey::from_ec_components(k.x.as_deref()?, k.y.as_deref()?).ok()?;
            Some((kid, key))
        })
        .collect()
}
