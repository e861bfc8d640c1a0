//! The emulator's query and form parsing and what sits behind it, through its public router
//! (`Emulator::router()` with `tower::ServiceExt::oneshot`, no socket): authorize (consent
//! page and auto-consent emulators), the consent answer, the token, verify and revoke
//! endpoints. No crate-private item is exposed for this.
//!
//! The first byte picks the endpoint; the rest is the query (percent-encoded where a URI
//! needs it, so the parser sees arbitrary decoded bytes) or the form body. Property: no
//! panic, and every answer is a complete HTTP response that is not a 5xx.
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use line_emulator::{Config, Emulator};
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    consent: Router,
    auto: Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let consent = Emulator::new(Config::default_demo()).unwrap().router();
        let mut auto = Config::default_demo();
        auto.auto_consent = true;
        let auto = Emulator::new(auto).unwrap().router();
        Harness { rt, consent, auto }
    })
}

/// Percent-encodes what a URI query cannot hold; keeps `&`, `=`, `%` and `+` as they are so
/// the fuzzer controls the parameter structure and its own escapes.
fn query(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"&=%+-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let router = if sel & 0x80 == 0 { &h.consent } else { &h.auto };
    let form = |path: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(rest.to_vec()))
    };
    let req = match sel % 6 {
        0 | 1 => Request::builder()
            .uri(format!("/oauth2/v2.1/authorize?{}", query(rest)))
            .body(Body::empty()),
        2 => form("/oauth2/v2.1/authorize/consent"),
        3 => form("/oauth2/v2.1/token"),
        4 => form("/oauth2/v2.1/verify"),
        _ => form("/oauth2/v2.1/revoke"),
    };
    let Ok(req) = req else {
        return;
    };
    h.rt.block_on(async {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let _ = resp.into_body().collect().await.unwrap();
        assert!(!status.is_server_error(), "{status}");
    });
});
