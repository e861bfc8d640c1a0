//! Servers the test reaches only by URL: the `linelogin-server` binary run as a child (a
//! real crash, a fleet of processes), or instances the test assembles itself. These helpers
//! act as a browser would, against a base URL instead of a [`super::Harness`].

use crate::fake_line::{CHANNEL_ID, CHANNEL_SECRET};

use super::{KEY, extract_csrf, follow_login, text_of};

/// A port that was free a moment ago (for a child process to listen on).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The `linelogin-server` binary, to run as a child on `port`: configured the way a
/// deployment is, through `LINELOGIN_*` variables (that is the binary's interface), with
/// LINE at `line_url`, its database at `db_url` and its guideline logs in `logs`.
pub fn server_command(
    port: u16,
    db_url: &str,
    line_url: &str,
    logs: &std::path::Path,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_linelogin-server"));
    cmd.env("LINELOGIN_LISTEN", format!("127.0.0.1:{port}"))
        .env("LINELOGIN_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("LINELOGIN_DATABASE_URL", db_url)
        .env("LINELOGIN_TOKEN_ENCRYPTION_KEY", KEY)
        .env("LINELOGIN_LINE__CHANNEL_ID", CHANNEL_ID)
        .env("LINELOGIN_LINE__CHANNEL_SECRET", CHANNEL_SECRET)
        .env("LINELOGIN_LINE__AUTH_URL", line_url)
        .env("LINELOGIN_LINE__API_URL", line_url)
        .env("LINELOGIN_LOGS__DIR", logs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Logs `c` in at the server at `base` (not a [`Harness`]): /login → LINE → /callback.
pub async fn login_at_base(c: &reqwest::Client, base: &str) {
    let r = follow_login(c, &format!("{base}/login")).await.response;
    assert_eq!(r.status(), 303, "callback answers 303");
}

/// Posts the unregister form of the server at `base` with its csrf_token, as a browser does.
pub async fn unregister_at_base(
    c: &reqwest::Client,
    base: &str,
) -> reqwest::Result<reqwest::Response> {
    let url = format!("{base}/account/unregister");
    let html = text_of(c.get(&url)).await;
    let csrf = extract_csrf(&html).unwrap();
    c.post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", base)
        .body(format!("csrf_token={csrf}"))
        .send()
        .await
}
