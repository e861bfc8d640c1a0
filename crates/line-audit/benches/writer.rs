//! Writer throughput: records/s into one file, fsync on its interval.
//!
//! Run: `cargo bench -p line-audit --bench writer`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
// A benchmark times real work and stamps records with the real time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use line_audit::{AuditConfig, AuditLog};
use line_login::observer::{ApiCall, CallOutcome};

fn call() -> ApiCall {
    ApiCall {
        request_id: Some("8d48c8577e739b9c".to_owned()),
        started_at: SystemTime::now(),
        method: http::Method::POST,
        endpoint: "https://api.line.me/oauth2/v2.1/token".to_owned(),
        status: Some(http::StatusCode::OK),
        duration: Duration::from_millis(42),
        attempt: 1,
        outcome: CallOutcome::Success,
        request_body: None,
        response_body: None,
    }
}

fn open(dir: &std::path::Path) -> AuditLog {
    open_with(dir, Duration::from_secs(1), false)
}

fn open_with(dir: &std::path::Path, fsync: Duration, bodies: bool) -> AuditLog {
    let mut config = AuditConfig::new(dir);
    config.fsync_interval = Some(fsync);
    config.bodies = bodies;
    AuditLog::open(config).unwrap()
}

fn single_thread(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let call = call();
    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("api_record_1_thread", |b| {
        b.iter(|| log.api_call(std::hint::black_box(&call)).unwrap())
    });
    let url = "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1234567890&redirect_uri=https%3A%2F%2Fexample.com%2Fcallback&state=n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA&scope=profile%20openid&nonce=09876xyz";
    group.bench_function("authorization_request_1_thread", |b| {
        b.iter(|| {
            log.authorization_request(SystemTime::now(), std::hint::black_box(url))
                .unwrap()
        })
    });
    let dir2 = tempfile::tempdir().unwrap();
    let log = open_with(dir2.path(), Duration::from_millis(10), false);
    group.bench_function("api_record_1_thread_fsync_10ms", |b| {
        b.iter(|| log.api_call(std::hint::black_box(&call)).unwrap())
    });
    let dir3 = tempfile::tempdir().unwrap();
    let log = open_with(dir3.path(), Duration::from_secs(1), true);
    let mut with_bodies = call.clone();
    with_bodies.request_body = Some(line_login::redact::form_body(
        "grant_type=authorization_code&code=Zfl2WjsWcn2XBBWApcty&redirect_uri=https%3A%2F%2Fexample.com%2Fcallback&client_id=1234567890&client_secret=s3cr3t&code_verifier=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    ));
    with_bodies.response_body = Some(line_login::redact::json_body(
        br#"{"access_token":"AT","expires_in":2592000,"id_token":"IDT","refresh_token":"RT","scope":"profile openid","token_type":"Bearer"}"#,
    ));
    group.bench_function("api_record_with_bodies_1_thread", |b| {
        b.iter(|| log.api_call(std::hint::black_box(&with_bodies)).unwrap())
    });
    group.finish();
}

fn four_threads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements(4));
    group.bench_function("api_record_4_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..4 {
                    let log = Arc::clone(&log);
                    s.spawn(move || {
                        let call = call();
                        for _ in 0..iters {
                            log.api_call(&call).unwrap();
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}

/// The formatting share of the per-record cost (no I/O).
fn format_only(c: &mut Criterion) {
    let url = "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1234567890&redirect_uri=https%3A%2F%2Fexample.com%2Fcallback&state=n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA&scope=profile%20openid&nonce=09876xyz";
    let record = line_audit::Record::AuthorizationRequest(line_audit::AuthorizationRequest {
        time: SystemTime::now(),
        url: url.to_owned(),
    });
    let mut group = c.benchmark_group("format");
    group.throughput(Throughput::Elements(1));
    let mut line = String::with_capacity(512);
    group.bench_function("authorization_request_tsv", |b| {
        b.iter(|| {
            line.clear();
            std::hint::black_box(&record).write_tsv(&mut line);
            std::hint::black_box(&line);
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, four_threads, format_only);
criterion_main!(benches);
