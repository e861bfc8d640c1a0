//! Cross-cutting behaviour: request IDs, body limit, malformed input, faults (and the limits
//! of fault rules), rate limits, journal, stats, reset.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

fn is_request_id(v: &str) -> bool {
    v.len() == 16
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let env = start().await;
    let mut seen = std::collections::HashSet::new();
    let requests = vec![
        env.api.get(env.url("/.well-known/openid-configuration")),
        env.api.get(env.url("/oauth2/v2.1/certs")),
        env.api.get(env.url("/oauth2/v2.1/authorize")),
        env.api.post(env.url("/oauth2/v2.1/token")),
        env.api.get(env.url("/oauth2/v2.1/verify")),
        env.api.post(env.url("/oauth2/v2.1/verify")),
        env.api.post(env.url("/oauth2/v2.1/revoke")),
        env.api.get(env.url("/oauth2/v2.1/userinfo")),
        env.api.get(env.url("/v2/profile")),
        env.api.get(env.url("/friendship/v1/status")),
        env.api.post(env.url("/user/v1/deauthorize")),
        env.api.post(env.url("/oauth2/v3/token")),
        env.api.get(env.url("/oauth2/v2.1/tokens/kid")),
        env.api.post(env.url("/v2/oauth/accessToken")),
        env.api.post(env.url("/v2/oauth/verify")),
        env.api.post(env.url("/v2/oauth/revoke")),
        env.api.get(env.url("/no/such/path")),
        env.api.delete(env.url("/v2/profile")),
    ];
    for r in requests {
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let id = resp.headers()["x-line-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(is_request_id(&id), "{id}");
        assert!(seen.insert(id));
        if status.as_u16() >= 400 && status.as_u16() != 413 {
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = resp.text().await.unwrap();
            if ct.as_deref() == Some("application/json") {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert!(
                    v.get("error").is_some() || v.get("message").is_some(),
                    "{body}"
                );
            } else {
                assert!(ct.unwrap().starts_with("text/html"), "{body}");
            }
        }
    }
}

#[tokio::test]
async fn bodies_over_two_megabytes_get_413() {
    let env = start().await;
    let big = "a=".to_owned() + &"x".repeat(2 * 1024 * 1024 + 10);
    for path in [
        "/oauth2/v2.1/token",
        "/user/v1/deauthorize",
        "/oauth2/v2.1/revoke",
        "/v2/profile",
    ] {
        let resp = env
            .api
            .post(env.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413, "{path}");
        assert!(resp.headers().contains_key("x-line-request-id"));
    }
    // Chunked (no Content-Length) too, over a raw connection.
    let status = raw_chunked_post(&env, "/oauth2/v2.1/token", 40, 64 * 1024).await;
    assert_eq!(status, 413);
    let status = raw_chunked_post(&env, "/oauth2/v2.1/token", 1, 16).await;
    assert_eq!(status, 400, "a small chunked body is read normally");
}

async fn raw_chunked_post(env: &Env, path: &str, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = env.connect().await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let _ = conn.write_all(head.as_bytes()).await;
    let chunk = format!("{size:x}\r\n{}\r\n", "x".repeat(size));
    for _ in 0..chunks {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn malformed_requests_get_line_shaped_400s() {
    let env = start().await;
    // Wrong content type on the token endpoint.
    let r = env
        .api
        .post(env.url("/oauth2/v2.1/token"))
        .header("content-type", "application/json")
        .body("{\"grant_type\":\"authorization_code\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    // Invalid UTF-8 and percent garbage in a form.
    for body in [
        &b"grant_type=%ff%fe&code=\xff\xfe"[..],
        b"%%%===&&&",
        b"\x00\x01\x02",
    ] {
        let r = env
            .api
            .post(env.url("/oauth2/v2.1/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string());
    }
    // Garbage query strings on authorize and verify.
    let r = env
        .get("/oauth2/v2.1/authorize?%ff%fe=%zz&client_id=%")
        .await;
    assert_eq!(r.status(), 400);
    let r = env
        .get("/oauth2/v2.1/verify?access_token=%ff.%fe.%00")
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    // Duplicate parameters in authorize.
    let url = env.authorize_url(&[]) + "&state=again";
    let r = env.api.get(url).send().await.unwrap();
    assert_eq!(query_of(&location(&r).unwrap())["error"], "INVALID_REQUEST");
    // Unknown path and wrong method: {"message"}.
    let r = env.get("/nope").await;
    assert_eq!(r.status(), 404);
    let r = env.get("/oauth2/v2.1/token").await;
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].is_string());
    // Garbage bearer tokens.
    for tok in [
        "a.b.c",
        "eyJ.eyJ.x",
        "eyJhbGciOiJIUzI1NiJ9.AAAA.BBBB",
        &"x".repeat(5000),
    ] {
        let (s, b) = env.get_bearer("/v2/profile", tok).await;
        assert_eq!((s, b), (401, json!({"message": "invalid token"})));
    }
    // A consent post with nothing in it.
    let r = env
        .api
        .post(env.url("/oauth2/v2.1/authorize/consent"))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn fault_injection_status_count_probability_latency() {
    let env = start().await;
    let r = env
        .api
        .put(env.url("/_emulator/faults"))
        .json(&json!([
            {"endpoint": "profile", "status": 503, "body": {"message": "maintenance"}, "count": 2, "retry_after": 7},
            {"endpoint": "/oauth2/v2.1/certs", "latency_ms": 300},
            {"endpoint": "friendship", "status": 500, "probability": 0.0},
            {"endpoint": "userinfo", "status": 502, "body": "<html>bad gateway</html>"}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = env.login_tokens(&env.user_ids()[0], "profile openid").await;
    let access = t["access_token"].as_str().unwrap();
    for _ in 0..2 {
        let r = env
            .api
            .get(env.url("/v2/profile"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "7");
        assert!(r.headers().contains_key("x-line-request-id"));
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "maintenance"})
        );
    }
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 200, "count exhausted");
    let (s, _) = env.get_bearer("/friendship/v1/status", access).await;
    assert_eq!(s, 200, "probability 0 never fires");
    let r = env
        .api
        .get(env.url("/oauth2/v2.1/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "<html>bad gateway</html>");
    let start = Instant::now();
    let r = env.get("/oauth2/v2.1/certs").await;
    assert_eq!(r.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    let faults = env.admin_get("/_emulator/faults").await;
    assert_eq!(faults["faults"][0]["hits"], 2);
    assert_eq!(faults["faults"][0]["remaining"], 0);
    let journal = env.admin_get("/_emulator/journal?limit=50").await;
    assert!(
        journal["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["fault"] == true)
    );

    let r = env
        .api
        .delete(env.url("/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, _) = env.get_bearer("/oauth2/v2.1/userinfo", access).await;
    assert_eq!(s, 200);

    // Bad fault specs are refused.
    for bad in [
        json!([{"endpoint": "x", "probability": 2.0}]),
        json!({"nope": 1}),
        json!([{"endpoint": "x", "status": 42}]),
    ] {
        let r = env.put_faults(&bad).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn fault_probability_is_roughly_honoured() {
    let env = start().await;
    env.put_faults(&json!({"endpoint": "certs", "status": 500, "probability": 0.5}))
        .await;
    let mut failures = 0;
    for _ in 0..200 {
        let r = env.get("/oauth2/v2.1/certs").await;
        if r.status() == 500 {
            failures += 1;
        }
    }
    assert!((40..=160).contains(&failures), "{failures}");
}

#[tokio::test]
async fn per_channel_rate_limit_answers_429() {
    let mut c = test_config();
    c.channels[0].rate_limit_per_second = Some(3);
    let env = start_with(c).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..10 {
        let r = env
            .api
            .post(env.url("/oauth2/v3/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", SECRET),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            last = Some(r.json::<Value>().await.unwrap());
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 6,
        "{statuses:?}"
    );
    assert_eq!(
        last.unwrap(),
        json!({"message": "The API rate limit has been exceeded. Try again later."})
    );
    // The other channel is not limited.
    let (s, _) = env
        .post_form(
            "/oauth2/v3/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "2000000001"),
                ("client_secret", "fedcba9876543210fedcba9876543210"),
            ],
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn journal_stats_and_reset() {
    let mut c = test_config();
    c.journal_capacity = 5;
    let env = start_with(c).await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let access = t["access_token"].as_str().unwrap();
    let r = env.verify_access(access).await;
    let rid = r.headers()["x-line-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let j = env.admin_get("/_emulator/journal?limit=2").await;
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let last = &entries[1];
    assert_eq!(last["method"], "GET");
    assert_eq!(
        last["path"], "/oauth2/v2.1/verify",
        "no query in the journal"
    );
    assert_eq!(last["endpoint"], "verify_access_token");
    assert_eq!(last["status"], 200);
    assert_eq!(last["request_id"], rid.as_str());
    assert_eq!(last["channel"], CHANNEL);
    assert!(last["time"].is_string());
    assert!(last["duration_us"].is_u64());
    assert!(
        !j.to_string().contains(access),
        "tokens never reach the journal"
    );

    // Bounded: at most 5 entries kept.
    for _ in 0..10 {
        env.get("/oauth2/v2.1/certs").await;
    }
    let j = env.admin_get("/_emulator/journal?limit=100").await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 5);

    let stats = env.admin_get("/_emulator/stats").await;
    assert_eq!(stats["endpoints"]["certs"]["by_status"]["200"], 10);
    assert_eq!(stats["endpoints"]["token"]["by_status"]["200"], 1);
    assert_eq!(stats["endpoints"]["authorize"]["by_status"]["200"], 1);
    assert_eq!(stats["endpoints"]["consent"]["by_status"]["302"], 1);
    assert!(stats["total"].as_u64().unwrap() >= 14);
    // The same counts for Prometheus.
    let text = env.get("/_emulator/metrics").await.text().await.unwrap();
    for line in [
        "line_emulator_requests_total{endpoint=\"certs\",status=\"200\"} 10",
        "line_emulator_requests_total{endpoint=\"token\",status=\"200\"} 1",
        "line_emulator_requests_total{endpoint=\"consent\",status=\"302\"} 1",
        "line_emulator_refresh_tokens 1",
        "line_emulator_active_grants 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in:\n{text}"
        );
    }

    // Reset forgets grants, tokens, stats and the clock offset.
    env.admin_post("/_emulator/clock", json!({"advance_secs": 100}))
        .await;
    let r = env
        .api
        .post(env.url("/_emulator/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let stats = env.admin_get("/_emulator/stats").await;
    assert_eq!(stats["total"], 0);
    assert_eq!(stats["clock_offset_secs"], 0);
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 401, "tokens from before the reset are dead");
    let apps = env
        .admin_get(&format!(
            "/_emulator/users/{}/authorized-apps",
            env.user_ids()[0]
        ))
        .await;
    assert_eq!(apps["authorized_apps"], json!([]));

    // Clock: GET, offset_secs, bad bodies.
    let c = env.admin_get("/_emulator/clock").await;
    assert_eq!(c["offset_secs"], 0);
    let r = env
        .admin_post("/_emulator/clock", json!({"offset_secs": -5}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["offset_secs"], -5);
    let r = env
        .admin_post("/_emulator/clock", json!({"bogus": 1}))
        .await;
    assert_eq!(r.status(), 400);
    let r = env.admin_get("/_emulator/users/U0/authorized-apps").await;
    assert!(r["message"].is_string());
}

#[tokio::test]
async fn shutdown_is_graceful() {
    let env = start().await;
    let addr = env.running.local_addr();
    env.running.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn callback_error_faults_produce_server_error_and_interaction_required() {
    let env = start().await;
    let r = env
        .api
        .put(env.url("/_emulator/faults"))
        .json(&json!([
            {"endpoint": "authorize", "callback_error": "SERVER_ERROR", "count": 1},
            {"endpoint": "authorize", "callback_error": "INTERACTION_REQUIRED", "count": 1}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for code in ["SERVER_ERROR", "INTERACTION_REQUIRED"] {
        let resp = env.get_authorize(&env.browser, &[]).await;
        assert_eq!(resp.status(), 302);
        let q = query_of(&location(&resp).unwrap());
        assert_eq!(q["error"], code);
        assert_eq!(q["state"], "st4te");
        assert!(q.contains_key("error_description"));
    }
    // Exhausted: the consent page again. A bad client_id still gets the HTML page.
    assert_eq!(env.get_authorize(&env.browser, &[]).await.status(), 200);
    let r = env
        .put_faults(&json!([{"endpoint": "authorize", "callback_error": "BOGUS"}]))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn sweep_drops_expired_and_dead_records() {
    let env = start().await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let _unused_code = env.login(&client(true), &env.user_ids()[1], &[]).await;
    let stats = env.admin_get("/_emulator/stats").await;
    assert_eq!(stats["codes_outstanding"], 1);
    assert_eq!(stats["refresh_tokens"], 1);
    // Revoke the refresh token's family, expire the code, sweep.
    env.post_form(
        "/oauth2/v2.1/revoke",
        &[
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", CHANNEL),
        ],
    )
    .await;
    env.admin_post("/_emulator/clock", json!({"advance_secs": 601}))
        .await;
    env.emulator.sweep();
    let stats = env.admin_get("/_emulator/stats").await;
    assert_eq!(stats["codes_outstanding"], 0);
    assert_eq!(stats["refresh_tokens"], 0);
    // The revoked family's access token stays revoked after the sweep.
    let (s, b) = env
        .get_bearer("/v2/profile", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (401, Some("The access token revoked"))
    );
}

#[tokio::test]
async fn journal_filters_by_endpoint_and_status() {
    let env = start().await;
    for _ in 0..3 {
        env.get("/oauth2/v2.1/certs").await;
        env.get("/v2/profile").await;
    }
    let j = env
        .admin_get("/_emulator/journal?endpoint=profile&limit=2")
        .await;
    let e = j["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert!(
        e.iter()
            .all(|x| x["endpoint"] == "profile" && x["status"] == 401)
    );
    assert!(e[0]["seq"].as_u64().unwrap() < e[1]["seq"].as_u64().unwrap());
    let j = env.admin_get("/_emulator/journal?status=200").await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 3);
    let j = env
        .admin_get("/_emulator/journal?endpoint=/oauth2/v2.1/certs")
        .await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_stalled_body_fails_instead_of_hanging() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = test_config();
    c.body_timeout_secs = 1;
    let env = start_with(c).await;
    let mut conn = env.connect().await;
    conn.write_all(
        b"POST /oauth2/v2.1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("the emulator answered")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("invalid_request"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn fault_rules_with_unbounded_latency_or_nonsense_are_refused() {
    let env = start().await;
    for bad in [
        json!([{"endpoint": "token", "latency_ms": u64::MAX}]),
        json!([{"endpoint": "token", "latency_ms": 600_001}]),
        json!([{"endpoint": "token", "probability": -0.1}]),
        json!([{"endpoint": "token", "status": 600}]),
        // 1xx is no final answer: hyper turns 100/103 into 500, and 101 hijacks the
        // connection.
        json!([{"endpoint": "token", "status": 101}]),
        json!([{"endpoint": "token", "status": 199}]),
        json!([{"endpoint": "token", "count": -1}]),
        json!([{"endpoint": "token", "unknown": 1}]),
    ] {
        let r = env.put_faults(&bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.json::<Value>().await.unwrap()["message"].is_string());
    }
    assert_eq!(
        env.admin_get("/_emulator/faults").await,
        json!({"faults": []})
    );
    // The largest accepted latency is accepted (and not applied to admin requests).
    let r = env
        .put_faults(&json!([{"endpoint": "*", "latency_ms": 600_000}]))
        .await;
    assert_eq!(r.status(), 200);
    let stats = env.admin_get("/_emulator/stats").await;
    assert!(stats["total"].is_u64());
}

/// The journal names the channel a request concerned on errors as well as on successes,
/// wherever in the handler the error arose, and never for a channel nobody named.
#[tokio::test]
async fn the_journal_tags_the_channel_on_errors_too() {
    const OTHER: &str = "2000000001";
    const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210";
    let mut c = test_config();
    c.channels[1].rate_limit_per_second = Some(1);
    let env = start_with(c).await;
    let openid_only = env.login_tokens(&env.user_ids()[0], "openid").await;
    let access = openid_only["access_token"].as_str().unwrap();
    let grant = |id, secret| {
        [
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", CALLBACK),
            ("client_id", id),
            ("client_secret", secret),
        ]
    };
    let mut expected: Vec<(&str, u16, Option<&str>)> = Vec::new();
    let (s, _) = env.token(&grant(CHANNEL, "wrong")).await;
    expected.push(("token", s, Some(CHANNEL)));
    let (s, _) = env.token(&grant(CHANNEL, SECRET)).await;
    expected.push(("token", s, Some(CHANNEL)));
    let (s, _) = env.token(&grant("999", SECRET)).await;
    expected.push(("token", s, None));
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    expected.push(("profile", s, Some(CHANNEL)));
    let (s, _) = env
        .post_form(
            "/oauth2/v2.1/verify",
            &[("id_token", "not.a.token"), ("client_id", CHANNEL)],
        )
        .await;
    expected.push(("verify_id_token", s, Some(CHANNEL)));
    let (s, _) = env
        .post_form(
            "/oauth2/v2.1/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", BEARER),
                ("client_assertion", &assertion(KID, CHANNEL, 100_000, None)),
            ],
        )
        .await;
    expected.push(("token", s, Some(CHANNEL)));
    for (client_id, channel) in [(CHANNEL, Some(CHANNEL)), ("999", None)] {
        for accept in ["text/html", "application/json"] {
            let r = env
                .api
                .get(env.url("/oauth2/v2.1/authorize"))
                .header("accept", accept)
                .query(&[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", "http://elsewhere.example/cb"),
                    ("state", "s"),
                    ("scope", "openid"),
                ])
                .send()
                .await
                .unwrap();
            expected.push(("authorize", r.status().as_u16(), channel));
        }
    }
    let mut limited = 0;
    for _ in 0..3 {
        let (s, _) = env
            .client_credentials("/oauth2/v3/token", OTHER, OTHER_SECRET)
            .await;
        limited += usize::from(s == 429);
        expected.push(("stateless_token", s, Some(OTHER)));
    }
    assert!(
        limited >= 1,
        "one request a second: one of three is refused"
    );
    assert!(
        expected[..10].iter().all(|(_, s, _)| *s >= 400),
        "{expected:?}"
    );

    let j = env
        .admin_get(&format!("/_emulator/journal?limit={}", expected.len()))
        .await;
    let got: Vec<(String, u16, Option<String>)> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap() as u16,
                e["channel"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let expected: Vec<(String, u16, Option<String>)> = expected
        .into_iter()
        .map(|(e, s, c)| (e.to_owned(), s, c.map(str::to_owned)))
        .collect();
    assert_eq!(got, expected);
}
