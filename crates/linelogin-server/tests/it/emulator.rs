//! Full flows against the real `line-emulator`: after unlink and unregister, the emulator's
//! admin API shows the app no longer authorized for the user and its journal shows the
//! deauthorize call.

use std::time::Duration;

use line_emulator::{ChannelConfig, Emulator, UserConfig};

use crate::fake_line::{CHANNEL_ID, CHANNEL_SECRET, FakeLine};
use crate::harness::{Harness, Opts, bind, clock_now, get_json, sixty_day_sessions};

pub const EMU_USER: &str = "U0123456789abcdef0123456789abcdef";

pub struct Emu {
    pub h: Harness,
    pub emu_url: String,
    pub running: line_emulator::RunningEmulator,
}

/// The emulator (auto-consent, one user, our callback registered) and the server.
pub async fn start(opts: Opts, auto_consent: bool) -> Emu {
    start_custom(opts, auto_consent, |_, _| {}).await
}

/// Like [`start`], with the emulator's channel adjusted first (e.g. a rate limit).
pub async fn start_with_channel(
    opts: Opts,
    auto_consent: bool,
    adjust: impl FnOnce(&mut ChannelConfig),
) -> Emu {
    start_custom(opts, auto_consent, |cfg, _| adjust(&mut cfg.channels[0])).await
}

/// The emulator and the server on it. The emulator has one channel whose callback is the
/// server's `/callback`, and [`EMU_USER`] (plus a second user without auto-consent);
/// `setup` then changes that configuration, given the server's base URL.
pub async fn start_custom(
    mut opts: Opts,
    auto_consent: bool,
    setup: impl FnOnce(&mut line_emulator::Config, &str),
) -> Emu {
    let (listener, base) = bind().await;
    let mut cfg = line_emulator::Config::default_demo();
    cfg.auto_consent = auto_consent;
    cfg.channels = vec![ChannelConfig::new(
        CHANNEL_ID,
        CHANNEL_SECRET,
        vec![format!("{base}/callback").parse().unwrap()],
    )];
    cfg.users = vec![
        UserConfig::new(EMU_USER, "Emulated User"),
        UserConfig::new("U00000000000000000000000000000abc", "Second User"),
    ];
    if auto_consent {
        cfg.users.truncate(1);
    }
    setup(&mut cfg, &base);
    let (running, emu_url) = serve_emulator(cfg).await;
    opts.listener = Some(listener);
    opts.line_url = Some(emu_url.clone());
    let h = Harness::start_with(FakeLine::start().await, opts).await;
    Emu {
        h,
        emu_url,
        running,
    }
}

/// Serves an emulator with `cfg` on 127.0.0.1:0; returns it and its base URL (without a
/// trailing slash).
pub async fn serve_emulator(
    cfg: line_emulator::Config,
) -> (line_emulator::RunningEmulator, String) {
    let running = Emulator::new(cfg)
        .unwrap()
        .serve(bind().await.0)
        .await
        .unwrap();
    let url = running.base_url().trim_end_matches('/').to_string();
    (running, url)
}

/// An auto-consent emulator for a fleet: one channel whose callbacks are those of the
/// instances at `bases`, users `U{i:032x}` named `User {i}` for `i` in `ids`, and a journal
/// large enough for a load run.
pub async fn fleet_emulator(
    bases: &[String],
    ids: std::ops::Range<usize>,
) -> (line_emulator::RunningEmulator, String) {
    let mut cfg = line_emulator::Config::default_demo();
    cfg.auto_consent = true;
    cfg.journal_capacity = 100_000;
    cfg.channels = vec![ChannelConfig::new(
        CHANNEL_ID,
        CHANNEL_SECRET,
        bases
            .iter()
            .map(|b| format!("{b}/callback").parse().unwrap())
            .collect(),
    )];
    cfg.users = ids
        .enumerate()
        .map(|(n, i)| UserConfig::new(format!("U{i:032x}"), format!("User {n}")))
        .collect();
    serve_emulator(cfg).await
}

impl Emu {
    pub async fn authorized(&self, user: &str) -> bool {
        let v: serde_json::Value = get_json(format!(
            "{}/_emulator/users/{user}/authorized-apps",
            self.emu_url
        ))
        .await;
        v["authorized_apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["channel_id"] == CHANNEL_ID)
    }

    /// (method, path, status) of every journaled request, oldest first.
    pub async fn journal(&self) -> Vec<(String, String, u16)> {
        let v: serde_json::Value =
            get_json(format!("{}/_emulator/journal?limit=1000", self.emu_url)).await;
        let mut entries: Vec<(u64, String, String, u16)> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().unwrap(),
                    e["method"].as_str().unwrap().to_string(),
                    e["path"].as_str().unwrap().to_string(),
                    e["status"].as_u64().unwrap() as u16,
                )
            })
            .collect();
        entries.sort();
        entries.into_iter().map(|(_, m, p, s)| (m, p, s)).collect()
    }

    pub async fn calls(&self, path: &str) -> Vec<u16> {
        self.journal()
            .await
            .into_iter()
            .filter(|(_, p, _)| p == path)
            .map(|(_, _, s)| s)
            .collect()
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let r = reqwest::Client::new()
            .request(method, format!("{}/_emulator/{path}", self.emu_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
    }

    /// Replaces the emulator's fault rules (`PUT /_emulator/faults`).
    pub async fn faults(&self, rules: serde_json::Value) {
        self.admin(reqwest::Method::PUT, "faults", rules).await;
    }

    pub async fn stop(self) {
        self.h.stop().await;
        self.running.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn emulator_login_me_and_logout() {
    let e = start(Opts::default(), true).await;
    let c = e.h.client();
    e.h.login(&c).await;
    let (status, me) = e.h.api_me(&c).await;
    assert_eq!(status, 200);
    assert_eq!(me["userId"], EMU_USER);
    assert_eq!(me["displayName"], "Emulated User");
    assert!(e.authorized(EMU_USER).await);
    let csrf = e.h.csrf(&c, "/me").await;
    assert_eq!(
        e.h.post_form(&c, "/logout", Some(&csrf)).await.status(),
        303
    );
    assert_eq!(e.h.api_me(&c).await.0, 401);
    assert_eq!(e.calls("/oauth2/v2.1/revoke").await, vec![200]);
    e.stop().await;
}

#[tokio::test]
async fn emulator_unregister_deauthorizes() {
    let e = start(Opts::default(), true).await;
    let c = e.h.client();
    e.h.login(&c).await;
    assert_eq!(e.h.submit(&c, "/account/unregister").await.status(), 200);
    e.h.wait_outbox_empty().await;
    assert!(
        !e.authorized(EMU_USER).await,
        "the admin API no longer lists the app"
    );
    assert_eq!(e.calls("/user/v1/deauthorize").await, vec![204]);
    assert_eq!(
        e.calls("/oauth2/v3/token").await,
        vec![200],
        "stateless channel token"
    );
    assert_eq!(e.h.api_me(&c).await.0, 401);
    e.stop().await;
}

#[tokio::test]
async fn emulator_unlink_deauthorizes_and_relogin_links_again() {
    let e = start(Opts::default(), true).await;
    let c = e.h.client();
    e.h.login(&c).await;
    assert_eq!(e.h.submit(&c, "/account/unlink").await.status(), 200);
    e.h.wait_outbox_empty().await;
    assert!(!e.authorized(EMU_USER).await);
    assert_eq!(e.calls("/user/v1/deauthorize").await, vec![204]);
    e.h.login(&c).await;
    let (_, me) = e.h.api_me(&c).await;
    assert_eq!(me["userId"], EMU_USER);
    assert_eq!(me["linked"], true);
    assert!(e.authorized(EMU_USER).await);
    e.stop().await;
}

#[tokio::test]
async fn emulator_refresh_on_expiry_with_the_emulator_clock() {
    let clock = clock_now();
    let opts = Opts::default().clock(&clock).config(sixty_day_sessions);
    let e = start(opts, true).await;
    let c = e.h.client();
    e.h.login(&c).await;
    let days31 = 31 * 86400;
    e.admin(
        reqwest::Method::POST,
        "clock",
        serde_json::json!({ "advance_secs": days31 }),
    )
    .await;
    clock.advance(Duration::from_secs(days31 as u64));
    assert_eq!(e.h.submit(&c, "/account/unregister").await.status(), 200);
    e.h.wait_outbox_empty().await;
    assert_eq!(
        e.calls("/oauth2/v2.1/token").await,
        vec![200, 200],
        "code exchange, then refresh"
    );
    assert_eq!(e.calls("/user/v1/deauthorize").await, vec![204]);
    assert!(!e.authorized(EMU_USER).await);
    e.stop().await;
}

#[tokio::test]
async fn emulator_deauthorize_500_then_429_then_204() {
    let e = start(Opts::default(), true).await;
    let c = e.h.client();
    e.h.login(&c).await;
    e.faults(serde_json::json!([
        { "endpoint": "deauthorize", "status": 500, "count": 1 },
        { "endpoint": "deauthorize", "status": 429, "count": 1, "retry_after": 0 }
    ]))
    .await;
    assert_eq!(e.h.submit(&c, "/account/unregister").await.status(), 200);
    e.h.wait_outbox_empty().await;
    assert_eq!(e.calls("/user/v1/deauthorize").await, vec![500, 429, 204]);
    assert!(!e.authorized(EMU_USER).await);
    e.stop().await;
}
