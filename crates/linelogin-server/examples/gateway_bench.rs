//! A gateway to measure with `wrk` (see `bench/gateway-core.sh`): the LINE emulator, an
//! upstream app (a tiny axum "hello"), and linelogin in proxy mode in front of it, all on
//! 127.0.0.1; logs one user in and prints, one per line, `upstream=URL`, `gateway=URL` and
//! `cookie=HEADER` (the session cookie), then serves until killed.
//!
//! `cargo run --release -p linelogin-server --example gateway_bench`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use line_emulator::{ChannelConfig, Emulator, UserConfig};
use line_login::secret::ChannelSecret;
use linelogin_server::config::{Config, DatabaseUrl, EncryptionKey, GatewayConfig, LineConfig};
use linelogin_server::serve::{StartOptions, start};

const CHANNEL_ID: &str = "1234567890";
const CHANNEL_SECRET: &str = "BENCH_SECRET_0123456789abcdef012";

#[tokio::main]
async fn main() {
    // The upstream: one small text answer.
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", up.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "hello from the upstream\n" });
    tokio::spawn(async move { axum::serve(up, app).await.unwrap() });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut cfg = line_emulator::Config::default_demo();
    cfg.auto_consent = true;
    cfg.channels = vec![ChannelConfig::new(
        CHANNEL_ID,
        CHANNEL_SECRET,
        vec![format!("{base}/linelogin/callback").parse().unwrap()],
    )];
    cfg.users = vec![UserConfig::new(
        "U0123456789abcdef0123456789abcdef",
        "Bench User",
    )];
    let emu = Emulator::new(cfg)
        .unwrap()
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let emu_url = emu.base_url().trim_end_matches('/').to_owned();

    let dir = tempfile::tempdir().unwrap();
    let mut line = LineConfig::new(CHANNEL_ID, ChannelSecret::new(CHANNEL_SECRET));
    line.auth_url = emu_url.parse().unwrap();
    line.api_url = line.auth_url.clone();
    let mut config = Config::new(
        base.parse().unwrap(),
        EncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap(),
        line,
    );
    config.database_url =
        DatabaseUrl::new(format!("sqlite://{}", dir.path().join("ll.db").display()));
    config.gateway = Some(GatewayConfig {
        upstream: Some(upstream.parse().unwrap()),
        ..GatewayConfig::default()
    });
    config.http.max_connections = 4096;
    config.validate(None).unwrap();
    let server = start(
        &config,
        StartOptions {
            listener: Some(listener),
            without_guideline_logs: true,
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();

    // Log in: gateway → emulator (auto consent) → callback.
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = format!("{base}/linelogin/login");
    let mut cookie = None;
    for _ in 0..5 {
        let r = c.get(&url).send().await.unwrap();
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if v.starts_with("ll_session=") {
                cookie = v.split(';').next().map(str::to_owned);
            }
        }
        match r.headers().get("location") {
            Some(l) if cookie.is_none() => url = l.to_str().unwrap().to_owned(),
            _ => break,
        }
    }
    let cookie = cookie.expect("logged in");
    let mut out = std::io::stdout();
    writeln!(out, "upstream={upstream}\ngateway={base}\ncookie={cookie}").unwrap();
    out.flush().unwrap();
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
}
