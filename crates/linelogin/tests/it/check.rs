//! `linelogin check` as a process.

use std::process::Command;

#[test]
fn check_prints_the_callback_url_to_register() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
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
"#,
            dir.path().join("db.sqlite").display(),
            dir.path().join("logs").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
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
