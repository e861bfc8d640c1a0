//! Header work, done in place on the request's and the response's own header maps.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1, plus the
/// de-facto `Keep-Alive` and `Proxy-Connection`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Whether `value` (a comma-separated list) has `token`, ignoring ASCII case.
pub(crate) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// A WebSocket upgrade request: `Connection: upgrade` and `Upgrade: websocket`.
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &header::CONNECTION, "upgrade")
        && has_token(headers, &header::UPGRADE, "websocket")
}

/// Removes the hop-by-hop headers: those the `Connection` header names, then the fixed list.
/// `TE: trailers` is kept (it says the client accepts trailers, end to end) when
/// `keep_te_trailers`.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    if headers.contains_key(header::CONNECTION) {
        // Names first, then removal: the map cannot be changed while its values are read.
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            for token in value.as_bytes().split(|&b| b == b',') {
                if let Ok(name) = HeaderName::from_bytes(token.trim_ascii()) {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    let te_trailers = keep_te_trailers && has_token(headers, &header::TE, "trailers");
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Removes every header whose name starts with `prefix` (ASCII case ignored).
pub(crate) fn remove_prefixed(headers: &mut HeaderMap, prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    let matches = |name: &HeaderName| {
        name.as_str()
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    while let Some(name) = headers.keys().find(|n| matches(n)).cloned() {
        headers.remove(name);
    }
}

/// Removes the cookies named `names` (exact, case-sensitive names, as cookies are) from the
/// `Cookie` header(s); the other cookies pass byte for byte, joined into one `Cookie` header
/// with `; `. Nothing is rebuilt when no cookie is removed.
pub(crate) fn remove_cookies(headers: &mut HeaderMap, names: &[&str]) {
    if names.is_empty() || !headers.contains_key(header::COOKIE) {
        return;
    }
    let is_removed = |pair: &[u8]| {
        let name = pair
            .split(|&b| b == b'=')
            .next()
            .unwrap_or(pair)
            .trim_ascii();
        names.iter().any(|n| n.as_bytes() == name)
    };
    let any_removed = headers
        .get_all(header::COOKIE)
        .iter()
        .any(|value| value.as_bytes().split(|&b| b == b';').any(is_removed));
    if !any_removed {
        return;
    }
    let mut kept: Vec<u8> = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        for pair in value.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() || is_removed(pair) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(header::COOKIE);
    // The bytes come from valid header values, so this cannot fail; if it did, the cookies
    // stay removed rather than passed.
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(kept))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// What the forwarding headers say about the client.
pub(crate) struct Forwarding<'a> {
    /// The TCP peer.
    pub(crate) peer: IpAddr,
    /// The peer is a trusted proxy: its forwarding headers are believed and extended.
    pub(crate) trusted: bool,
    /// The scheme the client used.
    pub(crate) scheme: &'a str,
    /// The host the client asked for (the `Host` sent upstream).
    pub(crate) host: Option<&'a HeaderValue>,
}

/// Sets `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded`.
///
/// From a trusted proxy: its `X-Forwarded-For` chain is kept and the peer appended, its
/// `X-Forwarded-Proto`/`-Host` are kept (set from the connection when absent), and an element
/// for this hop is appended to its `Forwarded`. From anyone else: every inbound
/// `X-Forwarded-*`, `Forwarded` and `X-Real-IP` is removed and the values come from the
/// connection only.
pub(crate) fn set_forwarding(headers: &mut HeaderMap, fwd: &Forwarding<'_>) {
    if !fwd.trusted {
        remove_prefixed(headers, "x-forwarded-");
        headers.remove(header::FORWARDED);
        headers.remove(X_REAL_IP);
    }
    let peer = fwd.peer.to_string();

    let xff = join_with(headers, &X_FORWARDED_FOR, peer.as_bytes());
    insert_bytes(headers, X_FORWARDED_FOR, xff);
    if !headers.contains_key(X_FORWARDED_PROTO)
        && let Ok(proto) = HeaderValue::from_str(fwd.scheme)
    {
        headers.insert(X_FORWARDED_PROTO, proto);
    }
    if !headers.contains_key(X_FORWARDED_HOST)
        && let Some(host) = fwd.host
    {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }

    // RFC 7239: for=, host=, proto=; an IPv6 address and a host are quoted strings.
    let mut element: Vec<u8> = Vec::with_capacity(64);
    element.extend_from_slice(b"for=");
    match fwd.peer {
        IpAddr::V4(_) => element.extend_from_slice(peer.as_bytes()),
        IpAddr::V6(_) => {
            element.extend_from_slice(b"\"[");
            element.extend_from_slice(peer.as_bytes());
            element.extend_from_slice(b"]\"");
        }
    }
    if let Some(host) = fwd.host {
        element.extend_from_slice(b";host=");
        push_quoted(&mut element, host.as_bytes());
    }
    element.extend_from_slice(b";proto=");
    if is_token(fwd.scheme.as_bytes()) {
        element.extend_from_slice(fwd.scheme.as_bytes());
    } else {
        push_quoted(&mut element, fwd.scheme.as_bytes());
    }
    let forwarded = join_with(headers, &header::FORWARDED, &element);
    insert_bytes(headers, header::FORWARDED, forwarded);
}

/// The values of `name`, joined with `, `, then `last`.
fn join_with(headers: &HeaderMap, name: &HeaderName, last: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        let value = value.as_bytes().trim_ascii();
        if value.is_empty() {
            continue;
        }
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(last);
    out
}

/// Inserts `bytes` as the value of `name` (validated, not copied).
fn insert_bytes(headers: &mut HeaderMap, name: HeaderName, bytes: Vec<u8>) {
    match HeaderValue::from_maybe_shared(Bytes::from(bytes)) {
        Ok(value) => {
            headers.insert(name, value);
        }
        // Only valid header bytes went in; should it fail, no header is better than a false
        // one.
        Err(_) => {
            headers.remove(name);
        }
    }
}

/// RFC 9110 token characters.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A quoted-string: `"` and `\` escaped.
fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        headers
    }

    fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Custom-Hop"),
            ("connection", "close"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("te", "gzip, trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("accept", "text/html"),
        ]);
        remove_hop_by_hop(&mut h, true);
        assert_eq!(get(&h, "te"), Some("trailers"));
        assert_eq!(get(&h, "accept"), Some("text/html"));
        assert_eq!(h.len(), 2, "{h:?}");

        let mut h = map(&[("te", "gzip"), ("proxy-authenticate", "Basic")]);
        remove_hop_by_hop(&mut h, true);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn only_the_named_cookies_are_removed() {
        let mut h = map(&[("cookie", "a=1; linelogin_session=s3cret;b=2")]);
        remove_cookies(&mut h, &["linelogin_session"]);
        assert_eq!(get(&h, "cookie"), Some("a=1; b=2"));

        let mut h = map(&[("cookie", "linelogin_session=x"), ("cookie", "c=3")]);
        remove_cookies(&mut h, &["linelogin_session"]);
        assert_eq!(get(&h, "cookie"), Some("c=3"));

        let mut h = map(&[("cookie", "linelogin_session=x")]);
        remove_cookies(&mut h, &["linelogin_session"]);
        assert!(h.get("cookie").is_none());

        // Names are case-sensitive, values untouched, an untouched header is not rebuilt.
        let mut h = map(&[("cookie", "LINELOGIN_SESSION=x;  y=\"q;r\"")]);
        remove_cookies(&mut h, &["linelogin_session"]);
        assert_eq!(get(&h, "cookie"), Some("LINELOGIN_SESSION=x;  y=\"q;r\""));
    }

    #[test]
    fn prefixed_headers_are_removed_whatever_their_case() {
        let mut h = map(&[
            ("X-LineLogin-User", "U1"),
            ("x-linelogin-assertion", "a"),
            ("x-lineloginx", "kept: no dash"),
        ]);
        remove_prefixed(&mut h, "X-LineLogin-");
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-lineloginx"));
    }

    #[test]
    fn forwarding_from_an_untrusted_peer_comes_from_the_connection() {
        let host = HeaderValue::from_static("app.example:8443");
        let mut h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "1"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        let fwd = Forwarding {
            peer: "2001:db8::7".parse().unwrap_or_else(|e| panic!("{e}")),
            trusted: false,
            scheme: "http",
            host: Some(&host),
        };
        set_forwarding(&mut h, &fwd);
        assert_eq!(get(&h, "x-forwarded-for"), Some("2001:db8::7"));
        assert_eq!(get(&h, "x-forwarded-proto"), Some("http"));
        assert_eq!(get(&h, "x-forwarded-host"), Some("app.example:8443"));
        assert_eq!(
            get(&h, "forwarded"),
            Some("for=\"[2001:db8::7]\";host=\"app.example:8443\";proto=http")
        );
        assert!(h.get("x-forwarded-port").is_none());
        assert!(h.get("x-real-ip").is_none());
    }

    #[test]
    fn forwarding_from_a_trusted_peer_is_extended() {
        let host = HeaderValue::from_static("app.example");
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        ]);
        let fwd = Forwarding {
            peer: "10.0.0.4".parse().unwrap_or_else(|e| panic!("{e}")),
            trusted: true,
            scheme: "http",
            host: Some(&host),
        };
        set_forwarding(&mut h, &fwd);
        assert_eq!(
            get(&h, "x-forwarded-for"),
            Some("203.0.113.9, 10.0.0.2, 10.0.0.3, 10.0.0.4")
        );
        assert_eq!(get(&h, "x-forwarded-proto"), Some("https"));
        assert_eq!(get(&h, "x-forwarded-host"), Some("app.example"));
        assert_eq!(
            get(&h, "forwarded"),
            Some("for=203.0.113.9;proto=https, for=10.0.0.4;host=\"app.example\";proto=http")
        );
    }
}
