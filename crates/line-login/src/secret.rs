//! Secret values: the channel secret, tokens, the PKCE verifier, authorization codes.
//!
//! Every secret type here:
//! - prints as `[redacted]` in both `Debug` and `Display`;
//! - derives no `PartialEq`; use [`ct_eq`](ChannelSecret::ct_eq), which runs in constant time;
//! - is read through `.secret()`, so every place that touches the raw value is easy to find.
//!
//! They implement `Serialize`/`Deserialize` with the raw value, because they travel in
//! LINE's JSON and forms (and the emulator writes them). Do not serialize them anywhere else.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The raw value. Never log it, print it or put it in an error.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the raw value.
            pub fn into_secret(self) -> String {
                self.0
            }

            /// Compares with another value in constant time (for equal lengths).
            pub fn ct_eq(&self, other: &Self) -> bool {
                crate::secret::ct_eq_str(&self.0, &other.0)
            }

            /// A short, stable, non-reversible fingerprint (`#` + 8 hex digits of SHA-256),
            /// for correlating log lines without revealing the value.
            pub fn fingerprint(&self) -> String {
                crate::redact::short_hash(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_type!(
    /// A LINE Login channel secret (`client_secret`); also the HS256 key of web-login ID tokens.
    ChannelSecret
);
secret_type!(
    /// A user access token (30 days). Opaque: never parse it.
    AccessToken
);
secret_type!(
    /// A refresh token (valid up to 90 days after the access token it came with was issued).
    RefreshToken
);
secret_type!(
    /// A raw ID token (a JWT) as received, before verification.
    IdToken
);
secret_type!(
    /// A PKCE code verifier (43–128 characters of `[A-Za-z0-9-._~]`).
    CodeVerifier
);
secret_type!(
    /// A channel access token (stateless or v2.1), the bearer credential for deauthorize.
    ChannelAccessToken
);
secret_type!(
    /// An authorization code from the callback (10 minutes, single use).
    AuthorizationCode
);
secret_type!(
    /// A signed JWT assertion used to issue channel access tokens v2.1.
    ClientAssertion
);

/// Constant-time string equality (the length is not hidden; contents are).
pub(crate) fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = ChannelSecret::new("CANARY_secret");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "ChannelSecret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("CANARY"));
        assert_eq!(s.secret(), "CANARY_secret");
    }

    #[test]
    fn ct_eq_compares_contents() {
        assert!(AccessToken::new("abc").ct_eq(&AccessToken::new("abc")));
        assert!(!AccessToken::new("abc").ct_eq(&AccessToken::new("abd")));
        assert!(!AccessToken::new("abc").ct_eq(&AccessToken::new("abcd")));
    }

    #[test]
    fn serde_is_transparent() {
        let t: RefreshToken = serde_json::from_str("\"rt\"").unwrap();
        assert_eq!(t.secret(), "rt");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"rt\"");
    }
}
