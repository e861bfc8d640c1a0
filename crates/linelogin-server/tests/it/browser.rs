//! A real headless Chromium, driven over WebDriver (chromedriver + fantoccini): in English and
//! Japanese, at a desktop and a phone width (390×844), it opens the app, clicks through the
//! emulator's consent page, sees the profile and the header, logs out, switches the language,
//! reads the terms, logs in again, unregisters, and opens an error page, saving a screenshot
//! of each page under `target/tmp/e2e-screenshots/`.
//!
//! Ignored by default because it needs chromium and chromedriver
//! (`apt-get install chromium chromium-driver`); CI runs it with `--ignored`, and then a
//! missing chromedriver FAILS the test (it never skips silently). `CHROMEDRIVER=/path`
//! overrides the lookup on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt as _;

use crate::emulator::{EMU_USER, Emu, start};
use crate::harness::Opts;

const WAIT: Duration = Duration::from_secs(10);

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

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

async fn browser(port: u16, lang: &str, width: u32, height: u32, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--hide-scrollbars", format!("--window-size={width},{height}"),
                format!("--lang={lang}"),
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": lang }
        }),
    );
    // Headless Chromium will not make a window narrower than 500 px: a phone is emulated.
    if width < 500
        && let Some(opts) = caps
            .get_mut("goog:chromeOptions")
            .and_then(|o| o.as_object_mut())
    {
        opts.insert(
            "mobileEmulation".into(),
            serde_json::json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "mobile": true, "touch": true }
            }),
        );
    }
    for _ in 0..100 {
        if let Ok(c) = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no chromedriver session on port {port}");
}

async fn click(c: &Client, id: &str) {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn text_of(c: &Client, id: &str) -> String {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn html_lang(c: &Client) -> String {
    c.find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// The page fits the window: nothing wider than the viewport (no sideways scrolling).
async fn assert_fits(c: &Client, what: &str) {
    let v = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
    assert!(
        scroll <= inner,
        "{what}: {scroll}px wide in a {inner}px window"
    );
}

/// The emulator's consent page (pick the user, Allow), or nothing when LINE's single sign-on
/// sends the browser straight back.
async fn through_line(c: &Client, tag: &str, step: &str) {
    let css = format!("input[name=user][value={EMU_USER}]");
    for _ in 0..100 {
        if c.find(Locator::Id("display-name")).await.is_ok() {
            return;
        }
        if let Ok(radio) = c.find(Locator::Css(&css)).await {
            radio.click().await.unwrap();
            shot(c, &format!("{tag}-{step}-line-consent")).await;
            click(c, "allow").await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{tag}: neither the consent page nor /me");
}

/// One walk through the app in one language at one window size.
async fn walk(c: &Client, e: &Emu, lang: &str, tag: &str) {
    let other = if lang == "en" { "ja" } else { "en" };
    c.goto(&e.h.url("/")).await.unwrap();
    assert_eq!(html_lang(c).await, lang, "{tag}: Accept-Language");
    assert_fits(c, &format!("{tag} home")).await;
    shot(c, &format!("{tag}-01-home")).await;
    click(c, "login").await;
    through_line(c, tag, "02").await;

    assert_eq!(text_of(c, "display-name").await, "Emulated User");
    assert_eq!(c.current_url().await.unwrap().path(), "/me");
    assert_eq!(text_of(c, "header-name").await, "Emulated User", "{tag}");
    assert!(c.find(Locator::Id("header-avatar")).await.is_ok(), "{tag}");
    assert_fits(c, &format!("{tag} me")).await;
    shot(c, &format!("{tag}-03-me")).await;

    click(c, "logout").await;
    let said = text_of(c, "logged-out").await;
    assert!(!said.is_empty(), "{tag}: logged-out notice");
    shot(c, &format!("{tag}-04-logged-out")).await;

    click(c, "lang-switch").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("html[lang={other}]")))
        .await
        .unwrap_or_else(|err| panic!("{tag}: the switch to {other}: {err}"));
    shot(c, &format!("{tag}-05-switched-to-{other}")).await;
    click(c, "lang-switch").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("html[lang={lang}]")))
        .await
        .unwrap();

    c.goto(&e.h.url("/terms")).await.unwrap();
    assert_eq!(html_lang(c).await, lang, "{tag}: the lang cookie");
    assert_fits(c, &format!("{tag} terms")).await;
    shot(c, &format!("{tag}-06-terms")).await;

    // The next login after the logout asks LINE for its login screen.
    c.goto(&e.h.url("/me")).await.unwrap();
    through_line(c, tag, "07").await;
    assert_eq!(text_of(c, "display-name").await, "Emulated User");

    click(c, "unregister-link").await;
    let notice = text_of(c, "notice").await;
    let company = if lang == "en" {
        "LY Corporation"
    } else {
        "LINEヤフー株式会社"
    };
    assert!(notice.contains(company), "{tag}: {notice}");
    assert_fits(c, &format!("{tag} unregister")).await;
    shot(c, &format!("{tag}-08-unregister")).await;
    click(c, "unregister").await;
    assert!(!text_of(c, "done").await.is_empty());
    shot(c, &format!("{tag}-09-unregistered")).await;

    e.h.wait_outbox_empty().await;
    assert!(!e.authorized(EMU_USER).await, "{tag}: deauthorized at LINE");

    c.goto(&e.h.url("/callback?code=x")).await.unwrap();
    assert!(c.find(Locator::Id("retry")).await.is_ok(), "{tag}");
    assert_fits(c, &format!("{tag} error")).await;
    shot(c, &format!("{tag}-10-error")).await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver (CI runs --ignored)"]
async fn e2e_chromium_login_consent_profile_unregister() {
    let driver = find_chromedriver().unwrap_or_else(|| {
        panic!("chromedriver not found on PATH nor in CHROMEDRIVER (apt-get install chromium chromium-driver)")
    });
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
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", driver.display()));

    let e = start(Opts::default(), false).await;
    let mut outcomes = Vec::new();
    for (lang, width, height, form) in [
        ("en", 1000, 900, "desktop"),
        ("ja", 1000, 900, "desktop"),
        ("en", 390, 844, "phone"),
        ("ja", 390, 844, "phone"),
    ] {
        let profile = tempfile::tempdir().unwrap();
        let c = browser(port, lang, width, height, profile.path()).await;
        let tag = format!("{lang}-{form}");
        // Panics are caught so that every browser session is closed (a killed chromedriver
        // would leave its Chromium behind).
        let outcome = std::panic::AssertUnwindSafe(walk(&c, &e, lang, &tag))
            .catch_unwind()
            .await;
        let _ = c.close().await;
        outcomes.push(outcome);
    }
    let _ = chromedriver.kill().await;
    e.stop().await;
    for outcome in outcomes {
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
