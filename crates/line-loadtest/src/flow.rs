//! One login flow, the way a browser makes it: its own cookie jar, redirects followed by hand
//! (each hop checked to be on loopback and timed as a step).

use std::time::{Duration, Instant};

use bytes::Bytes;
use cookie::Cookie;
use cookie_store::CookieStore;
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use url::Url;

use super::form::read_form;
use super::guard::Reach;
use super::http::{Agent, HttpError};
use super::report::FlowTimes;

/// What to do after `/api/me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Finish {
    /// Nothing: the session stays.
    None,
    /// `POST /logout` with the page's CSRF token.
    Logout,
    /// `POST /account/unregister` with the page's CSRF token (deauthorizes at the emulator).
    Unregister,
}

/// A browser's cookie jar: [`cookie_store`] (the store reqwest uses) keeps the RFC 6265 rules
/// (host-only and domain cookies, paths, `Max-Age`/`Expires`, `Secure` only on secure
/// origins, which include loopback), and ports share cookies as in browsers.
#[derive(Debug, Default)]
struct Jar(CookieStore);

impl Jar {
    /// The `Cookie` header for a request to `url`, if any cookie applies.
    fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        let mut header = String::new();
        for (name, value) in self.0.get_request_values(url) {
            if !header.is_empty() {
                header.push_str("; ");
            }
            header.push_str(name);
            header.push('=');
            header.push_str(value);
        }
        if header.is_empty() {
            return None;
        }
        HeaderValue::try_from(header).ok()
    }

    /// Keeps the cookies a response to `url` sets (unparsable ones are ignored, as browsers do).
    fn store(&mut self, url: &Url, headers: &HeaderMap) {
        let cookies = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| Cookie::parse(v.to_owned()).ok());
        self.0.store_response_cookies(cookies, url);
    }
}

/// A flow failure: a short stable kind for the report.
#[derive(Debug)]
pub struct Failure(pub String);

struct Browser<'a> {
    agent: &'a mut Agent,
    reach: &'a Reach,
    jar: Jar,
    requests: u64,
}

struct Page {
    status: StatusCode,
    url: Url,
    location: Option<Url>,
    body: Bytes,
}

impl Page {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl Browser<'_> {
    async fn send(
        &mut self,
        step: &str,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Page, Failure> {
        if !self.reach.allows(&url) {
            return Err(Failure(format!("{step}_out_of_reach")));
        }
        let cookie = self.jar.header_for(&url);
        let body = form.map(|fields| {
            Bytes::from(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
            )
        });
        self.requests += 1;
        let resp = self
            .agent
            .send(&method, &url, cookie, body)
            .await
            .map_err(|e| {
                Failure(match e {
                    HttpError::Timeout => format!("{step}_timeout"),
                    HttpError::Connect => format!("{step}_connect"),
                    HttpError::Transport => format!("{step}_transport"),
                    HttpError::Body => format!("{step}_body"),
                })
            })?;
        self.jar.store(&url, &resp.headers);
        let location = resp
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        Ok(Page {
            status: resp.status,
            url,
            location,
            body: resp.body,
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

/// The URLs every flow of a run uses, joined once (a join that failed fails each flow with
/// its kind, as if joined per flow).
#[derive(Debug, Clone)]
pub struct Plan {
    reach: Reach,
    start: Result<Url, ()>,
    api_me: Result<Url, ()>,
    finish: Finish,
    finish_page: Result<Url, ()>,
    finish_action: Result<Url, ()>,
}

impl Plan {
    /// The plan for flows starting at `start_path` on `target`, ending with `finish`, whose
    /// requests stay within `reach`.
    pub fn new(target: &Url, start_path: &str, finish: Finish, reach: Reach) -> Self {
        let join = |path: &str| target.join(path).map_err(|_| ());
        let (page, action) = match finish {
            Finish::Logout => ("/me", "/logout"),
            _ => ("/account/unregister", "/account/unregister"),
        };
        Self {
            reach,
            start: join(start_path),
            api_me: join("/api/me"),
            finish,
            finish_page: join(page),
            finish_action: join(action),
        }
    }
}

fn planned(url: &Result<Url, ()>, kind: &str) -> Result<Url, Failure> {
    url.clone().map_err(|()| Failure(kind.to_owned()))
}

/// Runs one flow as a new browser session (empty cookie jar) on the virtual user's
/// connections, noting step latencies and the requests sent in `times`. Returns the flow's
/// total latency.
pub async fn run_flow(
    agent: &mut Agent,
    plan: &Plan,
    times: &mut FlowTimes,
) -> Result<Duration, Failure> {
    let mut b = Browser {
        agent,
        reach: &plan.reach,
        jar: Jar::default(),
        requests: 0,
    };
    let result = steps(&mut b, plan, times).await;
    times.requests += b.requests;
    result
}

async fn steps(
    b: &mut Browser<'_>,
    plan: &Plan,
    times: &mut FlowTimes,
) -> Result<Duration, Failure> {
    let t_flow = Instant::now();

    let t = Instant::now();
    let start = planned(&plan.start, "login_bad_url")?;
    let page = b.send("login", Method::GET, start, None).await?;
    let authorize = redirect("login", &page)?;
    times.step("login", t.elapsed());

    let t = Instant::now();
    let page = b.send("authorize", Method::GET, authorize, None).await?;
    let callback = if page.status == StatusCode::OK {
        // A consent page: choose the first test user and allow.
        let form = read_form(&page.text(), Some("user"), Some("allow"))
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
    times.step("authorize", t.elapsed());

    let t = Instant::now();
    let page = b.send("callback", Method::GET, callback, None).await?;
    let landing = redirect("callback", &page)?;
    if landing.path().contains("callback") {
        return Err(Failure("callback_loop".into()));
    }
    times.step("callback", t.elapsed());

    let t = Instant::now();
    let me = planned(&plan.api_me, "api_me_bad_url")?;
    let page = b.send("api_me", Method::GET, me, None).await?;
    if page.status != StatusCode::OK {
        return Err(Failure(format!("api_me_status_{}", page.status.as_u16())));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&page.body).map_err(|_| Failure("api_me_not_json".into()))?;
    if json.get("userId").and_then(|v| v.as_str()).is_none() {
        return Err(Failure("api_me_no_user_id".into()));
    }
    times.step("api_me", t.elapsed());

    if plan.finish != Finish::None {
        let t = Instant::now();
        let url = planned(&plan.finish_page, "finish_bad_url")?;
        let page = b.send("finish", Method::GET, url, None).await?;
        if page.status != StatusCode::OK {
            return Err(Failure(format!(
                "finish_page_status_{}",
                page.status.as_u16()
            )));
        }
        let form = read_form(&page.text(), Some("csrf_token"), None)
            .ok_or_else(|| Failure("finish_no_form".into()))?;
        let action = page
            .url
            .join(&form.action)
            .map_err(|_| Failure("finish_bad_action".into()))?;
        let wanted = plan.finish_action.as_ref().map(Url::path).ok();
        let action = if Some(action.path()) == wanted {
            action
        } else {
            planned(&plan.finish_action, "finish_bad_action")?
        };
        let page = b
            .send("finish", Method::POST, action, Some(&form.fields))
            .await?;
        if !(page.status.is_success() || page.status.is_redirection()) {
            return Err(Failure(format!("finish_status_{}", page.status.as_u16())));
        }
        times.step("finish", t.elapsed());
    }
    Ok(t_flow.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(jar: &Jar, url: &Url) -> Option<String> {
        jar.header_for(url).map(|v| v.to_str().unwrap().to_owned())
    }

    /// Stores a response to `url` that carries these `Set-Cookie` lines.
    fn store(jar: &mut Jar, url: &Url, set_cookies: &[&str]) {
        let mut h = HeaderMap::new();
        for c in set_cookies {
            h.append(SET_COOKIE, c.parse().unwrap());
        }
        jar.store(url, &h);
    }

    #[test]
    fn jar_keeps_cookies_by_host_and_deletes_expired() {
        let mut jar = Jar::default();
        let u = Url::parse("http://127.0.0.1:8080/x").unwrap();
        store(
            &mut jar,
            &u,
            &["a=1; Path=/; HttpOnly", "b=2; SameSite=Lax"],
        );
        let other_port = Url::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(header(&jar, &other_port).as_deref(), Some("a=1; b=2"));
        store(&mut jar, &u, &["a=; Max-Age=0"]);
        assert_eq!(header(&jar, &u).as_deref(), Some("b=2"));
        assert_eq!(
            header(&jar, &Url::parse("http://localhost/").unwrap()),
            None
        );
    }

    #[test]
    fn jar_scopes_cookies_by_path_and_keeps_secure_ones_on_loopback() {
        let mut jar = Jar::default();
        let u = Url::parse("http://127.0.0.1:8080/app/x").unwrap();
        let set = [
            "p=1; Path=/app",
            "__Host-s=2; Path=/; Secure",
            "not a cookie",
        ];
        store(&mut jar, &u, &set);
        let root = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(header(&jar, &root).as_deref(), Some("__Host-s=2"));
        let mut cookies: Vec<String> = header(&jar, &u)
            .unwrap()
            .split("; ")
            .map(str::to_owned)
            .collect();
        cookies.sort();
        assert_eq!(cookies, ["__Host-s=2", "p=1"]);
        // A Secure cookie never goes to a plain-http host that is not loopback.
        let mut jar = Jar::default();
        let remote = Url::parse("http://192.0.2.1/").unwrap();
        store(&mut jar, &remote, &["s=1; Secure"]);
        assert_eq!(header(&jar, &remote), None);
    }
}
