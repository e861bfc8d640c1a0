//! Memory bounded by bytes: every stored code and consent page is a [`Charged`] value whose
//! estimated footprint is added to its store's meter and given back by `Drop`, and
//! [`make_room`] forgets expired, then the oldest, records when a store is full (see the
//! parent module's doc).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;

/// Estimated bytes a map entry costs beyond its key's and value's own bytes: the hash table
/// slot's control byte and padding, the shard's spare capacity, allocator rounding of the two
/// or three heap blocks. A deliberately round figure; the README gives measured RSS.
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// The bytes a stored `key → Charged<V>` entry is charged: key, value, strings, overhead.
pub(super) fn entry_bytes<V>(key: &str, heap: usize) -> usize {
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
    pub(super) fn new(value: T, bytes: usize, meter: &Arc<AtomicUsize>) -> Self {
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
pub(super) struct Bounds {
    pub max_entries: usize,
    pub max_bytes: usize,
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
pub(super) fn make_room<V>(
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
