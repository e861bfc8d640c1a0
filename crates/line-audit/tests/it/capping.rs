//! Values are capped: one anonymous request must not write an unbounded record.
//!
//! Finding (attack run): one `/callback` with a 50 KB query wrote 50 KB to
//! `authorization-response.log`, because the raw query was logged in full.

use std::time::Duration;

use line_audit::escape::split_truncated;
use line_audit::{AuditConfig, AuditLog, LogFormat, LogKind, Query, Record, search, trace};

fn open(dir: &std::path::Path, format: LogFormat) -> AuditLog {
    let mut config = AuditConfig::new(dir);
    config.fsync_interval = None;
    config.format = format;
    AuditLog::open(config).unwrap()
}

fn junk_callback(state: &str) -> String {
    // The state first (as LINE sends it), then 50 KB of junk with characters that escape.
    let mut q = format!("/callback?state={state}&code=abc&junk=");
    while q.len() < 50_000 {
        q.push_str("x\tA\u{1}é%41");
    }
    q
}

#[test]
fn callback_log_record_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogFormat::Tsv);
    let path = junk_callback("capped-state-1");
    log.authorization_response(log.now(), "GET", &path).unwrap();
    let text = std::fs::read_to_string(dir.path().join("authorization-response.log")).unwrap();
    println!("record bytes: {}", text.len());
    assert!(
        text.len() <= 2_150,
        "one 50 KB callback wrote {} bytes",
        text.len()
    );
    // Still one line, three columns, and the marker says how much was left out.
    assert_eq!(text.matches('\n').count(), 1);
    let line = text.trim_end_matches('\n');
    assert_eq!(line.split('\t').count(), 3);
    assert!(line.ends_with(" bytes]"), "the marker ends the record");
    assert!(line.contains("…[truncated "));
    let record = Record::parse_tsv(LogKind::AuthorizationResponse, line).unwrap();
    let Record::AuthorizationResponse(r) = record else {
        panic!("wrong kind")
    };
    assert!(
        r.path
            .starts_with("/callback?state=capped-state-1&code=abc&junk=x\tA")
    );
}

#[test]
fn the_marker_says_how_much_was_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogFormat::Tsv);
    let path = junk_callback("m");
    log.authorization_response(log.now(), "GET", &path).unwrap();
    let text = std::fs::read_to_string(dir.path().join("authorization-response.log")).unwrap();
    let record = Record::parse_tsv(LogKind::AuthorizationResponse, text.trim_end()).unwrap();
    let Record::AuthorizationResponse(r) = record else {
        panic!("wrong kind")
    };
    let (kept, left_out) = split_truncated(&r.path);
    let left_out = left_out.expect("the marker is there");
    assert!(path.starts_with(kept), "the kept part is a prefix");
    assert_eq!(kept.len() as u64 + left_out, path.len() as u64);
}

#[test]
fn short_values_are_written_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogFormat::Tsv);
    let path = format!("/callback?code=c&state={}", "s".repeat(2000));
    log.authorization_response(log.now(), "GET", &path).unwrap();
    let text = std::fs::read_to_string(dir.path().join("authorization-response.log")).unwrap();
    assert!(text.ends_with(&format!("\tGET\t{path}\n")));
    assert!(!text.contains("truncated"));
}

#[test]
fn capped_json_lines_records_are_one_line_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogFormat::JsonLines);
    log.authorization_response(log.now(), "GET", &junk_callback("j"))
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("authorization-response.jsonl")).unwrap();
    assert_eq!(text.matches('\n').count(), 1);
    // JSON escapes the control characters (\t, \u0001) itself: at most 6 bytes per byte kept.
    assert!(text.len() < 2048 * 6 + 200, "{} bytes", text.len());
    let r = Record::parse_json(LogKind::AuthorizationResponse, text.trim_end()).unwrap();
    let Record::AuthorizationResponse(r) = r else {
        panic!()
    };
    assert!(split_truncated(&r.path).1.is_some());
}

#[test]
fn search_and_trace_read_capped_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogFormat::Tsv);
    let now = log.now();
    let auth = format!(
        "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state=capped-state-2&junk={}",
        "y".repeat(10_000)
    );
    log.authorization_request(now, &auth).unwrap();
    log.authorization_response(now, "GET", &junk_callback("capped-state-2"))
        .unwrap();
    let r = search(dir.path(), &Query::default()).unwrap();
    assert!(r.malformed.is_empty(), "{:?}", r.malformed);
    assert_eq!(r.entries.len(), 2);
    let q = Query {
        text: Some("truncated".into()),
        ..Query::default()
    };
    assert_eq!(search(dir.path(), &q).unwrap().entries.len(), 2);
    // The state comes before the cut, so a trace still links request and callback.
    let t = trace(dir.path(), "capped-state-2", Duration::from_secs(60)).unwrap();
    assert_eq!(t.events.len(), 2, "{t:?}");
}
