//! One login flow, the way a browser makes it: its own cookie jar, redirects followed by hand
//! (each hop checked to be on loopback and timed as a step).

use std::time::{Duration, Instant};

use bytes::Bytes;
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

/// A browser-like cookie jar: cookies by host (ports share cookies, as in browsers).
#[derive(Debug, Default)]
struct Jar(Vec<(String, Vec<(String, String)>)>);

impl Jar {
    fn cookies(&self, host: &str) -> Option<&Vec<(String, String)>> {
        self.0.iter().find(|(h, _)| h == host).map(|(_, c)| c)
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        let cookies = self.cookies(url.host_str()?)?;
        if cookies.is_empty() {
            return None;
        }
        let len = cookies.iter().map(|(k, v)| k.len() + v.len() + 3).sum();
        let mut header = String::with_capacity(len);
        for (k, v) in cookies {
            if !header.is_empty() {
                header.push_str("; ");
            }
            header.push_str(k);
            header.push('=');
            header.push_str(v);
        }
        HeaderValue::try_from(header).ok()
    }

    fn store(&mut self, url: &Url, headers: &HeaderMap) {
        let Some(host) = url.host_str() else { return };
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, val)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let (name, val) = (name.trim(), val.trim());
            let expired = parts.any(|attr| {
                let a = attr.trim();
                a.eq_ignore_ascii_case("max-age=0")
                    || starts_with_ignore_case(a, "max-age=-")
                    || starts_with_ignore_case(a, "expires=thu, 01 jan 1970")
            });
            let i = match self.0.iter().position(|(h, _)| h == host) {
                Some(i) => i,
                None => {
                    self.0.push((host.to_owned(), Vec::new()));
                    self.0.len() - 1
                }
            };
            let jar = &mut self.0[i].1;
            jar.retain(|(k, _)| k != name);
            if !expired && !val.is_empty() {
                jar.push((name.to_owned(), val.to_owned()));
            }
        }
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
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

    #[test]
    fn jar_keeps_cookies_by_host_and_deletes_expired() {
        let mut jar = Jar::default();
        let u = Url::parse("http://127.0.0.1:8080/x").unwrap();
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, "a=1; Path=/; HttpOnly".parse().unwrap());
        h.append(SET_COOKIE, "b=2; SameSite=Lax".parse().unwrap());
        jar.store(&u, &h);
        let other_port = Url::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(header(&jar, &other_port).as_deref(), Some("a=1; b=2"));
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, "a=; Max-Age=0".parse().unwrap());
        jar.store(&u, &h);
        assert_eq!(header(&jar, &u).as_deref(), Some("b=2"));
        assert_eq!(
            header(&jar, &Url::parse("http://localhost/").unwrap()),
            None
        );
    }
}
