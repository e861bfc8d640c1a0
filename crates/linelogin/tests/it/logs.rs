//! `linelogin logs search|trace|prune`, run as a process over the line-audit fixture logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../line-audit/tests/fixtures/logs")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(args)
        .output()
        .unwrap()
}

fn logs(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_str().unwrap();
    let mut all = vec!["logs", "--dir", dir];
    all.extend_from_slice(args);
    run(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn search_prints_an_aligned_table() {
    let o = logs(
        &fixtures(),
        &["search", "--kind", "api", "--status", "failed"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TIME (UTC)"));
    assert_eq!(lines.len(), 1 + 3 + 1, "{out}");
    assert_eq!(lines[4], "3 record(s)");
    // Columns are aligned: TARGET starts at the same offset on every row.
    let col = lines[0].find("TARGET").unwrap();
    for l in &lines[1..4] {
        assert!(l[col..].starts_with("https://api.line.me/"), "{l}");
    }
    assert!(out.contains("timeout"));
    assert!(out.contains("b9b9b9b9b9b9b9b9"));
    assert!(out.contains("aa11bb22cc33dd44"));
}

#[test]
fn search_json_is_one_object_per_line() {
    let o = logs(
        &fixtures(),
        &["search", "--request-id", "8d48c8577e739b9c", "--json"],
    );
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["request_id"], "8d48c8577e739b9c");
    assert_eq!(v["time"], "2021-07-16T10:20:22.000Z");
    assert_eq!(v["status"], 200);
    assert_eq!(v["endpoint"], "https://api.line.me/oauth2/v2.1/token");
}

#[test]
fn search_filters_by_time_text_and_endpoint() {
    let o = logs(
        &fixtures(),
        &[
            "search",
            "--since",
            "2021-07-17",
            "--text",
            "access_denied",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 1);
    let o = logs(
        &fixtures(),
        &["search", "--endpoint", "/v2/profile", "--json"],
    );
    assert_eq!(stdout(&o).lines().count(), 2);
    let o = logs(&fixtures(), &["search", "--text", "no-such-text"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).trim(), "no matching records");
}

#[test]
fn search_escapes_injected_control_characters() {
    let o = logs(
        &fixtures(),
        &["search", "--kind", "callback", "--text", "evil"],
    );
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains(r"evil\r\nSat, 17 Jul 2021 09:05:00 GMT\tGET"));
    assert!(!out.contains('\r') && !out.contains('\t'));
    // The malformed fixture line is reported on stderr, not hidden.
    assert!(stderr(&o).contains("malformed"));
}

#[test]
fn trace_shows_one_login_in_time_order() {
    let o = logs(
        &fixtures(),
        &["trace", "stateB-q8W3e5R7t9Y1u3I5o7P9a1S3d5F7g9H1j3K5l7"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let (header, timeline) = out.split_once("\n\n").unwrap();
    assert!(header.contains("code hash  #015b78b8"));
    // the token call and the verify call are proven by body hashes; the verify failed
    assert!(header.contains("2 API call(s), 1 failed"), "{header}");
    // the two profile calls came after another login's callback too: not attributed
    assert!(
        header.contains("2 API call(s) in the time window are left out"),
        "{header}"
    );
    let out = timeline;
    let authorize = out.find("AUTHORIZE").unwrap();
    let callback = out.find("CALLBACK").unwrap();
    let token = out.find("oauth2/v2.1/token -> 200").unwrap();
    let verify = out.find("oauth2/v2.1/verify -> 400").unwrap();
    assert!(authorize < callback && callback < token && token < verify);
    assert!(
        !out.contains("c1c2c3c4c5c6c7c8"),
        "another login leaked in:\n{out}"
    );
}

#[test]
fn trace_by_request_id_and_json() {
    let o = logs(&fixtures(), &["trace", "8d48c8577e739b9c", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        v["states"][0],
        "n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA"
    );
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["kind"], "authorization_request");
    assert_eq!(events[2]["link"], "key");
}

#[test]
fn trace_of_a_denied_login_says_so() {
    let o = logs(
        &fixtures(),
        &["trace", "stateD-P0o9I8u7Y6t5R4e3W2q1A2s3D4f5G6h7J8k9L0z1"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("access_denied"));
}

#[test]
fn unknown_trace_key_fails_with_one_line() {
    let o = logs(&fixtures(), &["trace", "nothing-like-this"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("linelogin: nothing in"), "{err}");
}

#[test]
fn bad_usage_exits_2_and_missing_dir_exits_1() {
    let o = logs(&fixtures(), &["search", "--status", "7xx"]);
    assert_eq!(o.status.code(), Some(2));
    let o = logs(&fixtures(), &["search", "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    let o = logs(
        &fixtures(),
        &["search", "--since", "2021-07-17", "--until", "2021-07-16"],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = logs(&fixtures(), &["prune", "--retention-days", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["logs", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = logs(Path::new("/definitely/not/here"), &["search"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("linelogin: log directory /definitely/not/here"));
}

#[test]
fn prune_removes_old_rotated_files_only() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let today =
        line_audit::timefmt::format_day(line_audit::timefmt::day_of(std::time::SystemTime::now()));
    let recent = format!("api-request.log.{today}");
    std::fs::write(dir.path().join(&recent), "").unwrap();

    let dry = logs(
        dir.path(),
        &["prune", "--retention-days", "30", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0));
    assert!(
        stdout(&dry).contains("would remove 4 file(s)"),
        "{}",
        stdout(&dry)
    );
    assert!(dir.path().join("api-request.log.2021-07-16").exists());

    let o = logs(dir.path(), &["prune", "--retention-days", "30"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("removed 4 file(s)"));
    assert!(!dir.path().join("api-request.log.2021-07-16").exists());
    assert!(!dir.path().join("api-request.jsonl.2021-07-17").exists());
    assert!(dir.path().join(&recent).exists());
    assert!(dir.path().join("api-request.log").exists());
    assert!(dir.path().join("authorization-response.log").exists());
}

/// A log directory whose callback path and API bodies hold DEL, C1 controls (NEL, CSI) and
/// U+2028/U+2029 (written escaped in the files, as the writer does; the reader unescapes them).
fn hostile_logs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("authorization-response.log"),
        "Sat, 17 Jul 2021 09:05:00 GMT\tGET\t/callback?state=c1evil\\u{0085}nel\\u{009b}31mcsi\\u{2028}ls\\u{2029}ps\\x7fdel\\x1b[2J\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("api-request.log"),
        "c1c1c1c1c1c1c1c1\tSat, 17 Jul 2021 09:05:01 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/token\t400\tgrant_type=x\\u{0085}y\t{\"error\":\"e\\u{009b}2J\\u{2028}\\u{2029}\"}\n",
    )
    .unwrap();
    dir
}

/// No raw C0 control (but the line feeds that end lines), DEL, C1 control, U+2028 or U+2029.
fn assert_inert(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || c == '\u{2028}' || c == '\u{2029}')
        .collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?} in {text:?}");
}

/// Finding: `logs search --json` printed raw C1 controls and U+2028/U+2029.
#[test]
fn search_json_escapes_c1_controls_and_line_separators() {
    let dir = hostile_logs();
    for args in [
        &["search", "--json"][..],
        &["search", "--bodies", "--json"][..],
    ] {
        let o = logs(dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        assert_inert(&format!("{args:?}"), &out);
        assert_inert(&format!("{args:?} stderr"), &stderr(&o));
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains(r"\u0085") && out.contains(r"\u009b"), "{out}");
        assert!(out.contains(r"\u2028") && out.contains(r"\u2029"), "{out}");
        // Still JSON with the same values.
        let values: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let all = values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("c1evil\u{85}nel\u{9b}31mcsi\u{2028}ls\u{2029}ps\u{7f}del"));
        assert!(all.contains("grant_type=x\u{85}y"), "{all}");
    }
}

/// Finding: the same through `logs trace --json`, and the table and timeline of
/// `search --bodies` and `trace` (visible escapes there).
#[test]
fn tables_and_trace_escape_c1_controls_and_line_separators() {
    let dir = hostile_logs();
    for args in [
        &["search"][..],
        &["search", "--bodies"][..],
        &["trace", "c1c1c1c1c1c1c1c1"][..],
        &["trace", "c1c1c1c1c1c1c1c1", "--json"][..],
    ] {
        let o = logs(dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_inert(&format!("{args:?}"), &stdout(&o));
        assert_inert(&format!("{args:?} stderr"), &stderr(&o));
    }
    let o = logs(dir.path(), &["search", "--bodies"]);
    let out = stdout(&o);
    assert!(
        out.contains(r"c1evil\u{0085}nel\u{009b}31mcsi\u{2028}ls"),
        "{out}"
    );
    assert!(out.contains(r"grant_type=x\u{0085}y"), "{out}");
}

/// Two instances of a fleet, each with its own log directory and instance-named files: the
/// login started on `a` (authorization request) and came back to `b` (callback, token call).
fn fleet_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let state = "stateF-fleet0123456789abcdefghijklmnopqrstu";
    std::fs::write(
        a.path().join("authorization-request.a.log"),
        format!(
            "Sat, 05 Dec 2026 09:00:00 GMT\thttps://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state={state}\n\
             Sat, 05 Dec 2026 09:00:03 GMT\thttps://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state=other\n"
        ),
    )
    .unwrap();
    std::fs::write(
        a.path().join("api-request.a.log"),
        "aaaa000000000001\tSat, 05 Dec 2026 09:00:04 GMT\tGET\thttps://api.line.me/v2/profile\t200\n",
    )
    .unwrap();
    std::fs::write(
        b.path().join("authorization-response.b.log"),
        format!("Sat, 05 Dec 2026 09:00:02 GMT\tGET\t/callback?code=fleetcode&state={state}\n"),
    )
    .unwrap();
    std::fs::write(
        b.path().join("api-request.b.log"),
        "bbbb000000000001\tSat, 05 Dec 2026 09:00:02 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/token\t200\n\
         bbbb000000000002\tSat, 05 Dec 2026 09:00:05 GMT\tPOST\thttps://api.line.me/oauth2/v2.1/revoke\t200\n",
    )
    .unwrap();
    (a, b)
}

#[test]
fn search_merges_several_directories_by_time() {
    let (a, b) = fleet_dirs();
    let (a, b) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    let o = run(&["logs", "--dir", a, "--dir", b, "search", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let times: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {}", v["time"].as_str().unwrap(), v["kind"])
        })
        .collect();
    assert_eq!(times.len(), 6, "{times:?}");
    assert!(
        times.windows(2).all(|w| w[0][..24] <= w[1][..24]),
        "merged by time: {times:?}"
    );
    // Equal times keep the order of kinds: the callback before the token call it caused.
    assert!(times[1].contains("authorization_response"), "{times:?}");
    assert!(times[2].contains("api_request"), "{times:?}");

    // One directory alone: only its instance's records.
    let o = run(&["logs", "--dir", b, "search", "--json"]);
    assert_eq!(stdout(&o).lines().count(), 3);
}

#[test]
fn trace_follows_a_login_from_one_instance_to_another() {
    let (a, b) = fleet_dirs();
    let (a, b) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    let key = "stateF-fleet0123456789abcdefghijklmnopqrstu";
    let o = run(&["logs", "--dir", a, "--dir", b, "trace", key, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..2],
        ["authorization_request", "authorization_response"],
        "{v}"
    );
    // With instance a's directory alone, the callback (on b) is missing.
    let o = run(&["logs", "--dir", a, "trace", key, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "authorization_response"),
        "{v}"
    );
}
