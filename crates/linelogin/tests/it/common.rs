//! What several process tests share: the channel and key they configure, a minimal server
//! configuration file written from them, the binary, and a child process that cannot
//! outlive its test.

use std::path::{Path, PathBuf};

/// The channel every test configures.
pub const CHANNEL_ID: &str = "1234567890";
/// A channel secret as LINE issues them (32 hex characters).
pub const CHANNEL_SECRET: &str = "0123456789abcdef0123456789abcdef";
/// A token encryption key (base64 of 32 bytes).
pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Writes `path`: an https public URL, SQLite at `db`, [`KEY`], the channel with `secret`,
/// then `extra` (TOML tables).
pub fn write_config(path: &Path, db: &Path, secret: &str, extra: &str) -> PathBuf {
    std::fs::write(
        path,
        format!(
            r#"public_url = "https://login.example.com"
database_url = "sqlite://{}"
token_encryption_key = "{KEY}"
[line]
channel_id = "{CHANNEL_ID}"
channel_secret = "{secret}"
{extra}"#,
            db.display()
        ),
    )
    .unwrap();
    path.to_owned()
}

/// The `linelogin` binary, without the `LINELOGIN_*` variables of the environment the tests
/// run in (a developer's own settings must not change what a test sees).
pub fn linelogin() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_linelogin"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LINELOGIN_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A child process killed (and reaped) when the test ends, whether it passed or panicked.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// Kills the process now, and returns what it wrote to stderr (piped).
    pub fn stop_and_read_stderr(&mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        read_stderr(&mut self.0)
    }
}

/// What a finished child wrote to its (piped) stderr.
pub fn read_stderr(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    stderr
}

/// `linelogin emulator --listen 127.0.0.1:0 EXTRA…` (stdout piped, stderr as given), once it
/// serves: the child, the rest of its stdout, and what it printed up to its
/// `Press Ctrl-C` line.
pub fn started_emulator(
    extra: &[&str],
    stderr: std::process::Stdio,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    use std::io::BufRead;
    let mut child = linelogin()
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push_str(&line);
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    (child, stdout, printed)
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
