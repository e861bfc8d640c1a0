//! Grants and browser sessions: a user's consent to a channel (its generation kills every
//! token minted under an older one), and the signed session cookie that carries the
//! browser's single-sign-on user and the consent page's CSRF value.

use std::sync::atomic::Ordering;

use super::*;
use crate::crypto::{self};

/// A user's consent to a channel.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub generation: u64,
    pub active: bool,
    pub scopes: u8,
    pub consented_at: i64,
}

/// A browser session on the emulator origin, carried in a signed cookie.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub user: Option<u32>,
    pub auth_time: i64,
}

impl Inner {
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
}
