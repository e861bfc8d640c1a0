//! `[gateway]`: routes under the prefix, forward auth, the identity headers and the signed
//! assertion (verified with `jsonwebtoken` against the JWKS the gateway serves), key rotation.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use line_emulator::{ChannelConfig, UserConfig};
use linelogin_server::config::{ApiKey, GatewayConfig};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

use crate::fake_line::{CHANNEL_ID, CHANNEL_SECRET, FakeLine};
use crate::harness::{Harness, Opts, get_json, location, query_param, unix_now};

const PREFIX: &str = "/linelogin";
const EMU_USER: &str = crate::emulator::EMU_USER;

/// The server as a gateway with `gateway` in front of the emulator, whose one user has a
/// non-ASCII name and an email; scopes include `email`.
async fn start_gateway(gateway: GatewayConfig) -> crate::emulator::Emu {
    let opts = Opts::default()
        .config(|c| {
            c.line.scopes = ["openid", "profile", "email"].map(str::to_owned).to_vec();
        })
        .gateway(gateway);
    crate::emulator::start_custom(opts, true, |cfg, base| {
        cfg.channels = vec![ChannelConfig::new(
            CHANNEL_ID,
            CHANNEL_SECRET,
            vec![format!("{base}{PREFIX}/callback").parse().unwrap()],
        )];
        let mut user = UserConfig::new(EMU_USER, "山田 Taro & Co");
        user.email = Some("taro@example.com".to_owned());
        cfg.users = vec![user];
    })
    .await
}

/// A gateway in front of `upstream`, with these public paths.
fn proxy_to(upstream: &str, public_paths: &[&str]) -> GatewayConfig {
    GatewayConfig {
        upstream: Some(upstream.parse().unwrap()),
        public_paths: public_paths.iter().map(|p| (*p).to_owned()).collect(),
        ..GatewayConfig::default()
    }
}

/// Follows a gateway login URL (relative or absolute) through LINE back to the callback;
/// returns the callback's answer.
async fn login_via(h: &Harness, c: &reqwest::Client, login_url: &str) -> reqwest::Response {
    let trip = h.login_at(c, login_url).await;
    assert_eq!(
        query_param(&trip.authorize, "redirect_uri"),
        h.url(&format!("{PREFIX}/callback")),
        "the callback URL carries the prefix"
    );
    trip.response
}

/// Verifies an assertion against the JWKS served by the gateway at `base`.
async fn verify(base: &str, token: &str, aud: &str) -> Result<serde_json::Value, String> {
    let jwks: JwkSet = reqwest::get(format!("{base}{PREFIX}/.well-known/jwks.json"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.alg != Algorithm::ES256 {
        return Err(format!("alg {:?}", header.alg));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[aud]);
    v.set_issuer(&[base]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn routes_move_under_the_prefix_and_nothing_stays_at_the_root() {
    let e = start_gateway(GatewayConfig {
        prefix: "/linelogin".to_owned(),
        api_key: Some(ApiKey::new("gw-test-api-key-0123456789").unwrap()),
        ..GatewayConfig::default()
    })
    .await;
    let h = &e.h;
    let c = h.client();
    // The server-to-server API is nested under the prefix too.
    let api = |path: &str, key: Option<&str>| {
        let mut req = c.get(h.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    let key = Some("gw-test-api-key-0123456789");
    assert_eq!(
        api("/linelogin/api/accounts/a_unknown", None)
            .await
            .unwrap()
            .status(),
        401
    );
    let r = api("/linelogin/api/accounts/a_unknown", key).await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unknown_account", "the API answered");
    assert_eq!(
        api("/api/accounts/a_unknown", key).await.unwrap().status(),
        404
    );
    for path in [
        "/",
        "/login",
        "/callback",
        "/me",
        "/api/me",
        "/healthz",
        "/terms",
    ] {
        let r = h.get(&c, path).await;
        assert_eq!(r.status(), 404, "{path} at the root");
    }
    let r = h.get(&c, "/linelogin/healthz").await;
    assert_eq!(r.status(), 200);
    let r = h.get(&c, "/linelogin/static/style.css").await;
    assert_eq!(r.status(), 200);
    let r = h.get(&c, "/linelogin/nope").await;
    assert_eq!(r.status(), 404, "unknown path under the prefix");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("/linelogin/static/style.css")
    );
    let r = h.get(&c, "/linelogin/api/me").await;
    assert_eq!(r.status(), 401);
    let html = h.page(&c, "/linelogin").await;
    for link in [
        "href=\"/linelogin/static/style.css\"",
        "href=\"/linelogin/login\"",
        "href=\"/linelogin/terms\"",
        "href=\"/linelogin\"",
    ] {
        assert!(html.contains(link), "{link} in {html}");
    }
    assert!(!html.contains("href=\"/login\"") && !html.contains("href=\"/me\""));
    let r = h.get(&c, "/linelogin/me").await;
    assert!(r.status().is_redirection());
    assert_eq!(location(&r), "/linelogin/login?next=/linelogin/me");

    // After login, every page link and form action carries the prefix.
    let r = login_via(h, &c, "/linelogin/login").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/linelogin/me");
    let me = h.page(&c, "/linelogin/me").await;
    for link in [
        "action=\"/linelogin/logout\"",
        "href=\"/linelogin/account/unlink\"",
        "href=\"/linelogin/account/unregister\"",
        "href=\"/linelogin/me?lang=ja\"",
    ] {
        assert!(me.contains(link), "{link}");
    }
    let confirm = h.page(&c, "/linelogin/account/unlink").await;
    assert!(confirm.contains("action=\"/linelogin/account/unlink\""));
    let csrf = crate::harness::extract_csrf(&me).unwrap();
    let r = h.post_form(&c, "/linelogin/logout", Some(&csrf)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/linelogin");
}

#[tokio::test]
async fn forward_auth_gives_identity_headers_and_a_verifiable_assertion() {
    let e = start_gateway(GatewayConfig {
        assertion_audience: Some("my-app".to_owned()),
        ..GatewayConfig::default()
    })
    .await;
    let h = &e.h;
    let c = h.client();

    let r = h.get(&c, "/linelogin/auth").await;
    assert_eq!(r.status(), 401, "no session");
    assert!(header(&r, "x-linelogin-user").is_none());

    // Caddy / Traefik: the original URI comes back as `next`, and the user lands on it.
    let r = c
        .get(h.url("/linelogin/auth/redirect"))
        .header("x-forwarded-uri", "/app/page?x=1&y=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let login = location(&r);
    assert!(
        login.starts_with(&h.url("/linelogin/login?next=")),
        "{login}"
    );
    assert_eq!(query_param(&login, "next"), "/app/page?x=1&y=2");
    let r = login_via(h, &c, &login).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "/app/page?x=1&y=2",
        "after login, the user lands on next"
    );

    let before = unix_now() as i64;
    for path in ["/linelogin/auth", "/linelogin/auth/redirect"] {
        let r = h.get(&c, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "x-linelogin-user").as_deref(), Some(EMU_USER));
        let account = header(&r, "x-linelogin-account").unwrap();
        assert!(account.starts_with("a_"), "{account}");
        let name = header(&r, "x-linelogin-name").unwrap();
        assert_eq!(
            percent_encoding::percent_decode_str(&name)
                .decode_utf8()
                .unwrap(),
            "山田 Taro & Co"
        );
        assert!(name.is_ascii() && !name.contains(' '), "{name}");
        assert_eq!(
            header(&r, "x-linelogin-email").as_deref(),
            Some("taro@example.com")
        );
        let token = header(&r, "x-linelogin-assertion").unwrap();
        let claims = verify(&h.base, &token, "my-app")
            .await
            .unwrap_or_else(|e| panic!("assertion does not verify: {e}"));
        assert_eq!(claims["sub"], EMU_USER);
        assert_eq!(claims["account"], account.as_str());
        assert_eq!(claims["name"], "山田 Taro & Co");
        assert_eq!(claims["email"], "taro@example.com");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert!(
            iat >= before - 1 && exp > iat && exp - iat <= 300,
            "{iat} {exp}"
        );
        // Another audience, or a tampered token, does not verify.
        assert!(verify(&h.base, &token, "other-app").await.is_err());
        let mut bad = token.clone().into_bytes();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert!(
            verify(&h.base, &String::from_utf8(bad).unwrap(), "my-app")
                .await
                .is_err()
        );
    }
    let r = h.get(&c, "/linelogin/.well-known/jwks.json").await;
    assert_eq!(
        header(&r, "cache-control").as_deref(),
        Some("public, max-age=300")
    );

    // Logged out: 401 and 302 again.
    let me = h.page(&c, "/linelogin/me").await;
    let csrf = crate::harness::extract_csrf(&me).unwrap();
    let r = h.post_form(&c, "/linelogin/logout", Some(&csrf)).await;
    assert_eq!(r.status(), 303);
    let r = h.get(&c, "/linelogin/auth").await;
    assert_eq!(r.status(), 401);
    let r = h.get(&c, "/linelogin/auth/redirect").await;
    assert_eq!(r.status(), 302);
}

#[tokio::test]
async fn auth_redirect_never_sends_the_user_off_site() {
    let e = start_gateway(GatewayConfig::default()).await;
    let h = &e.h;
    let c = h.client();
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[("x-forwarded-uri", "https://evil.example/x")], "/"),
        (&[("x-forwarded-uri", "//evil.example/x")], "/"),
        (&[("x-forwarded-uri", "/\\evil.example")], "/"),
        (&[("x-forwarded-uri", "/%2F%2Fevil.example")], "/"),
        (&[("x-forwarded-uri", "javascript:alert(1)")], "/"),
        (&[], "/"),
        (&[("x-original-uri", "/from/nginx?a=1")], "/from/nginx?a=1"),
        (
            &[("x-forwarded-uri", "/caddy"), ("x-original-uri", "/nginx")],
            "/caddy",
        ),
        (&[("x-forwarded-uri", "/ok/path")], "/ok/path"),
    ];
    for (headers, want) in cases {
        let mut req = c.get(h.url("/linelogin/auth/redirect"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 302, "{headers:?}");
        let to = location(&r);
        assert!(to.starts_with(&h.url("/linelogin/login?next=")), "{to}");
        assert_eq!(query_param(&to, "next"), want, "{headers:?}");
    }
    // The login page itself keeps a bad `next` out: the callback lands on the default.
    let r = login_via(h, &c, "/linelogin/login?next=//evil.example").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/linelogin/me");
}

/// A PEM file with these P-256 keys (fixed scalars), in this order.
fn key_file(dir: &std::path::Path, name: &str, scalars: &[u8]) -> std::path::PathBuf {
    let mut pem = String::new();
    for s in scalars {
        let key = p256::SecretKey::from_slice(&[*s; 32]).unwrap();
        pem.push_str(key.to_pkcs8_pem(LineEnding::LF).unwrap().as_str());
    }
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

#[tokio::test]
async fn signing_keys_rotate_without_invalidating_assertions_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let one_two = key_file(dir.path(), "a.pem", &[1, 2]);
    let two_one = key_file(dir.path(), "b.pem", &[2, 1]);
    let two = key_file(dir.path(), "c.pem", &[2]);
    let db = dir.path().join("ll.db");
    let start = |file: std::path::PathBuf| {
        let db = db.clone();
        async move {
            let opts = Opts {
                db: Some(db),
                ..Opts::default()
            }
            .gateway(GatewayConfig {
                signing_key_file: Some(file),
                assertion_audience: Some("app".to_owned()),
                ..GatewayConfig::default()
            });
            Harness::start_with(FakeLine::start().await, opts).await
        }
    };
    let assertion = |h: &Harness, c: &reqwest::Client| {
        let req = c.get(h.url("/linelogin/auth"));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            header(&r, "x-linelogin-assertion").unwrap()
        }
    };
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();

    let h = start(one_two).await;
    let c = h.client();
    let r = login_via(&h, &c, "/linelogin/login").await;
    assert_eq!(r.status(), 303);
    let old = assertion(&h, &c).await;
    let old_base = h.base.clone();
    verify(&h.base, &old, "app").await.unwrap();
    let (_, _, keep) = h.stop().await;
    let _ = keep;

    // Swapped: key 2 signs; the token signed by key 1 still verifies (key 1 is listed).
    let h = start(two_one).await;
    let new = assertion(&h, &c).await;
    assert_ne!(kid(&new), kid(&old), "the new first key signs");
    verify(&h.base, &new, "app").await.unwrap();
    let jwks: JwkSet = get_json(h.url("/linelogin/.well-known/jwks.json")).await;
    assert_eq!(jwks.keys.len(), 2);
    assert!(
        jwks.find(&kid(&old)).is_some(),
        "the old key stays published"
    );
    h.stop().await;

    // Key 1 removed: its tokens no longer verify.
    let h = start(two).await;
    let jwks: JwkSet = get_json(h.url("/linelogin/.well-known/jwks.json")).await;
    assert_eq!(jwks.keys.len(), 1);
    assert!(jwks.find(&kid(&old)).is_none());
    assert!(jwks.find(&kid(&new)).is_some());
    let _ = old_base;
    h.stop().await;
}

#[tokio::test]
async fn a_bad_signing_key_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut config = crate::harness::config(
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        &dir.path().join("ll.db"),
    );
    let signing_key = |file: &str| {
        Some(GatewayConfig {
            signing_key_file: Some(file.into()),
            ..GatewayConfig::default()
        })
    };
    config.gateway = signing_key(path.to_str().unwrap());
    let err = linelogin_server::AppState::builder(&config)
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("signing_key_file") && err.contains("not a P-256"),
        "{err}"
    );
    config.gateway = signing_key("/nonexistent/k.pem");
    let err = linelogin_server::AppState::builder(&config)
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/k.pem"), "{err}");
}

/// An upstream app that answers every request with what it received (method, path and
/// query, headers) as JSON.
async fn echo_upstream() -> String {
    use axum::extract::Request;
    async fn echo(req: Request) -> axum::Json<serde_json::Value> {
        let mut headers = serde_json::Map::new();
        for (k, v) in req.headers() {
            let v = v.to_str().unwrap_or("<bin>").to_owned();
            headers
                .entry(k.as_str().to_owned())
                .and_modify(|e| *e = format!("{}, {v}", e.as_str().unwrap()).into())
                .or_insert(v.into());
        }
        axum::Json(serde_json::json!({
            "marker": "echo",
            "method": req.method().as_str(),
            "target": req.uri().path_and_query().map(|p| p.as_str()),
            "headers": headers,
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A client with its own cookie jar (so a test can put the app's own cookies in it).
fn client_with_jar() -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let c = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (c, jar)
}

async fn echoed(r: reqwest::Response) -> serde_json::Value {
    assert_eq!(r.status(), 200, "forwarded to the upstream");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["marker"], "echo");
    v
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

#[tokio::test]
async fn proxy_mode_logs_in_and_sends_only_its_own_identity_upstream() {
    let upstream = echo_upstream().await;
    let e = start_gateway(proxy_to(&upstream, &["/health", "/static/"])).await;
    let h = &e.h;
    let (c, jar) = client_with_jar();
    jar.add_cookie_str("app_pref=blue", &h.base.parse().unwrap());

    // Without a session: a navigation is sent to the login page, anything else gets 401.
    let r = c
        .get(h.url("/app/page?x=1"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let login = location(&r);
    assert_eq!(query_param(&login, "next"), "/app/page?x=1");
    for (method, accept) in [
        (reqwest::Method::GET, "application/json"),
        (reqwest::Method::POST, HTML),
    ] {
        let r = c
            .request(method, h.url("/api/data"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(header(&r, "www-authenticate").is_some());
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
        assert_eq!(
            body["login_url"],
            h.url("/linelogin/login?next=%2Fapi%2Fdata").as_str()
        );
    }

    // Public paths go upstream without identity, spoofed headers stripped.
    for path in ["/health", "/static/app.css"] {
        let v = echoed(
            c.get(h.url(path))
                .header("x-linelogin-user", "Uevil")
                .header("X-LineLogin-Assertion", "forged")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(v["target"], path);
        let headers = v["headers"].as_object().unwrap();
        assert!(
            !headers.keys().any(|k| k.starts_with("x-linelogin-")),
            "{headers:?}"
        );
        assert_eq!(headers["cookie"], "app_pref=blue");
    }
    for path in ["/static/../admin", "/static/%2e%2e/admin", "/healthz"] {
        let r = h.get(&c, path).await;
        assert_eq!(r.status(), 401, "{path} is not public");
    }

    // Log in through the redirect: the user lands on the page they asked for.
    let r = login_via(h, &c, &login).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/app/page?x=1");
    let v = echoed(
        c.get(h.url("/app/page?x=1"))
            .header("accept", HTML)
            .header("x-linelogin-user", "Uevil")
            .header("x-linelogin-assertion", "forged")
            .header("X-LineLogin-Role", "admin")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["target"], "/app/page?x=1");
    let headers = v["headers"].as_object().unwrap();
    assert_eq!(headers["x-linelogin-user"], EMU_USER);
    assert_eq!(headers["x-linelogin-email"], "taro@example.com");
    assert!(!headers.contains_key("x-linelogin-role"));
    let cookie = headers["cookie"].as_str().unwrap();
    assert!(cookie.contains("app_pref=blue"), "{cookie}");
    assert!(
        !cookie.contains("ll_"),
        "linelogin's cookies stay here: {cookie}"
    );
    // The default audience is the upstream's origin.
    let claims = verify(
        &h.base,
        headers["x-linelogin-assertion"].as_str().unwrap(),
        &upstream,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claims["sub"], EMU_USER);
    // A public path with a session carries the identity too.
    let v = echoed(h.get(&c, "/health").await).await;
    assert_eq!(v["headers"]["x-linelogin-user"], EMU_USER);
    // linelogin's own pages are not proxied, and keep their headers.
    let r = h.get(&c, "/linelogin/me").await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-security-policy").is_some());
    // The upstream's responses do not get linelogin's headers.
    let r = h.get(&c, "/app").await;
    assert!(header(&r, "content-security-policy").is_none());
    assert!(header(&r, "cache-control").is_none());
}

#[tokio::test]
async fn upstream_down_is_a_502_page_and_a_silent_one_a_504() {
    // Down: a port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = start_gateway(proxy_to(&down, &["/"])).await;
    let c = e.h.client();
    let r = c
        .get(e.h.url("/page"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("unreachable") && html.contains("/linelogin/static/style.css"));
    let r = e.h.get(&c, "/api/x").await;
    assert_eq!(r.status(), 502);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway");

    // Silent: accepts connections, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let e = start_gateway(GatewayConfig {
        response_header_timeout_ms: 300,
        ..proxy_to(&silent_url, &["/"])
    })
    .await;
    let started = std::time::Instant::now();
    let r = e.h.client().get(e.h.url("/slow")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "gateway_timeout");
}

/// Sends raw bytes to `addr` and returns the whole response (the request asks to close).
async fn raw(addr: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn absolute_form_targets_and_foreign_hosts_reach_only_the_upstream() {
    let upstream = echo_upstream().await;
    let e = start_gateway(proxy_to(&upstream, &["/pub/"])).await;
    let addr = e.h.base.trim_start_matches("http://").to_owned();
    for request in [
        "GET http://evil.invalid/pub/x HTTP/1.1\r\nHost: evil.invalid\r\nConnection: close\r\n\r\n",
        "GET /pub/x HTTP/1.1\r\nHost: evil.invalid\r\nX-Forwarded-Host: evil.invalid\r\nConnection: close\r\n\r\n",
        "GET http://127.0.0.1:1/pub/x HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n",
    ] {
        let resp = raw(&addr, request).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{request:?} -> {resp}");
        assert!(resp.contains("\"marker\":\"echo\""), "{resp}");
        assert!(resp.contains("\"target\":\"/pub/x\""), "{resp}");
    }
    // Not public: the absolute form does not get around the login either.
    let resp = raw(
        &addr,
        "GET http://evil.invalid/private HTTP/1.1\r\nHost: evil.invalid\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
}

#[tokio::test]
async fn an_assertion_is_reused_for_at_most_a_minute_and_never_after_logout() {
    let now = unix_now();
    let clock = line_login::clock::MockClock::at_unix(now);
    let opts = Opts::default()
        .clock(&clock)
        .gateway(GatewayConfig::default());
    let h = Harness::start_with(FakeLine::start().await, opts).await;
    let c = h.client();
    h.login(&c).await;
    let claims = |t: &str| {
        use base64::Engine as _;
        let payload = t.split('.').nth(1).unwrap();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&json).unwrap()
    };
    let auth = || async {
        let r = h.get(&c, "/linelogin/auth").await;
        assert_eq!(r.status(), 200);
        header(&r, "x-linelogin-assertion").unwrap()
    };
    let first = auth().await;
    assert_eq!(claims(&first)["iat"], now);
    assert_eq!(claims(&first)["exp"], now + 300);
    clock.advance(std::time::Duration::from_secs(59));
    assert_eq!(
        auth().await,
        first,
        "reused while more than 4 minutes are left"
    );
    clock.advance(std::time::Duration::from_secs(2));
    let second = auth().await;
    assert_ne!(second, first, "signed again after a minute");
    assert_eq!(claims(&second)["iat"], now + 61);

    // Log out: the session and its cached assertion are gone.
    let csrf = h.csrf(&c, "/linelogin/me").await;
    assert_eq!(
        h.post_form(&c, "/linelogin/logout", Some(&csrf))
            .await
            .status(),
        303
    );
    let r = h.get(&c, "/linelogin/auth").await;
    assert_eq!(r.status(), 401);
    h.login(&c).await;
    assert_ne!(auth().await, second, "a new session signs its own");

    // Unlink ends every session of the account, in every browser: their cached identities
    // go with them.
    let other = h.client();
    h.login(&other).await;
    let r = h.get(&other, "/linelogin/auth").await;
    assert_eq!(r.status(), 200, "the other browser's identity is cached");
    assert_eq!(
        h.submit(&c, "/linelogin/account/unlink").await.status(),
        200
    );
    let r = h.get(&other, "/linelogin/auth").await;
    assert_eq!(r.status(), 401, "no cached identity after unlink");
    h.stop().await;
}
