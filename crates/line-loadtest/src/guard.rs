//! The guard: load only ever goes to a linelogin emulator, never to the LINE Platform.
//!
//! LINE's LINE Login development guidelines prohibit sending a large number of authorization
//! requests or LINE Login API requests to the LINE Platform for load testing, and ask for a
//! test environment that does not generate such requests. Before sending any load, the runner
//! follows the target's login redirect once and checks that:
//! 1. the target itself is on a loopback address (unless remote targets are allowed);
//! 2. the authorization endpoint it redirects to is not a LINE host, and is on a loopback
//!    address (unless remote targets are allowed);
//! 3. that origin answers the linelogin emulator's admin API (`GET /_emulator/stats`).
//!
//! Otherwise it refuses, and says why. During the run, every request must stay within the
//! [`Reach`] the guard established: loopback addresses, or, for an allowed remote target, the
//! target's, the emulator's and the callback's origins and nothing else.
//!
//! A remote target is a staging relying party on another host whose LINE is an emulator
//! (`--allow-remote-target`): the same three checks hold, with only the loopback condition
//! lifted. Checks 2 and 3 keep the real LINE out of reach: a LINE host is refused by name
//! before any request to it, and the real LINE does not answer the emulator's admin API.

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

/// Whether a URL's host is one of LINE's own domains (`line.me`, `line-apps.com`,
/// `line.biz`, `line-scdn.net`, `line.naver.jp`, `linecorp.com`, or a subdomain of one): the
/// LINE Platform, which load must never reach.
pub fn is_line_host(url: &Url) -> bool {
    const LINE_DOMAINS: &[&str] = &[
        "line.me",
        "line-apps.com",
        "line.biz",
        "line-scdn.net",
        "line.naver.jp",
        "linecorp.com",
    ];
    let Some(Host::Domain(host)) = url.host() else {
        return false;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    LINE_DOMAINS
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// Where the requests of a run may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Loopback addresses only.
    Loopback,
    /// These origins only (scheme, host, port), none of them a LINE host: an allowed remote
    /// target, its emulator and its callback.
    Origins(Vec<Url>),
}

impl Reach {
    /// Whether a request to `url` stays within reach.
    pub fn allows(&self, url: &Url) -> bool {
        match self {
            Self::Loopback => is_loopback(url),
            Self::Origins(origins) => {
                !is_line_host(url) && origins.iter().any(|o| same_origin(o, url))
            }
        }
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Why the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The target is not on a loopback address (and remote targets were not allowed).
    #[error(
        "refusing to load-test {0}: the target is not on a loopback address (a staging relying party whose LINE is an emulator can be allowed with --allow-remote-target). {GUIDELINE}"
    )]
    TargetNotLoopback(String),
    /// The target's login redirects to the LINE Platform itself.
    #[error("refusing to load-test: the login redirects to {0}, the LINE Platform. {GUIDELINE}")]
    AuthorizeIsLine(String),
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
            "http://127.0.0.1.nip.io/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://localhost.evil.example/",
            "http://0.0.0.0/",
        ] {
            assert!(!is_loopback(&Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn line_hosts_are_known_by_name() {
        for line in [
            "https://access.line.me/oauth2/v2.1/authorize",
            "https://api.line.me/",
            "https://LINE.ME./",
            "https://x.line-apps.com/",
            "https://developers.line.biz/",
        ] {
            assert!(is_line_host(&Url::parse(line).unwrap()), "{line}");
        }
        for other in [
            "https://staging.example.com/",
            "https://notline.me/",
            "https://line.me.example.com/",
            "http://10.0.0.1/",
        ] {
            assert!(!is_line_host(&Url::parse(other).unwrap()), "{other}");
        }
    }

    #[test]
    fn a_remote_reach_allows_its_origins_only() {
        let reach = Reach::Origins(vec![
            Url::parse("http://10.200.0.1:8080/").unwrap(),
            Url::parse("http://10.200.0.1:9000/").unwrap(),
        ]);
        assert!(reach.allows(&Url::parse("http://10.200.0.1:8080/login").unwrap()));
        assert!(reach.allows(&Url::parse("http://10.200.0.1:9000/oauth2/v2.1/authorize").unwrap()));
        assert!(!reach.allows(&Url::parse("http://10.200.0.1:8081/").unwrap()));
        assert!(!reach.allows(&Url::parse("https://10.200.0.1:8080/").unwrap()));
        assert!(!reach.allows(&Url::parse("http://127.0.0.1:8080/").unwrap()));
        let line = Reach::Origins(vec![Url::parse("https://access.line.me/").unwrap()]);
        assert!(!line.allows(&Url::parse("https://access.line.me/oauth2/v2.1/authorize").unwrap()));
        assert!(Reach::Loopback.allows(&Url::parse("http://localhost:1/").unwrap()));
    }
}
