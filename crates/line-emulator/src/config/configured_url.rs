//! [`ConfiguredUrl`]: a URL from the configuration, checked when read, kept as written.
//!
//! Why not `url::Url` alone: parsing normalises (`https://access.line.me` becomes
//! `https://access.line.me/`, `HTTP://Host` becomes `http://host/`), but LINE compares a
//! `redirect_uri` with the registered callback URLs as strings, and the issuer goes into `iss`
//! exactly as configured. So the text is what is compared, shown and written back; the parsed
//! [`Url`] is there for what needs its parts (the scheme of `public_url`).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// An absolute URL as written in the configuration. It derefs to the text, so it compares,
/// formats and joins like the string it was; [`ConfiguredUrl::url`] gives the parsed form.
#[derive(Clone)]
pub struct ConfiguredUrl {
    text: String,
    url: Url,
}

impl ConfiguredUrl {
    /// Checks that `text` is an absolute URL and keeps it as written.
    pub fn parse(text: impl Into<String>) -> Result<Self, url::ParseError> {
        let text = text.into();
        let url = Url::parse(&text)?;
        Ok(Self { text, url })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed URL (normalised: compare [`ConfiguredUrl::as_str`] instead).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// LINE's issuer, `https://access.line.me` (the default `issuer`).
    pub(crate) fn line_issuer() -> Self {
        Self::constant(super::DEFAULT_ISSUER)
    }

    /// The demo channel's callback URLs.
    pub(crate) fn demo_callbacks() -> Vec<Self> {
        [
            "http://127.0.0.1:8080/callback",
            "http://localhost:8080/callback",
        ]
        .map(Self::constant)
        .to_vec()
    }

    #[allow(clippy::expect_used)] // only ever called with constant, valid URLs
    fn constant(text: &'static str) -> Self {
        Self::parse(text).expect("a constant URL parses")
    }
}

impl FromStr for ConfiguredUrl {
    type Err = url::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Url> for ConfiguredUrl {
    fn from(url: Url) -> Self {
        Self {
            text: url.as_str().to_owned(),
            url,
        }
    }
}

impl Deref for ConfiguredUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for ConfiguredUrl {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Equality and hashing are the text's, so `Borrow<str>` holds (`join`, set look-ups).
impl Borrow<str> for ConfiguredUrl {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl PartialEq for ConfiguredUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ConfiguredUrl {}

impl Hash for ConfiguredUrl {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialEq<str> for ConfiguredUrl {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for ConfiguredUrl {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl fmt::Display for ConfiguredUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ConfiguredUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl Serialize for ConfiguredUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ConfiguredUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(text.as_str())
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a URL: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_text_stays_as_written() {
        let issuer = ConfiguredUrl::line_issuer();
        assert_eq!(issuer.as_str(), "https://access.line.me");
        assert_eq!(issuer.url().as_str(), "https://access.line.me/");
        let cb: ConfiguredUrl = "HTTP://Example.COM:80/cb".parse().unwrap();
        assert_eq!(cb, "HTTP://Example.COM:80/cb");
        assert_eq!(cb.url().scheme(), "http");
        assert_ne!(cb, ConfiguredUrl::from(cb.url().clone()));
        assert_eq!(
            serde_json::to_string(&cb).unwrap(),
            "\"HTTP://Example.COM:80/cb\""
        );
    }

    #[test]
    fn relative_urls_are_refused() {
        assert!("/callback".parse::<ConfiguredUrl>().is_err());
        let e = serde_json::from_str::<ConfiguredUrl>("\"nope\"").unwrap_err();
        assert!(e.to_string().contains("\"nope\" is not a URL"), "{e}");
    }
}
