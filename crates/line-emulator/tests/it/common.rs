//! Test harness: an emulator on 127.0.0.1:0 and a browser-like reqwest client.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use line_emulator::{AssertionKeyConfig, Config, Emulator, RsaJwk, RunningEmulator};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

pub const CHANNEL: &str = "1234567890";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const CALLBACK: &str = "http://127.0.0.1:8080/callback";
pub const KID: &str = "test-assertion-key";
/// The `client_assertion_type` of v2.1 assertions.
pub const BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const RSA_PEM: &str = include_str!("../fixtures/assertion_rsa.pem");
pub const RSA_JWK: &str = include_str!("../fixtures/assertion_rsa.jwk.json");

pub struct Env {
    pub emulator: Emulator,
    pub running: RunningEmulator,
    pub base: String,
    pub browser: reqwest::Client,
    pub api: reqwest::Client,
}

pub fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(cookies)
        .build()
        .unwrap()
}

/// The demo configuration plus an assertion key on the default channel and a second channel
/// under another provider.
pub fn test_config() -> Config {
    let mut c = Config::default_demo();
    let jwk: RsaJwk = serde_json::from_str(RSA_JWK).unwrap();
    c.channels[0].assertion_keys.push(AssertionKeyConfig {
        kid: KID.into(),
        jwk,
    });
    let mut other = line_emulator::ChannelConfig::new(
        "2000000001",
        "fedcba9876543210fedcba9876543210",
        vec!["http://127.0.0.1:8081/cb".parse().unwrap()],
    );
    other.provider = "other-provider".into();
    c.channels.push(other);
    c
}

pub async fn start() -> Env {
    start_with(test_config()).await
}

pub async fn start_with(config: Config) -> Env {
    let emulator = Emulator::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = emulator.serve(listener).await.unwrap();
    let base = running.base_url().to_owned();
    Env {
        emulator,
        running,
        base,
        browser: client(true),
        api: client(false),
    }
}

pub fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Reads `name="NAME" value="..."` from a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-chars".to_owned();
    let challenge = line_login::pkce::s256_challenge(&verifier);
    Pkce {
        verifier,
        challenge,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn user_ids(&self) -> Vec<String> {
        self.emulator
            .users()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let mut u = url::Url::parse(&self.url("/oauth2/v2.1/authorize")).unwrap();
        {
            let mut q = u.query_pairs_mut();
            let have = |k: &str| extra.iter().any(|(n, _)| *n == k);
            for (k, v) in [
                ("response_type", "code"),
                ("client_id", CHANNEL),
                ("redirect_uri", CALLBACK),
                ("state", "st4te"),
                ("scope", "profile openid"),
            ] {
                if !have(k) {
                    q.append_pair(k, v);
                }
            }
            for (k, v) in extra {
                if !v.is_empty() {
                    q.append_pair(k, v);
                }
            }
        }
        u.to_string()
    }

    /// GET authorize with the browser.
    pub async fn get_authorize(
        &self,
        browser: &reqwest::Client,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        browser.get(self.authorize_url(extra)).send().await.unwrap()
    }

    /// Answers a consent page.
    pub async fn answer(
        &self,
        browser: &reqwest::Client,
        page: &str,
        user: Option<&str>,
        decision: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(String, String)> = vec![
            ("request".into(), input_value(page, "request").unwrap()),
            ("csrf".into(), input_value(page, "csrf").unwrap()),
            ("decision".into(), decision.into()),
        ];
        if let Some(u) = user {
            form.push(("user".into(), u.into()));
        }
        for (k, v) in extra {
            form.push(((*k).into(), (*v).into()));
        }
        browser
            .post(self.url("/oauth2/v2.1/authorize/consent"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// A full browser login through the consent page (or SSO when the browser already has a
    /// session and consent); returns the callback query.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        user: &str,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let resp = self.get_authorize(browser, extra).await;
        if resp.status() == 302 {
            return query_of(&location(&resp).unwrap());
        }
        assert_eq!(resp.status(), 200, "expected the consent page");
        let page = resp.text().await.unwrap();
        let resp = self.answer(browser, &page, Some(user), "allow", &[]).await;
        assert_eq!(resp.status(), 302);
        query_of(&location(&resp).unwrap())
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.post_form("/oauth2/v2.1/token", form).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.post_form_as(path, None, form).await
    }

    /// POSTs a form, with an `Authorization` header when given; the status and the JSON body
    /// (or the text, when it is not JSON).
    pub async fn post_form_as(
        &self,
        path: &str,
        authorization: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.api.post(self.url(path)).form(form);
        if let Some(auth) = authorization {
            request = request.header("authorization", auth);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn exchange(&self, code: &str, verifier: Option<&str>) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(&form).await
    }

    /// Login with consent + code exchange; returns the token response.
    pub async fn login_tokens(&self, user: &str, scope: &str) -> Value {
        let browser = client(true);
        let q = self.login(&browser, user, &[("scope", scope)]).await;
        let (status, body) = self.exchange(&q["code"], None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = self
            .api
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.api
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.api
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.api.get(self.url(path)).send().await.unwrap()
    }

    /// `GET /oauth2/v2.1/verify?access_token=…`.
    pub async fn verify_access(&self, token: &str) -> reqwest::Response {
        self.api
            .get(self.url("/oauth2/v2.1/verify"))
            .query(&[("access_token", token)])
            .send()
            .await
            .unwrap()
    }

    /// `PUT /_emulator/faults`.
    pub async fn put_faults(&self, rules: &Value) -> reqwest::Response {
        self.api
            .put(self.url("/_emulator/faults"))
            .json(rules)
            .send()
            .await
            .unwrap()
    }

    /// `POST /user/v1/deauthorize` with a channel access token and a JSON body.
    pub async fn deauthorize(&self, channel_token: &str, body: &Value) -> reqwest::Response {
        self.api
            .post(self.url("/user/v1/deauthorize"))
            .bearer_auth(channel_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The refresh grant for the test channel (`client_secret` in the body).
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ])
        .await
    }

    /// `POST /oauth2/v2.1/revoke` of an access token, with the client's credentials in the body.
    pub async fn revoke_access(&self, token: &str, client_id: &str, secret: &str) -> (u16, Value) {
        self.post_form(
            "/oauth2/v2.1/revoke",
            &[
                ("access_token", token),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await
    }

    /// `grant_type=client_credentials` with the client's ID and secret in the body, at `path`
    /// (`/oauth2/v3/token`, `/v2/oauth/accessToken`).
    pub async fn client_credentials(
        &self,
        path: &str,
        client_id: &str,
        secret: &str,
    ) -> (u16, Value) {
        self.post_form(
            path,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await
    }

    /// `n` concurrent `POST /oauth2/v2.1/token` with the same form (spawned, so that they
    /// race on a multi-threaded runtime); their statuses in the order they were sent.
    pub async fn token_race(&self, form: &[(&str, &str)], n: usize) -> Vec<u16> {
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let request = self.api.post(self.url("/oauth2/v2.1/token")).form(&form);
                tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses
    }

    /// The consent page's HTML for an authorization request (see [`Env::get_authorize`]).
    pub async fn authorize_page(
        &self,
        browser: &reqwest::Client,
        extra: &[(&str, &str)],
    ) -> String {
        self.get_authorize(browser, extra)
            .await
            .text()
            .await
            .unwrap()
    }

    /// A raw TCP connection to the emulator.
    pub async fn connect(&self) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(self.running.local_addr())
            .await
            .unwrap()
    }

    pub async fn stateless_token(&self) -> String {
        let (s, b) = self
            .client_credentials("/oauth2/v3/token", CHANNEL, SECRET)
            .await;
        assert_eq!(s, 200, "{b}");
        b["access_token"].as_str().unwrap().to_owned()
    }
}

/// Decodes a JWT payload without checking it.
pub fn jwt_payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64_url_decode(part);
    serde_json::from_slice(&bytes).unwrap()
}

pub fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&base64_url_decode(part)).unwrap()
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = ALPHA.iter().position(|&a| a == c).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A v2.1 channel token assertion signed with the test RSA key: `iss`/`sub` `iss`, `exp` in
/// `exp_in` seconds, optionally a `token_exp`.
pub fn assertion(kid: &str, iss: &str, exp_in: i64, token_exp: Option<i64>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    header.typ = Some("JWT".into());
    let mut claims = json!({
        "iss": iss,
        "sub": iss,
        "aud": "https://api.line.me/",
        "exp": now() + exp_in,
    });
    if let Some(t) = token_exp {
        claims["token_exp"] = json!(t);
    }
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}
