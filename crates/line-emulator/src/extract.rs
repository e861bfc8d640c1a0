//! Extractors whose rejections are answered in LINE's shapes, so that handlers take typed
//! input and return `Result<Response, ApiError>`.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;

use crate::error::ApiError;
use crate::params::{self, Params};

/// An `application/x-www-form-urlencoded` body of an OAuth endpoint: an unreadable body or
/// another content type is a 400 `invalid_request` (413 above 2 MB).
pub(crate) struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state).await;
        params::form(&headers, bytes).map(OAuthForm)
    }
}

/// The consent page's form: an unreadable body is the HTML 400 page.
pub(crate) struct PageForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = params::body_bytes(Bytes::from_request(req, state).await, || {
            ApiError::page(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "The form could not be read.",
            )
        })?;
        Ok(PageForm(Params::parse(&bytes)))
    }
}

/// The query string's parameters (none when there is no query).
pub(crate) struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(Params::parse(
            parts.uri.query().unwrap_or("").as_bytes(),
        )))
    }
}
