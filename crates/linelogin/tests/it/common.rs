//! What several process tests share: the channel and key they configure, and a minimal
//! server configuration file written from them.

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
