//! Errors and the LINE-shaped responses they turn into.

use std::borrow::Cow;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use line_login::wire::{ErrorDetail, MessageErrorBody, OAuthErrorBody};

use crate::observe::ChannelTag;
use crate::pages::{self, RegisterHelp};

/// The body LINE's rate limiter answers with (Messaging API wording).
pub const RATE_LIMIT_MESSAGE: &str = "The API rate limit has been exceeded. Try again later.";

/// An error answered by an API endpoint, in one of LINE's documented shapes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// `{"error","error_description"}`, used by the OAuth endpoints.
    #[error("{status} {error}: {}", description.as_deref().unwrap_or(""))]
    OAuth {
        /// HTTP status (400 unless stated).
        status: StatusCode,
        /// The error code, e.g. `invalid_grant`.
        error: &'static str,
        /// The description, if any.
        description: Option<Cow<'static, str>>,
    },
    /// `{"message"}`, used by the resource and platform endpoints.
    #[error("{status} {message}")]
    Message {
        /// HTTP status.
        status: StatusCode,
        /// The message.
        message: Cow<'static, str>,
        /// Optional details.
        details: Option<Vec<ErrorDetail>>,
    },
    /// 429 with LINE's rate-limit message and `Retry-After`.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the next window.
        retry_after: u64,
    },
    /// 413: the body is larger than 2 MB.
    #[error("request body too large")]
    PayloadTooLarge,
    /// An HTML error page (authorize with a bad `client_id` or `redirect_uri`, consent errors).
    #[error("{status} {title}")]
    Page {
        /// HTTP status.
        status: StatusCode,
        /// Short title.
        title: Cow<'static, str>,
        /// Explanation.
        detail: Cow<'static, str>,
        /// How to register a refused `redirect_uri`.
        help: Option<Box<RegisterHelp>>,
    },
    /// An error of a request whose channel is known (see [`ApiError::in_channel`]): answered
    /// as `error`, with the channel on the response for the journal.
    #[error("{error}")]
    InChannel {
        /// The channel.
        channel: ChannelTag,
        /// The error answered.
        error: Box<ApiError>,
    },
}

impl ApiError {
    /// The error, tagged with the channel of its request (an error already tagged keeps its
    /// tag: the innermost place that learnt the channel knows it best).
    pub fn in_channel(self, channel: ChannelTag) -> Self {
        match self {
            tagged @ ApiError::InChannel { .. } => tagged,
            error => ApiError::InChannel {
                channel,
                error: Box::new(error),
            },
        }
    }

    /// 400 `{"error": error, "error_description": description}`.
    pub fn oauth(error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        ApiError::OAuth {
            status: StatusCode::BAD_REQUEST,
            error,
            description: Some(description.into()),
        }
    }

    /// 400 `{"error":"invalid_request","error_description": ...}`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth("invalid_request", description)
    }

    /// 400 `{"error":"invalid_grant","error_description": ...}`.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth("invalid_grant", description)
    }

    /// 400 `{"error":"invalid_client","error_description": ...}`.
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth("invalid_client", description)
    }

    /// `{"message": ...}` with a status.
    pub fn message(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Message {
            status,
            message: message.into(),
            details: None,
        }
    }

    /// 401 `{"message": ...}`.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::message(StatusCode::UNAUTHORIZED, message)
    }

    /// An HTML error page.
    pub fn page(
        status: StatusCode,
        title: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError::Page {
            status,
            title: title.into(),
            detail: detail.into(),
            help: None,
        }
    }

    /// The HTML 400 page of a `redirect_uri` that is not registered for the channel: it shows
    /// the URI received and how to register it.
    pub fn unregistered_redirect_uri(help: RegisterHelp) -> Self {
        ApiError::Page {
            status: StatusCode::BAD_REQUEST,
            title: "Bad Request".into(),
            detail:
                "Invalid redirect_uri value. Check if it is registered in a LINE developers site."
                    .into(),
            help: Some(Box::new(help)),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::OAuth { status, .. }
            | ApiError::Message { status, .. }
            | ApiError::Page { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InChannel { error, .. } => error.status(),
        }
    }
}

/// A JSON response with `Cache-Control: no-store`.
pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = (status, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// The error a response was made from, kept on the response so that [`negotiate`] can
/// answer it in the format the client asked for.
#[derive(Debug, Clone)]
struct ErrorSource(ApiError);

/// Whether the client asked for HTML (a browser) or for JSON only (an API client).
fn preference(headers: &HeaderMap) -> (bool, bool) {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let html = accept.contains("text/html");
    (html, !html && accept.contains("application/json"))
}

/// Errors in the format the client asked for, by one rule for every endpoint:
/// - the browser pages (authorize, consent) answer HTML, or JSON
///   (`{"error","error_description"}`) to a client that accepts `application/json` and not
///   `text/html`;
/// - a path the emulator does not serve answers JSON (`{"message"}`), or an HTML page to a
///   client that accepts `text/html`;
/// - LINE's APIs and the admin API answer JSON in LINE's documented shapes whatever the
///   `Accept`, as LINE does.
pub(crate) async fn negotiate(req: Request, next: Next) -> Response {
    let (wants_html, wants_json) = preference(req.headers());
    let routed = req.extensions().get::<MatchedPath>().is_some();
    let resp = next.run(req).await;
    let Some(ErrorSource(err)) = resp.extensions().get::<ErrorSource>() else {
        return resp;
    };
    let mut out = match err {
        ApiError::Page {
            status,
            detail,
            help,
            ..
        } if wants_json => {
            let mut description = detail.clone().into_owned();
            if let Some(h) = help {
                description.push_str(&format!(
                    " Received: {}. Register it with `--channel {},SECRET,{}` or in [[channels]] callback_urls.",
                    h.received, h.channel, h.suggested
                ));
            }
            json_response(
                *status,
                &OAuthErrorBody {
                    error: if *status == StatusCode::FORBIDDEN {
                        "access_denied"
                    } else {
                        "invalid_request"
                    }
                    .to_owned(),
                    error_description: Some(description),
                },
            )
        }
        ApiError::Message {
            status, message, ..
        } if wants_html && !routed => {
            let title = status.canonical_reason().unwrap_or("Error");
            pages::error_page(*status, title, message, None)
        }
        _ => return resp,
    };
    // The request id, the channel tag and anything else the handler set stays.
    if let Some(tag) = resp.extensions().get::<ChannelTag>() {
        out.extensions_mut().insert(*tag);
    }
    for (name, value) in resp.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::InChannel { channel, error } = self {
            let mut resp = error.into_response();
            resp.extensions_mut().insert(channel);
            return resp;
        }
        let source = ErrorSource(self.clone());
        let mut resp = self.render();
        resp.extensions_mut().insert(source);
        resp
    }
}

impl ApiError {
    /// The response in the error's own format.
    fn render(self) -> Response {
        match self {
            ApiError::OAuth {
                status,
                error,
                description,
            } => json_response(
                status,
                &OAuthErrorBody {
                    error: error.to_owned(),
                    error_description: description.map(Cow::into_owned),
                },
            ),
            ApiError::Message {
                status,
                message,
                details,
            } => json_response(
                status,
                &MessageErrorBody {
                    message: message.into_owned(),
                    details,
                },
            ),
            ApiError::RateLimited { retry_after } => {
                let mut resp = json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &MessageErrorBody {
                        message: RATE_LIMIT_MESSAGE.to_owned(),
                        details: None,
                    },
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                resp
            }
            ApiError::PayloadTooLarge => json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &MessageErrorBody {
                    message: "Request Entity Too Large".to_owned(),
                    details: None,
                },
            ),
            ApiError::Page {
                status,
                title,
                detail,
                help,
            } => pages::error_page(status, &title, &detail, help.as_deref()),
            ApiError::InChannel { error, .. } => error.render(),
        }
    }
}
