//! End to end with the real client: `AuditLog` as the `LineClient` observer writes one line
//! per attempt (failed and retried ones included), with bodies redacted, and `trace` then
//! links the callback to the token call by the code's hash.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use line_audit::{AuditConfig, AuditLog, Link, LogFormat, LogKind, Record, trace};
use line_login::LineClient;
use line_login::http::{FnTransport, HttpRequest, HttpResponse, TransportError};
use line_login::policy::{OutboundPolicy, PolicyConfig};
use line_login::secret::{AccessToken, AuthorizationCode, ChannelSecret, CodeVerifier};
use line_login::types::ChannelId;

type Reply = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send>>;

const SECRET: &str = "CHANNEL_SECRET_CANARY_0123456789ab";
const CODE: &str = "CODE_CANARY_Zfl2WjsWcn2XBBWApcty";
const TOKEN_OK: &str = r#"{"access_token":"AT_CANARY","expires_in":2592000,"id_token":"IDT_CANARY","refresh_token":"RT_CANARY","scope":"profile openid","token_type":"Bearer"}"#;

fn response(status: u16, body: &str, request_id: Option<&str>) -> HttpResponse {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    if let Some(id) = request_id {
        headers.insert("x-line-request-id", id.parse().unwrap());
    }
    HttpResponse {
        status: http::StatusCode::from_u16(status).unwrap(),
        headers,
        body: body.to_owned().into(),
    }
}

#[tokio::test]
async fn every_attempt_is_logged_and_traceable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AuditConfig::new(dir.path());
    config.bodies = true;
    let log = AuditLog::open(config).unwrap();

    let verify_attempts = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::clone(&verify_attempts);
    let transport = FnTransport(move |req: HttpRequest| -> Reply {
        let path = req.url.path().to_owned();
        let n = if path.ends_with("/verify") {
            attempts.fetch_add(1, Ordering::SeqCst)
        } else {
            0
        };
        Box::pin(async move {
            if path.ends_with("/token") {
                return Ok(response(200, TOKEN_OK, Some("aaaa000000000001")));
            }
            match n {
                0 => Ok(response(
                    503,
                    r#"{"message":"busy"}"#,
                    Some("aaaa000000000002"),
                )),
                1 => Err(TransportError::Connect("refused".into())),
                _ => Ok(response(
                    200,
                    r#"{"scope":"profile","client_id":"1234567890","expires_in":2591659}"#,
                    Some("aaaa000000000003"),
                )),
            }
        })
    });
    let client = LineClient::builder(ChannelId::new("1234567890"), ChannelSecret::new(SECRET))
        .base_url("https://api.line.me".parse().unwrap())
        .transport(Arc::new(transport))
        .policy(OutboundPolicy::new(PolicyConfig {
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            ..PolicyConfig::default()
        }))
        .observer(log.observer())
        .build()
        .unwrap();

    // The server's side of the login.
    let state = "n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA";
    log.authorization_request(
        log.now(),
        &format!("https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1234567890&state={state}"),
    )
    .unwrap();
    log.authorization_response(
        log.now(),
        "GET",
        &format!("/callback?code={CODE}&state={state}"),
    )
    .unwrap();
    client
        .exchange_code(
            &AuthorizationCode::new(CODE),
            &"https://app.example/callback".parse().unwrap(),
            Some(&CodeVerifier::new("V".repeat(43))),
        )
        .await
        .unwrap();
    client
        .verify_access_token(&AccessToken::new("AT_CANARY"))
        .await
        .unwrap();
    assert_eq!(verify_attempts.load(Ordering::SeqCst), 3);

    // Acknowledged records are in the file as soon as the calls returned.
    let text = std::fs::read_to_string(dir.path().join("api-request.log")).unwrap();
    for secret in [
        SECRET,
        CODE,
        "AT_CANARY",
        "RT_CANARY",
        "IDT_CANARY",
        &"V".repeat(43),
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the log:\n{text}"
        );
    }
    let records: Vec<_> = text
        .lines()
        .map(
            |l| match Record::parse(LogKind::ApiRequest, LogFormat::Tsv, l).unwrap() {
                Record::ApiRequest(a) => a,
                _ => unreachable!(),
            },
        )
        .collect();
    let summary: Vec<(Option<&str>, String, bool)> = records
        .iter()
        .map(|a| {
            (
                a.request_id.as_deref(),
                a.status_text(),
                a.endpoint.ends_with("/verify"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("aaaa000000000001"), "200".to_owned(), false),
            (Some("aaaa000000000002"), "503".to_owned(), true),
            (None, "transport".to_owned(), true),
            (Some("aaaa000000000003"), "200".to_owned(), true),
        ]
    );
    assert!(
        records[0]
            .request_body
            .as_deref()
            .unwrap()
            .contains(&line_login::redact::short_hash(CODE).replace('#', "%23"))
    );

    // Trace by the code: callback, authorization request, and the token call by code hash.
    let t = trace(dir.path(), CODE, Duration::from_secs(10)).unwrap();
    let links: Vec<(LogKind, Link)> = t
        .events
        .iter()
        .map(|e| (e.entry.record.kind(), e.link.clone()))
        .collect();
    assert!(links.contains(&(LogKind::AuthorizationRequest, Link::State)));
    assert!(links.contains(&(LogKind::AuthorizationResponse, Link::Key)));
    // The token call's body holds the hash of the key itself.
    assert!(
        links.contains(&(LogKind::ApiRequest, Link::Key)),
        "{links:?}"
    );
    assert_eq!(t.events.len(), 6, "{links:?}");
    // By state, the same call is linked through the code hash.
    let t = trace(dir.path(), state, Duration::from_secs(10)).unwrap();
    assert!(
        t.events.iter().any(|e| e.link == Link::CodeHash),
        "{:?}",
        t.events
    );
}
