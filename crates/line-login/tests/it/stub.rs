//! A programmable local HTTP stub (axum on 127.0.0.1:0) standing in for LINE.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use line_login::LineClient;
use line_login::observer::ApiCall;
use line_login::policy::{OutboundPolicy, PolicyConfig};
use line_login::secret::ChannelSecret;
use line_login::types::ChannelId;

pub const CHANNEL_ID: &str = "1234567890";
pub const CHANNEL_SECRET: &str = "CANARY0123456789abcdef0123456789a";

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn form_value(&self, key: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-line-request-id", "8d48c8577e739b9c".into()),
            ],
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            headers: vec![("content-type", content_type.to_owned())],
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct State {
    replies: VecDeque<Reply>,
    fallback: Option<Reply>,
    seen: Vec<Seen>,
}

/// The stub server.
#[derive(Clone)]
pub struct Stub {
    state: Arc<Mutex<State>>,
    pub base: url::Url,
}

impl Stub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let s2 = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = s2.clone();
                async move {
                    let reply = {
                        let mut st = state.lock().unwrap();
                        st.seen.push(Seen {
                            method,
                            path: uri.path().to_owned(),
                            query: uri.query().map(str::to_owned),
                            headers,
                            body,
                        });
                        st.replies.pop_front().or_else(|| st.fallback.clone())
                    };
                    let reply = reply
                        .unwrap_or_else(|| Reply::json(500, r#"{"message":"stub has no reply"}"#));
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let mut resp =
                        Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
                    for (k, v) in &reply.headers {
                        resp = resp.header(*k, v);
                    }
                    resp.body(Body::from(reply.body)).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            state,
            base: format!("http://{addr}").parse().unwrap(),
        }
    }

    /// Queues replies, answered in order.
    pub fn reply(&self, reply: Reply) -> &Self {
        self.state.lock().unwrap().replies.push_back(reply);
        self
    }

    /// The reply once the queue is empty.
    pub fn always(&self, reply: Reply) -> &Self {
        self.state.lock().unwrap().fallback = Some(reply);
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// A client on this stub, with a fast-retry policy and a recording observer.
    pub fn client(&self) -> (LineClient, Recorder) {
        self.client_with(PolicyConfig {
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
            rate_per_second: 1000,
            burst: 1000,
            ..PolicyConfig::default()
        })
    }

    pub fn client_with(&self, config: PolicyConfig) -> (LineClient, Recorder) {
        let recorder = Recorder::default();
        let client = LineClient::builder(
            ChannelId::new(CHANNEL_ID),
            ChannelSecret::new(CHANNEL_SECRET),
        )
        .base_url(self.base.clone())
        .policy(OutboundPolicy::new(config))
        .observer(Arc::new(recorder.clone()))
        .build()
        .unwrap();
        (client, recorder)
    }
}

/// An observer that keeps every record (and asks for bodies).
#[derive(Clone, Default)]
pub struct Recorder {
    pub calls: Arc<Mutex<Vec<ApiCall>>>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls.lock().unwrap().clone()
    }
}

impl line_login::observer::ApiObserver for Recorder {
    fn on_api_call(&self, call: &ApiCall) {
        self.calls.lock().unwrap().push(call.clone());
    }

    fn wants_bodies(&self) -> bool {
        true
    }
}
