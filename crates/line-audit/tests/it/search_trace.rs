//! Search and trace over the checked-in fixture directory `tests/fixtures/logs`.
//!
//! The fixture holds two days: 2021-07-16 (rotated files) with the guideline's own login
//! (state `n5B9…`, written with the guideline's `Mon` day name), and two overlapping logins B
//! and C logged with bodies on; and 2021-07-17 (live files, plus a JSON Lines file) with a
//! denied login D, a log-injection attempt and one malformed line.

use std::path::PathBuf;
use std::time::Duration;

use line_audit::timefmt::parse_rfc3339;
use line_audit::{Link, LogKind, Query, Record, StatusFilter, search, trace};

const STATE_A: &str = "n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA";
const STATE_B: &str = "stateB-q8W3e5R7t9Y1u3I5o7P9a1S3d5F7g9H1j3K5l7";
const CODE_B: &str = "Bcode7Hq2LmX9pQrStUv";
const STATE_D: &str = "stateD-P0o9I8u7Y6t5R4e3W2q1A2s3D4f5G6h7J8k9L0z1";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs")
}

fn q() -> Query {
    Query::default()
}

fn api_ids(result: &line_audit::SearchResult) -> Vec<String> {
    result
        .entries
        .iter()
        .map(|e| match &e.record {
            Record::ApiRequest(a) => a.request_id.clone().unwrap_or_else(|| "-".into()),
            other => panic!("not an API record: {other:?}"),
        })
        .collect()
}

#[test]
fn reads_every_file_in_time_order_and_reports_malformed_lines() {
    let r = search(&fixtures(), &q()).unwrap();
    assert_eq!(r.entries.len(), 3 + 3 + 7 + 1 + 2 + 1);
    let times: Vec<_> = r.entries.iter().map(|e| e.record.time()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(r.malformed.len(), 1);
    assert_eq!(r.malformed[0].line, 3);
    // The guideline row with its `Mon` day name was read.
    assert_eq!(
        r.entries[0].record.time(),
        parse_rfc3339("2021-07-16T10:20:10Z").unwrap()
    );
}

#[test]
fn filter_by_kind() {
    let mut query = q();
    query.kinds = vec![LogKind::AuthorizationResponse];
    let r = search(&fixtures(), &query).unwrap();
    assert_eq!(r.entries.len(), 5);
    // The injected CR LF stayed inside one record.
    assert!(r.entries.iter().any(|e| matches!(&e.record,
        Record::AuthorizationResponse(c) if c.path.contains("evil\r\nSat, 17 Jul 2021"))));
    assert!(!r.entries.iter().any(|e| matches!(&e.record,
        Record::AuthorizationResponse(c) if c.path.starts_with("/callback?code=forged"))));
}

#[test]
fn filter_by_status_code_class_and_outcome() {
    let search_status = |s: &str| {
        let mut query = q();
        query.status = Some(s.parse::<StatusFilter>().unwrap());
        api_ids(&search(&fixtures(), &query).unwrap())
    };
    assert_eq!(search_status("4xx"), ["b9b9b9b9b9b9b9b9"]);
    assert_eq!(search_status("400"), ["b9b9b9b9b9b9b9b9"]);
    assert_eq!(search_status("5xx"), ["aa11bb22cc33dd44"]);
    assert_eq!(search_status("timeout"), ["-"]);
    assert_eq!(search_status("none"), ["-"]);
    assert_eq!(
        search_status("failed"),
        ["b9b9b9b9b9b9b9b9", "-", "aa11bb22cc33dd44"]
    );
    assert_eq!(search_status("2xx").len(), 5);
    assert!("7xx".parse::<StatusFilter>().is_err());
    assert!("banana".parse::<StatusFilter>().is_err());
}

#[test]
fn filter_by_request_id_endpoint_text_and_time() {
    let mut query = q();
    query.request_id = Some("8d48c8577e739b9c".into());
    assert_eq!(
        api_ids(&search(&fixtures(), &query).unwrap()),
        ["8d48c8577e739b9c"]
    );

    let mut query = q();
    query.endpoint = Some("/v2/profile".into());
    assert_eq!(search(&fixtures(), &query).unwrap().entries.len(), 2);

    let mut query = q();
    query.text = Some("access_denied".into());
    let r = search(&fixtures(), &query).unwrap();
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].record.kind(), LogKind::AuthorizationResponse);

    let mut query = q();
    query.since = Some(parse_rfc3339("2021-07-16T11:00:00Z").unwrap());
    query.until = Some(parse_rfc3339("2021-07-16T11:00:07Z").unwrap());
    // auth B, auth C, callback B, callback C, token B
    assert_eq!(search(&fixtures(), &query).unwrap().entries.len(), 5);

    let mut query = q();
    query.since = Some(parse_rfc3339("2021-07-17T00:00:00Z").unwrap());
    query.limit = Some(2);
    let r = search(&fixtures(), &query).unwrap();
    assert_eq!(r.entries.len(), 2);
    assert_eq!(
        r.entries[1].record.time(),
        parse_rfc3339("2021-07-17T09:10:00.123Z").unwrap()
    );
}

fn kinds_and_links(t: &line_audit::Trace) -> Vec<(LogKind, Link)> {
    t.events
        .iter()
        .map(|e| (e.entry.record.kind(), e.link.clone()))
        .collect()
}

#[test]
fn trace_by_state_follows_code_and_token_hashes() {
    let t = trace(&fixtures(), STATE_B, Duration::from_secs(10)).unwrap();
    assert_eq!(t.states, [STATE_B]);
    assert_eq!(t.code_hashes, [line_login::redact::short_hash(CODE_B)]);
    assert_eq!(
        kinds_and_links(&t),
        [
            (LogKind::AuthorizationRequest, Link::Key),
            (LogKind::AuthorizationResponse, Link::Key),
            (LogKind::ApiRequest, Link::CodeHash),
            (LogKind::ApiRequest, Link::TokenHash("id_token".into())),
        ]
    );
    // The two profile calls (no bodies) came after both B's and C's callbacks: time alone
    // cannot tell whose they are, so they are counted as ambiguous, not attributed to B.
    assert_eq!(t.ambiguous, 2);
    // Login C's token call is in the window but its code hash proves it is not B's.
    assert!(!t.events.iter().any(|e| matches!(&e.entry.record,
        Record::ApiRequest(a) if a.request_id.as_deref() == Some("c1c2c3c4c5c6c7c8"))));
}

#[test]
fn trace_by_code_and_by_code_hash_find_the_same_login() {
    let by_state = trace(&fixtures(), STATE_B, Duration::from_secs(10)).unwrap();
    let by_code = trace(&fixtures(), CODE_B, Duration::from_secs(10)).unwrap();
    let hash = line_login::redact::short_hash(CODE_B);
    let by_hash = trace(&fixtures(), &hash, Duration::from_secs(10)).unwrap();
    let records = |t: &line_audit::Trace| -> Vec<Record> {
        t.events.iter().map(|e| e.entry.record.clone()).collect()
    };
    assert_eq!(records(&by_code), records(&by_state));
    assert_eq!(records(&by_hash), records(&by_state));
}

#[test]
fn trace_by_request_id_walks_back_to_the_authorization_request() {
    let t = trace(&fixtures(), "b9b9b9b9b9b9b9b9", Duration::from_secs(10)).unwrap();
    // The verify call's id_token hash leads to the token call, whose code hash leads to the
    // callback, whose state leads to the authorization request.
    assert_eq!(t.states, [STATE_B]);
    assert_eq!(
        t.events.first().unwrap().entry.record.kind(),
        LogKind::AuthorizationRequest
    );
    assert!(t.events.iter().any(|e| e.link == Link::Key));
}

#[test]
fn trace_without_bodies_uses_the_time_window() {
    // The guideline's own login: no bodies, so the API calls are linked by time only.
    let t = trace(&fixtures(), STATE_A, Duration::from_secs(10)).unwrap();
    assert_eq!(
        kinds_and_links(&t),
        [
            (LogKind::AuthorizationRequest, Link::Key),
            (LogKind::AuthorizationResponse, Link::Key),
            (LogKind::ApiRequest, Link::Nearby),
            (LogKind::ApiRequest, Link::Nearby),
        ]
    );
    let narrow = trace(&fixtures(), STATE_A, Duration::from_secs(2)).unwrap();
    assert_eq!(narrow.events.len(), 3);

    let by_id = trace(&fixtures(), "8d48c8577e739b9c", Duration::from_secs(10)).unwrap();
    assert_eq!(by_id.states, [STATE_A]);
    assert_eq!(by_id.events.len(), 4);
}

#[test]
fn trace_of_a_denied_login_and_of_an_unknown_key() {
    let t = trace(&fixtures(), STATE_D, Duration::from_secs(10)).unwrap();
    assert_eq!(t.events.len(), 2);
    assert!(t.code_hashes.is_empty());
    let none = trace(&fixtures(), "no-such-thing", Duration::from_secs(10)).unwrap();
    assert!(none.events.is_empty());
}

/// Under concurrency, time alone cannot tell whose API calls follow a callback: a call is
/// linked by time only when no other login's callback arrived in between.
#[test]
fn time_links_are_withheld_when_logins_overlap() {
    use std::time::{Duration, UNIX_EPOCH};

    use line_audit::{AuditConfig, AuditLog};

    let dir = tempfile::tempdir().unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let log = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
    let auth = |s: &str| {
        format!(
            "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state={s}"
        )
    };
    let api = |t| line_login::observer::ApiCall {
        request_id: Some("0123456789abcdef".into()),
        started_at: t,
        method: http::Method::POST,
        endpoint: "https://api.line.me/oauth2/v2.1/token".into(),
        status: Some(http::StatusCode::OK),
        duration: Duration::from_millis(5),
        attempt: 1,
        outcome: line_login::observer::CallOutcome::Success,
        request_body: None,
        response_body: None,
    };
    // Login A alone in its second: its token call is linked by time.
    log.authorization_request(t0, &auth("AAAA")).unwrap();
    log.authorization_response(t0, "GET", "/callback?code=ca&state=AAAA")
        .unwrap();
    log.api_call(&api(t0)).unwrap();
    // Logins B and C call back in the same second: their calls are ambiguous.
    let t1 = t0 + Duration::from_secs(30);
    log.authorization_request(t1, &auth("BBBB")).unwrap();
    log.authorization_request(t1, &auth("CCCC")).unwrap();
    log.authorization_response(t1, "GET", "/callback?code=cb&state=BBBB")
        .unwrap();
    log.authorization_response(t1, "GET", "/callback?code=cc&state=CCCC")
        .unwrap();
    log.api_call(&api(t1)).unwrap();
    log.api_call(&api(t1)).unwrap();
    drop(log);

    let a = line_audit::trace(dir.path(), "AAAA", Duration::from_secs(10)).unwrap();
    assert_eq!(a.events.len(), 3);
    assert_eq!(a.ambiguous, 0);
    let b = line_audit::trace(dir.path(), "BBBB", Duration::from_secs(10)).unwrap();
    assert_eq!(b.events.len(), 2, "authorization request and callback only");
    assert_eq!(b.ambiguous, 2);
}
