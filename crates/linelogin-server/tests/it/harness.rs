//! Starts LINE (fake or emulator) and the server on 127.0.0.1:0, and drives flows with reqwest
//! (redirects off, cookie jar on) the way a browser does. The configuration the server gets
//! is in [`config`]; servers reached only by URL (child processes) in [`remote`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use line_login::clock::{SharedClock, SystemClock};
use linelogin_server::AppState;
use linelogin_server::serve::{RunningServer, start_on};
use linelogin_server::store::Account;
use reqwest::header::{LOCATION, SET_COOKIE};

use crate::fake_line::FakeLine;

mod config;
mod remote;
pub use config::*;
pub use remote::*;

/// A listener on 127.0.0.1:0 and its `http://` base URL.
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// One trip through LINE: its authorization URL, the callback URL it sent the browser to,
/// and the callback's response.
pub struct LoginTrip {
    pub authorize: String,
    pub callback: String,
    pub response: reqwest::Response,
}

pub struct Harness {
    pub line: FakeLine,
    pub server: Option<RunningServer>,
    pub state: AppState,
    pub base: String,
    pub db: PathBuf,
    _dir: Option<tempfile::TempDir>,
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
        let (listener, base) = match opts.listener {
            Some(l) => {
                let base = format!("http://{}", l.local_addr().unwrap());
                (l, base)
            }
            None => bind().await,
        };
        let line_url = opts.line_url.clone().unwrap_or_else(|| line.url.clone());
        let config = config_with(&base, &line_url, &db, |c| {
            c.deauth.worker = opts.worker;
            for tweak in opts.tweaks {
                tweak(c);
            }
        });
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
        browser(None)
    }

    /// Follows a login URL (a path on this server, or absolute) to LINE and back to the
    /// callback.
    pub async fn login_at(&self, c: &reqwest::Client, login: &str) -> LoginTrip {
        if login.starts_with("http") {
            follow_login(c, login).await
        } else {
            follow_login(c, &self.url(login)).await
        }
    }

    /// GET /login[?query] → LINE → /callback; returns the callback response.
    pub async fn login_with(&self, c: &reqwest::Client, query: &str) -> reqwest::Response {
        let login = format!("{}/login{query}", self.prefix());
        self.login_at(c, &login).await.response
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

    /// `GET path` with the browser `c`.
    pub async fn get(&self, c: &reqwest::Client, path: &str) -> reqwest::Response {
        c.get(self.url(path)).send().await.unwrap()
    }

    /// The body of `GET path`.
    pub async fn page(&self, c: &reqwest::Client, path: &str) -> String {
        text_of(c.get(self.url(path))).await
    }

    /// The body of `GET path` asked for with `Accept-Language: lang`.
    pub async fn page_in(&self, c: &reqwest::Client, path: &str, lang: &str) -> String {
        text_of(c.get(self.url(path)).header("accept-language", lang)).await
    }

    /// `GET healthz` under the prefix, as JSON.
    pub async fn healthz(&self) -> serde_json::Value {
        get_json(self.url(&format!("{}/healthz", self.prefix()))).await
    }

    /// The account of LINE user `user`, if there is one.
    pub async fn account(&self, user: &str) -> Option<Account> {
        self.state
            .store()
            .account_by_sub("https://access.line.me", user)
            .await
            .unwrap()
    }

    /// The account with this id, if it is still there.
    pub async fn account_by_id(&self, id: &str) -> Option<Account> {
        self.state.store().account(id).await.unwrap()
    }

    /// The csrf_token hidden input of a page.
    pub async fn csrf(&self, c: &reqwest::Client, path: &str) -> String {
        let html = self.page(c, path).await;
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
        let headers = [
            ("origin", self.base.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        self.post_with(c, path, &headers, body).await
    }

    /// Posts a form `body` to `path` with these headers (besides the form's content type).
    pub async fn post_with(
        &self,
        c: &reqwest::Client,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> reqwest::Response {
        let mut req = c
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(body).send().await.unwrap()
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

    /// Waits until the outbox has no pending job, then checks what the fake LINE saw: these
    /// deauthorize calls' statuses, and the app no longer authorized for `user`.
    pub async fn assert_deauthorized(&self, user: &str, calls: &[u16]) {
        self.wait_outbox_empty().await;
        assert_eq!(self.line.calls("/user/v1/deauthorize"), calls);
        assert!(!self.line.is_authorized(user), "{user} still authorized");
    }

    /// Waits until the outbox has no pending job.
    pub async fn wait_outbox_empty(&self) -> serde_json::Value {
        for _ in 0..300 {
            let h = self.healthz().await;
            if h["deauthorization"]["pending"] == 0 {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("deauthorization jobs still pending");
    }
}

/// `GET url`, its JSON body.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: impl reqwest::IntoUrl) -> T {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The body of a request's response, as text.
pub async fn text_of(req: reqwest::RequestBuilder) -> String {
    req.send().await.unwrap().text().await.unwrap()
}

/// A browser: a cookie jar, redirects not followed, each request bounded by `timeout`.
pub fn browser(timeout: Option<Duration>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().unwrap()
}

/// Follows the absolute login URL `login` to LINE and back to the callback.
pub async fn follow_login(c: &reqwest::Client, login: &str) -> LoginTrip {
    let r = c.get(login).send().await.unwrap();
    assert_eq!(r.status(), 302, "login redirects to LINE");
    let authorize = location(&r);
    let r = c.get(&authorize).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "LINE redirects back: {}",
        r.status()
    );
    let callback = location(&r);
    let response = c.get(&callback).send().await.unwrap();
    LoginTrip {
        authorize,
        callback,
        response,
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
