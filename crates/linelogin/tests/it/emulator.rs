//! `linelogin emulator` as a binary: start-up output, serving, Ctrl-C, exit statuses.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{read_stderr, started_emulator};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_linelogin"))
}

/// Sends `signal` (`INT`, `TERM`) to the child and waits for it to exit (at most 5 s).
fn signal_and_wait(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("the emulator did not stop on SIG{signal}");
}

#[test]
fn serves_prints_channels_and_users_and_stops_on_ctrl_c() {
    let (mut child, mut stdout, printed) = started_emulator(&["--auto-consent"], Stdio::piped());
    assert!(printed.contains("1234567890"), "{printed}");
    assert!(
        printed.contains("0123456789abcdef0123456789abcdef"),
        "{printed}"
    );
    assert!(printed.contains("Test User 1"), "{printed}");
    assert!(printed.contains("automatic"), "{printed}");
    let base = printed
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && !w.ends_with(":0"))
        .unwrap()
        .trim_end_matches('/')
        .to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body, request_id) = rt.block_on(async {
        let r = reqwest::get(format!("{base}/_emulator/stats"))
            .await
            .unwrap();
        let status = r.status().as_u16();
        let rid = r.headers().get("x-line-request-id").is_some();
        (status, r.text().await.unwrap(), rid)
    });
    assert_eq!(status, 200);
    assert!(request_id);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(stats.is_object());

    // Ctrl-C (SIGINT) stops it cleanly with status 0.
    assert_eq!(signal_and_wait(&mut child, "INT").code(), Some(0));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("Emulator stopped."), "{rest}");
}

#[test]
fn stops_on_sigterm() {
    let (mut child, _stdout, _) = started_emulator(&[], Stdio::piped());
    assert_eq!(signal_and_wait(&mut child, "TERM").code(), Some(0));
    let stderr = read_stderr(&mut child);
    assert!(
        !stderr.contains("warning"),
        "no warning on loopback: {stderr}"
    );
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_listen_address_is_a_usage_error() {
    let (code, err) = run(&["emulator", "--listen", "nowhere"]);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--listen"), "{err}");
}

#[test]
fn bad_configuration_is_one_clear_line() {
    let dir = std::env::temp_dir().join(format!("linelogin-emulator-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\ncolour = \"green\"\n").unwrap();
    let (code, err) = run(&["emulator", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("colour"), "{err}");

    let (code, err) = run(&["emulator", "--config", "/nonexistent/emulator.toml"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read"), "{err}");

    // A port already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&["emulator", "--listen", &addr]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot listen"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
