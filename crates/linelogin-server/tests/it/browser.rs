//! A real headless Chromium, driven over WebDriver (chromedriver + fantoccini): it opens the
//! app, clicks through the emulator's consent page, sees the profile, unregisters, and saves
//! a screenshot of each page under `target/`. Skipped, with a printed note, when chromedriver
//! is not installed (`apt-get install chromium chromium-driver`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use futures::FutureExt as _;

use crate::emulator::{EMU_USER, start};
use crate::harness::Opts;

fn find_chromedriver() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("chromedriver"))
        .find(|p| p.is_file())
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

#[tokio::test]
async fn e2e_chromium_login_consent_profile_unregister() {
    let Some(driver) = find_chromedriver() else {
        println!(
            "SKIPPED e2e_chromium: chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut chromedriver = tokio::process::Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--window-size=1000,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = client.expect("chromedriver session");

    let e = start(Opts::default(), false).await;
    // Panics inside are caught so that the browser sessions are always closed (a killed
    // chromedriver would leave its Chromium behind).
    let main_flow = std::panic::AssertUnwindSafe(async {
        c.goto(&e.h.url("/")).await.unwrap();
        shot(&c, "01-home").await;
        c.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The emulator's consent page: pick the user, Allow.
        let radio = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("input[name=user][value={EMU_USER}]")))
            .await
            .unwrap();
        radio.click().await.unwrap();
        shot(&c, "02-consent").await;
        c.find(Locator::Id("allow"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // Back on the app: the profile.
        let name = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("display-name"))
            .await
            .unwrap();
        assert_eq!(name.text().await.unwrap(), "Emulated User");
        assert_eq!(c.current_url().await.unwrap().path(), "/me");
        shot(&c, "03-me").await;

        c.find(Locator::Id("unregister-link"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let notice = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("notice"))
            .await
            .unwrap();
        assert!(notice.text().await.unwrap().contains("LY Corporation"));
        shot(&c, "04-unregister").await;
        c.find(Locator::Id("unregister"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let done = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("done"))
            .await
            .unwrap();
        assert!(done.text().await.unwrap().contains("deleted"));
        shot(&c, "05-unregistered").await;

        e.h.wait_outbox_empty().await;
        assert!(!e.authorized(EMU_USER).await, "deauthorized at LINE");
        assert_eq!(e.calls("/user/v1/deauthorize").await, vec![204]);

        // Logged out everywhere: /me sends the browser to log in again.
        c.goto(&e.h.url("/me")).await.unwrap();
        assert_ne!(c.current_url().await.unwrap().path(), "/me");
    })
    .catch_unwind()
    .await;
    let _ = c.close().await;

    // The same pages in Japanese, chosen by the browser's Accept-Language.
    let ja_profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--window-size=1000,900", "--lang=ja",
                format!("--user-data-dir={}", ja_profile.path().display()),
            ],
            "prefs": { "intl.accept_languages": "ja" }
        }),
    );
    let ja = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let ja_flow = std::panic::AssertUnwindSafe(async {
        ja.goto(&e.h.url("/terms")).await.unwrap();
        let html = ja.source().await.unwrap();
        assert!(
            html.contains("LINEヤフー株式会社"),
            "Japanese terms with the notice"
        );
        shot(&ja, "06-terms-ja").await;
    })
    .catch_unwind()
    .await;
    let _ = ja.close().await;
    let _ = chromedriver.kill().await;
    e.stop().await;
    for outcome in [main_flow, ja_flow] {
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
