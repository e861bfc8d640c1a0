//! Tracing one login through the three logs.
//!
//! Given a `state`, an authorization code (or its short hash) or an `x-line-request-id`,
//! [`trace`] gathers the authorization request, the callback and the API calls of that
//! login, in time order, and says for each how it was linked:
//!
//! 1. the key itself (`state=` of an authorization request or callback, `code=` of a
//!    callback, the request id of an API call, or the key's short hash in an API body);
//! 2. the `state` shared by the authorization request and its callback;
//! 3. with body logging on, the authorization code's short hash in the token request body,
//!    then, transitively, the hashes of the tokens that call returned (`access_token`,
//!    `id_token`, `refresh_token`) in later calls' bodies (verify, refresh, revoke). Shared
//!    secrets such as the client secret are never followed: they are the same in every login;
//! 4. otherwise, by time: API calls within a window after the callback (or the nearest
//!    callback before an API call found by request id). These are marked *nearby*: likely,
//!    not proven. A call is linked this way only when no other login's callback arrived
//!    between this login's callback and the call (times have one-second resolution, so a
//!    callback in the same second counts as in between); otherwise it is counted in
//!    [`Trace::ambiguous`] and left out, since concurrent logins overlap. Calls whose bodies
//!    prove they belong to another login are left out too. With body logging on, links are
//!    exact and need no time window.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::AuditError;
use crate::record::Record;
use crate::redact::{is_short_hash, login_hashes, short_hash};
use crate::search::{Entry, Query, search_dirs};

/// Why an event belongs to the traced login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// It contains the key itself.
    Key,
    /// It carries the login's `state`.
    State,
    /// Its body carries the hash of the login's authorization code.
    CodeHash,
    /// Its body carries the hash of a token of the login (the field name).
    TokenHash(String),
    /// Only its time suggests it (see the module docs).
    Nearby,
}

impl Link {
    /// A short description for people.
    pub fn describe(&self) -> String {
        match self {
            Link::Key => "matches the key".to_owned(),
            Link::State => "same state".to_owned(),
            Link::CodeHash => "code hash in body".to_owned(),
            Link::TokenHash(field) => format!("{field} hash in body"),
            Link::Nearby => "nearby in time (not proven)".to_owned(),
        }
    }

    /// Whether the link is proven by content rather than time.
    pub fn is_proven(&self) -> bool {
        !matches!(self, Link::Nearby)
    }
}

/// One record of the traced login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// The record and its origin.
    pub entry: Entry,
    /// How it was linked.
    pub link: Link,
}

/// One login, as found in the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The key searched for.
    pub key: String,
    /// The `state` values of the login (normally one).
    pub states: Vec<String>,
    /// The short hashes of the login's authorization codes (normally one).
    pub code_hashes: Vec<String>,
    /// The events, oldest first.
    pub events: Vec<TraceEvent>,
    /// Lines of the directory that could not be parsed.
    pub malformed_lines: usize,
    /// API calls in the time window that could belong to this login or to another one whose
    /// callback arrived at the same time; left out of [`events`](Self::events).
    pub ambiguous: usize,
}

/// The value of a query parameter of a URL or a path with query.
pub fn query_param(url_or_path: &str, name: &str) -> Option<String> {
    let query = url_or_path.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn api_hashes(record: &Record) -> Vec<(String, String)> {
    let Record::ApiRequest(a) = record else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for body in [&a.request_body, &a.response_body].into_iter().flatten() {
        out.extend(login_hashes(body));
    }
    out
}

fn bodies_contain(record: &Record, needle: &str) -> bool {
    let Record::ApiRequest(a) = record else {
        return false;
    };
    let encoded = needle.replace('#', "%23");
    [&a.request_body, &a.response_body]
        .into_iter()
        .flatten()
        .any(|b| b.contains(needle) || b.contains(&encoded))
}

struct Tracer {
    entries: Vec<Entry>,
    /// The login hashes in each entry's bodies (parsed once).
    entry_hashes: Vec<Vec<(String, String)>>,
    links: Vec<Option<Link>>,
    states: BTreeSet<String>,
    codes: BTreeSet<String>,
    hashes: BTreeSet<String>,
    ambiguous: usize,
}

impl Tracer {
    fn include(&mut self, i: usize, link: Link) -> bool {
        if self.links[i].is_some() {
            return false;
        }
        self.links[i] = Some(link);
        match &self.entries[i].record {
            Record::AuthorizationRequest(r) => {
                self.states.extend(query_param(&r.url, "state"));
            }
            Record::AuthorizationResponse(r) => {
                self.states.extend(query_param(&r.path, "state"));
                if let Some(code) = query_param(&r.path, "code") {
                    self.hashes.insert(short_hash(&code));
                    self.codes.insert(code);
                }
            }
            Record::ApiRequest(_) => {
                let found = self.entry_hashes[i].iter().map(|(_, h)| h.clone());
                self.hashes.extend(found);
            }
        }
        true
    }

    fn seed(&mut self, key: &str) {
        let key_hash = if is_short_hash(key) {
            key.to_owned()
        } else {
            short_hash(key)
        };
        for i in 0..self.entries.len() {
            let hit = match &self.entries[i].record {
                Record::AuthorizationRequest(r) => {
                    query_param(&r.url, "state").as_deref() == Some(key)
                }
                Record::AuthorizationResponse(r) => {
                    query_param(&r.path, "state").as_deref() == Some(key)
                        || query_param(&r.path, "code").as_deref() == Some(key)
                        || query_param(&r.path, "code")
                            .map(|c| short_hash(&c))
                            .as_deref()
                            == Some(key)
                }
                Record::ApiRequest(a) => {
                    a.request_id.as_deref() == Some(key)
                        || bodies_contain(&self.entries[i].record, &key_hash)
                }
            };
            if hit {
                self.include(i, Link::Key);
            }
        }
    }

    /// Follows states, code hashes and token hashes to a fixed point.
    fn expand(&mut self) {
        loop {
            let mut changed = false;
            for i in 0..self.entries.len() {
                if self.links[i].is_some() {
                    continue;
                }
                let link = match &self.entries[i].record {
                    Record::AuthorizationRequest(r) => query_param(&r.url, "state")
                        .filter(|s| self.states.contains(s))
                        .map(|_| Link::State),
                    Record::AuthorizationResponse(r) => {
                        let by_state =
                            query_param(&r.path, "state").is_some_and(|s| self.states.contains(&s));
                        let by_code = query_param(&r.path, "code")
                            .is_some_and(|c| self.hashes.contains(&short_hash(&c)));
                        if by_state {
                            Some(Link::State)
                        } else if by_code {
                            Some(Link::CodeHash)
                        } else {
                            None
                        }
                    }
                    Record::ApiRequest(_) => self.entry_hashes[i]
                        .iter()
                        .find(|(_, h)| self.hashes.contains(h))
                        .map(|(field, _)| {
                            if field == "code" {
                                Link::CodeHash
                            } else {
                                Link::TokenHash(field.clone())
                            }
                        }),
                };
                if let Some(link) = link {
                    changed |= self.include(i, link);
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn in_window(t: SystemTime, anchor: SystemTime, window: Duration) -> bool {
        t >= anchor && t <= anchor + window
    }

    /// Adds time-based links: API calls after the callback, or the callback before an API
    /// call found by request id.
    fn nearby(&mut self, window: Duration) {
        let callbacks: Vec<SystemTime> =
            self.included_times(|r| matches!(r, Record::AuthorizationResponse(_)));
        if callbacks.is_empty() {
            // Found through an API call only: look for the callback just before it.
            let api_times = self.included_times(|r| matches!(r, Record::ApiRequest(_)));
            for t in api_times {
                let before = (0..self.entries.len())
                    .filter(|&i| self.links[i].is_none())
                    .filter(|&i| matches!(self.entries[i].record, Record::AuthorizationResponse(_)))
                    .filter(|&i| {
                        let ct = self.entries[i].record.time();
                        ct <= t && ct + window >= t
                    })
                    .max_by_key(|&i| self.entries[i].record.time());
                if let Some(i) = before {
                    self.include(i, Link::Nearby);
                }
            }
            self.expand();
        }
        let anchors = self.included_times(|r| matches!(r, Record::AuthorizationResponse(_)));
        let others: Vec<SystemTime> = (0..self.entries.len())
            .filter(|&i| self.links[i].is_none())
            .filter(|&i| matches!(self.entries[i].record, Record::AuthorizationResponse(_)))
            .map(|i| self.entries[i].record.time())
            .collect();
        for i in 0..self.entries.len() {
            if self.links[i].is_some() {
                continue;
            }
            let record = &self.entries[i].record;
            if !matches!(record, Record::ApiRequest(_)) {
                continue;
            }
            if !anchors
                .iter()
                .any(|&a| Self::in_window(record.time(), a, window))
            {
                continue;
            }
            let hashes = &self.entry_hashes[i];
            // Bodies that name other logins' codes or tokens prove it is not ours.
            if !hashes.is_empty() && !hashes.iter().any(|(_, h)| self.hashes.contains(h)) {
                continue;
            }
            // Another login's callback between ours and this call: it could be theirs.
            let t = record.time();
            let contested = anchors.iter().any(|&a| {
                Self::in_window(t, a, window) && others.iter().any(|&c| c >= a && c <= t)
            });
            if contested {
                self.ambiguous += 1;
                continue;
            }
            self.links[i] = Some(Link::Nearby);
        }
    }

    fn included_times(&self, pred: impl Fn(&Record) -> bool) -> Vec<SystemTime> {
        self.entries
            .iter()
            .zip(&self.links)
            .filter(|(e, l)| l.is_some() && pred(&e.record))
            .map(|(e, _)| e.record.time())
            .collect()
    }
}

/// Traces the login identified by `key` (a state, an authorization code or its short hash,
/// or a request id) through the logs of `dir`. `window` bounds the time-based links.
pub fn trace(dir: &Path, key: &str, window: Duration) -> Result<Trace, AuditError> {
    trace_dirs(&[dir], key, window)
}

/// [`trace`] through the logs of several directories (the instances of a fleet), merged by
/// time: a login that started on one instance and came back to another is one timeline.
pub fn trace_dirs(dirs: &[&Path], key: &str, window: Duration) -> Result<Trace, AuditError> {
    let all = search_dirs(dirs, &Query::default())?;
    let n = all.entries.len();
    let entry_hashes = all.entries.iter().map(|e| api_hashes(&e.record)).collect();
    let mut tracer = Tracer {
        entries: all.entries,
        entry_hashes,
        links: vec![None; n],
        states: BTreeSet::new(),
        codes: BTreeSet::new(),
        hashes: BTreeSet::new(),
        ambiguous: 0,
    };
    tracer.seed(key);
    tracer.expand();
    if tracer.links.iter().any(Option::is_some) {
        tracer.nearby(window);
    }
    let code_hashes = tracer.codes.iter().map(|c| short_hash(c)).collect();
    let events = tracer
        .entries
        .into_iter()
        .zip(tracer.links)
        .filter_map(|(entry, link)| link.map(|link| TraceEvent { entry, link }))
        .collect();
    Ok(Trace {
        key: key.to_owned(),
        states: tracer.states.into_iter().collect(),
        code_hashes,
        events,
        malformed_lines: all.malformed.len(),
        ambiguous: tracer.ambiguous,
    })
}
