//! The cost of the metrics layer: the same requests through the router of a server without
//! `[metrics]` and of one with it (HTTP counter and histogram per request), in process
//! (`tower::ServiceExt::oneshot`, no sockets, so the difference is not lost in TCP noise).
//! The request-log middleware runs in both (no subscriber is installed, so its lines are
//! disabled, as with `LINELOGIN_LOG=warn`).
//!
//! Run: `cargo bench -p linelogin-server --bench metrics_overhead`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use linelogin_server::config::Config;
use linelogin_server::state::AppState;
use tower::ServiceExt as _;

fn state(rt: &tokio::runtime::Runtime, dir: &std::path::Path, metrics: bool) -> AppState {
    let mut env: Vec<(String, String)> = [
        ("LINELOGIN_PUBLIC_URL", "http://127.0.0.1:1".to_owned()),
        (
            "LINELOGIN_DATABASE_URL",
            format!("sqlite://{}", dir.join(format!("{metrics}.db")).display()),
        ),
        (
            "LINELOGIN_TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        ("LINELOGIN_LINE__CHANNEL_ID", "1234567890".to_owned()),
        (
            "LINELOGIN_LINE__CHANNEL_SECRET",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if metrics {
        env.push(("LINELOGIN_METRICS__LISTEN".into(), "127.0.0.1:0".into()));
    }
    let config = Config::load(None, env).unwrap();
    rt.block_on(AppState::builder(&config).build()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for path in ["/static/style.css", "/"] {
        let mut group = c.benchmark_group(format!("GET {path}"));
        for metrics in [false, true] {
            let router = linelogin_server::app(state(&rt, dir.path(), metrics));
            let name = if metrics { "metrics on" } else { "metrics off" };
            group.bench_function(name, |b| {
                b.iter(|| {
                    let req = Request::get(path).body(Body::empty()).unwrap();
                    let resp = rt.block_on(router.clone().oneshot(req)).unwrap();
                    assert!(resp.status().is_success());
                    resp
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
