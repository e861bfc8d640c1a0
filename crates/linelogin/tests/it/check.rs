//! `linelogin check` as a process.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{CHANNEL_SECRET, linelogin, write_config};

/// Writes `dir/server.toml` (SQLite and logs in `dir` too), with `extra` TOML appended.
fn config_in(dir: &Path, extra: &str) -> PathBuf {
    write_config(
        &dir.join("server.toml"),
        &dir.join("db.sqlite"),
        CHANNEL_SECRET,
        &format!("[logs]\ndir = \"{}\"\n{extra}", dir.join("logs").display()),
    )
}

/// Runs `linelogin check --config CONFIG MORE…`.
fn run_check(config: &Path, more: &[&str]) -> Output {
    linelogin()
        .args(["check", "--config"])
        .arg(config)
        .args(more)
        .output()
        .unwrap()
}

/// Runs `linelogin check` on a configuration in `dir` (see [`config_in`]).
fn check(dir: &Path, extra: &str) -> Output {
    run_check(&config_in(dir, extra), &[])
}

/// A `[pages]` section whose templates directory (in `dir`) holds an operator's confirm page
/// that forgot the guideline notice.
fn templates_without_notice(dir: &Path) -> String {
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("confirm.html"),
        "{% extends \"layout.html\" %}{% block content %}<form method=\"post\" action=\"{{ path }}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{{ csrf }}\">\
         <button type=\"submit\">{{ button }}</button></form>{% endblock %}",
    )
    .unwrap();
    format!("[pages]\ntemplates_dir = \"{}\"\n", templates.display())
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
    assert!(!stdout.contains(CHANNEL_SECRET), "no secret printed");
}

#[test]
fn check_fails_when_a_template_drops_the_notice() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &templates_without_notice(dir.path()));
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
    let out = run_check(&dir.path().join("server.toml"), &[]);
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
    let out = run_check(&file, &[]);
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
        let out = linelogin().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn a_string_for_a_number_is_an_error_in_the_file_but_read_as_a_number_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "[outbound]\nburst = \"5\"\n");
    let out = linelogin()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:10:9: outbound.burst: invalid type: found string \"5\", expected u32",
            config.display()
        )),
        "{stderr}"
    );
    let config = config_in(dir.path(), "");
    let out = linelogin()
        .args(["check", "--config"])
        .arg(&config)
        .env("LINELOGIN_OUTBOUND__BURST", "5")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ok   config: loaded"), "{stdout}");
    assert!(stdout.contains(", burst 5:"), "{stdout}");
}

#[test]
fn check_fails_on_a_placeholder_secret_an_unshared_fleet_and_unapplied_retention() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // A rotated file from years ago: retention (90 days) was not applied.
    std::fs::write(logs.join("api-request.log.2020-01-01"), "").unwrap();
    std::fs::write(logs.join("api-request.log"), "").unwrap();
    let config = write_config(
        &dir.path().join("server.toml"),
        &dir.path().join("db.sqlite"),
        "REPLACE-WITH-YOUR-CHANNEL-SECRET",
        &format!(
            "[outbound]\ninstances = 3\n[logs]\ndir = \"{}\"\n",
            logs.display()
        ),
    );
    let out = run_check(&config, &[]);
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
        .replace("REPLACE-WITH-YOUR-CHANNEL-SECRET", CHANNEL_SECRET)
        .replace(
            "instances = 3",
            "instances = 3\nredis_url = \"redis://127.0.0.1:6379\"",
        );
    std::fs::write(&config, text).unwrap();
    let out = run_check(&config, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for passed in [
        "ok   line.channel_secret",
        "ok   outbound.redis_url: one limit shared",
        "ok   logs retention",
    ] {
        assert!(stdout.contains(passed), "{passed:?} missing in:\n{stdout}");
    }
}

/// A login server in this process on 127.0.0.1:0 with the configuration at `path`, and its
/// base URL.
async fn serve(path: &Path) -> (linelogin_server::serve::RunningServer, String) {
    let config =
        linelogin_server::config::Config::load(Some(path), Vec::<(String, String)>::new()).unwrap();
    let state = linelogin_server::state::AppState::builder(&config)
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (
        linelogin_server::serve::start_on(state, listener).unwrap(),
        base,
    )
}

/// The `served notice` lines of `linelogin check --config CONFIG --url BASE` (run off the
/// runtime's threads, so the server keeps serving), and its exit status.
async fn served_notice_lines(config: &Path, base: &str) -> (Vec<String>, Option<i32>) {
    let (config, base) = (config.to_owned(), base.to_owned());
    let out = tokio::task::spawn_blocking(move || run_check(&config, &["--url", &base]))
        .await
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("served notice"))
        .map(str::to_owned)
        .collect();
    (lines, out.status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_url_reads_the_served_terms_unregister_and_unlink_pages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let config = config_in(dir.path(), "");
    let (server, base) = serve(&config).await;
    let (lines, status) = served_notice_lines(&config, &base).await;
    server.stop().await;
    assert_eq!(
        lines,
        [
            format!(
                "ok   served notice: {base}/terms shows the unregister and unlink notices (en, ja)"
            ),
            format!(
                "ok   served notice: {base}/account/unregister shows the unregister notice (en, ja)"
            ),
            format!("ok   served notice: {base}/account/unlink shows the unlink notice (en, ja)"),
        ]
    );
    assert_eq!(status, Some(0));

    // The server now runs with an operator's confirm page that forgot the notice; the
    // configuration `check` reads keeps the built-in one, so only the served pages can tell.
    let broken = write_config(
        &dir.path().join("broken.toml"),
        &dir.path().join("db.sqlite"),
        CHANNEL_SECRET,
        &templates_without_notice(dir.path()),
    );
    let (server, base) = serve(&broken).await;
    let (lines, status) = served_notice_lines(&config, &base).await;
    server.stop().await;
    assert_eq!(status, Some(1), "{lines:?}");
    assert_eq!(
        lines,
        [
            format!(
                "ok   served notice: {base}/terms shows the unregister and unlink notices (en, ja)"
            ),
            format!(
                "FAIL served notice: {base}/account/unregister lacks the unregister notice (en), unregister notice (ja)"
            ),
            format!(
                "FAIL served notice: {base}/account/unlink lacks the unlink notice (en), unlink notice (ja)"
            ),
        ]
    );
}
