//! The operator commands as a process (`linelogin outbox`, `accounts`, `keys`), against a
//! SQLite store that a linelogin server in this process filled through login flows on the
//! emulator; the server's worker then sends (or does not send) the jobs they create.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use line_emulator::{
    ChannelConfig, Config as EmulatorConfig, Emulator, RunningEmulator, UserConfig,
};
use linelogin_server::config::Config;
use linelogin_server::serve::RunningServer;
use linelogin_server::state::AppState;
use reqwest::header::LOCATION;

use crate::common::{CHANNEL_ID, CHANNEL_SECRET as SECRET, KEY, write_config};

const USERS: [&str; 2] = [
    "U0123456789abcdef0123456789abcdef",
    "U00000000000000000000000000000abc",
];
/// Two token encryption keys (base64 of 32 bytes).
const K1: &str = KEY;
const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// The emulator (auto-consent: each new browser gets the next of [`USERS`]), a directory with
/// the SQLite database and configuration files, and a linelogin server that can be restarted
/// on the same address with another configuration.
struct Fixture {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    emulator: RunningEmulator,
    server: Option<RunningServer>,
}

/// Server options that change between phases.
struct Phase<'a> {
    key: &'a str,
    previous: &'a [&'a str],
    worker: bool,
    max_attempts: u32,
}

impl<'a> Phase<'a> {
    fn new(key: &'a str, previous: &'a [&'a str], worker: bool, max_attempts: u32) -> Self {
        Phase {
            key,
            previous,
            worker,
            max_attempts,
        }
    }
}

impl Fixture {
    async fn new() -> Fixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut config = EmulatorConfig::default_demo();
        config.auto_consent = true;
        config.channels = vec![ChannelConfig::new(
            CHANNEL_ID,
            SECRET,
            vec![format!("http://{addr}/callback").parse().unwrap()],
        )];
        config.users = USERS
            .iter()
            .map(|u| UserConfig::new(*u, "Emulated User"))
            .collect();
        let emulator = Emulator::new(config)
            .unwrap()
            .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
            .await
            .unwrap();
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            addr,
            emulator,
            server: None,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn emu(&self) -> String {
        self.emulator.base_url().trim_end_matches('/').to_owned()
    }

    /// Writes the configuration file `name` for a phase and returns its path.
    fn config(&self, name: &str, phase: &Phase<'_>) -> PathBuf {
        let path = self.dir.path().join(name);
        let previous: Vec<String> = phase.previous.iter().map(|k| format!("\"{k}\"")).collect();
        std::fs::write(
            &path,
            format!(
                r#"public_url = "{base}"
database_url = "sqlite://{db}"
token_encryption_key = "{key}"
previous_token_encryption_keys = [{previous}]
[line]
channel_id = "{CHANNEL_ID}"
channel_secret = "{SECRET}"
auth_url = "{emu}"
api_url = "{emu}"
[outbound]
rate_limit_per_second = 1000
burst = 1000
[logs]
dir = "{logs}"
[deauth]
worker = {worker}
max_attempts = {attempts}
backoff_base_ms = 20
backoff_max_ms = 100
poll_ms = 20
"#,
                base = self.base(),
                db = self.dir.path().join("db.sqlite").display(),
                key = phase.key,
                previous = previous.join(", "),
                emu = self.emu(),
                logs = self.dir.path().join("logs").display(),
                worker = phase.worker,
                attempts = phase.max_attempts,
            ),
        )
        .unwrap();
        path
    }

    /// (Re)starts the server on the fixture's address with the configuration at `path`.
    async fn start(&mut self, path: &Path) {
        self.stop().await;
        let config = Config::load(Some(path), Vec::<(String, String)>::new()).unwrap();
        let state = AppState::builder(&config).build().await.unwrap();
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.server = Some(linelogin_server::serve::start_on(state, listener).unwrap());
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// A new browser (cookie jar, no redirects followed) logged in through the emulator.
    async fn login(&self) -> reqwest::Client {
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = c
            .get(format!("{}/login", self.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "login redirects to LINE");
        let r = c.get(location(&r)).send().await.unwrap();
        assert!(r.status().is_redirection(), "the emulator redirects back");
        let r = c.get(location(&r)).send().await.unwrap();
        assert_eq!(r.status(), 303, "the callback signs in");
        c
    }

    /// Whether the emulator still lists our channel among the user's authorized apps.
    async fn authorized(&self, user: &str) -> bool {
        let v: serde_json::Value = reqwest::get(format!(
            "{}/_emulator/users/{user}/authorized-apps",
            self.emu()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        v["authorized_apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["channel_id"] == CHANNEL_ID)
    }

    /// The statuses of the emulator's answers to `path`, oldest first.
    async fn calls(&self, path: &str) -> Vec<u64> {
        let v: serde_json::Value =
            reqwest::get(format!("{}/_emulator/journal?limit=1000", self.emu()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let mut calls: Vec<(u64, u64)> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["path"] == path)
            .map(|e| (e["seq"].as_u64().unwrap(), e["status"].as_u64().unwrap()))
            .collect();
        calls.sort_unstable();
        calls.into_iter().map(|(_, s)| s).collect()
    }

    async fn healthz(&self) -> serde_json::Value {
        reqwest::get(format!("{}/healthz", self.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// Runs `linelogin ARGS` (off the runtime's threads, so the server keeps serving).
async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_linelogin"))
            .args(&args)
            .env_remove("LINELOGIN_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `linelogin ARGS` and expects exit status 0.
async fn ok(args: &[&str]) -> String {
    let o = cli(args).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `linelogin … --json` parsed.
async fn ok_json(args: &[&str]) -> serde_json::Value {
    let text = ok(args).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// The account id of a LINE user, through `accounts find --user … --json`.
async fn account_of(config: &Path, user: &str) -> String {
    let found = ok_json(&[
        "accounts",
        "find",
        "--user",
        user,
        "--json",
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["line_user_id"], user);
    found[0]["id"].as_str().unwrap().to_owned()
}

/// The job id in the output of `accounts unregister|unlink`.
fn job_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("j_"))
        .unwrap_or_else(|| panic!("no job id in {text:?}"))
        .to_owned()
}

/// Polls `outbox show JOB --json` until `done(job)` holds.
async fn wait_job(
    config: &Path,
    job: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let config = config.to_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = ok_json(&["outbox", "show", job, "--json", "--config", config]).await;
        if done(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} never became {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["status"] == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_unregisters_a_user_and_manages_the_outbox() {
    let mut f = Fixture::new().await;
    // One attempt only, so that a single 500 from LINE gives the job up.
    let cfg = f.config("server.toml", &Phase::new(K1, &[], true, 1));
    let c = cfg.to_str().unwrap();
    f.start(&cfg).await;
    f.login().await;
    let user = USERS[0];
    let account = account_of(&cfg, user).await;
    let table = ok(&["accounts", "find", "--user", user, "--config", c]).await;
    assert!(table.starts_with("ACCOUNT"), "{table}");
    assert!(
        table.contains(&account) && table.contains("linked"),
        "{table}"
    );
    let shown = ok(&["accounts", "show", &account, "--config", c]).await;
    assert!(shown.contains("under the current key"), "{shown}");
    assert!(f.authorized(user).await);

    // A login was served today: `check` wants an authorization request logged since in the
    // configured directory (this in-process server has no guideline log: one is written
    // here, as `serve` would), and fails when pointed at a directory nobody writes to.
    let logs = f.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("authorization-request.log"),
        "Sat, 05 Dec 2026 09:00:00 GMT\thttp://127.0.0.1/authorize\n",
    )
    .unwrap();
    let checked = stdout(&cli(&["check", "--config", c]).await);
    assert!(checked.contains("ok   guideline logs"), "{checked}");
    let elsewhere = f.dir.path().join("other-logs");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let wrong = f.dir.path().join("wrong-logs.toml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&cfg).unwrap().replace(
            &f.dir.path().join("logs").display().to_string(),
            &elsewhere.display().to_string(),
        ),
    )
    .unwrap();
    let checked = cli(&["check", "--config", wrong.to_str().unwrap()]).await;
    let text = stdout(&checked);
    assert_eq!(checked.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL guideline logs: logins were served in the last day"),
        "{text}"
    );

    // LINE refuses the first deauthorize call (403, which the client does not retry): the
    // only attempt is used, the job fails.
    let r = reqwest::Client::new()
        .put(format!("{}/_emulator/faults", f.emu()))
        .json(&serde_json::json!([{ "endpoint": "deauthorize", "status": 403, "count": 1 }]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let said = ok(&["accounts", "unregister", &account, "--config", c]).await;
    assert!(said.contains("unregistered"), "{said}");
    let job = job_in(&said);
    wait_job(&cfg, &job, "failed", status_is("failed")).await;
    let failed = ok_json(&[
        "outbox", "list", "--state", "failed", "--json", "--config", c,
    ])
    .await;
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job.as_str()),
        "{failed}"
    );
    let of_user = ok_json(&["outbox", "list", "--user", user, "--json", "--config", c]).await;
    assert_eq!(of_user.as_array().unwrap().len(), 1, "{of_user}");
    assert_eq!(of_user[0]["id"], job.as_str());
    let listed = ok(&["outbox", "list", "--config", c]).await;
    assert!(
        listed.contains(&job) && listed.contains("failed"),
        "{listed}"
    );

    // Cancelling needs --yes, and says why.
    let refused = cli(&["outbox", "cancel", &job, "--config", c]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("LINE keeps"),
        "{}",
        stderr(&refused)
    );

    // Retry: back to pending, the worker sends it, LINE deauthorizes.
    let said = ok(&["outbox", "retry", &job, "--config", c]).await;
    assert!(said.contains("pending again"), "{said}");
    let done = wait_job(&cfg, &job, "done", status_is("done")).await;
    assert_eq!(done["has_tokens"], false);
    assert!(!f.authorized(user).await, "deauthorized at LINE");
    assert_eq!(f.calls("/user/v1/deauthorize").await, vec![403, 204]);
    // "Was this user deauthorized, and when?"
    let of_user = ok_json(&[
        "outbox", "list", "--user", user, "--state", "done", "--json", "--config", c,
    ])
    .await;
    assert_eq!(of_user[0]["last_error"], "deauthorized", "{of_user}");
    assert!(of_user[0]["finished_at"].as_i64().is_some(), "{of_user}");

    // The account is gone; a finished job can be neither retried nor cancelled.
    let gone = cli(&["accounts", "show", &account, "--config", c]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert_eq!(stderr(&gone).lines().count(), 1, "{}", stderr(&gone));
    for args in [
        vec!["outbox", "retry", &job, "--config", c],
        vec!["outbox", "cancel", &job, "--yes", "--config", c],
    ] {
        let o = cli(&args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains("it is done"), "{}", stderr(&o));
    }
    let unknown = cli(&["outbox", "show", "j_nope", "--config", c]).await;
    assert_eq!(unknown.status.code(), Some(1));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_is_never_sent_and_a_user_without_tokens_must_log_in() {
    let mut f = Fixture::new().await;
    let cfg = f.config("server.toml", &Phase::new(K1, &[], false, 3));
    let c = cfg.to_str().unwrap();
    f.start(&cfg).await;
    f.login().await;
    let user = USERS[0];
    let account = account_of(&cfg, user).await;
    let job = job_in(&ok(&["accounts", "unlink", &account, "--config", c]).await);
    let pending = wait_job(&cfg, &job, "pending", status_is("pending")).await;
    assert_eq!(pending["has_tokens"], true);
    let said = ok(&["outbox", "cancel", &job, "--yes", "--config", c]).await;
    assert!(said.contains("cancelled"), "{said}");
    let cancelled = wait_job(&cfg, &job, "cancelled", status_is("cancelled")).await;
    assert_eq!(cancelled["has_tokens"], false, "the tokens are wiped");

    // A worker now finds nothing to send: LINE keeps the grant.
    let cfg_worker = f.config("worker.toml", &Phase::new(K1, &[], true, 3));
    f.start(&cfg_worker).await;
    let h = f.healthz().await;
    assert_eq!(h["deauthorization"]["pending"], 0, "{h}");
    assert!(f.calls("/user/v1/deauthorize").await.is_empty());
    assert!(f.authorized(user).await, "LINE keeps the grant");

    // The account stays, unlinked and without tokens.
    let again = cli(&["accounts", "unlink", &account, "--config", c]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already unlinked"),
        "{}",
        stderr(&again)
    );
    let o = cli(&["accounts", "unregister", &account, "--config", c]).await;
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no usable LINE token") && err.contains("must log in"),
        "{err}"
    );
    let shown = ok_json(&["accounts", "show", &account, "--json", "--config", c]).await;
    assert_eq!(shown["status"], "unlinked", "nothing changed: {shown}");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_then_dropping_the_old_key_keeps_every_token_usable() {
    let mut f = Fixture::new().await;
    let old = f.config("old.toml", &Phase::new(K1, &[], false, 3));
    f.start(&old).await;
    // Two users under the old key: one stays signed in, the other unlinks (a pending job
    // holding the tokens, the worker being off).
    let stays = f.login().await;
    f.login().await;
    let leaves = account_of(&old, USERS[1]).await;
    let job = job_in(
        &ok(&[
            "accounts",
            "unlink",
            &leaves,
            "--config",
            old.to_str().unwrap(),
        ])
        .await,
    );
    f.stop().await;

    // The new key is current, the old one still decrypts: rotate, one row per batch.
    let both = f.config("both.toml", &Phase::new(K2, &[K1], false, 3));
    let b = both.to_str().unwrap();
    let stays_account = account_of(&both, USERS[0]).await;
    let shown = ok(&["accounts", "show", &stays_account, "--config", b]).await;
    assert!(shown.contains("under a previous key"), "{shown}");
    let report = ok_json(&["keys", "rotate", "--batch", "1", "--json", "--config", b]).await;
    for table in ["accounts", "jobs"] {
        assert_eq!(report[table]["scanned"], 1, "{report}");
        assert_eq!(report[table]["reencrypted"], 1, "{report}");
    }
    let shown = ok(&["accounts", "show", &stays_account, "--config", b]).await;
    assert!(shown.contains("under the current key"), "{shown}");
    // Idempotent: a second run finds everything under the current key.
    let again = ok(&["keys", "rotate", "--config", b]).await;
    assert!(
        again.contains("accounts: 1 scanned, 1 already under the current key, 0 re-encrypted")
            && again.contains("jobs: 1 scanned, 1 already under the current key, 0 re-encrypted"),
        "{again}"
    );

    // The old key is dropped: logout revokes at LINE (the account's tokens decrypt) and the
    // worker deauthorizes the pending job (the job's tokens decrypt).
    let new = f.config("new.toml", &Phase::new(K2, &[], true, 3));
    f.start(&new).await;
    wait_job(&new, &job, "done", |v| {
        v["status"] == "done" && v["last_error"] == "deauthorized"
    })
    .await;
    assert!(!f.authorized(USERS[1]).await);
    assert_eq!(f.calls("/user/v1/deauthorize").await, vec![204]);
    let me = stays
        .get(format!("{}/me", f.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let at = me
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf on /me: {me}"))
        + marker.len();
    let csrf = &me[at..at + me[at..].find('"').unwrap()];
    let r = stays
        .post(format!("{}/logout", f.base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", f.base())
        .header("sec-fetch-site", "same-origin")
        .body(format!("csrf_token={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(f.calls("/oauth2/v2.1/revoke").await, vec![200]);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_under_a_missing_key_waits_and_healthz_says_why() {
    let mut f = Fixture::new().await;
    let old = f.config("old.toml", &Phase::new(K1, &[], false, 1));
    f.start(&old).await;
    f.login().await;
    let account = account_of(&old, USERS[0]).await;
    let job = job_in(
        &ok(&[
            "accounts",
            "unregister",
            &account,
            "--config",
            old.to_str().unwrap(),
        ])
        .await,
    );

    // The key was replaced without keeping the old one: the worker cannot decrypt the job.
    let wrong = f.config("wrong.toml", &Phase::new(K2, &[], true, 1));
    f.start(&wrong).await;
    let first = wait_job(&wrong, &job, "waiting for its key", |v| {
        v["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("waiting for the key"))
    })
    .await;
    // Tried again and again (each try moves its next attempt), never failed, never counted.
    let later = wait_job(&wrong, &job, "tried again", |v| {
        v["next_attempt_at"].as_i64() > first["next_attempt_at"].as_i64()
    })
    .await;
    let later = wait_job(&wrong, &job, "tried again", |v| {
        v["next_attempt_at"].as_i64() > later["next_attempt_at"].as_i64()
    })
    .await;
    let h = f.healthz().await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["keys"]["undecryptable_jobs"], 1, "{h}");
    assert!(
        h["keys"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("previous_token_encryption_keys")),
        "{h}"
    );
    assert!(f.calls("/user/v1/deauthorize").await.is_empty());
    // Stopped (no claim in progress): still pending, no attempt counted, tokens kept.
    f.stop().await;
    let w = wrong.to_str().unwrap();
    let job_now = ok_json(&["outbox", "show", &job, "--json", "--config", w]).await;
    assert!(job_now["next_attempt_at"].as_i64() >= later["next_attempt_at"].as_i64());
    assert_eq!(job_now["status"], "pending", "{job_now}");
    assert_eq!(job_now["attempts"], 0, "{job_now}");
    assert_eq!(job_now["has_tokens"], true, "{job_now}");
    // `check` says so too, and what to do.
    let checked = cli(&["check", "--config", w]).await;
    let text = stdout(&checked);
    assert_eq!(checked.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "FAIL token keys: 1 of 1 stored token sets sampled open under no configured key"
        ),
        "{text}"
    );

    // With the old key back among the previous ones, the job goes through.
    let fixed = f.config("fixed.toml", &Phase::new(K2, &[K1], true, 1));
    f.start(&fixed).await;
    wait_job(&fixed, &job, "done", status_is("done")).await;
    assert!(!f.authorized(USERS[0]).await);
    let h = f.healthz().await;
    assert_eq!(h["keys"]["undecryptable_jobs"], 0, "{h}");
    f.stop().await;
    let checked = stdout(&cli(&["check", "--config", fixed.to_str().unwrap()]).await);
    assert!(checked.contains("ok   token keys"), "{checked}");
}

#[tokio::test]
async fn the_operator_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.sqlite");
    let cfg = write_config(&dir.path().join("server.toml"), &db, SECRET, "");
    let c = cfg.to_str().unwrap();
    for args in [
        vec!["outbox", "list", "--config", c],
        vec!["outbox", "show", "j_x", "--config", c],
        vec!["accounts", "find", "--user", USERS[0], "--config", c],
        vec!["accounts", "show", "a_x", "--config", c],
        vec!["keys", "rotate", "--config", c],
    ] {
        let o = cli(&args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!db.exists(), "nothing was created");
    let o = cli(&["outbox", "list"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no --config given"), "{}", stderr(&o));
    let key = ok(&["keys", "generate"]).await;
    assert!(
        linelogin_server::config::EncryptionKey::from_base64(key.trim()).is_ok(),
        "{key}"
    );
}
