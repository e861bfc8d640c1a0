//! The file formats, against LINE's guideline example rows.

use std::time::{Duration, SystemTime};

use line_audit::timefmt::parse_imf_fixdate;
use line_audit::{AuditConfig, AuditLog, LogFormat, LogKind, Record};
use line_login::observer::{ApiCall, CallOutcome};
use line_login::redact::short_hash;

const AUTH_URL: &str =
    "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=xxxxxxxxxx";
const CALLBACK: &str =
    "/callback?code=Zfl2WjsWcn2XBBWApcty&state=n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA";

/// The guideline prints `Mon` for 16 July 2021, which was a Friday. The writer emits the
/// correct day name; every other character of the time is the guideline's.
fn guideline_time(s: &str) -> SystemTime {
    parse_imf_fixdate(s).unwrap()
}

fn fixed_weekday(s: &str) -> String {
    s.replace("Mon, 16 Jul 2021", "Fri, 16 Jul 2021")
}

fn call(status: Option<u16>, outcome: CallOutcome) -> ApiCall {
    ApiCall {
        request_id: Some("8d48c8577e739b9c".to_owned()),
        started_at: guideline_time("Mon, 16 Jul 2021 10:20:22 GMT"),
        method: http::Method::POST,
        endpoint: "https://api.line.me/oauth2/v2.1/token".to_owned(),
        status: status.map(|s| http::StatusCode::from_u16(s).unwrap()),
        duration: Duration::from_millis(42),
        attempt: 1,
        outcome,
        request_body: None,
        response_body: None,
    }
}

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn open(dir: &std::path::Path, bodies: bool, format: LogFormat) -> AuditLog {
    let mut config = AuditConfig::new(dir);
    config.bodies = bodies;
    config.format = format;
    config.fsync_interval = None;
    AuditLog::open(config).unwrap()
}

#[test]
fn guideline_example_rows_tsv() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, LogFormat::Tsv);
    log.authorization_request(guideline_time("Mon, 16 Jul 2021 10:20:10 GMT"), AUTH_URL)
        .unwrap();
    log.authorization_response(
        guideline_time("Mon, 16 Jul 2021 10:20:20 GMT"),
        "GET",
        CALLBACK,
    )
    .unwrap();
    log.api_call(&call(Some(200), CallOutcome::Success))
        .unwrap();

    assert_eq!(
        read(dir.path(), "authorization-request.log"),
        fixed_weekday(&format!("Mon, 16 Jul 2021 10:20:10 GMT\t{AUTH_URL}\n"))
    );
    assert_eq!(
        read(dir.path(), "authorization-response.log"),
        fixed_weekday(&format!("Mon, 16 Jul 2021 10:20:20 GMT\tGET\t{CALLBACK}\n"))
    );
    assert_eq!(
        read(dir.path(), "api-request.log"),
        fixed_weekday(
            "8d48c8577e739b9c\tMon, 16 Jul 2021 10:20:22 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/token\t200\n"
        )
    );
}

#[test]
fn guideline_rows_parse_verbatim() {
    let rows = [
        (LogKind::AuthorizationRequest, format!("Mon, 16 Jul 2021 10:20:10 GMT\t{AUTH_URL}")),
        (LogKind::AuthorizationResponse, format!("Mon, 16 Jul 2021 10:20:20 GMT\tGET\t{CALLBACK}")),
        (
            LogKind::ApiRequest,
            "8d48c8577e739b9c\tMon, 16 Jul 2021 10:20:22 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/token\t200".to_owned(),
        ),
    ];
    for (kind, row) in rows {
        let record = Record::parse(kind, LogFormat::Tsv, &row).unwrap();
        assert_eq!(record.kind(), kind);
        // Written back, only the (wrong) day name of the guideline changes.
        assert_eq!(record.to_tsv(), fixed_weekday(&format!("{row}\n")));
    }
}

#[test]
fn json_lines_have_the_same_fields_with_rfc3339_millis() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, LogFormat::JsonLines);
    let t = guideline_time("Mon, 16 Jul 2021 10:20:10 GMT") + Duration::from_millis(7);
    log.authorization_request(t, AUTH_URL).unwrap();
    log.authorization_response(
        guideline_time("Mon, 16 Jul 2021 10:20:20 GMT"),
        "GET",
        CALLBACK,
    )
    .unwrap();
    log.api_call(&call(Some(200), CallOutcome::Success))
        .unwrap();

    let line = read(dir.path(), "authorization-request.jsonl");
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["time"], "2021-07-16T10:20:10.007Z");
    assert_eq!(v["url"], AUTH_URL);
    assert_eq!(v["kind"], "authorization_request");

    let line = read(dir.path(), "authorization-response.jsonl");
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["time"], "2021-07-16T10:20:20.000Z");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], CALLBACK);

    let line = read(dir.path(), "api-request.jsonl");
    assert_eq!(line.matches('\n').count(), 1);
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["request_id"], "8d48c8577e739b9c");
    assert_eq!(v["time"], "2021-07-16T10:20:22.000Z");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["endpoint"], "https://api.line.me/oauth2/v2.1/token");
    assert_eq!(v["status"], 200);
    assert_eq!(v["outcome"], "success");
    assert_eq!(v["attempt"], 1);
    assert_eq!(v["duration_ms"], 42);
    // JSON lines parse back to the same record.
    let back = Record::parse(LogKind::ApiRequest, LogFormat::JsonLines, line.trim_end()).unwrap();
    assert_eq!(back.to_json(), v);
}

#[test]
fn failed_attempts_without_status_are_logged_and_absent_request_id_is_dash() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, LogFormat::Tsv);
    let mut timeout = call(None, CallOutcome::Timeout);
    timeout.request_id = None;
    log.api_call(&timeout).unwrap();
    let mut retry = call(Some(503), CallOutcome::HttpError);
    retry.attempt = 2;
    log.api_call(&retry).unwrap();
    let text = read(dir.path(), "api-request.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "-\tFri, 16 Jul 2021 10:20:22 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/token\ttimeout",
            "8d48c8577e739b9c\tFri, 16 Jul 2021 10:20:22 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/token\t503",
        ]
    );
    let Record::ApiRequest(parsed) =
        Record::parse(LogKind::ApiRequest, LogFormat::Tsv, lines[0]).unwrap()
    else {
        panic!("wrong kind")
    };
    assert_eq!(parsed.request_id, None);
    assert_eq!(parsed.status, None);
    assert_eq!(parsed.outcome_name(), "timeout");
}

#[test]
fn bodies_are_logged_with_every_secret_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), true, LogFormat::Tsv);
    assert!(line_login::observer::ApiObserver::wants_bodies(&log));
    // Bodies as the client hands them over (already redacted by line_login::redact)...
    let mut c = call(Some(200), CallOutcome::Success);
    c.request_body = Some(line_login::redact::form_body(
        "grant_type=authorization_code&code=Zfl2WjsWcn2XBBWApcty&client_id=1&client_secret=SECRET1&code_verifier=VERIFIER1",
    ));
    c.response_body = Some(line_login::redact::json_body(
        br#"{"access_token":"ACCESS1","refresh_token":"REFRESH1","id_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMSJ9.c2ln","scope":"profile"}"#,
    ));
    log.api_call(&c).unwrap();
    // ...and raw ones that reached the writer unredacted (defensive second pass).
    let mut raw = call(Some(200), CallOutcome::Success);
    raw.request_body = Some(
        "client_assertion=eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiIxIn0.c2ln&refresh_token=REFRESH2&client_secret=SECRET2".to_owned(),
    );
    raw.response_body = Some(
        r#"{"access_token":"CHANNELTOKEN3","userAccessToken":"USERTOKEN3","nested":{"channelAccessToken":"CAT3"}}"#
            .to_owned(),
    );
    log.api_call(&raw).unwrap();
    let mut no_bodies = call(Some(200), CallOutcome::Success);
    no_bodies.method = http::Method::GET;
    log.api_call(&no_bodies).unwrap();

    let text = read(dir.path(), "api-request.log");
    for secret in [
        "Zfl2WjsWcn2XBBWApcty",
        "SECRET1",
        "VERIFIER1",
        "ACCESS1",
        "REFRESH1",
        "eyJ",
        "REFRESH2",
        "SECRET2",
        "CHANNELTOKEN3",
        "USERTOKEN3",
        "CAT3",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line.split('\t').count(), 7, "{line}");
    }
    // The code's hash is the client's own short hash, not a hash of a hash.
    assert!(lines[0].contains(&short_hash("Zfl2WjsWcn2XBBWApcty").replace('#', "%23")));
    assert!(lines[0].contains("grant_type=authorization_code"));
    assert!(lines[0].contains(&short_hash("ACCESS1")));
    assert!(lines[1].contains(&short_hash("CAT3")));
    assert!(lines[2].ends_with("\t-\t-"));
}

#[test]
fn injected_control_characters_cannot_forge_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, LogFormat::Tsv);
    let evil = "/callback?state=x\r\nFri, 16 Jul 2021 10:20:20 GMT\tGET\t/callback?code=forged\u{0}\u{1b}[31m\u{2028}";
    let t = guideline_time("Mon, 16 Jul 2021 10:20:20 GMT");
    log.authorization_response(t, "GET\t", evil).unwrap();
    let text = read(dir.path(), "authorization-response.log");
    assert_eq!(text.matches('\n').count(), 1);
    assert_eq!(text.trim_end_matches('\n').split('\t').count(), 3);
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\t' && c != '\n')
    );
    let record = Record::parse(
        LogKind::AuthorizationResponse,
        LogFormat::Tsv,
        text.trim_end_matches('\n'),
    )
    .unwrap();
    let Record::AuthorizationResponse(r) = record else {
        panic!("wrong kind")
    };
    assert_eq!(r.method, "GET\t");
    assert_eq!(r.path, evil);
}
