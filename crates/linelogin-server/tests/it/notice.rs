//! Issue 15: the unregister / unlink pages say what they do before anyone is logged in (the
//! guidelines ask to tell the user beforehand; `linelogin check --url` reads them), and every
//! deauthorization that ends leaves its per-user record, with the LINE user id hashed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use linelogin_server::deauth::worker::{RECORD_TARGET, user_hash};
use linelogin_server::i18n::Lang;

use crate::fake_line::FakeLine;
use crate::harness::{Harness, Opts};

/// The user the fake LINE logs in first.
const FAKE_USER: &str = "U00000000000000000000000000000001";

async fn page(h: &Harness, c: &reqwest::Client, path: &str, lang: Lang) -> (u16, String) {
    let r = c
        .get(h.url(path))
        .header("accept-language", lang.code())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Without a session, both pages (en, ja) show their notice and a link to log in and come
/// back, and no form. `prefix` is the gateway's path prefix (`""` without one).
async fn anonymous_pages_show_the_notice(h: &Harness, prefix: &str) {
    let c = h.client();
    for lang in [Lang::En, Lang::Ja] {
        let t = lang.t();
        for (path, notice) in [
            ("/account/unregister", t.unregister_notice),
            ("/account/unlink", t.unlink_notice),
        ] {
            let (status, html) = page(h, &c, &format!("{prefix}{path}"), lang).await;
            assert_eq!(status, 200, "{path} {lang:?}: shown, not redirected");
            assert!(html.contains(notice), "{path} {lang:?}: {html}");
            let login = format!("href=\"{prefix}/login?next={prefix}{path}\"");
            assert!(html.contains(&login), "{path} {lang:?}: {login} in {html}");
            assert!(html.contains(t.login_to_continue), "{path} {lang:?}");
            assert!(!html.contains("csrf_token"), "{path} {lang:?}: no form");
            assert!(!html.contains("<form"), "{path} {lang:?}: no form");
        }
    }
}

#[tokio::test]
async fn unregister_and_unlink_pages_tell_a_visitor_before_login() {
    let h = Harness::start().await;
    anonymous_pages_show_the_notice(&h, "").await;
    // Logged in, the same address is the form (and the notice).
    let c = h.client();
    h.login(&c).await;
    let (status, html) = page(&h, &c, "/account/unregister", Lang::En).await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"csrf_token\""), "{html}");
    assert!(html.contains(Lang::En.t().unregister_notice));
    assert!(!html.contains(Lang::En.t().login_to_continue), "{html}");
    h.stop().await;
}

#[tokio::test]
async fn the_visitor_pages_follow_the_gateway_prefix() {
    let h = Harness::start_with(
        FakeLine::start().await,
        Opts::default().gateway(linelogin_server::config::GatewayConfig {
            prefix: "/linelogin".to_owned(),
            api_key: Some(
                linelogin_server::config::ApiKey::new("gw-test-api-key-0123456789").unwrap(),
            ),
            ..Default::default()
        }),
    )
    .await;
    anonymous_pages_show_the_notice(&h, "/linelogin").await;
    h.stop().await;
}

/// What a JSON log subscriber wrote (the server's `LINELOGIN_LOG_FORMAT=json` format).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// The lines written at [`RECORD_TARGET`].
    fn records(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(&format!("\"target\":\"{RECORD_TARGET}\"")))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn an_ended_deauthorization_leaves_one_record_without_the_user_id() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(log.clone())
        .finish();
    // The server and its worker run on this (current-thread) runtime, so on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another test's thread may have met the record's callsite first, with no subscriber.
    tracing::callsite::rebuild_interest_cache();
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    assert_eq!(h.submit(&c, "/account/unregister").await.status(), 200);
    // Written by the worker as the job ends: waited for, up to 10 s on a loaded machine.
    for _ in 0..500 {
        if !log.records().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.wait_outbox_empty().await;
    h.stop().await;
    let records = log.records();
    assert_eq!(records.len(), 1, "one record per ended job: {records:?}");
    let line = &records[0];
    let record: serde_json::Value = serde_json::from_str(line).unwrap();
    let fields = &record["fields"];
    assert_eq!(fields["user"], user_hash(FAKE_USER), "{line}");
    assert_eq!(fields["reason"], "unregister", "{line}");
    assert_eq!(fields["outcome"], "Deauthorized", "{line}");
    assert!(
        fields["job"].is_string() && fields["at_ms"].is_i64(),
        "{line}"
    );
    assert!(!line.contains(FAKE_USER), "the raw LINE user id: {line}");
}
