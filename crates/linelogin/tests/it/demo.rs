//! `linelogin demo` as a newcomer runs it: the configuration it writes into its data
//! directory is the one `check` and `logs` are then pointed at.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::KillOnDrop;

fn linelogin(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    crate::common::linelogin()
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_demo_writes_its_config_so_check_and_logs_work_on_it() {
    let cwd = tempfile::tempdir().unwrap();
    let mut demo = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_linelogin"))
            .current_dir(cwd.path())
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--emulator-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The demo prints its banner once it serves; read until the config line.
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    assert!(
        banner.contains("linelogin check --config linelogin-demo/server.toml"),
        "{banner}"
    );
    assert!(
        banner.contains("linelogin logs search --dir linelogin-demo/logs"),
        "{banner}"
    );
    let text = std::fs::read_to_string(cwd.path().join("linelogin-demo/server.toml")).unwrap();
    assert!(text.starts_with("# Written by `linelogin demo`"), "{text}");
    assert!(
        text.contains("SECRETS"),
        "the header says it holds secrets: {text}"
    );

    let out = linelogin(
        cwd.path(),
        &["check", "--config", "linelogin-demo/server.toml"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("emulator on loopback"), "{stdout}");

    // --url: the running server's own /terms carries both notices; the emulator's does not.
    let url_after = |label: &str| {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {label} in {banner}"))
            .to_owned()
    };
    let (server, emulator) = (url_after("Login server:"), url_after("LINE emulator:"));
    let check_url = |url: &str| {
        let config = "linelogin-demo/server.toml";
        let out = linelogin(cwd.path(), &["check", "--config", config, "--url", url]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let (status, stdout) = check_url(&server);
    assert_eq!(status, Some(0), "{stdout}");
    for shown in [
        "/terms shows the unregister and unlink notices (en, ja)",
        "/account/unregister shows the unregister notice (en, ja)",
        "/account/unlink shows the unlink notice (en, ja)",
    ] {
        assert!(stdout.contains(shown), "{shown}: {stdout}");
    }
    let (status, stdout) = check_url(&emulator);
    assert_eq!(status, Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL served notice")),
        "{stdout}"
    );

    let out = linelogin(
        cwd.path(),
        &["logs", "search", "--dir", "linelogin-demo/logs"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(demo);
}
