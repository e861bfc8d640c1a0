//! Webhooks (Standard Webhooks): while the app is down (it accepts and never answers), the
//! events queue and `/healthz` shows them pending, and the deauthorization is not held up by
//! them; when the app is back, each event arrives exactly once with a valid signature, in
//! order for the account, and a delivery the app refused is retried with the same
//! `webhook-id`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use linelogin_server::config::{WebhookConfig, WebhookSecret};

use crate::fake_line::FakeLine;
use crate::harness::{Harness, Opts, bind, get_json};

/// The signing secret of the test (`whsec_` + base64 of 32 bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";
const USER: &str = "U00000000000000000000000000000001";

/// What the app saw of one request, and what it answered.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

/// The app's behaviour: 0 hangs (down), 1 answers 500 once then 200, 2 answers 200.
#[derive(Clone, Default)]
struct App {
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn hook(State(app): State<App>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mode = app.mode.load(Ordering::SeqCst);
    if mode == 0 {
        app.seen.lock().unwrap().push(Seen {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: body.clone(),
            answered: 0,
        });
        std::future::pending::<()>().await;
    }
    let status = if mode == 1 {
        app.mode.store(2, Ordering::SeqCst);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    app.seen.lock().unwrap().push(Seen {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        answered: status.as_u16(),
    });
    status
}

/// A verifier written from the Standard Webhooks specification: the signed content is
/// `{id}.{timestamp}.{body}`, the key is the base64 after `whsec_`, the header holds
/// space-separated `v1,<base64 HMAC-SHA256>` entries, and the timestamp must be within five
/// minutes of now.
fn verify(secret: &str, id: &str, timestamp: &str, body: &str, header: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap();
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return false;
    }
    header.split(' ').any(|entry| {
        let Some(sig) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        mac.verify_slice(&sig).is_ok()
    })
}

async fn healthz(h: &Harness) -> serde_json::Value {
    get_json(h.url("/healthz")).await
}

/// Polls `/healthz` until `ok` holds (at most ~20 s).
async fn wait_health(h: &Harness, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let mut last = serde_json::Value::Null;
    for _ in 0..1000 {
        last = healthz(h).await;
        if ok(&last) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: /healthz is {last}");
}

#[tokio::test]
async fn events_queue_while_the_app_is_down_and_arrive_signed_once_in_order() {
    let app = App::default();
    let (listener, base) = bind().await;
    let hook_url = format!("{base}/hooks/linelogin");
    let router = Router::new()
        .route("/hooks/linelogin", post(hook))
        .with_state(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let mut webhook = WebhookConfig::new(
        hook_url.parse().unwrap(),
        WebhookSecret::parse(SECRET).unwrap(),
    );
    webhook.timeout_ms = 5000;
    webhook.backoff_base_ms = 20;
    webhook.backoff_max_ms = 200;
    let h = Harness::start_with(
        FakeLine::start().await,
        Opts::default().config(|c| c.webhook = Some(webhook)),
    )
    .await;

    // The app is down: it accepts and never answers.
    let c = h.client();
    h.login(&c).await;
    let account = h.account(USER).await.unwrap();
    // The `account.linked` delivery is now hanging (for up to 5 s, the delivery timeout).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.seen.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery was tried"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = h.submit(&c, "/account/unregister").await;
    let unregistered = std::time::Instant::now();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    // The deauthorization goes through at once, while every event is still queued behind
    // the hanging app (one loop for both would wait for the hanging POST first).
    wait_health(&h, "deauthorized while the app is down", |v| {
        v["deauthorization"]["pending"] == 0 && v["webhooks"]["pending"] == 3
    })
    .await;
    let took = unregistered.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "a hanging app held up the deauthorization for {took:?}"
    );
    assert!(!h.line.is_authorized(USER));
    assert_eq!(h.line.calls("/user/v1/deauthorize"), vec![204]);
    assert!(
        !app.seen.lock().unwrap().is_empty(),
        "the app was tried while down"
    );
    assert_eq!(healthz(&h).await["webhooks"]["failed"], 0);

    // The app is back; it refuses its first delivery (a forced retry), then takes them all.
    let line_calls = h.line.journal().len();
    app.mode.store(1, Ordering::SeqCst);
    wait_health(&h, "every event delivered", |v| {
        v["webhooks"]["pending"] == 0
    })
    .await;
    assert_eq!(
        h.line.journal().len(),
        line_calls,
        "webhook deliveries never go to LINE (none of its budget)"
    );
    let seen = app.seen.lock().unwrap().clone();
    let delivered: Vec<&Seen> = seen.iter().filter(|s| s.answered == 204).collect();
    assert_eq!(delivered.len(), 3, "each event exactly once: {seen:#?}");
    for s in &seen {
        assert!(
            verify(SECRET, &s.id, &s.timestamp, &s.body, &s.signature),
            "signature of {s:?}"
        );
        assert!(!verify(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &s.id,
            &s.timestamp,
            &s.body,
            &s.signature
        ));
    }
    let refused = seen.iter().find(|s| s.answered == 500).unwrap();
    let retried = delivered.iter().find(|s| s.id == refused.id).unwrap();
    assert_eq!(retried.body, refused.body, "a retry sends the same event");
    for s in seen.iter().filter(|s| s.answered == 0) {
        assert!(
            delivered.iter().any(|d| d.id == s.id),
            "same id after the app was down"
        );
    }
    let bodies: Vec<serde_json::Value> = delivered
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect();
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "account.linked",
            "account.unregistered",
            "account.deauthorized"
        ]
    );
    for b in &bodies {
        assert_eq!(b["data"]["account"], account.id.as_str());
        assert_eq!(b["data"]["userId"], USER);
        assert!(
            time::OffsetDateTime::parse(
                b["timestamp"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok(),
            "{b}"
        );
    }
    assert_eq!(bodies[1]["data"]["job"], bodies[2]["data"]["job"]);
    let ids: std::collections::HashSet<&str> = delivered.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "one id per event");
    let health = healthz(&h).await;
    assert_eq!(health["status"], "ok", "{health}");
    h.stop().await;
}
