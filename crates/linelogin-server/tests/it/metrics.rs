//! `[metrics] listen`: the Prometheus listener, its series and labels after real flows, the
//! request id, and (ignored: they need the Debian `prometheus` package) a real Prometheus
//! scraping a running server and `promtool` checking and unit-testing the alert rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use linelogin_server::config::{Config, MetricsConfig};

use crate::fake_line::FakeLine;
use crate::harness::{Harness, Opts, get_json, text_of};

/// A metrics listener on 127.0.0.1:0.
fn with_metrics(c: &mut Config) {
    c.metrics = Some(MetricsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
    });
}

/// The server with a metrics listener, named `instance` in a fleet when given.
async fn start_with_metrics(instance: Option<&str>) -> Harness {
    let instance = instance.map(str::to_owned);
    let opts = Opts::default().config(with_metrics).config(|c| {
        c.logs.instance = instance;
    });
    Harness::start_with(FakeLine::start().await, opts).await
}

fn metrics_url(h: &Harness) -> String {
    let addr = h
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr())
        .unwrap_or_else(|| panic!("no metrics listener"));
    format!("http://{addr}/metrics")
}

async fn scrape(h: &Harness) -> String {
    let r = reqwest::get(metrics_url(h))
        .await
        .unwrap_or_else(|e| panic!("scrape: {e}"));
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    r.text().await.unwrap_or_else(|e| panic!("body: {e}"))
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.split(' ').next()?.parse().ok()
    })
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[tokio::test]
async fn a_login_flow_shows_in_the_series_with_low_cardinality_labels() {
    let h = start_with_metrics(Some("web-1")).await;
    let c = h.client();
    let r = h.login(&c).await;
    assert!(
        r.headers().get("x-request-id").is_some(),
        "request id echoed"
    );
    assert_eq!(h.submit(&c, "/account/unregister").await.status(), 200);
    h.wait_outbox_empty().await;
    let nope = h.get(&c, "/no/such/page").await;
    assert_eq!(nope.status(), 404);
    let bogus = h
        .get(&c, "/callback?code=SECRETCODE&state=SECRETSTATE")
        .await;
    assert_eq!(bogus.status(), 400);

    let text = scrape(&h).await;
    assert_eq!(
        value(
            &text,
            "linelogin_login_events_total{event=\"login\",outcome=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_login_events_total{event=\"login\",outcome=\"state_mismatch\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_login_events_total{event=\"unregister\",outcome=\"enqueued\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "linelogin_line_requests_total{endpoint=\"token\",status_class=\"2xx\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            "linelogin_line_requests_total{endpoint=\"deauthorize\",status_class=\"2xx\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            "linelogin_line_request_duration_seconds_count{endpoint=\"token\"}"
        ) >= 1.0
    );
    assert!(
        text.contains(
            "linelogin_line_request_duration_seconds_bucket{le=\"0.01\",endpoint=\"token\"}"
        ) || text.contains(
            "linelogin_line_request_duration_seconds_bucket{endpoint=\"token\",le=\"0.01\"}"
        ),
        "histogram buckets:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            "linelogin_http_requests_total{route=\"/callback\",status_class=\"3xx\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_http_requests_total{route=\"/callback\",status_class=\"4xx\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "linelogin_http_requests_total{route=\"/login\",status_class=\"3xx\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_http_requests_total{route=\"unmatched\",status_class=\"4xx\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "linelogin_http_request_duration_seconds_count{route=\"/callback\"}"
        ) >= 2.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_outbox_jobs{kind=\"deauthorization\",state=\"pending\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_outbox_jobs{kind=\"deauthorization\",state=\"failed\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_outbox_oldest_pending_seconds{kind=\"deauthorization\"}"
        ),
        0.0
    );
    assert_eq!(value(&text, "linelogin_store_up"), 1.0);
    for reason in ["rate_limit", "cooldown", "breaker"] {
        assert_eq!(
            value(
                &text,
                &format!("linelogin_outbound_limited_total{{reason=\"{reason}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(
        value(
            &text,
            "linelogin_callback_rejected_total{reason=\"state_mismatch\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "linelogin_line_breaker_open{class=\"login\"}"),
        0.0
    );
    assert_eq!(
        value(&text, "linelogin_instance_info{instance=\"web-1\"}"),
        1.0
    );
    assert!(text.ends_with("# EOF\n"));
    // Never a raw path, a query, a code or a user id in a label.
    for leak in [
        "SECRETCODE",
        "SECRETSTATE",
        "/no/such/page",
        "U00000000000000000000000000000001",
    ] {
        assert!(!text.contains(leak), "{leak} in the metrics");
    }
    // `/metrics` is not on the public port.
    assert_eq!(h.get(&c, "/metrics").await.status(), 404);
    h.stop().await;
}

#[tokio::test]
async fn line_429s_and_the_breaker_are_counted() {
    let h = start_with_metrics(None).await;
    // One 429, then five 500s: the login breaker opens (threshold 5) and the next code
    // exchange is held back locally, never sent.
    h.line
        .fault("/oauth2/v2.1/token", &[429, 500, 500, 500, 500, 500]);
    let c = h.client();
    for _ in 0..7 {
        let r = h.login_with(&c, "").await;
        assert!(!r.status().is_redirection(), "{}", r.status());
    }
    let text = scrape(&h).await;
    assert_eq!(
        value(
            &text,
            "linelogin_line_requests_total{endpoint=\"token\",status_class=\"429\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "linelogin_line_requests_total{endpoint=\"token\",status_class=\"5xx\"}"
        ) >= 4.0
    );
    assert!(
        value(
            &text,
            "linelogin_outbound_limited_total{reason=\"breaker\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(&text, "linelogin_line_breaker_open{class=\"login\"}"),
        1.0
    );
    assert_eq!(
        value(&text, "linelogin_line_breaker_open{class=\"deauthorize\"}"),
        0.0
    );
    h.stop().await;
}

#[tokio::test]
async fn every_server_has_its_own_registry_and_no_listener_without_the_section() {
    let a = start_with_metrics(None).await;
    let b = start_with_metrics(None).await;
    a.login(&a.client()).await;
    let text_b = scrape(&b).await;
    assert!(
        sample(
            &text_b,
            "linelogin_login_events_total{event=\"login\",outcome=\"success\"}"
        )
        .is_none(),
        "b counted a's login:\n{text_b}"
    );
    a.stop().await;
    b.stop().await;

    let plain = Harness::start().await;
    let server = plain.server.as_ref().unwrap_or_else(|| panic!("server"));
    assert!(server.metrics_addr().is_none());
    assert!(plain.state.metrics().is_none());
    plain.stop().await;
}

#[tokio::test]
async fn the_metrics_listener_stops_with_the_server() {
    let h = start_with_metrics(None).await;
    let url = metrics_url(&h);
    scrape(&h).await;
    h.stop().await;
    let after = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await;
    assert!(after.is_err(), "metrics still served after stop");
}

// ---- A real Prometheus and promtool (Debian package `prometheus`) ----

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus")
}

fn need(bin: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: install the Debian package `prometheus` (this test must not pass without it)"
    );
}

/// Kills the child when the test ends, whatever way it ends.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test]
#[ignore = "needs prometheus (Debian package): run with --ignored"]
async fn a_real_prometheus_scrapes_the_counter_after_a_login() {
    need(PROMETHEUS);
    // With an instance name: the info series must not break Prometheus's parser either.
    let h = start_with_metrics(Some("web-1")).await;
    h.login(&h.client()).await;
    let target = h
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr())
        .unwrap_or_else(|| panic!("no metrics listener"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: linelogin\n    static_configs:\n      - targets: ['{target}']\n",
            rules_dir().join("linelogin.rules.yml").display()
        ),
    )
    .unwrap();
    // Prometheus has no "port 0": take a free port, release it, hand it over.
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let _prom = Child(
        tokio::process::Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PROMETHEUS}: {e}")),
    );
    let query = format!(
        "http://{web}/api/v1/query?query=linelogin_login_events_total%7Bevent%3D%22login%22%2Coutcome%3D%22success%22%7D"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let found = loop {
        if let Ok(r) = reqwest::get(&query).await
            && let Ok(body) = r.json::<serde_json::Value>().await
            && let Some(v) = body["data"]["result"][0]["value"][1].as_str()
        {
            break v.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus never returned the login counter"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(found, "1");
    // The same scrape carries the HTTP series.
    let http = format!("http://{web}/api/v1/query?query=linelogin_http_requests_total");
    let body: serde_json::Value = get_json(&http).await;
    assert!(
        body["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{body}"
    );
    let info = format!("http://{web}/api/v1/query?query=linelogin_instance_info");
    let body: serde_json::Value = get_json(&info).await;
    // `instance` is also Prometheus's target label: the scraped one becomes
    // `exported_instance` (docs/operations.md says so, and how to keep it).
    assert_eq!(
        body["data"]["result"][0]["metric"]["exported_instance"], "web-1",
        "{body}"
    );
    h.stop().await;
}

async fn promtool(args: &[&str]) {
    need(PROMTOOL);
    let out = tokio::process::Command::new(PROMTOOL)
        .args(args)
        .current_dir(rules_dir())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {PROMTOOL}: {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "needs promtool (Debian package prometheus): run with --ignored"]
async fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    promtool(&["check", "rules", "linelogin.rules.yml"]).await;
    promtool(&["test", "rules", "linelogin.rules.test.yml"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL at DATABASE_URL_POSTGRES (CI runs --ignored)"]
async fn a_locked_outbox_table_does_not_hang_the_scrape() {
    use linelogin_server::AppState;
    use linelogin_server::store::{PostgresStore, Store};

    let url = crate::store::postgres_url();
    let schema = format!("ll_metrics_{}", crate::harness::unique_suffix());
    let timeouts = crate::harness::one_second_timeouts();
    let store = PostgresStore::connect_with(&url, Some(&schema), timeouts)
        .await
        .unwrap_or_else(|e| panic!("DATABASE_URL_POSTGRES is set but unusable: {e}"));
    store.migrate().await.unwrap();
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let line = FakeLine::start().await;
    let (listener, base) = crate::harness::bind().await;
    let config = crate::harness::config_with(&base, &line.url, Path::new("unused.db"), |c| {
        with_metrics(c);
        crate::harness::one_second_database(c);
    });
    let state = AppState::builder(&config)
        .store(Arc::new(store) as Arc<dyn Store>)
        .build()
        .await
        .unwrap();
    let server = linelogin_server::serve::start_on(state, listener).unwrap();
    let url_metrics = format!("http://{}/metrics", server.metrics_addr().unwrap());
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    let mut locker = admin.begin().await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE {schema}.deauth_jobs IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *locker)
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let text = text_of(c.get(&url_metrics)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "scrape took {took:?}");
    assert_eq!(value(&text, "linelogin_store_up"), 0.0);
    assert!(
        !text.contains("linelogin_outbox_jobs{"),
        "stale outbox series:\n{text}"
    );
    assert!(
        text.contains("linelogin_outbound_limited_total"),
        "the rest is there"
    );
    locker.rollback().await.unwrap();

    let text = text_of(c.get(&url_metrics)).await;
    assert_eq!(value(&text, "linelogin_store_up"), 1.0);
    assert_eq!(
        value(
            &text,
            "linelogin_outbox_jobs{kind=\"deauthorization\",state=\"pending\"}"
        ),
        0.0
    );
    server.stop().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_response_marked_proxied_is_counted_as_upstream() {
    use axum::response::IntoResponse as _;
    use linelogin_server::metrics::{ProxiedUpstream, observe_requests};
    use tower::ServiceExt as _;

    let h = start_with_metrics(None).await;
    // What the gateway's proxy fallback does: mark its responses.
    let router = axum::Router::new()
        .route("/known", axum::routing::get(|| async { "ok" }))
        .fallback(|| async {
            let mut r = "from upstream".into_response();
            r.extensions_mut().insert(ProxiedUpstream);
            r
        })
        .layer(axum::middleware::from_fn_with_state(
            h.state.clone(),
            observe_requests,
        ));
    for path in ["/app/page/1", "/app/page/2", "/known"] {
        let req = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let text = scrape(&h).await;
    assert_eq!(
        value(
            &text,
            "linelogin_http_requests_total{route=\"upstream\",status_class=\"2xx\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "linelogin_http_requests_total{route=\"/known\",status_class=\"2xx\"}"
        ),
        1.0
    );
    assert!(!text.contains("/app/page"), "raw paths in the labels");
    h.stop().await;
}
