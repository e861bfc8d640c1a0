//! One login flow, the way a browser makes it: its own cookie jar, redirects followed by hand
//! (each hop checked to be on loopback and timed as a step).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::form::read_form;
use super::guard::{is_loopback, origin_of};
use super::report::Tally;

/// What to do after `/api/me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Finish {
    /// Nothing: the session stays.
    None,
    /// `POST /logout` with the page's CSRF token.
    Logout,
    /// `POST /account/unregister` with the page's CSRF token (deauthorizes at the emulator).
    Unregister,
}

/// A browser-like cookie jar: cookies by host (ports share cookies, as in browsers).
#[derive(Debug, Default)]
struct Jar(HashMap<String, Vec<(String, String)>>);

impl Jar {
    fn header_for(&self, url: &Url) -> Option<String> {
        let cookies = self.0.get(url.host_str()?)?;
        if cookies.is_empty() {
            return None;
        }
        Some(
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn store(&mut self, url: &Url, headers: &reqwest::header::HeaderMap) {
        let Some(host) = url.host_str() else { return };
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, val)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let (name, val) = (name.trim().to_owned(), val.trim().to_owned());
            let expired = parts.any(|attr| {
                let a = attr.trim().to_ascii_lowercase();
                a == "max-age=0"
                    || a.starts_with("max-age=-")
                    || a.starts_with("expires=thu, 01 jan 1970")
            });
            let jar = self.0.entry(host.to_owned()).or_default();
            jar.retain(|(k, _)| *k != name);
            if !expired && !val.is_empty() {
                jar.push((name, val));
            }
        }
    }
}

/// A flow failure: a short stable kind for the report.
#[derive(Debug)]
pub struct Failure(pub String);

struct Browser<'a> {
    client: &'a reqwest::Client,
    jar: Jar,
    requests: u64,
}

struct Page {
    status: StatusCode,
    url: Url,
    location: Option<Url>,
    body: String,
}

impl Browser<'_> {
    async fn send(
        &mut self,
        step: &str,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Page, Failure> {
        if !is_loopback(&url) {
            return Err(Failure(format!("{step}_not_loopback")));
        }
        let mut req = self.client.request(method, url.clone());
        if let Some(c) = self.jar.header_for(&url) {
            req = req.header(COOKIE, c);
        }
        if let Some(fields) = form {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            let origin = origin_of(&url).as_str().trim_end_matches('/').to_owned();
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(ORIGIN, origin)
                .body(body);
        }
        self.requests += 1;
        let resp = req.send().await.map_err(|e| {
            Failure(if e.is_timeout() {
                format!("{step}_timeout")
            } else if e.is_connect() {
                format!("{step}_connect")
            } else {
                format!("{step}_transport")
            })
        })?;
        let status = resp.status();
        self.jar.store(&url, resp.headers());
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let body = resp
            .text()
            .await
            .map_err(|_| Failure(format!("{step}_body")))?;
        Ok(Page {
            status,
            url,
            location,
            body,
        })
    }
}

fn redirect(step: &str, page: &Page) -> Result<Url, Failure> {
    if page.status.is_redirection() {
        page.location
            .clone()
            .ok_or_else(|| Failure(format!("{step}_no_location")))
    } else {
        Err(Failure(format!("{step}_status_{}", page.status.as_u16())))
    }
}

/// Runs one flow, recording step latencies into `tally`. Returns the flow's total latency.
pub async fn run_flow(
    client: &reqwest::Client,
    target: &Url,
    start_path: &str,
    finish: Finish,
    tally: &mut Tally,
) -> Result<Duration, Failure> {
    let mut b = Browser {
        client,
        jar: Jar::default(),
        requests: 0,
    };
    let result = steps(&mut b, target, start_path, finish, tally).await;
    tally.requests += b.requests;
    result
}

async fn steps(
    b: &mut Browser<'_>,
    target: &Url,
    start_path: &str,
    finish: Finish,
    tally: &mut Tally,
) -> Result<Duration, Failure> {
    let t_flow = Instant::now();

    let t = Instant::now();
    let start = target
        .join(start_path)
        .map_err(|_| Failure("login_bad_url".into()))?;
    let page = b.send("login", Method::GET, start, None).await?;
    let authorize = redirect("login", &page)?;
    tally.step("login", t.elapsed());

    let t = Instant::now();
    let page = b.send("authorize", Method::GET, authorize, None).await?;
    let callback = if page.status == StatusCode::OK {
        // A consent page: choose the first test user and allow.
        let form = read_form(&page.body, Some("user"), Some("allow"))
            .ok_or_else(|| Failure("authorize_no_consent_form".into()))?;
        let action = page
            .url
            .join(&form.action)
            .map_err(|_| Failure("authorize_bad_action".into()))?;
        let page = b
            .send("consent", Method::POST, action, Some(&form.fields))
            .await?;
        redirect("consent", &page)?
    } else {
        redirect("authorize", &page)?
    };
    if callback.query_pairs().any(|(k, _)| k == "error") {
        return Err(Failure("authorize_error_callback".into()));
    }
    tally.step("authorize", t.elapsed());

    let t = Instant::now();
    let page = b.send("callback", Method::GET, callback, None).await?;
    let landing = redirect("callback", &page)?;
    if landing.path().contains("callback") {
        return Err(Failure("callback_loop".into()));
    }
    tally.step("callback", t.elapsed());

    let t = Instant::now();
    let me = target
        .join("/api/me")
        .map_err(|_| Failure("api_me_bad_url".into()))?;
    let page = b.send("api_me", Method::GET, me, None).await?;
    if page.status != StatusCode::OK {
        return Err(Failure(format!("api_me_status_{}", page.status.as_u16())));
    }
    let json: serde_json::Value =
        serde_json::from_str(&page.body).map_err(|_| Failure("api_me_not_json".into()))?;
    if json.get("userId").and_then(|v| v.as_str()).is_none() {
        return Err(Failure("api_me_no_user_id".into()));
    }
    tally.step("api_me", t.elapsed());

    if finish != Finish::None {
        let t = Instant::now();
        let page_path = match finish {
            Finish::Logout => "/me",
            _ => "/account/unregister",
        };
        let url = target
            .join(page_path)
            .map_err(|_| Failure("finish_bad_url".into()))?;
        let page = b.send("finish", Method::GET, url, None).await?;
        if page.status != StatusCode::OK {
            return Err(Failure(format!(
                "finish_page_status_{}",
                page.status.as_u16()
            )));
        }
        let form = read_form(&page.body, Some("csrf_token"), None)
            .ok_or_else(|| Failure("finish_no_form".into()))?;
        let wanted = if finish == Finish::Logout {
            "/logout"
        } else {
            "/account/unregister"
        };
        let action = page
            .url
            .join(&form.action)
            .map_err(|_| Failure("finish_bad_action".into()))?;
        let action = if action.path() == wanted {
            action
        } else {
            target
                .join(wanted)
                .map_err(|_| Failure("finish_bad_action".into()))?
        };
        let page = b
            .send("finish", Method::POST, action, Some(&form.fields))
            .await?;
        if !(page.status.is_success() || page.status.is_redirection()) {
            return Err(Failure(format!("finish_status_{}", page.status.as_u16())));
        }
        tally.step("finish", t.elapsed());
    }
    Ok(t_flow.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jar_keeps_cookies_by_host_and_deletes_expired() {
        let mut jar = Jar::default();
        let u = Url::parse("http://127.0.0.1:8080/x").unwrap();
        let mut h = reqwest::header::HeaderMap::new();
        h.append(SET_COOKIE, "a=1; Path=/; HttpOnly".parse().unwrap());
        h.append(SET_COOKIE, "b=2; SameSite=Lax".parse().unwrap());
        jar.store(&u, &h);
        let other_port = Url::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(jar.header_for(&other_port).as_deref(), Some("a=1; b=2"));
        let mut h = reqwest::header::HeaderMap::new();
        h.append(SET_COOKIE, "a=; Max-Age=0".parse().unwrap());
        jar.store(&u, &h);
        assert_eq!(jar.header_for(&u).as_deref(), Some("b=2"));
        assert_eq!(
            jar.header_for(&Url::parse("http://localhost/").unwrap()),
            None
        );
    }
}
