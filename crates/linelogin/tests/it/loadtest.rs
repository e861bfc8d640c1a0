//! `linelogin loadtest` as a process: the guard's one-line refusal, usage errors, the JSON
//! report and the SVG chart, against the emulator and a linelogin server in this process. The
//! runner itself is tested in the `line-loadtest` crate.

use std::process::Command;

use line_emulator::{ChannelConfig, Config as EmulatorConfig, Emulator, RunningEmulator};
use linelogin_server::config::Config;
use linelogin_server::serve::RunningServer;
use linelogin_server::state::AppState;

use crate::common::{CHANNEL_ID, CHANNEL_SECRET, KEY, write_config};

/// A linelogin server on 127.0.0.1:0 whose LINE is at `auth_url` / `api_url`; its SQLite file
/// and logs go to a temporary directory that lives as long as the server.
async fn server_on(
    listener: tokio::net::TcpListener,
    auth_url: &str,
    api_url: &str,
) -> (url::Url, (RunningServer, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let env: Vec<(String, String)> = [
        ("LINELOGIN_PUBLIC_URL", base.clone()),
        (
            "LINELOGIN_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        ),
        ("LINELOGIN_TOKEN_ENCRYPTION_KEY", KEY.into()),
        ("LINELOGIN_LINE__CHANNEL_ID", CHANNEL_ID.into()),
        ("LINELOGIN_LINE__CHANNEL_SECRET", CHANNEL_SECRET.into()),
        ("LINELOGIN_LINE__AUTH_URL", auth_url.into()),
        ("LINELOGIN_LINE__API_URL", api_url.into()),
        ("LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND", "10000".into()),
        (
            "LINELOGIN_LOGS__DIR",
            dir.path().join("logs").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::load(None, env).unwrap();
    let state = AppState::builder(&config).build().await.unwrap();
    let running = linelogin_server::serve::start_on(state, listener).unwrap();
    (format!("{base}/").parse().unwrap(), (running, dir))
}

async fn server_for_line(
    auth_url: &str,
    api_url: &str,
) -> (url::Url, (RunningServer, tempfile::TempDir)) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server_on(listener, auth_url, api_url).await
}

/// The emulator (auto-consent) and a linelogin server whose LINE it is.
async fn server_on_emulator() -> (
    url::Url,
    RunningEmulator,
    (RunningServer, tempfile::TempDir),
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let mut config = EmulatorConfig::default_demo();
    config.auto_consent = true;
    config.channels = vec![ChannelConfig::new(
        CHANNEL_ID,
        CHANNEL_SECRET,
        vec![callback.parse().unwrap()],
    )];
    let emulator = Emulator::new(config).unwrap();
    let running = emulator
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let base = running.base_url().trim_end_matches('/').to_owned();
    let (rp, server) = server_on(listener, &base, &base).await;
    (rp, running, server)
}

#[test]
fn the_cli_exits_1_with_one_line_citing_the_guideline() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A real linelogin server whose LINE is the real platform: its /login redirects to
    // access.line.me, which the runner must refuse before sending any load (or anything).
    let (rp, _server) = rt.block_on(server_for_line(
        "https://access.line.me",
        "https://api.line.me",
    ));
    let out = loadtest(&["--target", rp.as_str(), "--flows", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("linelogin: refusing to load-test"),
        "{stderr}"
    );
    assert!(
        stderr.contains("LINE Login development guidelines"),
        "{stderr}"
    );
    drop(rt);
}

#[test]
fn the_cli_rejects_bad_usage_with_status_2() {
    let target = "http://127.0.0.1:1/";
    let out = loadtest(&["--target", target, "--flows", "1", "--duration", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let out = loadtest(&["--target", target, "--concurrency", "0"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_server_refuses_to_start_against_the_real_line_during_a_load_test() {
    let dir = std::env::temp_dir().join(format!("linelogin-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(
        &dir.join("server.toml"),
        &dir.join("db.sqlite"),
        CHANNEL_SECRET,
        &format!(
            "auth_url = \"https://access.line.me\"\napi_url = \"https://api.line.me\"\n\
             [logs]\ndir = \"{}\"\n",
            dir.join("logs").display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("LINELOGIN_LOAD_TEST", "1")
        .output()
        .unwrap();
    // An unusable configuration: exit 2 (it was 1 before issue 15 made it bad usage).
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("LINELOGIN_LOAD_TEST"), "{stderr}");
    assert!(!stderr.contains(CHANNEL_SECRET), "no secret in the error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_writes_json_and_svg() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rp, _emulator, _server) = rt.block_on(server_on_emulator());
    let dir = std::env::temp_dir().join(format!("linelogin-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("report.json"), dir.join("chart.svg"));
    let out = loadtest(&[
        "--target",
        rp.as_str(),
        "--flows",
        "50",
        "--concurrency",
        "4",
        "--json",
        json.to_str().unwrap(),
        "--chart",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("throughput"), "{table}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["flows"], 50);
    assert_eq!(r["ok"], 50);
    assert_eq!(r["failed"], 0);
    assert!(r["duration_s"].as_f64().unwrap() > 0.0);
    assert!(r["flows_per_s"].as_f64().unwrap() > 0.0);
    for k in ["p50", "p90", "p99", "max"] {
        assert!(r["latency_ms"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
    drop(rt);
}

fn loadtest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .arg("loadtest")
        .args(args)
        .arg("--quiet")
        .output()
        .unwrap()
}

async fn token_calls(emulator: &RunningEmulator) -> u64 {
    let url = format!(
        "{}/_emulator/stats",
        emulator.base_url().trim_end_matches('/')
    );
    let stats: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    stats["endpoints"]["token"]["total"].as_u64().unwrap_or(0)
}

#[test]
fn flows_zero_and_a_bad_duration_are_usage_errors() {
    for args in [
        &["--target", "http://127.0.0.1:1/", "--flows", "0"][..],
        &["--target", "http://127.0.0.1:1/", "--duration", "2x"][..],
        &["--target", "http://127.0.0.1:1/", "--duration", "-3"][..],
        &["--target", "http://127.0.0.1:1/", "--max-failure-rate", "2"][..],
    ] {
        let out = loadtest(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error:"), "{args:?}: {stderr}");
    }
}

#[test]
fn duration_takes_seconds_or_units() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rp, _emulator, _server) = rt.block_on(server_on_emulator());
    for d in ["1", "1s", "900ms"] {
        let out = loadtest(&[
            "--target",
            rp.as_str(),
            "--duration",
            d,
            "--concurrency",
            "2",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "--duration {d}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains("throughput"), "{table}");
    }
    drop(rt);
}

#[test]
fn an_unwritable_output_path_fails_before_the_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rp, emulator, _server) = rt.block_on(server_on_emulator());
    let dir = tempfile::tempdir().unwrap();
    // The bad path of one flag, and a good path for the other: neither file is left behind.
    for (flag, path, other, good) in [
        (
            "--json",
            dir.path().join("missing/report.json"),
            "--chart",
            dir.path().join("chart.svg"),
        ),
        (
            "--chart",
            dir.path().to_path_buf(),
            "--json",
            dir.path().join("report.json"),
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
            .args([
                "loadtest",
                "--target",
                rp.as_str(),
                "--flows",
                "20",
                "--quiet",
            ])
            .arg(other)
            .arg(&good)
            .arg(flag)
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("cannot write"),
            "{stderr}"
        );
        assert!(!good.exists(), "no report file is left behind");
    }
    assert_eq!(rt.block_on(token_calls(&emulator)), 0, "no load was sent");
    drop(rt);
}

#[test]
fn failed_flows_exit_1_unless_within_max_failure_rate() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rp, emulator, _server) = rt.block_on(server_on_emulator());
    // LINE (the emulator) fails three code exchanges a run: those logins end in a 503 page.
    // A count, not a probability: five failures in a row would open the server's circuit
    // breaker and fail every flow after them.
    let faults = format!(
        "{}/_emulator/faults",
        emulator.base_url().trim_end_matches('/')
    );
    let fail_three_token_calls = || {
        rt.block_on(async {
            let status = reqwest::Client::new()
                .put(&faults)
                .json(&serde_json::json!([{"endpoint": "token", "status": 500, "count": 3}]))
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "{status}");
        });
    };
    fail_three_token_calls();
    let args = [
        "--target",
        rp.as_str(),
        "--flows",
        "60",
        "--concurrency",
        "4",
    ];
    let out = loadtest(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "any failure fails the run by default"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("above --max-failure-rate 0"), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("callback_status_503"), "{table}");
    assert!(table.contains("likely causes"), "{table}");

    fail_three_token_calls();
    let mut tolerant = args.to_vec();
    tolerant.extend(["--max-failure-rate", "0.9"]);
    let out = loadtest(&tolerant);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(rt);
}

/// Two network namespaces joined by a veth pair: host A (`.1`) and host B (`.2`) on a /24 of
/// their own. Removed on drop.
struct TwoHosts {
    a: String,
    b: String,
    subnet: String,
}

impl TwoHosts {
    fn new() -> Self {
        let id = std::process::id();
        let (a, b) = (format!("llt-a-{id}"), format!("llt-b-{id}"));
        let (va, vb) = (
            format!("llva{}", id % 100_000),
            format!("llvb{}", id % 100_000),
        );
        let subnet = format!("10.213.{}", id % 250);
        let hosts = Self {
            a: a.clone(),
            b: b.clone(),
            subnet: subnet.clone(),
        };
        let ip = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("the ip command");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &a]);
        ip(&["netns", "add", &b]);
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &a]);
        ip(&["link", "set", &vb, "netns", &b]);
        for (ns, dev, host) in [(&a, &va, 1), (&b, &vb, 2)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{subnet}.{host}/24"),
                "dev",
                dev,
            ]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        hosts
    }

    fn exec(&self, ns: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]);
        c
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

#[test]
#[ignore = "needs root and `ip netns` (CI runs it with --ignored)"]
fn a_staging_relying_party_on_another_host_is_a_target_when_allowed() {
    use std::io::{BufRead, BufReader};
    let hosts = TwoHosts::new();
    let data = tempfile::tempdir().unwrap();
    let server = format!("{}.1:8080", hosts.subnet);
    let emulator = format!("{}.1:9000", hosts.subnet);
    // Host A: the demo (a relying party and its emulator), on A's own address.
    let mut demo = KillOnDrop(
        hosts
            .exec(&hosts.a)
            .arg(env!("CARGO_BIN_EXE_linelogin"))
            .args(["demo", "--auto-consent", "--test-users", "8"])
            .args(["--listen", &server, "--emulator-listen", &emulator])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let banner = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("Login server:"));
    assert!(banner.is_some(), "the demo started");
    let target = format!("http://{server}/");

    // Host B: the runner. Refused without the flag, before any request leaves B...
    let out = hosts
        .exec(&hosts.b)
        .arg(env!("CARGO_BIN_EXE_linelogin"))
        .args(["loadtest", "--target", &target, "--flows", "20", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-remote-target"), "{stderr}");

    // ...and run with it: the login redirects to an emulator that answers the handshake.
    let out = hosts
        .exec(&hosts.b)
        .arg(env!("CARGO_BIN_EXE_linelogin"))
        .args([
            "loadtest",
            "--target",
            &target,
            "--flows",
            "40",
            "--concurrency",
            "4",
        ])
        .args(["--finish", "unregister", "--allow-remote-target", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("40 ok, 0 failed"), "{stdout}");
    assert!(
        stdout.contains(&format!("emulator    http://{emulator}")),
        "{stdout}"
    );
    drop(demo);
}

/// A child process killed (and reaped) when the test ends, whether it passed or panicked.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
