//! The guard: load only ever goes to a linelogin emulator on a loopback address.
//!
//! LINE's LINE Login development guidelines prohibit sending a large number of authorization
//! requests or LINE Login API requests to the LINE Platform for load testing, and ask for a
//! test environment that does not generate such requests. Before sending any load, the runner
//! follows the target's login redirect once and checks that:
//! 1. the target itself is on a loopback address;
//! 2. the authorization endpoint it redirects to is on a loopback address;
//! 3. that origin answers the linelogin emulator's admin API (`GET /_emulator/stats`).
//!
//! Otherwise it refuses, and says why.

use std::net::IpAddr;

use url::{Host, Url};

/// The guideline, cited in every refusal.
pub const GUIDELINE: &str = "LINE's LINE Login development guidelines prohibit mass requests to the LINE \
Platform for load testing (https://developers.line.biz/en/docs/line-login/development-guidelines/); \
point the relying party at `linelogin emulator` on a loopback address instead";

/// Whether a URL's host is a loopback address (127.0.0.0/8, ::1, or `localhost`). Names other
/// than `localhost` are not resolved: they are refused.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Why the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The target is not on a loopback address.
    #[error("refusing to load-test {0}: the target is not on a loopback address. {GUIDELINE}")]
    TargetNotLoopback(String),
    /// The target's login did not redirect to an authorization endpoint.
    #[error(
        "refusing to load-test: {0} did not redirect to a LINE authorization endpoint (status {1})"
    )]
    NoRedirect(String, u16),
    /// The authorization endpoint is not on a loopback address (e.g. the real LINE).
    #[error(
        "refusing to load-test: the login redirects to {0}, which is not a loopback address. {GUIDELINE}"
    )]
    AuthorizeNotLoopback(String),
    /// The authorization origin does not answer the emulator's admin API.
    #[error(
        "refusing to load-test: {0} does not answer the linelogin emulator admin API ({1}). {GUIDELINE}"
    )]
    NotAnEmulator(String, String),
}

/// The origin (scheme, host, port) of a URL, as a URL with path `/`.
pub fn origin_of(url: &Url) -> Url {
    let mut o = url.clone();
    o.set_path("/");
    o.set_query(None);
    o.set_fragment(None);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "http://127.0.0.1:9000/",
            "http://127.9.9.9/",
            "http://[::1]:80/",
            "http://localhost:1/",
        ] {
            assert!(is_loopback(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "https://access.line.me/oauth2/v2.1/authorize",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://localhost.evil.example/",
            "http://0.0.0.0/",
        ] {
            assert!(!is_loopback(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
