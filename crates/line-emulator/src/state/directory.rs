//! The directory: the configured channels and test users, with the values derived from them
//! (user IDs per provider, assertion keys, rate windows), and the lookups by ID and index.

use std::collections::VecDeque;

use jsonwebtoken::DecodingKey;
use parking_lot::Mutex;

use super::*;
use crate::config::{ChannelConfig, UserConfig};
use crate::error::ApiError;
use crate::observe::ChannelTag;

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
            if redirect_uri == cb.as_str() {
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

impl Inner {
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

    /// Enters a request concerning `channel`: counts the request and applies the channel's
    /// rate limit. The tag it gives back (and its error carries) is for the journal: the
    /// caller puts it on its answer ([`ChannelTag::on`]).
    pub fn admit(&self, channel: u32) -> Result<ChannelTag, ApiError> {
        let tag = ChannelTag(channel);
        let Some(ch) = self.channel_at(channel) else {
            return Ok(tag);
        };
        let Some((limit, window)) = &ch.rate else {
            return Ok(tag);
        };
        // Real seconds (the clock under the admin API's offset): a rate window is wall time.
        let now = self.clock.base().unix_seconds();
        let mut w = window.lock();
        if w.0 != now {
            *w = (now, 0);
        }
        if w.1 >= *limit {
            return Err(ApiError::RateLimited { retry_after: 1 }.in_channel(tag));
        }
        w.1 += 1;
        Ok(tag)
    }
}
