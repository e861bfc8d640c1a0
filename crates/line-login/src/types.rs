//! Protocol values that are not secrets: channel IDs, user IDs, state, nonce, scopes.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::ct_eq_str;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value without checking it.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A LINE Login channel ID (`client_id`, the ID token's `aud`): a numeric string such as
    /// `1234567890`. Always compared as a string.
    ChannelId
);
string_newtype!(
    /// A LINE user ID: `U` followed by 32 lowercase hex digits, fixed per provider.
    UserId
);

impl UserId {
    /// Whether the value has LINE's user ID shape (`U` + 32 lowercase hex digits).
    pub fn is_well_formed(&self) -> bool {
        let b = self.0.as_bytes();
        b.len() == 33
            && b[0] == b'U'
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    }
}

/// The `state` parameter: a random alphanumeric value bound to one login attempt.
///
/// Compared in constant time ([`State::ct_eq`]); it has no `PartialEq` so a plain `==` cannot
/// slip in.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct State(String);

/// The `nonce` parameter, echoed in the ID token. Compared in constant time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nonce(String);

macro_rules! ct_value {
    ($name:ident) => {
        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Constant-time comparison.
            pub fn ct_eq(&self, other: &Self) -> bool {
                ct_eq_str(&self.0, &other.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "({})"),
                    crate::redact::short_hash(&self.0)
                )
            }
        }
    };
}
ct_value!(State);
ct_value!(Nonce);

/// One scope value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `profile`: display name, picture, status message; the `/v2/profile` API.
    Profile,
    /// `openid`: an ID token is issued.
    OpenId,
    /// `email`: the email address in the ID token (needs `openid` and the channel permission).
    Email,
    /// Any other value (e.g. LINE Profile+ scopes), kept verbatim.
    Other(String),
}

impl Scope {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Scope::Profile => "profile",
            Scope::OpenId => "openid",
            Scope::Email => "email",
            Scope::Other(s) => s,
        }
    }
}

impl From<&str> for Scope {
    fn from(s: &str) -> Self {
        match s {
            "profile" => Scope::Profile,
            "openid" => Scope::OpenId,
            "email" => Scope::Email,
            other => Scope::Other(other.to_owned()),
        }
    }
}

/// A set of scopes. LINE sends and expects them space-separated; order carries no meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a scope (builder style).
    pub fn with(mut self, scope: Scope) -> Self {
        self.0.insert(scope);
        self
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) {
        self.0.insert(scope);
    }

    /// Whether the set contains a scope.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Parses a scope string separated by spaces or `+` (some clients form-encode the space).
    pub fn parse(s: &str) -> Self {
        Self(
            s.split([' ', '+'])
                .filter(|p| !p.is_empty())
                .map(Scope::from)
                .collect(),
        )
    }

    /// The space-separated wire form, in a stable order (`profile openid email` first).
    pub fn to_wire(&self) -> String {
        let mut parts: Vec<&str> = Vec::with_capacity(self.0.len());
        for s in &self.0 {
            parts.push(s.as_str());
        }
        parts.join(" ")
    }
}

impl FromStr for Scopes {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_space_and_plus() {
        let s = Scopes::parse("profile+openid email");
        assert!(s.contains(&Scope::Profile));
        assert!(s.contains(&Scope::OpenId));
        assert!(s.contains(&Scope::Email));
        assert_eq!(s.to_wire(), "profile openid email");
    }

    #[test]
    fn user_id_shape() {
        assert!(UserId::new("U0123456789abcdef0123456789abcdef").is_well_formed());
        assert!(!UserId::new("U0123456789ABCDEF0123456789abcdef").is_well_formed());
        assert!(!UserId::new("Uattacker").is_well_formed());
    }

    #[test]
    fn state_debug_does_not_show_value() {
        let s = State::new("n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA");
        assert!(!format!("{s:?}").contains("n5B9"));
    }
}
