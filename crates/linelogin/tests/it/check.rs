//! `linelogin check` as a process.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `linelogin check` on a configuration in `dir` (SQLite and logs there too), with `extra`
/// TOML appended.
fn check(dir: &Path, extra: &str) -> Output {
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"public_url = "https://login.example.com"
database_url = "sqlite://{}"
token_encryption_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
[line]
channel_id = "1234567890"
channel_secret = "0123456789abcdef0123456789abcdef"
[logs]
dir = "{}"
{extra}"#,
            dir.join("db.sqlite").display(),
            dir.join("logs").display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap()
}

#[test]
fn check_prints_the_callback_url_to_register() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("callback"))
        .unwrap_or_else(|| panic!("no callback line: {stdout}"));
    assert!(
        line.contains("register https://login.example.com/callback as the Callback URL"),
        "{line}"
    );
    assert!(
        !stdout.contains("0123456789abcdef0123456789abcdef"),
        "no secret printed"
    );
}

#[test]
fn check_fails_when_a_template_drops_the_notice() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    // An operator's confirm page that forgot the guideline notice.
    std::fs::write(
        templates.join("confirm.html"),
        "{% extends \"layout.html\" %}{% block content %}<form method=\"post\" action=\"{{ path }}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{{ csrf }}\">\
         <button type=\"submit\">{{ button }}</button></form>{% endblock %}",
    )
    .unwrap();
    let out = check(
        dir.path(),
        &format!("[pages]\ntemplates_dir = \"{}\"\n", templates.display()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("deauthorize notice"))
        .unwrap_or_else(|| panic!("no notice line: {stdout}"));
    assert!(line.starts_with("FAIL"), "{line}");
    for missing in [
        "confirm.html lacks the unregister notice (en)",
        "confirm.html lacks the unlink notice (ja)",
    ] {
        assert!(line.contains(missing), "{line}");
    }
    assert!(
        !line.contains("terms.html"),
        "terms.html is the built-in: {line}"
    );
}

#[test]
fn check_is_read_only_and_lists_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    // An http public URL on a non-loopback host, no database file, no logs directory.
    check(dir.path(), "");
    let config = std::fs::read_to_string(dir.path().join("server.toml")).unwrap();
    std::fs::write(
        dir.path().join("server.toml"),
        config.replace("https://login.example.com", "http://login.example.com"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["check", "--config"])
        .arg(dir.path().join("server.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for name in ["public_url:", "logs:", "database:"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains(name)),
            "{name}: {stdout}"
        );
    }
    assert!(stdout.contains("does not exist"), "{stdout}");
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "no database created"
    );
    assert!(
        !dir.path().join("logs").exists(),
        "no logs directory created"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("server.toml")],
        "nothing written"
    );
}

#[test]
fn check_lists_every_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "listen = 8085\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // Every required key is named, one line each.
    let fails = stdout
        .lines()
        .filter(|l| l.starts_with("FAIL config"))
        .count();
    assert_eq!(fails, 4, "{stdout}");
    assert!(stdout.contains("line.channel_secret: missing"), "{stdout}");
}

#[test]
fn usage_errors_exit_2_with_one_line_on_stderr() {
    for (args, expect) in [
        (&["check"][..], "no --config given"),
        (&["check", "--config"][..], "error:"),
        (&["check", "--bogus"][..], "'--bogus'"),
        (&["no-such-command"][..], "error:"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_linelogin"));
        for (k, _) in std::env::vars() {
            if k.starts_with("LINELOGIN_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd.args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn check_fails_on_a_placeholder_secret_an_unshared_fleet_and_unapplied_retention() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // A rotated file from years ago: retention (90 days) was not applied.
    std::fs::write(logs.join("api-request.log.2020-01-01"), "").unwrap();
    std::fs::write(logs.join("api-request.log"), "").unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"public_url = "https://login.example.com"
database_url = "sqlite://{}"
token_encryption_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
[line]
channel_id = "1234567890"
channel_secret = "REPLACE-WITH-YOUR-CHANNEL-SECRET"
[outbound]
instances = 3
[logs]
dir = "{}"
"#,
            dir.path().join("db.sqlite").display(),
            logs.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for failed in [
        "FAIL line.channel_secret: not 32 hex characters",
        "FAIL outbound.redis_url: outbound.instances = 3 without a shared limit",
        "FAIL logs retention: not applied: 1 rotated file(s) older than 90 days (e.g. api-request.log.2020-01-01)",
    ] {
        assert!(stdout.contains(failed), "{failed:?} missing in:\n{stdout}");
    }
    assert!(
        !stdout.contains("REPLACE-WITH"),
        "the secret is never printed"
    );

    // The same with a real-looking secret, Redis and a pruned directory: those lines pass.
    std::fs::remove_file(logs.join("api-request.log.2020-01-01")).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "REPLACE-WITH-YOUR-CHANNEL-SECRET",
            "0123456789abcdef0123456789abcdef",
        )
        .replace(
            "instances = 3",
            "instances = 3\nredis_url = \"redis://127.0.0.1:6379\"",
        );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for passed in [
        "ok   line.channel_secret",
        "ok   outbound.redis_url: one limit shared",
        "ok   logs retention",
    ] {
        assert!(stdout.contains(passed), "{passed:?} missing in:\n{stdout}");
    }
}
