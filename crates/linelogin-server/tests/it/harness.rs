//! Starts LINE (fake or emulator) and the server on 127.0.0.1:0, and drives flows with reqwest
//! (redirects off, cookie jar on).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use line_login::clock::{MockClock, SharedClock, SystemClock};
use linelogin_server::AppState;
use linelogin_server::config::Config;
use linelogin_server::serve::{RunningServer, start_on};
use reqwest::header::{LOCATION, SET_COOKIE};

use crate::fake_line::{CHANNEL_ID, CHANNEL_SECRET, FakeLine};

pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub struct Opts {
    pub worker: bool,
    pub db: Option<PathBuf>,
    pub clock: Option<MockClock>,
    pub extra_env: Vec<(String, String)>,
    /// Use this LINE base URL (e.g. an emulator) instead of the fake's.
    pub line_url: Option<String>,
    /// Serve on this already bound listener.
    pub listener: Option<tokio::net::TcpListener>,
    /// Write the guideline logs (into the test's directory).
    pub guideline_logs: bool,
    /// The body of a `[gateway]` section (TOML), when the server runs as the gateway.
    pub gateway: Option<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            worker: true,
            db: None,
            clock: None,
            extra_env: Vec::new(),
            line_url: None,
            listener: None,
            guideline_logs: false,
            gateway: None,
        }
    }
}

pub struct Harness {
    pub line: FakeLine,
    pub server: Option<RunningServer>,
    pub state: AppState,
    pub base: String,
    pub db: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

pub fn config(
    public_url: &str,
    line_url: &str,
    db: &std::path::Path,
    extra: &[(String, String)],
) -> Config {
    let mut env: Vec<(String, String)> = [
        ("LINELOGIN_PUBLIC_URL", public_url.to_string()),
        (
            "LINELOGIN_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("LINELOGIN_TOKEN_ENCRYPTION_KEY", KEY.to_string()),
        ("LINELOGIN_LINE__CHANNEL_ID", CHANNEL_ID.to_string()),
        ("LINELOGIN_LINE__CHANNEL_SECRET", CHANNEL_SECRET.to_string()),
        ("LINELOGIN_LINE__AUTH_URL", line_url.to_string()),
        ("LINELOGIN_LINE__API_URL", line_url.to_string()),
        (
            "LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND",
            "1000".to_string(),
        ),
        ("LINELOGIN_OUTBOUND__BURST", "1000".to_string()),
        ("LINELOGIN_DEAUTH__BACKOFF_BASE_MS", "20".to_string()),
        ("LINELOGIN_DEAUTH__BACKOFF_MAX_MS", "200".to_string()),
        ("LINELOGIN_DEAUTH__POLL_MS", "20".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(extra.iter().cloned());
    Config::load(None, env).unwrap()
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(FakeLine::start().await, Opts::default()).await
    }

    pub async fn start_with(line: FakeLine, opts: Opts) -> Harness {
        let (dir, db) = match opts.db {
            Some(db) => (None, db),
            None => {
                let dir = tempfile::tempdir().unwrap();
                let db = dir.path().join("ll.db");
                (Some(dir), db)
            }
        };
        let listener = match opts.listener {
            Some(l) => l,
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut extra = opts.extra_env.clone();
        extra.push(("LINELOGIN_DEAUTH__WORKER".into(), opts.worker.to_string()));
        let line_url = opts.line_url.clone().unwrap_or_else(|| line.url.clone());
        let mut config = config(&base, &line_url, &db, &extra);
        if let Some(gw) = &opts.gateway {
            let gw: linelogin_server::config::GatewayConfig = toml::from_str(gw).unwrap();
            gw.validate().unwrap();
            config.gateway = Some(gw);
        }
        let clock: SharedClock = match opts.clock {
            Some(c) => Arc::new(c),
            None => Arc::new(SystemClock::new()),
        };
        let mut builder = AppState::builder(&config).clock(clock);
        if opts.guideline_logs {
            let mut logs = config.logs.clone();
            logs.dir = db.with_extension("logs");
            builder = builder.audit(Arc::new(
                linelogin_server::audit::GuidelineLogs::open(&logs).unwrap(),
            ));
        }
        let state = builder.build().await.unwrap();
        let server = start_on(state.clone(), listener).unwrap();
        Harness {
            line,
            server: Some(server),
            state,
            base,
            db,
            _dir: dir,
        }
    }

    pub async fn stop(mut self) -> (FakeLine, PathBuf, Option<tempfile::TempDir>) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        (self.line, self.db, self._dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// GET /login[?query] → LINE → /callback; returns the callback response.
    pub async fn login_with(&self, c: &reqwest::Client, query: &str) -> reqwest::Response {
        let r = c
            .get(self.url(&format!("{}/login{query}", self.prefix())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "login redirects to LINE");
        let authorize = location(&r);
        let r = c.get(&authorize).send().await.unwrap();
        assert!(r.status().is_redirection(), "LINE redirects back");
        let callback = location(&r);
        c.get(&callback).send().await.unwrap()
    }

    pub async fn login(&self, c: &reqwest::Client) -> reqwest::Response {
        let r = self.login_with(c, "").await;
        assert_eq!(r.status(), 303, "callback answers 303");
        assert_eq!(location(&r), format!("{}/me", self.prefix()));
        r
    }

    /// Where linelogin's routes are: `[gateway] prefix`, or `""`.
    pub fn prefix(&self) -> String {
        self.state.settings().base_path.clone()
    }

    /// The csrf_token hidden input of a page.
    pub async fn csrf(&self, c: &reqwest::Client, path: &str) -> String {
        let html = c
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        extract_csrf(&html).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    pub async fn post_form(
        &self,
        c: &reqwest::Client,
        path: &str,
        csrf: Option<&str>,
    ) -> reqwest::Response {
        let body = match csrf {
            Some(t) => format!("csrf_token={t}"),
            None => String::new(),
        };
        // What a browser sends with a same-origin form post.
        c.post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Submits the form of a page the way a browser does: reads the page's csrf_token, then
    /// posts it back to the same path.
    pub async fn submit(&self, c: &reqwest::Client, path: &str) -> reqwest::Response {
        let csrf = self.csrf(c, path).await;
        self.post_form(c, path, Some(&csrf)).await
    }

    pub async fn api_me(&self, c: &reqwest::Client) -> (u16, serde_json::Value) {
        let r = c.get(self.url("/api/me")).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// GET /api/me from a client with no cookies but `ll_session=session`.
    pub async fn api_me_as(&self, session: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.url("/api/me"))
            .header("cookie", format!("ll_session={session}"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// Waits until the outbox has no pending job.
    pub async fn wait_outbox_empty(&self) -> serde_json::Value {
        for _ in 0..300 {
            let h: serde_json::Value =
                reqwest::get(self.url(&format!("{}/healthz", self.prefix())))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            if h["deauthorization"]["pending"] == 0 {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("deauthorization jobs still pending");
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of a query parameter of a URL (panics when it is absent).
pub fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value a response's `Set-Cookie` gives the cookie `name`, if it sets it.
pub fn cookie_value(r: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(r).iter().find_map(|c| {
        let c = cookie::Cookie::parse(c.as_str()).ok()?;
        (c.name() == name).then(|| c.value().to_owned())
    })
}

pub fn extract_csrf(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let rest = &html[i..];
    Some(rest[..rest.find('"')?].to_string())
}
